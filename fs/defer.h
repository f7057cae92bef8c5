/* defer.h - FUSE requests that wait for the server run on threads of
 * their own.
 *
 * libfuse serves requests on a bounded set of worker threads.  If a read
 * whose server went silent held one of them for its whole timeout, a few
 * of them would leave nothing for the requests answered from memory
 * (getattr, readdir of a loaded folder, cached reads, xattrs, statfs).
 * So a handler that needs the network hands its request to this module
 * and returns: the request is answered from a network thread, and the
 * FUSE worker is free at once.
 *
 * Each deferred request runs inside a request context (imap/reqctx.h):
 * one deadline, the account's timeout counted from when the request was
 * deferred (time spent queued counts), for everything it does on the
 * network; and it is interruptible (FUSE_INTERRUPT: the caller got a
 * signal), which ends its waits with IMAP_ERROR_CANCELLED (EINTR).  An
 * idempotent request is then abandoned; a non-idempotent command is
 * interrupted only before it is sent (reqctx.h: after that it completes
 * or meets the deadline, and its outcome is resolved, for which an
 * unknown outcome gets one more timeout: reqctx.h's grace).
 *
 * Requests about one node (the write path: FLUSH, FSYNC, RELEASE,
 * SETATTR, rename, unlink of a file, ...) go through
 * fs_defer_run_node(): they run one at a time, in the order they came,
 * so that deferring never reorders them (a RELEASE never overtakes the
 * FLUSH still committing the file, a rename waits for the commit of the
 * same file).  One that memory answers runs at once in the calling
 * thread when nothing of its node is pending, else it waits its turn
 * on a network thread.
 *
 * Threading: fs_defer_run() from any thread (normally a FUSE worker).
 */
#ifndef IMAPFS_FS_DEFER_H
#define IMAPFS_FS_DEFER_H

#include <fuse_lowlevel.h>
#include <glib.h>
#include <stdint.h>

struct fs_defer;

/* Answers @req (every path must reply). Runs on a network thread; must not
 * wait for the server after replying. @args is the caller's. */
typedef void fs_defer_fn(fuse_req_t req, void *args);

/* Creates the network threads (at most @max_threads at once, started on
 * demand); each request gets @timeout_ms from when it is deferred. Never
 * returns NULL. */
struct fs_defer *fs_defer_new(unsigned int max_threads, int timeout_ms);

/* Waits for every deferred request to be answered, then frees. NULL is
 * allowed. */
void fs_defer_free(struct fs_defer *defer);

/* Runs @fn(@req, @args) on a network thread, then @free_args(@args) (may be
 * NULL). With @defer NULL (no threads: the mount is being set up, or
 * tests), runs it in the calling thread, still inside a request context. */
void fs_defer_run(struct fs_defer *defer, fuse_req_t req, fs_defer_fn *fn,
		  void *args, GDestroyNotify free_args);

/* Like fs_defer_run() for a request about @node (an inode; 0: none, then
 * exactly fs_defer_run(), or a direct call if @local): requests of one
 * node run one at a time in the order of these calls. @local: @fn does
 * not wait for the server; it runs in the calling thread if no request
 * of @node is queued or running. The deadline counts from this call
 * (time spent waiting for the node's earlier requests counts). */
void fs_defer_run_node(struct fs_defer *defer, fuse_req_t req, uint64_t node,
		       gboolean local, fs_defer_fn *fn, void *args,
		       GDestroyNotify free_args);

#endif
