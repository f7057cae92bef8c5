/* wops.c - the write path's FUSE operations; see wops.h and
 * docs/SEMANTICS.md ("Writing").
 *
 * Pattern: check what the names are (fs_tree_peek, a copy), run the IMAP
 * change without any tree lock (non-idempotent commands through
 * imap_pool_run_once(); when the connection died before the answer, ask
 * the server what happened), then apply the change to the tree as a
 * delta and reply.
 *
 * Every handler that may talk to the server runs on a network thread
 * (defer.h) within one deadline for the whole syscall; writes into the
 * spool and scratch-file operations are answered in the FUSE worker.
 * Requests about one node go through fs_defer_run_node() (also those
 * answered from memory), so they keep their order: FLUSH, FSYNC,
 * SETATTR, setxattr, RELEASE, and a rename or unlink of a file whose
 * commit runs. WRITE and open are answered at once: write(2) returns
 * before the close or fsync that follows it sends FLUSH or FSYNC, and
 * neither changes what a running commit depends on.
 * An interrupt (FUSE_INTERRUPT) ends a request with EINTR only before a
 * non-idempotent command was sent (reqctx.h); after that the command
 * completes or meets the deadline and its outcome is resolved.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>

#include "commit.h"
#include "acl.h"
#include "imap-error.h"
#include "log.h"
#include "mutate.h"
#include "namemap.h"
#include "watch.h"
#include "wops.h"

static struct imapfs *wops_fs(fuse_req_t req)
{
	return fuse_req_userdata(req);
}

static struct fs_handle *wops_handle(const struct fuse_file_info *fi)
{
	return fi != NULL ? (struct fs_handle *)(uintptr_t)fi->fh : NULL;
}

/* A deferred request's arguments (each handler uses its own). */
struct wops_args {
	fuse_ino_t ino, newparent;
	char *name, *newname;
	int num; /* setattr's to_set, rename's flags */
	struct stat attr;
	struct fuse_file_info fi;
	gboolean has_fi;
};

static struct wops_args *wops_args_new(fuse_ino_t ino, const char *name,
				       const struct fuse_file_info *fi)
{
	struct wops_args *a = g_new0(struct wops_args, 1);

	a->ino = ino;
	a->name = g_strdup(name);
	if (fi != NULL) {
		a->fi = *fi;
		a->has_fi = TRUE;
	}
	return a;
}

static void wops_args_free(gpointer p)
{
	struct wops_args *a = p;

	g_free(a->name);
	g_free(a->newname);
	g_free(a);
}

static struct fuse_file_info *wops_args_fi(struct wops_args *a)
{
	return a->has_fi ? &a->fi : NULL;
}

static void wops_reply_entry(struct imapfs *fs, fuse_req_t req,
			     const struct fs_entry *e,
			     struct fuse_file_info *fi)
{
	struct fuse_entry_param p;

	memset(&p, 0, sizeof(p));
	p.ino = e->ino;
	p.generation = 1;
	p.attr = e->st;
	p.attr_timeout = fs->attr_timeout;
	p.entry_timeout = fs->entry_timeout;
	if (fi != NULL) {
		if (fuse_reply_create(req, &p, fi) != 0)
			fs_tree_forget(fs->tree, e->ino, 1);
	} else if (fuse_reply_entry(req, &p) != 0) {
		fs_tree_forget(fs->tree, e->ino, 1);
	}
}

/* 0 if the folder rights @rights (MYRIGHTS, NULL: unrestricted) hold
 * every right in @need, else -EACCES: refused before anything is sent. */
static int wops_may(const char *rights, const char *need)
{
	for (; *need != '\0'; need++) {
		if (!imap_acl_has_right(rights, *need))
			return -EACCES;
	}
	return 0;
}

static int wops_check_name(const char *name)
{
	if (strlen(name) > 255)
		return -ENAMETOOLONG;
	return 0;
}

/* Reading and filling shadow copies */

void fs_wops_read_spool(fuse_req_t req, struct fs_spool *sp, size_t size,
			off_t off)
{
	char *buf = g_malloc(size);
	gssize n = fs_spool_read(sp, buf, size, (uint64_t)off);

	if (n < 0)
		fuse_reply_err(req, (int)-n);
	else
		fuse_reply_buf(req, buf, (size_t)n);
	g_free(buf);
}

struct wops_fill_ctx {
	const struct fs_entry *e;
	struct fs_spool *sp;
	int error;
};

static void wops_fill_data(void *user_data, uint64_t offset, const void *data,
			   size_t len)
{
	struct wops_fill_ctx *c = user_data;
	gssize n = fs_spool_fill(c->sp, data, len, offset);

	if (n < 0 && c->error == 0)
		c->error = (int)n;
}

static gboolean wops_fill_fn(struct imap_session *s, void *user_data,
			     GError **error)
{
	struct wops_fill_ctx *c = user_data;

	/* A retry starts over: the file is rewritten from 0. */
	fs_spool_truncate(c->sp, 0);
	c->error = 0;
	return imap_session_fetch_body(s, c->e->mailbox, c->e->uidvalidity,
				       c->e->uid, 0, 0, wops_fill_data, c, NULL,
				       error);
}

/* The shadow copy for writing to message @e: the one it has, or a new
 * one holding the message's bytes (none with @trunc). */
static struct fs_spool *wops_shadow(struct imapfs *fs, const struct fs_entry *e,
				    gboolean trunc, int *errno_r)
{
	struct fs_spool *sp, *inuse;
	char *label;

	if (e->spool != NULL)
		return fs_spool_ref(e->spool);
	label = g_strdup_printf("%s/%s", e->mailbox, e->name);
	sp = fs_spool_new(fs->spool_dir, label, errno_r);
	g_free(label);
	if (sp == NULL)
		return NULL;
	if (!trunc) {
		struct wops_fill_ctx c = {.e = e, .sp = sp};
		GError *err = NULL;

		if (!imap_pool_run(fs->pool, e->mailbox, wops_fill_fn, &c,
				   &err)) {
			*errno_r = -fs_errno_from_error(err);
			imapfs_warning("cannot open %s UID %u for writing: %s",
				       e->mailbox, e->uid, err->message);
			g_error_free(err);
			fs_spool_unref(sp);
			return NULL;
		}
		if (c.error != 0) {
			*errno_r = c.error;
			fs_spool_unref(sp);
			return NULL;
		}
	}
	/* The bytes it holds now are the server's: nothing to send. */
	fs_spool_set_times(sp, e->st.st_atime, e->st.st_mtime);
	fs_spool_mark_sent(sp, fs_spool_changes(sp));
	fs_spool_set_keep(sp, FALSE);
	inuse = fs_tree_attach_shadow(fs->tree, e->ino, sp);
	fs_spool_unref(sp);
	if (inuse == NULL)
		*errno_r = -ENOENT;
	return inuse;
}

