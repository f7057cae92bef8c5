/* mutate.c - the requests that change the server; see mutate.h.
 *
 * Every command here goes through imap_session_run_cmd(..., once = TRUE)
 * except the look-ups (STATUS, UID FETCH, UID SEARCH), so that a connection
 * that dies under a write is reported as IMAP_ERROR_UNKNOWN_OUTCOME and
 * never mistaken for "nothing happened".  Server replies that are supposed
 * to name a UID (APPENDUID, COPYUID, MODIFIED) are parsed strictly: anything
 * but exactly the expected numbers counts as "the server did not say",
 * never as a guess.
 */
#include "config.h"

#include <string.h>
#include <time.h>

#include "imap-error.h"
#include "log.h"
#include "mutate.h"
#include "session-private.h"

/* A decimal number without sign, spaces or leading garbage. */
static gboolean mutate_parse_u64(const char *s, size_t len, uint64_t max,
				 uint64_t *value_r)
{
	uint64_t v = 0;

	if (len == 0 || len > 20)
		return FALSE;
	for (size_t i = 0; i < len; i++) {
		unsigned int d;

		if (!g_ascii_isdigit(s[i]))
			return FALSE;
		d = (unsigned int)(s[i] - '0');
		if (v > (max - d) / 10)
			return FALSE;
		v = v * 10 + d;
	}
	*value_r = v;
	return TRUE;
}

/* A UID or UIDVALIDITY: 1..2^32-1. */
static gboolean mutate_parse_nz32(const char *s, size_t len, uint32_t *v_r)
{
	uint64_t v;

	if (!mutate_parse_u64(s, len, G_MAXUINT32, &v) || v == 0)
		return FALSE;
	*v_r = (uint32_t)v;
	return TRUE;
}

uint64_t imap_session_append_limit(const struct imap_session *session)
{
	const char *v = imap_conn_cap_value(session->conn, "APPENDLIMIT");
	uint64_t limit;

	if (v == NULL || !mutate_parse_u64(v, strlen(v), G_MAXUINT64, &limit))
		return 0;
	return limit;
}

const char *imap_session_personal_prefix(const struct imap_session *session)
{
	const struct session_ns *ns = session->namespaces->pdata[0];

	return ns->prefix != NULL ? ns->prefix : "";
}

char imap_session_personal_delimiter(const struct imap_session *session)
{
	const struct session_ns *ns = session->namespaces->pdata[0];

	return ns->delimiter;
}

/* ---- flags ---- */

static gboolean mutate_is_atom_char(unsigned char c)
{
	return c > 0x20 && c < 0x7f && strchr("(){%*\"\\]", c) == NULL;
}

gboolean imap_flag_is_valid(const char *flag)
{
	const char *p = flag;

	if (flag == NULL)
		return FALSE;
	/* flag-extension "\" atom; we also want a letter after the "\"
	 * (command.h's atom rule), which every real system flag has. */
	if (*p == '\\') {
		p++;
		if (!g_ascii_isalpha(*p))
			return FALSE;
	}
	if (*p == '\0')
		return FALSE;
	for (; *p != '\0'; p++) {
		if (!mutate_is_atom_char((unsigned char)*p))
			return FALSE;
	}
	return TRUE;
}

/* Splits @flags (space-separated, may be NULL) into its words, drops
 * \Recent (the server owns it) and checks each one.  Returns NULL with
 * IMAP_ERROR_INVALID if one is not a flag atom: nothing is then sent. */
static char **mutate_split_flags(const char *flags, GError **error)
{
	char **words = g_strsplit(flags != NULL ? flags : "", " ", -1);
	GPtrArray *out = g_ptr_array_new();

	for (char **w = words; *w != NULL; w++) {
		if (**w == '\0' || g_ascii_strcasecmp(*w, "\\Recent") == 0) {
			g_free(*w);
			continue;
		}
		if (!imap_flag_is_valid(*w)) {
			g_set_error(error, IMAP_ERROR, IMAP_ERROR_INVALID,
				    "not a valid IMAP flag: \"%s\"", *w);
			for (; *w != NULL; w++)
				g_free(*w);
			g_ptr_array_set_free_func(out, g_free);
			g_ptr_array_free(out, TRUE);
			g_free(words);
			return NULL;
		}
		g_ptr_array_add(out, *w);
	}
	g_free(words);
	g_ptr_array_add(out, NULL);
	return (char **)g_ptr_array_free(out, FALSE);
}

/* "(\Seen $Label)" for a checked flag list. */
static char *mutate_flag_list(char *const *flags)
{
	char *joined = g_strjoinv(" ", (char **)flags);
	char *list = g_strdup_printf("(%s)", joined);

	g_free(joined);
	return list;
}

