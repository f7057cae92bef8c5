/* bodycache.c - see bodycache.h.
 *
 * A fetch of N blocks comes back as one buffer; each block is a GBytes
 * slice of it, so the content is held once, not copied per block.  A block
 * shorter than FS_BODYCACHE_BLOCK marks the end of the message (it may be
 * empty when the message ends exactly at a block boundary).
 */
#include "config.h"

#include <string.h>

#include "bodycache.h"
#include "imap-error.h"
#include "reqctx.h"

#define B FS_BODYCACHE_BLOCK
/* Waiting for another reader's fetch of the same block. That fetch is
 * bounded by the IMAP timeouts; this only keeps a bug from hanging. */
#define CACHE_WAIT_US (300 * G_USEC_PER_SEC)
#define CACHE_MIN_BYTES (64 * (uint64_t)B)

struct cache_key {
	uint64_t ino;
	uint64_t idx;
};

struct cache_block {
	struct cache_key key;
	gboolean loading;
	GBytes *data; /* NULL while loading */
	GList lru;    /* link in cache->lru while ready */
};

struct fs_bodycache {
	GMutex lock;
	GCond cond;
	/* Protected by lock: */
	GHashTable *blocks; /* struct cache_key * -> struct cache_block * */
	GQueue lru;	    /* ready blocks, most recently used first */
	uint64_t bytes;
	uint64_t max_bytes;
};

static guint cache_key_hash(gconstpointer p)
{
	const struct cache_key *k = p;

	return (guint)(k->ino * 2654435761u) ^ (guint)(k->idx * 40503u) ^
	       (guint)(k->ino >> 32);
}

static gboolean cache_key_equal(gconstpointer a, gconstpointer b)
{
	const struct cache_key *x = a, *y = b;

	return x->ino == y->ino && x->idx == y->idx;
}

static void cache_block_free(gpointer p)
{
	struct cache_block *blk = p;

	if (blk->data != NULL)
		g_bytes_unref(blk->data);
	g_free(blk);
}

struct fs_bodycache *fs_bodycache_new(uint64_t max_bytes)
{
	struct fs_bodycache *cache = g_new0(struct fs_bodycache, 1);

	g_mutex_init(&cache->lock);
	g_cond_init(&cache->cond);
	cache->blocks = g_hash_table_new_full(cache_key_hash, cache_key_equal,
					      NULL, cache_block_free);
	g_queue_init(&cache->lru);
	cache->max_bytes = MAX(max_bytes, CACHE_MIN_BYTES);
	return cache;
}

void fs_bodycache_free(struct fs_bodycache *cache)
{
	if (cache == NULL)
		return;
	g_hash_table_destroy(cache->blocks);
	g_mutex_clear(&cache->lock);
	g_cond_clear(&cache->cond);
	g_free(cache);
}

static void cache_remove(struct fs_bodycache *cache, struct cache_block *blk)
{
	if (!blk->loading) {
		g_queue_unlink(&cache->lru, &blk->lru);
		cache->bytes -= g_bytes_get_size(blk->data);
	}
	g_hash_table_remove(cache->blocks, &blk->key);
}

static void cache_evict(struct fs_bodycache *cache)
{
	while (cache->bytes > cache->max_bytes && cache->lru.tail != NULL)
		cache_remove(cache, cache->lru.tail->data);
}

static struct cache_block *cache_lookup(struct fs_bodycache *cache,
					uint64_t ino, uint64_t idx)
{
	struct cache_key key = {ino, idx};

	return g_hash_table_lookup(cache->blocks, &key);
}

/* Stores fetched data as ready blocks first..last (inclusive), all of
 * which are currently loading. Blocks after the one where the message
 * ends are dropped. */
