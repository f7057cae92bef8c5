/* auth.h - logging in: AUTHENTICATE PLAIN or LOGIN with a password, or
 * AUTHENTICATE OAUTHBEARER (RFC 7628) or XOAUTH2 with an OAuth2 access
 * token from the account's token source.  Not for fs/ (it goes through
 * imap_session_open()).
 *
 * Threading: like conn.h (one thread per connection); the token source is
 * called from that thread.
 */
#ifndef IMAPFS_IMAP_AUTH_H
#define IMAPFS_IMAP_AUTH_H

#include <glib.h>

#include "conn.h"
#include "session.h"

enum imap_auth_mech {
	IMAP_AUTH_OAUTHBEARER,
	IMAP_AUTH_XOAUTH2,
};

/* The base64 initial response of @mech for @user and @token:
 * OAUTHBEARER "n,a=USER,^Aauth=Bearer TOKEN^A^A" (',' and '=' in USER as
 * "=2C" and "=3D", RFC 5801), XOAUTH2 "user=USER^Aauth=Bearer TOKEN^A^A".
 * g_malloc'd; a secret the caller wipes. */
char *imap_auth_oauth_response(enum imap_auth_mech mech, const char *user,
			       const char *token);

/* Logs in on @conn (not yet authenticated) as @account says. With a
 * token source: OAUTHBEARER when the server offers it, else XOAUTH2
 * (IMAP_ERROR_UNSUPPORTED when neither), the token in the command when
 * the server has SASL-IR, else after the first continuation; a refused
 * token is asked for and tried once more (tokens expire), then the
 * failure is reported. Without one: PLAIN (SASL-IR when offered), else
 * LOGIN unless LOGINDISABLED. Refused credentials are IMAP_ERROR_AUTH
 * "authentication failed for USER: <the server's text>" (for OAUTHBEARER
 * and XOAUTH2 with the server's error status appended); the token source's
 * own error is passed on; other failures keep their IMAP_ERROR. */
gboolean imap_auth_login(struct imap_conn *conn,
			 const struct imap_account *account, GError **error);

#endif
