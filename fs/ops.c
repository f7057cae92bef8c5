/* ops.c - the FUSE low-level operations; see ops.h and docs/SEMANTICS.md.
 *
 * Pattern of every handler: take what is needed from the tree (a copy made
 * under its lock), drop the lock, talk to the server through the pool if
 * needed, reply.  Errors from imap/ become an errno only through
 * fs_errno_from_error().
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/statvfs.h>

#include "imap-error.h"
#include "log.h"
#include "mutate.h"
#include "namemap.h"
#include "fetch.h"
#include "ops.h"
#include "copy.h"
#include "wops.h"

#define XATTR_FLAGS "user.imap.flags"
#define XATTR_UID "user.imap.uid"
/* Large folders are listed in UID windows holding about this many
 * messages, so that no single reply grows without bound. */
#define OPS_META_CHUNK 20000

static struct imapfs *ops_fs(fuse_req_t req)
{
	return fuse_req_userdata(req);
}

/* Loading a folder's listing */

struct ops_load_ctx {
	const char *mailbox;
	uint32_t uidvalidity;
	struct imap_mailbox_status status;
	GArray *metas;
};

static void ops_meta_clear(gpointer p)
{
	struct imap_message_meta *m = p;

	g_free(m->flags);
}

static void ops_meta_cb(const struct imap_message_meta *meta, void *user_data)
{
	struct ops_load_ctx *ctx = user_data;
	struct imap_message_meta copy = *meta;

	copy.flags = g_strdup(meta->flags);
	g_array_append_val(ctx->metas, copy);
}

static gboolean ops_load_fn(struct imap_session *s, void *user_data,
			    GError **error)
{
	struct ops_load_ctx *ctx = user_data;
	uint32_t lo, step;

	g_array_set_size(ctx->metas, 0);
	if (!imap_session_examine(s, ctx->mailbox, &ctx->status, error))
		return FALSE;
	if (ctx->status.exists == 0)
		return TRUE;
	if (ctx->status.exists <= OPS_META_CHUNK || ctx->status.uidnext == 0)
		return imap_session_fetch_meta(s, ctx->mailbox,
					       ctx->status.uidvalidity, 1, 0,
					       ops_meta_cb, ctx, error);
	/* Windows sized from the UID density so each holds about
	 * OPS_META_CHUNK messages; the last one is open-ended ("*") so a
	 * message that arrived meanwhile is not missed. */
	step = (uint32_t)MAX((uint64_t)ctx->status.uidnext * OPS_META_CHUNK /
				     ctx->status.exists,
			     (uint64_t)OPS_META_CHUNK);
	for (lo = 1;; lo += step) {
		gboolean last = (uint64_t)lo + step >= ctx->status.uidnext;

		if (!imap_session_fetch_meta(
			    s, ctx->mailbox, ctx->status.uidvalidity, lo,
			    last ? 0 : lo + step - 1, ops_meta_cb, ctx, error))
			return FALSE;
		if (last)
			return TRUE;
	}
}

/* Makes sure directory @ino's message list is loaded and not older than
 * @max_age_us. Returns 1 if it was (re)loaded now, 0 if it was fresh, or a
 * negative errno. */
static int ops_folder_load(struct imapfs *fs, uint64_t ino, gint64 max_age_us)
{
	struct ops_load_ctx ctx = {0};
	char *mailbox = NULL;
	GError *err = NULL;
	gboolean ok;
	int r;

	r = fs_tree_folder_begin(fs->tree, ino, max_age_us, &mailbox,
				 &ctx.uidvalidity);
	if (r <= 0)
		return r;
	ctx.mailbox = mailbox;
	ctx.metas = g_array_new(FALSE, FALSE, sizeof(struct imap_message_meta));
	g_array_set_clear_func(ctx.metas, ops_meta_clear);
	ok = imap_pool_run(fs->pool, mailbox, ops_load_fn, &ctx, &err);
	fs_tree_folder_end(fs->tree, ino, ok, &ctx.status, ctx.metas);
	g_array_unref(ctx.metas);
	if (!ok) {
		r = -fs_errno_from_error(err);
		/* A listed level whose EXAMINE fails (deleted, children kept):
		 * it is a directory that holds only subdirectories. */
		if ((r == -ENOENT ||
		     g_error_matches(err, IMAP_ERROR, IMAP_ERROR_NO)) &&
		    fs_tree_folder_vanished(fs->tree, ino))
			r = 0;
		else
			imapfs_warning("cannot list %s: %s", mailbox,
				       err->message);
		g_error_free(err);
	}
	g_free(mailbox);
	return ok ? 1 : r;
}

