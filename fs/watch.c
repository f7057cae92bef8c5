/* watch.c - see watch.h. */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <string.h>

#include "commit.h"
#include "idle.h"
#include "imap-error.h"
#include "log.h"
#include "mailbox.h"
#include "resync.h"
#include "tree_live.h"
#include "watch.h"

#define WATCH_MAX_LISTENERS 16
/* STATUS poll interval of a folder: a tenth of the time since it was
 * used, within these bounds. */
#define WATCH_POLL_MIN_US (2 * G_USEC_PER_SEC)
#define WATCH_POLL_MAX_US (300 * G_USEC_PER_SEC)
/* The mailbox list is polled (without NOTIFY) no more often than this. */
#define WATCH_LIST_MIN_US (2 * G_USEC_PER_SEC)
/* How long fs_watch_hold() waits for the listeners to finish what they
 * started (a STATUS or an EXAMINE takes milliseconds; this only bounds a
 * listener stuck on a dead connection). */
#define WATCH_HOLD_WAIT_US (5 * G_USEC_PER_SEC)
/* How long a sync waits for this mount's own commands that add to the
 * folder (each ends within its request's deadline anyway). */
#define WATCH_OWN_WAIT_MS (60 * 1000)
/* Listeners held down by the server's connection limit try again after
 * this long (-o limit_retry), doubling up to the maximum. */
#define WATCH_LIMIT_FIRST_MS (30 * 1000)
#define WATCH_LIMIT_MAX_MS (10 * 60 * 1000)

struct watch_seen {
	uint32_t uidnext; /* the UIDNEXT last synced to */
	gint64 polled_at; /* last STATUS poll (monotonic us) */
	/* Loaded before a reconnect on a server without CONDSTORE: the
	 * flags changed meanwhile are only seen in a full flag listing,
	 * owed once. */
	gboolean flags_due;
};

struct fs_watch {
	struct imapfs *fs;
	struct imap_idle *listeners[WATCH_MAX_LISTENERS];
	unsigned int n;
	/* Folders IDLEd on (0 with NOTIFY); lowered to 1 while the server's
	 * connection limit holds the listeners down (atomic). */
	gint idled;
	unsigned int idled_full; /* what idled starts at (immutable) */
	/* The server refused a connection for its limit (a listener's or
	 * the pool's): listener 0 only until retry_at (monotonic us), when
	 * the others try again if the pool has its full size; retry_ms is
	 * the wait after the next refusal (doubling from limit_first_ms up
	 * to WATCH_LIMIT_MAX_MS), seen_refusals the pool's count of them
	 * last looked at, retry_told whether the others were woken for the
	 * retry due. All protected by lock. */
	gboolean limited;
	gint64 retry_at;
	unsigned int retry_ms, limit_first_ms, seen_refusals;
	gboolean retry_told;
	/* Listener 0 asked the pool for room and has not connected since
	 * (atomic): one request per streak of refusals, so that refusals
	 * while the server has not yet seen the freed connection go do not
	 * shrink the pool further. */
	gint room_asked;
	GMutex lock;
	/* Protected by lock: server name -> struct watch_seen *. */
	GHashTable *seen;
	gint64 list_polled_at;	 /* protected by lock */
	gboolean connected_once; /* listener 0 connected before; by lock */
	/* This mount's own RENAME or DELETE in progress (fs_watch_hold):
	 * the server names it is on (each also covers every name it is a
	 * prefix of), which no listener touches meanwhile; who may be
	 * touching one: a bit per listener from its pick or poll to its
	 * quiet hook, and the hooks at work on pool sessions. All
	 * protected by lock; cond is signalled when busy or inflight
	 * drops. */
	GPtrArray *held;
	guint32 busy;
	unsigned int inflight;
	GCond cond;
};

static void watch_check_unlimited(struct fs_watch *w);
static void watch_limit_poll(struct fs_watch *w, gint64 now, gint64 *next_us_r);

/* TRUE if @mailbox is under one of the holds. Called with the lock. */
static gboolean watch_is_held(struct fs_watch *w, const char *mailbox)
{
	for (guint i = 0; i < w->held->len; i++) {
		if (g_str_has_prefix(mailbox, w->held->pdata[i]))
			return TRUE;
	}
	return FALSE;
}

/* A hook's work on @mailbox (NULL: the mailbox list) begins: FALSE if
 * it is held (skip it). Pair a TRUE with watch_leave(). */
static gboolean watch_enter(struct fs_watch *w, const char *mailbox)
{
	gboolean ok;

	g_mutex_lock(&w->lock);
	ok = mailbox != NULL ? !watch_is_held(w, mailbox) : w->held->len == 0;
	if (ok)
		w->inflight++;
	else if (mailbox == NULL)
		w->list_polled_at = 0; /* again once the hold ends */
	g_mutex_unlock(&w->lock);
	return ok;
}

static void watch_leave(struct fs_watch *w)
{
	g_mutex_lock(&w->lock);
	w->inflight--;
	g_cond_broadcast(&w->cond);
	g_mutex_unlock(&w->lock);
}