gboolean imap_flags_contain(const char *list, const char *flag)
{
	char **words = g_strsplit(list != NULL ? list : "", " ", -1);
	gboolean found = FALSE;

	for (char **w = words; *w != NULL && !found; w++)
		found = g_ascii_strcasecmp(*w, flag) == 0;
	g_strfreev(words);
	return found;
}

/* ---- APPEND ---- */

gboolean imap_format_datetime(gint64 when, char *buf, size_t size)
{
	static const char *const months[] = {"Jan", "Feb", "Mar", "Apr",
					     "May", "Jun", "Jul", "Aug",
					     "Sep", "Oct", "Nov", "Dec"};
	time_t t = (time_t)when;
	struct tm tm;

	if ((gint64)t != when || gmtime_r(&t, &tm) == NULL ||
	    tm.tm_year + 1900 < 1 || tm.tm_year + 1900 > 9999)
		return FALSE;
	return (size_t)g_snprintf(
		       buf, size, "%02d-%s-%04d %02d:%02d:%02d +0000",
		       tm.tm_mday, months[tm.tm_mon], tm.tm_year + 1900,
		       tm.tm_hour, tm.tm_min, tm.tm_sec) < size;
}

/* "APPENDUID uidvalidity uid" / "COPYUID uidvalidity src dst" arguments,
 * split on single spaces. */
static char **mutate_code_words(const struct imap_response *tagged,
				const char *code)
{
	if (tagged == NULL || tagged->code == NULL ||
	    strcmp(tagged->code, code) != 0 || tagged->code_args == NULL)
		return NULL;
	return g_strsplit(tagged->code_args, " ", -1);
}

static void mutate_parse_appenduid(const struct imap_response *tagged,
				   struct imap_append_result *result)
{
	char **w = mutate_code_words(tagged, "APPENDUID");
	uint32_t uidvalidity, uid;

	if (w != NULL && g_strv_length(w) == 2 &&
	    mutate_parse_nz32(w[0], strlen(w[0]), &uidvalidity) &&
	    mutate_parse_nz32(w[1], strlen(w[1]), &uid)) {
		result->uidvalidity = uidvalidity;
		result->uid = uid;
	}
	g_strfreev(w);
}

gboolean imap_session_append(struct imap_session *session,
			     const struct imap_append_req *req,
			     struct imap_append_result *result, GError **error)
{
	uint64_t limit = imap_session_append_limit(session);
	struct imap_response *tagged = NULL;
	struct imap_cmd *cmd;
	char **flags;
	gboolean ok;

	memset(result, 0, sizeof(*result));
	if (limit > 0 && req->source.size > limit) {
		g_set_error(error, IMAP_ERROR, IMAP_ERROR_TOOBIG,
			    "message of %" G_GUINT64_FORMAT
			    " bytes is over the server's APPENDLIMIT of "
			    "%" G_GUINT64_FORMAT,
			    req->source.size, limit);
		return FALSE;
	}
	if (req->binary && !imap_session_has_cap(session, "BINARY")) {
		g_set_error(error, IMAP_ERROR, IMAP_ERROR_INVALID,
			    "message contains NUL bytes and the server does "
			    "not offer BINARY");
		return FALSE;
	}
	flags = mutate_split_flags(req->flags, error);
	if (flags == NULL)
		return FALSE;
	cmd = imap_cmd_new("APPEND");
	ok = imap_cmd_add_string(cmd, req->mailbox, strlen(req->mailbox), FALSE,
				 error);
	if (ok && flags[0] != NULL) {
		char *list = mutate_flag_list(flags);

		imap_cmd_add_atom(cmd, list);
		g_free(list);
	}
	if (ok && req->internaldate != 0) {
		char date[64];

		if (!imap_format_datetime(req->internaldate, date,
					  sizeof(date))) {
			g_set_error(error, IMAP_ERROR, IMAP_ERROR_INVALID,
				    "INTERNALDATE %" G_GINT64_FORMAT
				    " cannot be sent",
				    req->internaldate);
			ok = FALSE;
		} else {
			ok = imap_cmd_add_string(cmd, date, strlen(date), FALSE,
						 error);
		}
	}
	g_strfreev(flags);
	if (ok) {
		imap_cmd_add_literal_source(cmd, &req->source, req->binary);
		ok = imap_session_run_cmd(session, cmd, TRUE, NULL, NULL,
					  &tagged, error);
	}
	if (ok)
		mutate_parse_appenduid(tagged, result);
	imap_response_free(tagged);
	imap_cmd_free(cmd);
	return ok;
}

