/* transport.c - see transport.h.
 *
 * Every socket is non-blocking and every wait is a poll() bounded by a
 * deadline on the monotonic clock, so no timeout can be lost in a blocking
 * syscall; the name is resolved within the same deadline (resolve.h).
 *
 * SIGPIPE: the daemon must not rely on SIG_IGN, which would be process-wide
 * state owned by someone else.  Plain writes therefore use
 * send(MSG_NOSIGNAL), and TLS goes through our own small BIO whose write
 * also uses send(MSG_NOSIGNAL) instead of OpenSSL's socket BIO (which uses
 * write() and would raise SIGPIPE on a reset connection, e.g. while sending
 * close_notify in imap_transport_free()).
 *
 * A negative timeout means "wait forever"; callers normally pass a bound.
 */
#include "config.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <unistd.h>
#include <arpa/inet.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "imap-error.h"
#include "reqctx.h"
#include "resolve.h"
#include "transport.h"

/* Keepalive: notice a dead peer (NAT timeout, suspended laptop) within
 * about 90 s of silence even when no request is outstanding. */
enum {
	TRANSPORT_KEEPIDLE_S = 60,
	TRANSPORT_KEEPINTVL_S = 10,
	TRANSPORT_KEEPCNT = 3,
};

struct imap_transport {
	int fd;
	SSL_CTX *ctx;
	SSL *ssl;
	gboolean tls; /* handshake completed */
	/* Written by our BIO so that an SSL_ERROR_SYSCALL can be explained
	 * without trusting a stale errno. */
	gboolean eof;
	int sock_errno;
	/* An I/O error happened: no close_notify is attempted on free. */
	gboolean failed;
	/* Set by imap_transport_shutdown() from another thread, read by the
	 * owner to explain the resulting EOF. */
	gint shut_down;
};

/* ---- time ---- */

/* The deadline of one wait of @timeout_ms, never later than the deadline
 * of the request the calling thread serves (reqctx.h): a chain of waits
 * (connect, handshake, login, a retry) shares one bound. */
static gint64 transport_deadline(int timeout_ms)
{
	if (timeout_ms < 0)
		return imap_reqctx_clamp(-1);
	return imap_reqctx_clamp(g_get_monotonic_time() +
				 (gint64)timeout_ms * 1000);
}

/* Milliseconds left until @deadline (rounded up), 0 if passed, -1 if
 * none. */
static int transport_remaining_ms(gint64 deadline)
{
	gint64 left;

	if (deadline < 0)
		return -1;
	left = deadline - g_get_monotonic_time();
	if (left <= 0)
		return 0;
	left = (left + 999) / 1000;
	return left > G_MAXINT ? G_MAXINT : (int)left;
}

/* Waits until @fd reports one of @events (or an error/hangup, which the
 * next I/O call will report in detail). Returns FALSE with
 * IMAP_ERROR_TIMEOUT (message "@what timed out"), IMAP_ERROR_CANCELLED
 * (the request was interrupted) or IMAP_ERROR_IO. */
static gboolean transport_wait(int fd, short events, gint64 deadline,
			       const char *what, GError **error)
{
	for (;;) {
		struct pollfd pfd = {.fd = fd, .events = events};
		int timeout = transport_remaining_ms(deadline);
		int r;

		if (timeout == 0) {
			g_set_error(error, IMAP_ERROR, IMAP_ERROR_TIMEOUT,
				    "%s timed out", what);
			return FALSE;
		}
		if (!imap_reqctx_check(error))
			return FALSE;
		r = poll(&pfd, 1, imap_reqctx_slice_ms(timeout));
		if (r > 0) {
			if (pfd.revents & POLLNVAL) {
				g_set_error(error, IMAP_ERROR, IMAP_ERROR_IO,
					    "%s: socket is closed", what);
				return FALSE;
			}
			return TRUE;
		}
		if (r < 0 && errno != EINTR) {
			int e = errno;

			g_set_error(error, IMAP_ERROR, IMAP_ERROR_IO,
				    "%s: poll: %s", what, g_strerror(e));
			return FALSE;
		}
		/* r == 0 or EINTR: the next round recomputes the time left
		 * and reports the timeout. */
	}
}

/* ---- connect ---- */

