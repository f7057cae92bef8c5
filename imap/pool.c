/* pool.c - see pool.h.
 *
 * The offline state lives here because the pool is where every request
 * meets the server: one place notices that the server went away, and one
 * place answers "not now" in microseconds instead of letting each request
 * find out by waiting.
 */
#include "config.h"

#include <string.h>

#include "imap-error.h"
#include "log.h"
#include "mutate.h"
#include "pool.h"
#include "reqctx.h"

/* Reconnect backoff while offline: 1 s, doubling, at most 60 s. */
#define POOL_BACKOFF_FIRST_MS 1000
#define POOL_BACKOFF_MAX_MS 60000
/* An acquire while offline tries to connect itself (within its own
 * request's deadline), so that the first use after the server is back
 * finds it however long the background backoff has grown -- but only if
 * that is cheap or rare: after an attempt that failed at once (connection
 * refused or reset, no route) the next acquire tries again (one at a time:
 * the others fail meanwhile); after one that hung (a silent server, a black hole)
 * only after POOL_KICK_SLOW_US. Every other acquire while offline fails
 * at once. */
#define POOL_KICK_FAST_US 0
#define POOL_KICK_SLOW_US (2 * G_USEC_PER_SEC)
/* Growing back after the server's connection limit shrank the pool: the
 * size may rise by one this long after the shrink (then as long after each
 * step), the wait doubling with every refusal for the limit up to
 * POOL_REGROW_MAX_MS (or the first wait if longer), back to the first
 * once a connection beyond the last limit was opened. */
#define POOL_REGROW_FIRST_MS (30 * 1000)
#define POOL_REGROW_MAX_MS (10 * 60 * 1000)
/* A request that timed out after running at least this long found the
 * server silent (a shorter one may just have had little time left). */
#define POOL_SILENT_US (1 * G_USEC_PER_SEC)

struct imap_pool {
	const struct imap_account *account;
	unsigned int configured_size; /* immutable */
	GMutex lock;
	GCond cond;
	/* At most this many sessions; lowered when the server refuses
	 * connections for its limit (protected by lock). */
	unsigned int size;
	/* Sessions not borrowed (protected by lock). */
	GPtrArray *idle;
	/* Sessions borrowed, so that going offline can abort their waits
	 * (protected by lock). */
	GPtrArray *busy;
	/* Borrowed session -> the mailboxes it may be in (the one it had
	 * selected when handed out, and the hint: "sel\nhint"), which only
	 * its borrower may look at meanwhile; imap_pool_hold() waits for
	 * those under the hold (protected by lock). */
	GHashTable *about;
	/* Sessions that exist, borrowed or idle, plus opens under way
	 * (protected by lock). */
	unsigned int count;
	unsigned int limit_refusals; /* protected by lock */
	/* Growing back (POOL_REGROW_*; all protected by lock): the first
	 * wait, the next one, when the size may rise next (monotonic us),
	 * and the size the last refusal left (0: none since the server
	 * allowed more). */
	unsigned int regrow_first_ms, regrow_ms;
	gint64 regrow_at;
	unsigned int limit_low;
	/* imap_pool_hold(): server names (each also covering the names it
	 * is a prefix of) being deleted or renamed (protected by lock). */
	GPtrArray *held;

	/* The offline state (all protected by lock). */
	gboolean offline;
	gint64 offline_since; /* g_get_real_time() */
	char *offline_reason;
	unsigned int attempts;	 /* reconnect attempts since offline */
	unsigned int backoff_ms; /* the wait after the next failure */
	gint64 next_attempt;	 /* monotonic us */
	gboolean probing;	 /* an attempt is under way */
	gint64 last_probe_end;	 /* monotonic us */
	/* Monotonic us before which no acquire tries to connect. */
	gint64 kick_after;
	/* The reconnect thread (started when first offline) and its stop
	 * flag; it waits on rcond. */
	GThread *reconnector;
	GCond rcond;
	gint stopping; /* atomic too: read by its interrupt test */
	/* imap_pool_set_change_hook() (protected by lock). */
	imap_pool_change_fn *change_fn;
	void *change_data;
};

struct imap_pool *imap_pool_new(const struct imap_account *account,
				unsigned int size, struct imap_session *first)
{
	struct imap_pool *pool = g_new0(struct imap_pool, 1);

	pool->account = account;
	pool->size = MAX(size, 1u);
	pool->configured_size = pool->size;
	g_mutex_init(&pool->lock);
	g_cond_init(&pool->cond);
	g_cond_init(&pool->rcond);
	pool->idle = g_ptr_array_new();
	pool->busy = g_ptr_array_new();
	pool->about = g_hash_table_new_full(g_direct_hash, g_direct_equal, NULL,
					    g_free);
	pool->backoff_ms = POOL_BACKOFF_FIRST_MS;
	pool->regrow_first_ms = POOL_REGROW_FIRST_MS;
	pool->regrow_ms = POOL_REGROW_FIRST_MS;
	pool->held = g_ptr_array_new_with_free_func(g_free);
	if (first != NULL) {
		g_ptr_array_add(pool->idle, first);
		pool->count = 1;
	}
	return pool;
}

