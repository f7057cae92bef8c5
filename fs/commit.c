/* commit.c - see commit.h. */
#include "config.h"

#include <errno.h>
#include <string.h>

#include "commit.h"
#include "imap-error.h"
#include "log.h"
#include "mutate.h"
#include "reqctx.h"

gboolean fs_commit_is_message_name(const char *name)
{
	size_t len = strlen(name);

	return len > 4 && name[0] != '.' && strcmp(name + len - 4, ".eml") == 0;
}

struct commit_append_ctx {
	struct imap_append_req req;
	struct imap_append_result result;
};

static gboolean commit_append_fn(struct imap_session *s, void *user_data,
				 GError **error)
{
	struct commit_append_ctx *c = user_data;

	return imap_session_append(s, &c->req, &c->result, error);
}

struct commit_find_ctx {
	const char *mailbox;
	uint32_t uidvalidity;
	uint32_t min_uid;
	const char *message_id;
	uint64_t size;
	uint32_t uid;
	uint32_t found_uidvalidity;
};

static gboolean commit_find_fn(struct imap_session *s, void *user_data,
			       GError **error)
{
	struct commit_find_ctx *c = user_data;

	return imap_session_find_appended(
		s, c->mailbox, c->uidvalidity, c->min_uid, c->message_id,
		c->size, &c->uid, &c->found_uidvalidity, error);
}

struct commit_state_ctx {
	const char *mailbox;
	uint32_t uidvalidity, uid;
	gboolean exists;
	uint64_t modseq;
	char *flags;
};

static gboolean commit_state_fn(struct imap_session *s, void *user_data,
				GError **error)
{
	struct commit_state_ctx *c = user_data;

	g_clear_pointer(&c->flags, g_free);
	return imap_session_uid_state(s, c->mailbox, c->uidvalidity, c->uid,
				      &c->exists, &c->modseq, &c->flags, error);
}

struct commit_expunge_ctx {
	const char *mailbox;
	uint32_t uidvalidity, uid;
	gboolean flag_only; /* -o delete=flag: \Deleted, no EXPUNGE */
};

static gboolean commit_expunge_fn(struct imap_session *s, void *user_data,
				  GError **error)
{
	struct commit_expunge_ctx *c = user_data;

	return imap_session_expunge_uid(s, c->mailbox, c->uidvalidity, c->uid,
					c->flag_only, NULL, error);
}

gboolean fs_commit_ask(struct imapfs *fs, const char *mailbox, imap_pool_fn *fn,
		       void *user_data, GError **error)
{
	for (;;) {
		gint64 deadline = imap_reqctx_clamp(-1);
		GError *err = NULL;

		if (imap_pool_run(fs->pool, mailbox, fn, user_data, &err))
			return TRUE;
		if (!g_error_matches(err, IMAP_ERROR, IMAP_ERROR_OFFLINE) ||
		    deadline < 0 ||
		    g_get_monotonic_time() + 250 * 1000 >= deadline) {
			g_propagate_error(error, err);
			return FALSE;
		}
		g_error_free(err);
		g_usleep(250 * 1000);
	}
}

gboolean fs_commit_same_flags(const char *a, const char *b)
{
	char **x = g_strsplit(a != NULL ? a : "", " ", -1);
	char **y = g_strsplit(b != NULL ? b : "", " ", -1);
	guint nx = 0, ny = 0, i, j;
	gboolean same = TRUE;

	for (i = 0; x[i] != NULL; i++) {
		gboolean found = FALSE;

		if (*x[i] == '\0' || g_ascii_strcasecmp(x[i], "\\Recent") == 0)
			continue;
		nx++;
		for (j = 0; y[j] != NULL && !found; j++)
			found = g_ascii_strcasecmp(x[i], y[j]) == 0;
		same = same && found;
	}
	for (j = 0; y[j] != NULL; j++) {
		if (*y[j] != '\0' && g_ascii_strcasecmp(y[j], "\\Recent") != 0)
			ny++;
	}
	g_strfreev(x);
	g_strfreev(y);
	return same && nx == ny;
}

/* The replaced message: still there and unchanged? Then expunge it (with
 * @flag_only: flag it \Deleted, and it stays). Returns 0, -ESTALE (it
 * changed or vanished: keep both) or another negative errno. */
