/* acl.h - the ACL extension (RFC 4314): what the logged-in user may do
 * with a mailbox.
 *
 * Rights are single letters: l (lookup), r (read: SELECT/EXAMINE, FETCH),
 * s (keep \Seen), w (other flags), i (insert: APPEND, COPY into), p
 * (post), k (create mailboxes), x (delete the mailbox), t (set \Deleted),
 * e (EXPUNGE), a (administer). RFC 2086's c and d are accepted as they
 * come; imap_acl_has_right() reads them as RFC 4314 section 2.1.1 says
 * (c = k and x, d = t and e).
 *
 * Threading: like session.h (one thread per session at a time); the
 * parsing helpers are pure.
 */
#ifndef IMAPFS_IMAP_ACL_H
#define IMAPFS_IMAP_ACL_H

#include <glib.h>

#include "parser.h"
#include "session.h"

/* Sends MYRIGHTS @mailbox and stores the rights the server reported for
 * it in *@rights_r (g_free; only the letters a-z, at most 64 of them).
 * Fails with the tagged NO's error (IMAP_ERROR_NO, NOPERM, NONEXISTENT),
 * IMAP_ERROR_BAD on a server without ACL, or IMAP_ERROR_PROTOCOL when
 * the reply carried no MYRIGHTS for @mailbox. Does not change the
 * selected mailbox. */
gboolean imap_session_myrights(struct imap_session *session,
			       const char *mailbox, char **rights_r,
			       GError **error);

/* If @resp is "* MYRIGHTS <mailbox> <rights>" for @mailbox (compared
 * exactly; INBOX case-insensitively), returns the rights (g_free), with
 * anything that is not a lower-case letter dropped; else NULL. */
char *imap_acl_parse_myrights(const struct imap_response *resp,
			      const char *mailbox);

/* TRUE if @rights (a MYRIGHTS string; NULL means "not restricted": the
 * server has no ACL or was not asked) grants @right. */
gboolean imap_acl_has_right(const char *rights, char right);

#endif
