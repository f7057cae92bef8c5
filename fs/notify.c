/* notify.c - see notify.h. */
#include "config.h"

#include <errno.h>
#include <string.h>

#include "log.h"
#include "notify.h"

struct notify_event {
	uint64_t ino;
	char *name;	/* set: drop the entry @name of directory @ino */
	uint64_t child; /* with @name: the entry was deleted (its inode) */
	gboolean stop;
};

struct fs_notify {
	struct fuse_session *se;
	GAsyncQueue *queue; /* of struct notify_event * (internally locked) */
	GThread *thread;
};

static void notify_event_free(struct notify_event *ev)
{
	g_free(ev->name);
	g_free(ev);
}

static gpointer notify_thread(gpointer data)
{
	struct fs_notify *n = data;

	for (;;) {
		struct notify_event *ev = g_async_queue_pop(n->queue);
		int ret;

		if (ev->stop) {
			notify_event_free(ev);
			break;
		}
		if (ev->name != NULL && ev->child != 0)
			ret = fuse_lowlevel_notify_delete(
				n->se, (fuse_ino_t)ev->ino,
				(fuse_ino_t)ev->child, ev->name,
				strlen(ev->name));
		else if (ev->name != NULL)
			ret = fuse_lowlevel_notify_inval_entry(
				n->se, (fuse_ino_t)ev->ino, ev->name,
				strlen(ev->name));
		else
			ret = fuse_lowlevel_notify_inval_inode(
				n->se, (fuse_ino_t)ev->ino, 0, 0);
		/* ENOENT: the kernel did not have it cached; fine. */
		if (ret != 0 && ret != -ENOENT)
			imapfs_debug("kernel invalidation failed: %s",
				     g_strerror(-ret));
		notify_event_free(ev);
	}
	return NULL;
}

struct fs_notify *fs_notify_new(struct fuse_session *se)
{
	struct fs_notify *n = g_new0(struct fs_notify, 1);

	n->se = se;
	n->queue = g_async_queue_new();
	n->thread = g_thread_new("imapfs-notify", notify_thread, n);
	return n;
}

void fs_notify_free(struct fs_notify *notify)
{
	struct notify_event *ev;

	if (notify == NULL)
		return;
	ev = g_new0(struct notify_event, 1);
	ev->stop = TRUE;
	g_async_queue_push_front(notify->queue, ev);
	g_thread_join(notify->thread);
	while ((ev = g_async_queue_try_pop(notify->queue)) != NULL)
		notify_event_free(ev);
	g_async_queue_unref(notify->queue);
	g_free(notify);
}

void fs_notify_inval_inode(struct fs_notify *notify, uint64_t ino)
{
	struct notify_event *ev;

	if (notify == NULL)
		return;
	ev = g_new0(struct notify_event, 1);

	ev->ino = ino;
	g_async_queue_push(notify->queue, ev);
}

void fs_notify_inval_attr_now(struct fs_notify *notify, uint64_t ino)
{
	int ret = fuse_lowlevel_notify_inval_inode(notify->se, (fuse_ino_t)ino,
						   -1, 0);

	if (ret != 0 && ret != -ENOENT)
		imapfs_debug("kernel attribute invalidation failed: %s",
			     g_strerror(-ret));
}

/* Queues the invalidation of entry @name of @parent; with @child (not 0)
 * as a deletion of that inode (fuse_lowlevel_notify_delete). */
static void notify_push_entry(struct fs_notify *notify, uint64_t parent,
			      uint64_t child, const char *name)
{
	struct notify_event *ev;

	if (notify == NULL)
		return;
	ev = g_new0(struct notify_event, 1);
	ev->ino = parent;
	ev->child = child;
	ev->name = g_strdup(name);
	g_async_queue_push(notify->queue, ev);
}

void fs_notify_inval_entry(struct fs_notify *notify, uint64_t parent,
			   const char *name)
{
	notify_push_entry(notify, parent, 0, name);
}

void fs_notify_delete(struct fs_notify *notify, uint64_t parent, uint64_t child,
		      const char *name)
{
	notify_push_entry(notify, parent, child, name);
}
