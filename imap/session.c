/* session.c - login and the typed read requests; see session.h. */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "acl.h"
#include "auth.h"
#include "conn.h"
#include "imap-error.h"
#include "log.h"
#include "mutate.h"
#include "resync.h"
#include "session-int.h"
#include "session-private.h"

/* Per-command dispatch: keeps the selected mailbox's state current from
 * whatever untagged data arrives, then hands the response on. */
struct session_dispatch {
	struct imap_session *session;
	imap_untagged_fn *cb;
	void *user_data;
};

/* "(\\Seen \\*)" -> "\\Seen \\*"; NULL if @args is not a list. */
static char *session_flag_list(const char *args)
{
	size_t len = strlen(args);

	if (len < 2 || args[0] != '(' || args[len - 1] != ')')
		return NULL;
	return g_strstrip(g_strndup(args + 1, len - 2));
}

static void session_note_code(struct imap_session *s, const char *code,
			      const char *args)
{
	guint64 v;

	if (code == NULL || args == NULL)
		return;
	if (strcmp(code, "PERMANENTFLAGS") == 0) {
		char *list = session_flag_list(args);

		if (list != NULL) {
			g_free(s->permanent_flags);
			s->permanent_flags = list;
		}
		return;
	}
	if (!g_ascii_string_to_unsigned(args, 10, 0, G_MAXUINT64, &v, NULL))
		return;
	if (strcmp(code, "UIDVALIDITY") == 0 && v <= G_MAXUINT32)
		s->status.uidvalidity = (uint32_t)v;
	else if (strcmp(code, "UIDNEXT") == 0 && v <= G_MAXUINT32)
		s->status.uidnext = (uint32_t)v;
	else if (strcmp(code, "HIGHESTMODSEQ") == 0)
		s->status.highestmodseq = v;
}

/* "* FLAGS (\\Seen ...)": the flags the mailbox knows. */
static void session_note_flags(struct imap_session *s,
			       const struct imap_response *resp)
{
	const struct imap_arg *list;
	size_t n;
	GString *out;

	if (resp->count != 1 || !imap_arg_get_list(&resp->args[0], &list, &n))
		return;
	out = g_string_new(NULL);
	for (size_t i = 0; i < n; i++) {
		const char *flag;

		if (!imap_arg_get_atom(&list[i], &flag))
			continue;
		if (out->len > 0)
			g_string_append_c(out, ' ');
		g_string_append(out, flag);
	}
	g_free(s->flags);
	s->flags = g_string_free(out, FALSE);
}

static void session_untagged(struct imap_response *resp, void *user_data)
{
	struct session_dispatch *d = user_data;
	struct imap_session *s = d->session;

	if (resp->status != IMAP_STATUS_NONE) {
		session_note_code(s, resp->code, resp->code_args);
	} else if (!resp->has_number && resp->keyword != NULL &&
		   strcmp(resp->keyword, "FLAGS") == 0) {
		session_note_flags(s, resp);
	} else if (resp->has_number && resp->keyword != NULL) {
		if (strcmp(resp->keyword, "EXISTS") == 0)
			s->status.exists = resp->number;
		else if (strcmp(resp->keyword, "EXPUNGE") == 0 &&
			 s->status.exists > 0)
			s->status.exists--;
	} else if (s->qresync) {
		/* QRESYNC's EXPUNGE. */
		s->status.exists -=
			MIN(imap_resync_vanished_now(resp), s->status.exists);
	}
	if (d->cb != NULL)
		d->cb(resp, d->user_data);
}

gboolean imap_session_run_cmd(struct imap_session *s,
			      const struct imap_cmd *cmd, gboolean once,
			      imap_untagged_fn *cb, void *user_data,
			      struct imap_response **tagged_r, GError **error)
{
	struct session_dispatch d = {s, cb, user_data};
	struct imap_response *tagged = NULL;
	gboolean ok;

