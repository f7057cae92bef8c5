/* bodycache.h - bounded in-memory cache of message content, in blocks.
 *
 * Message content never changes for a given inode (a message is immutable
 * and inode numbers are never reused), so the cache is keyed by (inode,
 * block index) and needs no invalidation for correctness; it only evicts,
 * least recently used first, to stay within its byte bound.  Reading a
 * 100 MB message therefore needs at most the bound, not 100 MB.
 *
 * fs_bodycache_read() fills a caller's buffer, fetching missing blocks
 * through a callback in one request per contiguous run (plus read-ahead).
 * Blocks being fetched are marked so that concurrent readers of the same
 * block wait for the one fetch instead of repeating it.  The lock is never
 * held while the callback runs.
 *
 * Threading: all functions are thread-safe.
 */
#ifndef IMAPFS_FS_BODYCACHE_H
#define IMAPFS_FS_BODYCACHE_H

#include <glib.h>
#include <stdint.h>
#include <sys/types.h>

#define FS_BODYCACHE_BLOCK (128 * 1024)

struct fs_bodycache;

struct fs_bodycache_stream;

/* Fetches bytes @offset..@offset+@length of the message and hands them to
 * fs_bodycache_stream_write() as they arrive (fewer than @length means the
 * message ends there). Returns FALSE with an error if the fetch failed.
 * May be retried on the same stream after fs_bodycache_stream_restart(). */
typedef gboolean fs_bodycache_fetch_fn(void *user_data, uint64_t offset,
				       uint64_t length,
				       struct fs_bodycache_stream *stream,
				       GError **error);

/* Streams: blocks become readable one by one while a fetch is still
 * running, so a reader of block 0 of a 20 MB fetch need not wait for the
 * rest, and bytes are copied once, from the network buffer into the block.
 * fs_bodycache_stream_new() starts filling the blocks @first..@last of
 * @ino, which the caller reserved (fs_bodycache_reserve()); the bytes
 * written start at message offset @origin (<= @first's offset; earlier
 * bytes are skipped). fs_bodycache_stream_finish() ends it: when @complete
 * the bytes written are all there is up to the last reserved block (a
 * short last block marks the end of the message), otherwise what was not
 * filled is released. Frees the stream. */
struct fs_bodycache_stream *
fs_bodycache_stream_new(struct fs_bodycache *cache, uint64_t ino,
			uint64_t first, uint64_t last, uint64_t origin);
void fs_bodycache_stream_write(struct fs_bodycache_stream *stream,
			       const void *data, size_t len);
/* Starts writing again from @origin (a retried fetch); blocks already
 * filled stay. */
void fs_bodycache_stream_restart(struct fs_bodycache_stream *stream);
void fs_bodycache_stream_finish(struct fs_bodycache_stream *stream,
				gboolean complete);

/* Creates a cache holding at most @max_bytes of content (at least a few
 * blocks are always allowed). Never returns NULL. */
struct fs_bodycache *fs_bodycache_new(uint64_t max_bytes);

/* Frees the cache. No read may be running. */
void fs_bodycache_free(struct fs_bodycache *cache);

/* Reads up to @size bytes at @offset of message @ino into @buf.
 * @size_hint is the size we believe the message has (used to bound
 * read-ahead; reads past it still ask the server once so that a too-small
 * RFC822.SIZE cannot truncate the file). @readahead is how many bytes to
 * fetch beyond the request when a fetch is needed anyway.
 * Returns the number of bytes read (0 at end of message) or -1 with
 * @error set (the fetch callback's error; TIMEOUT or CANCELLED when a wait
 * for another thread's fetch outlasted the calling request's deadline or
 * the request was interrupted, imap/reqctx.h). If the read proved where the
 * message ends, *eof_r is set to its real size, else left alone. */
gssize fs_bodycache_read(struct fs_bodycache *cache, uint64_t ino,
			 uint64_t size_hint, uint64_t offset, size_t size,
			 uint64_t readahead, char *buf, uint64_t *eof_r,
			 fs_bodycache_fetch_fn *fetch, void *user_data,
			 GError **error);

/* Prefetching (bytes fetched before anyone asked: the next files of a
 * grep -r, the next window of a sequential read).
 * fs_bodycache_reserve() marks blocks @first, @first+1, ... (at most
 * @nblocks, stopping at the first block that is cached or being fetched
 * already) as being fetched, so that readers wait for the prefetch instead
 * of fetching again, and returns how many it marked (0: nothing to do).
 * Each non-empty reservation must end with exactly one fs_bodycache_fill()
 * (a g_malloc'd buffer, taken over, whose byte @data_offset is the first
 * byte of block @first; data ending early marks the end of the message)
 * or fs_bodycache_abandon(). */
uint64_t fs_bodycache_reserve(struct fs_bodycache *cache, uint64_t ino,
			      uint64_t first, uint64_t nblocks);
void fs_bodycache_fill(struct fs_bodycache *cache, uint64_t ino, uint64_t first,
		       uint64_t nblocks, char *data, size_t len,
		       size_t data_offset);
void fs_bodycache_abandon(struct fs_bodycache *cache, uint64_t ino,
			  uint64_t first, uint64_t nblocks);

/* Returns the index of the first block in @first..@first+@nblocks-1 of
 * @ino that is neither cached nor being fetched, or G_MAXUINT64. */
uint64_t fs_bodycache_first_missing(struct fs_bodycache *cache, uint64_t ino,
				    uint64_t first, uint64_t nblocks);

/* TRUE if blocks @first..@first+@nblocks-1 of @ino are all cached (none
 * still being fetched): a read of them needs neither the server nor a
 * wait. */
gboolean fs_bodycache_holds(struct fs_bodycache *cache, uint64_t ino,
			    uint64_t first, uint64_t nblocks);

/* Drops every block of @ino (message gone). */
void fs_bodycache_forget(struct fs_bodycache *cache, uint64_t ino);

/* Bytes currently cached (for tests and statistics). */
uint64_t fs_bodycache_bytes(struct fs_bodycache *cache);

#endif