static void transport_set_sockopts(int fd)
{
	int one = 1;
	int idle = TRANSPORT_KEEPIDLE_S;
	int intvl = TRANSPORT_KEEPINTVL_S;
	int cnt = TRANSPORT_KEEPCNT;

	/* All best-effort: a socket without them still works. */
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	(void)setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
	(void)setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(idle));
	(void)setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof(intvl));
	(void)setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof(cnt));
}

/* Connects a new non-blocking socket to @ai before @deadline. Returns the
 * fd, or -1 with errno set (ETIMEDOUT when the deadline passed, EINTR when
 * the request was interrupted). */
static int transport_connect_one(const struct addrinfo *ai, gint64 deadline)
{
	int fd, err = 0;
	socklen_t len = sizeof(err);

	fd = socket(ai->ai_family,
		    ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
		    ai->ai_protocol);
	if (fd < 0)
		return -1;
	transport_set_sockopts(fd);
	if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
		return fd;
	if (errno != EINPROGRESS && errno != EINTR) {
		err = errno;
		goto fail;
	}
	for (;;) {
		struct pollfd pfd = {.fd = fd, .events = POLLOUT};
		int timeout = transport_remaining_ms(deadline);
		int r;

		if (timeout == 0) {
			err = ETIMEDOUT;
			goto fail;
		}
		if (!imap_reqctx_check(NULL)) {
			err = EINTR;
			goto fail;
		}
		r = poll(&pfd, 1, imap_reqctx_slice_ms(timeout));
		if (r > 0)
			break;
		if (r < 0 && errno != EINTR) {
			err = errno;
			goto fail;
		}
	}
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
		err = errno;
	if (err == 0)
		return fd;
fail:
	close(fd);
	errno = err;
	return -1;
}

static int transport_count_addrs(const struct addrinfo *ai)
{
	int n = 0;

	for (; ai != NULL; ai = ai->ai_next)
		n++;
	return n;
}

struct imap_transport *imap_transport_connect(const char *host, uint16_t port,
					      int timeout_ms, GError **error)
{
	struct addrinfo hints = {
		.ai_family = AF_UNSPEC,
		.ai_socktype = SOCK_STREAM,
		.ai_protocol = IPPROTO_TCP,
		.ai_flags = AI_NUMERICSERV,
	};
	struct addrinfo *res = NULL, *ai;
	struct imap_transport *t;
	gint64 deadline = transport_deadline(timeout_ms);
	char service[8];
	int fd = -1, last_errno = 0, left;

	g_snprintf(service, sizeof(service), "%u", (unsigned)port);
	res = imap_resolve(host, service, &hints, deadline, error);
	if (res == NULL)
		return NULL;

	/* Each address gets an equal share of the time still left, the last
	 * one all of it: a black-holed first address (typically IPv6 without
	 * a route) must not eat the whole budget of a working second one. */
	left = transport_count_addrs(res);
	for (ai = res; ai != NULL; ai = ai->ai_next, left--) {
		gint64 slot = deadline;
		int ms = transport_remaining_ms(deadline);

		if (ms == 0) {
			last_errno = ETIMEDOUT;
			break;
		}
		if (ms > 0 && left > 1)
			slot = transport_deadline(ms / left);
		fd = transport_connect_one(ai, slot);
		if (fd >= 0)
			break;
		last_errno = errno;
		if (last_errno == EINTR)
			break;
	}
	freeaddrinfo(res);

	if (fd < 0) {
		if (last_errno == EINTR)
			g_set_error(error, IMAP_ERROR, IMAP_ERROR_CANCELLED,
				    "connecting to %s port %u: interrupted",
				    host, (unsigned)port);
		else if (last_errno == ETIMEDOUT)
			g_set_error(error, IMAP_ERROR, IMAP_ERROR_TIMEOUT,
				    "connecting to %s port %u timed out", host,
				    (unsigned)port);
		else
			g_set_error(error, IMAP_ERROR, IMAP_ERROR_IO,
				    "cannot connect to %s port %u: %s", host,
				    (unsigned)port, g_strerror(last_errno));
		return NULL;
	}

	t = g_new0(struct imap_transport, 1);
	t->fd = fd;
	return t;
}

/* ---- our socket BIO ---- */

