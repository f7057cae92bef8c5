/* untagged.h - untagged responses dispatched to handlers registered by
 * name.
 *
 * A server sends untagged data inside a command's reply and, with IDLE or
 * NOTIFY, between commands.  Whoever reads responses hands every untagged
 * one to imap_untagged_dispatch(), which calls the handlers registered for
 * its name, in the order they were registered:
 *   - data responses by keyword: "EXISTS", "EXPUNGE", "FETCH" (numbered),
 *     "VANISHED", "FLAGS", "STATUS", "LIST", "SEARCH", "ESEARCH", ...;
 *   - status responses by status: "OK", "NO", "BAD", "BYE", "PREAUTH";
 *     a handler registered as "OK [CODE]" (e.g. "OK [UIDVALIDITY]") gets
 *     only the OK responses with that response code.
 * A handler registered as "*" sees every untagged response (after the
 * named ones).  Names are ASCII case-insensitive.
 *
 * The table bounds nothing itself: handlers must treat the response as
 * untrusted input.
 *
 * Threading: a table is built, then used by the one thread that reads the
 * connection; it has no global state.
 */
#ifndef IMAPFS_IMAP_UNTAGGED_H
#define IMAPFS_IMAP_UNTAGGED_H

#include <glib.h>

#include "parser.h"

struct imap_untagged;

/* A handler: @resp belongs to the caller of imap_untagged_dispatch() and
 * is only valid during the call (do not steal from it). */
typedef void imap_untagged_handler_fn(const struct imap_response *resp,
				      void *user_data);

/* An empty table. Never returns NULL. */
struct imap_untagged *imap_untagged_new(void);

/* Frees the table (not the handlers' user data). NULL is allowed. */
void imap_untagged_free(struct imap_untagged *table);

/* Registers @fn(@user_data) for responses named @name (see above). */
void imap_untagged_register(struct imap_untagged *table, const char *name,
			    imap_untagged_handler_fn *fn, void *user_data);

/* The name a response is dispatched by: the keyword of a data response,
 * the status of a status response ("OK", ...), NULL for tagged responses
 * and continuations.  Static or owned by @resp. */
const char *imap_untagged_name(const struct imap_response *resp);

/* Calls the handlers for @resp. Returns how many were called (0: nobody
 * wanted it). Tagged responses and continuations are ignored. */
unsigned int imap_untagged_dispatch(struct imap_untagged *table,
				    const struct imap_response *resp);

/* An imap_untagged_fn (conn.h) adapter: @user_data is the table. */
void imap_untagged_dispatch_cb(struct imap_response *resp, void *user_data);

#endif