/* Listener @index is (not) between a pick or poll and its quiet hook.
 * Called with the lock. */
static void watch_set_busy(struct fs_watch *w, unsigned int index,
			   gboolean busy)
{
	if (busy) {
		w->busy |= 1u << index;
	} else {
		w->busy &= ~(1u << index);
		g_cond_broadcast(&w->cond);
	}
}

/* ---- one folder brought up to date ---- */

struct watch_meta_ctx {
	const char *mailbox;
	uint32_t uidvalidity, first;
	GArray *metas;
};

static void watch_meta_clear(gpointer p)
{
	g_free(((struct imap_message_meta *)p)->flags);
}

static void watch_meta_cb(const struct imap_message_meta *meta, void *user_data)
{
	struct watch_meta_ctx *ctx = user_data;
	struct imap_message_meta copy = *meta;

	/* "n:*" also matches the last message when none is above n. */
	if (meta->uid < ctx->first)
		return;
	copy.flags = g_strdup(meta->flags);
	g_array_append_val(ctx->metas, copy);
}

static gboolean watch_meta_fn(struct imap_session *s, void *user_data,
			      GError **error)
{
	struct watch_meta_ctx *ctx = user_data;

	g_array_set_size(ctx->metas, 0);
	if (!imap_session_catch_up(s, ctx->mailbox, ctx->uidvalidity, error))
		return FALSE;
	return imap_session_fetch_meta(s, ctx->mailbox, ctx->uidvalidity,
				       ctx->first, 0, watch_meta_cb, ctx,
				       error);
}

struct watch_uids_ctx {
	const char *mailbox;
	uint32_t uidvalidity, upto;
	GArray *ranges;
};

static gboolean watch_uids_fn(struct imap_session *s, void *user_data,
			      GError **error)
{
	struct watch_uids_ctx *ctx = user_data;

	g_array_set_size(ctx->ranges, 0);
	return imap_resync_uid_ranges(s, ctx->mailbox, ctx->uidvalidity,
				      ctx->upto, ctx->ranges, error);
}

struct watch_flags_ctx {
	struct fs_watch *w;
	const struct fs_live_folder *f;
	uint64_t highest;
	unsigned int changed;
};

static void watch_flag_cb(uint32_t uid, const char *flags, uint64_t modseq,
			  void *user_data)
{
	struct watch_flags_ctx *ctx = user_data;

	(void)modseq;
	if (fs_tree_live_set_flags(ctx->w->fs->tree, ctx->w->fs->notify,
				   ctx->f->ino, ctx->f->uidvalidity, uid,
				   flags) > 0)
		ctx->changed++;
}

static gboolean watch_flags_fn(struct imap_session *s, void *user_data,
			       GError **error)
{
	struct watch_flags_ctx *ctx = user_data;

	return imap_session_flags_since(s, ctx->f->mailbox, ctx->f->uidvalidity,
					ctx->f->modseq, watch_flag_cb, ctx,
					&ctx->highest, error);
}

/* QRESYNC: the flag changes and the expunges since the folder's
 * HIGHESTMODSEQ in one pass. IMAP_ERROR_UNSUPPORTED without it. */
struct watch_qresync_ctx {
	struct watch_flags_ctx flags;
	GArray *vanished;
};

static gboolean watch_qresync_fn(struct imap_session *s, void *user_data,
				 GError **error)
{
	struct watch_qresync_ctx *ctx = user_data;
	const struct fs_live_folder *f = ctx->flags.f;

	g_array_set_size(ctx->vanished, 0);
	return imap_session_catch_up(s, f->mailbox, f->uidvalidity, error) &&
	       imap_session_qresync_since(
		       s, f->mailbox, f->uidvalidity, 1, f->max_uid, f->modseq,
		       watch_flag_cb, &ctx->flags, ctx->vanished, NULL, error);
}

/* Without CONDSTORE: the flags of every message. */
static gboolean watch_flags_all_fn(struct imap_session *s, void *user_data,
				   GError **error)
{
	struct watch_flags_ctx *ctx = user_data;

	return imap_resync_flags_all(s, ctx->f->mailbox, ctx->f->uidvalidity,
				     ctx->f->max_uid, watch_flag_cb, ctx,
				     error);
}

static void watch_warn(const char *what, const char *mailbox, GError **err)
{
	imapfs_info("watch: cannot %s %s: %s", what, mailbox, (*err)->message);
	g_clear_error(err);
}

static struct watch_seen *watch_seen_get(struct fs_watch *w,
					 const char *mailbox)
{
	struct watch_seen *s = g_hash_table_lookup(w->seen, mailbox);

	if (s == NULL) {
		s = g_new0(struct watch_seen, 1);
		g_hash_table_insert(w->seen, g_strdup(mailbox), s);
	}
	return s;
}

/* TRUE if @mailbox owes a full flag listing (watch_seen.flags_due);
 * @paid: it was just made. */
