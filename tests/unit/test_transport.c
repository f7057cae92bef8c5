/* test_transport.c - imap/transport.c against a local TLS server.
 *
 * Certificates come from testtls.h; a one-connection server runs in a
 * GThread on 127.0.0.1 with an ephemeral port.  Nothing leaves the
 * machine.
 */
#include "config.h"

#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <arpa/inet.h>

#include <glib.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "imap-error.h"
#include "testtls.h"
#include "transport.h"

/* Generous bound for "returns promptly" on a loaded CI machine. */
#define PROMPT_US (2 * G_USEC_PER_SEC)

/* ---- the server ---- */

enum server_mode {
	SERVER_ECHO,	     /* echo bytes until EOF */
	SERVER_SILENT,	     /* say nothing, wait for EOF */
	SERVER_CLOSE,	     /* close right after the handshake */
	SERVER_NO_HANDSHAKE, /* accept TCP, never speak TLS, wait for EOF */
	SERVER_GREET,	     /* send "abc" in one record, wait for EOF */
	SERVER_DROP,	     /* close without close_notify */
};

struct server {
	int listen_fd;
	uint16_t port;
	SSL_CTX *ctx; /* NULL: plain TCP */
	enum server_mode mode;
	GThread *thread;
	/* Results, read after g_thread_join(). */
	gboolean handshake_ok;
	char sni[256];
};

static int server_sni_cb(SSL *ssl, int *alert, void *arg)
{
	struct server *s = arg;
	const char *name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);

	g_strlcpy(s->sni, name != NULL ? name : "", sizeof(s->sni));
	return SSL_TLSEXT_ERR_OK;
}

/* Waits for the client's EOF (or an error) on @fd, at most 10 s. */
static void server_wait_eof(int fd)
{
	struct pollfd pfd = {.fd = fd, .events = POLLIN};
	char buf[256];

	while (poll(&pfd, 1, 10000) > 0 && recv(fd, buf, sizeof(buf), 0) > 0)
		;
}

static gpointer server_thread(gpointer data)
{
	struct server *s = data;
	struct pollfd pfd = {.fd = s->listen_fd, .events = POLLIN};
	sigset_t set;
	SSL *ssl = NULL;
	int fd;

	/* SIGPIPE is thread-directed; blocking it here keeps the test's own
	 * server from killing the process, while the client under test (main
	 * thread) keeps the default disposition. */
	sigemptyset(&set);
	sigaddset(&set, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &set, NULL);

	if (poll(&pfd, 1, 10000) != 1)
		return NULL;
	fd = accept(s->listen_fd, NULL, NULL);
	if (fd < 0)
		return NULL;
	if (s->mode == SERVER_NO_HANDSHAKE || s->ctx == NULL) {
		if (s->mode == SERVER_ECHO) {
			char buf[256];
			ssize_t n;

			while ((n = recv(fd, buf, sizeof(buf), 0)) > 0)
				if (send(fd, buf, (size_t)n, 0) != n)
					break;
		} else if (s->mode != SERVER_CLOSE) {
			server_wait_eof(fd);
		}
		close(fd);
		return NULL;
	}

	ssl = SSL_new(s->ctx);
	SSL_set_fd(ssl, fd);
	if (SSL_accept(ssl) == 1) {
		s->handshake_ok = TRUE;
		if (s->mode == SERVER_ECHO) {
			char buf[256];
			size_t n;

			while (SSL_read_ex(ssl, buf, sizeof(buf), &n) == 1)
				if (SSL_write_ex(ssl, buf, n, &n) != 1)
					break;
		} else if (s->mode == SERVER_SILENT ||
			   s->mode == SERVER_GREET) {
			char buf[256];
			size_t n;

			if (s->mode == SERVER_GREET)
				SSL_write_ex(ssl, "abc", 3, &n);
			while (SSL_read_ex(ssl, buf, sizeof(buf), &n) == 1)
				;
		} else if (s->mode == SERVER_CLOSE) {
			SSL_shutdown(ssl);
		}
	}
	ERR_clear_error();
	SSL_free(ssl);
	close(fd);
	return NULL;
}

/* Starts a server whose certificate has @san (NULL: plain TCP). */
static struct server *server_start(const char *san, enum server_mode mode)
{
	struct server *s = g_new0(struct server, 1);