static int transport_bio_write(BIO *bio, const char *buf, size_t len,
			       size_t *written)
{
	struct imap_transport *t = BIO_get_data(bio);
	ssize_t n;

	BIO_clear_retry_flags(bio);
	do
		n = send(t->fd, buf, len, MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	if (n >= 0) {
		*written = (size_t)n;
		return 1;
	}
	if (errno == EAGAIN || errno == EWOULDBLOCK)
		BIO_set_retry_write(bio);
	else
		t->sock_errno = errno;
	return 0;
}

static int transport_bio_read(BIO *bio, char *buf, size_t len,
			      size_t *readbytes)
{
	struct imap_transport *t = BIO_get_data(bio);
	ssize_t n;

	BIO_clear_retry_flags(bio);
	do
		n = recv(t->fd, buf, len, 0);
	while (n < 0 && errno == EINTR);
	if (n > 0) {
		*readbytes = (size_t)n;
		return 1;
	}
	if (n == 0)
		t->eof = TRUE;
	else if (errno == EAGAIN || errno == EWOULDBLOCK)
		BIO_set_retry_read(bio);
	else
		t->sock_errno = errno;
	return 0;
}

static long transport_bio_ctrl(BIO *bio, int cmd, long num, void *ptr)
{
	struct imap_transport *t = BIO_get_data(bio);

	switch (cmd) {
	case BIO_CTRL_FLUSH:
		return 1; /* we never buffer */
	case BIO_CTRL_EOF:
		/* Lets OpenSSL tell a truncated stream from a retry. */
		return t != NULL && t->eof;
	default:
		return 0;
	}
}

static int transport_bio_create(BIO *bio)
{
	BIO_set_init(bio, 1);
	return 1;
}

/* The method table is created once and never changed afterwards; g_once
 * provides the locking. (BIO_get_new_index() hands out a small, finite set
 * of indices, so one table per connection is not an option.) */
static gpointer transport_bio_method_init(gpointer unused)
{
	BIO_METHOD *m;

	m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK,
			 "imapfs socket");
	if (m == NULL)
		return NULL;
	BIO_meth_set_write_ex(m, transport_bio_write);
	BIO_meth_set_read_ex(m, transport_bio_read);
	BIO_meth_set_ctrl(m, transport_bio_ctrl);
	BIO_meth_set_create(m, transport_bio_create);
	return m;
}

static const BIO_METHOD *transport_bio_method(void)
{
	static GOnce once = G_ONCE_INIT;

	return g_once(&once, transport_bio_method_init, NULL);
}

/* ---- TLS helpers ---- */

/* The reason of the most recent OpenSSL error on this thread, or
 * @fallback. Clears the thread's error queue. */
static const char *transport_ssl_reason(const char *fallback)
{
	unsigned long e = ERR_peek_last_error();
	const char *reason = e != 0 ? ERR_reason_error_string(e) : NULL;

	ERR_clear_error();
	return reason != NULL ? reason : fallback;
}

/* Turns the failure of an SSL_* I/O call (SSL_get_error() == @ssl_err)
 * after the handshake into an IMAP_ERROR_IO. */
static void transport_set_io_error(struct imap_transport *t, int ssl_err,
				   GError **error)
{
	t->failed = TRUE;
	if (g_atomic_int_get(&t->shut_down)) {
		ERR_clear_error();
		g_set_error(error, IMAP_ERROR, IMAP_ERROR_IO,
			    "connection shut down");
	} else if (t->eof || ssl_err == SSL_ERROR_ZERO_RETURN) {
		ERR_clear_error();
		g_set_error(error, IMAP_ERROR, IMAP_ERROR_IO,
			    "connection closed by server");
	} else if (t->sock_errno != 0) {
		ERR_clear_error();
		g_set_error(error, IMAP_ERROR, IMAP_ERROR_IO, "%s",
			    g_strerror(t->sock_errno));
	} else {
		g_set_error(error, IMAP_ERROR, IMAP_ERROR_IO, "TLS error: %s",
			    transport_ssl_reason("unknown error"));
	}
}

static gboolean transport_is_ip_literal(const char *host)
{
	struct in6_addr a6;
	struct in_addr a4;

	return inet_pton(AF_INET, host, &a4) == 1 ||
	       inet_pton(AF_INET6, host, &a6) == 1;
}