/* Opening and creating */

static void wops_open_body(fuse_req_t req, fuse_ino_t ino,
			   struct fuse_file_info *fi);

static void wops_open_deferred(fuse_req_t req, void *args)
{
	struct wops_args *a = args;

	wops_open_body(req, a->ino, &a->fi);
}

void fs_wops_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct imapfs *fs = wops_fs(req);
	gboolean fill = FALSE;
	struct fs_entry e;

	/* Opening a stored message for writing without O_TRUNC fetches its
	 * bytes into a shadow copy: the server. */
	if (!fs->read_only && (fi->flags & O_ACCMODE) != O_RDONLY &&
	    !(fi->flags & O_TRUNC) && fs_tree_get(fs->tree, ino, &e) == 0) {
		fill = !e.is_dir && !e.is_local && e.spool == NULL;
		fs_entry_clear(&e);
	}
	/* Not ordered with the node's other requests: an open changes
	 * nothing a commit of the file depends on, and reading a file
	 * whose commit waits for the server is answered from memory. */
	if (!fill) {
		wops_open_body(req, ino, fi);
		return;
	}
	fs_defer_run(fs->defer, req, wops_open_deferred,
		     wops_args_new(ino, NULL, fi), wops_args_free);
}

static void wops_open_body(fuse_req_t req, fuse_ino_t ino,
			   struct fuse_file_info *fi)
{
	struct imapfs *fs = wops_fs(req);
	gboolean writable = (fi->flags & O_ACCMODE) != O_RDONLY;
	gboolean trunc = (fi->flags & O_TRUNC) != 0;
	struct fs_handle *h;
	struct fs_spool *sp;
	struct fs_entry e;
	int r = fs_tree_get(fs->tree, ino, &e);

	if (r < 0) {
		fuse_reply_err(req, -r);
		return;
	}
	if (e.is_dir) {
		fs_entry_clear(&e);
		fuse_reply_err(req, EISDIR);
		return;
	}
	if (!writable && !trunc) {
		/* A message's bytes never change under its inode. */
		fi->fh = 0;
		fi->keep_cache = e.spool == NULL;
		/* Nothing to send at close: no FLUSH round trip. */
		fi->noflush = 1;
		fs_entry_clear(&e);
		fuse_reply_open(req, fi);
		return;
	}
	if (fs->read_only) {
		fs_entry_clear(&e);
		fuse_reply_err(req, EROFS);
		return;
	}
	/* Replacing a message means APPEND and EXPUNGE in its folder. */
	r = e.is_local ? 0 : wops_may(e.rights, "ite");
	if (r < 0) {
		fs_entry_clear(&e);
		fuse_reply_err(req, -r);
		return;
	}
	sp = e.is_local ? fs_spool_ref(e.spool)
			: wops_shadow(fs, &e, trunc, &r);
	fs_entry_clear(&e);
	if (sp == NULL) {
		fuse_reply_err(req, -r);
		return;
	}
	if (trunc && (r = fs_spool_truncate(sp, 0)) < 0) {
		fs_spool_unref(sp);
		fuse_reply_err(req, -r);
		return;
	}
	h = g_new0(struct fs_handle, 1);
	h->spool = sp;
	h->writable = writable;
	fi->fh = (uint64_t)(uintptr_t)h;
	fi->keep_cache = 0;
	if (fuse_reply_open(req, fi) != 0) {
		fs_spool_unref(sp);
		g_free(h);
	}
}

static int wops_new_local(struct imapfs *fs, fuse_ino_t parent,
			  const char *name, mode_t mode, struct fs_entry *e,
			  struct fs_spool **sp_r)
{
	struct fs_entry dir;
	struct fs_spool *sp;
	char *label;
	int r = wops_check_name(name);

	if (r < 0)
		return r;
	if (fs->read_only)
		return -EROFS;
	r = fs_tree_get(fs->tree, parent, &dir);
	if (r < 0)
		return r;
	r = wops_may(dir.rights, "i");
	if (r < 0) {
		fs_entry_clear(&dir);
		return r;
	}
	label = g_strdup_printf("%s/%s", dir.mailbox ? dir.mailbox : "", name);
	fs_entry_clear(&dir);
	sp = fs_spool_new(fs->spool_dir, label, &r);
	g_free(label);
	if (sp == NULL)
		return r;
	fs_spool_set_mode(sp, mode & 07777);
	r = fs_tree_add_local(fs->tree, parent, name, sp, e);
	if (r < 0) {
		fs_spool_unref(sp);
		return r;
	}
	*sp_r = sp;
	return 0;
}

void fs_wops_create(fuse_req_t req, fuse_ino_t parent, const char *name,
		    mode_t mode, struct fuse_file_info *fi)
{
	struct imapfs *fs = wops_fs(req);
	struct fs_spool *sp = NULL;
	struct fs_handle *h;
	struct fs_entry e;
	int r = wops_new_local(fs, parent, name, mode, &e, &sp);

	if (r < 0) {
		fuse_reply_err(req, -r);
		return;
	}
	h = g_new0(struct fs_handle, 1);
	h->spool = sp;
	h->writable = (fi->flags & O_ACCMODE) != O_RDONLY;
	fi->fh = (uint64_t)(uintptr_t)h;
	fi->keep_cache = 0;
	wops_reply_entry(fs, req, &e, fi);
	fs_entry_clear(&e);
}

void fs_wops_mknod(fuse_req_t req, fuse_ino_t parent, const char *name,
		   mode_t mode, dev_t rdev)
{
	struct imapfs *fs = wops_fs(req);
	struct fs_spool *sp = NULL;
	struct fs_entry e;
	int r;

	if (fs->read_only) {
		fuse_reply_err(req, EROFS);
		return;
	}
	/* Only regular files exist here; mknod(2) says EPERM for a file
	 * system that does not support the type. */
	if (!S_ISREG(mode)) {
		fuse_reply_err(req, EPERM);
		return;
	}
	r = wops_new_local(fs, parent, name, mode, &e, &sp);
	if (r < 0) {
		fuse_reply_err(req, -r);
		return;
	}
	fs_spool_unref(sp);
	wops_reply_entry(fs, req, &e, NULL);
	fs_entry_clear(&e);
}

