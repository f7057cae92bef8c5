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
 * signal), which ends its waits with IMAP_ERROR_CANCELLED (EINTR).  Only
 * idempotent requests may be deferred: an interrupted one is abandoned.
 *
 * Threading: fs_defer_run() from any thread (normally a FUSE worker).
 */
#ifndef IMAPFS_FS_DEFER_H
#define IMAPFS_FS_DEFER_H

#include <fuse_lowlevel.h>
#include <glib.h>

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

#endif
