/* pool.c - see pool.h. */
#include "config.h"

#include <string.h>

#include "imap-error.h"
#include "log.h"
#include "pool.h"

struct imap_pool {
	const struct imap_account *account;
	unsigned int size;
	GMutex lock;
	GCond cond;
	/* Sessions not borrowed (protected by lock). */
	GPtrArray *idle;
	/* Sessions that exist, borrowed or idle, plus opens under way
	 * (protected by lock). */
	unsigned int count;
};

struct imap_pool *imap_pool_new(const struct imap_account *account,
				unsigned int size, struct imap_session *first)
{
	struct imap_pool *pool = g_new0(struct imap_pool, 1);

	pool->account = account;
	pool->size = MAX(size, 1u);
	g_mutex_init(&pool->lock);
	g_cond_init(&pool->cond);
	pool->idle = g_ptr_array_new();
	if (first != NULL) {
		g_ptr_array_add(pool->idle, first);
		pool->count = 1;
	}
	return pool;
}

void imap_pool_open_more(struct imap_pool *pool, unsigned int n)
{
	struct imap_session *s;

	for (;;) {
		g_mutex_lock(&pool->lock);
		if (pool->count >= MIN(n, pool->size)) {
			g_mutex_unlock(&pool->lock);
			return;
		}
		pool->count++;
		g_mutex_unlock(&pool->lock);
		s = imap_session_open(pool->account, NULL);
		g_mutex_lock(&pool->lock);
		if (s != NULL)
			g_ptr_array_add(pool->idle, s);
		else
			pool->count--;
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
	for (i = 0; i < pool->idle->len; i++)
		imap_session_free(pool->idle->pdata[i]);
	g_ptr_array_free(pool->idle, TRUE);
	g_mutex_clear(&pool->lock);
	g_cond_clear(&pool->cond);
	g_free(pool);
}

/* Picks an idle session, preferring one with @hint examined. Called with
 * the lock held. */
static struct imap_session *pool_take_idle(struct imap_pool *pool,
					   const char *hint)
{
	guint i, pick = pool->idle->len - 1;

	if (hint != NULL) {
		for (i = 0; i < pool->idle->len; i++) {
			const char *sel =
				imap_session_selected(pool->idle->pdata[i]);

			if (sel != NULL && strcmp(sel, hint) == 0) {
				pick = i;
				break;
			}
		}
	}
	return g_ptr_array_remove_index_fast(pool->idle, pick);
}

struct imap_session *imap_pool_acquire(struct imap_pool *pool,
				       const char *mailbox_hint, GError **error)
{
	gint64 deadline = g_get_monotonic_time() +
			  (gint64)pool->account->timeout_ms * 1000 * 2;
	struct imap_session *s;

	g_mutex_lock(&pool->lock);
	for (;;) {
		if (pool->idle->len > 0) {
			s = pool_take_idle(pool, mailbox_hint);
			g_mutex_unlock(&pool->lock);
			return s;
		}
		if (pool->count < pool->size)
			break;
		if (!g_cond_wait_until(&pool->cond, &pool->lock, deadline)) {
			g_mutex_unlock(&pool->lock);
			g_set_error(error, IMAP_ERROR, IMAP_ERROR_TIMEOUT,
				    "no IMAP connection became free in time");
			return NULL;
		}
	}
	/* Open a new session without holding the lock: logging in takes
	 * round trips and other threads may return sessions meanwhile. */
	pool->count++;
	g_mutex_unlock(&pool->lock);
	s = imap_session_open(pool->account, error);
	if (s == NULL) {
		g_mutex_lock(&pool->lock);
		pool->count--;
		g_cond_signal(&pool->cond);
		g_mutex_unlock(&pool->lock);
	}
	return s;
}

void imap_pool_release(struct imap_pool *pool, struct imap_session *session)
{
	gboolean usable = imap_session_is_usable(session);

	if (!usable)
		imap_session_free(session);
	g_mutex_lock(&pool->lock);
	if (usable)
		g_ptr_array_add(pool->idle, session);
	else
		pool->count--;
	g_cond_signal(&pool->cond);
	g_mutex_unlock(&pool->lock);
}

/* After a connection died, the idle ones probably died of the same cause
 * (server restart, network change, suspend): drop them so that the retry
 * connects afresh instead of finding another corpse. */
static void pool_purge_idle(struct imap_pool *pool)
{
	GPtrArray *dead;
	guint i;

	g_mutex_lock(&pool->lock);
	dead = pool->idle;
	pool->idle = g_ptr_array_new();
	pool->count -= dead->len;
	g_cond_broadcast(&pool->cond);
	g_mutex_unlock(&pool->lock);
	for (i = 0; i < dead->len; i++) {
		imap_session_abort(dead->pdata[i]);
		imap_session_free(dead->pdata[i]);
	}
	g_ptr_array_free(dead, TRUE);
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

gboolean imap_pool_run(struct imap_pool *pool, const char *mailbox_hint,
		       imap_pool_fn *fn, void *user_data, GError **error)
{
	int attempt = 0, throttled = 0;

	for (;;) {
		GError *err = NULL;
		struct imap_session *s;
		unsigned int delay;
		gboolean ok;

		s = imap_pool_acquire(pool, mailbox_hint, &err);
		if (s == NULL) {
			g_propagate_error(error, err);
			return FALSE;
		}
		ok = fn(s, user_data, &err);
		imap_pool_release(pool, s);
		if (ok)
			return TRUE;
		delay = pool_throttle_delay_ms(err, throttled);
		if (delay > 0 && throttled < POOL_THROTTLE_RETRIES) {
			/* No lock is held: the wait blocks this request only.
			 * A throttling BYE says nothing about the idle
			 * sessions: they stay. */
			imapfs_info("server is throttling (%s); retrying in "
				    "%u ms",
				    err->message, delay);
			throttled++;
			g_error_free(err);
			g_usleep((gulong)delay * 1000);
			continue;
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
	gboolean ok;

	s = imap_pool_acquire(pool, mailbox_hint, error);
	if (s == NULL)
		return FALSE;
	ok = fn(s, user_data, &err);
	/* A broken session is freed here and its slot opened up, so the
	 * caller's follow-up look-up gets a fresh connection. */
	imap_pool_release(pool, s);
	if (ok)
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
	*count_r = pool->count;
	*idle_r = pool->idle->len;
	*size_r = pool->size;
	g_mutex_unlock(&pool->lock);
}