/* Writing, committing */

void fs_wops_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size,
		   off_t off, struct fuse_file_info *fi)
{
	struct fs_handle *h = wops_handle(fi);
	gssize n;

	if (h == NULL || !h->writable) {
		fuse_reply_err(req, wops_fs(req)->read_only ? EROFS : EBADF);
		return;
	}
	if (h->copied) {
		/* Its content is the server's copy, not in the spool file:
		 * writing would send a truncated message. */
		imapfs_warning("a file stored by UID COPY cannot be written "
			       "through the same open; open it again");
		fuse_reply_err(req, EIO);
		return;
	}
	if (off < 0) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	/* Past the server's APPENDLIMIT the message could never be stored:
	 * say so now. (Scratch files never go to the server, but may become
	 * messages by a rename; they are held to the same bound.) */
	if (wops_fs(req)->append_limit != 0 &&
	    (uint64_t)off + size > wops_fs(req)->append_limit) {
		fuse_reply_err(req, EFBIG);
		return;
	}
	n = fs_spool_write(h->spool, buf, size, (uint64_t)off);
	if (n < 0)
		fuse_reply_err(req, (int)-n);
	else
		fuse_reply_write(req, (size_t)n);
}

/* Sends @sp, the bytes of @ino, if @ino is a message (a new one with a
 * message name, or a message's shadow) and has unsent changes. */
static int wops_commit_ino(struct imapfs *fs, uint64_t ino, struct fs_spool *sp)
{
	struct fs_commit_target t = {0};
	struct fs_entry e;
	int r = fs_tree_get(fs->tree, ino, &e);

	if (r < 0)
		return 0; /* removed meanwhile: nothing to send */
	if (e.is_local && !fs_commit_is_message_name(e.name)) {
		fs_entry_clear(&e);
		return 0; /* a scratch file */
	}
	t.dir = e.parent;
	if (e.is_local) {
		t.alias = e.name;
	} else {
		t.replace_uid = e.uid;
		t.flags = e.flags;
		t.internaldate = e.st.st_mtime;
		t.alias = e.name;
	}
	r = fs_commit(fs, ino, sp, &t);
	fs_entry_clear(&e);
	return r;
}

/* TRUE if committing @sp, the bytes of @ino, cannot need the server:
 * nothing unsent, or a scratch file. */
static gboolean wops_commit_is_local(struct imapfs *fs, uint64_t ino,
				     struct fs_spool *sp)
{
	struct fs_entry e;
	gboolean local;

	if (!fs_spool_dirty(sp) || fs_tree_get(fs->tree, ino, &e) < 0)
		return TRUE;
	local = e.is_local && !fs_commit_is_message_name(e.name);
	fs_entry_clear(&e);
	return local;
}

static void wops_flush_deferred(fuse_req_t req, void *args)
{
	struct wops_args *a = args;
	struct fs_handle *h = wops_handle(&a->fi);

	fuse_reply_err(req, -wops_commit_ino(wops_fs(req), a->ino, h->spool));
}

/* close(2) returns the commit's result: 0 once the server has the
 * message; EINTR if the caller was interrupted before the APPEND was
 * sent (nothing sent); EIO and the like on failure. On failure the file
 * keeps its data in the mount (a local file, or the message's shadow),
 * still unsent: the next close of a writable open, fsync or rename
 * sends it. */
void fs_wops_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct imapfs *fs = wops_fs(req);
	struct fs_handle *h = wops_handle(fi);

	/* Nothing is ever dirty on a read-only mount, whose opens the
	 * kernel handles alone: ENOSYS makes it stop sending FLUSH at all
	 * (one round trip less per close). */
	if (wops_fs(req)->read_only) {
		fuse_reply_err(req, ENOSYS);
		return;
	}
	if (h == NULL || !h->writable) {
		fuse_reply_err(req, 0);
		return;
	}
	fs_defer_run_node(fs->defer, req, ino,
			  wops_commit_is_local(fs, ino, h->spool),
			  wops_flush_deferred, wops_args_new(ino, NULL, fi),
			  wops_args_free);
}

static void wops_fsync_deferred(fuse_req_t req, void *args)
{
	struct wops_args *a = args;
	struct fs_handle *h = wops_handle(&a->fi);
	int r = wops_commit_ino(wops_fs(req), a->ino, h->spool);

	if (r == 0)
		r = fs_spool_sync(h->spool);
	fuse_reply_err(req, -r);
}

void fs_wops_fsync(fuse_req_t req, fuse_ino_t ino, int datasync,
		   struct fuse_file_info *fi)
{
	struct imapfs *fs = wops_fs(req);
	struct fs_handle *h = wops_handle(fi);

	if (h == NULL || !h->writable) {
		fuse_reply_err(req, 0);
		return;
	}
	fs_defer_run_node(fs->defer, req, ino,
			  wops_commit_is_local(fs, ino, h->spool),
			  wops_fsync_deferred, wops_args_new(ino, NULL, fi),
			  wops_args_free);
}

/* Once @sp, the bytes of message @ino, is on the server (nothing unsent),
 * the message reads from the server again: the stored bytes may differ
 * (bare LF made CRLF). */
static void wops_detach_sent(struct imapfs *fs, fuse_ino_t ino,
			     struct fs_spool *sp)
{
	struct fs_entry e;

	if (fs_spool_dirty(sp) || fs_tree_get(fs->tree, ino, &e) != 0)
		return;
	if (!e.is_local && e.spool == sp) {
		fs_tree_detach_shadow(fs->tree, ino, sp);
		fs_bodycache_forget(fs->cache, ino);
		if (fs->notify != NULL)
			fs_notify_inval_inode(fs->notify, ino);
	}
	fs_entry_clear(&e);
}

static void wops_release_deferred(fuse_req_t req, void *args)
{
	struct wops_args *a = args;
	struct fs_handle *h = wops_handle(&a->fi);

	wops_detach_sent(wops_fs(req), a->ino, h->spool);
	fs_spool_unref(h->spool);
	g_free(h);
	fuse_reply_err(req, 0);
}

/* Answered from memory, but after every earlier request of the node:
 * never while a commit of the file still runs. */
void fs_wops_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	if (wops_handle(fi) == NULL) {
		fuse_reply_err(req, 0);
		return;
	}
	fs_defer_run_node(wops_fs(req)->defer, req, ino, TRUE,
			  wops_release_deferred, wops_args_new(ino, NULL, fi),
			  wops_args_free);
}

/* Attributes */

