/* session.c - login and the typed read requests; see session.h. */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "conn.h"
#include "imap-error.h"
#include "log.h"
#include "session.h"

struct imap_session {
	const struct imap_account *account;
	struct imap_conn *conn;
	/* Personal namespace prefix and the prefixes of the other
	 * namespaces, whose mailboxes LIST must not show. */
	char *ns_prefix;
	GPtrArray *other_prefixes;
	/* The examined mailbox (NULL if none) and what we know of it. */
	char *selected;
	struct imap_mailbox_status status;
};

/* Per-command dispatch: keeps the selected mailbox's state current from
 * whatever untagged data arrives, then hands the response on. */
struct session_dispatch {
	struct imap_session *session;
	imap_untagged_fn *cb;
	void *user_data;
};

static void session_note_code(struct imap_session *s, const char *code,
			      const char *args)
{
	guint64 v;

	if (code == NULL || args == NULL)
		return;
	if (!g_ascii_string_to_unsigned(args, 10, 0, G_MAXUINT64, &v, NULL))
		return;
	if (strcmp(code, "UIDVALIDITY") == 0 && v <= G_MAXUINT32)
		s->status.uidvalidity = (uint32_t)v;
	else if (strcmp(code, "UIDNEXT") == 0 && v <= G_MAXUINT32)
		s->status.uidnext = (uint32_t)v;
	else if (strcmp(code, "HIGHESTMODSEQ") == 0)
		s->status.highestmodseq = v;
}

static void session_untagged(struct imap_response *resp, void *user_data)
{
	struct session_dispatch *d = user_data;
	struct imap_session *s = d->session;

	if (resp->status != IMAP_STATUS_NONE) {
		session_note_code(s, resp->code, resp->code_args);
	} else if (resp->has_number && resp->keyword != NULL) {
		if (strcmp(resp->keyword, "EXISTS") == 0)
			s->status.exists = resp->number;
		else if (strcmp(resp->keyword, "EXPUNGE") == 0 &&
			 s->status.exists > 0)
			s->status.exists--;
	}
	if (d->cb != NULL)
		d->cb(resp, d->user_data);
}

static gboolean session_run(struct imap_session *s, const struct imap_cmd *cmd,
			    imap_untagged_fn *cb, void *user_data,
			    struct imap_response **tagged_r, GError **error)
{
	struct session_dispatch d = {s, cb, user_data};
	struct imap_response *tagged = NULL;
	gboolean ok;

	ok = imap_conn_run(s->conn, cmd, session_untagged, &d, &tagged, error);
	if (tagged != NULL)
		session_note_code(s, tagged->code, tagged->code_args);
	if (tagged_r != NULL)
		*tagged_r = tagged;
	else
		imap_response_free(tagged);
	return ok;
}

gboolean imap_session_is_usable(const struct imap_session *session)
{
	return !imap_conn_is_broken(session->conn);
}

gboolean imap_session_has_cap(const struct imap_session *session,
			      const char *cap)
{
	return imap_conn_has_cap(session->conn, cap);
}

void imap_session_abort(struct imap_session *session)
{
	imap_conn_abort(session->conn);
}

const char *imap_session_selected(const struct imap_session *session)
{
	return session->selected;
}