static gboolean ops_list_fn(struct imap_session *s, void *user_data,
			    GError **error)
{
	GPtrArray **infos_r = user_data;

	*infos_r = imap_session_list(s, error);
	return *infos_r != NULL;
}

int fs_ops_load_mailboxes(struct imapfs *fs, GError **error)
{
	GPtrArray *infos = NULL;

	guint i;

	if (!imap_pool_run(fs->pool, NULL, ops_list_fn, &infos, error))
		return -fs_errno_from_error(*error);
	fs_tree_set_mailboxes(fs->tree, infos);
	g_mutex_lock(&fs->meta_lock);
	g_clear_pointer(&fs->trash_mailbox, g_free);
	for (i = 0; i < infos->len; i++) {
		const struct imap_mailbox_info *info = infos->pdata[i];

		if (info->special_use != NULL && !info->noselect &&
		    g_ascii_strcasecmp(info->special_use, "\\Trash") == 0 &&
		    fs->trash_mailbox == NULL)
			fs->trash_mailbox = g_strdup(info->name);
	}
	/* Without SPECIAL-USE, the mailbox clients conventionally use. */
	for (i = 0; i < infos->len && fs->trash_mailbox == NULL; i++) {
		const struct imap_mailbox_info *info = infos->pdata[i];
		const char *pre = fs->ns_prefix != NULL ? fs->ns_prefix : "";
		size_t plen = strlen(pre);

		if (!info->noselect && strncmp(info->name, pre, plen) == 0 &&
		    g_ascii_strcasecmp(info->name + plen, "Trash") == 0)
			fs->trash_mailbox = g_strdup(info->name);
	}
	g_mutex_unlock(&fs->meta_lock);
	g_ptr_array_unref(infos);
	return 0;
}

static void ops_refresh_mailboxes(struct imapfs *fs)
{
	GError *err = NULL;

	if (g_get_monotonic_time() - fs_tree_mailboxes_time(fs->tree) <
	    fs->listing_ttl_us)
		return;
	if (fs_ops_load_mailboxes(fs, &err) != 0) {
		/* Keep serving the old list. */
		imapfs_warning("cannot refresh the mailbox list: %s",
			       err->message);
		g_error_free(err);
	}
}

/* Replies */

static void ops_fill_param(struct imapfs *fs, const struct fs_entry *e,
			   struct fuse_entry_param *p)
{
	memset(p, 0, sizeof(*p));
	p->ino = e->ino;
	p->generation = 1;
	p->attr = e->st;
	p->attr_timeout = fs->attr_timeout;
	p->entry_timeout = fs->entry_timeout;
}

static void ops_reply_err(fuse_req_t req, int neg_errno)
{
	fuse_reply_err(req, -neg_errno);
}

/* Lookup, attributes, directories */

static uint64_t ops_find_end(struct imapfs *fs, uint64_t ino, uint64_t from,
			     struct fs_fetch *fetch);

/* A message the server says is empty is measured before its size is
 * reported: with st_size 0 the kernel would never ask to read it. */