static gboolean watch_flags_owed(struct fs_watch *w, const char *mailbox,
				 gboolean paid)
{
	gboolean due;

	g_mutex_lock(&w->lock);
	due = watch_seen_get(w, mailbox)->flags_due;
	if (paid)
		watch_seen_get(w, mailbox)->flags_due = FALSE;
	g_mutex_unlock(&w->lock);
	return due;
}

/* Brings loaded folder @mailbox in line with @st (uidnext, exists,
 * highestmodseq 0: unknown; @count_known: st->exists can be trusted). */
static void watch_sync_run(struct fs_watch *w, const char *mailbox,
			   const struct imap_mailbox_status *st,
			   gboolean count_known, gboolean force_count)
{
	struct imapfs *fs = w->fs;
	struct fs_live_folder f = {0};
	GError *err = NULL;
	gboolean complete = TRUE, condstore, qresynced = FALSE;
	uint32_t synced_next;

	if (!fs_tree_live_folder(fs->tree, mailbox, &f))
		return;
	if (st->uidvalidity != 0 && st->uidvalidity != f.uidvalidity) {
		imapfs_info("watch: UIDVALIDITY of %s changed (%u -> %u)",
			    mailbox, f.uidvalidity, st->uidvalidity);
		fs_tree_live_reset(fs->tree, fs->notify, f.ino);
		goto out;
	}
	g_mutex_lock(&w->lock);
	synced_next = watch_seen_get(w, mailbox)->uidnext;
	g_mutex_unlock(&w->lock);
	/* The server may tell of our own APPEND, COPY or MOVE before its
	 * result is in the tree: let it get there, then look again. */
	if (st->uidnext > f.max_uid + 1 &&
	    fs_commit_own_wait(fs, mailbox, WATCH_OWN_WAIT_MS)) {
		fs_live_folder_clear(&f);
		if (!fs_tree_live_folder(fs->tree, mailbox, &f))
			return;
	}
	/* New mail: what lies above the highest UID we hold. */
	if (st->uidnext > f.max_uid + 1 && st->uidnext > synced_next) {
		struct watch_meta_ctx ctx = {mailbox, f.uidvalidity,
					     f.max_uid + 1, NULL};

		ctx.metas = g_array_new(FALSE, FALSE,
					sizeof(struct imap_message_meta));
		g_array_set_clear_func(ctx.metas, watch_meta_clear);
		if (imap_pool_run(fs->pool, mailbox, watch_meta_fn, &ctx,
				  &err)) {
			int n = fs_tree_live_add(fs->tree, fs->notify, f.ino,
						 f.uidvalidity, ctx.metas);

			if (n > 0)
				imapfs_debug("watch: %d new in %s", n, mailbox);
			g_mutex_lock(&w->lock);
			watch_seen_get(w, mailbox)->uidnext = st->uidnext;
			g_mutex_unlock(&w->lock);
		} else {
			watch_warn("fetch new messages of", mailbox, &err);
			complete = FALSE;
		}
		g_array_unref(ctx.metas);
		fs_live_folder_clear(&f);
		if (!fs_tree_live_folder(fs->tree, mailbox, &f))
			return;
	}
	condstore = st->highestmodseq != 0 && f.modseq != 0;
	/* Expunged (the count says so) with QRESYNC: which went and what
	 * flags changed, in one pass; unless the count still disagrees
	 * afterwards (an expunge older than the HIGHESTMODSEQ we hold), the
	 * UID listing below is not needed. */
	if (count_known && f.count > st->exists && condstore) {
		struct watch_qresync_ctx ctx = {{w, &f, st->highestmodseq, 0},
						NULL};

		ctx.vanished = g_array_new(FALSE, FALSE,
					   sizeof(struct imap_uid_range));
		if (imap_pool_run(fs->pool, mailbox, watch_qresync_fn, &ctx,
				  &err)) {
			int n = fs_tree_live_expunge(fs->tree, fs->notify,
						     f.ino, f.uidvalidity,
						     ctx.vanished);
			struct fs_live_folder now = {0};

			if (n > 0 || ctx.flags.changed > 0)
				imapfs_debug("watch: QRESYNC: %d gone from %s, "
					     "flags of %u",
					     n, mailbox, ctx.flags.changed);
			qresynced =
				fs_tree_live_folder(fs->tree, mailbox, &now) &&
				now.count <= st->exists;
			fs_live_folder_clear(&now);
			if (qresynced)
				fs_tree_live_set_synced(
					fs->tree, f.ino, f.uidvalidity,
					st->highestmodseq, FALSE);
		} else if (g_error_matches(err, IMAP_ERROR,
					   IMAP_ERROR_UNSUPPORTED)) {
			g_clear_error(&err);
		} else {
			watch_warn("resync", mailbox, &err);
			complete = FALSE;
		}
		g_array_unref(ctx.vanished);
	}
	/* Expunged: the count says so, the UIDs that remain say which. */
	if (((count_known && f.count > st->exists) || force_count) &&
	    !qresynced) {
		struct watch_uids_ctx ctx = {mailbox, f.uidvalidity, f.max_uid,
					     NULL};
		uint64_t gen = f.gen;

		ctx.ranges = g_array_new(FALSE, FALSE,
					 sizeof(struct imap_uid_range));
		if (imap_pool_run(fs->pool, mailbox, watch_uids_fn, &ctx,
				  &err)) {
			int n = fs_tree_live_keep_only(
				fs->tree, fs->notify, f.ino, f.uidvalidity,
				ctx.ranges, f.max_uid, gen);

			if (n > 0)
				imapfs_debug("watch: %d gone from %s", n,
					     mailbox);
		} else {
			watch_warn("list the UIDs of", mailbox, &err);
			complete = FALSE;
		}
		g_array_unref(ctx.ranges);
	}
	/* Flags: CONDSTORE says whether anything changed, and what. */
	if (condstore && st->highestmodseq > f.modseq && !qresynced) {
		struct watch_flags_ctx ctx = {w, &f, st->highestmodseq, 0};

		if (imap_pool_run(fs->pool, mailbox, watch_flags_fn, &ctx,
				  &err)) {
			fs_tree_live_set_synced(fs->tree, f.ino, f.uidvalidity,
						ctx.highest, FALSE);
			if (ctx.changed > 0)
				imapfs_debug("watch: flags of %u in %s",
					     ctx.changed, mailbox);
		} else {
			watch_warn("fetch flag changes of", mailbox, &err);
			complete = FALSE;
		}
	}
	/* No CONDSTORE, and we were away: every message's flags, once. */
	if (!condstore && watch_flags_owed(w, mailbox, FALSE)) {
		struct watch_flags_ctx ctx = {w, &f, 0, 0};

		if (imap_pool_run(fs->pool, mailbox, watch_flags_all_fn, &ctx,
				  &err)) {
			watch_flags_owed(w, mailbox, TRUE);
			imapfs_debug("watch: flags of %u in %s after a "
				     "reconnect",
				     ctx.changed, mailbox);
		} else {
			watch_warn("list the flags of", mailbox, &err);
			complete = FALSE;
		}
	}
	/* In step with the server (counts agree, and with CONDSTORE the
	 * flags too): the listing needs no reload by age. */
	if (complete && count_known && st->highestmodseq != 0 &&
	    f.modseq != 0) {
		struct fs_live_folder now = {0};

		if (fs_tree_live_folder(fs->tree, mailbox, &now) &&
		    now.count == st->exists && now.uidvalidity == f.uidvalidity)
			fs_tree_live_set_synced(fs->tree, f.ino, f.uidvalidity,
						st->highestmodseq, TRUE);
		fs_live_folder_clear(&now);
	}
out:
	fs_live_folder_clear(&f);
}