static gboolean session_login(struct imap_session *s, GError **error)
{
	const struct imap_account *a = s->account;
	struct imap_cmd *cmd;
	GError *err = NULL;
	gboolean ok;

	if (imap_conn_has_cap(s->conn, "AUTH=PLAIN")) {
		/* authzid NUL authcid NUL password */
		size_t ulen = strlen(a->user), plen = strlen(a->password);
		size_t len = 1 + ulen + 1 + plen;
		char *raw = g_malloc(len);
		char *b64;

		raw[0] = '\0';
		memcpy(raw + 1, a->user, ulen);
		raw[1 + ulen] = '\0';
		memcpy(raw + 2 + ulen, a->password, plen);
		b64 = g_base64_encode((const guchar *)raw, len);
		memset(raw, 0, len);
		g_free(raw);
		cmd = imap_cmd_new("AUTHENTICATE PLAIN");
		if (imap_conn_has_cap(s->conn, "SASL-IR")) {
			imap_cmd_add_atom_secret(cmd, b64);
			ok = imap_conn_run(s->conn, cmd, NULL, NULL, NULL,
					   &err);
		} else {
			ok = imap_conn_run_sasl(s->conn, cmd, b64, NULL, NULL,
						NULL, &err);
		}
		memset(b64, 0, strlen(b64));
		g_free(b64);
	} else if (!imap_conn_has_cap(s->conn, "LOGINDISABLED")) {
		cmd = imap_cmd_new("LOGIN");
		if (!imap_cmd_add_string(cmd, a->user, strlen(a->user), FALSE,
					 error) ||
		    !imap_cmd_add_string(cmd, a->password, strlen(a->password),
					 TRUE, error)) {
			imap_cmd_free(cmd);
			return FALSE;
		}
		ok = imap_conn_run(s->conn, cmd, NULL, NULL, NULL, &err);
	} else {
		g_set_error(error, IMAP_ERROR, IMAP_ERROR_UNSUPPORTED,
			    "server offers neither AUTH=PLAIN nor LOGIN");
		return FALSE;
	}
	imap_cmd_free(cmd);
	if (ok)
		return TRUE;
	if (err->domain == IMAP_ERROR &&
	    (err->code == IMAP_ERROR_NO || err->code == IMAP_ERROR_AUTH ||
	     err->code == IMAP_ERROR_BAD)) {
		g_set_error(error, IMAP_ERROR, IMAP_ERROR_AUTH,
			    "authentication failed for %s: %s", a->user,
			    err->message);
		g_error_free(err);
	} else {
		g_propagate_error(error, err);
	}
	return FALSE;
}

/* Reads "* NAMESPACE personal other shared". */
static void session_namespace_cb(struct imap_response *resp, void *user_data)
{
	struct imap_session *s = user_data;
	size_t i, j;

	if (resp->keyword == NULL || strcmp(resp->keyword, "NAMESPACE") != 0)
		return;
	for (i = 0; i < resp->count && i < 3; i++) {
		const struct imap_arg *list;
		size_t n;

		if (!imap_arg_get_list(&resp->args[i], &list, &n))
			continue;
		for (j = 0; j < n; j++) {
			const struct imap_arg *ns;
			size_t m;
			const char *prefix;

			if (!imap_arg_get_list(&list[j], &ns, &m) || m < 1 ||
			    !imap_arg_get_astring(&ns[0], &prefix))
				continue;
			if (i == 0 && j == 0) {
				g_free(s->ns_prefix);
				s->ns_prefix = g_strdup(prefix);
			} else if (*prefix != '\0') {
				g_ptr_array_add(s->other_prefixes,
						g_strdup(prefix));
			}
		}
	}
}

struct imap_session *imap_session_open(const struct imap_account *account,
				       GError **error)
{
	struct imap_conn_params params = {
		.host = account->host,
		.port = account->port,
		.implicit_tls = account->implicit_tls,
		.cafile = account->cafile,
		.timeout_ms = account->timeout_ms,
	};
	struct imap_session *s;
	struct imap_cmd *cmd;

	s = g_new0(struct imap_session, 1);
	s->account = account;
	s->ns_prefix = g_strdup("");
	s->other_prefixes = g_ptr_array_new_with_free_func(g_free);
	s->conn = imap_conn_connect(&params, error);
	if (s->conn == NULL)
		goto fail;
	if (!session_login(s, error))
		goto fail;
	/* Capabilities change after login; re-read unless the tagged OK
	 * already carried them. */
	if (!imap_conn_refresh_caps(s->conn, error))
		goto fail;
	if (imap_conn_has_cap(s->conn, "ENABLE") &&
	    imap_conn_has_cap(s->conn, "CONDSTORE")) {
		cmd = imap_cmd_new("ENABLE CONDSTORE");
		if (!session_run(s, cmd, NULL, NULL, NULL, error)) {
			imap_cmd_free(cmd);
			goto fail;
		}
		imap_cmd_free(cmd);
	}
	if (imap_conn_has_cap(s->conn, "NAMESPACE")) {
		cmd = imap_cmd_new("NAMESPACE");
		if (!session_run(s, cmd, session_namespace_cb, s, NULL,
				 error)) {
			imap_cmd_free(cmd);
			goto fail;
		}
		imap_cmd_free(cmd);
	}
	return s;
fail:
	imap_session_free(s);
	return NULL;
}

