/* test_resolve.c - name resolution within a deadline (imap/resolve.c).
 *
 * Names other than "localhost" never reach a real resolver: a stand-in
 * look-up (imap_resolve_set_lookup()) answers as told, or blocks until the
 * test releases it, so the abandon-at-deadline path runs without the
 * network. tests/integration/test_resolve.py checks the same bound with
 * glibc and a DNS server that does not answer.
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <string.h>

#include "imap-error.h"
#include "reqctx.h"
#include "resolve.h"

/* A liveness bound, not a timing assertion: what "at once" must beat. */
#define BOUND_US (10 * G_USEC_PER_SEC)

/* What the stand-in does; all protected by fake_lock. */
static GMutex fake_lock;
static GCond fake_cond;
static unsigned int fake_calls; /* look-ups it was asked for */
static gboolean fake_block;	/* wait until released */
static int fake_rc;		/* its answer: 0, an EAI_* code */
static int fake_errno;		/* errno with EAI_SYSTEM */
static char *fake_host;		/* the last name it was asked */

static int fake_lookup(const char *host, const char *service,
		       const struct addrinfo *hints, struct addrinfo **res)
{
	struct addrinfo numeric = *hints;
	gint64 end;
	int rc, e;

	g_mutex_lock(&fake_lock);
	fake_calls++;
	g_free(fake_host);
	fake_host = g_strdup(host);
	g_cond_broadcast(&fake_cond);
	/* Blocked until released, or for the liveness bound (so that a
	 * caller that does not give up fails its test instead of hanging). */
	end = g_get_monotonic_time() + BOUND_US;
	while (fake_block && g_get_monotonic_time() < end)
		g_cond_wait_until(&fake_cond, &fake_lock, end);
	rc = fake_rc;
	e = fake_errno;
	g_mutex_unlock(&fake_lock);
	if (rc != 0) {
		errno = e;
		return rc;
	}
	/* A real list (freeaddrinfo() frees it): 192.0.2.1, TEST-NET-1. */
	numeric.ai_flags |= AI_NUMERICHOST;
	return getaddrinfo("192.0.2.1", service, &numeric, res);
}

static void fake_reset(int rc, int e, gboolean block)
{
	g_mutex_lock(&fake_lock);
	fake_calls = 0;
	fake_rc = rc;
	fake_errno = e;
	fake_block = block;
	g_clear_pointer(&fake_host, g_free);
	g_mutex_unlock(&fake_lock);
	imap_resolve_set_lookup(fake_lookup);
}

static unsigned int fake_ncalls(void)
{
	unsigned int n;

	g_mutex_lock(&fake_lock);
	n = fake_calls;
	g_mutex_unlock(&fake_lock);
	return n;
}

static void fake_release(void)
{
	g_mutex_lock(&fake_lock);
	fake_block = FALSE;
	g_cond_broadcast(&fake_cond);
	g_mutex_unlock(&fake_lock);
}

/* Every look-up thread ended (and freed what it found), within the
 * liveness bound. */
/* Runs @body in a child process of its own, failed if it is not done
 * within the liveness bound thrice: a wait that never ends (a deadline
 * ignored) fails its test instead of hanging the suite. */
static void in_subprocess(void (*body)(void))
{
	if (g_test_subprocess()) {
		body();
		return;
	}
	g_test_trap_subprocess(NULL, 3 * BOUND_US,
			       G_TEST_SUBPROCESS_INHERIT_STDOUT |
				       G_TEST_SUBPROCESS_INHERIT_STDERR);
	g_test_trap_assert_passed();
}

static void wait_no_pending(void)
{
	gint64 end = g_get_monotonic_time() + BOUND_US;

	while (imap_resolve_pending() > 0 && g_get_monotonic_time() < end)
		g_usleep(1000);
	g_assert_cmpuint(imap_resolve_pending(), ==, 0);
}

static struct addrinfo tcp_hints(int family)
{
	struct addrinfo h;

	memset(&h, 0, sizeof(h));
	h.ai_family = family;
	h.ai_socktype = SOCK_STREAM;
	return h;
}

/* The first address of @res as text, and its port. */
static char *addr_text(const struct addrinfo *res, unsigned int *port_r)
{
	char buf[INET6_ADDRSTRLEN];

	if (res->ai_family == AF_INET) {
		const struct sockaddr_in *sin = (void *)res->ai_addr;

		*port_r = ntohs(sin->sin_port);
		inet_ntop(AF_INET, &sin->sin_addr, buf, sizeof(buf));
	} else {
		const struct sockaddr_in6 *sin6 = (void *)res->ai_addr;

		g_assert_cmpint(res->ai_family, ==, AF_INET6);
		*port_r = ntohs(sin6->sin6_port);
		inet_ntop(AF_INET6, &sin6->sin6_addr, buf, sizeof(buf));
	}
	return g_strdup(buf);
}

