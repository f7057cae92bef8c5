/* session-int.h - what the request modules of imap/ (acl.c) need from a
 * session; not for fs/.
 */
#ifndef IMAPFS_IMAP_SESSION_INT_H
#define IMAPFS_IMAP_SESSION_INT_H

#include "conn.h"
#include "session.h"

/* Runs @cmd on the session's connection like imap_conn_run(), keeping the
 * selected mailbox's state (EXISTS, UIDVALIDITY...) current from the
 * untagged data before @cb (may be NULL) sees it. *tagged_r (may be
 * NULL) gets the tagged response. Same thread rules as session.h. */
gboolean imap_session_run(struct imap_session *session,
			  const struct imap_cmd *cmd, imap_untagged_fn *cb,
			  void *user_data, struct imap_response **tagged_r,
			  GError **error);

#endif