void imap_session_free(struct imap_session *session)
{
	if (session == NULL)
		return;
	imap_conn_free(session->conn);
	g_free(session->ns_prefix);
	g_ptr_array_unref(session->other_prefixes);
	g_free(session->selected);
	g_free(session);
}

static void session_mailbox_info_free(gpointer p)
{
	struct imap_mailbox_info *info = p;

	g_free(info->name);
	g_free(info->special_use);
	g_free(info);
}

struct session_list_ctx {
	struct imap_session *session;
	GPtrArray *result;
};

static gboolean session_other_namespace(struct imap_session *s,
					const char *name)
{
	guint i;

	for (i = 0; i < s->other_prefixes->len; i++) {
		const char *p = s->other_prefixes->pdata[i];

		/* "shared/" also hides the bare "shared" container. */
		if (g_str_has_prefix(name, p) ||
		    (strlen(name) + 1 == strlen(p) &&
		     strncmp(name, p, strlen(name)) == 0))
			return TRUE;
	}
	return FALSE;
}

static void session_list_cb(struct imap_response *resp, void *user_data)
{
	struct session_list_ctx *ctx = user_data;
	const struct imap_arg *flags;
	size_t nflags, i;
	const char *delim = NULL, *name;
	struct imap_mailbox_info *info;

	if (resp->keyword == NULL || strcmp(resp->keyword, "LIST") != 0 ||
	    resp->count < 3 ||
	    !imap_arg_get_list(&resp->args[0], &flags, &nflags) ||
	    !imap_arg_get_astring(&resp->args[2], &name))
		return;
	if (resp->args[1].type != IMAP_ARG_NIL) {
		size_t dlen = 0;

		if (!imap_arg_get_nstring(&resp->args[1], &delim, &dlen) ||
		    dlen != 1)
			return;
	}
	if (*name == '\0' || session_other_namespace(ctx->session, name))
		return;
	info = g_new0(struct imap_mailbox_info, 1);
	info->name = g_strdup(name);
	info->delimiter = delim != NULL ? delim[0] : 0;
	for (i = 0; i < nflags; i++) {
		const char *f;

		if (!imap_arg_get_atom(&flags[i], &f))
			continue;
		if (g_ascii_strcasecmp(f, "\\Noselect") == 0) {
			info->noselect = TRUE;
		} else if (g_ascii_strcasecmp(f, "\\HasChildren") == 0) {
			info->has_children = TRUE;
		} else if (g_ascii_strcasecmp(f, "\\NonExistent") == 0) {
			info->noselect = TRUE;
			info->nonexistent = TRUE;
		} else if (f[0] == '\\' && info->special_use == NULL &&
			   (g_ascii_strcasecmp(f, "\\Trash") == 0 ||
			    g_ascii_strcasecmp(f, "\\Sent") == 0 ||
			    g_ascii_strcasecmp(f, "\\Drafts") == 0 ||
			    g_ascii_strcasecmp(f, "\\Junk") == 0 ||
			    g_ascii_strcasecmp(f, "\\Archive") == 0 ||
			    g_ascii_strcasecmp(f, "\\All") == 0 ||
			    g_ascii_strcasecmp(f, "\\Flagged") == 0)) {
			info->special_use = g_strdup(f);
		}
	}
	g_ptr_array_add(ctx->result, info);
}