/* ---- STATUS ---- */

struct mutate_status_ctx {
	const char *mailbox;
	gboolean found;
	struct imap_mailbox_status status;
};

static gboolean mutate_same_mailbox(const char *a, const char *b)
{
	/* INBOX is case-insensitive (RFC 3501 5.1). */
	if (g_ascii_strcasecmp(a, "INBOX") == 0)
		return g_ascii_strcasecmp(b, "INBOX") == 0;
	return strcmp(a, b) == 0;
}

gboolean imap_status_items_parse(const struct imap_arg *items, size_t n,
				 struct imap_mailbox_status *st)
{
	gboolean have_messages = FALSE;

	for (size_t i = 0; i + 1 < n; i += 2) {
		const struct imap_arg *v = &items[i + 1];

		if (imap_arg_atom_equals(&items[i], "MESSAGES"))
			have_messages = imap_arg_get_uint32(v, &st->exists);
		else if (imap_arg_atom_equals(&items[i], "UIDNEXT"))
			imap_arg_get_uint32(v, &st->uidnext);
		else if (imap_arg_atom_equals(&items[i], "UIDVALIDITY"))
			imap_arg_get_uint32(v, &st->uidvalidity);
		else if (imap_arg_atom_equals(&items[i], "HIGHESTMODSEQ"))
			imap_arg_get_uint64(v, &st->highestmodseq);
	}
	return have_messages;
}

static void mutate_status_cb(struct imap_response *resp, void *user_data)
{
	struct mutate_status_ctx *ctx = user_data;
	struct imap_mailbox_status st = {0};
	const struct imap_arg *items;
	const char *name;
	size_t n;

	if (resp->keyword == NULL || strcmp(resp->keyword, "STATUS") != 0 ||
	    resp->count != 2 || !imap_arg_get_astring(&resp->args[0], &name) ||
	    !mutate_same_mailbox(name, ctx->mailbox) ||
	    !imap_arg_get_list(&resp->args[1], &items, &n))
		return;
	if (!imap_status_items_parse(items, n, &st) || st.uidvalidity == 0)
		return;
	ctx->found = TRUE;
	ctx->status = st;
}

gboolean imap_session_status(struct imap_session *session, const char *mailbox,
			     struct imap_mailbox_status *status_r,
			     GError **error)
{
	struct mutate_status_ctx ctx = {.mailbox = mailbox};
	struct imap_cmd *cmd = imap_cmd_new("STATUS");
	gboolean ok;

	ok = imap_cmd_add_string(cmd, mailbox, strlen(mailbox), FALSE, error);
	if (ok) {
		imap_cmd_add_atom(cmd,
				  imap_session_has_cap(session, "CONDSTORE")
					  ? "(MESSAGES UIDNEXT UIDVALIDITY "
					    "HIGHESTMODSEQ)"
					  : "(MESSAGES UIDNEXT UIDVALIDITY)");
		ok = imap_session_run_cmd(session, cmd, FALSE, mutate_status_cb,
					  &ctx, NULL, error);
	}
	imap_cmd_free(cmd);
	if (!ok)
		return FALSE;
	if (!ctx.found) {
		g_set_error(error, IMAP_ERROR, IMAP_ERROR_NO,
			    "server sent no usable STATUS for %s", mailbox);
		return FALSE;
	}
	*status_r = ctx.status;
	return TRUE;
}

/* ---- look-ups ---- */

struct mutate_fetch_ctx {
	uint32_t uid;
	gboolean found;
	uint64_t modseq;
	GString *flags;
};

/* "* n FETCH (UID u FLAGS (...) MODSEQ (m))" for our UID. */
static void mutate_fetch_cb(struct imap_response *resp, void *user_data)
{
	struct mutate_fetch_ctx *ctx = user_data;
	const struct imap_arg *items, *list;
	size_t n, nl;
	uint32_t uid = 0;
	uint64_t modseq = 0;
	GString *flags = NULL;

	if (resp->keyword == NULL || strcmp(resp->keyword, "FETCH") != 0 ||
	    resp->count != 1 || !imap_arg_get_list(&resp->args[0], &items, &n))
		return;
	for (size_t i = 0; i + 1 < n; i += 2) {
		const struct imap_arg *v = &items[i + 1];

		if (imap_arg_atom_equals(&items[i], "UID")) {
			imap_arg_get_uint32(v, &uid);
		} else if (imap_arg_atom_equals(&items[i], "MODSEQ") &&
			   imap_arg_get_list(v, &list, &nl) && nl == 1) {
			imap_arg_get_uint64(&list[0], &modseq);
		} else if (imap_arg_atom_equals(&items[i], "FLAGS") &&
			   imap_arg_get_list(v, &list, &nl)) {
			if (flags == NULL)
				flags = g_string_new(NULL);
			for (size_t j = 0; j < nl; j++) {
				const char *f;

				if (!imap_arg_get_atom(&list[j], &f) ||
				    g_ascii_strcasecmp(f, "\\Recent") == 0)
					continue;
				if (flags->len > 0)
					g_string_append_c(flags, ' ');
				g_string_append(flags, f);
			}
		}
	}
	if (uid != ctx->uid) {
		if (flags != NULL)
			g_string_free(flags, TRUE);
		return;
	}
	ctx->found = TRUE;
	if (modseq != 0)
		ctx->modseq = modseq;
	if (flags != NULL) {
		if (ctx->flags != NULL)
			g_string_free(ctx->flags, TRUE);
		ctx->flags = flags;
	}
}