/* watch_sync_run() unless this mount is renaming or deleting @mailbox
 * (what the server says of it meanwhile is no news to us). */
static void watch_sync(struct fs_watch *w, const char *mailbox,
		       const struct imap_mailbox_status *st,
		       gboolean count_known, gboolean force_count)
{
	if (!watch_enter(w, mailbox))
		return;
	watch_sync_run(w, mailbox, st, count_known, force_count);
	watch_leave(w);
}

/* ---- the hooks ---- */

static void watch_on_status(void *user_data, const char *mailbox,
			    const struct imap_mailbox_status *status)
{
	watch_sync(user_data, mailbox, status, TRUE, FALSE);
}

static void watch_on_mailboxes(void *user_data)
{
	struct fs_watch *w = user_data;
	struct imapfs *fs = w->fs;
	GHashTable *before, *after, *moved;
	GHashTableIter it;
	gpointer k, v;
	GError *err = NULL;

	/* LIST ... RETURN (STATUS) opens the mailboxes too: not while our
	 * own RENAME is under way (and its answer would be older). */
	if (!watch_enter(w, NULL))
		return;
	before = fs_tree_live_dir_names(fs->tree);
	if (fs_ops_load_mailboxes(fs, &err) != 0) {
		watch_warn("list", "the mailboxes", &err);
		g_hash_table_destroy(before);
		watch_leave(w);
		return;
	}
	after = fs_tree_live_dir_names(fs->tree);
	moved = g_hash_table_new(g_direct_hash, g_direct_equal);
	g_hash_table_iter_init(&it, after);
	while (g_hash_table_iter_next(&it, NULL, &v))
		g_hash_table_add(moved, v);
	/* Keys are "<parent ino>/<name>". */
	g_hash_table_iter_init(&it, before);
	while (g_hash_table_iter_next(&it, &k, &v)) {
		char *slash = strchr(k, '/');
		uint64_t parent = g_ascii_strtoull(k, NULL, 10);

		if (g_hash_table_lookup(after, k) == v)
			continue;
		/* Renamed by another client, the same inode elsewhere now:
		 * only the old name goes (a delete would tell the kernel
		 * the directory itself is gone). */
		if (g_hash_table_contains(moved, v))
			fs_notify_inval_entry(fs->notify, parent, slash + 1);
		else
			fs_notify_delete(fs->notify, parent,
					 (uint64_t)(uintptr_t)v, slash + 1);
		fs_notify_inval_inode(fs->notify, parent);
	}
	g_hash_table_destroy(moved);
	g_hash_table_iter_init(&it, after);
	while (g_hash_table_iter_next(&it, &k, &v)) {
		char *slash = strchr(k, '/');
		uint64_t parent = g_ascii_strtoull(k, NULL, 10);

		if (g_hash_table_contains(before, k))
			continue;
		fs_notify_inval_entry(fs->notify, parent, slash + 1);
		fs_notify_inval_inode(fs->notify, parent);
	}
	g_hash_table_destroy(before);
	g_hash_table_destroy(after);
	watch_leave(w);
}

