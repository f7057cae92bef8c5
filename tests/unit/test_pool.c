/* test_pool.c - imap/pool.c: which failures are retried and which purge
 * the idle sessions, against the scripted peer (imappeer.h). */
#include "config.h"

#include <string.h>

#include "imap-error.h"
#include "imappeer.h"
#include "pool.h"
#include "reqctx.h"
#include "testtls.h"

struct calls {
	unsigned int n;
	int code; /* the error the first call fails with */
	struct imap_session *seen[4];
};

static gboolean fail_first(struct imap_session *session, void *user_data,
			   GError **error)
{
	struct calls *c = user_data;

	if (c->n < G_N_ELEMENTS(c->seen))
		c->seen[c->n] = session;
	if (c->n++ == 0) {
		g_set_error(error, IMAP_ERROR, c->code, "injected");
		return FALSE;
	}
	return TRUE;
}

/* A non-idempotent request is never run a second time. */
static void test_run_once_no_retry(void)
{
	static const int codes[] = {IMAP_ERROR_IO, IMAP_ERROR_UNKNOWN_OUTCOME,
				    IMAP_ERROR_BYE, IMAP_ERROR_NO};

	for (size_t i = 0; i < G_N_ELEMENTS(codes); i++) {
		struct peer *p = peer_start("", NULL, NULL);
		struct imap_pool *pool =
			imap_pool_new(peer_account(p), 2, NULL);
		struct calls c = {.code = codes[i]};
		GError *error = NULL;

		g_assert_false(
			imap_pool_run_once(pool, NULL, fail_first, &c, &error));
		g_assert_error(error, IMAP_ERROR, codes[i]);
		g_clear_error(&error);
		g_assert_cmpuint(c.n, ==, 1);
		/* The idempotent flavour retries the fatal ones. */
		c.n = 0;
		g_assert_cmpint(
			imap_pool_run(pool, NULL, fail_first, &c, &error), ==,
			codes[i] != IMAP_ERROR_NO);
		g_clear_error(&error);
		g_assert_cmpuint(c.n, ==, codes[i] == IMAP_ERROR_NO ? 1 : 2);
		imap_pool_free(pool);
		peer_stop(p);
		peer_assert_done(p);
		peer_free(p);
	}
}

/* A protocol error is about one reply: the other idle sessions stay; an
 * IO error purges them (they probably died of the same cause). */
static void test_purge_policy(void)
{
	static const struct {
		int code;
		gboolean purges;
	} cases[] = {
		{IMAP_ERROR_PROTOCOL, FALSE},
		{IMAP_ERROR_IO, TRUE},
	};

	for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
		struct peer *p = peer_start("", NULL, NULL);
		struct imap_pool *pool =
			imap_pool_new(peer_account(p), 2, NULL);
		struct calls c = {.code = cases[i].code};
		GError *error = NULL;
		struct imap_session *a, *b;

		imap_pool_open_more(pool, 2);
		a = imap_pool_acquire(pool, NULL, &error);
		b = imap_pool_acquire(pool, NULL, &error);
		g_assert_no_error(error);
		imap_pool_release(pool, a);
		imap_pool_release(pool, b);
		g_assert_true(
			imap_pool_run(pool, NULL, fail_first, &c, &error));
		g_assert_no_error(error);
		g_assert_cmpuint(c.n, ==, 2);
		g_assert_true(c.seen[0] == a || c.seen[0] == b);
		/* (A new session may reuse a freed one's address: the
		 * peer's connection count below is what tells.) */
		if (!cases[i].purges)
			g_assert_true(c.seen[1] == a || c.seen[1] == b);
		imap_pool_free(pool);
		peer_stop(p);
		g_assert_cmpuint(p->connections, ==, cases[i].purges ? 3 : 2);
		peer_assert_done(p);
		peer_free(p);
	}
}

struct throttle_calls {
	unsigned int n;
	unsigned int failures; /* how many calls fail */
	int code;
	const char *text;
};

