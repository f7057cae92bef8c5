/* copy.c - see copy.h. */
#include "config.h"

#include <errno.h>
#include <string.h>

#include "acl.h"
#include "commit.h"
#include "copy.h"
#include "imap-error.h"
#include "log.h"
#include "mutate.h"
#include "wops.h"

struct copy_ctx {
	const char *mailbox, *dest;
	uint32_t uidvalidity, uid;
	struct imap_copy_result result;
};

static gboolean copy_fn(struct imap_session *s, void *user_data, GError **error)
{
	struct copy_ctx *c = user_data;

	return imap_session_copy(s, c->mailbox, c->uidvalidity, c->uid, c->dest,
				 &c->result, error);
}

/* TRUE if @dst, the file @sp is open on, is another message's name (see
 * copy_eligible()). */
static gboolean copy_over_msg(const struct fs_entry *dst,
			      const struct fs_spool *sp)
{
	return !dst->is_local && dst->spool == sp && dst->st.st_size == 0;
}

/* 0 if copying message @src to @dst (open on @sp) is a case for UID COPY,
 * with @dir_r (to clear) the destination folder; else -EOPNOTSUPP.
 * Memory only. */
static int copy_eligible(struct imapfs *fs, const struct fs_entry *src,
			 const struct fs_entry *dst, const struct fs_spool *sp,
			 struct fs_entry *dir_r)
{
	gboolean over_msg = copy_over_msg(dst, sp);

	/* The size returned only tells cp how far to go on; the copy's
	 * real size is the server's, so a claimed one will do. */
	if (src->is_dir || src->is_local || src->spool != NULL ||
	    src->bad_size || src->size_unknown ||
	    (!over_msg &&
	     (!dst->is_local || !fs_commit_is_message_name(dst->name) ||
	      dst->st.st_size != 0)))
		return -EOPNOTSUPP;
	if (fs_tree_get(fs->tree, dst->parent, dir_r) < 0)
		return -EOPNOTSUPP;
	if (dir_r->mailbox == NULL || !dir_r->selectable ||
	    !imap_acl_has_right(dir_r->rights, 'i')) {
		fs_entry_clear(dir_r);
		return -EOPNOTSUPP;
	}
	return 0;
}

/* Copies message @src to the folder of the empty local file @dst on the
 * server; returns the bytes "copied" (the message's size) or a negative
 * errno (-EOPNOTSUPP: not a case for UID COPY). */
static gssize copy_on_server(struct imapfs *fs, const struct fs_entry *src,
			     const struct fs_entry *dst, struct fs_spool *sp)
{
	/* cp onto an existing message's name (cp a/5.eml b/ where b has a
	 * UID 5 of its own) opened that message with O_TRUNC: UIDs collide
	 * by chance, so the copy becomes a new message of b and the opened
	 * one stays as it was. */
	gboolean over_msg = copy_over_msg(dst, sp);
	struct copy_ctx c = {.mailbox = src->mailbox,
			     .uidvalidity = src->uidvalidity,
			     .uid = src->uid};
	struct fs_entry dir;
	GError *err = NULL;
	gssize r;

	if (copy_eligible(fs, src, dst, sp, &dir) < 0)
		return -EOPNOTSUPP;
	c.dest = dir.mailbox;
	fs_commit_own_begin(fs, dir.mailbox);
	if (!imap_pool_run_once(fs->pool, src->mailbox, copy_fn, &c, &err)) {
		fs_commit_own_end(fs, dir.mailbox);
		/* A copy that may or may not have happened must not be
		 * followed by the kernel's byte copy (a second message):
		 * report it instead. */
		r = g_error_matches(err, IMAP_ERROR, IMAP_ERROR_UNKNOWN_OUTCOME)
			    ? -EIO
			    : -EOPNOTSUPP;
		/* Interrupted before it was sent: nothing happened. */
		if (g_error_matches(err, IMAP_ERROR, IMAP_ERROR_CANCELLED))
			r = -EINTR;
		imapfs_warning(
			"UID COPY of %s UID %u to %s: %s%s", src->mailbox,
			src->uid, dir.mailbox, err->message,
			r != -EOPNOTSUPP ? "" : "; copying the bytes instead");
		g_error_free(err);
		fs_entry_clear(&dir);
		return r;
	}
	if (over_msg) {
		/* Nothing of the truncation is sent: the message keeps its
		 * bytes; the copy shows up with the next listing. */
		fs_spool_mark_sent(sp, fs_spool_changes(sp));
		fs_spool_set_keep(sp, FALSE);
		fs_tree_detach_shadow(fs->tree, dst->ino, sp);
		fs_tree_folder_invalidate(fs->tree, dst->parent);
	} else {
		fs_tree_commit(fs->tree, dst->ino, dst->parent,
			       c.result.uidvalidity != 0 ? c.result.uidvalidity
							 : dir.uidvalidity,
			       c.result.uid, (uint64_t)src->st.st_size,
			       src->st.st_mtime, src->flags, dst->name, 0,
			       FALSE);
		/* Its bytes are the server's now, not the (empty) local
		 * file's. */
		fs_tree_detach_shadow(fs->tree, dst->ino, dst->spool);
	}
	fs_commit_own_end(fs, dir.mailbox);
	fs_notify_inval_inode(fs->notify, dst->ino);
	fs_entry_clear(&dir);
	return (gssize)src->st.st_size;
}