/* Whether setattr(@attr, @to_set) gives the stored message @e (not open
 * for writing) an explicit mtime other than its INTERNALDATE: GIO and
 * file managers set the date by path after close, when the copy is
 * already stored. ("touch" without a date, UTIME_NOW, is not one.) */
static gboolean wops_is_redate(const struct fs_entry *e,
			       const struct fs_handle *h,
			       const struct stat *attr, int to_set)
{
	return (to_set & FUSE_SET_ATTR_MTIME) &&
	       !(to_set & FUSE_SET_ATTR_MTIME_NOW) &&
	       !(to_set & FUSE_SET_ATTR_SIZE) && h == NULL && !e->is_dir &&
	       !e->is_local && e->spool == NULL && e->uid != 0 &&
	       attr->st_mtim.tv_sec != e->st.st_mtime;
}

/* Stores message @e again with INTERNALDATE @mtime (IMAP cannot change
 * the date of a stored message): its bytes and flags are APPENDed with
 * the new date, then the old UID is expunged, as for an edit; the name
 * resolves to the new message. */
static int wops_redate(struct imapfs *fs, const struct fs_entry *e,
		       gint64 mtime)
{
	struct fs_spool *sp;
	int r = wops_may(e->rights, "ite");

	if (r < 0)
		return r;
	sp = wops_shadow(fs, e, FALSE, &r);
	if (sp == NULL)
		return r;
	fs_spool_set_times(sp, -1, mtime);
	fs_spool_touch(sp);
	r = wops_commit_ino(fs, e->ino, sp);
	wops_detach_sent(fs, e->ino, sp);
	fs_spool_unref(sp);
	return r;
}

static void wops_setattr_body(fuse_req_t req, fuse_ino_t ino, struct stat *attr,
			      int to_set, struct fuse_file_info *fi);

static void wops_setattr_deferred(fuse_req_t req, void *args)
{
	struct wops_args *a = args;

	wops_setattr_body(req, a->ino, &a->attr, a->num, wops_args_fi(a));
}

/* TRUE if setattr(@attr, @to_set) of @ino through @h (may be NULL) needs
 * the server: a truncate by path of a message (a commit, and the shadow
 * copy's bytes), or a new date for a stored message. */
static gboolean wops_setattr_needs_server(struct imapfs *fs, fuse_ino_t ino,
					  const struct stat *attr, int to_set,
					  const struct fs_handle *h)
{
	struct fs_entry e;
	gboolean net;

	if (fs->read_only || fs_tree_get(fs->tree, ino, &e) < 0)
		return FALSE;
	net = ((to_set & FUSE_SET_ATTR_SIZE) && h == NULL && !e.is_dir &&
	       !(e.is_local && !fs_commit_is_message_name(e.name))) ||
	      wops_is_redate(&e, h, attr, to_set);
	fs_entry_clear(&e);
	return net;
}

void fs_wops_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr,
		     int to_set, struct fuse_file_info *fi)
{
	struct imapfs *fs = wops_fs(req);
	struct wops_args *a = wops_args_new(ino, NULL, fi);

	a->attr = *attr;
	a->num = to_set;
	fs_defer_run_node(fs->defer, req, ino,
			  !wops_setattr_needs_server(fs, ino, attr, to_set,
						     wops_handle(fi)),
			  wops_setattr_deferred, a, wops_args_free);
}

static void wops_setattr_body(fuse_req_t req, fuse_ino_t ino, struct stat *attr,
			      int to_set, struct fuse_file_info *fi)
{
	struct imapfs *fs = wops_fs(req);
	struct fs_handle *h = wops_handle(fi);
	struct fs_spool *sp = NULL;
	struct fs_entry e;
	int r = fs_tree_get(fs->tree, ino, &e);

	if (r < 0) {
		fuse_reply_err(req, -r);
		return;
	}
	if (fs->read_only) {
		r = -EROFS;
		goto out;
	}
	/* Owner and mode: the current values are fine, changes are not
	 * (local files keep a mode of their own until they are sent). */
	if (((to_set & FUSE_SET_ATTR_UID) && attr->st_uid != e.st.st_uid) ||
	    ((to_set & FUSE_SET_ATTR_GID) && attr->st_gid != e.st.st_gid)) {
		r = -EPERM;
		goto out;
	}
	if (to_set & FUSE_SET_ATTR_MODE) {
		if (e.is_local)
			fs_spool_set_mode(e.spool, attr->st_mode);
		else if ((attr->st_mode & 07777) != (e.st.st_mode & 07777)) {
			r = -EPERM;
			goto out;
		}
	}
	if (to_set & FUSE_SET_ATTR_SIZE) {
		if (e.is_dir) {
			r = -EISDIR;
			goto out;
		}
		sp = h != NULL ? fs_spool_ref(h->spool)
		     : e.spool != NULL
			     ? fs_spool_ref(e.spool)
			     : wops_shadow(fs, &e, attr->st_size == 0, &r);
		if (sp == NULL)
			goto out;
		r = fs_spool_truncate(sp, (uint64_t)attr->st_size);
		if (r < 0)
			goto out;
		/* truncate(2) by path: no close will come to send it. */
		if (h == NULL) {
			r = wops_commit_ino(fs, ino, sp);
			if (r < 0)
				goto out;
		}
	}
	if (wops_is_redate(&e, h, attr, to_set)) {
		r = wops_redate(fs, &e, attr->st_mtim.tv_sec);
		if (r < 0)
			goto out;
	} else if ((to_set & (FUSE_SET_ATTR_MTIME | FUSE_SET_ATTR_ATIME)) &&
		   (e.is_local || e.spool != NULL)) {
		/* Kept, and used as INTERNALDATE when the file is sent. On
		 * a message already stored, times cannot change: ignored. */
		gint64 now = g_get_real_time() / G_USEC_PER_SEC;
		gint64 at = -1, mt = -1;

		if (to_set & FUSE_SET_ATTR_ATIME)
			at = (to_set & FUSE_SET_ATTR_ATIME_NOW)
				     ? now
				     : attr->st_atim.tv_sec;
		if (to_set & FUSE_SET_ATTR_MTIME)
			mt = (to_set & FUSE_SET_ATTR_MTIME_NOW)
				     ? now
				     : attr->st_mtim.tv_sec;
		fs_spool_set_times(e.spool != NULL ? e.spool : sp, at, mt);
	}
out:
	fs_spool_unref(sp);
	fs_entry_clear(&e);
	if (r < 0) {
		fuse_reply_err(req, -r);
		return;
	}
	r = fs_tree_get(fs->tree, ino, &e);
	if (r < 0) {
		fuse_reply_err(req, -r);
		return;
	}
	fuse_reply_attr(req, &e.st, fs->attr_timeout);
	fs_entry_clear(&e);
}