GPtrArray *imap_session_list(struct imap_session *session, GError **error)
{
	struct session_list_ctx ctx = {session, NULL};
	struct imap_cmd *cmd = imap_cmd_new("LIST");
	char *pattern = g_strconcat(session->ns_prefix, "*", NULL);
	gboolean ok;

	ctx.result = g_ptr_array_new_with_free_func(session_mailbox_info_free);
	ok = imap_cmd_add_string(cmd, "", 0, FALSE, error) &&
	     imap_cmd_add_string(cmd, pattern, strlen(pattern), FALSE, error);
	g_free(pattern);
	/* LIST-EXTENDED return options: SPECIAL-USE marks Trash, Sent...;
	 * CHILDREN says which mailboxes have children. */
	if (ok && imap_conn_has_cap(session->conn, "LIST-EXTENDED")) {
		gboolean su = imap_conn_has_cap(session->conn, "SPECIAL-USE");
		gboolean ch = imap_conn_has_cap(session->conn, "CHILDREN");

		if (su || ch)
			imap_cmd_add_atom(cmd, su && ch ? "RETURN (SPECIAL-USE "
							  "CHILDREN)"
					       : su	? "RETURN (SPECIAL-USE)"
							: "RETURN (CHILDREN)");
	}
	if (ok)
		ok = session_run(session, cmd, session_list_cb, &ctx, NULL,
				 error);
	imap_cmd_free(cmd);
	if (!ok) {
		g_ptr_array_unref(ctx.result);
		return NULL;
	}
	return ctx.result;
}

gboolean imap_session_examine(struct imap_session *session, const char *mailbox,
			      struct imap_mailbox_status *status_r,
			      GError **error)
{
	struct imap_cmd *cmd = imap_cmd_new("EXAMINE");
	gboolean ok;

	g_clear_pointer(&session->selected, g_free);
	memset(&session->status, 0, sizeof(session->status));
	ok = imap_cmd_add_string(cmd, mailbox, strlen(mailbox), FALSE, error) &&
	     session_run(session, cmd, NULL, NULL, NULL, error);
	imap_cmd_free(cmd);
	if (!ok)
		return FALSE;
	if (session->status.uidvalidity == 0) {
		g_set_error(error, IMAP_ERROR, IMAP_ERROR_PROTOCOL,
			    "server sent no UIDVALIDITY for %s", mailbox);
		return FALSE;
	}
	session->selected = g_strdup(mailbox);
	if (status_r != NULL)
		*status_r = session->status;
	return TRUE;
}

/* Makes @mailbox the examined mailbox with @uidvalidity (0 = any). */
static gboolean session_ensure(struct imap_session *s, const char *mailbox,
			       uint32_t uidvalidity, GError **error)
{
	if (s->selected == NULL || strcmp(s->selected, mailbox) != 0) {
		if (!imap_session_examine(s, mailbox, NULL, error))
			return FALSE;
	}
	if (uidvalidity != 0 && s->status.uidvalidity != uidvalidity) {
		g_set_error(error, IMAP_ERROR, IMAP_ERROR_STALE,
			    "UIDVALIDITY of %s changed (%u -> %u)", mailbox,
			    uidvalidity, s->status.uidvalidity);
		return FALSE;
	}
	return TRUE;
}

static const char *const session_months[] = {"Jan", "Feb", "Mar", "Apr",
					     "May", "Jun", "Jul", "Aug",
					     "Sep", "Oct", "Nov", "Dec"};

gboolean imap_parse_datetime(const char *text, gint64 *time_r)
{
	char mon[4] = {0};
	int day, year, hh, mm, ss, zone, n = 0, month = -1, i;
	char sign;
	GDateTime *dt;
	GTimeZone *tz;
	char tzbuf[8];

	if (text == NULL)
		return FALSE;
	if (sscanf(text, "%2d-%3c-%4d %2d:%2d:%2d %c%4d%n", &day, mon, &year,
		   &hh, &mm, &ss, &sign, &zone, &n) != 8 ||
	    text[n] != '\0' || (sign != '+' && sign != '-'))
		return FALSE;
	for (i = 0; i < 12; i++) {
		if (g_ascii_strcasecmp(mon, session_months[i]) == 0)
			month = i + 1;
	}
	if (month < 0 || zone % 100 >= 60 || zone > 2359)
		return FALSE;
	g_snprintf(tzbuf, sizeof(tzbuf), "%c%02d:%02d", sign, zone / 100,
		   zone % 100);
	tz = g_time_zone_new_identifier(tzbuf);
	if (tz == NULL)
		return FALSE;
	dt = g_date_time_new(tz, year, month, day, hh, mm, ss);
	g_time_zone_unref(tz);
	if (dt == NULL)
		return FALSE;
	*time_r = g_date_time_to_unix(dt);
	g_date_time_unref(dt);
	return TRUE;
}

struct session_meta_ctx {
	imap_meta_fn *fn;
	void *user_data;
	GString *flags;
};