static int commit_expunge_replaced(struct imapfs *fs, const char *mailbox,
				   uint32_t uidvalidity, uint32_t uid,
				   const char *flags_seen, gboolean flag_only)
{
	struct commit_state_ctx st = {
		.mailbox = mailbox, .uidvalidity = uidvalidity, .uid = uid};
	struct commit_expunge_ctx ex = {mailbox, uidvalidity, uid, flag_only};
	GError *err = NULL;
	int r = 0;

	if (!imap_pool_run(fs->pool, mailbox, commit_state_fn, &st, &err)) {
		r = -fs_errno_from_error(err);
		imapfs_warning("%s UID %u: cannot check it before replacing "
			       "it (%s); both are kept",
			       mailbox, uid, err->message);
		g_error_free(err);
		return r == -ESTALE ? -ESTALE : r;
	}
	if (!st.exists || !fs_commit_same_flags(st.flags, flags_seen)) {
		imapfs_warning("%s UID %u was %s by another client while it "
			       "was edited; both versions are kept",
			       mailbox, uid, st.exists ? "changed" : "removed");
		g_free(st.flags);
		return -ESTALE;
	}
	g_free(st.flags);
	if (imap_pool_run_once(fs->pool, mailbox, commit_expunge_fn, &ex, &err))
		return 0;
	if (g_error_matches(err, IMAP_ERROR, IMAP_ERROR_UNKNOWN_OUTCOME)) {
		/* Did it happen? Asking is idempotent. */
		g_clear_error(&err);
		st.flags = NULL;
		if (fs_commit_ask(fs, mailbox, commit_state_fn, &st, &err) &&
		    (!st.exists ||
		     (flag_only &&
		      imap_flags_contain(st.flags, "\\Deleted")))) {
			g_free(st.flags);
			return 0;
		}
		g_free(st.flags);
	}
	r = err != NULL ? -fs_errno_from_error(err) : -EIO;
	imapfs_warning("%s UID %u: the new version was stored but the old "
		       "one could not be removed: %s",
		       mailbox, uid, err != NULL ? err->message : "unknown");
	g_clear_error(&err);
	return r;
}

struct commit_status_ctx {
	const char *mailbox;
	struct imap_mailbox_status st;
};

static gboolean commit_status_fn(struct imap_session *s, void *user_data,
				 GError **error)
{
	struct commit_status_ctx *c = user_data;

	return imap_session_status(s, c->mailbox, &c->st, error);
}

/* For a folder of which no UID is known yet: the last UID in use, from
 * STATUS UIDNEXT, so that a search for what we appended cannot match an
 * older copy of the same message (0 if the server does not say). */
static uint32_t commit_uidnext(struct imapfs *fs, const char *mailbox)
{
	struct commit_status_ctx c = {.mailbox = mailbox};
	GError *err = NULL;

	if (!imap_pool_run(fs->pool, mailbox, commit_status_fn, &c, &err)) {
		g_error_free(err);
		return 0;
	}
	return c.st.uidnext > 0 ? c.st.uidnext - 1 : 0;
}

/* The APPEND to @mailbox of the file scanned as @scan is of unknown
 * outcome and asking failed: remember it in @sp, for the next commit. */
static void commit_remember(struct fs_spool *sp, const char *mailbox,
			    uint32_t max_uid, const struct fs_spool_scan *scan)
{
	struct fs_spool_unresolved *u = fs_spool_unresolved(sp);

	fs_spool_unresolved_clear(u);
	u->mailbox = g_strdup(mailbox);
	u->min_uid = max_uid;
	u->message_id = g_strdup(scan->message_id);
	u->wire_size = scan->wire_size;
}

/* Before sending @sp (scanned as @scan) to @mailbox again: did the
 * earlier APPEND @u of unknown outcome arrive after all? 0 with *uid_r
 * (and *uidvalidity_r when known) its UID if it did and holds the same
 * message (same Message-ID and size: it is adopted, nothing is sent);
 * 0 with *uid_r 0 if it is not there, or holds another version (then it
 * is kept, with a warning); a negative errno if the server cannot say:
 * then nothing may be sent. @u is cleared once the answer is known. */
