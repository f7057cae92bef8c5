/* conn.h - one IMAP connection: transport, parser, tags, capabilities.
 *
 * A connection runs one command at a time (the pool provides
 * parallelism). imap_conn_run() sends a command built with command.h,
 * feeds every untagged response to a callback, and returns when the
 * command's tagged completion arrives.  The connection itself consumes
 * CAPABILITY data (untagged and in response codes) and BYE.
 *
 * Every wait is bounded by the timeout given at connect time.  After any
 * fatal error (imap_error_is_fatal()) the connection is marked broken and
 * every later call fails at once; the owner frees it and makes a new one.
 *
 * Debug logging (log level DEBUG) traces commands through
 * imap_cmd_describe_sent(), which redacts secrets, and responses with
 * literal contents elided.  A literal may be streamed from a source
 * (IMAP_CMD_CHUNK_SOURCE): it is read and written in 64 KiB pieces.
 *
 * Threading: used by one thread at a time, except imap_conn_abort().
 */
#ifndef IMAPFS_IMAP_CONN_H
#define IMAPFS_IMAP_CONN_H

#include <glib.h>
#include <stdint.h>

#include "command.h"
#include "parser.h"

struct imap_conn;

/* Called for each untagged response while a command runs. The callback
 * may take ownership of parts of @resp (e.g. imap_arg_steal()); the
 * connection frees the rest afterwards. */
typedef void imap_untagged_fn(struct imap_response *resp, void *user_data);

struct imap_conn_params {
	const char *host;
	uint16_t port;
	gboolean implicit_tls; /* FALSE: STARTTLS is required */
	const char *cafile;    /* may be NULL */
	int timeout_ms;	       /* bound on every single wait */
	/* Parser limits (NULL = defaults). */
	const struct imap_parser_limits *limits;
};

/* Connects, negotiates TLS (implicit, or STARTTLS -- refusing with
 * IMAP_ERROR_UNSUPPORTED if the server does not offer it, and discarding
 * capabilities and buffered input from before the handshake), reads the
 * greeting and makes sure capabilities are known. Returns NULL with an
 * IMAP_ERROR on failure (IO/TIMEOUT/TLS/PROTOCOL/BYE/UNSUPPORTED). */
struct imap_conn *imap_conn_connect(const struct imap_conn_params *params,
				    GError **error);

/* Sends LOGOUT (best effort, short wait) unless broken, then closes and
 * frees. NULL is allowed. */
void imap_conn_free(struct imap_conn *conn);

/* Makes a blocked call on @conn return promptly with an error. Any thread. */
void imap_conn_abort(struct imap_conn *conn);

/* TRUE once a fatal error happened (or BYE arrived). */
gboolean imap_conn_is_broken(const struct imap_conn *conn);

/* TRUE if the server announced capability @cap (ASCII case-insensitive). */
gboolean imap_conn_has_cap(const struct imap_conn *conn, const char *cap);

/* The value of a capability "NAME=value" (e.g. "APPENDLIMIT=35651584" for
 * @name "APPENDLIMIT"), upper-cased and owned by the connection (valid until
 * the capabilities change), or NULL if none was announced.  With several
 * (AUTH=...) any one of them. */
const char *imap_conn_cap_value(const struct imap_conn *conn, const char *name);

/* Forgets the known capabilities and asks the server again (CAPABILITY),
 * unless a later response already delivered them. */
gboolean imap_conn_refresh_caps(struct imap_conn *conn, GError **error);

/* Runs @cmd (not freed). Untagged responses go to @cb (may be NULL).
 * Returns TRUE on tagged OK. On NO/BAD returns FALSE with IMAP_ERROR_NO,
 * _NONEXISTENT ([NONEXISTENT], [TRYCREATE]), _NOPERM ([NOPERM],
 * [READ-ONLY]), _OVERQUOTA ([OVERQUOTA], [LIMIT]), _AUTH (for
 * [AUTHENTICATIONFAILED] etc.), _TOOBIG, _CANNOT, _EXISTS
 * ([ALREADYEXISTS]), _INUSE, _NOTEMPTY ([HASCHILDREN]), _MODIFIED, or _BAD,
 * with a message carrying the server's code and text.  A server that
 * completes a command while we wait for a literal continuation is a
 * PROTOCOL error. If @tagged_r is
 * not NULL it receives the tagged response (also on NO/BAD; caller frees)
 * so that response codes like [READ-ONLY] can be read. */
gboolean imap_conn_run(struct imap_conn *conn, const struct imap_cmd *cmd,
		       imap_untagged_fn *cb, void *user_data,
		       struct imap_response **tagged_r, GError **error);