static void ops_measure_unknown_size(struct imapfs *fs, struct fs_entry *e)
{
	struct fs_fetch fetch = {.pool = fs->pool,
				 .mailbox = e->mailbox,
				 .uidvalidity = e->uidvalidity,
				 .uid = e->uid};
	uint64_t end;

	if (!e->size_unknown)
		return;
	end = ops_find_end(fs, e->ino, 0, &fetch);
	if (end == G_MAXUINT64)
		return; /* keep 0; a later lookup tries again */
	fs_tree_set_size(fs->tree, e->ino, end);
	e->st.st_size = (off_t)end;
	e->st.st_blocks = (blkcnt_t)MAX((end + 511) / 512, 1);
	e->size_unknown = FALSE;
}

static void ops_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct imapfs *fs = ops_fs(req);
	struct fuse_entry_param p;
	struct fs_entry e;
	guint32 uid;
	int r;

	if (strlen(name) > 255) {
		fuse_reply_err(req, ENAMETOOLONG);
		return;
	}
	/* Only a name that can be a message makes us look at the folder's
	 * listing; anything else (file-manager probes like .hidden,
	 * autorun.inf) is answered from memory. */
	if (fs_namemap_parse_message_name(name, &uid)) {
		r = ops_folder_load(fs, parent, fs->listing_ttl_us);
		if (r < 0 && r != -ENOENT) {
			ops_reply_err(req, r);
			return;
		}
	}
	r = fs_tree_lookup(fs->tree, parent, name, &e);
	/* A UID above every one we know is probably new mail: look again
	 * (at most once a second per folder), rather than answer ENOENT
	 * until the listing expires. */
	if (r == -ENOENT && fs_namemap_parse_message_name(name, &uid) &&
	    uid > fs_tree_max_uid(fs->tree, parent) &&
	    ops_folder_load(fs, parent, G_USEC_PER_SEC) == 1)
		r = fs_tree_lookup(fs->tree, parent, name, &e);
	if (r == -ENOENT) {
		/* A negative entry the kernel may cache for entry_timeout. */
		memset(&p, 0, sizeof(p));
		p.entry_timeout = fs->entry_timeout;
		fuse_reply_entry(req, &p);
		return;
	}
	if (r < 0) {
		ops_reply_err(req, r);
		return;
	}
	ops_measure_unknown_size(fs, &e);
	ops_fill_param(fs, &e, &p);
	fs_entry_clear(&e);
	if (fuse_reply_entry(req, &p) != 0)
		fs_tree_forget(fs->tree, p.ino, 1);
}

static void ops_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
	fs_tree_forget(ops_fs(req)->tree, ino, nlookup);
	fuse_reply_none(req);
}

static void ops_forget_multi(fuse_req_t req, size_t count,
			     struct fuse_forget_data *forgets)
{
	size_t i;

	for (i = 0; i < count; i++)
		fs_tree_forget(ops_fs(req)->tree, forgets[i].ino,
			       forgets[i].nlookup);
	fuse_reply_none(req);
}

static void ops_getattr(fuse_req_t req, fuse_ino_t ino,
			struct fuse_file_info *fi)
{
	struct imapfs *fs = ops_fs(req);
	struct fs_entry e;
	int r = fs_tree_get(fs->tree, ino, &e);

	/* An inode that is gone (its message expunged, its folder's
	 * UIDVALIDITY changed): ESTALE, which is what an open file must see;
	 * a stat by path then looks the name up again (LOOKUP_REVAL) and
	 * gets the name's real answer. */
	if (r == -ENOENT)
		r = -ESTALE;
	if (r < 0) {
		ops_reply_err(req, r);
		return;
	}
	ops_measure_unknown_size(fs, &e);
	fuse_reply_attr(req, &e.st, fs->attr_timeout);
	fs_entry_clear(&e);
}

static void ops_opendir(fuse_req_t req, fuse_ino_t ino,
			struct fuse_file_info *fi)
{
	struct imapfs *fs = ops_fs(req);
	GArray *snap;
	int r;