static int commit_find_earlier(struct imapfs *fs, struct fs_spool_unresolved *u,
			       const char *mailbox,
			       const struct fs_spool_scan *scan,
			       const char *alias, uint32_t *uid_r,
			       uint32_t *uidvalidity_r)
{
	struct commit_find_ctx f = {.mailbox = u->mailbox,
				    .min_uid = u->min_uid + 1,
				    .message_id = u->message_id,
				    .size = u->wire_size};
	GError *err = NULL;
	int r;

	*uid_r = 0;
	if (!fs_commit_ask(fs, u->mailbox, commit_find_fn, &f, &err)) {
		r = -fs_errno_from_error(err);
		imapfs_warning("cannot tell whether the earlier attempt to "
			       "store %s in %s arrived (%s); not sending it "
			       "again yet",
			       alias, u->mailbox, err->message);
		g_error_free(err);
		return r == -EINTR ? r : -EIO;
	}
	if (f.uid != 0 && strcmp(u->mailbox, mailbox) == 0 &&
	    scan->message_id != NULL &&
	    strcmp(u->message_id, scan->message_id) == 0 &&
	    u->wire_size == scan->wire_size) {
		imapfs_info("%s arrived in %s after all (UID %u); not sending "
			    "it again",
			    alias, mailbox, f.uid);
		*uid_r = f.uid;
		if (f.found_uidvalidity != 0)
			*uidvalidity_r = f.found_uidvalidity;
	} else if (f.uid != 0) {
		imapfs_warning("an earlier version of %s arrived in %s after "
			       "all (UID %u); it is kept",
			       alias, u->mailbox, f.uid);
	}
	fs_spool_unresolved_clear(u);
	return 0;
}

void fs_commit_own_begin(struct imapfs *fs, const char *mailbox)
{
	gpointer n;

	if (fs->own_inflight == NULL)
		return;
	g_mutex_lock(&fs->own_lock);
	n = g_hash_table_lookup(fs->own_inflight, mailbox);
	g_hash_table_insert(fs->own_inflight, g_strdup(mailbox),
			    GUINT_TO_POINTER(GPOINTER_TO_UINT(n) + 1));
	g_mutex_unlock(&fs->own_lock);
}

void fs_commit_own_end(struct imapfs *fs, const char *mailbox)
{
	guint n;

	if (fs->own_inflight == NULL)
		return;
	g_mutex_lock(&fs->own_lock);
	n = GPOINTER_TO_UINT(g_hash_table_lookup(fs->own_inflight, mailbox));
	if (n > 1)
		g_hash_table_insert(fs->own_inflight, g_strdup(mailbox),
				    GUINT_TO_POINTER(n - 1));
	else
		g_hash_table_remove(fs->own_inflight, mailbox);
	g_cond_broadcast(&fs->own_cond);
	g_mutex_unlock(&fs->own_lock);
}

gboolean fs_commit_own_wait(struct imapfs *fs, const char *mailbox, int max_ms)
{
	gint64 until = g_get_monotonic_time() + (gint64)max_ms * 1000;
	gboolean waited = FALSE;

	if (fs->own_inflight == NULL)
		return FALSE;
	g_mutex_lock(&fs->own_lock);
	while (g_hash_table_contains(fs->own_inflight, mailbox)) {
		waited = TRUE;
		if (!g_cond_wait_until(&fs->own_cond, &fs->own_lock, until))
			break;
	}
	g_mutex_unlock(&fs->own_lock);
	return waited;
}