static void session_meta_cb(struct imap_response *resp, void *user_data)
{
	struct session_meta_ctx *ctx = user_data;
	struct imap_message_meta meta = {0};
	const struct imap_arg *items;
	size_t n, i;
	gboolean have_uid = FALSE, have_size = FALSE, have_date = FALSE;

	if (resp->keyword == NULL || strcmp(resp->keyword, "FETCH") != 0 ||
	    resp->count != 1 || !imap_arg_get_list(&resp->args[0], &items, &n))
		return;
	g_string_truncate(ctx->flags, 0);
	for (i = 0; i + 1 < n; i += 2) {
		const struct imap_arg *val = &items[i + 1];
		const struct imap_arg *fl;
		const char *str;
		size_t nfl, j;

		if (imap_arg_atom_equals(&items[i], "UID")) {
			have_uid = imap_arg_get_uint32(val, &meta.uid) &&
				   meta.uid != 0;
		} else if (imap_arg_atom_equals(&items[i], "RFC822.SIZE")) {
			have_size = imap_arg_get_uint64(val, &meta.size);
		} else if (imap_arg_atom_equals(&items[i], "INTERNALDATE")) {
			have_date =
				imap_arg_get_astring(val, &str) &&
				imap_parse_datetime(str, &meta.internaldate);
		} else if (imap_arg_atom_equals(&items[i], "FLAGS") &&
			   imap_arg_get_list(val, &fl, &nfl)) {
			for (j = 0; j < nfl; j++) {
				if (!imap_arg_get_atom(&fl[j], &str) ||
				    g_ascii_strcasecmp(str, "\\Recent") == 0)
					continue;
				if (ctx->flags->len > 0)
					g_string_append_c(ctx->flags, ' ');
				g_string_append(ctx->flags, str);
			}
		}
	}
	/* An unsolicited FETCH (a flag change) carries no size: skip it. A
	 * reply missing RFC822.SIZE must not crash us either. */
	if (!have_uid || !have_size)
		return;
	if (!have_date)
		meta.internaldate = 0;
	meta.flags = ctx->flags->str;
	ctx->fn(&meta, ctx->user_data);
}

gboolean imap_session_fetch_meta(struct imap_session *session,
				 const char *mailbox, uint32_t uidvalidity,
				 uint32_t uid_first, uint32_t uid_last,
				 imap_meta_fn *fn, void *user_data,
				 GError **error)
{
	struct session_meta_ctx ctx = {fn, user_data, g_string_new(NULL)};
	struct imap_cmd *cmd;
	char *range;
	gboolean ok;

	if (!session_ensure(session, mailbox, uidvalidity, error)) {
		g_string_free(ctx.flags, TRUE);
		return FALSE;
	}
	if (uid_last == 0)
		range = g_strdup_printf("%u:*", MAX(uid_first, 1u));
	else
		range = g_strdup_printf("%u:%u", MAX(uid_first, 1u), uid_last);
	cmd = imap_cmd_new("UID FETCH");
	imap_cmd_add_atom(cmd, range);
	imap_cmd_add_atom(cmd, "(UID RFC822.SIZE INTERNALDATE FLAGS)");
	ok = session_run(session, cmd, session_meta_cb, &ctx, NULL, error);
	imap_cmd_free(cmd);
	g_free(range);
	g_string_free(ctx.flags, TRUE);
	return ok;
}

struct session_body_ctx {
	uint32_t uid;
	uint64_t offset;
	uint64_t length; /* 0: the whole message */
	imap_body_data_fn *fn;
	void *user_data;
	gboolean found;
	gboolean nodata;
	gboolean bad_origin;
	/* The literal being streamed: bytes of it to skip (a server that
	 * ignored the range), bytes still wanted, bytes seen. */
	gboolean streaming;
	uint64_t skip, want, seen;
	uint64_t delivered;
};

