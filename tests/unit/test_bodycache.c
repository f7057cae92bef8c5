/* test_bodycache.c - the block cache against an in-memory "server". */
#include "config.h"

#include <string.h>

#include "bodycache.h"
#include "imap-error.h"

#define B FS_BODYCACHE_BLOCK

struct fake_msg {
	char *data;
	size_t size;
	GMutex lock;
	int fetches;	     /* protected by lock */
	uint64_t fetched;    /* bytes requested, protected by lock */
	int fail_next;	     /* fail this many fetches */
	gulong delay_us;     /* make fetches slow (for concurrency) */
	GHashTable *per_off; /* offset -> count, protected by lock */
};

static gboolean fake_fetch(void *user_data, uint64_t offset, uint64_t length,
			   struct fs_bodycache_stream *stream, GError **error)
{
	struct fake_msg *m = user_data;
	size_t n, done;

	g_mutex_lock(&m->lock);
	m->fetches++;
	m->fetched += length;
	g_hash_table_replace(
		m->per_off, GSIZE_TO_POINTER(offset + 1),
		GINT_TO_POINTER(
			GPOINTER_TO_INT(g_hash_table_lookup(
				m->per_off, GSIZE_TO_POINTER(offset + 1))) +
			1));
	if (m->fail_next > 0) {
		m->fail_next--;
		g_mutex_unlock(&m->lock);
		/* Some bytes arrive before the connection dies. */
		if (offset < m->size)
			fs_bodycache_stream_write(stream, m->data + offset,
						  MIN(m->size - offset, 100));
		g_set_error(error, IMAP_ERROR, IMAP_ERROR_IO, "injected");
		return FALSE;
	}
	g_mutex_unlock(&m->lock);
	if (m->delay_us > 0)
		g_usleep(m->delay_us);
	n = offset < m->size ? MIN(m->size - offset, length) : 0;
	/* Odd-sized pieces, as a network delivers them. */
	for (done = 0; done < n; done += 7001)
		fs_bodycache_stream_write(stream, m->data + offset + done,
					  MIN(7001, n - done));
	return TRUE;
}

static struct fake_msg *fake_new(size_t size)
{
	struct fake_msg *m = g_new0(struct fake_msg, 1);
	size_t i;

	m->size = size;
	m->data = g_malloc(size + 1);
	for (i = 0; i < size; i++)
		m->data[i] = (char)(i * 7 + i / 251);
	g_mutex_init(&m->lock);
	m->per_off = g_hash_table_new(g_direct_hash, g_direct_equal);
	return m;
}

static void fake_free(struct fake_msg *m)
{
	g_hash_table_destroy(m->per_off);
	g_mutex_clear(&m->lock);
	g_free(m->data);
	g_free(m);
}

static gssize rd(struct fs_bodycache *c, struct fake_msg *m, uint64_t hint,
		 uint64_t off, size_t len, uint64_t ra, char *buf,
		 uint64_t *eof)
{
	GError *err = NULL;
	gssize n = fs_bodycache_read(c, 1, hint, off, len, ra, buf, eof,
				     fake_fetch, m, &err);

	if (n < 0)
		g_error_free(err);
	return n;
}

static void test_random_reads(void)
{
	struct fake_msg *m = fake_new(3 * B + 12345);
	struct fs_bodycache *c = fs_bodycache_new(64ull << 20);
	GRand *r = g_rand_new_with_seed(42);
	char *buf = g_malloc(2 * B);
	int i;

	for (i = 0; i < 500; i++) {
		uint64_t off = g_rand_int_range(r, 0, (gint32)m->size + 100);
		size_t len = g_rand_int_range(r, 1, 2 * B);
		size_t want = off < m->size ? MIN(m->size - off, len) : 0;
		gssize n = rd(c, m, m->size, off, len, 0, buf, NULL);

		g_assert_cmpint(n, ==, (gssize)want);
		g_assert_true(memcmp(buf, m->data + MIN(off, m->size), want) ==
			      0);
	}
	/* Everything was fetched once: each block exactly one time. */
	g_assert_cmpint(m->fetches, <=, 4);
	g_free(buf);
	g_rand_free(r);
	fs_bodycache_free(c);
	fake_free(m);
}

