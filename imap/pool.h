/* pool.h - a small, bounded pool of IMAP sessions for one account.
 *
 * FUSE worker threads borrow a session for one request and give it back.
 * The pool never holds more than its size of connections (servers limit
 * connections per user), opens them lazily, prefers a session that already
 * has the wanted mailbox examined (saving an EXAMINE round trip), and
 * replaces sessions whose connection broke.  imap_pool_run() retries an
 * idempotent request once on a fresh connection when the first one died
 * under it (server restart, NAT timeout, BYE).
 *
 * Waiting for a free session is bounded by the account's timeout, and by
 * the deadline of the request the calling thread serves (reqctx.h), which
 * also bounds the opening of a session: connect, handshake and login
 * together.
 *
 * Offline: when a connection cannot be opened because the server is
 * unreachable (refused, reset, connect or handshake timeout, TLS failure,
 * BYE at the greeting) or a request on an open connection got no answer
 * before its deadline (a silent server: Wi-Fi gone, VPN suspended, NAT
 * state dropped), the pool goes offline: idle sessions are dropped (those
 * in use run on to their deadlines and are dropped when given back), and
 * every acquire fails at once with IMAP_ERROR_OFFLINE instead of waiting
 * again.  A background thread tries to reconnect after 1 s, doubling to
 * 60 s (at once after a request timed out: one hung command does not prove
 * the network gone); an acquire may try itself after an attempt that
 * failed at once (refused), or 2 s after one that hung.  The first
 * session opened puts the pool online.
 *
 * Connection limits: when the server refuses one more connection
 * (IMAP_ERROR_UNAVAILABLE: Dovecot's mail_max_userip_connections, Gmail's
 * limit) while the pool has sessions, the pool shrinks to the number it
 * has and waits for one of them instead of failing; a live-view listener
 * refused the same way may ask it to give one up (imap_pool_make_room()).
 * The size grows back by one 30 s after a shrink (imap_pool_set_limit_
 * retry()), then as long after each step; each refusal doubles the wait
 * (up to 10 minutes), and a connection opened beyond the last limit
 * brings it back to the first. It never drops below 1.
 * A listener that finds the server gone puts the pool offline
 * (imap_pool_report_unreachable()), and learns of the pool's changes
 * through its one change hook.
 *
 * Threading: every function is thread-safe.
 */
#ifndef IMAPFS_IMAP_POOL_H
#define IMAPFS_IMAP_POOL_H

#include <glib.h>

#include "session.h"

struct imap_pool;

/* Creates a pool of at most @size (>= 1) sessions for @account (not
 * copied: must outlive the pool). @first, if not NULL, is an already open
 * session that the pool adopts. Never returns NULL. */
struct imap_pool *imap_pool_new(const struct imap_account *account,
				unsigned int size, struct imap_session *first);

/* Opens sessions until @n exist (bounded by the pool size), so that the
 * first parallel requests -- a prefetch next to a read -- need not wait
 * for a TLS handshake and a login. Stops at the first failure (sessions
 * are opened on demand anyway); blocks for the logins. */
void imap_pool_open_more(struct imap_pool *pool, unsigned int n);

/* The sessions that exist (borrowed or idle, plus opens under way), how
 * many of them are idle, and the most there may be. Any thread. */
void imap_pool_stats(struct imap_pool *pool, unsigned int *count_r,
		     unsigned int *idle_r, unsigned int *size_r);

/* What the pool knows about reaching the server (imap_pool_state()). */
struct imap_pool_state {
	gboolean offline;
	/* While offline: since when (g_get_real_time()), why (the error of
	 * the attempt that made it so; caller frees), reconnect attempts
	 * made since, and in how many ms the next one is due (0: under way
	 * or due now). */
	gint64 offline_since;
	char *reason;
	unsigned int attempts;
	unsigned int next_attempt_ms;
	/* Times the server refused a connection for its limit, and the
	 * pool size as first configured (size_r of imap_pool_stats() is
	 * the current one). */
	unsigned int limit_refusals;
	unsigned int configured_size;
	/* The current size, and while it is below configured_size in how
	 * many ms it may grow by one (0: now, at the next open). */
	unsigned int size;
	unsigned int regrow_ms;
};

/* Fills @state_r (free ->reason with g_free). Any thread. */
void imap_pool_state(struct imap_pool *pool, struct imap_pool_state *state_r);

/* Called when the pool goes offline, comes back online or shrinks for
 * the server's connection limit (imap_pool_state() tells which), with the
 * pool's lock held: it must not block nor call into the pool (waking a
 * thread that will is the idea). */
typedef void imap_pool_change_fn(void *user_data);

/* Sets (or with NULL clears) the one change callback. Call it while no
 * other thread uses the pool, or to clear it before @user_data goes. */
void imap_pool_set_change_hook(struct imap_pool *pool, imap_pool_change_fn *fn,
			       void *user_data);

