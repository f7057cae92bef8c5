/* ops.c - the FUSE low-level operations; see ops.h and docs/SEMANTICS.md.
 *
 * Pattern of every handler: take what is needed from the tree (a copy made
 * under its lock), drop the lock, talk to the server through the pool if
 * needed, reply.  Errors from imap/ become an errno only through
 * fs_errno_from_error().
 *
 * A handler that would talk to the server hands its request to a network
 * thread (defer.h) after checking, without waiting, that memory cannot
 * answer it: the FUSE worker is free again at once, and the request runs
 * within one deadline and can be interrupted.  What memory can answer is
 * answered in the worker.  A listing that cannot be refreshed because the
 * server is unreachable is served as it is (docs/SEMANTICS.md, Offline).
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
#include "folder.h"
#include "ops.h"
#include "copy.h"
#include "wops.h"

#define XATTR_FLAGS "user.imap.flags"
#define XATTR_UID "user.imap.uid"
static struct imapfs *ops_fs(fuse_req_t req)
{
	return fuse_req_userdata(req);
}

/* Without LIST-STATUS, at most this many STATUS commands per mailbox
 * list, to recognise mailboxes another client renamed. */
#define OPS_RENAME_STATUS_MAX 20

/* At most this many mailboxes gone from a list are asked whether they
 * still exist. */
#define OPS_GONE_STATUS_MAX 8

struct ops_list_ctx {
	struct fs_tree *tree;
	GPtrArray *infos;
	GPtrArray *keep; /* gone from the list, but STATUS says they exist */
};

/* Mailboxes we have that the list left out are asked STATUS before they
 * are dropped: Dovecot's mailbox list index answered a LIST right after
 * our own DELETE and CREATEs from an old view (the deleted name listed
 * with "NO Mailbox doesn't exist", the three created ones missing), and
 * the folders would have vanished under the program that had just made
 * them (test_live.py::test_own_folder_rename_races_nothing, 1 run in
 * 30). A refused STATUS (NO) means gone; one that answers keeps it. */
static gboolean ops_list_confirm_gone(struct imap_session *s,
				      struct ops_list_ctx *c, GError **error)
{
	GPtrArray *gone =
		fs_tree_gone_mailboxes(c->tree, c->infos, OPS_GONE_STATUS_MAX);
	gboolean ok = TRUE;

	g_clear_pointer(&c->keep, g_ptr_array_unref);
	c->keep = g_ptr_array_new_with_free_func(g_free);
	for (guint i = 0; ok && i < gone->len; i++) {
		struct imap_mailbox_status st;
		GError *err = NULL;

		if (imap_session_status(s, gone->pdata[i], &st, &err)) {
			g_ptr_array_add(c->keep, g_strdup(gone->pdata[i]));
		} else if (imap_error_is_fatal(err)) {
			g_propagate_error(error, err);
			ok = FALSE;
		} else {
			g_error_free(err);
		}
	}
	g_ptr_array_unref(gone);
	return ok;
}

/* The list says nothing that tells a mailbox another client renamed
 * (Microsoft 365, Courier): a folder we know gone from it may be one of
 * the new names, so those are asked for their UIDVALIDITY, MESSAGES and
 * UIDNEXT (fs_tree_rename_candidates()), which
 * fs_tree_set_mailboxes_since() then compares with the gone folders'.
 * Here on the network, outside the tree lock; a list applied later is
 * still checked against the tree's generation. A refused STATUS (the
 * name went again) leaves its info as it was. */
static gboolean ops_list_status(struct imap_session *s, struct ops_list_ctx *c,
				GError **error)
{
	GPtrArray *ask = fs_tree_rename_candidates(c->tree, c->infos,
						   OPS_RENAME_STATUS_MAX);
	gboolean ok = TRUE;

	for (guint i = 0; ok && i < ask->len; i++) {
		struct imap_mailbox_info *info = ask->pdata[i];
		struct imap_mailbox_status st;
		GError *err = NULL;

		if (imap_session_status(s, info->name, &st, &err)) {
			info->uidvalidity = st.uidvalidity;
			info->exists = st.exists;
			info->uidnext = st.uidnext;
		} else if (imap_error_is_fatal(err)) {
			g_propagate_error(error, err);
			ok = FALSE;
		} else {
			imapfs_debug("STATUS %s: %s", info->name, err->message);
			g_error_free(err);
		}
	}
	g_ptr_array_unref(ask);
	return ok;
}

