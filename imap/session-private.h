/* session-private.h - the parts of a session that imap/mutate.c shares
 * with imap/session.c.  Not for use outside imap/.
 *
 * Threading: like session.h (one thread per session at a time); nothing
 * here is shared between threads.
 */
#ifndef IMAPFS_IMAP_SESSION_PRIVATE_H
#define IMAPFS_IMAP_SESSION_PRIVATE_H

#include <glib.h>

#include "conn.h"
#include "session.h"

/* One namespace from NAMESPACE (RFC 2342). */
struct session_ns {
	enum imap_ns_kind kind;
	char *prefix;
	char delimiter; /* 0 if NIL */
};

struct imap_session {
	const struct imap_account *account;
	struct imap_conn *conn;
	/* Every namespace NAMESPACE announced (struct session_ns *); the
	 * first is the primary personal one (prefix "" without NAMESPACE). */
	GPtrArray *namespaces;
	/* The selected mailbox (NULL if none) and what we know of it:
	 * selected_rw when it was opened with SELECT rather than EXAMINE,
	 * read_only when the server answered that SELECT [READ-ONLY];
	 * permanent_flags and flags as the last SELECT/EXAMINE announced
	 * them (space-separated, NULL if it did not). */
	char *selected;
	gboolean selected_rw;
	gboolean read_only;
	char *permanent_flags;
	char *flags;
	struct imap_mailbox_status status;
	/* The server answered ENABLE QRESYNC with ENABLED QRESYNC: EXPUNGE
	 * comes as VANISHED, FETCH carries UID (imap/resync.c). */
	gboolean qresync;
};

/* Runs @cmd on the session's connection, keeping the selected mailbox's
 * state current from the untagged data (EXISTS, EXPUNGE, UIDVALIDITY...),
 * and hands every untagged response to @cb (may be NULL).  @once runs it
 * with imap_conn_run_once() (a non-idempotent command: a connection
 * failure after sending is IMAP_ERROR_UNKNOWN_OUTCOME).  @tagged_r as in
 * imap_conn_run(). */
gboolean imap_session_run_cmd(struct imap_session *s,
			      const struct imap_cmd *cmd, gboolean once,
			      imap_untagged_fn *cb, void *user_data,
			      struct imap_response **tagged_r, GError **error);

/* Makes @mailbox the selected mailbox with @uidvalidity (0 = any): with
 * EXAMINE unless @rw, which needs it opened with SELECT (upgrading an
 * EXAMINEd one) and fails with IMAP_ERROR_NOPERM, without sending the
 * write, when the server opened it [READ-ONLY].  Fails with
 * IMAP_ERROR_STALE when UIDVALIDITY differs. */
gboolean imap_session_ensure(struct imap_session *s, const char *mailbox,
			     uint32_t uidvalidity, gboolean rw, GError **error);

/* Forgets the selected mailbox (after it was deleted or renamed), so the
 * next request selects again. */
void imap_session_forget_selected(struct imap_session *s);

#endif
