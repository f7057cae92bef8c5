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
 * numeric address is converted at once, on the calling thread, whatever
 * the deadline; for a name, a deadline already past fails at once without
 * a look-up. Returns
 * the list (free with freeaddrinfo()) or NULL with IMAP_ERROR_IO ("cannot
 * resolve HOST: <gai_strerror>"), IMAP_ERROR_TIMEOUT ("resolving HOST
 * timed out") or IMAP_ERROR_CANCELLED (the request was interrupted). Any
 * thread. */
struct addrinfo *imap_resolve(const char *host, const char *service,
			      const struct addrinfo *hints, gint64 deadline,
			      GError **error);

/* The look-up a resolver thread runs for a name: getaddrinfo(3)'s
 * signature and contract (the list it returns is freed with
 * freeaddrinfo()). */
typedef int imap_resolve_fn(const char *host, const char *service,
			    const struct addrinfo *hints,
			    struct addrinfo **res);

/* For tests only (tests/unit/test_resolve.c: a resolver that answers
 * late or never, without the network): look-ups of names begun from now
 * on run @fn instead of getaddrinfo (NULL: getaddrinfo again). Numeric
 * addresses never go through it. Any thread. */
void imap_resolve_set_lookup(imap_resolve_fn *fn);

/* For tests: how many look-ups' threads have not finished yet, those
 * abandoned at their deadline included (each frees what it found when
 * it ends). Any thread. */
unsigned int imap_resolve_pending(void);

#endif
