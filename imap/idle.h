/* idle.h - a listener: a connection of its own (not from the pool) that
 * waits for the server to say that something changed.
 *
 * With NOTIFY (RFC 5465) one listener hears about every personal
 * mailbox: "NOTIFY SET STATUS (personal (MessageNew MessageExpunge
 * FlagChange MailboxName SubscriptionChange))" makes the server send a
 * STATUS (merged here into a full one per mailbox) when messages arrive,
 * go or change flags, and a LIST when a mailbox is created, deleted or
 * renamed.  Without NOTIFY a listener IDLEs on the mailbox its owner
 * picks (EXAMINE, then "FETCH 1:* (UID)" fills the MSN -> UID map of
 * imap/mailbox.c, which EXPUNGE, VANISHED, EXISTS and FETCH keep
 * current), and listener 0 also runs the owner's periodic work between
 * two IDLEs (STATUS polls of the other folders on this connection).
 * A server without IDLE gets only listener 0's polls (it sleeps between
 * them on the wake-up fd).
 *
 * IDLE ends at once when another thread calls imap_idle_wake() (an
 * eventfd polled with the socket; DONE is sent, the connection stays) and
 * is re-issued at least every @renew_ms (25 minutes: RFC 2177 asks for
 * less than 29) on the same connection.  Liveness: silence longer than @watchdog_ms (any
 * untagged data, like Dovecot's "* OK Still here", restarts it) ends the
 * IDLE with DONE, and the connection is kept only if the server completes
 * it within the account's timeout; TCP keepalive (transport.c) covers
 * the rest.  An unsolicited BYE, a dead socket or a failed probe means
 * "reconnect": at once, then with a backoff doubling from 1 s to 60 s;
 * never an error for the filesystem.
 *
 * Threading: each listener runs a thread of its own; the hooks are called
 * from it (so with several listeners, concurrently: they must be
 * thread-safe) and may block (e.g. on the session pool).
 * imap_idle_wake() and imap_idle_stop() may be called from any thread.
 */
#ifndef IMAPFS_IMAP_IDLE_H
#define IMAPFS_IMAP_IDLE_H

#include <glib.h>
#include <stdint.h>

#include "mailbox.h"
#include "session.h"

struct imap_idle;

struct imap_idle_hooks {
	/* (Re)connected; @notify says whether NOTIFY is in use. Anything
	 * may have changed while there was no connection. */
	void (*connected)(void *user_data, unsigned int index, gboolean notify);
	/* The state of @mailbox (server name): a STATUS the server sent
	 * (NOTIFY; partial ones merged with what was known) or a poll's.
	 * uidnext/highestmodseq 0 when unknown. */
	void (*status)(void *user_data, const char *mailbox,
		       const struct imap_mailbox_status *status);
	/* Mailboxes were (or may have been) created, deleted or renamed. */
	void (*mailboxes)(void *user_data);
	/* What changed in the mailbox this listener IDLEs on (the changes
	 * belong to the caller; @status is its state after them). */
	void (*selected)(void *user_data, const char *mailbox,
			 const struct imap_mailbox_status *status,
			 struct imap_mailbox_changes *changes);
	/* Without NOTIFY: the mailbox listener @index should IDLE on
	 * (g_malloc'd server name, or NULL for none). */
	char *(*pick)(void *user_data, unsigned int index);
	/* Listener 0 only: periodic work; returns the mailboxes to STATUS
	 * now (a NULL-terminated strv, or NULL) and in *next_ms_r how soon
	 * to be called again. @covered(@ctx, mailbox) is TRUE for the
	 * mailboxes NOTIFY reports on (never without NOTIFY): the hook
	 * neither returns them nor asks to be called for them, so that
	 * their schedule ends no IDLE (see idle.c for why it is called at
	 * all with NOTIFY). */
	char **(*poll)(void *user_data,
		       gboolean (*covered)(void *ctx, const char *mailbox),
		       void *ctx, int *next_ms_r);
	/* Listener @index has finished what the last pick and poll led to
	 * (its EXAMINE, STATUS commands and the hooks they ran): it is about
	 * to IDLE or sleep, or its connection is gone. May be NULL. */
	void (*quiet)(void *user_data, unsigned int index);
	/* Whether listener @index should hold a connection now (@connected:
	 * it has one). FALSE: it does not connect, or logs out, and sleeps
	 * until imap_idle_wake(). NULL: always. */
	gboolean (*wanted)(void *user_data, unsigned int index,
			   gboolean connected);
	/* Listener @index failed with @error (not owned): while connecting
	 * (@connecting) or on a connection it had (a probe or command that
	 * timed out, a reset, a BYE). It reconnects on its own (subject to
	 * wanted). May be NULL. */
	void (*lost)(void *user_data, unsigned int index, const GError *error,
		     gboolean connecting);
	void *user_data;
};

struct imap_idle_params {
	const struct imap_account *account; /* must outlive the listener */
	unsigned int index;		    /* 0..N-1 */
	gboolean try_notify; /* use NOTIFY where offered (index 0 only) */
	int watchdog_ms;     /* <= 0: 5 minutes */
	int renew_ms;	     /* <= 0: 25 minutes */
	/* What follows "NOTIFY" (static; NULL: IMAP_IDLE_NOTIFY_ALL). */
	const char *notify_events;
};

/* Every event the live view can use, for every personal mailbox. */
#define IMAP_IDLE_NOTIFY_ALL                                          \
	"SET STATUS (personal (MessageNew MessageExpunge FlagChange " \
	"MailboxName SubscriptionChange))"
/* Message events only (the mailbox list is polled instead). */
#define IMAP_IDLE_NOTIFY_MESSAGES \
	"SET STATUS (personal (MessageNew MessageExpunge FlagChange))"

/* Starts a listener (its thread connects in the background). The hooks
 * are copied. Never returns NULL. */
struct imap_idle *imap_idle_start(const struct imap_idle_params *params,
				  const struct imap_idle_hooks *hooks);

/* Ends the current IDLE soon (DONE) so the listener looks at its owner's
 * choices again (pick, poll). Any thread; never blocks. */
void imap_idle_wake(struct imap_idle *idle);

/* Stops the thread (leaving IDLE and logging out, bounded by the
 * account's timeout) and frees. NULL is allowed. */
void imap_idle_stop(struct imap_idle *idle);

/* Counters for status output and tests (imap_idle_stats()). */
struct imap_idle_stats {
	unsigned int connects; /* connections made (1 after the first) */
	unsigned int probes;   /* watchdog probes (DONE after silence) */
	unsigned int renewals; /* IDLEs re-issued after renew_ms */
	gboolean connected;    /* holds a connection now */
	gboolean notify;       /* NOTIFY is in use */
};

/* Fills @stats_r. Any thread. */
void imap_idle_stats(struct imap_idle *idle, struct imap_idle_stats *stats_r);

#endif