/* Server names of directories */

/* The server's name for the mailbox @name in directory @parent, or NULL
 * with a negative errno (-EINVAL: not a possible mailbox name; -EPERM:
 * no mailbox can be made there). */
static char *wops_server_name(struct imapfs *fs, fuse_ino_t parent,
			      const char *name, int *errno_r)
{
	char *server = NULL;

	*errno_r = fs_tree_child_server_name(fs->tree, parent, name, &server);
	return *errno_r == 0 ? server : NULL;
}

struct wops_box_ctx {
	const char *name, *to;
	int op; /* 0 create, 1 delete, 2 rename, 3 status */
	struct imap_mailbox_status status;
};

static gboolean wops_box_fn(struct imap_session *s, void *user_data,
			    GError **error)
{
	struct wops_box_ctx *c = user_data;

	switch (c->op) {
	case 0:
		return imap_session_create(s, c->name, error);
	case 1:
		return imap_session_delete(s, c->name, error);
	case 2:
		return imap_session_rename(s, c->name, c->to, error);
	default:
		return imap_session_status(s, c->name, &c->status, error);
	}
}

/* Before a RENAME or DELETE of @mailbox (and the STATUS that decides
 * it): the live view keeps off it (watch.h says why), and so do the
 * pool's other sessions (pool.h: Dovecot cuts off a session whose
 * selected mailbox goes, and a STATUS there answers from its old view).
 * Returns 0 or a negative errno (EBUSY: a request that may have it
 * selected did not end in time); pair a 0 with wops_unhold(). */
static int wops_hold(struct imapfs *fs, const char *mailbox)
{
	GError *err = NULL;
	int r;

	fs_watch_hold(fs->watch, mailbox);
	if (imap_pool_hold(fs->pool, mailbox, &err))
		return 0;
	fs_watch_release(fs->watch, mailbox);
	r = -fs_errno_from_error(err);
	imapfs_warning("%s: %s", mailbox, err->message);
	g_error_free(err);
	return r;
}

static void wops_unhold(struct imapfs *fs, const char *mailbox)
{
	imap_pool_release_hold(fs->pool, mailbox);
	fs_watch_release(fs->watch, mailbox);
}

/* Runs a mailbox command; returns 0 or a negative errno. */
static int wops_box(struct imapfs *fs, int op, const char *name, const char *to,
		    struct imap_mailbox_status *status_r)
{
	struct wops_box_ctx c = {.name = name, .to = to, .op = op};
	GError *err = NULL;
	gboolean ok;
	int r;

	ok = op == 3 ? imap_pool_run(fs->pool, NULL, wops_box_fn, &c, &err)
		     : imap_pool_run_once(fs->pool, NULL, wops_box_fn, &c,
					  &err);

	if (ok) {
		if (status_r != NULL)
			*status_r = c.status;
		return 0;
	}
	r = -fs_errno_from_error(err);
	if (op != 3)
		imapfs_warning("%s %s: %s",
			       op == 0	 ? "CREATE"
			       : op == 1 ? "DELETE"
					 : "RENAME",
			       name, err->message);
	g_error_free(err);
	return r;
}

/* What @name in @parent is, for a change of it: the fs_name_kind (with
 * @e filled, to clear) or -EROFS, -ENOENT, -ENOTDIR. */
static int wops_peek_existing(struct imapfs *fs, fuse_ino_t parent,
			      const char *name, struct fs_entry *e)
{
	int r;

	if (fs->read_only)
		return -EROFS;
	r = fs_tree_peek(fs->tree, parent, name, e);
	return r == FS_NAME_NONE ? -ENOENT : r;
}

static gboolean wops_is_inbox(const char *mailbox)
{
	return mailbox != NULL && g_ascii_strcasecmp(mailbox, "INBOX") == 0;
}

static void wops_mkdir_body(fuse_req_t req, fuse_ino_t parent,
			    const char *name);

static void wops_mkdir_deferred(fuse_req_t req, void *args)
{
	struct wops_args *a = args;

	wops_mkdir_body(req, a->ino, a->name);
}

void fs_wops_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name,
		   mode_t mode)
{
	struct imapfs *fs = wops_fs(req);

	/* What is refused at once is refused here; the rest is a CREATE. */
	if (fs->read_only || name[0] == '.' || wops_check_name(name) < 0) {
		wops_mkdir_body(req, parent, name);
		return;
	}
	fs_defer_run(fs->defer, req, wops_mkdir_deferred,
		     wops_args_new(parent, name, NULL), wops_args_free);
}

static void wops_mkdir_body(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct imapfs *fs = wops_fs(req);
	struct fs_entry e;
	char *mailbox;
	int r = wops_check_name(name);

	if (r == 0 && fs->read_only)
		r = -EROFS;
	/* File-manager trash and settings directories (.Trash-1000,
	 * .directory) must not become mailboxes: EPERM makes GIO and KIO
	 * fall back (delete instead of trash). */
	if (r == 0 && name[0] == '.')
		r = -EPERM;
	if (r == 0 && fs_tree_peek(fs->tree, parent, name, &e) > 0) {
		fs_entry_clear(&e);
		r = -EEXIST;
	}
	if (r < 0) {
		fuse_reply_err(req, -r);
		return;
	}
	if (fs_tree_get(fs->tree, parent, &e) == 0) {
		r = e.mailbox != NULL ? wops_may(e.rights, "k") : 0;
		fs_entry_clear(&e);
	}
	mailbox = r == 0 ? wops_server_name(fs, parent, name, &r) : NULL;
	if (mailbox != NULL)
		r = wops_box(fs, 0, mailbox, NULL, NULL);
	if (r == 0)
		r = fs_tree_add_dir(fs->tree, parent, name, mailbox, &e);
	g_free(mailbox);
	if (r < 0) {
		fuse_reply_err(req, -r);
		return;
	}
	wops_reply_entry(fs, req, &e, NULL);
	fs_entry_clear(&e);
}

static void wops_rmdir_body(fuse_req_t req, fuse_ino_t parent,
			    const char *name);

static void wops_rmdir_deferred(fuse_req_t req, void *args)
{
	struct wops_args *a = args;

	wops_rmdir_body(req, a->ino, a->name);
}