static gboolean fail_throttled(struct imap_session *session, void *user_data,
			       GError **error)
{
	struct throttle_calls *c = user_data;

	(void)session;
	if (c->n++ < c->failures) {
		g_set_error(error, IMAP_ERROR, c->code, "%s", c->text);
		return FALSE;
	}
	return TRUE;
}

/* A throttled read waits (the suggested time, clamped) and is tried again,
 * at most three more times; a throttled write is never tried again; a
 * throttling BYE leaves the idle sessions alone. */
static void test_throttle_backoff(void)
{
	struct peer *p = peer_start("", NULL, NULL);
	struct imap_pool *pool = imap_pool_new(peer_account(p), 2, NULL);
	struct throttle_calls c = {
		.failures = 3,
		.code = IMAP_ERROR_THROTTLED,
		.text = "Request is throttled. Suggested Backoff Time: 150 "
			"milliseconds"};
	GError *error = NULL;
	gint64 t0 = g_get_monotonic_time();

	g_assert_true(imap_pool_run(pool, NULL, fail_throttled, &c, &error));
	g_assert_no_error(error);
	g_assert_cmpuint(c.n, ==, 4);
	/* It waited: three times the suggested 150 ms at least. */
	g_assert_cmpint(g_get_monotonic_time() - t0, >=, 3 * 150 * 1000);
	/* Bounded: the fifth call is never made. */
	c = (struct throttle_calls){.failures = 100,
				    .code = IMAP_ERROR_THROTTLED,
				    .text = "Suggested Backoff Time: 1 ms"};
	g_assert_false(imap_pool_run(pool, NULL, fail_throttled, &c, &error));
	g_assert_error(error, IMAP_ERROR, IMAP_ERROR_THROTTLED);
	g_clear_error(&error);
	g_assert_cmpuint(c.n, ==, 4);
	/* Never for a non-idempotent request. */
	c = (struct throttle_calls){
		.failures = 1, .code = IMAP_ERROR_THROTTLED, .text = "x"};
	g_assert_false(
		imap_pool_run_once(pool, NULL, fail_throttled, &c, &error));
	g_assert_error(error, IMAP_ERROR, IMAP_ERROR_THROTTLED);
	g_clear_error(&error);
	g_assert_cmpuint(c.n, ==, 1);
	/* A BYE that says [THROTTLED] is waited out like a NO; a plain NO
	 * is not a throttle. */
	c = (struct throttle_calls){
		.failures = 2,
		.code = IMAP_ERROR_BYE,
		.text = "server closed the connection: [THROTTLED] slow down"};
	g_assert_true(imap_pool_run(pool, NULL, fail_throttled, &c, &error));
	g_assert_cmpuint(c.n, ==, 3);
	c = (struct throttle_calls){
		.failures = 1, .code = IMAP_ERROR_NO, .text = "is throttled"};
	g_assert_false(imap_pool_run(pool, NULL, fail_throttled, &c, &error));
	g_clear_error(&error);
	g_assert_cmpuint(c.n, ==, 1);
	imap_pool_free(pool);
	peer_stop(p);
	/* One session served every call: nothing was purged. */
	g_assert_cmpuint(p->connections, ==, 1);
	peer_assert_done(p);
	peer_free(p);
}

static gboolean succeed(struct imap_session *session, void *user_data,
			GError **error)
{
	return TRUE;
}

/* A server that does not answer new connections (the peer stopped
 * accepting) puts the pool offline within the request's deadline; the
 * state says why; a request right after fails at once without trying. */
static void test_offline_when_unreachable(void)
{
	struct peer *p = peer_start("", NULL, NULL);
	struct imap_pool *pool = imap_pool_new(peer_account(p), 2, NULL);
	struct imap_reqctx ctx = {0};
	struct imap_pool_state st;
	GError *error = NULL;
	gint64 t;

	peer_stop(p);
	t = g_get_monotonic_time();
	ctx.deadline = t + 1500 * 1000;
	imap_reqctx_enter(&ctx);
	g_assert_false(imap_pool_run(pool, NULL, succeed, NULL, &error));
	imap_reqctx_leave();
	g_assert_true(imap_error_is_unreachable(error));
	g_clear_error(&error);
	g_assert_cmpint(g_get_monotonic_time() - t, <, 3 * G_USEC_PER_SEC);
	imap_pool_state(pool, &st);
	g_assert_true(st.offline);
	g_assert_nonnull(st.reason);
	g_free(st.reason);
	t = g_get_monotonic_time();
	g_assert_false(imap_pool_run(pool, NULL, succeed, NULL, &error));
	g_assert_error(error, IMAP_ERROR, IMAP_ERROR_OFFLINE);
	g_clear_error(&error);
	g_assert_cmpint(g_get_monotonic_time() - t, <, G_USEC_PER_SEC / 2);
	imap_pool_free(pool);
	peer_free(p);
}

