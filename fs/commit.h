/* commit.h - sending a local file to the server as a message.
 *
 * A local file (a new message, or the shadow copy of a message being
 * edited) is APPENDed from its spool file, once, synchronously, and the
 * result is what close(), fsync() or rename() return. Nothing is retried
 * behind the user's back: when the connection dies before the server's
 * answer, the server is asked (by Message-ID and size, above the highest
 * UID known) whether the message arrived, and the answer decides. A
 * replaced message is expunged only after the new one is safely stored,
 * and only if it is still the message we saw (else both are kept and the
 * caller gets -ESTALE); with -o delete=flag it is only flagged \Deleted
 * and stays (hidden).
 *
 * When even asking fails (the server went silent: the request's deadline
 * passed), the commit fails with -EIO and the file remembers the attempt
 * (fs_spool_unresolved()): the next commit of it first searches for it,
 * adopts it when it arrived after all with the same Message-ID and size
 * (nothing is sent again), and fails again, sending nothing, while the
 * server still cannot say. A message without a Message-ID cannot be
 * looked for: it is sent again (a duplicate is then possible).
 *
 * Threading: a network thread (fs/defer.h), in the request context of the
 * syscall (one deadline; an interrupt before the APPEND is sent fails
 * with -EINTR and sends nothing, after it is ignored); the spool file's
 * commit lock serialises commits of one file. No tree lock is held
 * across the network.
 */
#ifndef IMAPFS_FS_COMMIT_H
#define IMAPFS_FS_COMMIT_H

#include <glib.h>
#include <stdint.h>

#include "ops.h"

/* Where the bytes of inode @ino go. */
struct fs_commit_target {
	uint64_t dir;	      /* the folder's inode */
	const char *alias;    /* a name that resolves to the new message */
	uint32_t replace_uid; /* the message the new one replaces, or 0 */
	/* Flags and INTERNALDATE to give the new message when the local
	 * file has none of its own (those of the replaced message). */
	const char *flags;
	gint64 internaldate;
};

/* TRUE if @name is a message name: it ends in ".eml" and does not start
 * with "." (everything else is a scratch file, never sent). */
gboolean fs_commit_is_message_name(const char *name);

/* TRUE if the space-separated flag lists @a and @b hold the same flags
 * (order, case and \Recent aside). NULL counts as empty. */
gboolean fs_commit_same_flags(const char *a, const char *b);

/* Runs the idempotent look-up @fn like imap_pool_run(), to learn the
 * outcome of a command; while the pool is offline (the connection that
 * carried the command died and the server may be back in a moment) it
 * tries again every 250 ms until the calling request's deadline (none:
 * once). Returns like imap_pool_run(). */
gboolean fs_commit_ask(struct imapfs *fs, const char *mailbox, imap_pool_fn *fn,
		       void *user_data, GError **error);

/* This mount's own command that adds a message to @mailbox (APPEND, or
 * a COPY or MOVE into it) is in flight from fs_commit_own_begin() until
 * the matching fs_commit_own_end(), which comes after the result is in
 * the tree. Any thread; never blocks. */
void fs_commit_own_begin(struct imapfs *fs, const char *mailbox);
void fs_commit_own_end(struct imapfs *fs, const char *mailbox);

/* Waits, at most @max_ms, until no own command adding to @mailbox is in
 * flight, so that the live view does not fetch as news the server's echo
 * of our own change. Returns TRUE if it waited for one. Not for FUSE
 * workers (it may block for as long as a command does). */
gboolean fs_commit_own_wait(struct imapfs *fs, const char *mailbox, int max_ms);

/* Sends @sp (the bytes of inode @ino) as described by @t if it has
 * changes that were not sent, then applies the result to the tree.
 * Returns 0 (also when there was nothing to send), or a negative errno:
 * -EIO (network, server), -EDQUOT, -EFBIG, -ENOENT ([TRYCREATE]),
 * -EACCES, -EPERM (also: a replacement without UIDPLUS, unless
 * -o delete=flag, refused before anything is sent), -EINVAL (NUL bytes
 * without BINARY, empty message),
 * -EINTR (interrupted before anything was sent), -ESTALE (the replaced message changed meanwhile: both kept). On
 * failure the spool file keeps the data (and is kept at unmount). */
int fs_commit(struct imapfs *fs, uint64_t ino, struct fs_spool *sp,
	      const struct fs_commit_target *t);

#endif