void fs_wops_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct imapfs *fs = wops_fs(req);
	struct fs_entry e;
	int r = wops_peek_existing(fs, parent, name, &e);
	gboolean net = FALSE;
	fuse_ino_t node = 0;

	if (r >= 0) {
		/* A mailbox: STATUS and DELETE. */
		net = r == FS_NAME_DIR && e.mailbox != NULL;
		node = e.ino;
		fs_entry_clear(&e);
	}
	fs_defer_run_node(fs->defer, req, node, !net, wops_rmdir_deferred,
			  wops_args_new(parent, name, NULL), wops_args_free);
}

static void wops_rmdir_body(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct imapfs *fs = wops_fs(req);
	struct imap_mailbox_status st;
	unsigned int nlocal, nsub;
	struct fs_entry e;
	int r = wops_peek_existing(fs, parent, name, &e);

	if (r < 0) {
		fuse_reply_err(req, -r);
		return;
	}
	if (r != FS_NAME_DIR) {
		r = -ENOTDIR;
		goto out;
	}
	if (wops_is_inbox(e.mailbox)) {
		r = -EBUSY;
		goto out;
	}
	r = wops_may(e.rights, "x");
	if (r < 0)
		goto out;
	fs_tree_dir_counts(fs->tree, e.ino, &nlocal, &nsub);
	if (nlocal > 0 || nsub > 0) {
		r = -ENOTEMPTY;
		goto out;
	}
	r = 0;
	if (e.mailbox != NULL && (r = wops_hold(fs, e.mailbox)) == 0) {
		/* Ask the server, not the cache. */
		if (e.selectable) {
			r = wops_box(fs, 3, e.mailbox, NULL, &st);
			if (r == 0 && st.exists > 0)
				r = -ENOTEMPTY;
		}
		if (r == 0)
			r = wops_box(fs, 1, e.mailbox, NULL, NULL);
		wops_unhold(fs, e.mailbox);
	}
	if (r == 0)
		fs_tree_remove_dir(fs->tree, parent, name);
out:
	fs_entry_clear(&e);
	fuse_reply_err(req, -r);
}

/* Removing and moving messages */

struct wops_msg_ctx {
	const char *mailbox, *dest;
	uint32_t uidvalidity, uid;
	int op;		    /* 0 expunge, 1 move, 2 state */
	gboolean flag_only; /* -o delete=flag: \Deleted, never an EXPUNGE */
	struct imap_copy_result result;
	gboolean exists;
	char *flags;	  /* state: the message's flags */
	gboolean kept;	  /* expunge: the server did not report it expunged */
	gboolean flagged; /* move: the original was only flagged */
};

static gboolean wops_msg_fn(struct imap_session *s, void *user_data,
			    GError **error)
{
	struct wops_msg_ctx *c = user_data;
	uint64_t modseq;

	switch (c->op) {
	case 0:
		return imap_session_expunge_uid(s, c->mailbox, c->uidvalidity,
						c->uid, c->flag_only, &c->kept,
						error);
	case 1:
		return imap_session_move(s, c->mailbox, c->uidvalidity, c->uid,
					 c->dest, c->flag_only, &c->result,
					 &c->flagged, error);
	default:
		g_clear_pointer(&c->flags, g_free);
		return imap_session_uid_state(s, c->mailbox, c->uidvalidity,
					      c->uid, &c->exists, &modseq,
					      &c->flags, error);
	}
}

/* What wops_msg_op() did to the message (or its original, for a move). */
enum {
	WOPS_MSG_GONE = 0,    /* expunged, or moved */
	WOPS_MSG_KEPT = 1,    /* expunge completed, the server keeps it */
	WOPS_MSG_FLAGGED = 2, /* only flagged \Deleted (-o delete=flag) */
};

/* The outcome of a command whose answer was lost, from the message's
 * state now (@c after an op 2): gone, or with -o delete=flag there with
 * \Deleted (which our STORE, sent only after a COPY succeeded, set).
 * Returns a WOPS_MSG_* or -EIO (still there as it was: unknown). */
static int wops_msg_settled(const struct wops_msg_ctx *c)
{
	if (!c->exists)
		return WOPS_MSG_GONE;
	if (c->flag_only && imap_flags_contain(c->flags, "\\Deleted"))
		return WOPS_MSG_FLAGGED;
	return -EIO;
}

/* Expunges (op 0) or moves (op 1) message @e; with @flag_only
 * (-o delete=flag) the removal (the original of a move without MOVE) is
 * only a STORE of \Deleted. Returns a WOPS_MSG_* or a negative errno
 * (-EPERM, sending nothing, when the server cannot remove one message
 * without UIDPLUS and @flag_only is not given); when the outcome was
 * unknown, the source's state decides. */
static int wops_msg_op(struct imapfs *fs, const struct fs_entry *e, int op,
		       const char *dest, gboolean flag_only,
		       struct imap_copy_result *result_r)
{
	struct wops_msg_ctx c = {.mailbox = e->mailbox,
				 .dest = dest,
				 .uidvalidity = e->uidvalidity,
				 .uid = e->uid,
				 .op = op,
				 .flag_only = flag_only};
	GError *err = NULL;
	int r;

	if (!flag_only && !fs->cap_uidplus && (op == 0 || !fs->cap_move)) {
		/* Never a bare EXPUNGE: it would purge other clients'
		 * \Deleted mail. */
		imapfs_warning("%s: the server lacks UIDPLUS, so a single "
			       "message cannot be removed safely (-o "
			       "delete=flag only flags it \\Deleted)",
			       e->mailbox);
		return -EPERM;
	}
	if (imap_pool_run_once(fs->pool, e->mailbox, wops_msg_fn, &c, &err)) {
		if (result_r != NULL)
			*result_r = c.result;
		if ((op == 0 && flag_only) || c.flagged)
			return WOPS_MSG_FLAGGED;
		return c.kept ? WOPS_MSG_KEPT : WOPS_MSG_GONE;
	}
	if (g_error_matches(err, IMAP_ERROR, IMAP_ERROR_UNKNOWN_OUTCOME)) {
		g_clear_error(&err);
		c.op = 2;
		if (fs_commit_ask(fs, e->mailbox, wops_msg_fn, &c, &err) &&
		    (r = wops_msg_settled(&c)) >= 0) {
			if (result_r != NULL)
				memset(result_r, 0, sizeof(*result_r));
			g_free(c.flags);
			return r;
		}
		g_clear_pointer(&c.flags, g_free);
		if (err == NULL) {
			imapfs_warning("%s UID %u: the connection was lost; "
				       "the message is still there",
				       e->mailbox, e->uid);
			return -EIO;
		}
	}
	r = -fs_errno_from_error(err);
	imapfs_warning("%s UID %u: %s", e->mailbox, e->uid, err->message);
	g_error_free(err);
	return r;
}