static void watch_on_selected(void *user_data, const char *mailbox,
			      const struct imap_mailbox_status *status,
			      struct imap_mailbox_changes *ch)
{
	struct fs_watch *w = user_data;
	struct imapfs *fs = w->fs;
	struct fs_live_folder f = {0};
	gboolean held;

	g_mutex_lock(&w->lock);
	held = watch_is_held(w, mailbox);
	g_mutex_unlock(&w->lock);
	if (held || !fs_tree_live_folder(fs->tree, mailbox, &f))
		return;
	if (ch->uidvalidity_changed || (status->uidvalidity != 0 &&
					status->uidvalidity != f.uidvalidity)) {
		fs_tree_live_reset(fs->tree, fs->notify, f.ino);
		fs_live_folder_clear(&f);
		return;
	}
	if (ch->expunged->len > 0)
		fs_tree_live_expunge(fs->tree, fs->notify, f.ino, f.uidvalidity,
				     ch->expunged);
	for (guint i = 0; i < ch->flags->len; i++) {
		const struct imap_flag_change *c =
			&g_array_index(ch->flags, struct imap_flag_change, i);

		fs_tree_live_set_flags(fs->tree, fs->notify, f.ino,
				       f.uidvalidity, c->uid, c->flags);
	}
	if (ch->flags->len > 0 && status->highestmodseq != 0)
		fs_tree_live_set_synced(fs->tree, f.ino, f.uidvalidity,
					status->highestmodseq, FALSE);
	fs_live_folder_clear(&f);
	if (ch->grew || ch->desync)
		watch_sync(w, mailbox, status, !ch->desync, ch->desync);
}

static void watch_on_connected(void *user_data, unsigned int index,
			       gboolean notify)
{
	struct fs_watch *w = user_data;
	gboolean reconnect;

	g_mutex_lock(&w->lock);
	watch_set_busy(w, index, FALSE);
	g_mutex_unlock(&w->lock);
	watch_check_unlimited(w);
	if (index != 0)
		return;
	g_atomic_int_set(&w->room_asked, 0);
	/* Whatever happened while we were away: the mailbox list now,
	 * every loaded folder at its next poll (or from NOTIFY's STATUS
	 * burst). */
	g_mutex_lock(&w->lock);
	g_hash_table_remove_all(w->seen);
	w->list_polled_at = 0;
	reconnect = w->connected_once;
	w->connected_once = TRUE;
	g_mutex_unlock(&w->lock);
	/* Without CONDSTORE nothing tells which flags changed while we were
	 * away: each folder loaded before gets one full flag listing. */
	if (reconnect) {
		GArray *folders = fs_tree_live_folders(w->fs->tree);

		g_mutex_lock(&w->lock);
		for (guint i = 0; i < folders->len; i++)
			watch_seen_get(
				w,
				g_array_index(folders, struct fs_live_folder, i)
					.mailbox)
				->flags_due = TRUE;
		g_mutex_unlock(&w->lock);
		g_array_unref(folders);
	}
	if (notify)
		watch_on_mailboxes(w);
}

/* The @index-th most recently used loaded folder that is not held. */
static char *watch_pick(void *user_data, unsigned int index)
{
	struct fs_watch *w = user_data;
	GArray *folders = fs_tree_live_folders(w->fs->tree);
	char *name = NULL;
	unsigned int seen = 0;
	/* Past the listeners that IDLE: nothing (the folders are polled). */
	guint len = index < (unsigned int)g_atomic_int_get(&w->idled)
			    ? folders->len
			    : 0;

	g_mutex_lock(&w->lock);
	watch_set_busy(w, index, TRUE);
	for (guint i = 0; i < len; i++) {
		const char *m = g_array_index(folders, struct fs_live_folder, i)
					.mailbox;

		if (watch_is_held(w, m))
			continue;
		if (seen++ == index) {
			name = g_strdup(m);
			break;
		}
	}
	g_mutex_unlock(&w->lock);
	g_array_unref(folders);
	return name;
}

static void watch_on_quiet(void *user_data, unsigned int index)
{
	struct fs_watch *w = user_data;

	g_mutex_lock(&w->lock);
	watch_set_busy(w, index, FALSE);
	g_mutex_unlock(&w->lock);
}

static gint64 watch_interval(gint64 now, gint64 used_at)
{
	return CLAMP((now - used_at) / 10, WATCH_POLL_MIN_US,
		     WATCH_POLL_MAX_US);
}