/* A UID COPY handed to a network thread. */
struct copy_args {
	fuse_ino_t ino_in, ino_out;
	struct fuse_file_info fi_out;
	size_t len;
};

/* Copies @ino_in to @ino_out open as @h on the server, or answers
 * EOPNOTSUPP (the kernel then copies the bytes). */
static void copy_run(fuse_req_t req, fuse_ino_t ino_in, fuse_ino_t ino_out,
		     struct fs_handle *h, size_t len)
{
	struct imapfs *fs = fuse_req_userdata(req);
	struct fs_entry src, dst;
	gssize r;

	if (fs_tree_get(fs->tree, ino_in, &src) < 0) {
		fuse_reply_err(req, EOPNOTSUPP);
		return;
	}
	if (fs_tree_get(fs->tree, ino_out, &dst) < 0) {
		fs_entry_clear(&src);
		fuse_reply_err(req, EOPNOTSUPP);
		return;
	}
	r = (uint64_t)src.st.st_size <= len
		    ? copy_on_server(fs, &src, &dst, h->spool)
		    : -EOPNOTSUPP;
	fs_entry_clear(&src);
	fs_entry_clear(&dst);
	if (r < 0) {
		fuse_reply_err(req, (int)-r);
		return;
	}
	h->copied = TRUE;
	fuse_reply_write(req, (size_t)r);
}

static void copy_deferred(fuse_req_t req, void *args)
{
	struct copy_args *a = args;

	copy_run(req, a->ino_in, a->ino_out,
		 (struct fs_handle *)(uintptr_t)a->fi_out.fh, a->len);
}

/* TRUE if copy_run() would send a UID COPY (memory only). */
static gboolean copy_needs_server(struct imapfs *fs, fuse_ino_t ino_in,
				  fuse_ino_t ino_out, struct fs_spool *sp,
				  size_t len)
{
	struct fs_entry src, dst, dir;
	gboolean net = FALSE;

	if (fs_tree_get(fs->tree, ino_in, &src) < 0)
		return FALSE;
	if (fs_tree_get(fs->tree, ino_out, &dst) == 0) {
		net = (uint64_t)src.st.st_size <= len &&
		      copy_eligible(fs, &src, &dst, sp, &dir) == 0;
		if (net)
			fs_entry_clear(&dir);
		fs_entry_clear(&dst);
	}
	fs_entry_clear(&src);
	return net;
}

void fs_copy_file_range(fuse_req_t req, fuse_ino_t ino_in, off_t off_in,
			struct fuse_file_info *fi_in, fuse_ino_t ino_out,
			off_t off_out, struct fuse_file_info *fi_out,
			size_t len, int flags)
{
	struct imapfs *fs = fuse_req_userdata(req);
	struct fs_handle *h = (struct fs_handle *)(uintptr_t)fi_out->fh;
	struct copy_args *a;

	if (fs->read_only) {
		fuse_reply_err(req, EROFS);
		return;
	}
	if (h == NULL || !h->writable) {
		fuse_reply_err(req, EBADF);
		return;
	}
	/* The destination became a server copy: cp asks once more, at
	 * the end, and learns that there is nothing left. */
	if (h->copied) {
		if (off_out == off_in)
			fuse_reply_write(req, 0);
		else
			fuse_reply_err(req, EOPNOTSUPP);
		return;
	}
	if (off_in != 0 || off_out != 0 || flags != 0 ||
	    !copy_needs_server(fs, ino_in, ino_out, h->spool, len)) {
		/* Not a UID COPY: the kernel copies the bytes (into the
		 * spool, here in the worker). */
		fuse_reply_err(req, EOPNOTSUPP);
		return;
	}
	a = g_new0(struct copy_args, 1);
	a->ino_in = ino_in;
	a->ino_out = ino_out;
	a->fi_out = *fi_out;
	a->len = len;
	fs_defer_run_node(fs->defer, req, ino_out, FALSE, copy_deferred, a,
			  g_free);
}
