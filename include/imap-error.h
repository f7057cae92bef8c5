/* imap-error.h - the one error domain of imap/ and its mapping to errno.
 *
 * Everything below fs/ reports failures as a GError in IMAP_ERROR.  The fs/
 * layer turns such an error into a negative errno with exactly one function,
 * fs_errno_from_error(), so the errno a syscall gets is decided in one place
 * (see docs/SEMANTICS.md for the table).
 */
#ifndef IMAPFS_IMAP_ERROR_H
#define IMAPFS_IMAP_ERROR_H

#include <glib.h>

#define IMAP_ERROR (imap_error_quark())

enum imap_error_code {
	/* The server sent bytes that are not valid IMAP, or exceeded a parser
	 * limit (line length, literal size, nesting depth, argument count). */
	IMAP_ERROR_PROTOCOL,
	/* Socket error, EOF, or DNS failure: the connection is unusable. */
	IMAP_ERROR_IO,
	/* A bounded wait expired; the connection is unusable. */
	IMAP_ERROR_TIMEOUT,
	/* TLS handshake or certificate/hostname verification failed. */
	IMAP_ERROR_TLS,
	/* Authentication was refused (message carries the server's text). */
	IMAP_ERROR_AUTH,
	/* The server refuses something we require (no STARTTLS, no IMAP4rev1,
	 * no usable auth mechanism). */
	IMAP_ERROR_UNSUPPORTED,
	/* Tagged NO without a more specific response code. */
	IMAP_ERROR_NO,
	/* Tagged BAD: we sent something the server did not understand. */
	IMAP_ERROR_BAD,
	/* NO [NONEXISTENT] or the mailbox is gone. */
	IMAP_ERROR_NONEXISTENT,
	/* NO [NOPERM] / [READ-ONLY]-style refusals. */
	IMAP_ERROR_NOPERM,
	/* NO [OVERQUOTA]. */
	IMAP_ERROR_OVERQUOTA,
	/* The server closed the session with BYE (reconnect may help). */
	IMAP_ERROR_BYE,
	/* The message named by (mailbox, UIDVALIDITY, UID) no longer exists:
	 * UIDVALIDITY changed or the UID was expunged. */
	IMAP_ERROR_STALE,
	/* The caller gave an argument that cannot be sent safely (CR, LF or
	 * NUL inside a string, name too long...). Nothing was sent. */
	IMAP_ERROR_INVALID,
	/* The operation was cancelled: the client is shutting down, or the
	 * request was interrupted (reqctx.h). */
	IMAP_ERROR_CANCELLED,
	/* The write path (imap/mutate.h): */
	/* NO [TOOBIG], or over the APPENDLIMIT / literal limit. */
	IMAP_ERROR_TOOBIG,
	/* NO [CANNOT]: the server will never do this. */
	IMAP_ERROR_CANNOT,
	/* A conditional STORE (UNCHANGEDSINCE) was refused: [MODIFIED]. */
	IMAP_ERROR_MODIFIED,
	/* NO [ALREADYEXISTS]. */
	IMAP_ERROR_EXISTS,
	/* NO [INUSE]. */
	IMAP_ERROR_INUSE,
	/* NO [HASCHILDREN], or DELETE of a mailbox that still holds mail. */
	IMAP_ERROR_NOTEMPTY,
	/* The connection died after a non-idempotent command was sent and
	 * before its tagged reply: it may or may not have happened. Fatal
	 * for the connection. */
	IMAP_ERROR_UNKNOWN_OUTCOME,
	/* Reading the local data of a literal (a spool file) failed. */
	IMAP_ERROR_SOURCE,
	/* NO [THROTTLED], or a NO whose text says the request is throttled
	 * (Microsoft 365: "Request is throttled. Suggested Backoff Time: N
	 * milliseconds"): the server wants us to slow down. Not fatal for
	 * the connection; imap_pool_run() waits and retries reads. */
	IMAP_ERROR_THROTTLED,
	/* The pool knows the server is unreachable (pool.h: offline) and
	 * did not try; nothing was sent. */
	IMAP_ERROR_OFFLINE,
	/* The server refused a new connection for a temporary reason:
	 * NO [UNAVAILABLE] at login, a per-user connection limit (Dovecot's
	 * mail_max_userip_connections, Gmail's "Too many simultaneous
	 * connections"). Nothing was sent. */
	IMAP_ERROR_UNAVAILABLE,
};

/* Returns the GQuark of IMAP_ERROR.  Thread-safe. */
GQuark imap_error_quark(void);

/* Returns TRUE if @error means the connection it came from is no longer
 * usable (IO, TIMEOUT, PROTOCOL, BYE, TLS, UNKNOWN_OUTCOME, SOURCE) so that
 * a pool should replace it and an idempotent request may be retried once
 * on a fresh connection. */
gboolean imap_error_is_fatal(const GError *error);

/* Returns TRUE if a server's refusal -- response code @code (may be NULL)
 * and text @text (may be NULL) of a NO at login or a BYE at the greeting --
 * says "too many connections" rather than anything about the request or
 * the credentials: [UNAVAILABLE], [LIMIT], Dovecot's "Maximum number of
 * connections", Gmail's "Too many simultaneous connections". */
gboolean imap_refusal_is_connection_limit(const char *code, const char *text);

/* Returns TRUE if @error says the server could not be reached or did not
 * answer (IO, TIMEOUT, TLS, BYE, OFFLINE, UNAVAILABLE) rather than
 * answering something: data cached from before may then be served in its
 * place (docs/SEMANTICS.md, "Offline"). */
gboolean imap_error_is_unreachable(const GError *error);

/* The single GError -> errno mapping used by every fs/ operation.
 * Returns a positive errno value (EIO for anything unknown, never EAGAIN or
 * ENOTCONN).  @error may be NULL (returns EIO).  Thread-safe.
 * Implemented in fs/errmap.c. */
int fs_errno_from_error(const GError *error);

#endif