static gboolean pool_hit_limit(struct imap_pool *pool, const GError *err);
static void pool_regrow(struct imap_pool *pool);
static void pool_opened(struct imap_pool *pool);

void imap_pool_open_more(struct imap_pool *pool, unsigned int n)
{
	struct imap_session *s;
	GError *err = NULL;

	for (;;) {
		g_mutex_lock(&pool->lock);
		pool_regrow(pool);
		if (pool->offline || pool->count >= MIN(n, pool->size)) {
			g_mutex_unlock(&pool->lock);
			return;
		}
		pool->count++;
		g_mutex_unlock(&pool->lock);
		s = imap_session_open(pool->account, &err);
		g_mutex_lock(&pool->lock);
		if (s != NULL) {
			g_ptr_array_add(pool->idle, s);
			pool_opened(pool);
		} else {
			pool->count--;
			if (g_error_matches(err, IMAP_ERROR,
					    IMAP_ERROR_UNAVAILABLE))
				(void)pool_hit_limit(pool, err);
			g_clear_error(&err);
		}
		g_cond_signal(&pool->cond);
		g_mutex_unlock(&pool->lock);
		if (s == NULL)
			return;
	}
}

void imap_pool_free(struct imap_pool *pool)
{
	guint i;

	if (pool == NULL)
		return;
	g_mutex_lock(&pool->lock);
	g_atomic_int_set(&pool->stopping, 1);
	g_cond_broadcast(&pool->rcond);
	for (i = 0; i < pool->busy->len; i++)
		imap_session_abort(pool->busy->pdata[i]);
	g_mutex_unlock(&pool->lock);
	if (pool->reconnector != NULL)
		g_thread_join(pool->reconnector);
	for (i = 0; i < pool->idle->len; i++)
		imap_session_free(pool->idle->pdata[i]);
	g_ptr_array_free(pool->idle, TRUE);
	g_ptr_array_free(pool->busy, TRUE);
	g_hash_table_destroy(pool->about);
	g_ptr_array_unref(pool->held);
	g_free(pool->offline_reason);
	g_mutex_clear(&pool->lock);
	g_cond_clear(&pool->cond);
	g_cond_clear(&pool->rcond);
	g_free(pool);
}

/* ---- offline ---- */

static gboolean pool_stop_requested(void *data)
{
	struct imap_pool *pool = data;

	return g_atomic_int_get(&pool->stopping) != 0;
}

/* Tells the change hook (lock held). */
static void pool_changed(struct imap_pool *pool)
{
	if (pool->change_fn != NULL)
		pool->change_fn(pool->change_data);
}

void imap_pool_set_change_hook(struct imap_pool *pool, imap_pool_change_fn *fn,
			       void *user_data)
{
	g_mutex_lock(&pool->lock);
	pool->change_fn = fn;
	pool->change_data = user_data;
	g_mutex_unlock(&pool->lock);
}

/* A session could be opened: online again (lock held). */
static void pool_set_online(struct imap_pool *pool)
{
	if (!pool->offline)
		return;
	imapfs_info("server reachable again after %u attempt(s): online",
		    pool->attempts);
	pool->offline = FALSE;
	pool->attempts = 0;
	pool->backoff_ms = POOL_BACKOFF_FIRST_MS;
	g_clear_pointer(&pool->offline_reason, g_free);
	g_cond_broadcast(&pool->cond);
	pool_changed(pool);
}

/* The reconnect thread: one attempt at a time, when the backoff expired
 * each within one timeout; stops when the pool is freed. */
static gpointer pool_reconnect_thread(gpointer data)
{
	struct imap_pool *pool = data;
	/* No deadline beyond the per-wait bounds, but the attempt ends at
	 * once when the pool is freed (unmount while offline). */
	struct imap_reqctx ctx = {.interrupted = pool_stop_requested,
				  .data = pool};

	imap_reqctx_enter(&ctx);
	g_mutex_lock(&pool->lock);
	while (!g_atomic_int_get(&pool->stopping)) {
		struct imap_session *s;
		GError *err = NULL;

		if (!pool->offline) {
			g_cond_wait(&pool->rcond, &pool->lock);
			continue;
		}
		if (g_get_monotonic_time() < pool->next_attempt) {
			g_cond_wait_until(&pool->rcond, &pool->lock,
					  pool->next_attempt);
			continue;
		}
		pool->probing = TRUE;
		pool->attempts++;
		pool->count++;
		g_mutex_unlock(&pool->lock);
		ctx.deadline = g_get_monotonic_time() +
			       (gint64)pool->account->timeout_ms * 1000;
		s = imap_session_open(pool->account, &err);
		g_mutex_lock(&pool->lock);
		pool->probing = FALSE;
		pool->last_probe_end = g_get_monotonic_time();
		if (s != NULL) {
			pool_set_online(pool);
			g_ptr_array_add(pool->idle, s);
			continue;
		}
		pool->count--;
		imapfs_debug("reconnect attempt %u failed: %s", pool->attempts,
			     err->message);
		g_free(pool->offline_reason);
		pool->offline_reason = g_strdup(err->message);
		g_error_free(err);
		pool->next_attempt =
			pool->last_probe_end + (gint64)pool->backoff_ms * 1000;
		pool->backoff_ms =
			MIN(pool->backoff_ms * 2, POOL_BACKOFF_MAX_MS);
		g_cond_broadcast(&pool->cond);
	}
	g_mutex_unlock(&pool->lock);
	imap_reqctx_leave();
	return NULL;
}

