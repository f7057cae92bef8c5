/* folder.c - see folder.h. */
#include "config.h"

#include <errno.h>
#include <string.h>

#include "folder.h"
#include "imap-error.h"
#include "log.h"
#include "namemap.h"
#include "resync.h"

/* Large folders are listed in UID windows holding about this many
 * messages, so that no single reply grows without bound. */
#define FOLDER_META_CHUNK 20000
/* After this many single-message lookups in a folder never listed, the
 * next one lists it in full: a third name is a walk by name (a script
 * going through UIDs, cat of several files), where a listing is cheaper
 * than two round trips per name and the folder-walk prefetch needs the
 * listing to plan its batches. */
#define FOLDER_SINGLE_MAX 2

struct folder_ctx {
	const char *mailbox;
	struct fs_folder_base base;
	struct imap_mailbox_status status;
	uint32_t uid; /* a single lookup */
	/* Flag strings of the listing, interned: a million messages share
	 * a few sets (string -> itself, owned). */
	GHashTable *flag_sets;
	GArray *metas;
	struct fs_folder_delta delta;
};

static void folder_ctx_init(struct folder_ctx *ctx)
{
	memset(ctx, 0, sizeof(*ctx));
	ctx->flag_sets =
		g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
}

static void folder_ctx_clear(struct folder_ctx *ctx)
{
	g_clear_pointer(&ctx->metas, g_array_unref);
	g_clear_pointer(&ctx->delta.metas, g_array_unref);
	g_clear_pointer(&ctx->delta.flags, g_array_unref);
	g_clear_pointer(&ctx->delta.present, g_array_unref);
	g_hash_table_destroy(ctx->flag_sets);
	fs_folder_base_clear(&ctx->base);
}

static const char *folder_intern(struct folder_ctx *ctx, const char *flags)
{
	char *s = g_hash_table_lookup(ctx->flag_sets, flags);

	if (s == NULL) {
		s = g_strdup(flags);
		g_hash_table_add(ctx->flag_sets, s);
	}
	return s;
}

/* @user_data: the GArray ** to append to, in the folder_ctx below. */
struct folder_sink {
	struct folder_ctx *ctx;
	GArray *arr;
};

static void folder_meta_cb(const struct imap_message_meta *meta,
			   void *user_data)
{
	struct folder_sink *sink = user_data;
	struct imap_message_meta copy = *meta;

	copy.flags = (char *)folder_intern(sink->ctx, meta->flags);
	g_array_append_val(sink->arr, copy);
}

static GArray *folder_metas_new(guint reserve)
{
	return g_array_sized_new(FALSE, FALSE, sizeof(struct imap_message_meta),
				 reserve);
}

static gboolean folder_load_fn(struct imap_session *s, void *user_data,
			       GError **error)
{
	struct folder_ctx *ctx = user_data;
	struct folder_sink sink = {ctx, NULL};
	uint32_t lo, step;

	if (!imap_session_examine(s, ctx->mailbox, &ctx->status, error))
		return FALSE;
	/* Sized from EXISTS: no doubling of a million-entry array (a few
	 * more for mail arriving during the listing). */
	g_clear_pointer(&ctx->metas, g_array_unref);
	ctx->metas = folder_metas_new(ctx->status.exists +
				      ctx->status.exists / 64 + 16);
	sink.arr = ctx->metas;
	if (ctx->status.exists == 0)
		return TRUE;
	if (ctx->status.exists <= FOLDER_META_CHUNK || ctx->status.uidnext == 0)
		return imap_session_fetch_meta(s, ctx->mailbox,
					       ctx->status.uidvalidity, 1, 0,
					       folder_meta_cb, &sink, error);
	/* Windows sized from the UID density so each holds about
	 * FOLDER_META_CHUNK messages; the last one is open-ended ("*") so a
	 * message that arrived meanwhile is not missed. */
	step = (uint32_t)MAX((uint64_t)ctx->status.uidnext * FOLDER_META_CHUNK /
				     ctx->status.exists,
			     (uint64_t)FOLDER_META_CHUNK);
	for (lo = 1;; lo += step) {
		gboolean last = (uint64_t)lo + step >= ctx->status.uidnext;

		if (!imap_session_fetch_meta(s, ctx->mailbox,
					     ctx->status.uidvalidity, lo,
					     last ? 0 : lo + step - 1,
					     folder_meta_cb, &sink, error))
			return FALSE;
		if (last)
			return TRUE;
	}
}