static gboolean time_out_slowly(struct imap_session *session, void *user_data,
				GError **error)
{
	g_usleep(1100 * 1000);
	g_set_error(error, IMAP_ERROR, IMAP_ERROR_TIMEOUT, "injected");
	return FALSE;
}

/* A request that waited and timed out (a silent server) puts the pool
 * offline; a request right after fails at once without trying; the
 * background thread finds the (live) server and the pool is online
 * again. */
static void test_silent_offline_and_back(void)
{
	struct peer *p = peer_start("", NULL, NULL);
	struct imap_pool *pool = imap_pool_new(peer_account(p), 2, NULL);
	struct imap_pool_state st;
	GError *error = NULL;
	gint64 until;

	g_assert_false(
		imap_pool_run(pool, NULL, time_out_slowly, NULL, &error));
	/* The retry finds the pool offline. */
	g_assert_error(error, IMAP_ERROR, IMAP_ERROR_OFFLINE);
	g_clear_error(&error);
	until = g_get_monotonic_time() + 5 * G_USEC_PER_SEC;
	do {
		imap_pool_state(pool, &st);
		g_free(st.reason);
		if (!st.offline)
			break;
		g_usleep(20 * 1000);
	} while (g_get_monotonic_time() < until);
	g_assert_false(st.offline);
	g_assert_true(imap_pool_run(pool, NULL, succeed, NULL, &error));
	g_assert_no_error(error);
	imap_pool_free(pool);
	peer_stop(p);
	peer_free(p);
}

static gboolean flag_set(void *data)
{
	return g_atomic_int_get((gint *)data) != 0;
}

/* Waiting for a free session ends at the request's deadline (not the
 * account's timeout), or at once when the request is interrupted. */
static void test_acquire_deadline_and_interrupt(void)
{
	struct peer *p = peer_start("", NULL, NULL);
	struct imap_pool *pool = imap_pool_new(peer_account(p), 1, NULL);
	struct imap_session *held;
	gint flag = 0;
	struct imap_reqctx ctx = {.interrupted = flag_set, .data = &flag};
	GError *error = NULL;
	gint64 t;

	held = imap_pool_acquire(pool, NULL, &error);
	g_assert_no_error(error);
	t = g_get_monotonic_time();
	ctx.deadline = t + 300 * 1000;
	imap_reqctx_enter(&ctx);
	g_assert_null(imap_pool_acquire(pool, NULL, &error));
	g_assert_error(error, IMAP_ERROR, IMAP_ERROR_TIMEOUT);
	g_clear_error(&error);
	g_assert_cmpint(g_get_monotonic_time() - t, <, 2 * G_USEC_PER_SEC);
	ctx.deadline = g_get_monotonic_time() + 10 * G_USEC_PER_SEC;
	g_atomic_int_set(&flag, 1);
	t = g_get_monotonic_time();
	g_assert_null(imap_pool_acquire(pool, NULL, &error));
	g_assert_error(error, IMAP_ERROR, IMAP_ERROR_CANCELLED);
	g_clear_error(&error);
	g_assert_cmpint(g_get_monotonic_time() - t, <, G_USEC_PER_SEC);
	imap_reqctx_leave();
	imap_pool_release(pool, held);
	imap_pool_free(pool);
	peer_stop(p);
	peer_free(p);
}

/* Which refusals are a connection limit (the pool shrinks) and which are
 * not (bad credentials, a server going down). */
