/* prefetch.c - see prefetch.h. */
#include "config.h"

#include "fetch.h"
#include "imap-error.h"
#include "log.h"
#include "prefetch.h"

struct fs_prefetch {
	/* Immutable after creation; the thread pool locks itself. */
	struct imap_pool *pool;
	struct fs_tree *tree;
	struct fs_bodycache *cache;
	uint64_t batch_bytes;
	uint64_t whole_max;
	GThreadPool *workers;
};

/* A folder walk prefetches only messages of at most PREFETCH_PER_MESSAGE
 * bytes (whole), and only after a walk is seen, so a single cat never
 * pulls in a folder. */
#define PREFETCH_PER_MESSAGE (2 * (uint64_t)FS_BODYCACHE_BLOCK)

struct prefetch_job {
	char *mailbox;
	uint32_t uidvalidity;
	/* Either messages of a folder walk... */
	GArray *items; /* struct fs_prefetch_item, or NULL */
	/* ...or the next window of one message being read sequentially. */
	uint64_t ino;
	uint32_t uid;
	uint64_t first, nblocks;
	gboolean whole; /* fetch BODY.PEEK[] and keep blocks from first */
};

struct prefetch_reservation {
	uint64_t ino;
	uint64_t nblocks;
	gboolean filled;
};

struct prefetch_batch {
	struct fs_prefetch *pf;
	struct prefetch_job *job;
	GHashTable *reserved; /* uid -> struct prefetch_reservation * */
	uint32_t *uids;
	size_t nuids;
};

static void prefetch_batch_body(uint32_t uid, char *data, size_t len,
				void *user_data)
{
	struct prefetch_batch *c = user_data;
	struct prefetch_reservation *r =
		g_hash_table_lookup(c->reserved, GUINT_TO_POINTER(uid));

	if (r == NULL || r->filled) {
		g_free(data);
		return;
	}
	r->filled = TRUE;
	fs_bodycache_fill(c->pf->cache, r->ino, 0, r->nblocks, data, len, 0);
}

static gboolean prefetch_batch_fn(struct imap_session *s, void *user_data,
				  GError **error)
{
	struct prefetch_batch *c = user_data;

	/* Whole messages: the plan only holds ones that fit the
	 * reservation, and prefetch_batch_body keeps no more than that. */
	return imap_session_fetch_bodies(s, c->job->mailbox,
					 c->job->uidvalidity, c->uids, c->nuids,
					 0, prefetch_batch_body, c, error);
}

static void prefetch_job_free(struct prefetch_job *job)
{
	g_free(job->mailbox);
	if (job->items != NULL)
		g_array_unref(job->items);
	g_free(job);
}

/* The next window of a sequential read, fetched while the reader consumes
 * the current one, so a large cat streams instead of stopping at every
 * window's end. */
static void prefetch_window_run(struct fs_prefetch *pf,
				struct prefetch_job *job)
{
	const uint64_t B = FS_BODYCACHE_BLOCK;
	struct fs_fetch f = {.pool = pf->pool,
			     .mailbox = job->mailbox,
			     .uidvalidity = job->uidvalidity,
			     .uid = job->uid};
	struct fs_bodycache_stream *st;
	GError *err = NULL;
	gboolean ok;
	uint64_t n;

	n = fs_bodycache_reserve(pf->cache, job->ino, job->first, job->nblocks);
	if (n == 0)
		return;
	/* A whole-message job asks for BODY.PEEK[] from 0; the stream skips
	 * to the blocks it reserved. */
	st = fs_bodycache_stream_new(pf->cache, job->ino, job->first,
				     job->first + n - 1,
				     job->whole ? 0 : job->first * B);
	ok = fs_fetch_into_cache(&f, job->whole ? 0 : job->first * B,
				 job->whole ? 0 : n * B, st, &err);
	/* A whole fetch may end before the last reserved block only at the
	 * message's end, so it is complete either way. */
	fs_bodycache_stream_finish(st, ok);
	if (!ok) {
		imapfs_info("read-ahead in %s failed: %s", job->mailbox,
			    err->message);
		g_error_free(err);
	}
}

