/* notify.h - kernel cache invalidation from a thread of its own.
 *
 * The kernel must be told when something it cached changed (a message's
 * real size turned out different; with the live view: IDLE news, which
 * will add name events here).  libfuse's notify
 * calls must not be made from inside a request handler that holds locks a
 * request needs (fuse_lowlevel.h explains the deadlock), so handlers only
 * queue the event here and a dedicated thread delivers it.
 *
 * Threading: fs_notify_* queueing functions are callable from any thread
 * and never block on the kernel.
 */
#ifndef IMAPFS_FS_NOTIFY_H
#define IMAPFS_FS_NOTIFY_H

#include <fuse_lowlevel.h>
#include <glib.h>
#include <stdint.h>

struct fs_notify;

/* Starts the notification thread for session @se. Never returns NULL. */
struct fs_notify *fs_notify_new(struct fuse_session *se);

/* Stops the thread (pending events are dropped) and frees. NULL is
 * allowed. Call before the session is destroyed. */
void fs_notify_free(struct fs_notify *notify);

/* Queues "drop attributes and cached pages of @ino". NULL @notify is
 * allowed (no-op). */
void fs_notify_inval_inode(struct fs_notify *notify, uint64_t ino);

/* Queues "forget the name @name in directory @parent" (a name that now
 * means something else, or nothing). NULL @notify is allowed (no-op). */
void fs_notify_inval_entry(struct fs_notify *notify, uint64_t parent,
			   const char *name);

/* Queues "the entry @name (inode @child) of directory @parent was
 * deleted" (fuse_lowlevel_notify_delete(): the dentry goes, and the kernel
 * tells inotify watchers of @parent IN_DELETE). NULL @notify is allowed. */
void fs_notify_delete(struct fs_notify *notify, uint64_t parent, uint64_t child,
		      const char *name);

/* Drops the kernel's cached attributes of @ino right away, from the
 * calling thread. Unlike the queued calls this is allowed inside a request
 * handler (even a read of @ino): dropping attributes only (offset -1) takes
 * no page lock. Used when the next read must see a new size. */
void fs_notify_inval_attr_now(struct fs_notify *notify, uint64_t ino);

#endif