/* Selects @mailbox for a look-up whose answer must reflect what other
 * connections did: an already selected mailbox gets a NOOP first, since
 * new messages and expunges from elsewhere are announced to this session
 * only at a command boundary. */
static gboolean mutate_ensure_fresh(struct imap_session *session,
				    const char *mailbox, uint32_t uidvalidity,
				    GError **error)
{
	if (session->selected != NULL &&
	    strcmp(session->selected, mailbox) == 0) {
		struct imap_cmd *cmd = imap_cmd_new("NOOP");
		gboolean ok = imap_session_run_cmd(session, cmd, FALSE, NULL,
						   NULL, NULL, error);

		imap_cmd_free(cmd);
		if (!ok)
			return FALSE;
	}
	return imap_session_ensure(session, mailbox, uidvalidity, FALSE, error);
}

gboolean imap_session_uid_state(struct imap_session *session,
				const char *mailbox, uint32_t uidvalidity,
				uint32_t uid, gboolean *exists_r,
				uint64_t *modseq_r, char **flags_r,
				GError **error)
{
	struct mutate_fetch_ctx ctx = {.uid = uid};
	struct imap_response *tagged = NULL;
	gboolean condstore = imap_session_has_cap(session, "CONDSTORE");
	struct imap_cmd *cmd;
	gboolean ok;

	if (!mutate_ensure_fresh(session, mailbox, uidvalidity, error))
		return FALSE;
	cmd = imap_cmd_new("UID FETCH");
	imap_cmd_add_uint64(cmd, uid);
	imap_cmd_add_atom(cmd,
			  condstore ? "(UID FLAGS MODSEQ)" : "(UID FLAGS)");
	ok = imap_session_run_cmd(session, cmd, FALSE, mutate_fetch_cb, &ctx,
				  &tagged, error);
	imap_cmd_free(cmd);
	/* NO [EXPUNGEISSUED] (RFC 5530): the message was expunged by
	 * someone else; with nothing returned for it, it is gone. */
	if (!ok && !ctx.found && tagged != NULL && tagged->code != NULL &&
	    strcmp(tagged->code, "EXPUNGEISSUED") == 0) {
		g_clear_error(error);
		ok = TRUE;
	}
	imap_response_free(tagged);
	if (ok) {
		*exists_r = ctx.found;
		if (modseq_r != NULL)
			*modseq_r = ctx.found ? ctx.modseq : 0;
		if (flags_r != NULL)
			*flags_r = ctx.found && ctx.flags != NULL
					   ? g_strdup(ctx.flags->str)
					   : NULL;
	}
	if (ctx.flags != NULL)
		g_string_free(ctx.flags, TRUE);
	return ok;
}

struct mutate_search_ctx {
	uint32_t min_uid;
	uint32_t best;
};

static void mutate_search_cb(struct imap_response *resp, void *user_data)
{
	struct mutate_search_ctx *ctx = user_data;

	if (resp->keyword == NULL || strcmp(resp->keyword, "SEARCH") != 0)
		return;
	for (size_t i = 0; i < resp->count; i++) {
		uint32_t uid;

		/* "UID n:*" matches the last message even when its UID is
		 * below n: only UIDs in range count. */
		if (imap_arg_get_uint32(&resp->args[i], &uid) &&
		    uid >= ctx->min_uid && uid > ctx->best)
			ctx->best = uid;
	}
}