static void cache_store(struct fs_bodycache *cache, uint64_t ino,
			uint64_t first, uint64_t last, GBytes *all, size_t base)
{
	size_t len = g_bytes_get_size(all) - base;
	gboolean ended = FALSE;
	uint64_t i;

	for (i = first; i <= last; i++) {
		struct cache_block *blk = cache_lookup(cache, ino, i);
		size_t off = (size_t)((i - first) * B);
		size_t n = off < len ? MIN((size_t)B, len - off) : 0;

		/* Only blocks this fetch reserved are ours to fill. */
		if (blk == NULL || !blk->loading)
			continue;
		if (ended) {
			g_hash_table_remove(cache->blocks, &blk->key);
			continue;
		}
		blk->data = g_bytes_new_from_bytes(all, base + off, n);
		blk->loading = FALSE;
		blk->lru.data = blk;
		g_queue_push_head_link(&cache->lru, &blk->lru);
		cache->bytes += n;
		if (n < B)
			ended = TRUE;
	}
}

static void cache_abandon(struct fs_bodycache *cache, uint64_t ino,
			  uint64_t first, uint64_t last)
{
	uint64_t i;

	for (i = first; i <= last; i++) {
		struct cache_block *blk = cache_lookup(cache, ino, i);

		if (blk != NULL && blk->loading)
			g_hash_table_remove(cache->blocks, &blk->key);
	}
}

struct fs_bodycache_stream {
	struct fs_bodycache *cache;
	uint64_t ino;
	uint64_t first, last;
	uint64_t origin;
	uint64_t pos; /* message offset of the next byte written */
	char *buf;    /* the block being filled: block pos / B */
	size_t buf_len;
};

struct fs_bodycache_stream *
fs_bodycache_stream_new(struct fs_bodycache *cache, uint64_t ino,
			uint64_t first, uint64_t last, uint64_t origin)
{
	struct fs_bodycache_stream *st = g_new0(struct fs_bodycache_stream, 1);

	st->cache = cache;
	st->ino = ino;
	st->first = first;
	st->last = last;
	st->origin = MIN(origin, first * B);
	st->pos = st->origin;
	return st;
}

void fs_bodycache_stream_restart(struct fs_bodycache_stream *st)
{
	st->pos = st->origin;
	st->buf_len = 0;
}

/* Makes the block being filled readable (if it is still ours to fill).
 * Called with the lock held; takes the buffer. */
static void stream_publish(struct fs_bodycache_stream *st, uint64_t idx)
{
	struct fs_bodycache *cache = st->cache;
	struct cache_block *blk = cache_lookup(cache, st->ino, idx);

	if (blk == NULL || !blk->loading) {
		g_free(st->buf);
	} else {
		blk->data = g_bytes_new_take(st->buf, st->buf_len);
		blk->loading = FALSE;
		blk->lru.data = blk;
		g_queue_push_head_link(&cache->lru, &blk->lru);
		cache->bytes += st->buf_len;
	}
	st->buf = NULL;
	st->buf_len = 0;
}

void fs_bodycache_stream_write(struct fs_bodycache_stream *st, const void *data,
			       size_t len)
{
	const char *p = data;
	gboolean published = FALSE;

	/* Skip what comes before the first reserved block. */
	if (st->pos < st->first * B) {
		uint64_t skip = MIN(st->first * B - st->pos, (uint64_t)len);

		st->pos += skip;
		p += skip;
		len -= (size_t)skip;
	}
	while (len > 0 && st->pos / B <= st->last) {
		size_t n = MIN(len, (size_t)(B - st->buf_len));

		if (st->buf == NULL)
			st->buf = g_malloc(B);
		memcpy(st->buf + st->buf_len, p, n);
		st->buf_len += n;
		st->pos += n;
		p += n;
		len -= n;
		if (st->buf_len == B) {
			g_mutex_lock(&st->cache->lock);
			stream_publish(st, st->pos / B - 1);
			cache_evict(st->cache);
			g_mutex_unlock(&st->cache->lock);
			published = TRUE;
		}
	}
	if (published) {
		g_mutex_lock(&st->cache->lock);
		g_cond_broadcast(&st->cache->cond);
		g_mutex_unlock(&st->cache->lock);
	}
}