/* Puts the pool offline because of @err (lock held): the idle sessions
 * are handed back in *dead_r for the caller to free without the lock.
 * Borrowed ones run on to their own deadlines (one may be a write whose
 * outcome must not be made unknown by another request's timeout); they
 * are freed when given back. */
static void pool_go_offline(struct imap_pool *pool, const GError *err,
			    gboolean slow, GPtrArray **dead_r)
{
	*dead_r = NULL;
	if (pool->offline || g_atomic_int_get(&pool->stopping))
		return;
	imapfs_warning("server unreachable (%s): offline; cached data is "
		       "served, reconnecting in the background",
		       err->message);
	pool->offline = TRUE;
	pool->offline_since = g_get_real_time();
	g_free(pool->offline_reason);
	pool->offline_reason = g_strdup(err->message);
	pool->attempts = 0;
	pool->next_attempt =
		g_get_monotonic_time() + (gint64)pool->backoff_ms * 1000;
	pool->backoff_ms = MIN(pool->backoff_ms * 2, POOL_BACKOFF_MAX_MS);
	pool->last_probe_end = g_get_monotonic_time();
	pool->kick_after = pool->last_probe_end +
			   (slow ? POOL_KICK_SLOW_US : POOL_KICK_FAST_US);
	*dead_r = pool->idle;
	pool->idle = g_ptr_array_new();
	pool->count -= (*dead_r)->len;
	if (pool->reconnector == NULL)
		pool->reconnector = g_thread_new("imapfs-reconnect",
						 pool_reconnect_thread, pool);
	g_cond_broadcast(&pool->rcond);
	g_cond_broadcast(&pool->cond);
	pool_changed(pool);
}

static void pool_free_dead(GPtrArray *dead)
{
	guint i;

	if (dead == NULL)
		return;
	for (i = 0; i < dead->len; i++) {
		imap_session_abort(dead->pdata[i]);
		imap_session_free(dead->pdata[i]);
	}
	g_ptr_array_free(dead, TRUE);
}

/* Whether a failure to open a session says the server is unreachable. An
 * interruption says nothing, nor does a timeout of an attempt that had
 * almost no time (its request had waited long already). */
static gboolean pool_open_error_offline(const GError *err, gint64 budget_us)
{
	if (err == NULL || err->domain != IMAP_ERROR)
		return FALSE;
	switch (err->code) {
	case IMAP_ERROR_TIMEOUT:
		return budget_us < 0 || budget_us >= POOL_SILENT_US;
	case IMAP_ERROR_IO:
	case IMAP_ERROR_TLS:
	case IMAP_ERROR_BYE:
		return TRUE;
	default:
		return FALSE;
	}
}

static void pool_set_offline_error(struct imap_pool *pool, GError **error)
{
	gint64 wait = pool->next_attempt - g_get_monotonic_time();

	if (pool->probing || wait < 0)
		wait = 0;
	g_set_error(error, IMAP_ERROR, IMAP_ERROR_OFFLINE,
		    "offline: server unreachable (%s); next attempt in %d s",
		    pool->offline_reason != NULL ? pool->offline_reason
						 : "unknown cause",
		    (int)((wait + G_USEC_PER_SEC - 1) / G_USEC_PER_SEC));
}

void imap_pool_state(struct imap_pool *pool, struct imap_pool_state *state_r)
{
	gint64 now = g_get_monotonic_time();

	memset(state_r, 0, sizeof(*state_r));
	g_mutex_lock(&pool->lock);
	state_r->offline = pool->offline;
	state_r->configured_size = pool->configured_size;
	state_r->limit_refusals = pool->limit_refusals;
	pool_regrow(pool);
	state_r->size = pool->size;
	if (pool->size < pool->configured_size)
		state_r->regrow_ms =
			pool->regrow_at > now
				? (unsigned int)((pool->regrow_at - now + 999) /
						 1000)
				: 0;
	if (pool->offline) {
		state_r->offline_since = pool->offline_since;
		state_r->reason = g_strdup(pool->offline_reason);
		state_r->attempts = pool->attempts;
		if (!pool->probing && pool->next_attempt > now)
			state_r->next_attempt_ms =
				(unsigned int)((pool->next_attempt - now +
						999) /
					       1000);
	}
	g_mutex_unlock(&pool->lock);
}