static void test_readahead_one_fetch(void)
{
	struct fake_msg *m = fake_new(20 * B);
	struct fs_bodycache *c = fs_bodycache_new(64ull << 20);
	char *buf = g_malloc(B);
	uint64_t off;

	/* The first read with 8 blocks of read-ahead fetches 9 blocks in
	 * one request; reads inside them cost nothing. */
	g_assert_cmpint(rd(c, m, m->size, 0, B, 8 * B, buf, NULL), ==, B);
	g_assert_cmpint(m->fetches, ==, 1);
	g_assert_cmpuint(m->fetched, ==, 9 * (uint64_t)B);
	for (off = B; off < 9 * (uint64_t)B; off += B)
		g_assert_cmpint(rd(c, m, m->size, off, B, 0, buf, NULL), ==, B);
	g_assert_cmpint(m->fetches, ==, 1);
	/* Read-ahead never runs past the size we believe in. */
	g_assert_cmpint(
		rd(c, m, m->size, 9 * (uint64_t)B, B, 100 * B, buf, NULL), ==,
		B);
	g_assert_cmpuint(m->fetched, ==, 20 * (uint64_t)B);
	g_free(buf);
	fs_bodycache_free(c);
	fake_free(m);
}

static void test_bound(void)
{
	struct fake_msg *m = fake_new(300 * B);
	struct fs_bodycache *c = fs_bodycache_new(1); /* minimum: 64 blocks */
	char *buf = g_malloc(B);
	uint64_t off;

	for (off = 0; off < m->size; off += B) {
		g_assert_cmpint(rd(c, m, m->size, off, B, 4 * B, buf, NULL), ==,
				B);
		g_assert_true(memcmp(buf, m->data + off, B) == 0);
		g_assert_cmpuint(fs_bodycache_bytes(c), <=, 64 * (uint64_t)B);
	}
	g_free(buf);
	fs_bodycache_free(c);
	fake_free(m);
}

static void test_size_lies(void)
{
	struct fake_msg *m = fake_new(1000);
	struct fs_bodycache *c = fs_bodycache_new(64ull << 20);
	char buf[4096];
	uint64_t eof = G_MAXUINT64;

	/* The server claimed 2000 bytes: the read stops at 1000 and says
	 * where the message really ends. */
	g_assert_cmpint(rd(c, m, 2000, 0, sizeof(buf), 0, buf, &eof), ==, 1000);
	g_assert_cmpuint(eof, ==, 1000);
	g_assert_cmpint(rd(c, m, 2000, 1500, 100, 0, buf, &eof), ==, 0);
	fs_bodycache_free(c);
	fake_free(m);

	/* The server claimed 500: reading past the claim still finds the
	 * real bytes. */
	m = fake_new(1000);
	c = fs_bodycache_new(64ull << 20);
	eof = G_MAXUINT64;
	g_assert_cmpint(rd(c, m, 500, 0, 400, 0, buf, &eof), ==, 400);
	g_assert_cmpint(rd(c, m, 500, 400, 4096, 0, buf, &eof), ==, 600);
	g_assert_true(memcmp(buf, m->data + 400, 600) == 0);
	g_assert_cmpuint(eof, ==, 1000);
	fs_bodycache_free(c);
	fake_free(m);
}

static void test_exact_block_end(void)
{
	struct fake_msg *m = fake_new(2 * B);
	struct fs_bodycache *c = fs_bodycache_new(64ull << 20);
	char *buf = g_malloc(B);
	uint64_t eof = G_MAXUINT64;

	g_assert_cmpint(rd(c, m, m->size, B, B, 0, buf, &eof), ==, B);
	g_assert_cmpint(rd(c, m, m->size, 2 * B, B, 0, buf, &eof), ==, 0);
	g_assert_cmpuint(eof, ==, 2 * (uint64_t)B);
	g_free(buf);
	fs_bodycache_free(c);
	fake_free(m);
}

static void test_fetch_error(void)
{
	struct fake_msg *m = fake_new(5000);
	struct fs_bodycache *c = fs_bodycache_new(64ull << 20);
	char buf[8192];

	m->fail_next = 1;
	g_assert_cmpint(rd(c, m, m->size, 0, sizeof(buf), 0, buf, NULL), ==,
			-1);
	/* Nothing half-loaded stays behind: the next read fetches again. */
	g_assert_cmpint(rd(c, m, m->size, 0, sizeof(buf), 0, buf, NULL), ==,
			5000);
	g_assert_cmpint(m->fetches, ==, 2);
	fs_bodycache_free(c);
	fake_free(m);
}

struct thread_arg {
	struct fs_bodycache *c;
	struct fake_msg *m;
	gboolean ok;
};

static gpointer reader(gpointer p)
{
	struct thread_arg *a = p;
	char *buf = g_malloc(B);
	int i;

	a->ok = TRUE;
	for (i = 0; i < 4; i++) {
		uint64_t off = (uint64_t)i * B;

		if (rd(a->c, a->m, a->m->size, off, B, 0, buf, NULL) != B ||
		    memcmp(buf, a->m->data + off, B) != 0)
			a->ok = FALSE;
	}
	g_free(buf);
	return NULL;
}