	s->listen_fd = testtls_listen(&s->port);
	s->mode = mode;
	if (san != NULL) {
		s->ctx = testtls_server_ctx(san);
		SSL_CTX_set_tlsext_servername_callback(s->ctx, server_sni_cb);
		SSL_CTX_set_tlsext_servername_arg(s->ctx, s);
	}
	s->thread = g_thread_new("tls-server", server_thread, s);
	return s;
}

static void server_stop(struct server *s)
{
	g_thread_join(s->thread);
	close(s->listen_fd);
	SSL_CTX_free(s->ctx);
	g_free(s);
}

static struct imap_transport *connect_local(uint16_t port)
{
	GError *error = NULL;
	struct imap_transport *t;

	t = imap_transport_connect("127.0.0.1", port, 5000, &error);
	g_assert_no_error(error);
	g_assert_nonnull(t);
	g_assert_false(imap_transport_is_tls(t));
	return t;
}

/* ---- tests ---- */

static void test_tls_ok_ip(void)
{
	struct server *s = server_start("IP:127.0.0.1", SERVER_CLOSE);
	struct imap_transport *t = connect_local(s->port);
	GError *error = NULL;

	g_assert_true(imap_transport_start_tls(
		t, "127.0.0.1", testtls_ca_path(), 5000, &error));
	g_assert_no_error(error);
	g_assert_true(imap_transport_is_tls(t));
	imap_transport_free(t);
	server_stop(s);
}

static void test_tls_ok_name_sni(void)
{
	struct server *s = server_start("DNS:imap.test", SERVER_ECHO);
	struct imap_transport *t = connect_local(s->port);
	GError *error = NULL;
	char buf[16];
	gssize n;

	g_assert_true(imap_transport_start_tls(
		t, "imap.test", testtls_ca_path(), 5000, &error));
	g_assert_no_error(error);
	/* One round trip makes sure the server has recorded SNI. */
	g_assert_true(imap_transport_write_all(t, "x", 1, 5000, &error));
	n = imap_transport_read(t, buf, sizeof(buf), 5000, &error);
	g_assert_no_error(error);
	g_assert_cmpint(n, ==, 1);
	imap_transport_free(t);
	g_thread_join(s->thread);
	g_assert_cmpstr(s->sni, ==, "imap.test");
	close(s->listen_fd);
	SSL_CTX_free(s->ctx);
	g_free(s);
}

static void test_no_sni_for_ip(void)
{
	struct server *s = server_start("IP:127.0.0.1", SERVER_ECHO);
	struct imap_transport *t = connect_local(s->port);
	GError *error = NULL;
	char buf[4];

	g_assert_true(imap_transport_start_tls(
		t, "127.0.0.1", testtls_ca_path(), 5000, &error));
	g_assert_true(imap_transport_write_all(t, "y", 1, 5000, &error));
	g_assert_cmpint(imap_transport_read(t, buf, sizeof(buf), 5000, &error),
			==, 1);
	g_assert_no_error(error);
	imap_transport_free(t);
	g_thread_join(s->thread);
	g_assert_cmpstr(s->sni, ==, "");
	close(s->listen_fd);
	SSL_CTX_free(s->ctx);
	g_free(s);
}

/* Verification failures: the message must carry OpenSSL's reason. */
static const struct verify_case {
	const char *san;
	const char *host;
	gboolean with_cafile;
	const char *reason;
} verify_cases[] = {
	{"IP:127.0.0.1", "127.0.0.1", FALSE,
	 "self-signed certificate in certificate chain"},
	{"DNS:wrong.example", "127.0.0.1", TRUE, "IP address mismatch"},
	{"DNS:wrong.example", "imap.test", TRUE, "hostname mismatch"},
	/* A wildcard covers exactly one label. */
	{"DNS:*.example", "a.b.example", TRUE, "hostname mismatch"},
	{"IP:127.0.0.2", "127.0.0.1", TRUE, "IP address mismatch"},
};

static void test_verify_failures(void)
{
	for (size_t i = 0; i < G_N_ELEMENTS(verify_cases); i++) {
		const struct verify_case *c = &verify_cases[i];
		struct server *s = server_start(c->san, SERVER_SILENT);
		struct imap_transport *t = connect_local(s->port);
		GError *error = NULL;

		g_test_message("case %zu: %s for %s", i, c->san, c->host);
		g_assert_false(imap_transport_start_tls(
			t, c->host, c->with_cafile ? testtls_ca_path() : NULL,
			5000, &error));
		g_assert_error(error, IMAP_ERROR, IMAP_ERROR_TLS);
		g_test_message("-> %s", error->message);
		g_assert_nonnull(strstr(error->message, c->reason));
		g_assert_nonnull(
			strstr(error->message, "certificate verify failed"));
		g_assert_false(imap_transport_is_tls(t));
		g_error_free(error);
		imap_transport_free(t);
		server_stop(s);
	}
}

