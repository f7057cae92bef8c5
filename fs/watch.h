/* watch.h - the live view: what other clients change on the server shows
 * up in the mount within seconds, without waiting for listing_ttl.
 *
 * Listeners (imap/idle.c) on connections of their own -- one with
 * NOTIFY, else up to @listeners IDLEing on the most recently used
 * folders, the first one also polling the other loaded folders with
 * STATUS at an interval that grows with the time since they were used
 * (2 s right after use, up to 5 minutes) -- report changes; this module
 * turns each into a delta on the tree (fs/tree_live.c) and the kernel
 * invalidations it needs (queued on fs/notify.c's thread).  Only folders
 * whose listing is loaded are kept current; the others are listed when
 * they are next opened anyway.
 *
 * What a change costs: new mail is one "UID FETCH max+1:* (UID
 * RFC822.SIZE INTERNALDATE FLAGS)" on a pool session; flag changes one
 * "UID FETCH 1:* (UID FLAGS) (CHANGEDSINCE m)"; expunges the exact UIDs
 * from EXPUNGE/VANISHED on the listener, or from STATUS a count that no
 * longer matches and one UID SEARCH; a mailbox created, deleted or
 * renamed one mailbox list.  Never a relisting of the folder.  The
 * mount's own changes echoed back find nothing to do: the UIDs and
 * counts already match (an echo faster than our own APPEND/COPY/MOVE's
 * tree delta waits for it: fs_commit_own_wait()).
 *
 * Threading: fs_watch_start()/fs_watch_stop() from the main thread; the
 * work runs on the listeners' threads, never on a FUSE worker, and takes
 * the tree lock only inside tree_live.c's calls.
 */
#ifndef IMAPFS_FS_WATCH_H
#define IMAPFS_FS_WATCH_H

#include <glib.h>

#include "ops.h"
#include "session.h"

struct fs_watch;

struct fs_watch_params {
	unsigned int listeners; /* IDLE connections without NOTIFY, >= 1 */
	gboolean notify;	/* the server offers NOTIFY: use it */
	gboolean idle;		/* the server offers IDLE (else: polls) */
	int watchdog_ms;	/* listener watchdog (<= 0: default) */
	int renew_ms;		/* IDLE re-issued after (<= 0: default) */
	/* After the server's connection limit left listener 0 alone: the
	 * first wait before the others try again (0: 30 s), doubling with
	 * each refusal up to 10 minutes (or this, if longer). */
	unsigned int limit_retry_ms;
};

/* Starts watching for @fs (its pool, tree and notify must outlive the
 * watcher) with listeners logging in as @account. Never returns NULL. */
struct fs_watch *fs_watch_start(struct imapfs *fs,
				const struct imap_account *account,
				const struct fs_watch_params *params);

/* One line for "imapfs status": listeners connected, connections made,
 * watchdog probes, IDLE renewals, whether the server's limit cut them
 * down and when the others try again (g_malloc'd). Any thread while the
 * watcher runs. */
char *fs_watch_describe(struct fs_watch *watch);

/* Stops the listeners (bounded by the account's timeout) and frees. NULL
 * is allowed. Call before the pool, tree and notify go. */
void fs_watch_stop(struct fs_watch *watch);

/* This mount is about to RENAME or DELETE @mailbox (server name; every
 * name it is a prefix of is covered too): until fs_watch_release(), no
 * listener sends STATUS, EXAMINE or LIST for it, and what they report of
 * it is ignored. Waits (at most 5 s) until the listeners and their
 * hooks have finished what they started: Dovecot's maildir keeps its
 * uidlist lock in the mailbox's directory, and a STATUS or EXAMINE that
 * holds it while a RENAME moves the directory leaves a stale lock behind
 * (the next access to the mailbox waits ~30 s for it) or loses the
 * uidlist update it was writing. From a FUSE worker, holding no lock;
 * NULL @watch is allowed (nothing to wait for). Calls may nest. */
void fs_watch_hold(struct fs_watch *watch, const char *mailbox);

/* Ends one fs_watch_hold() of @mailbox; the listeners look again (the
 * mailbox list first). Any thread; NULL @watch is allowed. */
void fs_watch_release(struct fs_watch *watch, const char *mailbox);

#endif
