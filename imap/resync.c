/* resync.c - see resync.h. */
#include "config.h"

#include <string.h>

#include "imap-error.h"
#include "mailbox.h"
#include "resync.h"
#include "session-int.h"
#include "session-private.h"

/* UIDs per UID SEARCH window: at most 10 digits and a space each, the
 * reply stays below the parser's 64 KiB line. */
#define RESYNC_SEARCH_WINDOW 5000u

gboolean imap_session_catch_up(struct imap_session *session,
			       const char *mailbox, uint32_t uidvalidity,
			       GError **error)
{
	gboolean was = session->selected != NULL &&
		       strcmp(session->selected, mailbox) == 0;
	struct imap_cmd *cmd;
	gboolean ok;

	if (!imap_session_ensure(session, mailbox, uidvalidity, FALSE, error))
		return FALSE;
	if (!was)
		return TRUE;
	cmd = imap_cmd_new("NOOP");
	ok = imap_session_run(session, cmd, NULL, NULL, NULL, error);
	imap_cmd_free(cmd);
	return ok &&
	       imap_session_ensure(session, mailbox, uidvalidity, FALSE, error);
}

struct resync_search_ctx {
	GArray *ranges;
	gboolean bad;
};

static void resync_add(GArray *ranges, uint32_t lo, uint32_t hi)
{
	struct imap_uid_range r = {lo, hi};

	g_array_append_val(ranges, r);
}

/* "* SEARCH 1 2 3" or "* ESEARCH (TAG "x") UID ALL 1:3,5" */
static void resync_search_cb(struct imap_response *resp, void *user_data)
{
	struct resync_search_ctx *ctx = user_data;

	if (resp->keyword == NULL || resp->status != IMAP_STATUS_NONE)
		return;
	if (strcmp(resp->keyword, "SEARCH") == 0) {
		for (size_t i = 0; i < resp->count; i++) {
			uint32_t uid;

			if (imap_arg_get_uint32(&resp->args[i], &uid) &&
			    uid != 0)
				resync_add(ctx->ranges, uid, uid);
			else
				ctx->bad = TRUE;
		}
	} else if (strcmp(resp->keyword, "ESEARCH") == 0) {
		for (size_t i = 0; i + 1 < resp->count; i++) {
			const char *set;

			if (!imap_arg_atom_equals(&resp->args[i], "ALL"))
				continue;
			if (!imap_arg_get_atom(&resp->args[i + 1], &set) ||
			    !imap_uid_set_parse(set, 65536, ctx->ranges))
				ctx->bad = TRUE;
		}
	}
}

gboolean imap_resync_uid_ranges(struct imap_session *session,
				const char *mailbox, uint32_t uidvalidity,
				uint32_t upto, GArray *ranges, GError **error)
{
	gboolean esearch = imap_session_has_cap(session, "ESEARCH");
	struct resync_search_ctx ctx = {
		.ranges = g_array_new(FALSE, FALSE,
				      sizeof(struct imap_uid_range))};
	gboolean ok = TRUE;

	if (!imap_session_catch_up(session, mailbox, uidvalidity, error))
		ok = FALSE;
	for (uint64_t lo = 1; ok && upto > 0 && lo <= upto;
	     lo += RESYNC_SEARCH_WINDOW) {
		uint64_t hi = MIN(lo + RESYNC_SEARCH_WINDOW - 1, upto);
		struct imap_cmd *cmd = imap_cmd_new("UID SEARCH");
		char *set = g_strdup_printf(
			"%" G_GUINT64_FORMAT ":%" G_GUINT64_FORMAT, lo, hi);

		if (esearch)
			imap_cmd_add_atom(cmd, "RETURN (ALL)");
		imap_cmd_add_atom(cmd, "UID");
		imap_cmd_add_atom(cmd, set);
		g_free(set);
		ok = imap_session_run(session, cmd, resync_search_cb, &ctx,
				      NULL, error);
		imap_cmd_free(cmd);
	}
	if (ok && ctx.bad) {
		g_set_error(error, IMAP_ERROR, IMAP_ERROR_PROTOCOL,
			    "unusable SEARCH reply for %s", mailbox);
		ok = FALSE;
	}
	if (ok) {
		for (guint i = 0; i < ctx.ranges->len; i++) {
			const struct imap_uid_range *r = &g_array_index(
				ctx.ranges, struct imap_uid_range, i);

			if (r->hi <= upto)
				g_array_append_val(ranges, *r);
		}
		imap_uid_ranges_normalize(ranges);
	}
	g_array_unref(ctx.ranges);
	return ok;
}