	ops_refresh_mailboxes(fs);
	r = ops_folder_load(fs, ino, fs->listing_ttl_us);
	if (r < 0) {
		ops_reply_err(req, r);
		return;
	}
	/* A snapshot taken at opendir gives readdir stable offsets even if
	 * the folder changes while it is being read. */
	snap = fs_tree_list(fs->tree, ino, &r);
	if (snap == NULL) {
		ops_reply_err(req, r);
		return;
	}
	fi->fh = (uint64_t)(uintptr_t)snap;
	fi->cache_readdir = 0;
	if (fuse_reply_open(req, fi) != 0)
		g_array_unref(snap);
}

static void ops_readdir_common(fuse_req_t req, fuse_ino_t ino, size_t size,
			       off_t off, struct fuse_file_info *fi,
			       gboolean plus)
{
	struct imapfs *fs = ops_fs(req);
	GArray *snap = (GArray *)(uintptr_t)fi->fh;
	char *buf = g_malloc(size);
	size_t used = 0;
	guint i;

	for (i = (guint)off; off >= 0 && i < snap->len; i++) {
		const struct fs_entry *e =
			&g_array_index(snap, struct fs_entry, i);
		gboolean dot = i < 2;
		size_t n;

		if (plus) {
			struct fuse_entry_param p;

			if (dot || e->bad_size || e->size_unknown) {
				/* No lookup reference for . and .., nor
				 * for an entry whose lookup fails. */
				memset(&p, 0, sizeof(p));
				p.attr.st_ino = e->ino;
				p.attr.st_mode = e->st.st_mode;
			} else {
				ops_fill_param(fs, e, &p);
			}
			n = fuse_add_direntry_plus(req, buf + used, size - used,
						   e->name, &p, i + 1);
		} else {
			n = fuse_add_direntry(req, buf + used, size - used,
					      e->name, &e->st, i + 1);
		}
		if (n > size - used)
			break;
		if (plus && !dot && !e->bad_size && !e->size_unknown)
			fs_tree_ref(fs->tree, e->ino);
		used += n;
	}
	fuse_reply_buf(req, buf, used);
	g_free(buf);
}

static void ops_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
			struct fuse_file_info *fi)
{
	ops_readdir_common(req, ino, size, off, fi, FALSE);
}

static void ops_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size,
			    off_t off, struct fuse_file_info *fi)
{
	ops_readdir_common(req, ino, size, off, fi, TRUE);
}

static void ops_releasedir(fuse_req_t req, fuse_ino_t ino,
			   struct fuse_file_info *fi)
{
	g_array_unref((GArray *)(uintptr_t)fi->fh);
	fuse_reply_err(req, 0);
}

/* Files */

/* A read-write mount sees every open: a writable one needs a handle.
 * A read-only mount (-o ro) needs no per-open state at all, so it answers
 * ENOSYS, after which the kernel (FUSE_CAP_NO_OPEN_SUPPORT) handles every
 * open and release itself, with fh 0 and the page cache kept: a warm
 * grep -r sends no message per file. What a writable open would do then
 * reaches the daemon as WRITE, SETATTR (O_TRUNC: ATOMIC_O_TRUNC is off
 * on such a mount) and the rest, which answer EROFS. */
static void ops_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct imapfs *fs = ops_fs(req);
	struct fs_entry e;
	int r;

	if (!fs->read_only) {
		fs_wops_open(req, ino, fi);
		return;
	}
	r = fs_tree_get(fs->tree, ino, &e);
	if (r < 0) {
		ops_reply_err(req, r);
		return;
	}
	r = e.is_dir ? EISDIR : ENOSYS;
	fs_entry_clear(&e);
	fuse_reply_err(req, r);
}

static gboolean ops_status_fn(struct imap_session *s, void *user_data,
			      GError **error)
{
	struct imap_mailbox_status st;

	return imap_session_status(s, user_data, &st, error);
}

/* TRUE if the server says @mailbox does not exist: STATUS answers NO
 * [NONEXISTENT], or a plain NO as Dovecot does ("Mailbox doesn't
 * exist"; refusals for rights carry [NOPERM]). Any other answer,
 * including a failure to ask, is FALSE. */