gboolean imap_session_find_appended(struct imap_session *session,
				    const char *mailbox, uint32_t uidvalidity,
				    uint32_t min_uid, const char *message_id,
				    uint64_t size, uint32_t *uid_r,
				    uint32_t *uidvalidity_r, GError **error)
{
	struct mutate_search_ctx ctx = {.min_uid = MAX(min_uid, 1u)};
	struct imap_cmd *cmd;
	char *range;
	gboolean ok;

	*uid_r = 0;
	if (!mutate_ensure_fresh(session, mailbox, uidvalidity, error))
		return FALSE;
	cmd = imap_cmd_new("UID SEARCH");
	range = g_strdup_printf("%u:*", ctx.min_uid);
	imap_cmd_add_atom(cmd, "UID");
	imap_cmd_add_atom(cmd, range);
	g_free(range);
	/* LARGER and SMALLER are strict: together they mean "== size". */
	if (size > 0) {
		imap_cmd_add_atom(cmd, "LARGER");
		imap_cmd_add_uint64(cmd, size - 1);
	}
	if (size < G_MAXUINT64) {
		imap_cmd_add_atom(cmd, "SMALLER");
		imap_cmd_add_uint64(cmd, size + 1);
	}
	ok = TRUE;
	if (message_id != NULL && *message_id != '\0') {
		imap_cmd_add_atom(cmd, "HEADER Message-ID");
		ok = imap_cmd_add_string(cmd, message_id, strlen(message_id),
					 FALSE, error);
	}
	if (ok)
		ok = imap_session_run_cmd(session, cmd, FALSE, mutate_search_cb,
					  &ctx, NULL, error);
	imap_cmd_free(cmd);
	if (!ok)
		return FALSE;
	*uid_r = ctx.best;
	if (uidvalidity_r != NULL)
		*uidvalidity_r = session->status.uidvalidity;
	return TRUE;
}

/* ---- STORE ---- */

/* TRUE if @uid is in the sequence set @set ("1,3:5,9"); a set that cannot
 * be parsed counts as containing it (the server said "modified": better a
 * needless re-check than a lost change). */
static gboolean mutate_set_contains(const char *set, uint32_t uid)
{
	char **parts;
	gboolean found = FALSE, bad = FALSE;

	if (set == NULL || *set == '\0')
		return TRUE;
	parts = g_strsplit(set, ",", -1);
	for (char **p = parts; *p != NULL && !found && !bad; p++) {
		const char *colon = strchr(*p, ':');
		uint32_t lo, hi;

		if (colon == NULL) {
			bad = !mutate_parse_nz32(*p, strlen(*p), &lo);
			hi = lo;
		} else {
			bad = !mutate_parse_nz32(*p, (size_t)(colon - *p),
						 &lo) ||
			      !mutate_parse_nz32(colon + 1, strlen(colon + 1),
						 &hi);
		}
		if (!bad)
			found = uid >= MIN(lo, hi) && uid <= MAX(lo, hi);
	}
	g_strfreev(parts);
	return found || bad;
}

char *imap_session_permanent_flags(struct imap_session *session,
				   const char *mailbox, GError **error)
{
	/* EXAMINE announces "PERMANENTFLAGS ()" (nothing can be stored in a
	 * read-only mailbox): what can be stored is what SELECT says. */
	if (!imap_session_ensure(session, mailbox, 0, TRUE, error))
		return NULL;
	if (session->permanent_flags != NULL)
		return g_strdup(session->permanent_flags);
	/* RFC 3501 7.1: without PERMANENTFLAGS, all flags can be changed
	 * permanently. */
	if (session->flags != NULL && *session->flags != '\0')
		return g_strdup_printf("%s \\*", session->flags);
	return g_strdup("\\*");
}

/* Checks @flags against the selected mailbox's PERMANENTFLAGS. */
static gboolean mutate_check_permanent(struct imap_session *session,
				       char *const *flags, GError **error)
{
	const char *perm = session->permanent_flags;

	if (perm == NULL)
		return TRUE;
	for (char *const *f = flags; *f != NULL; f++) {
		if (imap_flags_contain(perm, *f))
			continue;
		if (**f != '\\' && imap_flags_contain(perm, "\\*"))
			continue;
		g_set_error(error, IMAP_ERROR, IMAP_ERROR_INVALID,
			    "flag %s cannot be stored in %s (PERMANENTFLAGS "
			    "(%s))",
			    *f, session->selected, perm);
		return FALSE;
	}
	return TRUE;
}

static const char *const mutate_store_items[] = {
	[IMAP_STORE_SET] = "FLAGS.SILENT",
	[IMAP_STORE_ADD] = "+FLAGS.SILENT",
	[IMAP_STORE_REMOVE] = "-FLAGS.SILENT",
};