/* Parses "BODY[]", "BODY[]<123>". Returns FALSE for other items. */
static gboolean session_body_key(const char *key, gboolean *has_origin_r,
				 uint64_t *origin_r)
{
	const char *p;

	if (g_ascii_strncasecmp(key, "BODY[]", 6) != 0)
		return FALSE;
	p = key + 6;
	*has_origin_r = FALSE;
	if (*p == '\0')
		return TRUE;
	if (*p != '<' || p[strlen(p) - 1] != '>')
		return FALSE;
	{
		char *num = g_strndup(p + 1, strlen(p) - 2);
		guint64 v;
		gboolean ok = g_ascii_string_to_unsigned(num, 10, 0,
							 G_MAXUINT64, &v, NULL);

		g_free(num);
		if (!ok)
			return FALSE;
		*has_origin_r = TRUE;
		*origin_r = v;
	}
	return TRUE;
}

/* Finds the BODY[] item of a FETCH response: returns its value (NULL if
 * @resp is not a FETCH or has none) and the UID (0 if absent). */
static struct imap_arg *session_fetch_body_item(struct imap_response *resp,
						uint32_t *uid_r,
						gboolean *has_origin_r,
						uint64_t *origin_r)
{
	struct imap_arg *items, *body = NULL;
	size_t n, i;

	if (resp->keyword == NULL || strcmp(resp->keyword, "FETCH") != 0 ||
	    resp->count != 1 || resp->args[0].type != IMAP_ARG_LIST)
		return NULL;
	items = resp->args[0].list;
	n = resp->args[0].count;
	for (i = 0; i + 1 < n; i += 2) {
		const char *key;

		if (imap_arg_atom_equals(&items[i], "UID"))
			imap_arg_get_uint32(&items[i + 1], uid_r);
		else if (imap_arg_get_atom(&items[i], &key) &&
			 session_body_key(key, has_origin_r, origin_r))
			body = &items[i + 1];
	}
	return body;
}

/* Decides, from the key before a body literal, which of its bytes are
 * wanted: returns FALSE if the reply does not match the request. */
static gboolean session_body_plan(struct session_body_ctx *ctx,
				  gboolean has_origin, uint64_t origin,
				  uint64_t size, uint64_t *skip_r,
				  uint64_t *want_r)
{
	if (ctx->length == 0) {
		/* The whole message was asked for. */
		*skip_r = 0;
		*want_r = size;
		return !has_origin;
	}
	if (has_origin) {
		/* A partial reply must start where we asked and be no longer
		 * than we asked. */
		*skip_r = 0;
		*want_r = size;
		return origin == ctx->offset && size <= ctx->length;
	}
	/* The server ignored <offset.length> and sent everything: take the
	 * part that was asked for. */
	*skip_r = MIN(ctx->offset, size);
	*want_r = MIN(size - *skip_r, ctx->length);
	return TRUE;
}

/* Literal sink: a body literal of our message is passed on as it arrives
 * (only if the UID came before it in the reply, so we know it is ours). */
static gboolean session_body_start(void *c, const struct imap_arg *sib,
				   size_t n, unsigned int depth, uint64_t size)
{
	struct session_body_ctx *ctx = c;
	gboolean has_origin = FALSE, uid_ok = FALSE;
	uint64_t origin = 0;
	const char *key;
	size_t i;

	if (depth != 1 || n == 0 || n % 2 == 0 || ctx->found ||
	    !imap_arg_get_atom(&sib[n - 1], &key) ||
	    !session_body_key(key, &has_origin, &origin))
		return FALSE;
	for (i = 0; i + 1 < n; i += 2) {
		uint32_t uid;

		if (imap_arg_atom_equals(&sib[i], "UID") &&
		    imap_arg_get_uint32(&sib[i + 1], &uid))
			uid_ok = uid == ctx->uid;
	}
	if (!uid_ok || !session_body_plan(ctx, has_origin, origin, size,
					  &ctx->skip, &ctx->want))
		return FALSE;
	ctx->streaming = TRUE;
	ctx->seen = 0;
	return TRUE;
}

static void session_body_data(void *c, const void *data, size_t len)
{
	struct session_body_ctx *ctx = c;
	const char *p = data;
	uint64_t lo = ctx->seen, hi = ctx->seen + len;

	ctx->seen = hi;
	/* Deliver the part of [lo, hi) inside [skip, skip + want). */
	lo = MAX(lo, ctx->skip);
	hi = MIN(hi, ctx->skip + ctx->want);
	if (lo >= hi)
		return;
	ctx->fn(ctx->user_data, ctx->offset + ctx->delivered,
		p + (lo - (ctx->seen - len)), (size_t)(hi - lo));
	ctx->delivered += hi - lo;
}