static gboolean ops_mailbox_gone(struct imapfs *fs, const char *mailbox)
{
	GError *err = NULL;
	gboolean gone;

	if (mailbox == NULL ||
	    imap_pool_run(fs->pool, NULL, ops_status_fn, (void *)mailbox, &err))
		return FALSE;
	gone = g_error_matches(err, IMAP_ERROR, IMAP_ERROR_NONEXISTENT) ||
	       g_error_matches(err, IMAP_ERROR, IMAP_ERROR_NO);
	g_error_free(err);
	return gone;
}

/* Reads on from @from until the message's real end shows; returns it, or
 * G_MAXUINT64 if a fetch failed (the caller then keeps the claim). */
static uint64_t ops_find_end(struct imapfs *fs, uint64_t ino, uint64_t from,
			     struct fs_fetch *fetch)
{
	char *scratch = g_malloc(FS_BODYCACHE_BLOCK);
	uint64_t pos = from, end = G_MAXUINT64;
	guint i;

	/* Bounded: 2^16 blocks of 128 KiB is 8 GiB. */
	for (i = 0; i < 65536; i++) {
		uint64_t eof = G_MAXUINT64;
		GError *err = NULL;
		gssize r = fs_bodycache_read(fs->cache, ino, G_MAXUINT64, pos,
					     FS_BODYCACHE_BLOCK, 1024 * 1024,
					     scratch, &eof, fs_fetch_into_cache,
					     fetch, &err);

		if (r < 0) {
			g_error_free(err);
			break;
		}
		if (eof != G_MAXUINT64) {
			end = eof;
			break;
		}
		if (r == 0) {
			end = pos;
			break;
		}
		pos += (uint64_t)r;
	}
	g_free(scratch);
	return end;
}

static void ops_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		     struct fuse_file_info *fi)
{
	struct imapfs *fs = ops_fs(req);
	struct fs_fetch fetch = {.pool = fs->pool};
	uint64_t readahead = 0, eof = G_MAXUINT64, claimed;
	struct fs_entry e;
	GError *err = NULL;
	char *buf;
	gssize n;
	int r;

	if (off < 0) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	if (fi != NULL && fi->fh != 0) {
		/* A local file, or a message being edited. */
		fs_wops_read_spool(
			req, ((struct fs_handle *)(uintptr_t)fi->fh)->spool,
			size, off);
		return;
	}
	r = fs_tree_get_for_read(fs->tree, ino, (uint64_t)off, size,
				 fs->max_readahead, &e, &readahead);
	if (r < 0) {
		ops_reply_err(req, r);
		return;
	}
	if (e.spool != NULL) {
		fs_wops_read_spool(req, e.spool, size, off);
		fs_entry_clear(&e);
		return;
	}
	fetch.mailbox = e.mailbox;
	fetch.uidvalidity = e.uidvalidity;
	fetch.uid = e.uid;
	fetch.gone = e.gone;
	if (off == 0 && !e.gone)
		fs_prefetch_folder_walk(fs->prefetch, ino);
	buf = g_malloc(size);
	n = fs_bodycache_read(fs->cache, ino, (uint64_t)e.st.st_size,
			      (uint64_t)off, size, readahead, buf, &eof,
			      fs_fetch_into_cache, &fetch, &err);
	if (n < 0) {
		int er = fs_errno_from_error(err);

		if (!g_error_matches(err, IMAP_ERROR, IMAP_ERROR_STALE))
			imapfs_warning("read of %s UID %u failed: %s",
				       e.mailbox, e.uid, err->message);
		/* Some servers (Dovecot) answer a FETCH in a mailbox another
		 * client deleted with a NO without [NONEXISTENT]: ask. */
		if (er == EIO && ops_mailbox_gone(fs, e.mailbox)) {
			fs_tree_folder_invalidate(fs->tree, e.parent);
			er = ENOENT;
		}
		fuse_reply_err(req, er);
		g_error_free(err);
		goto out;
	}
	if (readahead > 0 && (size_t)n == size && eof == G_MAXUINT64)
		fs_prefetch_window(fs->prefetch, ino, &e, (uint64_t)off + size,
				   readahead);
	claimed = (uint64_t)e.st.st_size;
	/* The read reached the size the server claimed without finding the
	 * end there: the message may be longer (RFC822.SIZE is only a
	 * SHOULD). Find out now, before replying. */
	if (eof == G_MAXUINT64 && !e.size_verified &&
	    (uint64_t)off + size >= claimed)
		eof = ops_find_end(fs, ino, claimed, &fetch);
	if (eof == G_MAXUINT64 || e.size_verified) {
		fuse_reply_buf(req, buf, (size_t)n);
	} else if (eof > claimed) {
		/* Longer than claimed: the kernel must learn the size before
		 * the reader's next read, or it stops at the old size. Only
		 * attributes are dropped (offset -1), which takes no page
		 * lock, so this is safe from inside a read. */
		fs_tree_set_size(fs->tree, ino, eof);
		fs_notify_inval_attr_now(fs->notify, ino);
		fuse_reply_buf(req, buf, (size_t)n);
	} else {
		/* Shorter (or exact): the kernel shrinks the file itself on
		 * our short reply, unless an invalidation overtakes it --
		 * then it would pad with NULs. So reply first, then let
		 * the notify thread drop the stale attributes. */
		fs_tree_set_size(fs->tree, ino, eof);
		fuse_reply_buf(req, buf, (size_t)n);
		if (eof != claimed)
			fs_notify_inval_inode(fs->notify, ino);
	}
out:
	g_free(buf);
	fs_entry_clear(&e);
}