struct resync_flags_ctx {
	imap_flags_fn *fn;
	void *user_data;
	uint64_t highest;
	uint32_t first, last; /* UIDs outside are ignored */
	GArray *vanished;     /* NULL: VANISHED is not asked for */
	gboolean bad;	      /* a malformed VANISHED */
};

/* "* n FETCH (UID u FLAGS (...) MODSEQ (m))" and, for QRESYNC,
 * "* VANISHED [(EARLIER)] set". */
static void resync_flags_cb(struct imap_response *resp, void *user_data)
{
	struct resync_flags_ctx *ctx = user_data;
	const struct imap_arg *items, *flags = NULL;
	size_t n, nflags = 0;
	uint32_t uid = 0;
	uint64_t modseq = 0;
	gboolean have_flags = FALSE;
	char *str;

	if (resp->keyword != NULL && resp->status == IMAP_STATUS_NONE &&
	    ctx->vanished != NULL && strcmp(resp->keyword, "VANISHED") == 0) {
		if (!imap_resync_parse_vanished(resp, ctx->first, ctx->last,
						ctx->vanished, NULL))
			ctx->bad = TRUE;
		return;
	}
	if (resp->keyword == NULL || strcmp(resp->keyword, "FETCH") != 0 ||
	    resp->count != 1 || !imap_arg_get_list(&resp->args[0], &items, &n))
		return;
	for (size_t i = 0; i + 1 < n; i += 2) {
		const struct imap_arg *v = &items[i + 1];
		const struct imap_arg *l;
		size_t ln;

		if (imap_arg_atom_equals(&items[i], "UID"))
			imap_arg_get_uint32(v, &uid);
		else if (imap_arg_atom_equals(&items[i], "FLAGS"))
			have_flags = imap_arg_get_list(v, &flags, &nflags);
		else if (imap_arg_atom_equals(&items[i], "MODSEQ") &&
			 imap_arg_get_list(v, &l, &ln) && ln == 1)
			imap_arg_get_uint64(&l[0], &modseq);
	}
	if (uid == 0 || !have_flags || uid < ctx->first || uid > ctx->last)
		return;
	if (modseq > ctx->highest)
		ctx->highest = modseq;
	str = imap_flag_list_string(flags, nflags);
	ctx->fn(uid, str, modseq, ctx->user_data);
	g_free(str);
}

/* One "UID FETCH @lo:@hi (UID FLAGS) [@modifier]" into @ctx (@hi 0:
 * "*"). */
static gboolean resync_fetch_window(struct imap_session *session, uint64_t lo,
				    uint64_t hi, const char *modifier,
				    struct resync_flags_ctx *ctx,
				    GError **error)
{
	struct imap_cmd *cmd = imap_cmd_new("UID FETCH");
	char *set = hi == 0 ? g_strdup_printf("%" G_GUINT64_FORMAT ":*", lo)
			    : g_strdup_printf("%" G_GUINT64_FORMAT
					      ":%" G_GUINT64_FORMAT,
					      lo, hi);
	gboolean ok;

	imap_cmd_add_atom(cmd, set);
	imap_cmd_add_atom(cmd, "(UID FLAGS)");
	if (modifier != NULL)
		imap_cmd_add_atom(cmd, modifier);
	ok = imap_session_run(session, cmd, resync_flags_cb, ctx, NULL, error);
	imap_cmd_free(cmd);
	g_free(set);
	return ok;
}