static SSL_CTX *transport_new_ctx(const char *cafile, GError **error)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());

	if (ctx == NULL) {
		g_set_error(error, IMAP_ERROR, IMAP_ERROR_TLS,
			    "cannot create TLS context: %s",
			    transport_ssl_reason("out of memory"));
		return NULL;
	}
	if (!SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION))
		goto fail;
	/* A system without a trust store is not fatal by itself: an explicit
	 * cafile may be all that is needed. */
	(void)SSL_CTX_set_default_verify_paths(ctx);
	ERR_clear_error();
	if (cafile != NULL &&
	    !SSL_CTX_load_verify_locations(ctx, cafile, NULL)) {
		int e = errno;
		const char *reason = transport_ssl_reason(NULL);

		/* OpenSSL 3 often only says "system lib" for a missing file:
		 * errno is the more useful part then. */
		if (reason == NULL || strcmp(reason, "system lib") == 0)
			reason = e != 0 ? g_strerror(e) : "unknown error";
		g_set_error(error, IMAP_ERROR, IMAP_ERROR_TLS,
			    "cannot load cafile %s: %s", cafile, reason);
		SSL_CTX_free(ctx);
		return NULL;
	}
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	/* The write loop may retry with a shifted pointer after a partial
	 * write; each SSL_write_ex then sends what fits. */
	SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE |
				      SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	return ctx;
fail:
	g_set_error(error, IMAP_ERROR, IMAP_ERROR_TLS,
		    "cannot configure TLS context: %s",
		    transport_ssl_reason("unknown error"));
	SSL_CTX_free(ctx);
	return NULL;
}

/* Creates t->ssl bound to our BIO with the peer identity set. */
static gboolean transport_new_ssl(struct imap_transport *t, const char *host,
				  GError **error)
{
	BIO *bio;
	const BIO_METHOD *method = transport_bio_method();

	t->ssl = SSL_new(t->ctx);
	if (t->ssl == NULL || method == NULL)
		goto fail;
	bio = BIO_new(method);
	if (bio == NULL)
		goto fail;
	BIO_set_data(bio, t);
	SSL_set_bio(t->ssl, bio, bio); /* t->ssl owns bio now */
	/* Let OpenSSL pull whole socket buffers instead of a header and a
	 * body per record: a big FETCH reply arrives in hundreds of small
	 * records and this halves the syscalls and more. Safe with our
	 * read loop, which always calls SSL_read_ex before polling. */
	SSL_set_read_ahead(t->ssl, 1);
	SSL_set_connect_state(t->ssl);

	if (transport_is_ip_literal(host)) {
		/* RFC 6066: no SNI for literal addresses; check the IP SAN. */
		X509_VERIFY_PARAM *param = SSL_get0_param(t->ssl);

		if (!X509_VERIFY_PARAM_set1_ip_asc(param, host))
			goto fail;
	} else {
		SSL_set_hostflags(t->ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
		if (!SSL_set1_host(t->ssl, host) ||
		    !SSL_set_tlsext_host_name(t->ssl, host))
			goto fail;
	}
	return TRUE;
fail:
	g_set_error(error, IMAP_ERROR, IMAP_ERROR_TLS,
		    "cannot set up TLS for %s: %s", host,
		    transport_ssl_reason("out of memory"));
	return FALSE;
}

static void transport_set_handshake_error(struct imap_transport *t,
					  const char *host, int ssl_err,
					  GError **error)
{
	long verify = SSL_get_verify_result(t->ssl);

	if (verify != X509_V_OK) {
		/* The phrase "certificate verify failed" matches what OpenSSL
		 * itself prints; the reason is what the user can act on. */
		ERR_clear_error();
		g_set_error(error, IMAP_ERROR, IMAP_ERROR_TLS,
			    "TLS handshake with %s failed: certificate verify "
			    "failed: %s",
			    host, X509_verify_cert_error_string(verify));
	} else if (g_atomic_int_get(&t->shut_down)) {
		ERR_clear_error();
		g_set_error(
			error, IMAP_ERROR, IMAP_ERROR_TLS,
			"TLS handshake with %s failed: connection shut down",
			host);
	} else if (ssl_err == SSL_ERROR_SSL) {
		g_set_error(error, IMAP_ERROR, IMAP_ERROR_TLS,
			    "TLS handshake with %s failed: %s", host,
			    transport_ssl_reason("unknown error"));
	} else {
		ERR_clear_error();
		g_set_error(error, IMAP_ERROR, IMAP_ERROR_TLS,
			    "TLS handshake with %s failed: %s", host,
			    t->sock_errno != 0 ? g_strerror(t->sock_errno)
					       : "connection closed by server");
	}
}

gboolean imap_transport_start_tls(struct imap_transport *transport,
				  const char *host, const char *cafile,
				  int timeout_ms, GError **error)
{
	struct imap_transport *t = transport;
	gint64 deadline = transport_deadline(timeout_ms);

	if (t->ssl != NULL) {
		g_set_error(error, IMAP_ERROR, IMAP_ERROR_TLS,
			    "TLS was already started on this connection");
		return FALSE;
	}
	ERR_clear_error();
	t->ctx = transport_new_ctx(cafile, error);
	if (t->ctx == NULL || !transport_new_ssl(t, host, error))
		return FALSE;

	for (;;) {
		int r, err;

		t->eof = FALSE;
		t->sock_errno = 0;
		r = SSL_connect(t->ssl);
		if (r == 1)
			break;
		err = SSL_get_error(t->ssl, r);
		if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) {
			GError *local = NULL;
			char what[300];

			g_snprintf(what, sizeof(what), "TLS handshake with %s",
				   host);
			if (!transport_wait(t->fd,
					    err == SSL_ERROR_WANT_READ
						    ? POLLIN
						    : POLLOUT,
					    deadline, what, &local)) {
				/* A poll failure is still a TLS setup failure
				 * for the caller; a timeout stays a timeout,
				 * an interruption an interruption. */
				if (local->code == IMAP_ERROR_IO)
					local->code = IMAP_ERROR_TLS;
				g_propagate_error(error, local);
				return FALSE;
			}
			continue;
		}
		transport_set_handshake_error(t, host, err, error);
		return FALSE;
	}
	t->tls = TRUE;
	return TRUE;
}