static char *wops_trash(struct imapfs *fs)
{
	char *t;

	g_mutex_lock(&fs->meta_lock);
	t = g_strdup(fs->trash_mailbox);
	g_mutex_unlock(&fs->meta_lock);
	return t;
}

/* Removes message @e from the server as -o delete= says: expunge, a move
 * to \Trash, or (flag) \Deleted only, after which it stays, hidden. */
static int wops_remove_msg(struct imapfs *fs, const struct fs_entry *e)
{
	gboolean flag = fs->delete_mode == FS_DELETE_FLAG;
	char *trash;
	int r = wops_may(e->rights, flag ? "t" : "te");

	if (r < 0)
		return r;
	trash = fs->delete_mode == FS_DELETE_TRASH ? wops_trash(fs) : NULL;
	if (trash != NULL && strcmp(trash, e->mailbox) != 0)
		r = wops_msg_op(fs, e, 1, trash, FALSE, NULL);
	else
		r = wops_msg_op(fs, e, 0, NULL, flag, NULL);
	g_free(trash);
	if (r == WOPS_MSG_GONE) {
		fs_tree_remove_msg(fs->tree, e->parent, e->uid);
		fs_bodycache_forget(fs->cache, e->ino);
	} else if (r == WOPS_MSG_FLAGGED) {
		/* Still on the server (and in the folder's count); an open
		 * file of it reads on. */
		fs_tree_flag_deleted(fs->tree, e->ino);
	}
	/* WOPS_MSG_KEPT: the server kept it (Gmail's All Mail): the unlink
	 * succeeded as far as IMAP goes, and the message stays listed, as
	 * it is. */
	return r > 0 ? 0 : r;
}

static void wops_unlink_body(fuse_req_t req, fuse_ino_t parent,
			     const char *name);

static void wops_unlink_deferred(fuse_req_t req, void *args)
{
	struct wops_args *a = args;

	wops_unlink_body(req, a->ino, a->name);
}

/* A stored message is removed on the server; a local file in the worker,
 * but after the requests of its node (a commit of it may run). */
void fs_wops_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct imapfs *fs = wops_fs(req);
	struct fs_entry e;
	int r = wops_peek_existing(fs, parent, name, &e);
	fuse_ino_t node = 0;

	if (r >= 0) {
		node = r != FS_NAME_DIR ? e.ino : 0;
		fs_entry_clear(&e);
	}
	fs_defer_run_node(fs->defer, req, node, r != FS_NAME_MSG,
			  wops_unlink_deferred,
			  wops_args_new(parent, name, NULL), wops_args_free);
}

static void wops_unlink_body(fuse_req_t req, fuse_ino_t parent,
			     const char *name)
{
	struct imapfs *fs = wops_fs(req);
	struct fs_entry e;
	int r = wops_peek_existing(fs, parent, name, &e);

	if (r < 0) {
		fuse_reply_err(req, -r);
		return;
	}
	if (r == FS_NAME_DIR)
		r = -EISDIR;
	else if (r == FS_NAME_LOCAL)
		r = fs_tree_remove_local(fs->tree, parent, name);
	else
		r = wops_remove_msg(fs, &e);
	fs_entry_clear(&e);
	fuse_reply_err(req, -r);
}

void fs_wops_symlink(fuse_req_t req, const char *link, fuse_ino_t parent,
		     const char *name)
{
	/* symlink(2): EPERM for a file system without symbolic links
	 * (Emacs then does without its .#file lock). */
	fuse_reply_err(req, wops_fs(req)->read_only ? EROFS : EPERM);
}

void fs_wops_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent,
		  const char *newname)
{
	/* link(2): EPERM for a file system without hard links (callers
	 * fall back to copying). */
	fuse_reply_err(req, wops_fs(req)->read_only ? EROFS : EPERM);
}

/* rename(2) of a directory: RENAME of its mailbox. */
static int wops_rename_dir(struct imapfs *fs, const struct fs_entry *src,
			   fuse_ino_t parent, const char *name,
			   fuse_ino_t newparent, const char *newname,
			   int dst_kind)
{
	char *from, *to;
	int r = 0;

	if (dst_kind != FS_NAME_NONE)
		return dst_kind == FS_NAME_DIR ? -EEXIST : -ENOTDIR;
	if (wops_is_inbox(src->mailbox))
		return -EBUSY;
	if (newname[0] == '.')
		return -EPERM;
	from = src->mailbox != NULL ? g_strdup(src->mailbox)
				    : wops_server_name(fs, parent, name, &r);
	if (from == NULL)
		return r;
	to = wops_server_name(fs, newparent, newname, &r);
	if (to != NULL && (r = wops_hold(fs, from)) == 0) {
		r = wops_box(fs, 2, from, to, NULL);
		wops_unhold(fs, from);
	}
	if (r == 0)
		r = fs_tree_move_dir(fs->tree, parent, name, newparent, newname,
				     to);
	g_free(from);
	g_free(to);
	return r;
}

/* rename(2) of a local file: a local move, or the commit of a message. */
static int wops_rename_local(struct imapfs *fs, const struct fs_entry *src,
			     fuse_ino_t parent, const char *name,
			     fuse_ino_t newparent, const char *newname,
			     int dst_kind, const struct fs_entry *dst)
{
	struct fs_commit_target t = {0};
	struct fs_spool_attr a;
	int r;

	if (dst_kind == FS_NAME_DIR)
		return -EISDIR;
	fs_spool_get_attr(src->spool, &a);
	g_free(a.flags);
	if (dst_kind == FS_NAME_MSG) {
		/* Over a message (gio save, sed -i, perl -i): replace it. */
		if (a.size == 0)
			return -EINVAL;
		t.dir = newparent;
		t.alias = newname;
		t.replace_uid = dst->uid;
		t.flags = dst->flags;
		t.internaldate = dst->st.st_mtime;
		fs_spool_set_label(src->spool, newname);
		r = fs_commit(fs, src->ino, src->spool, &t);
		goto sent;
	}
	if (!fs_commit_is_message_name(newname) || a.size == 0)
		return fs_tree_move_local(fs->tree, parent, name, newparent,
					  newname);
	/* A new message: store it first; only then does the name move. */
	t.dir = newparent;
	t.alias = newname;
	fs_spool_set_label(src->spool, newname);
	r = fs_commit(fs, src->ino, src->spool, &t);
	if (r == 0 && dst_kind == FS_NAME_LOCAL)
		fs_tree_remove_local(fs->tree, newparent, newname);
sent:
	/* No close follows a rename (rsync, mv, sed -i closed the file
	 * before): let go of the spool copy now, as release would. */
	if (r == 0)
		wops_detach_sent(fs, src->ino, src->spool);
	return r;
}