static gboolean ops_list_fn(struct imap_session *s, void *user_data,
			    GError **error)
{
	struct ops_list_ctx *c = user_data;

	/* A second run (the first one's connection broke) starts over. */
	g_clear_pointer(&c->infos, g_ptr_array_unref);
	c->infos = imap_session_list(s, error);
	if (c->infos == NULL || !ops_list_confirm_gone(s, c, error))
		return FALSE;
	return imap_session_list_has_status(s) || ops_list_status(s, c, error);
}

int fs_ops_load_mailboxes(struct imapfs *fs, GError **error)
{
	struct ops_list_ctx c = {.tree = fs->tree};
	GPtrArray *infos;
	uint64_t gen = fs_tree_mailboxes_gen(fs->tree);
	gboolean applied;
	guint i;

	if (!imap_pool_run(fs->pool, NULL, ops_list_fn, &c, error)) {
		g_clear_pointer(&c.infos, g_ptr_array_unref);
		g_clear_pointer(&c.keep, g_ptr_array_unref);
		return -fs_errno_from_error(*error);
	}
	infos = c.infos;
	/* Older than a folder change of ours that completed meanwhile: the
	 * tree stays as it is (the next refresh asks again). */
	applied = fs_tree_set_mailboxes_keep(fs->tree, infos, gen, c.keep);
	g_ptr_array_unref(c.keep);
	if (!applied) {
		g_ptr_array_unref(infos);
		return 0;
	}
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
		/* Keep serving the old list (offline: said once, by the
		 * pool). */
		if (!g_error_matches(err, IMAP_ERROR, IMAP_ERROR_OFFLINE))
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

/* A deferred request's arguments: the node, a name, a file handle. */
struct ops_args {
	fuse_ino_t ino;
	char *name;
	struct fuse_file_info fi;
};

static struct ops_args *ops_args_new(fuse_ino_t ino, const char *name,
				     const struct fuse_file_info *fi)
{
	struct ops_args *a = g_new0(struct ops_args, 1);

	a->ino = ino;
	a->name = g_strdup(name);
	if (fi != NULL)
		a->fi = *fi;
	return a;
}

static void ops_args_free(gpointer p)
{
	struct ops_args *a = p;

	g_free(a->name);
	g_free(a);
}

static void ops_lookup_body(fuse_req_t req, fuse_ino_t parent,
			    const char *name);

static void ops_lookup_deferred(fuse_req_t req, void *args)
{
	struct ops_args *a = args;

	ops_lookup_body(req, a->ino, a->name);
}

static void ops_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct imapfs *fs = ops_fs(req);
	guint32 uid;

	if (strlen(name) > 255) {
		fuse_reply_err(req, ENAMETOOLONG);
		return;
	}
	/* The server is needed for a message name whose folder listing is
	 * not fresh, or for a UID above every one known (new mail?) when
	 * the folder was not looked at within the last second. */
	if (fs_namemap_parse_message_name(name, &uid) &&
	    (!fs_tree_folder_fresh(fs->tree, parent, fs->listing_ttl_us) ||
	     (uid > fs_tree_max_uid(fs->tree, parent) &&
	      !fs_tree_folder_fresh(fs->tree, parent, G_USEC_PER_SEC)))) {
		fs_defer_run(fs->defer, req, ops_lookup_deferred,
			     ops_args_new(parent, name, NULL), ops_args_free);
		return;
	}
	ops_lookup_body(req, parent, name);
}