/* QRESYNC's flag changes, as the listing's metadata. */
static void folder_flag_cb(uint32_t uid, const char *flags, uint64_t modseq,
			   void *user_data)
{
	struct imap_message_meta meta = {.uid = uid, .flags = (char *)flags};

	(void)modseq;
	folder_meta_cb(&meta, user_data);
}

/* @vanished (sorted, merged) turned into what delta.present says: every
 * UID in 1..@below-1 that is not in it. */
static GArray *folder_present_from_vanished(const GArray *vanished,
					    uint32_t below)
{
	GArray *present =
		g_array_new(FALSE, FALSE, sizeof(struct imap_uid_range));
	uint64_t next = 1;

	for (guint i = 0; i < vanished->len; i++) {
		const struct imap_uid_range *v =
			&g_array_index(vanished, struct imap_uid_range, i);
		struct imap_uid_range r = {(uint32_t)next, v->lo - 1};

		if (v->lo > next)
			g_array_append_val(present, r);
		next = (uint64_t)v->hi + 1;
	}
	if (next < below) {
		struct imap_uid_range r = {(uint32_t)next, below - 1};

		g_array_append_val(present, r);
	}
	return present;
}

/* With QRESYNC, the flags and the expunges below @below in one pass
 * ("UID FETCH (CHANGEDSINCE m VANISHED)", windowed) into ctx->delta,
 * *@used_r TRUE. *@used_r FALSE (and TRUE returned, the delta untouched)
 * when the answer cannot serve: the vanished UIDs are fewer than the
 * count says went (a server that forgot, or a HIGHESTMODSEQ of ours
 * ahead of an expunge we missed); the caller then asks the old way.
 * FALSE on error. */
static gboolean folder_refresh_qresync(struct imap_session *s,
				       struct folder_ctx *ctx, uint32_t below,
				       gboolean *used_r, GError **error)
{
	const struct fs_folder_base *b = &ctx->base;
	struct folder_sink sink = {ctx, folder_metas_new(0)};
	GArray *vanished =
		g_array_new(FALSE, FALSE, sizeof(struct imap_uid_range));
	uint64_t gone = (uint64_t)b->exists + ctx->delta.metas->len -
			MIN(ctx->status.exists,
			    (uint64_t)b->exists + ctx->delta.metas->len);
	gboolean ok;

	*used_r = FALSE;
	ok = imap_session_qresync_since(s, ctx->mailbox, b->uidvalidity, 1,
					below - 1, b->modseq, folder_flag_cb,
					&sink, vanished, NULL, error);
	if (ok && imap_uid_ranges_count(vanished) >= gone) {
		*used_r = TRUE;
		ctx->delta.flags = sink.arr;
		ctx->delta.present =
			folder_present_from_vanished(vanished, below);
		ctx->delta.present_below = below;
	} else {
		if (ok)
			imapfs_debug("%s: QRESYNC reports %" G_GUINT64_FORMAT
				     " of %" G_GUINT64_FORMAT
				     " expunges, listing UIDs",
				     ctx->mailbox,
				     imap_uid_ranges_count(vanished), gone);
		g_array_unref(sink.arr);
	}
	g_array_unref(vanished);
	return ok;
}