/* @every rounded down to WATCH_POLL_MIN_US times a power of two. Polls
 * fall due at the multiples of it on the monotonic clock, so those of
 * folders used at different times come together: without NOTIFY every
 * poll ends the IDLE, and 50 folders each on a schedule of its own ended
 * it several times a second. Never later than @every asks. */
static gint64 watch_slot(gint64 every)
{
	gint64 q = WATCH_POLL_MIN_US;

	while (q * 2 <= every)
		q *= 2;
	return q;
}

/* Whether something last done at @done (0: never) is due at @now in
 * slots of @q; *next_r is lowered to the start of the next slot. */
static gboolean watch_due(gint64 now, gint64 done, gint64 q, gint64 *next_r)
{
	gint64 start = now - now % q;

	*next_r = MIN(*next_r, start + q - now);
	return done < start;
}

static char **watch_poll(void *user_data,
			 gboolean (*covered)(void *ctx, const char *mailbox),
			 void *ctx, int *next_ms_r)
{
	struct fs_watch *w = user_data;
	GArray *folders = fs_tree_live_folders(w->fs->tree);
	GPtrArray *due = g_ptr_array_new();
	gint64 now = g_get_monotonic_time();
	gint64 next = WATCH_POLL_MAX_US, list_every;
	gboolean list_due;

	g_mutex_lock(&w->lock);
	watch_set_busy(w, 0, TRUE);
	/* The first ones are IDLEd on; poll the rest. */
	for (guint i = (guint)g_atomic_int_get(&w->idled); i < folders->len;
	     i++) {
		const struct fs_live_folder *f =
			&g_array_index(folders, struct fs_live_folder, i);
		struct watch_seen *s;
		gint64 every = watch_slot(watch_interval(now, f->used_at));

		/* Being renamed or deleted by us: asked about after. */
		if (watch_is_held(w, f->mailbox) || covered(ctx, f->mailbox))
			continue;
		s = watch_seen_get(w, f->mailbox);
		if (watch_due(now, s->polled_at, every, &next)) {
			s->polled_at = now;
			g_ptr_array_add(due, g_strdup(f->mailbox));
		}
	}
	list_every =
		folders->len > 0
			? MAX(watch_interval(
				      now,
				      g_array_index(folders,
						    struct fs_live_folder, 0)
					      .used_at),
			      WATCH_LIST_MIN_US)
			: WATCH_POLL_MAX_US;
	list_due = watch_due(now, w->list_polled_at, watch_slot(list_every),
			     &next);
	if (list_due)
		w->list_polled_at = now;
	g_mutex_unlock(&w->lock);
	g_array_unref(folders);
	watch_limit_poll(w, now, &next);
	if (list_due)
		watch_on_mailboxes(w);
	*next_ms_r = (int)MAX((next + 999) / 1000, 100);
	g_ptr_array_add(due, NULL);
	return (char **)g_ptr_array_free(due, FALSE);
}

/* ---- coordination with the pool ----
 *
 * The listeners' connections count against the same per-user limit as
 * the pool's, and they meet the same server: once the server refused a
 * connection for its limit (to a listener or to the pool), only listener
 * 0 stays (the folders the others IDLEd on are polled) and the pool gets
 * their connections; while the pool knows the server unreachable no
 * listener connects on its own schedule (the pool's reconnect thread
 * probes, and its coming back online wakes them at once); a listener
 * that finds the server gone tells the pool, so requests fail at once
 * instead of each waiting out its timeout. */

/* A refusal for the server's limit (lock held): listener 0 alone until
 * the retry is due, each refusal after one pushing it further out. */
static void watch_limit_locked(struct fs_watch *w)
{
	gint64 now = g_get_monotonic_time();

	if (w->limited && now < w->retry_at)
		return; /* the same streak */
	if (w->n > 1)
		imapfs_warning("watch: the server allows no more "
			       "connections: one listener instead of %u, the "
			       "other folders are polled; trying again in %u s",
			       w->n, (w->retry_ms + 999) / 1000);
	w->limited = TRUE;
	w->retry_at = now + (gint64)w->retry_ms * 1000;
	w->retry_ms = MIN(w->retry_ms * 2, MAX((unsigned int)WATCH_LIMIT_MAX_MS,
					       w->limit_first_ms));
	w->retry_told = FALSE;
	g_atomic_int_set(&w->idled, MIN(g_atomic_int_get(&w->idled), 1));
}

static void watch_limit(struct fs_watch *w)
{
	g_mutex_lock(&w->lock);
	watch_limit_locked(w);
	g_mutex_unlock(&w->lock);
}

/* Every listener holds a connection again (after a retry): the limit no
 * longer holds them down. */