static void ops_lookup_body(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct imapfs *fs = ops_fs(req);
	struct fuse_entry_param p;
	struct fs_entry e;
	guint32 uid;
	int r;

	/* Only a name that can be a message makes us look at the folder's
	 * listing; anything else (file-manager probes like .hidden,
	 * autorun.inf) is answered from memory. */
	if (fs_namemap_parse_message_name(name, &uid)) {
		r = fs_folder_prepare_lookup(fs, parent, uid);
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
	    !fs_tree_folder_cold(fs->tree, parent, NULL, NULL) &&
	    fs_folder_load(fs, parent, G_USEC_PER_SEC) == 1)
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

/* Replies to a getattr of an inode for which fs_tree_get() returned @r
 * and filled @e (cleared here). */
static void ops_getattr_reply(fuse_req_t req, int r, struct fs_entry *e)
{
	struct imapfs *fs = ops_fs(req);

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
	ops_measure_unknown_size(fs, e);
	fuse_reply_attr(req, &e->st, fs->attr_timeout);
	fs_entry_clear(e);
}

static void ops_getattr_deferred(fuse_req_t req, void *args)
{
	struct fs_entry e;
	int r = fs_tree_get(ops_fs(req)->tree, ((struct ops_args *)args)->ino,
			    &e);

	ops_getattr_reply(req, r, &e);
}

static void ops_getattr(fuse_req_t req, fuse_ino_t ino,
			struct fuse_file_info *fi)
{
	struct imapfs *fs = ops_fs(req);
	struct fs_entry e;
	int r = fs_tree_get(fs->tree, ino, &e);

	/* Only a message of unknown size needs the server (to measure). */
	if (r == 0 && e.size_unknown) {
		fs_entry_clear(&e);
		fs_defer_run(fs->defer, req, ops_getattr_deferred,
			     ops_args_new(ino, NULL, NULL), ops_args_free);
		return;
	}
	ops_getattr_reply(req, r, &e);
}

static void ops_opendir_body(fuse_req_t req, fuse_ino_t ino,
			     struct fuse_file_info *fi);

static void ops_opendir_deferred(fuse_req_t req, void *args)
{
	struct ops_args *a = args;

	ops_opendir_body(req, a->ino, &a->fi);
}

static void ops_opendir(fuse_req_t req, fuse_ino_t ino,
			struct fuse_file_info *fi)
{
	struct imapfs *fs = ops_fs(req);

	if (g_get_monotonic_time() - fs_tree_mailboxes_time(fs->tree) >=
		    fs->listing_ttl_us ||
	    !fs_tree_folder_fresh(fs->tree, ino, fs->listing_ttl_us)) {
		fs_defer_run(fs->defer, req, ops_opendir_deferred,
			     ops_args_new(ino, NULL, fi), ops_args_free);
		return;
	}
	ops_opendir_body(req, ino, fi);
}

static void ops_opendir_body(fuse_req_t req, fuse_ino_t ino,
			     struct fuse_file_info *fi)
{
	struct imapfs *fs = ops_fs(req);
	GArray *snap;
	int r;

	ops_refresh_mailboxes(fs);
	r = fs_folder_load(fs, ino, fs->listing_ttl_us);
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
		struct fs_entry entry;
		const struct fs_entry *e = &entry;
		gboolean dot = i < 2;
		size_t n;

		/* Entries are read from the tree as they are now; one that
		 * left since opendir is skipped. */
		if (fs_tree_list_entry(fs->tree, snap, i, &entry) < 0)
			continue;
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
		if (n > size - used) {
			fs_entry_clear(&entry);
			break;
		}
		if (plus && !dot && !e->bad_size && !e->size_unknown)
			fs_tree_ref(fs->tree, e->ino);
		fs_entry_clear(&entry);
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

/* A read that needs the server, as handed to a network thread. */
struct ops_read_args {
	fuse_ino_t ino;
	size_t size;
	off_t off;
	uint64_t readahead;
	struct fs_entry e;
	/* A walk was seen in a folder never listed: list it (network, so
	 * here rather than in the worker) and tell the prefetch again. */
	gboolean list_walk;
};

static void ops_read_args_free(gpointer p)
{
	struct ops_read_args *a = p;

	fs_entry_clear(&a->e);
	g_free(a);
}

static void ops_read_body(fuse_req_t req, fuse_ino_t ino, size_t size,
			  off_t off, uint64_t readahead, struct fs_entry *e);

static void ops_read_deferred(fuse_req_t req, void *args)
{
	struct ops_read_args *a = args;
	struct imapfs *fs = ops_fs(req);

	if (a->list_walk &&
	    fs_folder_load(fs, a->e.parent, fs->listing_ttl_us) > 0)
		fs_prefetch_folder_walk(fs->prefetch, a->ino);
	ops_read_body(req, a->ino, a->size, a->off, a->readahead, &a->e);
}

/* TRUE if the body cache holds every block (none still arriving) a read of
 * @size at @off of @e needs, and the read cannot go looking for the
 * message's real end: memory answers it. */
static gboolean ops_read_cached(struct imapfs *fs, const struct fs_entry *e,
				uint64_t off, size_t size)
{
	uint64_t claimed = (uint64_t)e->st.st_size, end = off + size, first;

	if (!e->size_verified && end >= claimed)
		return FALSE;
	end = MIN(end, claimed);
	if (end <= off)
		return TRUE;
	first = off / FS_BODYCACHE_BLOCK;
	return fs_bodycache_holds(fs->cache, e->ino, first,
				  (end - 1) / FS_BODYCACHE_BLOCK - first + 1);
}

static void ops_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		     struct fuse_file_info *fi)
{
	struct imapfs *fs = ops_fs(req);
	struct ops_read_args *a;
	uint64_t readahead = 0;
	gboolean list_walk;
	struct fs_entry e;
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
	list_walk = off == 0 && !e.gone &&
		    fs_prefetch_folder_walk(fs->prefetch, ino);
	if (ops_read_cached(fs, &e, (uint64_t)off, size)) {
		ops_read_body(req, ino, size, off, readahead, &e);
		fs_entry_clear(&e);
		return;
	}
	a = g_new0(struct ops_read_args, 1);
	a->ino = ino;
	a->size = size;
	a->off = off;
	a->readahead = readahead;
	a->list_walk = list_walk;
	a->e = e; /* taken over */
	fs_defer_run(fs->defer, req, ops_read_deferred, a, ops_read_args_free);
}

/* The read proper, from the body cache (fetching what it lacks); @e is
 * the caller's. */
static void ops_read_body(fuse_req_t req, fuse_ino_t ino, size_t size,
			  off_t off, uint64_t readahead, struct fs_entry *ep)
{
	struct imapfs *fs = ops_fs(req);
	struct fs_fetch fetch = {.pool = fs->pool};
	uint64_t eof = G_MAXUINT64, claimed;
	struct fs_entry e = *ep;
	GError *err = NULL;
	char *buf;
	gssize n;

	fetch.mailbox = e.mailbox;
	fetch.uidvalidity = e.uidvalidity;
	fetch.uid = e.uid;
	fetch.gone = e.gone;
	buf = g_malloc(size);
	n = fs_bodycache_read(fs->cache, ino, (uint64_t)e.st.st_size,
			      (uint64_t)off, size, readahead, buf, &eof,
			      fs_fetch_into_cache, &fetch, &err);
	if (n < 0) {
		int er = fs_errno_from_error(err);

		if (!g_error_matches(err, IMAP_ERROR, IMAP_ERROR_STALE) &&
		    !g_error_matches(err, IMAP_ERROR, IMAP_ERROR_OFFLINE) &&
		    !g_error_matches(err, IMAP_ERROR, IMAP_ERROR_CANCELLED))
			imapfs_warning("read of %s UID %u failed: %s",
				       e.mailbox, e.uid, err->message);
		/* Some servers (Dovecot) answer a FETCH in a mailbox another
		 * client deleted with a NO without [NONEXISTENT]: ask (not
		 * when the server could not be reached at all). */
		if (er == EIO && !imap_error_is_unreachable(err) &&
		    ops_mailbox_gone(fs, e.mailbox)) {
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
}

/* statfs */

/* Replies to statfs; @have: a STORAGE quota of @q[0] KiB used of @q[1]. */
static void ops_statfs_reply(fuse_req_t req, gboolean have, const uint64_t *q)
{
	struct imapfs *fs = ops_fs(req);
	/* Without QUOTA: 1 TiB, all free, so copy tools don't refuse. */
	uint64_t total = (uint64_t)1 << 40, avail = total;
	struct statvfs st;

	if (have && q[1] > 0) {
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

static void ops_statfs_deferred(fuse_req_t req, void *args)
{
	uint64_t q[2] = {0, 0};
	gboolean have = fs_quota_get(ops_fs(req)->quota, &q[0], &q[1]);

	ops_statfs_reply(req, have, q);
}

/* Answered from memory unless the server offers QUOTA and the cached
 * answer is older than its TTL. */
static void ops_statfs(fuse_req_t req, fuse_ino_t ino)
{
	struct imapfs *fs = ops_fs(req);
	uint64_t q[2] = {0, 0};
	gboolean have = FALSE;

	if (fs->cap_quota && !fs_quota_peek(fs->quota, &have, &q[0], &q[1])) {
		fs_defer_run(fs->defer, req, ops_statfs_deferred, NULL, NULL);
		return;
	}
	ops_statfs_reply(req, have, q);
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