static void session_body_cb(struct imap_response *resp, void *user_data)
{
	struct session_body_ctx *ctx = user_data;
	uint32_t uid = 0;
	struct imap_arg *body;
	gboolean has_origin = FALSE;
	uint64_t origin = 0, skip, want;

	body = session_fetch_body_item(resp, &uid, &has_origin, &origin);
	/* Other messages' FETCHes (flag updates) are not ours. */
	if (uid != ctx->uid || body == NULL || ctx->found)
		return;
	ctx->found = TRUE;
	if (body->type == IMAP_ARG_LITERAL && body->streamed) {
		ctx->streaming = FALSE; /* already delivered */
		return;
	}
	if (body->type == IMAP_ARG_NIL) {
		ctx->nodata = TRUE;
		return;
	}
	if ((body->type != IMAP_ARG_STRING && body->type != IMAP_ARG_LITERAL) ||
	    !session_body_plan(ctx, has_origin, origin, body->len, &skip,
			       &want)) {
		ctx->bad_origin = TRUE;
		return;
	}
	if (want > 0)
		ctx->fn(ctx->user_data, ctx->offset, body->str + skip,
			(size_t)want);
	ctx->delivered = want;
}

gboolean imap_session_fetch_body(struct imap_session *session,
				 const char *mailbox, uint32_t uidvalidity,
				 uint32_t uid, uint64_t offset, uint64_t length,
				 imap_body_data_fn *fn, void *user_data,
				 uint64_t *len_r, GError **error)
{
	struct session_body_ctx ctx = {.uid = uid,
				       .offset = offset,
				       .length = length,
				       .fn = fn,
				       .user_data = user_data};
	struct imap_literal_sink sink = {session_body_start, session_body_data,
					 &ctx};
	struct imap_cmd *cmd;
	char *item;
	gboolean ok;

	g_return_val_if_fail(length > 0 || offset == 0, FALSE);
	if (!session_ensure(session, mailbox, uidvalidity, error))
		return FALSE;
	cmd = imap_cmd_new("UID FETCH");
	imap_cmd_add_uint64(cmd, uid);
	if (length == 0)
		item = g_strdup("(UID BODY.PEEK[])");
	else
		item = g_strdup_printf("(UID BODY.PEEK[]<%" G_GUINT64_FORMAT
				       ".%" G_GUINT64_FORMAT ">)",
				       offset, length);
	imap_cmd_add_atom(cmd, item);
	g_free(item);
	imap_conn_set_literal_sink(session->conn, &sink);
	ok = session_run(session, cmd, session_body_cb, &ctx, NULL, error);
	imap_conn_set_literal_sink(session->conn, NULL);
	imap_cmd_free(cmd);
	if (!ok)
		return FALSE;
	if (ctx.bad_origin) {
		g_set_error(error, IMAP_ERROR, IMAP_ERROR_NO,
			    "server answered UID %u with a part that does not "
			    "match the request",
			    uid);
		return FALSE;
	}
	if (!ctx.found) {
		g_set_error(error, IMAP_ERROR, IMAP_ERROR_STALE,
			    "message UID %u of %s no longer exists", uid,
			    mailbox);
		return FALSE;
	}
	if (ctx.nodata) {
		g_set_error(error, IMAP_ERROR, IMAP_ERROR_NO,
			    "server returned no data for UID %u", uid);
		return FALSE;
	}
	if (len_r != NULL)
		*len_r = ctx.delivered;
	return TRUE;
}

struct session_bodies_ctx {
	uint64_t max_len;
	imap_body_fn *fn;
	void *user_data;
};