/* statfs */

static void ops_statfs(fuse_req_t req, fuse_ino_t ino)
{
	struct imapfs *fs = ops_fs(req);
	/* Without QUOTA: 1 TiB, all free, so copy tools don't refuse. */
	uint64_t total = (uint64_t)1 << 40, avail = total, q[2];
	struct statvfs st;

	if (fs_quota_get(fs->quota, &q[0], &q[1]) && q[1] > 0) {
		total = q[1] * 1024;
		avail = q[0] < q[1] ? (q[1] - q[0]) * 1024 : 0;
	}
	memset(&st, 0, sizeof(st));
	st.f_bsize = 4096;
	st.f_frsize = 4096;
	st.f_blocks = total / 4096;
	st.f_bfree = avail / 4096;
	st.f_bavail = avail / 4096;
	st.f_files = fs_tree_count_files(fs->tree) + 1000000;
	st.f_ffree = 1000000;
	st.f_favail = 1000000;
	st.f_namemax = 255;
	fuse_reply_statfs(req, &st);
}

/* Extended attributes */

static void ops_reply_xattr_value(fuse_req_t req, const char *value, size_t len,
				  size_t size)
{
	if (size == 0)
		fuse_reply_xattr(req, len);
	else if (len > size)
		fuse_reply_err(req, ERANGE);
	else
		fuse_reply_buf(req, value, len);
}

static void ops_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name,
			 size_t size)
{
	struct imapfs *fs = ops_fs(req);
	struct fs_entry e;
	char num[16];
	int r;

	/* Security labels and POSIX ACLs are not supported at all, and
	 * saying so (EOPNOTSUPP, as filesystems without them do) lets ls -l
	 * remember it per file system: with ENODATA, coreutils asks for
	 * both on every file, two kernel round trips each. */
	if (strcmp(name, "security.selinux") == 0 ||
	    g_str_has_prefix(name, "system.posix_acl_")) {
		fuse_reply_err(req, EOPNOTSUPP);
		return;
	}
	/* Any other unknown name answers at once, from memory. */
	if (strcmp(name, XATTR_FLAGS) != 0 && strcmp(name, XATTR_UID) != 0) {
		fuse_reply_err(req, ENODATA);
		return;
	}
	r = fs_tree_get(fs->tree, ino, &e);
	if (r < 0) {
		ops_reply_err(req, r);
		return;
	}
	if (e.is_dir) {
		fuse_reply_err(req, ENODATA);
	} else if (strcmp(name, XATTR_FLAGS) == 0) {
		ops_reply_xattr_value(req, e.flags, strlen(e.flags), size);
	} else {
		g_snprintf(num, sizeof(num), "%u", e.uid);
		ops_reply_xattr_value(req, num, strlen(num), size);
	}
	fs_entry_clear(&e);
}