/* Someone outside the pool (a listener, imap/idle.h) was refused a
 * connection for the server's limit (IMAP_ERROR_UNAVAILABLE) and needs
 * one: the pool gives one up -- its size drops by one (never below 1)
 * and an idle session is closed now, else the next one given back.
 * Counted like the pool's own refusals (imap_pool_state()). Any thread;
 * never waits for the network. */
void imap_pool_make_room(struct imap_pool *pool, const GError *error);

/* The wait before the size grows back after a shrink for the server's
 * limit, first and after a connection beyond the limit (default 30 s,
 * doubling with each refusal up to 10 minutes or @first_ms if longer).
 * Any thread. */
void imap_pool_set_limit_retry(struct imap_pool *pool, unsigned int first_ms);

/* This mount is about to DELETE or RENAME @mailbox (server name; it also
 * covers every name it is a prefix of). Dovecot disconnects, at its next
 * command, every other session that has such a mailbox selected (* BYE
 * "IMAP session state is inconsistent"), and an APPEND sent there may or
 * may not have been stored. So until imap_pool_release_hold(): an
 * acquire whose hint is under the hold waits (within its deadline); an
 * idle session with such a mailbox selected is not handed out; and this
 * call makes each of those leave it (imap_session_leave_selected(); one
 * that fails is closed) and waits until every session borrowed when it
 * began that had such a mailbox selected when handed out, or was asked
 * for one (its hint), has been given back, then leaves those too. Bounded by the calling request's deadline and
 * the account's timeout: FALSE with IMAP_ERROR_INUSE (or CANCELLED) if a
 * borrowed session was not back in time -- the hold is then not kept.
 * From a thread that borrows no session of this pool; calls may nest. */
gboolean imap_pool_hold(struct imap_pool *pool, const char *mailbox,
			GError **error);

/* Ends one imap_pool_hold() of @mailbox that succeeded. Any thread. */
void imap_pool_release_hold(struct imap_pool *pool, const char *mailbox);

/* Someone outside the pool (a listener, imap/idle.h) found the server
 * unreachable with @error (not owned): a connection of its own could not
 * be opened, or one it had went silent. The pool goes offline as if one
 * of its own requests had (idle sessions dropped, acquires fail at once);
 * after a timeout its reconnect thread checks at once, after a refusal
 * the next acquire may try. No-op when already offline. Any thread. */
void imap_pool_report_unreachable(struct imap_pool *pool, const GError *error);

/* Logs out and frees every idle session; sessions still borrowed are
 * aborted; stops the reconnect thread (interrupting its attempt). NULL is
 * allowed. Call only after all users stopped. */
void imap_pool_free(struct imap_pool *pool);

/* Borrows a session, opening one if none is idle and the pool is below its
 * size, else waiting (bounded) for one to be returned. @mailbox_hint (may
 * be NULL) prefers a session with that mailbox examined. Returns NULL with
 * an IMAP_ERROR: OFFLINE at once while offline, TIMEOUT if none became
 * free, CANCELLED if the calling thread's request was interrupted, the
 * open error otherwise (which may have put the pool offline). */
struct imap_session *imap_pool_acquire(struct imap_pool *pool,
				       const char *mailbox_hint,
				       GError **error);

/* Gives a borrowed session back. A session that is no longer usable is
 * freed and its slot opened up. */
void imap_pool_release(struct imap_pool *pool, struct imap_session *session);

/* One idempotent request: returns TRUE on success, FALSE with *error set. */
typedef gboolean imap_pool_fn(struct imap_session *session, void *user_data,
			      GError **error);

/* Borrows a session, runs @fn, gives the session back. If @fn fails with a
 * fatal connection error (imap_error_is_fatal()), runs it once more on
 * another session.  After an IO, TIMEOUT, BYE or TLS failure the idle
 * sessions are dropped first (they probably died of the same cause); a
 * PROTOCOL error (one bad reply) leaves them alone.  A server that
 * throttles (IMAP_ERROR_THROTTLED, or a BYE with [THROTTLED] or
 * [UNAVAILABLE]) is waited out: up to three more runs, each after the
 * server's suggested back-off or 500 ms doubling, clamped to 0.1..2 s. The
 * wait blocks only the calling thread. */
gboolean imap_pool_run(struct imap_pool *pool, const char *mailbox_hint,
		       imap_pool_fn *fn, void *user_data, GError **error);

/* A non-idempotent request (APPEND, STORE, EXPUNGE, MOVE, COPY, CREATE,
 * DELETE, RENAME): like imap_pool_run() but never run a second time (the
 * idle sessions are dropped on the same errors).
 * When @fn fails with a connection error the session is replaced and the
 * error (IMAP_ERROR_UNKNOWN_OUTCOME if the command may have reached the
 * server) is returned for the caller to resolve. */
gboolean imap_pool_run_once(struct imap_pool *pool, const char *mailbox_hint,
			    imap_pool_fn *fn, void *user_data, GError **error);

#endif