static void test_connection_limit_refusals(void)
{
	static const struct {
		const char *code, *text;
		gboolean limit;
	} cases[] = {
		{"UNAVAILABLE", "Try again later", TRUE},
		{"LIMIT",
		 "Maximum number of connections from user+IP exceeded "
		 "(mail_max_userip_connections=2)",
		 TRUE},
		{"ALERT", "Too many simultaneous connections. (Failure)", TRUE},
		{NULL, "Too many connections", TRUE},
		{"AUTHENTICATIONFAILED", "Authentication failed.", FALSE},
		{NULL, "IMAP server shutting down", FALSE},
		{NULL, NULL, FALSE},
	};

	for (size_t i = 0; i < G_N_ELEMENTS(cases); i++)
		g_assert_cmpint(imap_refusal_is_connection_limit(cases[i].code,
								 cases[i].text),
				==, cases[i].limit);
}

static void count_change(void *user_data)
{
	g_atomic_int_inc((gint *)user_data);
}

/* A listener refused for the limit gets room: the pool's size drops by
 * one (to what it has, minus one), an idle session is closed now or a
 * busy one when given back, never below one; the change hook hears of
 * each drop. */
static void test_make_room(void)
{
	struct peer *p = peer_start("", NULL, NULL);
	struct imap_pool *pool = imap_pool_new(peer_account(p), 4, NULL);
	GError *limit = g_error_new(IMAP_ERROR, IMAP_ERROR_UNAVAILABLE, "full");
	struct imap_session *a, *b;
	struct imap_pool_state st;
	unsigned int count, idle, size;
	gint changes = 0;

	imap_pool_set_change_hook(pool, count_change, &changes);
	imap_pool_open_more(pool, 3);
	imap_pool_stats(pool, &count, &idle, &size);
	g_assert_cmpuint(count, ==, 3);
	imap_pool_make_room(pool, limit);
	imap_pool_stats(pool, &count, &idle, &size);
	g_assert_cmpuint(size, ==, 2);
	g_assert_cmpuint(count, ==, 2);
	g_assert_cmpint(g_atomic_int_get(&changes), ==, 1);
	a = imap_pool_acquire(pool, NULL, NULL);
	b = imap_pool_acquire(pool, NULL, NULL);
	g_assert_nonnull(a);
	g_assert_nonnull(b);
	imap_pool_make_room(pool, limit);
	imap_pool_stats(pool, &count, &idle, &size);
	g_assert_cmpuint(size, ==, 1);
	g_assert_cmpuint(count, ==, 2); /* both borrowed */
	imap_pool_release(pool, a);
	imap_pool_stats(pool, &count, &idle, &size);
	g_assert_cmpuint(count, ==, 1);
	g_assert_cmpuint(idle, ==, 0);
	imap_pool_make_room(pool, limit);
	imap_pool_stats(pool, &count, &idle, &size);
	g_assert_cmpuint(size, ==, 1);
	g_assert_cmpint(g_atomic_int_get(&changes), ==, 2);
	imap_pool_release(pool, b);
	imap_pool_state(pool, &st);
	g_free(st.reason);
	g_assert_cmpuint(st.limit_refusals, ==, 3);
	g_assert_false(st.offline);
	imap_pool_set_change_hook(pool, NULL, NULL);
	g_error_free(limit);
	imap_pool_free(pool);
	peer_stop(p);
	peer_free(p);
}

static void set_max_logins(struct peer *p, unsigned int n)
{
	g_mutex_lock(&p->lock);
	p->max_logins = n;
	g_mutex_unlock(&p->lock);
}

/* Opens sessions (imap_pool_open_more()) until @count exist, within 10 s;
 * returns the pool's size then. */
static unsigned int open_until(struct imap_pool *pool, unsigned int want)
{
	gint64 until = g_get_monotonic_time() + 10 * G_USEC_PER_SEC;
	unsigned int count, idle, size;

	do {
		imap_pool_open_more(pool, want);
		imap_pool_stats(pool, &count, &idle, &size);
		if (count >= want)
			break;
		g_usleep(20 * 1000);
	} while (g_get_monotonic_time() < until);
	g_assert_cmpuint(count, ==, want);
	return size;
}