/* What changed since ctx->base, with as little as the server allows:
 *  - EXAMINE gives UIDVALIDITY (changed: the caller loads afresh),
 *    UIDNEXT, the message count and HIGHESTMODSEQ;
 *  - new mail: UID FETCH <old UIDNEXT>:* of the metadata;
 *  - expunges: only when the count is not the old one plus the new
 *    mail; with QRESYNC, UID FETCH (UID FLAGS) (CHANGEDSINCE m VANISHED)
 *    gives them and the flag changes in one pass (windows of 5,000
 *    UIDs); else the UIDs that exist (imap_resync_uid_ranges: ESEARCH
 *    in windows, a few bytes each without holes);
 *  - flags: with CONDSTORE, UID FETCH (UID FLAGS) (CHANGEDSINCE m) when
 *    HIGHESTMODSEQ moved; without it, (UID FLAGS) of every message (the
 *    only way to see a flag change, and still a fraction of a listing).
 */
static gboolean folder_refresh_fn(struct imap_session *s, void *user_data,
				  GError **error)
{
	struct folder_ctx *ctx = user_data;
	const struct fs_folder_base *b = &ctx->base;
	struct folder_sink sink = {ctx, NULL};
	gboolean condstore, expunged, done = FALSE;
	uint32_t below = b->uidnext;

	if (!imap_session_examine(s, ctx->mailbox, &ctx->status, error))
		return FALSE;
	if (ctx->status.uidvalidity != b->uidvalidity)
		return TRUE;
	g_clear_pointer(&ctx->delta.metas, g_array_unref);
	g_clear_pointer(&ctx->delta.flags, g_array_unref);
	g_clear_pointer(&ctx->delta.present, g_array_unref);
	ctx->delta.metas = folder_metas_new(0);
	/* Every message from the old UIDNEXT on comes in this listing (or
	 * none exists up there when UIDNEXT did not move). */
	ctx->delta.new_from = below;
	if (ctx->status.uidnext == 0 || ctx->status.uidnext > below) {
		sink.arr = ctx->delta.metas;
		if (!imap_session_fetch_meta(s, ctx->mailbox, b->uidvalidity,
					     below, 0, folder_meta_cb, &sink,
					     error))
			return FALSE;
	}
	if (below <= 1)
		return TRUE;
	condstore = ctx->status.highestmodseq != 0 && b->modseq != 0;
	expunged = ctx->status.exists != b->exists + ctx->delta.metas->len;
	if (expunged && condstore && imap_session_qresync(s) &&
	    !folder_refresh_qresync(s, ctx, below, &done, error))
		return FALSE;
	if (done)
		return TRUE;
	if (!condstore || ctx->status.highestmodseq != b->modseq) {
		ctx->delta.flags = folder_metas_new(0);
		sink.arr = ctx->delta.flags;
		if (!imap_session_fetch_flags(s, ctx->mailbox, b->uidvalidity,
					      1, below - 1,
					      condstore ? b->modseq : 0,
					      folder_meta_cb, &sink, error))
			return FALSE;
	}
	if (expunged) {
		ctx->delta.present = g_array_new(FALSE, FALSE,
						 sizeof(struct imap_uid_range));
		ctx->delta.present_below = below;
		if (!imap_resync_uid_ranges(s, ctx->mailbox, b->uidvalidity,
					    below - 1, ctx->delta.present,
					    error))
			return FALSE;
	}
	return TRUE;
}

/* After a failed load or refresh: the error's errno, or 0 for a listed
 * level whose EXAMINE fails (deleted, children kept): a directory that
 * holds only subdirectories. */
static int folder_failed(struct imapfs *fs, uint64_t ino, const char *mailbox,
			 uint32_t listed_uidvalidity, GError *err)
{
	int r = -fs_errno_from_error(err);

	if ((r == -ENOENT || g_error_matches(err, IMAP_ERROR, IMAP_ERROR_NO)) &&
	    fs_tree_folder_vanished(fs->tree, ino)) {
		r = 0;
	} else if (listed_uidvalidity != 0 && imap_error_is_unreachable(err)) {
		/* Listed before and the server cannot be reached: the old
		 * listing is served (possibly stale) and brought up to date
		 * on a use after the server is back. */
		imapfs_debug("serving the old listing of %s: %s", mailbox,
			     err->message);
		r = 0;
	} else if (!g_error_matches(err, IMAP_ERROR, IMAP_ERROR_OFFLINE)) {
		imapfs_warning("cannot list %s: %s", mailbox, err->message);
	}
	g_error_free(err);
	return r;
}

