/* reqctx.h - the deadline and interruption of the request a thread serves.
 *
 * A filesystem request that needs the server (a read, a listing) has one
 * bound for the whole syscall: the account's timeout, counted from when
 * the request arrived.  Rather than threading it through every call of
 * imap/, the thread serving the request enters a context; every wait below
 * (pool acquire, connect, TLS handshake, login, each read and write, a
 * retry) clamps its own per-wait bound to the context's deadline, so a
 * chain of steps can never add up to more than one timeout.
 *
 * A context may also say how to learn that the caller was interrupted
 * (FUSE_INTERRUPT: the process got a signal).  Waits then poll in slices
 * of at most IMAP_REQCTX_SLICE_MS and fail with IMAP_ERROR_CANCELLED
 * once it reports TRUE; the connection the wait was on is then broken
 * (the pool replaces it).
 *
 * A non-idempotent command (imap_conn_run_once()) passes a gate before its
 * first byte goes out (imap_reqctx_begin_send()): interrupted, or past the
 * deadline, it fails there and nothing is sent.  Once it passed, the
 * request ignores interrupts until it ends: a command the server may have
 * received is never abandoned, it completes or meets the deadline, and
 * what the caller then asks to learn its outcome is not cut short either:
 * an unknown outcome extends the deadline once by the context's grace.
 *
 * Threads without a context (mount, prefetch, control, background
 * reconnect) keep per-wait bounds only.
 *
 * Threading: the context is thread-local; imap_reqctx_enter() and _leave()
 * are called by the thread that serves the request.
 */
#ifndef IMAPFS_IMAP_REQCTX_H
#define IMAPFS_IMAP_REQCTX_H

#include <glib.h>

/* The longest a wait sleeps before it looks at the interrupt test again. */
#define IMAP_REQCTX_SLICE_MS 200

struct imap_reqctx {
	/* Monotonic time (g_get_monotonic_time()) by which the request
	 * must be answered; 0: none. */
	gint64 deadline;
	/* TRUE once the caller was interrupted (may be NULL). Called from
	 * the serving thread only, often (every slice): must be cheap. */
	gboolean (*interrupted)(void *data);
	void *data;
	/* Set by imap_reqctx_begin_send(): a non-idempotent command may
	 * have reached the server; interrupts are ignored from then on.
	 * Initialise to FALSE. */
	gboolean sent;
	/* Once the outcome of such a command is unknown (the deadline or
	 * the connection ended its wait), the request gets this much more
	 * (µs, from then; 0: none) to ask the server what happened:
	 * imap_reqctx_grant_grace(). Used once. */
	gint64 grace;
};

/* Makes @ctx (owned by the caller, must stay valid until
 * imap_reqctx_leave()) the calling thread's context. Contexts do not
 * nest: a context already entered is replaced. */
void imap_reqctx_enter(struct imap_reqctx *ctx);

/* Leaves the calling thread's context (none is fine). */
void imap_reqctx_leave(void);

/* @deadline (monotonic µs; negative: none) clamped to the calling thread's
 * context deadline. */
gint64 imap_reqctx_clamp(gint64 deadline);

/* TRUE if the calling thread's context has an interrupt test (waits must
 * then poll in slices). */
gboolean imap_reqctx_interruptible(void);

/* Returns FALSE with IMAP_ERROR_CANCELLED ("interrupted") if the calling
 * thread's request was interrupted, else TRUE. */
gboolean imap_reqctx_check(GError **error);

/* The gate of a non-idempotent command, called right before its first
 * byte is written: FALSE with IMAP_ERROR_CANCELLED if the calling
 * thread's request was interrupted, or IMAP_ERROR_TIMEOUT ("deadline
 * passed before sending") if its deadline passed (nothing must be sent
 * then); else TRUE, and the request is no longer interruptible. Without
 * a context: TRUE. */
gboolean imap_reqctx_begin_send(GError **error);

/* The calling thread's request sent a non-idempotent command whose
 * outcome is unknown: its deadline moves to at least now + its grace (if
 * any, once), so that the look-ups that learn the outcome get time. */
void imap_reqctx_grant_grace(void);

/* How long a wait of @ms milliseconds (negative: forever) may sleep at a
 * time in the calling thread: @ms, or at most IMAP_REQCTX_SLICE_MS when
 * interruptible. */
int imap_reqctx_slice_ms(int ms);

#endif