static void watch_check_unlimited(struct fs_watch *w)
{
	struct imap_idle_stats st;
	gboolean limited;

	g_mutex_lock(&w->lock);
	limited = w->limited;
	g_mutex_unlock(&w->lock);
	if (!limited)
		return;
	for (unsigned int i = 0; i < w->n; i++) {
		/* (NULL: fs_watch_start() has not started it yet.) */
		if (w->listeners[i] == NULL)
			return;
		imap_idle_stats(w->listeners[i], &st);
		if (!st.connected)
			return;
	}
	g_mutex_lock(&w->lock);
	if (!w->limited) {
		g_mutex_unlock(&w->lock);
		return;
	}
	if (w->n > 1)
		imapfs_info("watch: all %u listeners connected again", w->n);
	w->limited = FALSE;
	w->retry_ms = w->limit_first_ms;
	g_atomic_int_set(&w->idled, (gint)w->idled_full);
	g_mutex_unlock(&w->lock);
	/* The others pick their folders now. */
	for (unsigned int i = 1; i < w->n; i++)
		imap_idle_wake(w->listeners[i]);
}

/* Listener 0's poll: when the retry is due the others are woken (once);
 * until then *next_us_r is lowered to it, or to the pool's next
 * regrowth, which the retry waits for. */
static void watch_limit_poll(struct fs_watch *w, gint64 now, gint64 *next_us_r)
{
	struct imap_pool_state ps;
	gboolean wake = FALSE;

	imap_pool_state(w->fs->pool, &ps);
	g_free(ps.reason);
	g_mutex_lock(&w->lock);
	if (w->limited && now < w->retry_at) {
		*next_us_r = MIN(*next_us_r, w->retry_at - now);
	} else if (w->limited && ps.size < ps.configured_size) {
		*next_us_r = MIN(*next_us_r, (gint64)ps.regrow_ms * 1000 +
						     G_USEC_PER_SEC / 10);
	} else if (w->limited && !w->retry_told) {
		w->retry_told = TRUE;
		wake = TRUE;
	}
	g_mutex_unlock(&w->lock);
	if (wake && w->n > 1) {
		imapfs_info("watch: trying %u more listener(s) again",
			    w->n - 1);
		for (unsigned int i = 1; i < w->n; i++)
			imap_idle_wake(w->listeners[i]);
	}
	/* Listener 0 alone (NOTIFY, no IDLE) or the others stayed: done. */
	if (wake)
		watch_check_unlimited(w);
}

static gboolean watch_wanted(void *user_data, unsigned int index,
			     gboolean connected)
{
	struct fs_watch *w = user_data;
	struct imap_pool_state ps;
	gboolean want;

	imap_pool_state(w->fs->pool, &ps);
	g_free(ps.reason);
	g_mutex_lock(&w->lock);
	/* The pool was refused too (or gave room to listener 0): the
	 * pool's requests come first. */
	if (ps.limit_refusals != w->seen_refusals) {
		w->seen_refusals = ps.limit_refusals;
		watch_limit_locked(w);
	}
	want = connected || !ps.offline;
	/* Held down by the limit: the others come back once the retry is
	 * due, the pool has its full size and is online; a refusal meanwhile
	 * (theirs or the pool's) sends them away again. */
	if (index > 0 && w->limited)
		want = g_get_monotonic_time() >= w->retry_at &&
		       ps.size >= ps.configured_size && !ps.offline;
	g_mutex_unlock(&w->lock);
	return want;
}

static void watch_lost(void *user_data, unsigned int index, const GError *err,
		       gboolean connecting)
{
	struct fs_watch *w = user_data;

	if (g_error_matches(err, IMAP_ERROR, IMAP_ERROR_UNAVAILABLE)) {
		/* Listener 0 is the one kept: the pool makes room for it
		 * (once per refusal; the pool never goes below 1). */
		if (index == 0 && connecting &&
		    g_atomic_int_compare_and_exchange(&w->room_asked, 0, 1))
			imap_pool_make_room(w->fs->pool, err);
		watch_limit(w);
		/* The others drop out; this one backs off. */
		for (unsigned int i = 0; i < w->n; i++)
			if (i != index)
				imap_idle_wake(w->listeners[i]);
		return;
	}
	/* Unreachable: no connection could be made (as the pool judges its
	 * own opens), or the one we had went silent (a probe or command
	 * timed out). A reset or a BYE on a working connection is followed
	 * by a reconnect that tells. */
	if (err->domain == IMAP_ERROR &&
	    (err->code == IMAP_ERROR_TIMEOUT ||
	     (connecting &&
	      (err->code == IMAP_ERROR_IO || err->code == IMAP_ERROR_TLS ||
	       err->code == IMAP_ERROR_BYE))))
		imap_pool_report_unreachable(w->fs->pool, err);
}

/* The pool's change hook (pool lock held): every listener looks again. */
static void watch_on_pool_change(void *user_data)
{
	struct fs_watch *w = user_data;

	for (unsigned int i = 0; i < w->n; i++)
		imap_idle_wake(w->listeners[i]);
}