/* ---- acquire / release ---- */

/* TRUE if @mailbox is under a hold (imap_pool_hold()). Lock held. */
static gboolean pool_is_held(struct imap_pool *pool, const char *mailbox)
{
	for (guint i = 0; i < pool->held->len; i++) {
		if (g_str_has_prefix(mailbox, pool->held->pdata[i]))
			return TRUE;
	}
	return FALSE;
}

/* TRUE if idle session @s has a held mailbox selected. Lock held. */
static gboolean pool_selects_held(struct imap_pool *pool,
				  struct imap_session *s)
{
	const char *sel;

	if (pool->held->len == 0)
		return FALSE;
	sel = imap_session_selected(s);
	return sel != NULL && pool_is_held(pool, sel);
}

/* Picks an idle session, preferring one with @hint examined, never one
 * with a held mailbox selected (imap_pool_hold() makes it leave first);
 * NULL if there is none. Called with the lock held. */
static struct imap_session *pool_take_idle(struct imap_pool *pool,
					   const char *hint)
{
	guint i, pick = G_MAXUINT;

	for (i = 0; i < pool->idle->len; i++) {
		struct imap_session *s = pool->idle->pdata[i];
		const char *sel = imap_session_selected(s);

		if (pool_selects_held(pool, s))
			continue;
		pick = i;
		if (hint == NULL || (sel != NULL && strcmp(sel, hint) == 0))
			break;
	}
	if (pick == G_MAXUINT)
		return NULL;
	return g_ptr_array_remove_index_fast(pool->idle, pick);
}

/* ---- the server's connection limit ---- */

/* The pool's size drops to @size (at least 1) for the server's limit
 * (lock held): it may rise again after the regrow wait, which doubles. */
static void pool_shrink(struct imap_pool *pool, unsigned int size)
{
	unsigned int max = MAX(POOL_REGROW_MAX_MS, pool->regrow_first_ms);

	pool->size = MAX(size, 1u);
	pool->limit_low = pool->size;
	pool->regrow_at =
		g_get_monotonic_time() + (gint64)pool->regrow_ms * 1000;
	pool->regrow_ms = MIN(pool->regrow_ms * 2, max);
	pool_changed(pool);
}

/* The size rises by one when the regrow wait is over (lock held); the
 * next open tries the connection, and a refusal shrinks it again. */
static void pool_regrow(struct imap_pool *pool)
{
	gint64 now;

	if (pool->size >= pool->configured_size)
		return;
	now = g_get_monotonic_time();
	if (now < pool->regrow_at)
		return;
	pool->size++;
	pool->regrow_at = now + (gint64)pool->regrow_ms * 1000;
	imapfs_info("trying %u connection(s) again (configured %u)", pool->size,
		    pool->configured_size);
	pool_changed(pool);
}

/* A session was opened (lock held, counted): past the last limit, the
 * server allows more again and the regrow wait starts over. */
static void pool_opened(struct imap_pool *pool)
{
	if (pool->limit_low == 0 || pool->count <= pool->limit_low)
		return;
	imapfs_info("the server allows %u connection(s) again", pool->count);
	pool->limit_low = 0;
	pool->regrow_ms = pool->regrow_first_ms;
}

void imap_pool_set_limit_retry(struct imap_pool *pool, unsigned int first_ms)
{
	g_mutex_lock(&pool->lock);
	pool->regrow_first_ms = MAX(first_ms, 1u);
	pool->regrow_ms = pool->regrow_first_ms;
	g_mutex_unlock(&pool->lock);
}

/* The server refused one more connection for its limit (lock held): use
 * the ones there are. Returns TRUE if the caller should wait for one of
 * them, FALSE if there is none (the refusal is then the answer). */
static gboolean pool_hit_limit(struct imap_pool *pool, const GError *err)
{
	pool->limit_refusals++;
	if (pool->count == 0)
		return FALSE;
	if (pool->size > pool->count) {
		imapfs_warning("the server allows no more connections (%s): "
			       "using %u instead of %u",
			       err->message, pool->count, pool->size);
		pool_shrink(pool, pool->count);
	}
	return TRUE;
}

/* Whether a failed attempt to open a session hung rather than failed at
 * once: it timed out, or took long. */
static gboolean pool_slow_failure(const GError *err, gint64 start, gint64 end)
{
	return g_error_matches(err, IMAP_ERROR, IMAP_ERROR_TIMEOUT) ||
	       end - start >= POOL_SILENT_US;
}

/* @s is borrowed now, by a request about @hint (may be NULL). Lock held. */
static void pool_busy(struct imap_pool *pool, struct imap_session *s,
		      const char *hint)
{
	const char *sel = imap_session_selected(s);

	g_ptr_array_add(pool->busy, s);
	g_hash_table_replace(pool->about, s,
			     g_strdup_printf("%s\n%s", sel != NULL ? sel : "",
					     hint != NULL ? hint : ""));
}