static void ops_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
	static const char names[] = XATTR_FLAGS "\0" XATTR_UID;
	struct imapfs *fs = ops_fs(req);
	struct fs_entry e;
	int r = fs_tree_get(fs->tree, ino, &e);

	if (r < 0) {
		ops_reply_err(req, r);
		return;
	}
	ops_reply_xattr_value(req, names, e.is_dir ? 0 : sizeof(names), size);
	fs_entry_clear(&e);
}

static void ops_init(void *userdata, struct fuse_conn_info *conn)
{
	struct imapfs *fs = userdata;

	/* Attributes come with the folder listing for free, so READDIRPLUS
	 * saves the per-file LOOKUP that ls -l would cost. */
	if (conn->capable & FUSE_CAP_READDIRPLUS)
		conn->want |= FUSE_CAP_READDIRPLUS;
	/* "Auto" (the kernel's heuristic) rather than always: a names-only
	 * listing (ls, find) of 5,000 messages took twice as long with
	 * READDIRPLUS forced, for the kernel inodes it creates, while
	 * grep -r, which then needs a LOOKUP per file, was not measurably
	 * faster with it. */
	if (conn->capable & FUSE_CAP_READDIRPLUS_AUTO)
		conn->want |= FUSE_CAP_READDIRPLUS_AUTO;
	conn->want &= ~FUSE_CAP_WRITEBACK_CACHE;
	/* O_TRUNC arrives with the open, so an edited message starts out
	 * empty without first fetching its old bytes. Not on a read-only
	 * mount: its opens never reach us (ops_open), and the kernel would
	 * take the truncation as done; without the flag it arrives as a
	 * SETATTR of the size, which answers EROFS. */
	if ((conn->capable & FUSE_CAP_ATOMIC_O_TRUNC) && !fs->read_only)
		conn->want |= FUSE_CAP_ATOMIC_O_TRUNC;
	else
		conn->want &= ~FUSE_CAP_ATOMIC_O_TRUNC;
}

static const struct fuse_lowlevel_ops ops_table = {
	.init = ops_init,
	.lookup = ops_lookup,
	.forget = ops_forget,
	.forget_multi = ops_forget_multi,
	.getattr = ops_getattr,
	.setattr = fs_wops_setattr,
	.mknod = fs_wops_mknod,
	.mkdir = fs_wops_mkdir,
	.unlink = fs_wops_unlink,
	.rmdir = fs_wops_rmdir,
	.symlink = fs_wops_symlink,
	.rename = fs_wops_rename,
	.link = fs_wops_link,
	.open = ops_open,
	.read = ops_read,
	.write = fs_wops_write,
	/* FLUSH (each close) sends a written message: close() returns
	 * the APPEND's result. */
	.flush = fs_wops_flush,
	.release = fs_wops_release,
	.fsync = fs_wops_fsync,
	.opendir = ops_opendir,
	.readdir = ops_readdir,
	.readdirplus = ops_readdirplus,
	.releasedir = ops_releasedir,
	.statfs = ops_statfs,
	.setxattr = fs_wops_setxattr,
	.getxattr = ops_getxattr,
	.listxattr = ops_listxattr,
	.removexattr = fs_wops_removexattr,
	.create = fs_wops_create,
	.copy_file_range = fs_copy_file_range,
};

const struct fuse_lowlevel_ops *fs_ops_get(void)
{
	return &ops_table;
}
