/* auth.c - see auth.h.
 *
 * Every buffer that held a password, token or initial response is wiped
 * before it is freed; the command builder marks them secret, so the -d
 * trace shows "<redacted>".
 */
#include "config.h"

#include <string.h>

#include "auth.h"
#include "imap-error.h"
#include "log.h"

/* How much of a server's error report is quoted in a message. */
enum { AUTH_MAX_DETAIL = 200 };

static void auth_wipe(char *s)
{
	if (s != NULL) {
		explicit_bzero(s, strlen(s));
		g_free(s);
	}
}

/* TRUE if a refused login says "too many connections" rather than "bad
 * credentials": NO [UNAVAILABLE] (RFC 5530, temporary), Dovecot 2.3's
 * NO [LIMIT] "Maximum number of connections from user+IP exceeded
 * (mail_max_userip_connections=N)", or Gmail's "[ALERT] Too many
 * simultaneous connections". */
static gboolean auth_connection_limit(const GError *err)
{
	if (err->domain != IMAP_ERROR)
		return FALSE;
	if (err->code == IMAP_ERROR_UNAVAILABLE)
		return TRUE;
	/* The message is "[CODE] text" (imap_conn_run()); Dovecot 2.3's
	 * [LIMIT] became OVERQUOTA there. */
	if (err->code != IMAP_ERROR_NO && err->code != IMAP_ERROR_AUTH &&
	    err->code != IMAP_ERROR_OVERQUOTA)
		return FALSE;
	if (g_str_has_prefix(err->message, "[LIMIT]"))
		return TRUE;
	return imap_refusal_is_connection_limit(NULL, err->message);
}

/* Refused credentials become one IMAP_ERROR_AUTH sentence with the
 * server's text; a connection limit one IMAP_ERROR_UNAVAILABLE (the pool
 * then uses fewer connections); anything else (a broken connection)
 * passes unchanged. */
static void auth_report(const struct imap_account *a, GError *err,
			const char *detail, GError **error)
{
	if (auth_connection_limit(err)) {
		g_set_error(error, IMAP_ERROR, IMAP_ERROR_UNAVAILABLE,
			    "server refused another connection for %s: %s",
			    a->user, err->message);
		g_error_free(err);
	} else if (err->domain == IMAP_ERROR && (err->code == IMAP_ERROR_NO ||
						 err->code == IMAP_ERROR_AUTH ||
						 err->code == IMAP_ERROR_BAD)) {
		g_set_error(error, IMAP_ERROR, IMAP_ERROR_AUTH,
			    "authentication failed for %s: %s%s%s%s", a->user,
			    err->message, detail != NULL ? " (" : "",
			    detail != NULL ? detail : "",
			    detail != NULL ? ")" : "");
		g_error_free(err);
	} else {
		g_propagate_error(error, err);
	}
}

static gboolean auth_refused(const GError *err)
{
	return err->domain == IMAP_ERROR &&
	       (err->code == IMAP_ERROR_NO || err->code == IMAP_ERROR_AUTH ||
		err->code == IMAP_ERROR_BAD);
}

/* ---- password ---- */

static gboolean auth_password(struct imap_conn *conn,
			      const struct imap_account *a, GError **error)
{
	struct imap_cmd *cmd;
	GError *err = NULL;
	gboolean ok;

	if (imap_conn_has_cap(conn, "AUTH=PLAIN")) {
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
		explicit_bzero(raw, len);
		g_free(raw);
		cmd = imap_cmd_new("AUTHENTICATE PLAIN");
		if (imap_conn_has_cap(conn, "SASL-IR")) {
			imap_cmd_add_atom_secret(cmd, b64);
			ok = imap_conn_run_sasl(conn, cmd, NULL, NULL, NULL,
						NULL, &err);
		} else {
			ok = imap_conn_run_sasl(conn, cmd, b64, NULL, NULL,
						NULL, &err);
		}
		auth_wipe(b64);
	} else if (!imap_conn_has_cap(conn, "LOGINDISABLED")) {
		cmd = imap_cmd_new("LOGIN");
		if (!imap_cmd_add_string(cmd, a->user, strlen(a->user), FALSE,
					 error) ||
		    !imap_cmd_add_string(cmd, a->password, strlen(a->password),
					 TRUE, error)) {
			imap_cmd_free(cmd);
			return FALSE;
		}
		ok = imap_conn_run(conn, cmd, NULL, NULL, NULL, &err);
	} else {
		g_set_error(error, IMAP_ERROR, IMAP_ERROR_UNSUPPORTED,
			    "server offers neither AUTH=PLAIN nor LOGIN");
		return FALSE;
	}
	imap_cmd_free(cmd);
	if (ok)
		return TRUE;
	auth_report(a, err, NULL, error);
	return FALSE;
}

/* ---- OAuth2 ---- */

char *imap_auth_oauth_response(enum imap_auth_mech mech, const char *user,
			       const char *token)
{
	GString *raw = g_string_new(NULL);
	char *b64;

	if (mech == IMAP_AUTH_OAUTHBEARER) {
		/* gs2-header "n,a=saslname," (RFC 7628 3.1, RFC 5801) */
		g_string_append(raw, "n,a=");
		for (const char *p = user; *p != '\0'; p++) {
			if (*p == ',')
				g_string_append(raw, "=2C");
			else if (*p == '=')
				g_string_append(raw, "=3D");
			else
				g_string_append_c(raw, *p);
		}
		g_string_append_c(raw, ',');
	} else {
		g_string_append_printf(raw, "user=%s", user);
	}
	g_string_append_printf(raw, "\001auth=Bearer %s\001\001", token);
	b64 = g_base64_encode((const guchar *)raw->str, raw->len);
	explicit_bzero(raw->str, raw->allocated_len);
	g_string_free(raw, TRUE);
	return b64;
}