/* Opens a session for an acquire: called and returns with the lock held,
 * which it drops meanwhile (logging in takes round trips, and other
 * threads may return sessions). The session is borrowed (busy). *start_r
 * is when the attempt began. */
static struct imap_session *pool_open_locked(struct imap_pool *pool,
					     const char *hint, gint64 *start_r,
					     GError **error)
{
	struct imap_session *s;

	pool->count++;
	g_mutex_unlock(&pool->lock);
	*start_r = g_get_monotonic_time();
	s = imap_session_open(pool->account, error);
	g_mutex_lock(&pool->lock);
	if (s != NULL) {
		pool_busy(pool, s, hint);
		pool_opened(pool);
		return s;
	}
	pool->count--;
	g_cond_signal(&pool->cond);
	return NULL;
}

/* An acquire while offline (lock held; released on return): fails at once
 * unless it may try to connect (POOL_KICK_*), in which case it does. */
static struct imap_session *
pool_acquire_offline(struct imap_pool *pool, const char *hint, GError **error)
{
	struct imap_session *s;
	GError *err = NULL;
	gint64 start, now = g_get_monotonic_time();

	if (now < pool->kick_after || g_atomic_int_get(&pool->stopping)) {
		imapfs_debug("offline: request refused without trying (next "
			     "try by a request in %" G_GINT64_FORMAT " ms)",
			     (pool->kick_after - now) / 1000);
		pool_set_offline_error(pool, error);
		g_mutex_unlock(&pool->lock);
		return NULL;
	}
	/* No other acquire tries meanwhile. */
	pool->kick_after = G_MAXINT64;
	pool->attempts++;
	s = pool_open_locked(pool, hint, &start, &err);
	now = g_get_monotonic_time();
	if (s != NULL) {
		pool_set_online(pool);
	} else {
		pool->kick_after = now + (pool_slow_failure(err, start, now)
						  ? POOL_KICK_SLOW_US
						  : POOL_KICK_FAST_US);
		if (pool->offline) {
			g_free(pool->offline_reason);
			pool->offline_reason = g_strdup(err->message);
		}
		g_propagate_error(error, err);
	}
	g_mutex_unlock(&pool->lock);
	return s;
}

struct imap_session *imap_pool_acquire(struct imap_pool *pool,
				       const char *mailbox_hint, GError **error)
{
	gint64 deadline =
		imap_reqctx_clamp(g_get_monotonic_time() +
				  (gint64)pool->account->timeout_ms * 1000);
	struct imap_session *s;
	GPtrArray *dead = NULL;
	GError *err = NULL;
	gint64 budget, start;

	g_mutex_lock(&pool->lock);
	for (;;) {
		gint64 now = g_get_monotonic_time(), until;

		gboolean held;

		if (pool->offline)
			return pool_acquire_offline(pool, mailbox_hint, error);
		pool_regrow(pool);
		/* A request about a mailbox being deleted or renamed waits
		 * for the end of that (its own SELECT would be cut off). */
		held = mailbox_hint != NULL && pool->held->len > 0 &&
		       pool_is_held(pool, mailbox_hint);
		s = held ? NULL : pool_take_idle(pool, mailbox_hint);
		if (s != NULL) {
			pool_busy(pool, s, mailbox_hint);
			g_mutex_unlock(&pool->lock);
			return s;
		}
		if (!held && pool->count < pool->size) {
			budget = imap_reqctx_clamp(-1);
			if (budget >= 0)
				budget -= now;
			s = pool_open_locked(pool, mailbox_hint, &start, &err);
			if (s != NULL) {
				g_mutex_unlock(&pool->lock);
				return s;
			}
			if (g_error_matches(err, IMAP_ERROR,
					    IMAP_ERROR_UNAVAILABLE) &&
			    pool_hit_limit(pool, err)) {
				g_clear_error(&err);
				continue;
			}
			if (pool_open_error_offline(err, budget) ||
			    g_error_matches(err, IMAP_ERROR,
					    IMAP_ERROR_UNAVAILABLE))
				pool_go_offline(pool, err,
						pool_slow_failure(
							err, start,
							g_get_monotonic_time()),
						&dead);
			g_mutex_unlock(&pool->lock);
			pool_free_dead(dead);
			g_propagate_error(error, err);
			return NULL;
		}
		if (now >= deadline) {
			g_mutex_unlock(&pool->lock);
			g_set_error(error, IMAP_ERROR, IMAP_ERROR_TIMEOUT,
				    "no IMAP connection became free in time");
			return NULL;
		}
		if (!imap_reqctx_check(error)) {
			g_mutex_unlock(&pool->lock);
			return NULL;
		}
		until = imap_reqctx_interruptible()
				? MIN(deadline,
				      now + IMAP_REQCTX_SLICE_MS * 1000)
				: deadline;
		g_cond_wait_until(&pool->cond, &pool->lock, until);
	}
}