static void test_bad_cafile(void)
{
	struct server *s = server_start("IP:127.0.0.1", SERVER_SILENT);
	struct imap_transport *t = connect_local(s->port);
	GError *error = NULL;

	g_assert_false(imap_transport_start_tls(
		t, "127.0.0.1", "/nonexistent/ca.pem", 5000, &error));
	g_assert_error(error, IMAP_ERROR, IMAP_ERROR_TLS);
	g_assert_nonnull(strstr(error->message,
				"cannot load cafile /nonexistent/ca.pem"));
	g_error_free(error);
	imap_transport_free(t);
	server_stop(s);
}

static void check_round_trip(struct imap_transport *t)
{
	static const char msg[] = "a001 NOOP\r\n";
	GError *error = NULL;
	char buf[64];
	size_t got = 0;

	g_assert_true(
		imap_transport_write_all(t, msg, strlen(msg), 5000, &error));
	g_assert_no_error(error);
	while (got < strlen(msg)) {
		gssize n = imap_transport_read(t, buf + got, sizeof(buf) - got,
					       5000, &error);

		g_assert_no_error(error);
		g_assert_cmpint(n, >, 0);
		got += (size_t)n;
	}
	g_assert_cmpmem(buf, got, msg, strlen(msg));
}

static void test_round_trip_tls(void)
{
	struct server *s = server_start("IP:127.0.0.1", SERVER_ECHO);
	struct imap_transport *t = connect_local(s->port);
	GError *error = NULL;

	g_assert_true(imap_transport_start_tls(
		t, "127.0.0.1", testtls_ca_path(), 5000, &error));
	check_round_trip(t);
	/* A large write exercises partial writes and WANT_WRITE. */
	{
		size_t size = 4 << 20, got = 0;
		char *big = g_malloc(size), *back = g_malloc(size);

		for (size_t i = 0; i < size; i++)
			big[i] = (char)(i * 7);
		/* The echo server answers while we write; slices small
		 * enough for the socket buffers keep both sides moving. */
		for (size_t off = 0; off < size; off += 65536) {
			g_assert_true(imap_transport_write_all(
				t, big + off, 65536, 5000, &error));
			for (size_t want = off + 65536; got < want;) {
				gssize n = imap_transport_read(t, back + got,
							       want - got, 5000,
							       &error);

				g_assert_no_error(error);
				g_assert_cmpint(n, >, 0);
				got += (size_t)n;
			}
		}
		g_assert_cmpmem(big, size, back, got);
		g_free(big);
		g_free(back);
	}
	imap_transport_free(t);
	server_stop(s);
}

static void test_round_trip_plain(void)
{
	struct server *s = server_start(NULL, SERVER_ECHO);
	struct imap_transport *t = connect_local(s->port);

	check_round_trip(t);
	imap_transport_free(t);
	server_stop(s);
}

static void test_read_timeout(void)
{
	struct server *s = server_start("IP:127.0.0.1", SERVER_SILENT);
	struct imap_transport *t = connect_local(s->port);
	GError *error = NULL;
	char buf[16];
	gint64 start, elapsed;

	g_assert_true(imap_transport_start_tls(
		t, "127.0.0.1", testtls_ca_path(), 5000, &error));
	start = g_get_monotonic_time();
	g_assert_cmpint(imap_transport_read(t, buf, sizeof(buf), 200, &error),
			==, -1);
	elapsed = g_get_monotonic_time() - start;
	g_assert_error(error, IMAP_ERROR, IMAP_ERROR_TIMEOUT);
	g_assert_cmpint(elapsed, >=, 190 * 1000);
	g_assert_cmpint(elapsed, <, PROMPT_US);
	g_error_free(error);
	imap_transport_free(t);
	server_stop(s);
}

/* Bytes OpenSSL already decrypted are returned without waiting on the
 * (idle) socket: with a zero timeout, a poll-first read would time out. */