/* UID STORE for a selected (read-write) mailbox, no checks. */
static gboolean mutate_store(struct imap_session *session, uint32_t uid,
			     enum imap_store_mode mode, char *const *flags,
			     uint64_t unchangedsince, uint64_t *modseq_r,
			     GError **error)
{
	struct mutate_fetch_ctx ctx = {.uid = uid};
	struct imap_response *tagged = NULL;
	struct imap_cmd *cmd = imap_cmd_new("UID STORE");
	char *list = mutate_flag_list(flags);
	gboolean ok;

	imap_cmd_add_uint64(cmd, uid);
	if (unchangedsince != 0) {
		char *mod = g_strdup_printf("(UNCHANGEDSINCE %" G_GUINT64_FORMAT
					    ")",
					    unchangedsince);

		imap_cmd_add_atom(cmd, mod);
		g_free(mod);
	}
	imap_cmd_add_atom(cmd, mutate_store_items[mode]);
	imap_cmd_add_atom(cmd, list);
	g_free(list);
	ok = imap_session_run_cmd(session, cmd, TRUE, mutate_fetch_cb, &ctx,
				  &tagged, error);
	imap_cmd_free(cmd);
	/* RFC 7162 3.1.3: a refused conditional store is a tagged OK with
	 * [MODIFIED set] (NO [MODIFIED] is mapped by the connection). */
	if (ok && tagged->code != NULL &&
	    strcmp(tagged->code, "MODIFIED") == 0 &&
	    mutate_set_contains(tagged->code_args, uid)) {
		g_set_error(error, IMAP_ERROR, IMAP_ERROR_MODIFIED,
			    "UID %u was changed by someone else since MODSEQ "
			    "%" G_GUINT64_FORMAT,
			    uid, unchangedsince);
		ok = FALSE;
	}
	imap_response_free(tagged);
	if (ok && modseq_r != NULL)
		*modseq_r = ctx.modseq;
	if (ctx.flags != NULL)
		g_string_free(ctx.flags, TRUE);
	return ok;
}

gboolean imap_session_store_flags(struct imap_session *session,
				  const char *mailbox, uint32_t uidvalidity,
				  uint32_t uid, enum imap_store_mode mode,
				  const char *flags, uint64_t unchangedsince,
				  uint64_t *modseq_r, GError **error)
{
	char **list;
	gboolean ok;

	g_return_val_if_fail(mode <= IMAP_STORE_REMOVE, FALSE);
	if (modseq_r != NULL)
		*modseq_r = 0;
	if (unchangedsince != 0 &&
	    !imap_session_has_cap(session, "CONDSTORE")) {
		g_set_error(error, IMAP_ERROR, IMAP_ERROR_UNSUPPORTED,
			    "conditional STORE needs CONDSTORE");
		return FALSE;
	}
	list = mutate_split_flags(flags, error);
	if (list == NULL)
		return FALSE;
	ok = imap_session_ensure(session, mailbox, uidvalidity, TRUE, error) &&
	     (mode == IMAP_STORE_REMOVE ||
	      mutate_check_permanent(session, list, error)) &&
	     mutate_store(session, uid, mode, list, unchangedsince, modseq_r,
			  error);
	g_strfreev(list);
	return ok;
}

/* ---- EXPUNGE, COPY, MOVE ---- */

/* Counts the EXPUNGE and VANISHED responses of a command. */
static void mutate_count_expunges(struct imap_response *resp, void *user_data)
{
	unsigned int *n = user_data;

	if (resp->keyword != NULL &&
	    (g_ascii_strcasecmp(resp->keyword, "EXPUNGE") == 0 ||
	     g_ascii_strcasecmp(resp->keyword, "VANISHED") == 0))
		(*n)++;
}

/* STORE \Deleted + UID EXPUNGE of @uid; *reported_r (may be NULL): how
 * many EXPUNGE/VANISHED responses the UID EXPUNGE brought. */
static gboolean mutate_uid_expunge(struct imap_session *session, uint32_t uid,
				   unsigned int *reported_r, GError **error)
{
	char *deleted[] = {"\\Deleted", NULL};
	struct imap_cmd *cmd;
	unsigned int n = 0;
	gboolean ok;

	if (!mutate_store(session, uid, IMAP_STORE_ADD, deleted, 0, NULL,
			  error))
		return FALSE;
	cmd = imap_cmd_new("UID EXPUNGE");
	imap_cmd_add_uint64(cmd, uid);
	ok = imap_session_run_cmd(session, cmd, TRUE, mutate_count_expunges, &n,
				  NULL, error);
	imap_cmd_free(cmd);
	if (reported_r != NULL)
		*reported_r = n;
	return ok;
}