static void assert_resolves_to(struct addrinfo *res, const char *addr,
			       unsigned int port)
{
	unsigned int p = 0;
	char *text;

	g_assert_nonnull(res);
	text = addr_text(res, &p);
	g_assert_cmpstr(text, ==, addr);
	g_assert_cmpuint(p, ==, port);
	g_free(text);
	freeaddrinfo(res);
}

/* Numeric addresses (v4, v6) are converted on the calling thread, with
 * no look-up at all, also with a deadline already past. */
static void test_numeric(void)
{
	struct addrinfo h = tcp_hints(AF_UNSPEC);
	GError *err = NULL;
	gint64 past = g_get_monotonic_time() - 1;

	fake_reset(EAI_NONAME, 0, FALSE);
	assert_resolves_to(imap_resolve("127.0.0.1", "993", &h, -1, &err),
			   "127.0.0.1", 993);
	g_assert_no_error(err);
	assert_resolves_to(imap_resolve("::1", "143", &h, past, &err), "::1",
			   143);
	g_assert_no_error(err);
	assert_resolves_to(imap_resolve("2001:db8::7", "1", &h, past, &err),
			   "2001:db8::7", 1);
	g_assert_no_error(err);
	g_assert_cmpuint(fake_ncalls(), ==, 0);
	g_assert_cmpuint(imap_resolve_pending(), ==, 0);
	/* An address of another family than asked for: refused at once,
	 * by the numeric conversion (no look-up either). */
	h = tcp_hints(AF_INET);
	g_assert_null(imap_resolve("::1", "143", &h, -1, &err));
	g_assert_error(err, IMAP_ERROR, IMAP_ERROR_IO);
	g_assert_true(g_str_has_prefix(err->message, "cannot resolve ::1: "));
	g_clear_error(&err);
	g_assert_cmpuint(fake_ncalls(), ==, 0);
	g_assert_cmpuint(imap_resolve_pending(), ==, 0);
	fake_release();
}

/* "localhost" through the real getaddrinfo (/etc/hosts or the resolver's
 * own answer; no network): a loopback address. */
static void test_localhost(void)
{
	struct addrinfo h = tcp_hints(AF_UNSPEC);
	GError *err = NULL;
	struct addrinfo *res;
	unsigned int port = 0;
	char *text;

	imap_resolve_set_lookup(NULL);
	res = imap_resolve("localhost", "993", &h,
			   g_get_monotonic_time() + BOUND_US, &err);
	g_assert_no_error(err);
	g_assert_nonnull(res);
	text = addr_text(res, &port);
	g_assert_true(g_str_has_prefix(text, "127.") ||
		      strcmp(text, "::1") == 0);
	g_assert_cmpuint(port, ==, 993);
	g_free(text);
	freeaddrinfo(res);
	wait_no_pending();
}

/* A name found on the look-up's thread comes back to the caller, with a
 * deadline or without. */
static void test_name_found(void)
{
	struct addrinfo h = tcp_hints(AF_UNSPEC);
	GError *err = NULL;

	fake_reset(0, 0, FALSE);
	assert_resolves_to(
		imap_resolve("mail.example.test", "993", &h, -1, &err),
		"192.0.2.1", 993);
	g_assert_no_error(err);
	assert_resolves_to(imap_resolve("mail.example.test", "143", &h,
					g_get_monotonic_time() + BOUND_US,
					&err),
			   "192.0.2.1", 143);
	g_assert_no_error(err);
	g_assert_cmpuint(fake_ncalls(), ==, 2);
	wait_no_pending();
}

/* A name that does not exist: IMAP_ERROR_IO, "cannot resolve HOST: "
 * and the resolver's text (gai_strerror, or strerror for EAI_SYSTEM). */
static void test_no_such_name(void)
{
	struct addrinfo h = tcp_hints(AF_UNSPEC);
	GError *err = NULL;
	char *want;

	fake_reset(EAI_NONAME, 0, FALSE);
	g_assert_null(
		imap_resolve("no-such-host.invalid", "993", &h, -1, &err));
	g_assert_error(err, IMAP_ERROR, IMAP_ERROR_IO);
	want = g_strdup_printf("cannot resolve no-such-host.invalid: %s",
			       gai_strerror(EAI_NONAME));
	g_assert_cmpstr(err->message, ==, want);
	g_free(want);
	g_clear_error(&err);
	g_mutex_lock(&fake_lock);
	g_assert_cmpstr(fake_host, ==, "no-such-host.invalid");
	g_mutex_unlock(&fake_lock);

	fake_reset(EAI_SYSTEM, ENETUNREACH, FALSE);
	g_assert_null(imap_resolve("mail.example.test", "993", &h,
				   g_get_monotonic_time() + BOUND_US, &err));
	g_assert_error(err, IMAP_ERROR, IMAP_ERROR_IO);
	want = g_strdup_printf("cannot resolve mail.example.test: %s",
			       g_strerror(ENETUNREACH));
	g_assert_cmpstr(err->message, ==, want);
	g_free(want);
	g_clear_error(&err);
	wait_no_pending();
}