static void test_buffered_record(void)
{
	struct server *s = server_start("IP:127.0.0.1", SERVER_GREET);
	struct imap_transport *t = connect_local(s->port);
	GError *error = NULL;
	char c = 0;

	g_assert_true(imap_transport_start_tls(
		t, "127.0.0.1", testtls_ca_path(), 5000, &error));
	g_assert_cmpint(imap_transport_read(t, &c, 1, 5000, &error), ==, 1);
	g_assert_cmpint(c, ==, 'a');
	g_assert_cmpint(imap_transport_read(t, &c, 1, 0, &error), ==, 1);
	g_assert_no_error(error);
	g_assert_cmpint(c, ==, 'b');
	g_assert_cmpint(imap_transport_read(t, &c, 1, 0, &error), ==, 1);
	g_assert_cmpint(c, ==, 'c');
	g_assert_cmpint(imap_transport_read(t, &c, 1, 0, &error), ==, -1);
	g_assert_error(error, IMAP_ERROR, IMAP_ERROR_TIMEOUT);
	g_error_free(error);
	imap_transport_free(t);
	server_stop(s);
}

static void test_handshake_timeout(void)
{
	struct server *s = server_start(NULL, SERVER_NO_HANDSHAKE);
	struct imap_transport *t = connect_local(s->port);
	GError *error = NULL;
	gint64 start = g_get_monotonic_time(), elapsed;

	g_assert_false(imap_transport_start_tls(
		t, "127.0.0.1", testtls_ca_path(), 200, &error));
	elapsed = g_get_monotonic_time() - start;
	g_assert_error(error, IMAP_ERROR, IMAP_ERROR_TIMEOUT);
	g_assert_cmpint(elapsed, <, PROMPT_US);
	g_error_free(error);
	imap_transport_free(t);
	server_stop(s);
}

static void check_eof(struct imap_transport *t)
{
	GError *error = NULL;
	char buf[16];

	g_assert_cmpint(imap_transport_read(t, buf, sizeof(buf), 5000, &error),
			==, -1);
	g_assert_error(error, IMAP_ERROR, IMAP_ERROR_IO);
	g_assert_cmpstr(error->message, ==, "connection closed by server");
	g_error_free(error);
}

static void test_eof(void)
{
	struct server *s = server_start("IP:127.0.0.1", SERVER_CLOSE);
	struct imap_transport *t = connect_local(s->port);
	GError *error = NULL;

	g_assert_true(imap_transport_start_tls(
		t, "127.0.0.1", testtls_ca_path(), 5000, &error));
	check_eof(t);
	check_eof(t); /* and it stays that way */
	imap_transport_free(t);
	server_stop(s);

	/* A truncated stream (no close_notify) reads as EOF too. */
	s = server_start("IP:127.0.0.1", SERVER_DROP);
	t = connect_local(s->port);
	g_assert_true(imap_transport_start_tls(
		t, "127.0.0.1", testtls_ca_path(), 5000, &error));
	check_eof(t);
	imap_transport_free(t);
	server_stop(s);

	s = server_start(NULL, SERVER_CLOSE);
	t = connect_local(s->port);
	check_eof(t);
	imap_transport_free(t);
	server_stop(s);
}

/* Writing into a connection the server has closed must fail with an error,
 * not kill the process with SIGPIPE (the main thread has the default
 * disposition). */
static void test_no_sigpipe(void)
{
	gboolean tls_modes[] = {TRUE, FALSE};

	for (size_t m = 0; m < G_N_ELEMENTS(tls_modes); m++) {
		struct server *s = server_start(
			tls_modes[m] ? "IP:127.0.0.1" : NULL, SERVER_CLOSE);
		struct imap_transport *t = connect_local(s->port);
		GError *error = NULL;
		gboolean ok = TRUE;
		char buf[16];

		if (tls_modes[m])
			g_assert_true(imap_transport_start_tls(
				t, "127.0.0.1", testtls_ca_path(), 5000,
				&error));
		/* Wait until the server is gone. */
		g_assert_cmpint(
			imap_transport_read(t, buf, sizeof(buf), 5000, &error),
			==, -1);
		g_clear_error(&error);
		server_stop(s);
		for (int i = 0; i < 100 && ok; i++) {
			ok = imap_transport_write_all(t, "data\r\n", 6, 1000,
						      &error);
			if (ok)
				g_usleep(10000);
		}
		g_assert_false(ok);
		g_assert_error(error, IMAP_ERROR, IMAP_ERROR_IO);
		g_error_free(error);
		imap_transport_free(t);
	}
}

