/* resolve.h - name resolution within a deadline.
 *
 * getaddrinfo() has no timeout of its own: a resolver that does not answer
 * makes glibc wait resolv.conf's timeout times its attempts for each
 * nameserver (5 s x 2 x N by default, far more with "options timeout:30").
 * A connect must instead fail within the request's deadline (reqctx.h), so
 * a name that is not a numeric address is looked up on a short-lived
 * thread of its own; the caller waits for it until the deadline (polling
 * the interrupt test of its request) and, if it comes first, abandons the
 * look-up: the thread finishes on its own and frees what it found.
 */
#ifndef IMAPFS_IMAP_RESOLVE_H
#define IMAPFS_IMAP_RESOLVE_H

#include <glib.h>
#include <netdb.h>

/* getaddrinfo(@host, @service, @hints) before @deadline (monotonic us,
 * negative: none; clamped to the calling thread's request deadline). A
 * numeric address is converted at once, on the calling thread. Returns
 * the list (free with freeaddrinfo()) or NULL with IMAP_ERROR_IO ("cannot
 * resolve HOST: <gai_strerror>"), IMAP_ERROR_TIMEOUT ("resolving HOST
 * timed out") or IMAP_ERROR_CANCELLED (the request was interrupted). Any
 * thread. */
struct addrinfo *imap_resolve(const char *host, const char *service,
			      const struct addrinfo *hints, gint64 deadline,
			      GError **error);

#endif