static void session_bodies_cb(struct imap_response *resp, void *user_data)
{
	struct session_bodies_ctx *ctx = user_data;
	struct imap_arg *body;
	size_t len;
	uint32_t uid = 0;
	gboolean has_origin = FALSE;
	uint64_t origin = 0;
	char *data;

	body = session_fetch_body_item(resp, &uid, &has_origin, &origin);
	if (uid == 0 || body == NULL ||
	    (body->type != IMAP_ARG_STRING && body->type != IMAP_ARG_LITERAL))
		return;
	/* Only a reply that starts at 0 is usable; one longer than asked
	 * for (a server ignoring the range) is cut to size. */
	if (has_origin && origin != 0)
		return;
	data = imap_arg_steal(body, &len);
	if (ctx->max_len > 0 && len > ctx->max_len)
		len = (size_t)ctx->max_len;
	ctx->fn(uid, data, len, ctx->user_data);
}

gboolean imap_session_fetch_bodies(struct imap_session *session,
				   const char *mailbox, uint32_t uidvalidity,
				   const uint32_t *uids, size_t n,
				   uint64_t max_len, imap_body_fn *fn,
				   void *user_data, GError **error)
{
	struct session_bodies_ctx ctx = {max_len, fn, user_data};
	GString *set;
	struct imap_cmd *cmd;
	char *item;
	size_t i;
	gboolean ok;

	g_return_val_if_fail(n > 0 && n <= 1000, FALSE);
	if (!session_ensure(session, mailbox, uidvalidity, error))
		return FALSE;
	/* A compact UID set: runs of consecutive UIDs become a:b. */
	set = g_string_new(NULL);
	for (i = 0; i < n; i++) {
		size_t j = i;

		while (j + 1 < n && uids[j + 1] == uids[j] + 1)
			j++;
		if (set->len > 0)
			g_string_append_c(set, ',');
		if (j > i)
			g_string_append_printf(set, "%u:%u", uids[i], uids[j]);
		else
			g_string_append_printf(set, "%u", uids[i]);
		i = j;
	}
	cmd = imap_cmd_new("UID FETCH");
	imap_cmd_add_atom(cmd, set->str);
	if (max_len == 0)
		item = g_strdup("(UID BODY.PEEK[])");
	else
		item = g_strdup_printf(
			"(UID BODY.PEEK[]<0.%" G_GUINT64_FORMAT ">)", max_len);
	imap_cmd_add_atom(cmd, item);
	g_free(item);
	g_string_free(set, TRUE);
	ok = session_run(session, cmd, session_bodies_cb, &ctx, NULL, error);
	imap_cmd_free(cmd);
	return ok;
}

struct session_quota_ctx {
	gboolean found;
	uint64_t used, limit;
};

static void session_quota_cb(struct imap_response *resp, void *user_data)
{
	struct session_quota_ctx *ctx = user_data;
	const struct imap_arg *res;
	size_t n, i;

	if (resp->keyword == NULL || strcmp(resp->keyword, "QUOTA") != 0 ||
	    resp->count < 2 || !imap_arg_get_list(&resp->args[1], &res, &n))
		return;
	for (i = 0; i + 2 < n; i += 3) {
		uint64_t used, limit;

		if (imap_arg_atom_equals(&res[i], "STORAGE") &&
		    imap_arg_get_uint64(&res[i + 1], &used) &&
		    imap_arg_get_uint64(&res[i + 2], &limit) && !ctx->found) {
			ctx->found = TRUE;
			ctx->used = used;
			ctx->limit = limit;
		}
	}
}

gboolean imap_session_quota(struct imap_session *session, uint64_t *used_kib_r,
			    uint64_t *limit_kib_r, GError **error)
{
	struct session_quota_ctx ctx = {0};
	struct imap_cmd *cmd;
	gboolean ok;

	if (!imap_conn_has_cap(session->conn, "QUOTA")) {
		g_set_error(error, IMAP_ERROR, IMAP_ERROR_UNSUPPORTED,
			    "server has no QUOTA extension");
		return FALSE;
	}
	cmd = imap_cmd_new("GETQUOTAROOT");
	imap_cmd_add_atom(cmd, "INBOX");
	ok = session_run(session, cmd, session_quota_cb, &ctx, NULL, error);
	imap_cmd_free(cmd);
	if (!ok)
		return FALSE;
	if (!ctx.found) {
		g_set_error(error, IMAP_ERROR, IMAP_ERROR_UNSUPPORTED,
			    "server reported no STORAGE quota");
		return FALSE;
	}
	*used_kib_r = ctx.used;
	*limit_kib_r = ctx.limit;
	return TRUE;
}