gboolean imap_session_expunge_uid(struct imap_session *session,
				  const char *mailbox, uint32_t uidvalidity,
				  uint32_t uid, gboolean flag_only,
				  gboolean *kept_r, GError **error)
{
	unsigned int reported = 0;
	gboolean uidplus = imap_session_has_cap(session, "UIDPLUS");
	char *deleted[] = {"\\Deleted", NULL};

	if (kept_r != NULL)
		*kept_r = FALSE;

	/* A bare EXPUNGE would also remove every message another client
	 * has flagged \Deleted: never sent. */
	if (!uidplus && !flag_only) {
		g_set_error(error, IMAP_ERROR, IMAP_ERROR_UNSUPPORTED,
			    "the server has no UIDPLUS: cannot expunge one "
			    "message without expunging others");
		return FALSE;
	}
	if (!imap_session_ensure(session, mailbox, uidvalidity, TRUE, error))
		return FALSE;
	if (flag_only)
		return mutate_store(session, uid, IMAP_STORE_ADD, deleted, 0,
				    NULL, error);
	if (!mutate_uid_expunge(session, uid, &reported, error))
		return FALSE;
	if (kept_r != NULL)
		*kept_r = reported == 0;
	return TRUE;
}

struct mutate_copy_ctx {
	uint32_t uid;
	struct imap_copy_result *result;
};

/* "COPYUID uidvalidity src dst" for exactly our one message. */
static void mutate_parse_copyuid(const char *code, const char *args,
				 uint32_t uid, struct imap_copy_result *result)
{
	char **w;
	uint32_t uidvalidity, src, dst;

	if (code == NULL || strcmp(code, "COPYUID") != 0 || args == NULL)
		return;
	w = g_strsplit(args, " ", -1);
	if (g_strv_length(w) == 3 &&
	    mutate_parse_nz32(w[0], strlen(w[0]), &uidvalidity) &&
	    mutate_parse_nz32(w[1], strlen(w[1]), &src) && src == uid &&
	    mutate_parse_nz32(w[2], strlen(w[2]), &dst)) {
		result->uidvalidity = uidvalidity;
		result->uid = dst;
	}
	g_strfreev(w);
}

/* MOVE sends COPYUID in an untagged OK before the EXPUNGE (RFC 6851). */
static void mutate_copy_cb(struct imap_response *resp, void *user_data)
{
	struct mutate_copy_ctx *ctx = user_data;

	if (resp->status == IMAP_STATUS_OK)
		mutate_parse_copyuid(resp->code, resp->code_args, ctx->uid,
				     ctx->result);
}

/* UID COPY or UID MOVE (@verb) of one message of the selected mailbox. */
static gboolean mutate_copy(struct imap_session *session, const char *verb,
			    uint32_t uid, const char *dest,
			    struct imap_copy_result *result, GError **error)
{
	struct mutate_copy_ctx ctx = {uid, result};
	struct imap_response *tagged = NULL;
	struct imap_cmd *cmd = imap_cmd_new(verb);
	gboolean ok;

	imap_cmd_add_uint64(cmd, uid);
	ok = imap_cmd_add_string(cmd, dest, strlen(dest), FALSE, error) &&
	     imap_session_run_cmd(session, cmd, TRUE, mutate_copy_cb, &ctx,
				  &tagged, error);
	imap_cmd_free(cmd);
	if (ok)
		mutate_parse_copyuid(tagged->code, tagged->code_args, uid,
				     result);
	imap_response_free(tagged);
	return ok;
}

gboolean imap_session_copy(struct imap_session *session, const char *mailbox,
			   uint32_t uidvalidity, uint32_t uid, const char *dest,
			   struct imap_copy_result *result, GError **error)
{
	memset(result, 0, sizeof(*result));
	return imap_session_ensure(session, mailbox, uidvalidity, FALSE,
				   error) &&
	       mutate_copy(session, "UID COPY", uid, dest, result, error);
}