/* The server's limit shrinks the pool to what it has, never below 1,
 * however many refusals come (the pool's own or for a listener); the size
 * grows back one at a time after the regrow wait, each refusal doubling
 * it, and once the limit is gone the pool gets its whole size again. */
static void test_limit_shrink_and_regrow(void)
{
	struct peer *p = peer_start("", NULL, NULL);
	struct imap_pool *pool = imap_pool_new(peer_account(p), 4, NULL);
	GError *limit = g_error_new(IMAP_ERROR, IMAP_ERROR_UNAVAILABLE, "full");
	struct imap_pool_state st;
	unsigned int count, idle, size, first_wait;
	gint64 until;

	imap_pool_set_limit_retry(pool, 300);
	set_max_logins(p, 2);
	imap_pool_open_more(pool, 4);
	imap_pool_stats(pool, &count, &idle, &size);
	g_assert_cmpuint(count, ==, 2);
	g_assert_cmpuint(size, ==, 2);
	imap_pool_state(pool, &st);
	g_free(st.reason);
	g_assert_cmpuint(st.limit_refusals, ==, 1);
	g_assert_cmpuint(st.size, ==, 2);
	g_assert_cmpuint(st.configured_size, ==, 4);
	g_assert_cmpuint(st.regrow_ms, <=, 300);
	/* It grows back by one and is refused again: back to 2, not below,
	 * and the next try is further out. */
	until = g_get_monotonic_time() + 5 * G_USEC_PER_SEC;
	do {
		g_usleep(20 * 1000);
		imap_pool_open_more(pool, 4);
		imap_pool_state(pool, &st);
		g_free(st.reason);
	} while (st.limit_refusals < 2 && g_get_monotonic_time() < until);
	g_assert_cmpuint(st.limit_refusals, ==, 2);
	g_assert_cmpuint(st.size, ==, 2);
	first_wait = st.regrow_ms;
	g_assert_cmpuint(first_wait, >, 300);
	/* Listeners asking for room: down to 1, never below. */
	for (int i = 0; i < 3; i++)
		imap_pool_make_room(pool, limit);
	imap_pool_stats(pool, &count, &idle, &size);
	g_assert_cmpuint(size, ==, 1);
	g_assert_cmpuint(count, ==, 1);
	imap_pool_state(pool, &st);
	g_free(st.reason);
	g_assert_cmpuint(st.size, ==, 1);
	/* The limit goes away: the pool is whole again (one step per wait;
	 * a connection beyond the old limit shortens the wait again). */
	set_max_logins(p, 0);
	g_assert_cmpuint(open_until(pool, 4), ==, 4);
	imap_pool_state(pool, &st);
	g_free(st.reason);
	g_assert_cmpuint(st.size, ==, 4);
	g_assert_cmpuint(st.regrow_ms, ==, 0);
	g_assert_false(st.offline);
	g_error_free(limit);
	imap_pool_free(pool);
	peer_stop(p);
	peer_free(p);
}

/* A hold of mailbox X (our own DELETE or RENAME of it) waits for a
 * session borrowed for X, and fails with INUSE (no hang) if it does not
 * come back before the request's deadline; once it is back the hold is
 * taken; meanwhile an acquire for X (or below it) waits, one for another
 * mailbox does not; released, X can be had again. */