gboolean imap_transport_is_tls(const struct imap_transport *transport)
{
	return transport->tls;
}

/* ---- read / write ---- */

static gssize transport_read_plain(struct imap_transport *t, void *buf,
				   size_t size, gint64 deadline, GError **error)
{
	for (;;) {
		ssize_t n = recv(t->fd, buf, size, 0);

		if (n > 0)
			return n;
		if (n == 0) {
			t->eof = TRUE;
			transport_set_io_error(t, 0, error);
			return -1;
		}
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN && errno != EWOULDBLOCK) {
			t->sock_errno = errno;
			transport_set_io_error(t, 0, error);
			return -1;
		}
		if (!transport_wait(t->fd, POLLIN, deadline, "read", error))
			return -1;
	}
}

static gssize transport_read_tls(struct imap_transport *t, void *buf,
				 size_t size, gint64 deadline, GError **error)
{
	/* SSL_read_ex is tried before any poll: a record already buffered
	 * by OpenSSL (SSL_pending) makes the socket look idle. */
	for (;;) {
		size_t n = 0;
		int err;

		ERR_clear_error();
		t->sock_errno = 0;
		if (SSL_read_ex(t->ssl, buf, size, &n) == 1) {
			size_t more = 0;

			/* Drain records already received (one SSL_read
			 * returns one record) without waiting for more. */
			while (n < size && SSL_has_pending(t->ssl) &&
			       SSL_read_ex(t->ssl, (char *)buf + n, size - n,
					   &more) == 1)
				n += more;
			ERR_clear_error();
			return (gssize)n;
		}
		err = SSL_get_error(t->ssl, 0);
		if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) {
			short ev =
				err == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT;

			if (!transport_wait(t->fd, ev, deadline, "read", error))
				return -1;
			continue;
		}
		transport_set_io_error(t, err, error);
		return -1;
	}
}

gssize imap_transport_read(struct imap_transport *transport, void *buf,
			   size_t size, int timeout_ms, GError **error)
{
	gint64 deadline = transport_deadline(timeout_ms);

	if (size == 0) {
		g_set_error(error, IMAP_ERROR, IMAP_ERROR_INVALID,
			    "read of 0 bytes");
		return -1;
	}
	/* SSL_read_ex takes an int internally in places; keep it sane. */
	if (size > G_MAXINT)
		size = G_MAXINT;
	if (transport->eof) {
		transport_set_io_error(transport, 0, error);
		return -1;
	}
	if (transport->ssl != NULL)
		return transport_read_tls(transport, buf, size, deadline,
					  error);
	return transport_read_plain(transport, buf, size, deadline, error);
}