gboolean imap_session_flags_since(struct imap_session *session,
				  const char *mailbox, uint32_t uidvalidity,
				  uint64_t modseq, imap_flags_fn *fn,
				  void *user_data, uint64_t *highest_r,
				  GError **error)
{
	struct resync_flags_ctx ctx = {fn,	    user_data, 0,    1,
				       G_MAXUINT32, NULL,      FALSE};
	char *since;
	gboolean ok;

	if (!imap_session_has_cap(session, "CONDSTORE")) {
		g_set_error(error, IMAP_ERROR, IMAP_ERROR_UNSUPPORTED,
			    "server has no CONDSTORE");
		return FALSE;
	}
	if (!imap_session_catch_up(session, mailbox, uidvalidity, error))
		return FALSE;
	since = g_strdup_printf("(CHANGEDSINCE %" G_GUINT64_FORMAT ")", modseq);
	ok = resync_fetch_window(session, 1, 0, since, &ctx, error);
	g_free(since);
	if (ok && highest_r != NULL && ctx.highest > *highest_r)
		*highest_r = ctx.highest;
	return ok;
}

/* ---- QRESYNC ---- */

/* "* ENABLED CONDSTORE QRESYNC" */
static void resync_enabled_cb(struct imap_response *resp, void *user_data)
{
	struct imap_session *s = user_data;

	if (resp->keyword == NULL || strcmp(resp->keyword, "ENABLED") != 0)
		return;
	for (size_t i = 0; i < resp->count; i++) {
		const char *cap;

		if (imap_arg_get_atom(&resp->args[i], &cap) &&
		    g_ascii_strcasecmp(cap, "QRESYNC") == 0)
			s->qresync = TRUE;
	}
}

gboolean imap_resync_enable(struct imap_session *session, GError **error)
{
	gboolean qresync = imap_session_has_cap(session, "QRESYNC");
	struct imap_cmd *cmd;
	gboolean ok;

	session->qresync = FALSE;
	if (!imap_session_has_cap(session, "ENABLE") ||
	    !imap_session_has_cap(session, "CONDSTORE"))
		return TRUE;
	cmd = imap_cmd_new(qresync ? "ENABLE CONDSTORE QRESYNC"
				   : "ENABLE CONDSTORE");
	ok = imap_session_run(session, cmd, resync_enabled_cb, session, NULL,
			      error);
	imap_cmd_free(cmd);
	return ok;
}

gboolean imap_session_qresync(const struct imap_session *session)
{
	return session->qresync;
}

gboolean imap_resync_parse_vanished(const struct imap_response *resp,
				    uint32_t first, uint32_t last,
				    GArray *ranges, gboolean *earlier_r)
{
	const struct imap_arg *args = resp->args;
	size_t n = resp->count;
	gboolean earlier = FALSE;
	const char *set;
	GArray *all;

	if (resp->keyword == NULL || strcmp(resp->keyword, "VANISHED") != 0 ||
	    resp->has_number)
		return FALSE;
	if (n >= 1 && args[0].type == IMAP_ARG_LIST) {
		const struct imap_arg *l;
		size_t ln;

		if (!imap_arg_get_list(&args[0], &l, &ln) || ln != 1 ||
		    !imap_arg_atom_equals(&l[0], "EARLIER"))
			return FALSE;
		earlier = TRUE;
		args++;
		n--;
	}
	if (n != 1 || !imap_arg_get_atom(&args[0], &set))
		return FALSE;
	all = g_array_new(FALSE, FALSE, sizeof(struct imap_uid_range));
	if (!imap_uid_set_parse(set, 65536, all)) {
		g_array_unref(all);
		return FALSE;
	}
	/* Clipped to what was asked for: a hostile 1:4294967295 is one
	 * range, and no UID outside @first..@last gets out. */
	for (guint i = 0; i < all->len; i++) {
		struct imap_uid_range r =
			g_array_index(all, struct imap_uid_range, i);

		r.lo = MAX(r.lo, first);
		r.hi = MIN(r.hi, last);
		if (r.lo <= r.hi)
			g_array_append_val(ranges, r);
	}
	g_array_unref(all);
	imap_uid_ranges_normalize(ranges);
	if (earlier_r != NULL)
		*earlier_r = earlier;
	return TRUE;
}