static void test_connect_refused(void)
{
	struct sockaddr_in sin = {.sin_family = AF_INET};
	socklen_t len = sizeof(sin);
	GError *error = NULL;
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	uint16_t port;

	/* Reserve an ephemeral port, then free it: nobody listens there. */
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	g_assert_cmpint(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), ==, 0);
	g_assert_cmpint(getsockname(fd, (struct sockaddr *)&sin, &len), ==, 0);
	port = ntohs(sin.sin_port);
	close(fd);

	g_assert_null(imap_transport_connect("127.0.0.1", port, 2000, &error));
	g_assert_error(error, IMAP_ERROR, IMAP_ERROR_IO);
	g_assert_nonnull(strstr(error->message, "refused"));
	g_error_free(error);
}

static void test_connect_bad_name(void)
{
	GError *error = NULL;

	/* A syntactically impossible name fails inside getaddrinfo without
	 * any DNS traffic. */
	g_assert_null(imap_transport_connect("bad..name..", 993, 2000, &error));
	g_assert_error(error, IMAP_ERROR, IMAP_ERROR_IO);
	g_assert_nonnull(strstr(error->message, "cannot resolve bad..name.."));
	g_error_free(error);
}

struct shutdown_ctx {
	struct imap_transport *t;
};

static gpointer shutdown_thread(gpointer data)
{
	struct shutdown_ctx *c = data;

	g_usleep(100 * 1000);
	imap_transport_shutdown(c->t);
	return NULL;
}

static void test_shutdown_unblocks(void)
{
	gboolean tls_modes[] = {TRUE, FALSE};

	for (size_t m = 0; m < G_N_ELEMENTS(tls_modes); m++) {
		struct server *s = server_start(
			tls_modes[m] ? "IP:127.0.0.1" : NULL, SERVER_SILENT);
		struct shutdown_ctx c = {connect_local(s->port)};
		GError *error = NULL;
		GThread *thread;
		gint64 start, elapsed;
		char buf[16];

		if (tls_modes[m])
			g_assert_true(imap_transport_start_tls(
				c.t, "127.0.0.1", testtls_ca_path(), 5000,
				&error));
		start = g_get_monotonic_time();
		thread = g_thread_new("shutdown", shutdown_thread, &c);
		g_assert_cmpint(imap_transport_read(c.t, buf, sizeof(buf),
						    10000, &error),
				==, -1);
		elapsed = g_get_monotonic_time() - start;
		g_thread_join(thread);
		g_assert_error(error, IMAP_ERROR, IMAP_ERROR_IO);
		g_assert_cmpint(elapsed, <, PROMPT_US);
		g_error_free(error);
		imap_transport_free(c.t);
		server_stop(s);
	}
}

static void test_start_tls_twice(void)
{
	struct server *s = server_start("IP:127.0.0.1", SERVER_SILENT);
	struct imap_transport *t = connect_local(s->port);
	GError *error = NULL;

	g_assert_true(imap_transport_start_tls(
		t, "127.0.0.1", testtls_ca_path(), 5000, &error));
	g_assert_false(imap_transport_start_tls(
		t, "127.0.0.1", testtls_ca_path(), 5000, &error));
	g_assert_error(error, IMAP_ERROR, IMAP_ERROR_TLS);
	g_error_free(error);
	imap_transport_free(t);
	server_stop(s);
}

int main(int argc, char **argv)
{
	int ret;

	g_test_init(&argc, &argv, NULL);
	testtls_setup();
	g_test_add_func("/transport/tls-ok-ip", test_tls_ok_ip);
	g_test_add_func("/transport/tls-ok-name-sni", test_tls_ok_name_sni);
	g_test_add_func("/transport/no-sni-for-ip", test_no_sni_for_ip);
	g_test_add_func("/transport/verify-failures", test_verify_failures);
	g_test_add_func("/transport/bad-cafile", test_bad_cafile);
	g_test_add_func("/transport/round-trip-tls", test_round_trip_tls);
	g_test_add_func("/transport/round-trip-plain", test_round_trip_plain);
	g_test_add_func("/transport/read-timeout", test_read_timeout);
	g_test_add_func("/transport/buffered-record", test_buffered_record);
	g_test_add_func("/transport/handshake-timeout", test_handshake_timeout);
	g_test_add_func("/transport/eof", test_eof);
	g_test_add_func("/transport/no-sigpipe", test_no_sigpipe);
	g_test_add_func("/transport/connect-refused", test_connect_refused);
	g_test_add_func("/transport/connect-bad-name", test_connect_bad_name);
	g_test_add_func("/transport/shutdown-unblocks", test_shutdown_unblocks);
	g_test_add_func("/transport/start-tls-twice", test_start_tls_twice);
	ret = g_test_run();
	testtls_teardown();
	return ret;
}