/* Takes @session off the busy list (lock held). */
static void pool_unbusy(struct imap_pool *pool, struct imap_session *session)
{
	g_ptr_array_remove_fast(pool->busy, session);
	g_hash_table_remove(pool->about, session);
}

void imap_pool_release(struct imap_pool *pool, struct imap_session *session)
{
	gboolean usable = imap_session_is_usable(session);

	g_mutex_lock(&pool->lock);
	pool_unbusy(pool, session);
	/* While offline nothing is kept: the session may be alive, but the
	 * pool said it is not, and the reconnect thread decides. */
	if (usable && pool->offline)
		usable = FALSE;
	/* Over the size (imap_pool_make_room()): this one goes. */
	if (usable && pool->count > pool->size)
		usable = FALSE;
	if (usable) {
		g_ptr_array_add(pool->idle, session);
	} else {
		pool->count--;
	}
	/* A hold waits for this one too (imap_pool_hold()). */
	if (pool->held->len > 0)
		g_cond_broadcast(&pool->cond);
	else
		g_cond_signal(&pool->cond);
	g_mutex_unlock(&pool->lock);
	if (!usable)
		imap_session_free(session);
}

/* ---- holds: our own DELETE and RENAME ---- */

/* Makes idle session @s (taken off the idle list, counted as busy) leave
 * its selected mailbox and gives it back; lock held, dropped meanwhile. */
static void pool_leave_one(struct imap_pool *pool, struct imap_session *s)
{
	gboolean ok;

	pool_busy(pool, s, NULL);
	g_mutex_unlock(&pool->lock);
	ok = imap_session_leave_selected(s, NULL);
	/* Still in the mailbox as far as the server knows: it goes. */
	if (!ok)
		imap_session_abort(s);
	imap_pool_release(pool, s);
	g_mutex_lock(&pool->lock);
}

/* TRUE while a session of @waited (those borrowed when the hold began) is
 * still borrowed; drops the others from @waited. Lock held. */
static gboolean pool_still_busy(struct imap_pool *pool, GPtrArray *waited)
{
	for (guint i = 0; i < waited->len;) {
		gboolean busy = FALSE;

		for (guint j = 0; j < pool->busy->len && !busy; j++)
			busy = pool->busy->pdata[j] == waited->pdata[i];
		if (busy)
			i++;
		else
			g_ptr_array_remove_index_fast(waited, i);
	}
	return waited->len > 0;
}

/* Removes one hold of @mailbox (lock held). */
static void pool_drop_hold(struct imap_pool *pool, const char *mailbox)
{
	for (guint i = 0; i < pool->held->len; i++) {
		if (strcmp(pool->held->pdata[i], mailbox) == 0) {
			g_ptr_array_remove_index_fast(pool->held, i);
			break;
		}
	}
	g_cond_broadcast(&pool->cond);
}

gboolean imap_pool_hold(struct imap_pool *pool, const char *mailbox,
			GError **error)
{
	gint64 deadline =
		imap_reqctx_clamp(g_get_monotonic_time() +
				  (gint64)pool->account->timeout_ms * 1000);
	GPtrArray *waited;
	gboolean ok = TRUE;

	g_mutex_lock(&pool->lock);
	g_ptr_array_add(pool->held, g_strdup(mailbox));
	/* A borrowed session may have the mailbox selected, or be about to
	 * (its borrower's thread alone may look at it): wait for each that
	 * had it when handed out or was asked for it. */
	waited = g_ptr_array_new();
	for (guint i = 0; i < pool->busy->len; i++) {
		const char *about =
			g_hash_table_lookup(pool->about, pool->busy->pdata[i]);
		const char *nl = about != NULL ? strchr(about, '\n') : NULL;
		char *sel = nl != NULL ? g_strndup(about, nl - about) : NULL;

		if (nl != NULL &&
		    ((*sel != '\0' && g_str_has_prefix(sel, mailbox)) ||
		     (nl[1] != '\0' && g_str_has_prefix(nl + 1, mailbox))))
			g_ptr_array_add(waited, pool->busy->pdata[i]);
		g_free(sel);
	}
	for (;;) {
		struct imap_session *s = NULL;
		gint64 now;

		for (guint i = 0; i < pool->idle->len && s == NULL; i++) {
			if (pool_selects_held(pool, pool->idle->pdata[i]))
				s = g_ptr_array_remove_index_fast(pool->idle,
								  i);
		}
		if (s != NULL) {
			pool_leave_one(pool, s);
			continue;
		}
		if (!pool_still_busy(pool, waited))
			break;
		now = g_get_monotonic_time();
		if (now >= deadline) {
			g_set_error(error, IMAP_ERROR, IMAP_ERROR_INUSE,
				    "%s is in use by another request that "
				    "did not end in time",
				    mailbox);
			ok = FALSE;
		} else if (!imap_reqctx_check(error)) {
			ok = FALSE;
		}
		if (!ok) {
			pool_drop_hold(pool, mailbox);
			break;
		}
		g_cond_wait_until(
			&pool->cond, &pool->lock,
			imap_reqctx_interruptible()
				? MIN(deadline,
				      now + IMAP_REQCTX_SLICE_MS * 1000)
				: deadline);
	}
	g_mutex_unlock(&pool->lock);
	g_ptr_array_unref(waited);
	return ok;
}