char *fs_watch_describe(struct fs_watch *watch)
{
	struct imap_idle_stats st;
	unsigned int connected = 0, connects = 0, probes = 0, renewals = 0;
	gboolean notify = FALSE;
	char *limit, *text;

	for (unsigned int i = 0; i < watch->n; i++) {
		imap_idle_stats(watch->listeners[i], &st);
		connected += st.connected;
		connects += st.connects;
		probes += st.probes;
		renewals += st.renewals;
		notify |= st.notify;
	}
	g_mutex_lock(&watch->lock);
	if (!watch->limited) {
		limit = g_strdup("");
	} else {
		gint64 left = watch->retry_at - g_get_monotonic_time();

		limit = left > 0 ? g_strdup_printf(
					   ", limited by the server; "
					   "more in %d s",
					   (int)((left + G_USEC_PER_SEC - 1) /
						 G_USEC_PER_SEC))
				 : g_strdup(", limited by the server; trying "
					    "more");
	}
	g_mutex_unlock(&watch->lock);
	text = g_strdup_printf("%u of %u listener(s) connected (%s%s); %u "
			       "connection(s) made, %u watchdog probe(s), %u "
			       "IDLE renewal(s)",
			       connected, watch->n, notify ? "NOTIFY" : "IDLE",
			       limit, connects, probes, renewals);
	g_free(limit);
	return text;
}

/* A folder was loaded (tree lock held): the listeners look at what to
 * watch and poll again. */
static void watch_on_load(void *user_data)
{
	struct fs_watch *w = user_data;

	for (unsigned int i = 0; i < w->n; i++)
		imap_idle_wake(w->listeners[i]);
}

struct fs_watch *fs_watch_start(struct imapfs *fs,
				const struct imap_account *account,
				const struct fs_watch_params *params)
{
	struct fs_watch *w = g_new0(struct fs_watch, 1);
	struct imap_idle_hooks hooks = {
		.connected = watch_on_connected,
		.status = watch_on_status,
		.mailboxes = watch_on_mailboxes,
		.selected = watch_on_selected,
		.pick = watch_pick,
		.poll = watch_poll,
		.quiet = watch_on_quiet,
		.wanted = watch_wanted,
		.lost = watch_lost,
		.user_data = w,
	};

	w->fs = fs;
	w->limit_first_ms = params->limit_retry_ms > 0 ? params->limit_retry_ms
						       : WATCH_LIMIT_FIRST_MS;
	w->retry_ms = w->limit_first_ms;
	g_mutex_init(&w->lock);
	g_cond_init(&w->cond);
	w->held = g_ptr_array_new_with_free_func(g_free);
	w->seen =
		g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
	w->n = params->notify || !params->idle
		       ? 1
		       : CLAMP(params->listeners, 1u,
			       (unsigned int)WATCH_MAX_LISTENERS);
	w->idled = params->notify || !params->idle ? 0 : w->n;
	w->idled_full = (unsigned int)w->idled;
	for (unsigned int i = 0; i < w->n; i++) {
		struct imap_idle_params p = {
			.account = account,
			.index = i,
			.try_notify = params->notify,
			.notify_events = IMAP_IDLE_NOTIFY_MESSAGES,
			.watchdog_ms = params->watchdog_ms,
			.renew_ms = params->renew_ms,
		};

		w->listeners[i] = imap_idle_start(&p, &hooks);
	}
	fs_tree_live_set_load_hook(fs->tree, watch_on_load, w);
	imap_pool_set_change_hook(fs->pool, watch_on_pool_change, w);
	return w;
}

void fs_watch_stop(struct fs_watch *watch)
{
	if (watch == NULL)
		return;
	fs_tree_live_set_load_hook(watch->fs->tree, NULL, NULL);
	imap_pool_set_change_hook(watch->fs->pool, NULL, NULL);
	for (unsigned int i = 0; i < watch->n; i++)
		imap_idle_stop(watch->listeners[i]);
	g_hash_table_destroy(watch->seen);
	g_ptr_array_unref(watch->held);
	g_cond_clear(&watch->cond);
	g_mutex_clear(&watch->lock);
	g_free(watch);
}

void fs_watch_hold(struct fs_watch *watch, const char *mailbox)
{
	gint64 deadline = g_get_monotonic_time() + WATCH_HOLD_WAIT_US;

	if (watch == NULL)
		return;
	g_mutex_lock(&watch->lock);
	g_ptr_array_add(watch->held, g_strdup(mailbox));
	g_mutex_unlock(&watch->lock);
	/* An IDLE on the mailbox moves to another folder. */
	for (unsigned int i = 0; i < watch->n; i++)
		imap_idle_wake(watch->listeners[i]);
	g_mutex_lock(&watch->lock);
	while ((watch->busy != 0 || watch->inflight != 0) &&
	       g_cond_wait_until(&watch->cond, &watch->lock, deadline))
		;
	g_mutex_unlock(&watch->lock);
}

void fs_watch_release(struct fs_watch *watch, const char *mailbox)
{
	if (watch == NULL)
		return;
	g_mutex_lock(&watch->lock);
	for (guint i = 0; i < watch->held->len; i++) {
		if (strcmp(watch->held->pdata[i], mailbox) == 0) {
			g_ptr_array_remove_index_fast(watch->held, i);
			break;
		}
	}
	g_mutex_unlock(&watch->lock);
	/* What was skipped meanwhile (the mailbox list) is due now. */
	for (unsigned int i = 0; i < watch->n; i++)
		imap_idle_wake(watch->listeners[i]);
}