/* What a failed OAuth2 exchange told us. */
struct auth_oauth_state {
	enum imap_auth_mech mech;
	/* The server's error report (RFC 7628 3.2.2: base64 JSON in a
	 * continuation), printable ASCII only, or NULL. */
	char *detail;
};

/* The server refuses the token with a challenge carrying its error; the
 * exchange must still be finished: OAUTHBEARER with the dummy response
 * %x01 (RFC 7628 3.2.3), XOAUTH2 with an empty line. The tagged NO
 * follows. */
static char *auth_oauth_challenge(const char *challenge, void *user_data)
{
	struct auth_oauth_state *st = user_data;
	gsize len = 0;
	guchar *json;

	/* Untrusted: decode leniently, keep printable bytes, bound the
	 * length. */
	json = g_base64_decode(challenge, &len);
	if (json != NULL && len > 0) {
		GString *d = g_string_new(NULL);

		for (gsize i = 0; i < len && d->len < AUTH_MAX_DETAIL; i++) {
			if (json[i] >= 0x20 && json[i] < 0x7f)
				g_string_append_c(d, (char)json[i]);
		}
		g_free(st->detail);
		st->detail = d->len > 0 ? g_string_free(d, FALSE)
					: (g_string_free(d, TRUE), NULL);
	}
	g_free(json);
	return g_strdup(st->mech == IMAP_AUTH_OAUTHBEARER ? "AQ==" : "");
}

/* Bearer tokens are printable ASCII (RFC 6750 b64token); anything else
 * would break the SASL framing. The message never quotes the token. */
static gboolean auth_token_ok(const char *token, GError **error)
{
	for (const char *p = token; *p != '\0'; p++) {
		if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f) {
			g_set_error(error, IMAP_ERROR, IMAP_ERROR_AUTH,
				    "the OAuth2 token contains a space or "
				    "control character");
			return FALSE;
		}
	}
	if (token[0] == '\0') {
		g_set_error(error, IMAP_ERROR, IMAP_ERROR_AUTH,
			    "the OAuth2 token is empty");
		return FALSE;
	}
	return TRUE;
}

static gboolean auth_oauth_once(struct imap_conn *conn,
				const struct imap_account *a,
				enum imap_auth_mech mech, const char *token,
				char **detail_r, GError **error)
{
	struct auth_oauth_state st = {mech, NULL};
	char *b64 = imap_auth_oauth_response(mech, a->user, token);
	struct imap_cmd *cmd = imap_cmd_new(mech == IMAP_AUTH_OAUTHBEARER
						    ? "AUTHENTICATE OAUTHBEARER"
						    : "AUTHENTICATE XOAUTH2");
	gboolean ok;

	if (imap_conn_has_cap(conn, "SASL-IR")) {
		imap_cmd_add_atom_secret(cmd, b64);
		ok = imap_conn_run_sasl(conn, cmd, NULL, auth_oauth_challenge,
					&st, NULL, error);
	} else {
		ok = imap_conn_run_sasl(conn, cmd, b64, auth_oauth_challenge,
					&st, NULL, error);
	}
	imap_cmd_free(cmd);
	auth_wipe(b64);
	*detail_r = st.detail;
	return ok;
}

static gboolean auth_oauth(struct imap_conn *conn, const struct imap_account *a,
			   GError **error)
{
	enum imap_auth_mech mech;
	GError *err = NULL;
	char *detail = NULL;

	if (imap_conn_has_cap(conn, "AUTH=OAUTHBEARER")) {
		mech = IMAP_AUTH_OAUTHBEARER;
	} else if (imap_conn_has_cap(conn, "AUTH=XOAUTH2")) {
		mech = IMAP_AUTH_XOAUTH2;
	} else {
		g_set_error(error, IMAP_ERROR, IMAP_ERROR_UNSUPPORTED,
			    "server offers neither AUTH=OAUTHBEARER nor "
			    "AUTH=XOAUTH2 (needed for oauth2_token_command)");
		return FALSE;
	}
	/* A token is fetched for every login; one that is refused may just
	 * have expired, so a second, fresh one gets its chance. */
	for (int attempt = 0; attempt < 2; attempt++) {
		char *token = a->token_fn(a->token_data, error);
		gboolean ok;

		/* The refusal before a failing second token is dropped: the
		 * token source's own error says more. */
		g_clear_error(&err);
		g_free(detail);
		detail = NULL;
		if (token == NULL)
			return FALSE;
		if (!auth_token_ok(token, error)) {
			auth_wipe(token);
			return FALSE;
		}
		ok = auth_oauth_once(conn, a, mech, token, &detail, &err);
		auth_wipe(token);
		if (ok) {
			g_free(detail);
			return TRUE;
		}
		if (!auth_refused(err) || imap_conn_is_broken(conn))
			break;
		if (attempt == 0)
			imapfs_debug("OAuth2 token refused (%s); asking for "
				     "a fresh one",
				     err->message);
	}
	auth_report(a, err, detail, error);
	g_free(detail);
	return FALSE;
}

gboolean imap_auth_login(struct imap_conn *conn,
			 const struct imap_account *account, GError **error)
{
	if (account->token_fn != NULL)
		return auth_oauth(conn, account, error);
	return auth_password(conn, account, error);
}