/* A deadline already past: IMAP_ERROR_TIMEOUT at once, and no look-up
 * started. */
static void test_deadline_past_body(void)
{
	struct addrinfo h = tcp_hints(AF_UNSPEC);
	GError *err = NULL;

	fake_reset(0, 0, TRUE);
	g_assert_null(imap_resolve("mail.example.test", "993", &h,
				   g_get_monotonic_time() - 1, &err));
	g_assert_error(err, IMAP_ERROR, IMAP_ERROR_TIMEOUT);
	g_assert_nonnull(strstr(err->message, "resolving mail.example.test "
					      "timed out"));
	g_clear_error(&err);
	g_assert_cmpuint(fake_ncalls(), ==, 0);
	g_assert_cmpuint(imap_resolve_pending(), ==, 0);
	fake_release();
}

static void test_deadline_past(void)
{
	in_subprocess(test_deadline_past_body);
}

/* A resolver that does not answer: the caller gets IMAP_ERROR_TIMEOUT
 * at its deadline (the look-up still blocked), and the abandoned look-up
 * ends on its own once it returns, freeing what it found. */
static void test_abandon_at_deadline_body(void)
{
	struct addrinfo h = tcp_hints(AF_UNSPEC);
	GError *err = NULL;
	gint64 start = g_get_monotonic_time();

	fake_reset(0, 0, TRUE);
	g_assert_null(imap_resolve("mail.example.test", "993", &h,
				   start + 50 * 1000, &err));
	g_assert_error(err, IMAP_ERROR, IMAP_ERROR_TIMEOUT);
	g_assert_cmpstr(err->message, ==,
			"resolving mail.example.test timed out (no answer "
			"from the DNS server)");
	g_clear_error(&err);
	g_assert_cmpint(g_get_monotonic_time() - start, <, BOUND_US);
	g_assert_cmpuint(fake_ncalls(), ==, 1);
	/* Still blocked in its look-up, after the caller gave up. */
	g_assert_cmpuint(imap_resolve_pending(), ==, 1);
	fake_release();
	wait_no_pending();
}

static void test_abandon_at_deadline(void)
{
	in_subprocess(test_abandon_at_deadline_body);
}

static gboolean interrupted_yes(void *data)
{
	(void)data;
	return TRUE;
}

/* An interrupted request (FUSE_INTERRUPT) stops waiting for the look-up
 * with IMAP_ERROR_CANCELLED; the request's deadline bounds a wait that
 * has none of its own. */
static void test_request_context_body(void)
{
	struct addrinfo h = tcp_hints(AF_UNSPEC);
	struct imap_reqctx ctx = {.interrupted = interrupted_yes};
	GError *err = NULL;

	fake_reset(0, 0, TRUE);
	imap_reqctx_enter(&ctx);
	g_assert_null(imap_resolve("mail.example.test", "993", &h, -1, &err));
	imap_reqctx_leave();
	g_assert_error(err, IMAP_ERROR, IMAP_ERROR_CANCELLED);
	g_clear_error(&err);

	ctx.interrupted = NULL;
	ctx.deadline = g_get_monotonic_time() + 50 * 1000;
	imap_reqctx_enter(&ctx);
	g_assert_null(imap_resolve("mail.example.test", "993", &h, -1, &err));
	imap_reqctx_leave();
	g_assert_error(err, IMAP_ERROR, IMAP_ERROR_TIMEOUT);
	g_clear_error(&err);
	fake_release();
	wait_no_pending();
}

static void test_request_context(void)
{
	in_subprocess(test_request_context_body);
}

int main(int argc, char **argv)
{
	int rc;

	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/resolve/numeric", test_numeric);
	g_test_add_func("/resolve/localhost", test_localhost);
	g_test_add_func("/resolve/name-found", test_name_found);
	g_test_add_func("/resolve/no-such-name", test_no_such_name);
	g_test_add_func("/resolve/deadline-past", test_deadline_past);
	g_test_add_func("/resolve/abandon-at-deadline",
			test_abandon_at_deadline);
	g_test_add_func("/resolve/request-context", test_request_context);
	rc = g_test_run();
	imap_resolve_set_lookup(NULL);
	g_free(fake_host);
	return rc;
}