uint32_t imap_resync_vanished_now(const struct imap_response *resp)
{
	GArray *gone;
	gboolean earlier = TRUE;
	uint64_t n = 0;

	if (resp->status != IMAP_STATUS_NONE || resp->keyword == NULL ||
	    strcmp(resp->keyword, "VANISHED") != 0)
		return 0;
	gone = g_array_new(FALSE, FALSE, sizeof(struct imap_uid_range));
	if (imap_resync_parse_vanished(resp, 1, G_MAXUINT32, gone, &earlier) &&
	    !earlier)
		n = imap_uid_ranges_count(gone);
	g_array_unref(gone);
	return (uint32_t)MIN(n, G_MAXUINT32);
}

uint64_t imap_uid_ranges_count(const GArray *ranges)
{
	uint64_t total = 0;

	for (guint i = 0; i < ranges->len; i++) {
		const struct imap_uid_range *r =
			&g_array_index(ranges, struct imap_uid_range, i);

		total += (uint64_t)r->hi - r->lo + 1;
	}
	return total;
}

gboolean imap_session_qresync_since(struct imap_session *session,
				    const char *mailbox, uint32_t uidvalidity,
				    uint32_t first, uint32_t last,
				    uint64_t modseq, imap_flags_fn *fn,
				    void *user_data, GArray *vanished,
				    uint64_t *highest_r, GError **error)
{
	struct resync_flags_ctx ctx = {fn,   user_data, 0,    MAX(first, 1u),
				       last, vanished,	FALSE};
	char *mod;
	gboolean ok = TRUE;

	if (!session->qresync) {
		g_set_error(error, IMAP_ERROR, IMAP_ERROR_UNSUPPORTED,
			    "QRESYNC is not enabled");
		return FALSE;
	}
	if (!imap_session_ensure(session, mailbox, uidvalidity, FALSE, error))
		return FALSE;
	mod = g_strdup_printf("(CHANGEDSINCE %" G_GUINT64_FORMAT " VANISHED)",
			      modseq);
	for (uint64_t lo = ctx.first; ok && lo <= last;
	     lo += RESYNC_SEARCH_WINDOW) {
		uint64_t hi = MIN(lo + RESYNC_SEARCH_WINDOW - 1, last);

		ok = resync_fetch_window(session, lo, hi, mod, &ctx, error);
	}
	g_free(mod);
	if (ok && ctx.bad) {
		g_set_error(error, IMAP_ERROR, IMAP_ERROR_PROTOCOL,
			    "unusable VANISHED reply for %s", mailbox);
		ok = FALSE;
	}
	if (ok && highest_r != NULL && ctx.highest > *highest_r)
		*highest_r = ctx.highest;
	return ok;
}

/* UIDs per window of a full flag listing: one short line per message. */
#define RESYNC_FLAGS_WINDOW 20000u

gboolean imap_resync_flags_all(struct imap_session *session,
			       const char *mailbox, uint32_t uidvalidity,
			       uint32_t upto, imap_flags_fn *fn,
			       void *user_data, GError **error)
{
	struct resync_flags_ctx ctx = {fn, user_data, 0, 1, upto, NULL, FALSE};
	gboolean ok;

	ok = imap_session_catch_up(session, mailbox, uidvalidity, error);
	for (uint64_t lo = 1; ok && lo <= upto; lo += RESYNC_FLAGS_WINDOW)
		ok = resync_fetch_window(
			session, lo, MIN(lo + RESYNC_FLAGS_WINDOW - 1, upto),
			NULL, &ctx, error);
	return ok;
}