static void test_concurrent_single_fetch(void)
{
	struct fake_msg *m = fake_new(4 * B);
	struct fs_bodycache *c = fs_bodycache_new(64ull << 20);
	struct thread_arg args[8];
	GThread *t[8];
	GHashTableIter it;
	gpointer v;
	int i;

	m->delay_us = 20000;
	for (i = 0; i < 8; i++) {
		args[i].c = c;
		args[i].m = m;
		t[i] = g_thread_new("reader", reader, &args[i]);
	}
	for (i = 0; i < 8; i++) {
		g_thread_join(t[i]);
		g_assert_true(args[i].ok);
	}
	/* Readers of a block being fetched wait for that fetch. */
	g_hash_table_iter_init(&it, m->per_off);
	while (g_hash_table_iter_next(&it, NULL, &v))
		g_assert_cmpint(GPOINTER_TO_INT(v), ==, 1);
	fs_bodycache_free(c);
	fake_free(m);
}

static void test_forget(void)
{
	struct fake_msg *m = fake_new(1000);
	struct fs_bodycache *c = fs_bodycache_new(64ull << 20);
	char buf[1000];

	g_assert_cmpint(rd(c, m, m->size, 0, 1000, 0, buf, NULL), ==, 1000);
	g_assert_cmpuint(fs_bodycache_bytes(c), ==, 1000);
	fs_bodycache_forget(c, 1);
	g_assert_cmpuint(fs_bodycache_bytes(c), ==, 0);
	fs_bodycache_free(c);
	fake_free(m);
}

static void test_stream_skip_and_partial(void)
{
	struct fake_msg *m = fake_new(5 * B + 10);
	struct fs_bodycache *c = fs_bodycache_new(64ull << 20);
	struct fs_bodycache_stream *st;
	char *buf = g_malloc(B);
	uint64_t eof = G_MAXUINT64;

	/* A whole-message stream filling blocks 2..9: bytes before block 2
	 * are skipped, the message ends in block 5. */
	g_assert_cmpuint(fs_bodycache_reserve(c, 1, 2, 8), ==, 8);
	/* Blocks already reserved cannot be reserved again. */
	g_assert_cmpuint(fs_bodycache_reserve(c, 1, 2, 1), ==, 0);
	g_assert_cmpuint(fs_bodycache_first_missing(c, 1, 0, 10), ==, 0);
	st = fs_bodycache_stream_new(c, 1, 2, 9, 0);
	fs_bodycache_stream_write(st, m->data, 3 * B);
	/* Block 2 is readable before the stream ends. */
	m->fail_next = 0;
	g_assert_cmpint(rd(c, m, m->size, 2 * B, B, 0, buf, NULL), ==, B);
	g_assert_true(memcmp(buf, m->data + 2 * B, B) == 0);
	fs_bodycache_stream_write(st, m->data + 3 * B, m->size - 3 * B);
	fs_bodycache_stream_finish(st, TRUE);
	g_assert_cmpint(m->fetches, ==, 0);
	g_assert_cmpint(rd(c, m, m->size, 5 * B, B, 0, buf, &eof), ==, 10);
	g_assert_cmpuint(eof, ==, 5 * (uint64_t)B + 10);
	g_assert_cmpint(m->fetches, ==, 0);
	/* Blocks 0 and 1 were never filled: read on demand. */
	g_assert_cmpint(rd(c, m, m->size, 0, B, 0, buf, NULL), ==, B);
	g_assert_cmpint(m->fetches, ==, 1);

	/* An incomplete stream releases what it did not fill. */
	g_assert_cmpuint(fs_bodycache_reserve(c, 2, 0, 3), ==, 3);
	st = fs_bodycache_stream_new(c, 2, 0, 2, 0);
	fs_bodycache_stream_write(st, m->data, B + 5);
	fs_bodycache_stream_finish(st, FALSE);
	g_assert_cmpuint(fs_bodycache_first_missing(c, 2, 0, 3), ==, 1);
	g_free(buf);
	fs_bodycache_free(c);
	fake_free(m);
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/bodycache/random-reads", test_random_reads);
	g_test_add_func("/bodycache/readahead", test_readahead_one_fetch);
	g_test_add_func("/bodycache/bound", test_bound);
	g_test_add_func("/bodycache/size-lies", test_size_lies);
	g_test_add_func("/bodycache/exact-block-end", test_exact_block_end);
	g_test_add_func("/bodycache/fetch-error", test_fetch_error);
	g_test_add_func("/bodycache/concurrent", test_concurrent_single_fetch);
	g_test_add_func("/bodycache/forget", test_forget);
	g_test_add_func("/bodycache/stream", test_stream_skip_and_partial);
	return g_test_run();
}
