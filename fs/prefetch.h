/* prefetch.h - fetching what a reader is about to ask for.
 *
 * Two patterns are recognised and served in the background, on pooled
 * connections other than the reader's, by two worker threads:
 *  - a folder walked message after message in UID order (grep -r,
 *    cat *.eml, a file manager's preview pass): the next messages of up to
 *    256 KiB come whole in batches of one UID FETCH each (16 doubling to
 *    512 messages, bounded in bytes);
 *  - a message read sequentially: the next window is fetched while the
 *    reader consumes the current one, and a message up to the whole-fetch
 *    bound is taken in one BODY.PEEK[] (servers stream that faster).
 * Both stream into the body cache, whose per-block "being fetched" marks
 * make readers wait for a prefetch instead of fetching the same bytes.
 * Threading: all functions are thread-safe.
 */
#ifndef IMAPFS_FS_PREFETCH_H
#define IMAPFS_FS_PREFETCH_H

#include <glib.h>
#include <stdint.h>

#include "bodycache.h"
#include "pool.h"
#include "tree.h"

struct fs_prefetch;

/* Starts the workers. @batch_bytes bounds one folder-walk batch;
 * messages up to @whole_max bytes read sequentially are fetched whole.
 * The pool, tree and cache must outlive the prefetcher. */
struct fs_prefetch *fs_prefetch_new(struct imap_pool *pool,
				    struct fs_tree *tree,
				    struct fs_bodycache *cache,
				    uint64_t batch_bytes, uint64_t whole_max);

/* Stops: queued work is dropped, running fetches finish (bounded by the
 * IMAP timeouts). NULL is allowed. */
void fs_prefetch_free(struct fs_prefetch *prefetch);

/* Tells of a read at offset 0 of message @ino (see
 * fs_tree_prefetch_plan()); may queue a batch of the folder's next
 * messages. Returns TRUE when a walk was seen in a folder that was never
 * listed: the caller lists it and calls again. */
gboolean fs_prefetch_folder_walk(struct fs_prefetch *prefetch, uint64_t ino);

/* Tells of a sequential read of message @e (inode @ino) that ended at
 * @end with read-ahead window @window and did not reach the end of the
 * message; may queue the next window (or the whole message). */
void fs_prefetch_window(struct fs_prefetch *prefetch, uint64_t ino,
			const struct fs_entry *e, uint64_t end,
			uint64_t window);

#endif