void fs_bodycache_stream_finish(struct fs_bodycache_stream *st,
				gboolean complete)
{
	struct fs_bodycache *cache = st->cache;
	uint64_t i, next = st->pos / B;

	g_mutex_lock(&cache->lock);
	if (complete && next <= st->last && st->pos >= st->first * B) {
		/* The message ended inside block "next" (maybe at its very
		 * start): that short block records the end. */
		if (st->buf == NULL)
			st->buf = g_malloc(1);
		stream_publish(st, next);
		for (i = next + 1; i <= st->last; i++) {
			struct cache_block *blk =
				cache_lookup(cache, st->ino, i);

			if (blk != NULL && blk->loading)
				g_hash_table_remove(cache->blocks, &blk->key);
		}
	} else {
		g_free(st->buf);
		st->buf = NULL;
		cache_abandon(cache, st->ino, st->first, st->last);
	}
	cache_evict(cache);
	g_cond_broadcast(&cache->cond);
	g_mutex_unlock(&cache->lock);
	g_free(st);
}

gssize fs_bodycache_read(struct fs_bodycache *cache, uint64_t ino,
			 uint64_t size_hint, uint64_t offset, size_t size,
			 uint64_t readahead, char *buf, uint64_t *eof_r,
			 fs_bodycache_fetch_fn *fetch, void *user_data,
			 GError **error)
{
	/* Waiting for another thread's fetch is bounded by the calling
	 * request's deadline too, and interruptible with it (reqctx.h). */
	gint64 deadline =
		imap_reqctx_clamp(g_get_monotonic_time() + CACHE_WAIT_US);
	uint64_t pos = offset, end = offset + size;
	size_t done = 0;

	g_mutex_lock(&cache->lock);
	while (pos < end) {
		uint64_t idx = pos / B, first, last, want_end, i;
		struct cache_block *blk = cache_lookup(cache, ino, idx);
		struct fs_bodycache_stream *st;
		gboolean ok;

		if (blk != NULL && !blk->loading) {
			size_t blen = g_bytes_get_size(blk->data);
			size_t boff = (size_t)(pos - idx * B);
			size_t n =
				blen > boff ? MIN(blen - boff, end - pos) : 0;

			g_queue_unlink(&cache->lru, &blk->lru);
			g_queue_push_head_link(&cache->lru, &blk->lru);
			memcpy(buf + done,
			       (const char *)g_bytes_get_data(blk->data, NULL) +
				       boff,
			       n);
			done += n;
			pos += n;
			if (blen < B && pos >= idx * B + blen) {
				if (eof_r != NULL)
					*eof_r = idx * B + blen;
				break;
			}
			continue;
		}
		if (blk != NULL) {
			gint64 now = g_get_monotonic_time();

			if (now >= deadline) {
				g_mutex_unlock(&cache->lock);
				g_set_error(error, IMAP_ERROR,
					    IMAP_ERROR_TIMEOUT,
					    "waited too long for a fetch");
				return -1;
			}
			if (!imap_reqctx_check(error)) {
				g_mutex_unlock(&cache->lock);
				return -1;
			}
			g_cond_wait_until(
				&cache->cond, &cache->lock,
				imap_reqctx_interruptible()
					? MIN(deadline,
					      now + IMAP_REQCTX_SLICE_MS * 1000)
					: deadline);
			continue;
		}
		/* A miss: fetch this block and the following missing ones
		 * that the request and the read-ahead cover, in one go. */
		want_end = end;
		if (readahead > 0 && size_hint > end)
			want_end = MIN(end + readahead, size_hint);
		first = idx;
		last = (want_end - 1) / B;
		for (i = first + 1; i <= last; i++) {
			if (cache_lookup(cache, ino, i) != NULL) {
				last = i - 1;
				break;
			}
		}
		for (i = first; i <= last; i++) {
			blk = g_new0(struct cache_block, 1);
			blk->key.ino = ino;
			blk->key.idx = i;
			blk->loading = TRUE;
			g_hash_table_insert(cache->blocks, &blk->key, blk);
		}
		g_mutex_unlock(&cache->lock);
		st = fs_bodycache_stream_new(cache, ino, first, last,
					     first * B);
		ok = fetch(user_data, first * B, (last - first + 1) * B, st,
			   error);
		fs_bodycache_stream_finish(st, ok);
		g_mutex_lock(&cache->lock);
		if (!ok) {
			g_mutex_unlock(&cache->lock);
			return -1;
		}
	}
	/* Evict only now: blocks fetched for this read stay until copied. */
	cache_evict(cache);
	g_mutex_unlock(&cache->lock);
	return (gssize)done;
}