	if (once)
		ok = imap_conn_run_once(s->conn, cmd, session_untagged, &d,
					&tagged, error);
	else
		ok = imap_conn_run(s->conn, cmd, session_untagged, &d, &tagged,
				   error);
	if (tagged != NULL)
		session_note_code(s, tagged->code, tagged->code_args);
	if (tagged_r != NULL)
		*tagged_r = tagged;
	else
		imap_response_free(tagged);
	return ok;
}

static gboolean session_run(struct imap_session *s, const struct imap_cmd *cmd,
			    imap_untagged_fn *cb, void *user_data,
			    struct imap_response **tagged_r, GError **error)
{
	return imap_session_run_cmd(s, cmd, FALSE, cb, user_data, tagged_r,
				    error);
}

gboolean imap_session_run(struct imap_session *session,
			  const struct imap_cmd *cmd, imap_untagged_fn *cb,
			  void *user_data, struct imap_response **tagged_r,
			  GError **error)
{
	return session_run(session, cmd, cb, user_data, tagged_r, error);
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

gboolean imap_session_list_has_status(const struct imap_session *session)
{
	return imap_conn_has_cap(session->conn, "LIST-EXTENDED") &&
	       imap_conn_has_cap(session->conn, "LIST-STATUS");
}

void imap_session_abort(struct imap_session *session)
{
	imap_conn_abort(session->conn);
}

const char *imap_session_selected(const struct imap_session *session)
{
	return session->selected;
}

static void session_ns_free(gpointer p)
{
	struct session_ns *ns = p;

	g_free(ns->prefix);
	g_free(ns);
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
			const struct imap_arg *nsl;
			size_t m, dlen = 0;
			const char *prefix, *delim = NULL;
			struct session_ns *ns;

			if (!imap_arg_get_list(&list[j], &nsl, &m) || m < 2 ||
			    !imap_arg_get_astring(&nsl[0], &prefix) ||
			    (nsl[1].type != IMAP_ARG_NIL &&
			     (!imap_arg_get_nstring(&nsl[1], &delim, &dlen) ||
			      dlen != 1)))
				continue;
			if (i == 0 && j == 0) {
				ns = s->namespaces->pdata[0];
				g_free(ns->prefix);
			} else {
				ns = g_new0(struct session_ns, 1);
				g_ptr_array_add(s->namespaces, ns);
			}
			ns->kind = (enum imap_ns_kind)i;
			ns->prefix = g_strdup(prefix);
			ns->delimiter = delim != NULL ? delim[0] : 0;
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
	s->namespaces = g_ptr_array_new_with_free_func(session_ns_free);
	{
		struct session_ns *primary = g_new0(struct session_ns, 1);

		primary->kind = IMAP_NS_PERSONAL;
		primary->prefix = g_strdup("");
		g_ptr_array_add(s->namespaces, primary);
	}
	s->conn = imap_conn_connect(&params, error);
	if (s->conn == NULL)
		goto fail;
	if (!imap_auth_login(s->conn, account, error))
		goto fail;
	/* Capabilities change after login; re-read unless the tagged OK
	 * already carried them. */
	if (!imap_conn_refresh_caps(s->conn, error))
		goto fail;
	if (!imap_resync_enable(s, error))
		goto fail;
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
	g_ptr_array_unref(session->namespaces);
	g_free(session->selected);
	g_free(session->permanent_flags);
	g_free(session->flags);
	g_free(session);
}

gboolean imap_mailbox_info_is_primary(const struct imap_mailbox_info *info)
{
	return info->ns_kind == IMAP_NS_PERSONAL && !info->ns_secondary;
}

static void session_mailbox_info_free(gpointer p)
{
	struct imap_mailbox_info *info = p;

	g_free(info->name);
	g_free(info->special_use);
	g_free(info->ns_prefix);
	g_free(info->rel_name);
	g_free(info->rights);
	g_free(info->old_name);
	g_free(info);
}

struct session_list_ctx {
	struct imap_session *session;
	GPtrArray *result;
	GHashTable *seen; /* names already in result */
	/* Names a LIST-STATUS reply came for -> struct imap_mailbox_status. */
	GHashTable *status;
	/* Names an untagged "NO ...: NAME" refused a STATUS for. */
	GHashTable *refused;
};

/* The namespace @name belongs to: the one with the longest prefix it
 * starts with (INBOX is always in the primary personal one), or NULL if
 * none, or if @name is a namespace's own container (its prefix without
 * the trailing delimiter, e.g. "shared" for "shared."). */
static const struct session_ns *session_classify(struct imap_session *s,
						 const char *name)
{
	const struct session_ns *best = NULL;
	size_t nlen = strlen(name);
	guint i;

	if (g_ascii_strcasecmp(name, "INBOX") == 0)
		return s->namespaces->pdata[0];
	for (i = 0; i < s->namespaces->len; i++) {
		const struct session_ns *ns = s->namespaces->pdata[i];
		size_t plen = strlen(ns->prefix);

		if (plen > 0 && nlen + 1 == plen &&
		    strncmp(name, ns->prefix, nlen) == 0 &&
		    ns->prefix[nlen] == ns->delimiter)
			return NULL;
		if (strncmp(name, ns->prefix, plen) == 0 &&
		    (best == NULL || plen > strlen(best->prefix)))
			best = ns;
	}
	/* The whole prefix is not a mailbox of its namespace ("INBOX."
	 * itself, an empty name). */
	if (best != NULL && nlen == strlen(best->prefix))
		return NULL;
	return best;
}

/* The OLDNAME of a LIST reply's extended data, `("OLDNAME" ("old"))`
 * after the name (g_malloc'd), or NULL. */
static char *session_list_old_name(const struct imap_response *resp)
{
	const struct imap_arg *ext, *v;
	size_t n, nv;
	const char *tag, *old;

	if (resp->count < 4 || !imap_arg_get_list(&resp->args[3], &ext, &n))
		return NULL;
	for (size_t i = 0; i + 1 < n; i += 2) {
		if (imap_arg_get_astring(&ext[i], &tag) &&
		    g_ascii_strcasecmp(tag, "OLDNAME") == 0 &&
		    imap_arg_get_list(&ext[i + 1], &v, &nv) && nv == 1 &&
		    imap_arg_get_astring(&v[0], &old) && *old != '\0')
			return g_strdup(old);
	}
	return NULL;
}

static void session_list_cb(struct imap_response *resp, void *user_data)
{
	struct session_list_ctx *ctx = user_data;
	const struct imap_arg *flags;
	size_t nflags, i;
	const char *delim = NULL, *name;
	const struct session_ns *ns;
	struct imap_mailbox_info *info;

	if (resp->keyword != NULL && strcmp(resp->keyword, "STATUS") == 0 &&
	    resp->count >= 1 && imap_arg_get_astring(&resp->args[0], &name)) {
		struct imap_mailbox_status *st =
			g_new0(struct imap_mailbox_status, 1);

		if (resp->count >= 2 &&
		    imap_arg_get_list(&resp->args[1], &flags, &nflags))
			imap_status_items_parse(flags, nflags, st);
		g_hash_table_replace(ctx->status, g_strdup(name), st);
		return;
	}
	/* Dovecot 2.3 (after another session renamed or deleted it) goes
	 * on listing a mailbox, refusing its STATUS with "* NO Mailbox
	 * doesn't exist: NAME". */
	if (resp->status == IMAP_STATUS_NO && resp->text != NULL &&
	    strstr(resp->text, ": ") != NULL) {
		g_hash_table_add(ctx->refused,
				 g_strdup(strrchr(resp->text, ':') + 2));
		return;
	}
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
	if (*name == '\0' || g_hash_table_contains(ctx->seen, name))
		return;
	ns = session_classify(ctx->session, name);
	if (ns == NULL)
		return;
	info = g_new0(struct imap_mailbox_info, 1);
	info->name = g_strdup(name);
	info->delimiter = delim != NULL ? delim[0] : 0;
	info->ns_kind = ns->kind;
	info->ns_prefix = g_strdup(ns->prefix);
	info->ns_secondary = ns->kind == IMAP_NS_PERSONAL &&
			     ns != ctx->session->namespaces->pdata[0];
	info->rel_name = g_ascii_strcasecmp(name, "INBOX") == 0
				 ? g_strdup(name)
				 : g_strdup(name + strlen(ns->prefix));
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
	info->old_name = session_list_old_name(resp);
	g_hash_table_add(ctx->seen, info->name);
	g_ptr_array_add(ctx->result, info);
}

/* One LIST "" @pattern into @ctx. */
static gboolean session_list_pattern(struct session_list_ctx *ctx,
				     const char *pattern, GError **error)
{
	struct imap_session *session = ctx->session;
	struct imap_cmd *cmd = imap_cmd_new("LIST");
	gboolean ok;

	ok = imap_cmd_add_string(cmd, "", 0, FALSE, error) &&
	     imap_cmd_add_string(cmd, pattern, strlen(pattern), FALSE, error);
	/* LIST-EXTENDED return options: SPECIAL-USE marks Trash, Sent...;
	 * CHILDREN says which mailboxes have children. */
	if (ok && imap_conn_has_cap(session->conn, "LIST-EXTENDED")) {
		GString *ret = g_string_new(NULL);

		if (imap_conn_has_cap(session->conn, "SPECIAL-USE"))
			g_string_append(ret, " SPECIAL-USE");
		if (imap_conn_has_cap(session->conn, "CHILDREN"))
			g_string_append(ret, " CHILDREN");
		/* A STATUS for every mailbox that can be selected (RFC 5819
		 * sends none for the others): see session_list_ghosts(). */
		if (imap_session_list_has_status(session))
			g_string_append(ret, " STATUS (UIDVALIDITY MESSAGES "
					     "UIDNEXT)");
		if (ret->len > 0) {
			ret->str[0] = '(';
			g_string_prepend(ret, "RETURN ");
			g_string_append_c(ret, ')');
			imap_cmd_add_atom(cmd, ret->str);
		}
		g_string_free(ret, TRUE);
	}
	if (ok)
		ok = session_run(session, cmd, session_list_cb, ctx, NULL,
				 error);
	imap_cmd_free(cmd);
	return ok;
}

/* A parent whose own mailbox is gone: Dovecot keeps listing a deleted
 * mailbox that still has children as if it existed (no \Noselect), and
 * EXAMINE then fails, which would make its children unreachable. With
 * LIST-STATUS, a mailbox that has children and got no STATUS reply is
 * such a parent: it is treated as \Noselect. (A leaf without STATUS stays
 * selectable: there EXAMINE reports what is wrong.) */
static void session_list_ghosts(struct session_list_ctx *ctx)
{
	guint i, j;

	if (!imap_session_list_has_status(ctx->session))
		return;
	for (i = 0; i < ctx->result->len; i++) {
		struct imap_mailbox_info *info = ctx->result->pdata[i];
		gboolean parent = info->has_children;

		if (info->noselect ||
		    g_hash_table_contains(ctx->status, info->name))
			continue;
		for (j = 0;
		     !parent && info->delimiter != '\0' && j < ctx->result->len;
		     j++) {
			const struct imap_mailbox_info *o =
				ctx->result->pdata[j];
			size_t n = strlen(info->name);

			parent = strncmp(o->name, info->name, n) == 0 &&
				 o->name[n] == info->delimiter;
		}
		if (parent) {
			imapfs_debug("%s: listed, but no STATUS: a parent "
				     "only",
				     info->name);
			info->noselect = TRUE;
		} else if (g_hash_table_contains(ctx->refused, info->name)) {
			imapfs_debug("%s: listed, but the server says it does "
				     "not exist",
				     info->name);
			info->noselect = TRUE;
			info->nonexistent = TRUE;
		}
	}
}

/* MYRIGHTS for the mailboxes that may be restricted: those outside the
 * primary personal namespace (shared and other users' mailboxes). */
static gboolean session_list_rights(struct imap_session *s, GPtrArray *infos,
				    GError **error)
{
	guint i;

	if (!imap_conn_has_cap(s->conn, "ACL"))
		return TRUE;
	for (i = 0; i < infos->len; i++) {
		struct imap_mailbox_info *info = infos->pdata[i];
		GError *err = NULL;

		if (imap_mailbox_info_is_primary(info) || info->noselect)
			continue;
		if (imap_session_myrights(s, info->name, &info->rights, &err))
			continue;
		if (imap_error_is_fatal(err)) {
			g_propagate_error(error, err);
			return FALSE;
		}
		/* A refusal means no rights we could use. */
		imapfs_debug("MYRIGHTS %s: %s", info->name, err->message);
		g_error_free(err);
		info->rights = g_strdup("");
	}
	return TRUE;
}

GPtrArray *imap_session_list(struct imap_session *session, GError **error)
{
	struct session_list_ctx ctx = {session, NULL, NULL, NULL, NULL};
	const struct session_ns *primary = session->namespaces->pdata[0];
	gboolean ok = TRUE;
	guint i;

	ctx.result = g_ptr_array_new_with_free_func(session_mailbox_info_free);
	ctx.seen = g_hash_table_new(g_str_hash, g_str_equal);
	ctx.status =
		g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
	ctx.refused =
		g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
	/* "INBOX.*" cannot match INBOX itself. */
	if (*primary->prefix != '\0')
		ok = session_list_pattern(&ctx, "INBOX", error);
	for (i = 0; ok && i < session->namespaces->len; i++) {
		const struct session_ns *ns = session->namespaces->pdata[i];
		char *pattern = g_strconcat(ns->prefix, "*", NULL);

		ok = session_list_pattern(&ctx, pattern, error);
		g_free(pattern);
	}
	g_hash_table_destroy(ctx.seen);
	if (ok)
		session_list_ghosts(&ctx);
	for (i = 0; ok && i < ctx.result->len; i++) {
		struct imap_mailbox_info *info = ctx.result->pdata[i];
		const struct imap_mailbox_status *st =
			g_hash_table_lookup(ctx.status, info->name);

		if (st != NULL && !info->noselect) {
			info->uidvalidity = st->uidvalidity;
			info->exists = st->exists;
			info->uidnext = st->uidnext;
		}
	}
	g_hash_table_destroy(ctx.status);
	g_hash_table_destroy(ctx.refused);
	if (ok)
		ok = session_list_rights(session, ctx.result, error);
	if (!ok) {
		g_ptr_array_unref(ctx.result);
		return NULL;
	}
	return ctx.result;
}

void imap_session_forget_selected(struct imap_session *s)
{
	g_clear_pointer(&s->selected, g_free);
	g_clear_pointer(&s->permanent_flags, g_free);
	g_clear_pointer(&s->flags, g_free);
	s->selected_rw = FALSE;
	s->read_only = FALSE;
	memset(&s->status, 0, sizeof(s->status));
}

/* SELECT (@rw) or EXAMINE @mailbox. */
static gboolean session_open_mailbox(struct imap_session *s,
				     const char *mailbox, gboolean rw,
				     GError **error)
{
	struct imap_cmd *cmd = imap_cmd_new(rw ? "SELECT" : "EXAMINE");
	struct imap_response *tagged = NULL;
	gboolean ok;

	imap_session_forget_selected(s);
	ok = imap_cmd_add_string(cmd, mailbox, strlen(mailbox), FALSE, error) &&
	     session_run(s, cmd, NULL, NULL, &tagged, error);
	imap_cmd_free(cmd);
	if (ok && rw && tagged->code != NULL &&
	    strcmp(tagged->code, "READ-ONLY") == 0)
		s->read_only = TRUE;
	imap_response_free(tagged);
	if (!ok)
		return FALSE;
	if (s->status.uidvalidity == 0) {
		g_set_error(error, IMAP_ERROR, IMAP_ERROR_PROTOCOL,
			    "server sent no UIDVALIDITY for %s", mailbox);
		return FALSE;
	}
	s->selected = g_strdup(mailbox);
	s->selected_rw = rw;
	return TRUE;
}

gboolean imap_session_examine(struct imap_session *session, const char *mailbox,
			      struct imap_mailbox_status *status_r,
			      GError **error)
{
	/* A mailbox this session has SELECTed for writing is re-opened the
	 * same way: the status is as fresh, and reads work either way. */
	gboolean rw = session->selected != NULL && session->selected_rw &&
		      strcmp(session->selected, mailbox) == 0;

	if (!session_open_mailbox(session, mailbox, rw, error))
		return FALSE;
	if (status_r != NULL)
		*status_r = session->status;
	return TRUE;
}

gboolean imap_session_ensure(struct imap_session *s, const char *mailbox,
			     uint32_t uidvalidity, gboolean rw, GError **error)
{
	if (s->selected == NULL || strcmp(s->selected, mailbox) != 0 ||
	    (rw && !s->selected_rw)) {
		if (!session_open_mailbox(s, mailbox, rw, error))
			return FALSE;
	}
	if (uidvalidity != 0 && s->status.uidvalidity != uidvalidity) {
		g_set_error(error, IMAP_ERROR, IMAP_ERROR_STALE,
			    "UIDVALIDITY of %s changed (%u -> %u)", mailbox,
			    uidvalidity, s->status.uidvalidity);
		return FALSE;
	}
	if (rw && s->read_only) {
		g_set_error(error, IMAP_ERROR, IMAP_ERROR_NOPERM,
			    "%s is read-only for this user", mailbox);
		return FALSE;
	}
	return TRUE;
}

/* Makes @mailbox the examined mailbox with @uidvalidity (0 = any). */
static gboolean session_ensure(struct imap_session *s, const char *mailbox,
			       uint32_t uidvalidity, GError **error)
{
	return imap_session_ensure(s, mailbox, uidvalidity, FALSE, error);
}

/* INTERNALDATE (RFC 3501 date-time) is parsed by hand: it comes once per
 * message in every folder listing, and sscanf plus a GTimeZone per message
 * was a fifth of the daemon's CPU time on a million-message folder. */

/* The value of @n ASCII digits at @p, or -1 if one is not a digit. */
static int session_digits(const char *p, int n)
{
	int v = 0, i;

	for (i = 0; i < n; i++) {
		if (p[i] < '0' || p[i] > '9')
			return -1;
		v = v * 10 + (p[i] - '0');
	}
	return v;
}

/* 1..12 for a month name (ASCII case-insensitive), else 0. */
static int session_month(const char *p)
{
	static const char names[] = "janfebmaraprmayjunjulaugsepoctnovdec";
	char m[3];
	int i;

	for (i = 0; i < 3; i++) {
		if (!g_ascii_isalpha(p[i]))
			return 0;
		m[i] = g_ascii_tolower(p[i]);
	}
	for (i = 0; i < 12; i++) {
		if (memcmp(names + 3 * i, m, 3) == 0)
			return i + 1;
	}
	return 0;
}

static int session_days_in_month(int year, int month)
{
	static const unsigned char days[] = {31, 28, 31, 30, 31, 30,
					     31, 31, 30, 31, 30, 31};
	gboolean leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;

	return month == 2 && leap ? 29 : days[month - 1];
}

/* Days from 1970-01-01 to @year-@month-@day (proleptic Gregorian; the
 * well-known era computation, valid for every year >= 1). */
static gint64 session_days_from_civil(int year, int month, int day)
{
	gint64 y = month <= 2 ? year - 1 : year;
	gint64 era = y / 400; /* y >= 0 */
	gint64 yoe = y - era * 400;
	gint64 doy =
		(153 * (month > 2 ? month - 3 : month + 9) + 2) / 5 + day - 1;
	gint64 doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;

	return era * 146097 + doe - 719468;
}

gboolean imap_parse_datetime(const char *text, gint64 *time_r)
{
	const char *p = text;
	int day, month, year, hh, mm, ss, zh, zm;
	gint64 t;

	if (p == NULL)
		return FALSE;
	/* date-day-fixed: 2DIGIT or SP DIGIT; a bare single digit is
	 * tolerated (the old sscanf parser took it, some servers send it). */
	if (p[0] == ' ')
		p++;
	if (p[0] >= '0' && p[0] <= '9' && p[1] == '-') {
		day = p[0] - '0';
		p += 1;
	} else {
		if (text[0] == ' ' || (day = session_digits(p, 2)) < 0)
			return FALSE;
		p += 2;
	}
	if (*p++ != '-' || (month = session_month(p)) == 0)
		return FALSE;
	p += 3;
	if (*p++ != '-' || (year = session_digits(p, 4)) < 1)
		return FALSE;
	p += 4;
	if (*p++ != ' ' || (hh = session_digits(p, 2)) < 0 || p[2] != ':' ||
	    (mm = session_digits(p + 3, 2)) < 0 || p[5] != ':' ||
	    (ss = session_digits(p + 6, 2)) < 0 || p[8] != ' ')
		return FALSE;
	p += 9;
	if ((p[0] != '+' && p[0] != '-') ||
	    (zh = session_digits(p + 1, 2)) < 0 ||
	    (zm = session_digits(p + 3, 2)) < 0 || p[5] != '\0')
		return FALSE;
	/* Seconds 60 is a leap second (RFC 5322 allows it): it reads as the
	 * first second of the next minute. */
	if (day < 1 || day > session_days_in_month(year, month) || hh > 23 ||
	    mm > 59 || ss > 60 || zh > 23 || zm > 59)
		return FALSE;
	t = session_days_from_civil(year, month, day) * 86400 + hh * 3600 +
	    mm * 60 + ss;
	t -= (p[0] == '-' ? -1 : 1) * (gint64)(zh * 3600 + zm * 60);
	if (time_r != NULL)
		*time_r = t;
	return TRUE;
}

struct session_meta_ctx {
	imap_meta_fn *fn;
	void *user_data;
	GString *flags;
	/* (UID FLAGS) only: a reply needs UID and FLAGS, not a size. */
	gboolean flags_only;
	uint32_t first, last; /* the range asked for (0 = "*") */
};

static void session_meta_cb(struct imap_response *resp, void *user_data)
{
	struct session_meta_ctx *ctx = user_data;
	struct imap_message_meta meta = {0};
	const struct imap_arg *items;
	size_t n, i;
	gboolean have_uid = FALSE, have_size = FALSE, have_date = FALSE;
	gboolean have_flags = FALSE;

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
			have_flags = TRUE;
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
	if (!have_uid || (ctx->flags_only ? !have_flags : !have_size))
		return;
	/* "UID FETCH n:*" answers with the highest UID even when it is
	 * below n (RFC 3501: n:* is *:n); a server may also send what was
	 * not asked for. Only UIDs in the range are reported. */
	if (meta.uid < ctx->first || (ctx->last != 0 && meta.uid > ctx->last))
		return;
	if (!have_date)
		meta.internaldate = 0;
	meta.flags = ctx->flags->str;
	ctx->fn(&meta, ctx->user_data);
}

/* UID FETCH @first:@last @items [@modifier] with session_meta_cb. */
static gboolean session_fetch_items(struct imap_session *session,
				    const char *mailbox, uint32_t uidvalidity,
				    uint32_t uid_first, uint32_t uid_last,
				    const char *items, const char *modifier,
				    gboolean flags_only, imap_meta_fn *fn,
				    void *user_data, GError **error)
{
	struct session_meta_ctx ctx = {
		fn, user_data, NULL, flags_only, MAX(uid_first, 1u), uid_last};
	struct imap_cmd *cmd;
	char *range;
	gboolean ok;

	if (!session_ensure(session, mailbox, uidvalidity, error))
		return FALSE;
	if (uid_last == 0)
		range = g_strdup_printf("%u:*", ctx.first);
	else
		range = g_strdup_printf("%u:%u", ctx.first, uid_last);
	ctx.flags = g_string_new(NULL);
	cmd = imap_cmd_new("UID FETCH");
	imap_cmd_add_atom(cmd, range);
	imap_cmd_add_atom(cmd, items);
	if (modifier != NULL)
		imap_cmd_add_atom(cmd, modifier);
	ok = session_run(session, cmd, session_meta_cb, &ctx, NULL, error);
	imap_cmd_free(cmd);
	g_free(range);
	g_string_free(ctx.flags, TRUE);
	return ok;
}

gboolean imap_session_fetch_meta(struct imap_session *session,
				 const char *mailbox, uint32_t uidvalidity,
				 uint32_t uid_first, uint32_t uid_last,
				 imap_meta_fn *fn, void *user_data,
				 GError **error)
{
	return session_fetch_items(session, mailbox, uidvalidity, uid_first,
				   uid_last,
				   "(UID RFC822.SIZE INTERNALDATE FLAGS)", NULL,
				   FALSE, fn, user_data, error);
}

gboolean imap_session_fetch_flags(struct imap_session *session,
				  const char *mailbox, uint32_t uidvalidity,
				  uint32_t uid_first, uint32_t uid_last,
				  uint64_t changedsince, imap_meta_fn *fn,
				  void *user_data, GError **error)
{
	char *mod = NULL;
	gboolean ok;

	if (changedsince != 0)
		mod = g_strdup_printf("(CHANGEDSINCE %" G_GUINT64_FORMAT ")",
				      changedsince);
	ok = session_fetch_items(session, mailbox, uidvalidity, uid_first,
				 uid_last, "(UID FLAGS)", mod, TRUE, fn,
				 user_data, error);
	g_free(mod);
	return ok;
}

/* Appends @lo..@hi to @ranges, merging with the last range when adjacent
 * or overlapping (input in ascending order). */
static void session_range_add(GArray *ranges, uint32_t lo, uint32_t hi)
{
	struct imap_uid_range *last =
		ranges->len > 0 ? &g_array_index(ranges, struct imap_uid_range,
						 ranges->len - 1)
				: NULL;
	struct imap_uid_range r = {lo, hi};

	if (last != NULL && lo <= (uint64_t)last->hi + 1 && lo >= last->lo) {
		last->hi = MAX(last->hi, hi);
		return;
	}
	g_array_append_val(ranges, r);
}

static gint session_range_cmp(gconstpointer a, gconstpointer b)
{
	const struct imap_uid_range *x = a, *y = b;

	return x->lo < y->lo ? -1 : x->lo > y->lo;
}

/* Sorts and merges @ranges in place. */
static void session_ranges_normalize(GArray *ranges)
{
	GArray *tmp;
	guint i;

	g_array_sort(ranges, session_range_cmp);
	tmp = g_array_sized_new(FALSE, FALSE, sizeof(struct imap_uid_range),
				ranges->len);
	for (i = 0; i < ranges->len; i++) {
		const struct imap_uid_range *r =
			&g_array_index(ranges, struct imap_uid_range, i);

		session_range_add(tmp, r->lo, r->hi);
	}
	g_array_set_size(ranges, 0);
	g_array_append_vals(ranges, tmp->data, tmp->len);
	g_array_unref(tmp);
}

gboolean imap_parse_uid_set(const char *text, uint32_t first, uint32_t last,
			    GArray *ranges)
{
	const char *p = text;

	if (text == NULL || *text == '\0')
		return FALSE;
	for (;;) {
		guint64 a, b;
		char *end;

		if (!g_ascii_isdigit(*p))
			return FALSE;
		a = g_ascii_strtoull(p, &end, 10);
		p = end;
		b = a;
		if (*p == ':') {
			p++;
			if (!g_ascii_isdigit(*p))
				return FALSE;
			b = g_ascii_strtoull(p, &end, 10);
			p = end;
		}
		if (a == 0 || b == 0 || a > G_MAXUINT32 || b > G_MAXUINT32)
			return FALSE;
		if (a > b) {
			guint64 t = a;

			a = b;
			b = t;
		}
		/* Clipped to what was asked for. */
		a = MAX(a, first);
		b = MIN(b, last);
		if (a <= b) {
			struct imap_uid_range r = {(uint32_t)a, (uint32_t)b};

			g_array_append_val(ranges, r);
		}
		if (*p == '\0')
			break;
		if (*p++ != ',')
			return FALSE;
	}
	session_ranges_normalize(ranges);
	return TRUE;
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