void imap_pool_release_hold(struct imap_pool *pool, const char *mailbox)
{
	g_mutex_lock(&pool->lock);
	pool_drop_hold(pool, mailbox);
	g_mutex_unlock(&pool->lock);
}

/* After a connection died, the idle ones probably died of the same cause
 * (server restart, network change, suspend): drop them so that the retry
 * connects afresh instead of finding another corpse. */
static void pool_purge_idle(struct imap_pool *pool)
{
	GPtrArray *dead;

	g_mutex_lock(&pool->lock);
	dead = pool->idle;
	pool->idle = g_ptr_array_new();
	pool->count -= dead->len;
	g_cond_broadcast(&pool->cond);
	g_mutex_unlock(&pool->lock);
	pool_free_dead(dead);
}

/* Whether @error suggests the idle sessions died of the same cause: the
 * network or the server went away.  A PROTOCOL error is about one reply
 * (one hostile or odd message), an UNKNOWN_OUTCOME or SOURCE about one
 * request; neither says anything about the other connections. */
static gboolean pool_error_purges(const GError *error)
{
	if (error == NULL || error->domain != IMAP_ERROR)
		return FALSE;
	return error->code == IMAP_ERROR_IO ||
	       error->code == IMAP_ERROR_TIMEOUT ||
	       error->code == IMAP_ERROR_BYE || error->code == IMAP_ERROR_TLS;
}

/* ---- provider throttling (Microsoft 365, Gmail) ----
 *
 * Kept apart from the connection-loss retry: a throttled read waits a
 * little and is tried again, at most POOL_THROTTLE_RETRIES times, each wait
 * the server's "Suggested Backoff Time" or 500 ms doubling, clamped to
 * [POOL_THROTTLE_MIN_MS, POOL_THROTTLE_MAX_MS]: worst case about 6 s on top
 * of the replies.  Only imap_pool_run() (idempotent requests) uses it;
 * imap_pool_run_once() never retries. */
#define POOL_THROTTLE_RETRIES 3
#define POOL_THROTTLE_MIN_MS 100u
#define POOL_THROTTLE_MAX_MS 2000u

/* The wait before retry number @n (0-based) after @error, in ms, or 0 if
 * @error is not the server asking us to slow down: NO [THROTTLED] (or
 * Microsoft's "is throttled" text, both IMAP_ERROR_THROTTLED), or a BYE
 * whose code says [THROTTLED] or [UNAVAILABLE] (the BYE text carries the
 * code, see conn.c). */
static unsigned int pool_throttle_delay_ms(const GError *error, int n)
{
	const char *hint;
	guint64 ms = 500u << MIN(n, 8);

	if (error == NULL || error->domain != IMAP_ERROR)
		return 0;
	if (error->code != IMAP_ERROR_THROTTLED &&
	    !(error->code == IMAP_ERROR_BYE &&
	      (strstr(error->message, "[THROTTLED]") != NULL ||
	       strstr(error->message, "[UNAVAILABLE]") != NULL ||
	       strstr(error->message, "is throttled") != NULL)))
		return 0;
	/* Untrusted text: only digits right after the phrase count. */
	hint = strstr(error->message, "Backoff Time: ");
	if (hint != NULL && g_ascii_isdigit(hint[14]))
		ms = g_ascii_strtoull(hint + 14, NULL, 10);
	return (unsigned int)CLAMP(ms, POOL_THROTTLE_MIN_MS,
				   POOL_THROTTLE_MAX_MS);
}

/* Sleeps @ms before a throttled read is tried again, within the request's
 * deadline and interruptible (reqctx.h). FALSE if the deadline comes
 * first (the throttle error then stands) or, with @error set, if the
 * caller was interrupted. */
static gboolean pool_throttle_wait(unsigned int ms, GError **error)
{
	gint64 until = g_get_monotonic_time() + (gint64)ms * 1000;
	gint64 deadline = imap_reqctx_clamp(-1);

	if (deadline >= 0 && until >= deadline)
		return FALSE;
	for (;;) {
		gint64 left = until - g_get_monotonic_time();

		if (!imap_reqctx_check(error))
			return FALSE;
		if (left <= 0)
			return TRUE;
		g_usleep((gulong)MIN(left, (gint64)imap_reqctx_slice_ms(
						   (int)(left / 1000) + 1) *
						   1000));
	}
}

/* Runs @fn on @s and gives @s back. A request that waited at least
 * POOL_SILENT_US and timed out found a silent server: offline. */
