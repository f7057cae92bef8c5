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
};

static void resync_flags_cb(struct imap_response *resp, void *user_data)
{
	struct resync_flags_ctx *ctx = user_data;
	const struct imap_arg *items, *flags = NULL;
	size_t n, nflags = 0;
	uint32_t uid = 0;
	uint64_t modseq = 0;
	gboolean have_flags = FALSE;
	char *str;

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
	if (uid == 0 || !have_flags)
		return;
	if (modseq > ctx->highest)
		ctx->highest = modseq;
	str = imap_flag_list_string(flags, nflags);
	ctx->fn(uid, str, modseq, ctx->user_data);
	g_free(str);
}

gboolean imap_session_flags_since(struct imap_session *session,
				  const char *mailbox, uint32_t uidvalidity,
				  uint64_t modseq, imap_flags_fn *fn,
				  void *user_data, uint64_t *highest_r,
				  GError **error)
{
	struct resync_flags_ctx ctx = {fn, user_data, 0};
	struct imap_cmd *cmd;
	char *since;
	gboolean ok;

	if (!imap_session_has_cap(session, "CONDSTORE")) {
		g_set_error(error, IMAP_ERROR, IMAP_ERROR_UNSUPPORTED,
			    "server has no CONDSTORE");
		return FALSE;
	}
	if (!imap_session_catch_up(session, mailbox, uidvalidity, error))
		return FALSE;
	cmd = imap_cmd_new("UID FETCH");
	since = g_strdup_printf("(CHANGEDSINCE %" G_GUINT64_FORMAT ")", modseq);
	imap_cmd_add_atom(cmd, "1:*");
	imap_cmd_add_atom(cmd, "(UID FLAGS)");
	imap_cmd_add_atom(cmd, since);
	g_free(since);
	ok = imap_session_run(session, cmd, resync_flags_cb, &ctx, NULL, error);
	imap_cmd_free(cmd);
	if (ok && highest_r != NULL && ctx.highest > *highest_r)
		*highest_r = ctx.highest;
	return ok;
}