int fs_folder_load(struct imapfs *fs, uint64_t ino, gint64 max_age_us)
{
	int round, r = 0;

	/* A refresh that finds a new UIDVALIDITY is followed by a full load
	 * (the second round). */
	for (round = 0; round < 2; round++) {
		struct folder_ctx ctx;
		GError *err = NULL;
		gboolean ok;

		folder_ctx_init(&ctx);
		r = fs_tree_folder_begin(fs->tree, ino, max_age_us, &ctx.base);
		if (r <= 0) {
			folder_ctx_clear(&ctx);
			return round > 0 && r == 0 ? 1 : r;
		}
		ctx.mailbox = ctx.base.mailbox;
		if (r == FS_FOLDER_LOAD) {
			ok = imap_pool_run(fs->pool, ctx.mailbox,
					   folder_load_fn, &ctx, &err);
			fs_tree_folder_end(fs->tree, ino, ok, &ctx.status,
					   ctx.metas);
		} else {
			ok = imap_pool_run(fs->pool, ctx.mailbox,
					   folder_refresh_fn, &ctx, &err);
			fs_tree_folder_refresh_end(fs->tree, ino, ok,
						   &ctx.status, &ctx.delta);
		}
		if (!ok)
			r = folder_failed(fs, ino, ctx.mailbox,
					  ctx.base.uidvalidity, err);
		else if (r == FS_FOLDER_LOAD ||
			 ctx.status.uidvalidity == ctx.base.uidvalidity)
			round = 2; /* done */
		folder_ctx_clear(&ctx);
		if (!ok)
			return r;
	}
	return 1;
}

static gboolean folder_one_fn(struct imap_session *s, void *user_data,
			      GError **error)
{
	struct folder_ctx *ctx = user_data;
	struct folder_sink sink = {ctx, ctx->metas};

	g_array_set_size(ctx->metas, 0);
	return imap_session_examine(s, ctx->mailbox, &ctx->status, error) &&
	       imap_session_fetch_meta(s, ctx->mailbox, ctx->status.uidvalidity,
				       ctx->uid, ctx->uid, folder_meta_cb,
				       &sink, error);
}

int fs_folder_prepare_lookup(struct imapfs *fs, uint64_t ino, uint32_t uid)
{
	struct folder_ctx ctx;
	struct fs_entry e;
	char name[32], *mailbox = NULL;
	GError *err = NULL;
	guint known = 0;
	int r;

	if (!fs_tree_folder_cold(fs->tree, ino, &mailbox, &known) ||
	    known >= FOLDER_SINGLE_MAX) {
		g_free(mailbox);
		r = fs_folder_load(fs, ino, fs->listing_ttl_us);
		return r < 0 ? r : 0;
	}
	fs_namemap_message_name(uid, name, sizeof(name));
	if (fs_tree_peek(fs->tree, ino, name, &e) > FS_NAME_NONE) {
		/* Found by an earlier single lookup. */
		fs_entry_clear(&e);
		g_free(mailbox);
		return 0;
	}
	folder_ctx_init(&ctx);
	ctx.base.mailbox = mailbox;
	ctx.mailbox = mailbox;
	ctx.uid = uid;
	ctx.metas = folder_metas_new(1);
	if (!imap_pool_run(fs->pool, mailbox, folder_one_fn, &ctx, &err))
		r = folder_failed(fs, ino, mailbox, 0, err);
	else
		r = fs_tree_folder_add_one(
			fs->tree, ino, &ctx.status,
			ctx.metas->len > 0
				? &g_array_index(ctx.metas,
						 struct imap_message_meta, 0)
				: NULL);
	folder_ctx_clear(&ctx);
	return r;
}