/* rename(2) of a message: a new name in its folder, or a MOVE. */
static int wops_rename_msg(struct imapfs *fs, const struct fs_entry *src,
			   fuse_ino_t parent, fuse_ino_t newparent,
			   const char *newname, int dst_kind,
			   const struct fs_entry *dst)
{
	struct imap_copy_result res = {0};
	struct fs_entry ndir;
	/* The target is another message's own name ("5.eml" in a folder
	 * that has a UID 5 too): UIDs collide by chance between folders,
	 * so "mv a/NNN.eml b/" must never replace b's messages. The moved one
	 * is listed by its new UID, and the name keeps its message. */
	gboolean taken =
		dst_kind == FS_NAME_MSG && strcmp(newname, dst->name) == 0;
	int r;

	if (dst_kind == FS_NAME_DIR)
		return -EISDIR;
	if (dst_kind == FS_NAME_MSG && dst->ino == src->ino)
		return 0;
	if (newparent == parent)
		return taken ? -EEXIST
			     : fs_tree_rename_msg(fs->tree, src->ino, newname);
	r = fs_tree_get(fs->tree, newparent, &ndir);
	if (r < 0)
		return r;
	if (ndir.mailbox == NULL || !ndir.selectable) {
		fs_entry_clear(&ndir);
		return -EPERM;
	}
	r = wops_may(src->rights, "te");
	if (r == 0)
		r = wops_may(ndir.rights, "i");
	if (r == 0) {
		fs_commit_own_begin(fs, ndir.mailbox);
		r = wops_msg_op(fs, src, 1, ndir.mailbox,
				fs->delete_mode == FS_DELETE_FLAG, &res);
		if (r >= 0)
			fs_tree_move_msg(fs->tree, src->ino, newparent,
					 res.uidvalidity, res.uid,
					 taken ? NULL : newname,
					 r == WOPS_MSG_FLAGGED);
		r = MIN(r, 0);
		fs_commit_own_end(fs, ndir.mailbox);
	}
	if (r == 0) {
		if (dst_kind == FS_NAME_LOCAL)
			fs_tree_remove_local(fs->tree, newparent, newname);
		/* The kernel will think the name is the moved inode now:
		 * make it ask again (this waits for the rename to finish,
		 * the kernel holds the directory meanwhile). */
		if (taken)
			fs_notify_inval_entry(fs->notify, newparent, newname);
	}
	fs_entry_clear(&ndir);
	return r;
}

static void wops_rename_body(fuse_req_t req, fuse_ino_t parent,
			     const char *name, fuse_ino_t newparent,
			     const char *newname, unsigned int flags);

static void wops_rename_deferred(fuse_req_t req, void *args)
{
	struct wops_args *a = args;

	wops_rename_body(req, a->ino, a->name, a->newparent, a->newname,
			 (unsigned int)a->num);
}

/* A rename needs the server for a folder (RENAME), a message moving to
 * another folder (MOVE) and a local file becoming a message (APPEND);
 * it runs after the other requests of the renamed node. */
void fs_wops_rename(fuse_req_t req, fuse_ino_t parent, const char *name,
		    fuse_ino_t newparent, const char *newname,
		    unsigned int flags)
{
	struct imapfs *fs = wops_fs(req);
	struct fs_entry src = {0}, dst = {0};
	gboolean net = FALSE;
	fuse_ino_t node = 0;
	int sk = fs->read_only ? -EROFS
			       : fs_tree_peek(fs->tree, parent, name, &src);
	int dk = sk > 0 ? fs_tree_peek(fs->tree, newparent, newname, &dst) : 0;
	struct wops_args *a;

	if (sk > 0) {
		node = src.ino;
		net = sk == FS_NAME_DIR ||
		      (sk == FS_NAME_LOCAL &&
		       (dk == FS_NAME_MSG ||
			fs_commit_is_message_name(newname))) ||
		      (sk == FS_NAME_MSG && newparent != parent);
		fs_entry_clear(&src);
	}
	if (dk > 0)
		fs_entry_clear(&dst);
	a = wops_args_new(parent, name, NULL);
	a->newparent = newparent;
	a->newname = g_strdup(newname);
	a->num = (int)flags;
	fs_defer_run_node(fs->defer, req, node, !net, wops_rename_deferred, a,
			  wops_args_free);
}

static void wops_rename_body(fuse_req_t req, fuse_ino_t parent,
			     const char *name, fuse_ino_t newparent,
			     const char *newname, unsigned int flags)
{
	struct imapfs *fs = wops_fs(req);
	struct fs_entry src = {0}, dst = {0};
	int sk, dk, r = wops_check_name(newname);

	if (r == 0 && fs->read_only)
		r = -EROFS;
	/* There is no atomic exchange of two mailbox entries. */
	if (r == 0 && (flags & ~RENAME_NOREPLACE) != 0)
		r = -EINVAL;
	if (r < 0) {
		fuse_reply_err(req, -r);
		return;
	}
	sk = fs_tree_peek(fs->tree, parent, name, &src);
	if (sk <= 0) {
		fuse_reply_err(req, sk == 0 ? ENOENT : -sk);
		return;
	}
	dk = fs_tree_peek(fs->tree, newparent, newname, &dst);
	if (dk < 0) {
		r = dk;
	} else if (dk != FS_NAME_NONE && (flags & RENAME_NOREPLACE)) {
		r = -EEXIST;
	} else if (sk == FS_NAME_DIR) {
		r = wops_rename_dir(fs, &src, parent, name, newparent, newname,
				    dk);
	} else if (dk == FS_NAME_DIR) {
		r = -EISDIR;
	} else if (sk == FS_NAME_LOCAL) {
		r = wops_rename_local(fs, &src, parent, name, newparent,
				      newname, dk, &dst);
	} else {
		r = wops_rename_msg(fs, &src, parent, newparent, newname, dk,
				    &dst);
	}
	fs_entry_clear(&src);
	if (dk > 0)
		fs_entry_clear(&dst);
	fuse_reply_err(req, -r);
}