gboolean imap_session_move(struct imap_session *session, const char *mailbox,
			   uint32_t uidvalidity, uint32_t uid, const char *dest,
			   gboolean flag_only, struct imap_copy_result *result,
			   gboolean *flagged_r, GError **error)
{
	char *deleted[] = {"\\Deleted", NULL};
	gboolean move = imap_session_has_cap(session, "MOVE");
	gboolean ok;

	memset(result, 0, sizeof(*result));
	if (flagged_r != NULL)
		*flagged_r = FALSE;
	if (!move && !flag_only && !imap_session_has_cap(session, "UIDPLUS")) {
		g_set_error(error, IMAP_ERROR, IMAP_ERROR_UNSUPPORTED,
			    "the server has neither MOVE nor UIDPLUS: cannot "
			    "remove the original after copying it");
		return FALSE;
	}
	if (!imap_session_ensure(session, mailbox, uidvalidity, TRUE, error))
		return FALSE;
	if (move)
		return mutate_copy(session, "UID MOVE", uid, dest, result,
				   error);
	/* Only once the copy exists is the original removed (or, with
	 * @flag_only, flagged: never expunged). */
	if (!mutate_copy(session, "UID COPY", uid, dest, result, error))
		return FALSE;
	ok = flag_only ? mutate_store(session, uid, IMAP_STORE_ADD, deleted, 0,
				      NULL, error)
		       : mutate_uid_expunge(session, uid, NULL, error);
	if (!ok) {
		g_prefix_error(error,
			       "copied to %s, but the original is "
			       "still there: ",
			       dest);
		return FALSE;
	}
	if (flagged_r != NULL)
		*flagged_r = flag_only;
	return TRUE;
}

/* ---- mailboxes ---- */

static gboolean mutate_mailbox_cmd(struct imap_session *session,
				   const char *verb, const char *a,
				   const char *b, GError **error)
{
	struct imap_cmd *cmd = imap_cmd_new(verb);
	gboolean ok;

	ok = imap_cmd_add_string(cmd, a, strlen(a), FALSE, error) &&
	     (b == NULL ||
	      imap_cmd_add_string(cmd, b, strlen(b), FALSE, error)) &&
	     imap_session_run_cmd(session, cmd, TRUE, NULL, NULL, NULL, error);
	imap_cmd_free(cmd);
	return ok;
}

gboolean imap_session_create(struct imap_session *session, const char *name,
			     GError **error)
{
	return mutate_mailbox_cmd(session, "CREATE", name, NULL, error);
}

/* UNSELECT (not CLOSE, which would expunge), or without it (Courier) an
 * EXAMINE that fails, which leaves none selected (RFC 3501 6.3.1); the
 * name cannot exist, it has an empty level. */
gboolean imap_session_leave_selected(struct imap_session *session,
				     GError **error)
{
	gboolean unselect = imap_session_has_cap(session, "UNSELECT");
	struct imap_cmd *cmd = imap_cmd_new(unselect ? "UNSELECT" : "EXAMINE");
	GError *err = NULL;
	gboolean ok;

	if (!unselect)
		imap_cmd_add_string(cmd, "imapfs-unselect..", 17, FALSE, NULL);
	ok = imap_session_run_cmd(session, cmd, FALSE, NULL, NULL, NULL, &err);
	imap_cmd_free(cmd);
	imap_session_forget_selected(session);
	if (ok || (!unselect && !imap_error_is_fatal(err))) {
		g_clear_error(&err);
		return TRUE;
	}
	g_propagate_error(error, err);
	return FALSE;
}

gboolean imap_session_delete(struct imap_session *session, const char *name,
			     GError **error)
{
	struct imap_mailbox_status st;
	GError *err = NULL;

	/* Leave it first: the server refuses to delete the selected
	 * mailbox, and Dovecot answers a STATUS of it from the session's
	 * view, which may miss expunges made elsewhere. */
	if (session->selected != NULL && strcmp(session->selected, name) == 0 &&
	    !imap_session_leave_selected(session, error))
		return FALSE;
	/* DELETE removes a mailbox's messages with it: ask first, so that
	 * rmdir never deletes mail.  A \Noselect mailbox cannot be
	 * STATUSed (plain NO) and holds no messages. */
	if (imap_session_status(session, name, &st, &err)) {
		if (st.exists > 0) {
			g_set_error(error, IMAP_ERROR, IMAP_ERROR_NOTEMPTY,
				    "%s still holds %u messages", name,
				    st.exists);
			return FALSE;
		}
	} else if (g_error_matches(err, IMAP_ERROR, IMAP_ERROR_NO)) {
		g_clear_error(&err);
	} else {
		g_propagate_error(error, err);
		return FALSE;
	}
	return mutate_mailbox_cmd(session, "DELETE", name, NULL, error);
}

gboolean imap_session_rename(struct imap_session *session, const char *from,
			     const char *to, GError **error)
{
	gboolean ok;

	if (session->selected != NULL &&
	    g_str_has_prefix(session->selected, from) &&
	    !imap_session_leave_selected(session, error))
		return FALSE;
	ok = mutate_mailbox_cmd(session, "RENAME", from, to, error);

	/* The selected mailbox (or one below it) may have a new name now;
	 * a failed RENAME may have happened too. */
	if (session->selected != NULL &&
	    g_str_has_prefix(session->selected, from))
		imap_session_forget_selected(session);
	return ok;
}
