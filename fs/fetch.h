/* fetch.h - getting a message's bytes from the server into the cache.
 *
 * The one path by which message content travels: a partial (or whole)
 * BODY.PEEK fetch over a pooled connection, streamed into the body cache's
 * blocks as it arrives.  Used by reads, by the sequential read-ahead and
 * by the end-of-message probe.  Thread-safe (state lives in the caller's
 * struct fs_fetch).
 */
#ifndef IMAPFS_FS_FETCH_H
#define IMAPFS_FS_FETCH_H

#include <glib.h>
#include <stdint.h>

#include "bodycache.h"
#include "pool.h"

/* Which message to fetch. The strings are borrowed: they must outlive
 * the fetch. */
struct fs_fetch {
	struct imap_pool *pool;
	const char *mailbox;
	uint32_t uidvalidity;
	uint32_t uid;
	/* The message is known to be expunged (or its folder's UIDVALIDITY
	 * changed): nothing may be fetched, the cache may still serve. */
	gboolean gone;
	/* Private to fetch.c. */
	uint64_t offset, length;
	struct fs_bodycache_stream *stream;
};

/* An fs_bodycache_fetch_fn: @fetch is a struct fs_fetch *. Fetches bytes
 * @offset..@offset+@length (@length 0: the whole message) and streams them
 * into @stream, retrying once on a fresh connection if the first one died.
 * Fails with IMAP_ERROR_STALE at once for a gone message. */
gboolean fs_fetch_into_cache(void *fetch, uint64_t offset, uint64_t length,
			     struct fs_bodycache_stream *stream,
			     GError **error);

#endif
