/* transport.h - a byte stream to the server: TCP, then optionally TLS.
 *
 * The transport knows nothing about IMAP. It connects (with a timeout),
 * upgrades to TLS (implicit TLS right after connect, or STARTTLS later --
 * the same call), and moves bytes with a timeout on every wait, each one
 * clamped to the deadline of the request the calling thread serves and
 * interruptible with it (reqctx.h: IMAP_ERROR_CANCELLED).  It never
 * buffers input itself beyond OpenSSL's record buffer, so after STARTTLS
 * the caller only has to drop its own buffer to discard anything a
 * man-in-the-middle injected before the handshake.
 *
 * TLS policy (not configurable downwards): TLS 1.2 minimum, the system
 * trust store plus an optional extra CA file, peer verification required,
 * host name checked by OpenSSL (SSL_set1_host; IP addresses by
 * X509_VERIFY_PARAM_set1_ip_asc), SNI sent for names.
 *
 * Threading: one transport is used by one thread at a time.
 */
#ifndef IMAPFS_IMAP_TRANSPORT_H
#define IMAPFS_IMAP_TRANSPORT_H

#include <glib.h>
#include <stddef.h>
#include <stdint.h>

struct imap_transport;

/* Resolves @host and connects over TCP to the first address that accepts
 * within @timeout_ms in total (the look-up included: resolve.h). Enables
 * TCP keepalive and TCP_NODELAY. Returns NULL with IMAP_ERROR_IO
 * ("connection refused", "name or service not known", ...),
 * IMAP_ERROR_TIMEOUT (also a DNS server that did not answer in time) or
 * IMAP_ERROR_CANCELLED. */
struct imap_transport *imap_transport_connect(const char *host, uint16_t port,
					      int timeout_ms, GError **error);

/* Performs a TLS client handshake on the connected socket and verifies the
 * peer for @host (the name the user gave). @cafile (may be NULL) is a PEM
 * file of extra trusted certificates, used in addition to the system store.
 * On failure returns FALSE with IMAP_ERROR_TLS whose message contains
 * OpenSSL's verification reason, e.g. "certificate verify failed:
 * self-signed certificate in certificate chain", or IMAP_ERROR_TIMEOUT. An
 * unreadable @cafile is IMAP_ERROR_TLS too. Must be called at most once. */
gboolean imap_transport_start_tls(struct imap_transport *transport,
				  const char *host, const char *cafile,
				  int timeout_ms, GError **error);

/* TRUE once imap_transport_start_tls() succeeded. */
gboolean imap_transport_is_tls(const struct imap_transport *transport);

/* Reads up to @size bytes, waiting at most @timeout_ms for the first byte.
 * Returns the count (> 0), or -1 with IMAP_ERROR_IO (including EOF:
 * "connection closed by server") or IMAP_ERROR_TIMEOUT. */
gssize imap_transport_read(struct imap_transport *transport, void *buf,
			   size_t size, int timeout_ms, GError **error);

/* What imap_transport_wait_input() saw. */
enum imap_transport_event {
	IMAP_TRANSPORT_ERROR = -1, /* *error set */
	IMAP_TRANSPORT_QUIET = 0,  /* @timeout_ms passed without input */
	IMAP_TRANSPORT_INPUT = 1,  /* bytes (or EOF/an error) to read */
	IMAP_TRANSPORT_WOKEN = 2,  /* @wake_fd became readable */
};

/* Waits, without reading, until the server sent something (TLS records
 * OpenSSL already holds count), @wake_fd (ignored if < 0; the caller
 * drains it) becomes readable, or @timeout_ms (< 0: forever) passes.
 * Input wins over a wake-up when both are there. For a connection that
 * listens (IDLE, NOTIFY), where silence is not an error. */
enum imap_transport_event
imap_transport_wait_input(struct imap_transport *transport, int wake_fd,
			  int timeout_ms, GError **error);

/* Writes all @size bytes; each wait for the socket to become writable is
 * bounded by @timeout_ms. Returns FALSE with IMAP_ERROR_IO or
 * IMAP_ERROR_TIMEOUT. Never raises SIGPIPE. */
gboolean imap_transport_write_all(struct imap_transport *transport,
				  const void *data, size_t size, int timeout_ms,
				  GError **error);

/* Shuts the socket down (both directions) so that a thread blocked in
 * read/write on it returns promptly with an error. May be called from any
 * thread while another uses the transport; the transport must still be
 * freed by its owner. */
void imap_transport_shutdown(struct imap_transport *transport);

/* Closes the connection (TLS close_notify best-effort, without waiting)
 * and frees everything. NULL is allowed. */
void imap_transport_free(struct imap_transport *transport);

#endif