static gboolean pool_call(struct imap_pool *pool, struct imap_session *s,
			  imap_pool_fn *fn, void *user_data, GError **error)
{
	gint64 start = g_get_monotonic_time();
	GPtrArray *dead = NULL;
	gboolean ok;

	ok = fn(s, user_data, error);
	if (!ok && g_error_matches(*error, IMAP_ERROR, IMAP_ERROR_TIMEOUT) &&
	    g_get_monotonic_time() - start >= POOL_SILENT_US) {
		g_mutex_lock(&pool->lock);
		pool_go_offline(pool, *error, TRUE, &dead);
		/* One silent command does not prove the network gone (a hung
		 * server process): the background thread checks at once
		 * whether a new connection works. */
		pool->next_attempt = g_get_monotonic_time();
		g_mutex_unlock(&pool->lock);
		pool_free_dead(dead);
	}
	imap_pool_release(pool, s);
	return ok;
}

void imap_pool_make_room(struct imap_pool *pool, const GError *error)
{
	struct imap_session *s = NULL;
	unsigned int has;

	g_mutex_lock(&pool->lock);
	pool->limit_refusals++;
	/* What the server let us have is what there is (or the size). */
	has = MIN(pool->size, pool->count);
	if (has > 1) {
		imapfs_warning("the server allows no more connections (%s): "
			       "the pool gives one up for the live view (%u "
			       "instead of %u)",
			       error->message, has - 1, pool->size);
		pool_shrink(pool, has - 1);
		if (pool->count > pool->size && pool->idle->len > 0) {
			s = g_ptr_array_remove_index_fast(pool->idle, 0);
			pool->count--;
		}
	}
	g_mutex_unlock(&pool->lock);
	if (s != NULL)
		imap_session_free(s);
}

void imap_pool_report_unreachable(struct imap_pool *pool, const GError *error)
{
	GPtrArray *dead = NULL;

	gboolean silent =
		g_error_matches(error, IMAP_ERROR, IMAP_ERROR_TIMEOUT);

	g_mutex_lock(&pool->lock);
	if (!pool->offline) {
		/* A refused connect lets the next request try at once, as
		 * after the pool's own (pool_acquire_offline()). */
		pool_go_offline(pool, error, silent, &dead);
		/* Like a request that timed out (pool_call()): one silent
		 * connection does not prove the network gone. */
		if (silent) {
			pool->next_attempt = g_get_monotonic_time();
			g_cond_broadcast(&pool->rcond);
		}
	}
	g_mutex_unlock(&pool->lock);
	pool_free_dead(dead);
}

gboolean imap_pool_run(struct imap_pool *pool, const char *mailbox_hint,
		       imap_pool_fn *fn, void *user_data, GError **error)
{
	int attempt = 0, throttled = 0;

	for (;;) {
		GError *err = NULL;
		struct imap_session *s;
		unsigned int delay;

		s = imap_pool_acquire(pool, mailbox_hint, &err);
		if (s == NULL) {
			g_propagate_error(error, err);
			return FALSE;
		}
		if (pool_call(pool, s, fn, user_data, &err))
			return TRUE;
		delay = pool_throttle_delay_ms(err, throttled);
		if (delay > 0 && throttled < POOL_THROTTLE_RETRIES) {
			/* No lock is held: the wait blocks this request only.
			 * A throttling BYE says nothing about the idle
			 * sessions: they stay. */
			GError *ierr = NULL;

			imapfs_info("server is throttling (%s); retrying in "
				    "%u ms",
				    err->message, delay);
			throttled++;
			if (pool_throttle_wait(delay, &ierr)) {
				g_error_free(err);
				continue;
			}
			if (ierr != NULL) { /* interrupted */
				g_error_free(err);
				g_propagate_error(error, ierr);
				return FALSE;
			}
		}
		if (attempt > 0 || !imap_error_is_fatal(err)) {
			g_propagate_error(error, err);
			return FALSE;
		}
		attempt++;
		imapfs_info("connection lost (%s); retrying once",
			    err->message);
		if (pool_error_purges(err))
			pool_purge_idle(pool);
		g_error_free(err);
	}
}

gboolean imap_pool_run_once(struct imap_pool *pool, const char *mailbox_hint,
			    imap_pool_fn *fn, void *user_data, GError **error)
{
	GError *err = NULL;
	struct imap_session *s;

	s = imap_pool_acquire(pool, mailbox_hint, error);
	if (s == NULL)
		return FALSE;
	/* A broken session is freed by the release and its slot opened
	 * up, so the caller's follow-up look-up gets a fresh connection. */
	if (pool_call(pool, s, fn, user_data, &err))
		return TRUE;
	if (pool_error_purges(err))
		pool_purge_idle(pool);
	g_propagate_error(error, err);
	return FALSE;
}

void imap_pool_stats(struct imap_pool *pool, unsigned int *count_r,
		     unsigned int *idle_r, unsigned int *size_r)
{
	g_mutex_lock(&pool->lock);
	pool_regrow(pool);
	*count_r = pool->count;
	*idle_r = pool->idle->len;
	*size_r = pool->size;
	g_mutex_unlock(&pool->lock);
}