/* Like imap_conn_run() for a command that must not run twice (APPEND,
 * STORE, EXPUNGE, MOVE, COPY, CREATE, DELETE, RENAME): a connection
 * failure (IO, TIMEOUT, TLS, BYE, PROTOCOL) after any byte of @cmd may have
 * been written and before its tagged reply fails with
 * IMAP_ERROR_UNKNOWN_OUTCOME, naming the command and the cause.  A failure
 * before anything was written, a tagged NO/BAD and a failing literal source
 * (IMAP_ERROR_SOURCE: the command never completed) keep their codes.
 * Before the first byte it passes imap_reqctx_begin_send(): an
 * interrupted request (CANCELLED) or one past its deadline (TIMEOUT)
 * sends nothing; after it, the request ignores interrupts (reqctx.h). */
gboolean imap_conn_run_once(struct imap_conn *conn, const struct imap_cmd *cmd,
			    imap_untagged_fn *cb, void *user_data,
			    struct imap_response **tagged_r, GError **error);

/* Answers one server challenge of a SASL exchange: @challenge is the
 * continuation's text (base64 as the server sent it, may be ""). Returns
 * the answer line (g_malloc'd base64; a secret: never logged, wiped after
 * it was sent; "*" cancels the exchange). */
typedef char *imap_sasl_challenge_fn(const char *challenge, void *user_data);

/* Runs AUTHENTICATE @cmd. @initial (a base64 line, may be NULL when @cmd
 * carries the initial response itself, SASL-IR) answers the server's
 * first continuation; every other continuation is a challenge answered
 * by @challenge_fn (NULL: cancel with "*"), at most a few of them (then
 * IMAP_ERROR_PROTOCOL). Every answer is secret: the trace shows
 * "<redacted SASL response>". Untagged data is not handed on. Completes
 * as imap_conn_run(). */
gboolean imap_conn_run_sasl(struct imap_conn *conn, const struct imap_cmd *cmd,
			    const char *initial,
			    imap_sasl_challenge_fn *challenge_fn,
			    void *user_data, struct imap_response **tagged_r,
			    GError **error);

/* A one-line description of @resp for debug traces: quoted strings as the
 * wire carries them (escapes included), literal contents elided ("{n}"),
 * at most ~1000 bytes.  Caller frees. */
char *imap_conn_describe_response(const struct imap_response *resp);

/* Installs a literal sink on the connection's parser for the commands
 * that follow (NULL removes it); see imap_parser_set_literal_sink(). */
void imap_conn_set_literal_sink(struct imap_conn *conn,
				const struct imap_literal_sink *sink);

/* Listening (IDLE, RFC 2177; NOTIFY, RFC 5465, delivers through it too).
 *
 * Silence is not an error here: imap_conn_listen() waits for the server
 * or a wake-up fd (an eventfd another thread writes), whichever comes
 * first, with @timeout_ms as its bound (the caller's watchdog), and a
 * quiet timeout is no failure.  Once a response has begun, the rest of it
 * is read within the connection's timeout as usual.  Same thread rules as
 * the other calls; the wake-up fd is what another thread may touch. */

/* What imap_conn_listen() saw. */
enum imap_conn_listen_result {
	IMAP_CONN_LISTEN_ERROR = -1, /* *error set (BYE: IMAP_ERROR_BYE) */
	IMAP_CONN_LISTEN_QUIET = 0,  /* @timeout_ms of silence */
	IMAP_CONN_LISTEN_DATA = 1,   /* responses were handed to @cb */
	IMAP_CONN_LISTEN_WOKEN = 2,  /* @wake_fd is readable */
};

/* Sends IDLE and waits for the server's continuation; untagged data that
 * comes first goes to @cb. FALSE with an IMAP_ERROR if the server refuses
 * (NO/BAD) or the connection fails. */
gboolean imap_conn_idle_begin(struct imap_conn *conn, imap_untagged_fn *cb,
			      void *user_data, GError **error);

/* TRUE between imap_conn_idle_begin() and the end of that IDLE (our DONE,
 * or the server ending it on its own). */
gboolean imap_conn_idling(const struct imap_conn *conn);

/* Hands every untagged response that arrives to @cb until at least one
 * did (DATA; all that are already buffered are delivered), @wake_fd
 * (< 0: none; not drained here) becomes readable (WOKEN), or @timeout_ms
 * passes without a byte (QUIET).  Works inside IDLE and between commands
 * (NOTIFY sends then too).  A server that ends the IDLE itself makes it
 * DATA with imap_conn_idling() FALSE.  An unsolicited BYE is ERROR with
 * IMAP_ERROR_BYE and the connection broken: reconnect. */
enum imap_conn_listen_result imap_conn_listen(struct imap_conn *conn,
					      int wake_fd, int timeout_ms,
					      imap_untagged_fn *cb,
					      void *user_data, GError **error);

/* Ends the IDLE: sends DONE (unless the server already ended it) and
 * waits for the tagged completion, untagged data going to @cb. TRUE if
 * it completed with OK. Without an IDLE in progress: TRUE at once. */
gboolean imap_conn_idle_end(struct imap_conn *conn, imap_untagged_fn *cb,
			    void *user_data, GError **error);

#endif
