/* fetch.c - see fetch.h. */
#include "config.h"

#include "fetch.h"
#include "imap-error.h"

static void fetch_data(void *user_data, uint64_t offset, const void *data,
		       size_t len)
{
	struct fs_fetch *f = user_data;

	fs_bodycache_stream_write(f->stream, data, len);
}

static gboolean fetch_fn(struct imap_session *s, void *user_data,
			 GError **error)
{
	struct fs_fetch *f = user_data;

	/* A retry on a fresh connection starts the bytes over. */
	fs_bodycache_stream_restart(f->stream);
	return imap_session_fetch_body(s, f->mailbox, f->uidvalidity, f->uid,
				       f->offset, f->length, fetch_data, f,
				       NULL, error);
}

gboolean fs_fetch_into_cache(void *fetch, uint64_t offset, uint64_t length,
			     struct fs_bodycache_stream *stream, GError **error)
{
	struct fs_fetch *f = fetch;

	if (f->gone) {
		g_set_error(error, IMAP_ERROR, IMAP_ERROR_STALE,
			    "message UID %u of %s no longer exists", f->uid,
			    f->mailbox);
		return FALSE;
	}
	f->offset = offset;
	f->length = length;
	f->stream = stream;
	return imap_pool_run(f->pool, f->mailbox, fetch_fn, f, error);
}
