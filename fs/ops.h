/* ops.h - the FUSE low-level operations of imapfs.
 *
 * fs_ops_get() returns the operations table; the per-mount state is a
 * struct imapfs passed as the session's userdata.  Each operation answers
 * with a deliberate errno (docs/SEMANTICS.md).  Network work happens
 * through the pool with no tree or cache lock held, on a network thread
 * (defer.h) so that the FUSE workers stay free for what memory answers.
 * When the server cannot be reached, listings, attributes and bodies
 * already in memory are served however old they are.
 */
#ifndef IMAPFS_FS_OPS_H
#define IMAPFS_FS_OPS_H

#include <fuse_lowlevel.h>
#include <glib.h>

#include "bodycache.h"
#include "options.h"
#include "defer.h"
#include "notify.h"
#include "prefetch.h"
#include "pool.h"
#include "quota.h"
#include "spool.h"
#include "tree.h"

struct imapfs {
	/* Immutable after mount: */
	struct imap_pool *pool;
	struct fs_tree *tree;
	struct fs_bodycache *cache;
	struct fs_notify *notify;
	/* The live view (NULL if off); set before the FUSE loop starts and
	 * cleared after it ends. */
	struct fs_watch *watch;
	struct fs_quota *quota; /* statfs's cached quota */
	/* Seconds the kernel may cache attributes and names. */
	double attr_timeout;
	double entry_timeout;
	/* How old a folder listing or the mailbox list may get before the
	 * next readdir/lookup reloads it (us). */
	gint64 listing_ttl_us;
	/* Largest read-ahead for sequential reads (bytes). */
	uint64_t max_readahead;
	/* Network threads for the requests that need the server (NULL:
	 * served in the FUSE worker, as while the mount is set up). */
	struct fs_defer *defer;
	/* The server offers QUOTA (immutable): without it statfs never
	 * needs the network. */
	gboolean cap_quota;
	/* Background prefetch (NULL: none). */
	struct fs_prefetch *prefetch;
	/* -o ro: every change answers EROFS from our own handlers. */
	gboolean read_only;
	/* -o delete=: how a message is removed (rm, the original of a move
	 * without MOVE, the old version of an edited message). */
	enum fs_delete_mode delete_mode;
	/* Where local files live (immutable after mount). */
	struct fs_spool_dir *spool_dir;
	/* The personal namespace prefix ("" or e.g. "INBOX."), immutable. */
	char *ns_prefix;
	/* Server capabilities the write path decides by (immutable after
	 * mount, read from the first session). */
	gboolean cap_uidplus, cap_move;
	/* APPENDLIMIT (bytes; 0: none announced): a write beyond it fails
	 * at once with EFBIG rather than at close. */
	uint64_t append_limit;
	/* The \Trash special-use mailbox (server name) or NULL; protected
	 * by meta_lock, replaced when the mailbox list is reloaded. */
	GMutex meta_lock;
	char *trash_mailbox;
	/* This mount's own commands that add messages, in flight
	 * (fs_commit_own_begin): server name -> count (GUINT_TO_POINTER).
	 * NULL: not tracked (tests). Protected by own_lock; own_cond is
	 * broadcast when a count drops. */
	GMutex own_lock;
	GCond own_cond;
	GHashTable *own_inflight;
};

/* The operations table (static, never NULL). */
const struct fuse_lowlevel_ops *fs_ops_get(void);

/* Loads the mailbox list into the tree (used at mount, before serving).
 * Returns 0 or a negative errno, with the IMAP error in @error. */
int fs_ops_load_mailboxes(struct imapfs *fs, GError **error);

#endif