uint64_t fs_bodycache_reserve(struct fs_bodycache *cache, uint64_t ino,
			      uint64_t first, uint64_t nblocks)
{
	uint64_t i;

	g_mutex_lock(&cache->lock);
	for (i = 0; i < nblocks; i++) {
		struct cache_block *blk;

		if (cache_lookup(cache, ino, first + i) != NULL)
			break;
		blk = g_new0(struct cache_block, 1);
		blk->key.ino = ino;
		blk->key.idx = first + i;
		blk->loading = TRUE;
		g_hash_table_insert(cache->blocks, &blk->key, blk);
	}
	g_mutex_unlock(&cache->lock);
	return i;
}

void fs_bodycache_fill(struct fs_bodycache *cache, uint64_t ino, uint64_t first,
		       uint64_t nblocks, char *data, size_t len,
		       size_t data_offset)
{
	GBytes *all;

	g_return_if_fail(nblocks > 0);
	/* A reply longer than reserved keeps only what was reserved. */
	data_offset = MIN(data_offset, len);
	all = g_bytes_new_take(data, MIN(len, data_offset + nblocks * B));
	g_mutex_lock(&cache->lock);
	cache_store(cache, ino, first, first + nblocks - 1, all, data_offset);
	g_bytes_unref(all);
	cache_abandon(cache, ino, first, first + nblocks - 1);
	cache_evict(cache);
	g_cond_broadcast(&cache->cond);
	g_mutex_unlock(&cache->lock);
}

void fs_bodycache_abandon(struct fs_bodycache *cache, uint64_t ino,
			  uint64_t first, uint64_t nblocks)
{
	g_return_if_fail(nblocks > 0);
	g_mutex_lock(&cache->lock);
	cache_abandon(cache, ino, first, first + nblocks - 1);
	g_cond_broadcast(&cache->cond);
	g_mutex_unlock(&cache->lock);
}

uint64_t fs_bodycache_first_missing(struct fs_bodycache *cache, uint64_t ino,
				    uint64_t first, uint64_t nblocks)
{
	uint64_t i, found = G_MAXUINT64;

	g_mutex_lock(&cache->lock);
	for (i = 0; i < nblocks; i++) {
		if (cache_lookup(cache, ino, first + i) == NULL) {
			found = first + i;
			break;
		}
	}
	g_mutex_unlock(&cache->lock);
	return found;
}

gboolean fs_bodycache_holds(struct fs_bodycache *cache, uint64_t ino,
			    uint64_t first, uint64_t nblocks)
{
	gboolean all = TRUE;
	uint64_t i;

	g_mutex_lock(&cache->lock);
	for (i = 0; i < nblocks && all; i++) {
		struct cache_block *blk = cache_lookup(cache, ino, first + i);

		all = blk != NULL && !blk->loading;
	}
	g_mutex_unlock(&cache->lock);
	return all;
}

void fs_bodycache_forget(struct fs_bodycache *cache, uint64_t ino)
{
	GHashTableIter it;
	gpointer v;

	g_mutex_lock(&cache->lock);
	g_hash_table_iter_init(&it, cache->blocks);
	while (g_hash_table_iter_next(&it, NULL, &v)) {
		struct cache_block *blk = v;

		if (blk->key.ino != ino || blk->loading)
			continue;
		g_queue_unlink(&cache->lru, &blk->lru);
		cache->bytes -= g_bytes_get_size(blk->data);
		g_hash_table_iter_remove(&it);
	}
	g_mutex_unlock(&cache->lock);
}

uint64_t fs_bodycache_bytes(struct fs_bodycache *cache)
{
	uint64_t n;

	g_mutex_lock(&cache->lock);
	n = cache->bytes;
	g_mutex_unlock(&cache->lock);
	return n;
}