static void prefetch_run(gpointer data, gpointer user_data)
{
	struct prefetch_job *job = data;
	struct prefetch_batch c = {user_data, job, NULL, NULL, 0};
	GHashTableIter it;
	gpointer v;
	GError *err = NULL;
	guint i;

	if (job->items == NULL) {
		prefetch_window_run(c.pf, job);
		prefetch_job_free(job);
		return;
	}
	c.reserved = g_hash_table_new_full(g_direct_hash, g_direct_equal, NULL,
					   g_free);
	c.uids = g_new(uint32_t, job->items->len);
	for (i = 0; i < job->items->len; i++) {
		const struct fs_prefetch_item *item =
			&g_array_index(job->items, struct fs_prefetch_item, i);
		uint64_t want = MIN(MAX(item->size, 1), PREFETCH_PER_MESSAGE);
		struct prefetch_reservation *r =
			g_new0(struct prefetch_reservation, 1);

		r->ino = item->ino;
		r->nblocks =
			(want + FS_BODYCACHE_BLOCK - 1) / FS_BODYCACHE_BLOCK;
		/* Already cached or being read: leave it alone. */
		r->nblocks = fs_bodycache_reserve(c.pf->cache, r->ino, 0,
						  r->nblocks);
		if (r->nblocks == 0) {
			g_free(r);
			continue;
		}
		g_hash_table_insert(c.reserved, GUINT_TO_POINTER(item->uid), r);
		c.uids[c.nuids++] = item->uid;
	}
	if (c.nuids > 0 && !imap_pool_run(c.pf->pool, job->mailbox,
					  prefetch_batch_fn, &c, &err)) {
		imapfs_info("prefetch in %s failed: %s", job->mailbox,
			    err->message);
		g_error_free(err);
	}
	/* Whatever did not arrive is released to on-demand reads. */
	g_hash_table_iter_init(&it, c.reserved);
	while (g_hash_table_iter_next(&it, NULL, &v)) {
		struct prefetch_reservation *r = v;

		if (!r->filled)
			fs_bodycache_abandon(c.pf->cache, r->ino, 0,
					     r->nblocks);
	}
	g_hash_table_destroy(c.reserved);
	g_free(c.uids);
	prefetch_job_free(job);
}

gboolean fs_prefetch_folder_walk(struct fs_prefetch *pf, uint64_t ino)
{
	struct prefetch_job *job;
	gboolean need_listing = FALSE;

	if (pf == NULL)
		return FALSE;
	job = g_new0(struct prefetch_job, 1);
	job->items = g_array_new(FALSE, FALSE, sizeof(struct fs_prefetch_item));
	if (!fs_tree_prefetch_plan(pf->tree, ino, pf->batch_bytes,
				   PREFETCH_PER_MESSAGE, job->items,
				   &job->mailbox, &job->uidvalidity,
				   &need_listing)) {
		prefetch_job_free(job);
		return need_listing;
	}
	g_thread_pool_push(pf->workers, job, NULL);
	return FALSE;
}

void fs_prefetch_window(struct fs_prefetch *pf, uint64_t ino,
			const struct fs_entry *e, uint64_t end, uint64_t window)
{
	const uint64_t B = FS_BODYCACHE_BLOCK;
	uint64_t first = end / B, last, missing;
	struct prefetch_job *job;

	if (pf == NULL || window < 2 * B || e->gone)
		return;
	/* Up to the claimed end; the caller saw none before @end. */
	last = MIN((end + window - 1) / B, (uint64_t)e->st.st_size / B);
	if (last < first)
		return;
	missing = fs_bodycache_first_missing(pf->cache, ino, first,
					     last - first + 1);
	if (missing == G_MAXUINT64)
		return;
	job = g_new0(struct prefetch_job, 1);
	job->mailbox = g_strdup(e->mailbox);
	job->uidvalidity = e->uidvalidity;
	job->uid = e->uid;
	job->ino = ino;
	job->first = missing;
	job->nblocks = MAX(window / B, 1);
	/* A message that fits comfortably in the cache and is being read
	 * through is taken in one piece: servers stream BODY.PEEK[] faster
	 * than the same bytes in partial fetches (Dovecot: 1.6x). Larger
	 * ones stay in windows, so memory stays bounded by the cache. */
	if ((uint64_t)e->st.st_size <= pf->whole_max && window >= 4 * B) {
		job->whole = TRUE;
		job->nblocks = (uint64_t)e->st.st_size / B + 1 - missing;
	}
	g_thread_pool_push(pf->workers, job, NULL);
}

struct fs_prefetch *fs_prefetch_new(struct imap_pool *pool,
				    struct fs_tree *tree,
				    struct fs_bodycache *cache,
				    uint64_t batch_bytes, uint64_t whole_max)
{
	struct fs_prefetch *pf = g_new0(struct fs_prefetch, 1);

	pf->pool = pool;
	pf->tree = tree;
	pf->cache = cache;
	pf->batch_bytes = batch_bytes;
	pf->whole_max = whole_max;
	/* Two workers: one batch streams while the next is requested. */
	pf->workers = g_thread_pool_new(prefetch_run, pf, 2, FALSE, NULL);
	return pf;
}

void fs_prefetch_free(struct fs_prefetch *pf)
{
	if (pf == NULL)
		return;
	g_thread_pool_free(pf->workers, TRUE, TRUE);
	g_free(pf);
}