int fs_commit(struct imapfs *fs, uint64_t ino, struct fs_spool *sp,
	      const struct fs_commit_target *t)
{
	struct commit_append_ctx app;
	struct fs_spool_source_state src_state;
	struct fs_spool_scan scan = {0};
	struct fs_spool_attr attr;
	struct fs_entry dir = {0};
	GError *err = NULL;
	uint64_t changes;
	uint32_t uid = 0, uidvalidity, max_uid;
	gboolean unknown = FALSE, own = FALSE, flag_only;
	const char *flags;
	gint64 date;
	int r;

	fs_spool_commit_lock(sp);
	changes = fs_spool_changes(sp);
	if (!fs_spool_dirty(sp)) {
		fs_spool_commit_unlock(sp);
		return 0;
	}
	r = fs_tree_get(fs->tree, t->dir, &dir);
	if (r < 0)
		goto out;
	if (dir.mailbox == NULL || !dir.selectable) {
		r = -EPERM;
		goto out;
	}
	fs_spool_get_attr(sp, &attr);
	if (attr.size == 0) {
		/* Servers refuse empty messages; an empty new file stays
		 * local, an emptied message cannot be stored. */
		g_free(attr.flags);
		r = t->replace_uid != 0 ? -EINVAL : 0;
		if (r < 0)
			imapfs_warning("%s: a message cannot be empty; the "
				       "old one is kept",
				       dir.mailbox);
		goto out;
	}
	if (t->replace_uid != 0 && !fs->cap_uidplus &&
	    fs->delete_mode != FS_DELETE_FLAG) {
		/* The old version could not be removed (no UID EXPUNGE, and
		 * never a bare EXPUNGE): as for rm, nothing is sent. */
		g_free(attr.flags);
		imapfs_warning("%s UID %u: the server lacks UIDPLUS, so the "
			       "old version could not be removed; nothing "
			       "was sent (-o delete=flag only flags it "
			       "\\Deleted)",
			       dir.mailbox, t->replace_uid);
		r = -EPERM;
		goto out;
	}
	r = fs_spool_scan(sp, &scan);
	if (r < 0) {
		g_free(attr.flags);
		goto out;
	}
	fs_spool_set_keep(sp, TRUE);
	flags = attr.flags != NULL ? attr.flags : t->flags;
	date = attr.mtime_set		  ? attr.mtime
	       : attr.inherited_date != 0 ? attr.inherited_date
					  : t->internaldate;
	memset(&app, 0, sizeof(app));
	app.req.mailbox = dir.mailbox;
	fs_spool_source(sp, &scan, &src_state, &app.req.source);
	app.req.flags = flags;
	app.req.internaldate = date;
	app.req.binary = scan.has_nul;
	uidvalidity = dir.uidvalidity;
	max_uid = fs_tree_max_uid(fs->tree, t->dir);
	if (max_uid == 0)
		max_uid = commit_uidnext(fs, dir.mailbox);
	if (fs_spool_unresolved(sp)->mailbox != NULL) {
		r = commit_find_earlier(fs, fs_spool_unresolved(sp),
					dir.mailbox, &scan, t->alias, &uid,
					&uidvalidity);
		if (r < 0)
			goto out_attr;
	}
	/* Until the new UID is in the tree, the server's echo of it is
	 * ours (the live view waits). */
	fs_commit_own_begin(fs, dir.mailbox);
	own = TRUE;
	if (uid != 0) {
		/* The earlier attempt arrived: nothing to send. */
	} else if (imap_pool_run_once(fs->pool, dir.mailbox, commit_append_fn,
				      &app, &err)) {
		uid = app.result.uid;
		if (app.result.uidvalidity != 0)
			uidvalidity = app.result.uidvalidity;
	} else if (!g_error_matches(err, IMAP_ERROR,
				    IMAP_ERROR_UNKNOWN_OUTCOME)) {
		r = -fs_errno_from_error(err);
		imapfs_warning("cannot store %s in %s: %s", t->alias,
			       dir.mailbox, err->message);
		g_clear_error(&err);
		goto out_attr;
	} else {
		imapfs_warning("connection lost while storing %s in %s; "
			       "asking the server whether it arrived",
			       t->alias, dir.mailbox);
		g_clear_error(&err);
		unknown = TRUE;
		if (scan.message_id == NULL) {
			r = -EIO;
			imapfs_warning("%s has no Message-ID: cannot tell; "
				       "kept locally",
				       t->alias);
			goto out_attr;
		}
	}
	if (uid == 0 && scan.message_id != NULL) {
		/* No APPENDUID (no UIDPLUS), or an unknown outcome: find it
		 * without guessing. */
		struct commit_find_ctx f = {.mailbox = dir.mailbox,
					    .min_uid = max_uid + 1,
					    .message_id = scan.message_id,
					    .size = scan.wire_size};

		if (!fs_commit_ask(fs, dir.mailbox, commit_find_fn, &f, &err)) {
			imapfs_warning("cannot find %s in %s: %s", t->alias,
				       dir.mailbox, err->message);
			g_clear_error(&err);
			f.uid = 0;
			if (unknown) {
				/* The next commit asks first. */
				commit_remember(sp, dir.mailbox, max_uid,
						&scan);
				r = -EIO;
				goto out_attr;
			}
		}
		uid = f.uid;
		if (f.found_uidvalidity != 0)
			uidvalidity = f.found_uidvalidity;
	}
	if (unknown && uid == 0) {
		r = -EIO;
		imapfs_warning("%s did not arrive in %s; kept locally",
			       t->alias, dir.mailbox);
		goto out_attr;
	}
	fs_spool_mark_sent(sp, changes);
	flag_only = fs->delete_mode == FS_DELETE_FLAG;
	if (t->replace_uid != 0)
		r = commit_expunge_replaced(fs, dir.mailbox, dir.uidvalidity,
					    t->replace_uid, t->flags,
					    flag_only);
	fs_tree_commit(fs->tree, ino, t->dir, uidvalidity, uid, scan.wire_size,
		       date != 0 ? date : attr.mtime,
		       flags != NULL ? flags : "", t->alias,
		       r == 0 ? t->replace_uid : 0, flag_only);
	fs_bodycache_forget(fs->cache, ino);
	if (fs->notify != NULL)
		fs_notify_inval_inode(fs->notify, ino);
out_attr:
	if (own)
		fs_commit_own_end(fs, dir.mailbox);
	g_free(attr.flags);
out:
	g_free(scan.message_id);
	fs_entry_clear(&dir);
	fs_spool_commit_unlock(sp);
	return r;
}