static void test_hold(void)
{
	struct peer *p = peer_start("UNSELECT", NULL, NULL);
	struct imap_pool *pool = imap_pool_new(peer_account(p), 3, NULL);
	struct imap_reqctx ctx = {0};
	struct imap_session *x, *other;
	GError *error = NULL;
	gint64 t;

	x = imap_pool_acquire(pool, "X", &error);
	g_assert_no_error(error);
	t = g_get_monotonic_time();
	ctx.deadline = t + 300 * 1000;
	imap_reqctx_enter(&ctx);
	g_assert_false(imap_pool_hold(pool, "X", &error));
	imap_reqctx_leave();
	g_assert_error(error, IMAP_ERROR, IMAP_ERROR_INUSE);
	g_clear_error(&error);
	g_assert_cmpint(g_get_monotonic_time() - t, <, 3 * G_USEC_PER_SEC);
	/* A session borrowed for another mailbox is not waited for. */
	other = imap_pool_acquire(pool, "Y", &error);
	g_assert_no_error(error);
	imap_pool_release(pool, x);
	g_assert_true(imap_pool_hold(pool, "X", &error));
	g_assert_no_error(error);
	ctx.deadline = g_get_monotonic_time() + 300 * 1000;
	imap_reqctx_enter(&ctx);
	g_assert_null(imap_pool_acquire(pool, "X.sub", &error));
	g_assert_error(error, IMAP_ERROR, IMAP_ERROR_TIMEOUT);
	g_clear_error(&error);
	x = imap_pool_acquire(pool, "Z", &error);
	g_assert_no_error(error);
	imap_pool_release(pool, x);
	imap_reqctx_leave();
	imap_pool_release_hold(pool, "X");
	x = imap_pool_acquire(pool, "X", &error);
	g_assert_no_error(error);
	imap_pool_release(pool, x);
	imap_pool_release(pool, other);
	imap_pool_free(pool);
	peer_stop(p);
	peer_free(p);
}

/* A listener found the server silent: the pool goes offline (requests
 * fail at once), tells its hook, checks at once and, the server being
 * there, is back online -- and says so. */
static void test_report_unreachable(void)
{
	struct peer *p = peer_start("", NULL, NULL);
	struct imap_pool *pool = imap_pool_new(peer_account(p), 2, NULL);
	GError *silent = g_error_new(IMAP_ERROR, IMAP_ERROR_TIMEOUT, "probe");
	struct imap_pool_state st;
	GError *error = NULL;
	gint changes = 0;
	gint64 t, until;

	imap_pool_set_change_hook(pool, count_change, &changes);
	imap_pool_report_unreachable(pool, silent);
	imap_pool_state(pool, &st);
	g_assert_true(st.offline);
	g_assert_cmpstr(st.reason, ==, "probe");
	g_free(st.reason);
	g_assert_cmpint(g_atomic_int_get(&changes), >=, 1);
	t = g_get_monotonic_time();
	g_assert_null(imap_pool_acquire(pool, NULL, &error));
	g_assert_error(error, IMAP_ERROR, IMAP_ERROR_OFFLINE);
	g_clear_error(&error);
	g_assert_cmpint(g_get_monotonic_time() - t, <, G_USEC_PER_SEC / 2);
	until = g_get_monotonic_time() + 5 * G_USEC_PER_SEC;
	do {
		imap_pool_state(pool, &st);
		g_free(st.reason);
		if (!st.offline)
			break;
		g_usleep(20 * 1000);
	} while (g_get_monotonic_time() < until);
	g_assert_false(st.offline);
	g_assert_cmpint(g_atomic_int_get(&changes), >=, 2);
	imap_pool_set_change_hook(pool, NULL, NULL);
	g_error_free(silent);
	imap_pool_free(pool);
	peer_stop(p);
	peer_free(p);
}

int main(int argc, char **argv)
{
	int ret;

	g_test_init(&argc, &argv, NULL);
	testtls_setup();
	g_test_add_func("/pool/run-once-no-retry", test_run_once_no_retry);
	g_test_add_func("/pool/purge-policy", test_purge_policy);
	g_test_add_func("/pool/throttle-backoff", test_throttle_backoff);
	g_test_add_func("/pool/connection-limit-refusals",
			test_connection_limit_refusals);
	g_test_add_func("/pool/offline-when-unreachable",
			test_offline_when_unreachable);
	g_test_add_func("/pool/silent-offline-and-back",
			test_silent_offline_and_back);
	g_test_add_func("/pool/acquire-deadline-and-interrupt",
			test_acquire_deadline_and_interrupt);
	g_test_add_func("/pool/make-room", test_make_room);
	g_test_add_func("/pool/limit-shrink-and-regrow",
			test_limit_shrink_and_regrow);
	g_test_add_func("/pool/hold", test_hold);
	g_test_add_func("/pool/report-unreachable", test_report_unreachable);
	ret = g_test_run();
	testtls_teardown();
	return ret;
}