enum imap_transport_event
imap_transport_wait_input(struct imap_transport *transport, int wake_fd,
			  int timeout_ms, GError **error)
{
	gint64 deadline = transport_deadline(timeout_ms);

	if (transport->eof ||
	    (transport->ssl != NULL && SSL_has_pending(transport->ssl)))
		return IMAP_TRANSPORT_INPUT;
	for (;;) {
		struct pollfd pfd[2] = {
			{.fd = transport->fd, .events = POLLIN},
			{.fd = wake_fd, .events = POLLIN},
		};
		int timeout = transport_remaining_ms(deadline);
		int r;

		if (timeout == 0)
			return IMAP_TRANSPORT_QUIET;
		r = poll(pfd, wake_fd >= 0 ? 2 : 1, timeout);
		if (r > 0) {
			if (pfd[0].revents != 0)
				return IMAP_TRANSPORT_INPUT;
			if (pfd[1].revents != 0)
				return IMAP_TRANSPORT_WOKEN;
		}
		if (r < 0 && errno != EINTR) {
			int e = errno;

			g_set_error(error, IMAP_ERROR, IMAP_ERROR_IO,
				    "poll: %s", g_strerror(e));
			return IMAP_TRANSPORT_ERROR;
		}
	}
}

/* Sends part of @data; returns bytes sent (> 0), 0 if the caller must
 * wait for @events_r, or -1 with @error set. */
static gssize transport_write_some(struct imap_transport *t, const char *data,
				   size_t size, short *events_r, GError **error)
{
	if (t->ssl != NULL) {
		size_t n = 0;
		int err;

		ERR_clear_error();
		t->sock_errno = 0;
		if (SSL_write_ex(t->ssl, data, size, &n) == 1)
			return (gssize)n;
		err = SSL_get_error(t->ssl, 0);
		if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) {
			*events_r =
				err == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT;
			return 0;
		}
		transport_set_io_error(t, err, error);
		return -1;
	}
	for (;;) {
		ssize_t n = send(t->fd, data, size, MSG_NOSIGNAL);

		if (n > 0)
			return n;
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			*events_r = POLLOUT;
			return 0;
		}
		t->sock_errno = n < 0 ? errno : EPIPE;
		transport_set_io_error(t, 0, error);
		return -1;
	}
}

gboolean imap_transport_write_all(struct imap_transport *transport,
				  const void *data, size_t size, int timeout_ms,
				  GError **error)
{
	const char *p = data;

	while (size > 0) {
		/* Bound one call so that SSL_write_ex's int-sized internals
		 * and partial-write bookkeeping stay simple. */
		size_t chunk = MIN(size, (size_t)1 << 20);
		short events = 0;
		gssize n;

		n = transport_write_some(transport, p, chunk, &events, error);
		if (n < 0)
			return FALSE;
		if (n == 0) {
			if (!transport_wait(transport->fd, events,
					    transport_deadline(timeout_ms),
					    "write", error))
				return FALSE;
			continue;
		}
		p += n;
		size -= (size_t)n;
	}
	return TRUE;
}

void imap_transport_shutdown(struct imap_transport *transport)
{
	if (transport == NULL)
		return;
	g_atomic_int_set(&transport->shut_down, 1);
	/* Wakes a poll()/recv() of the owning thread with EOF; the fd stays
	 * open (and its number reserved) until the owner frees it. */
	(void)shutdown(transport->fd, SHUT_RDWR);
}

void imap_transport_free(struct imap_transport *transport)
{
	if (transport == NULL)
		return;
	if (transport->ssl != NULL) {
		/* One non-blocking attempt to send close_notify; the peer's
		 * answer is not awaited. */
		if (transport->tls && !transport->failed &&
		    !g_atomic_int_get(&transport->shut_down))
			(void)SSL_shutdown(transport->ssl);
		ERR_clear_error();
		SSL_free(transport->ssl);
	}
	SSL_CTX_free(transport->ctx);
	close(transport->fd);
	g_free(transport);
}
