/* tree_live.h - the live view's deltas on the inode table: what another
 * client changed on the server, as the watcher (fs/watch.c) learnt it.
 *
 * Like the write path's deltas (tree_write.c) every change raises the
 * folder's generation, so a listing in flight neither drops a message
 * added here nor brings back one removed here.  Each function queues the
 * kernel invalidations its change needs on @notify (fs/notify.c delivers
 * them from its own thread; queueing never blocks), so callers never
 * talk to the kernel themselves.  A change for a folder whose
 * UIDVALIDITY is no longer the one given is ignored (returns -ESTALE).
 *
 * Locking: each call takes tree->lock for its own duration only; no I/O.
 */
#ifndef IMAPFS_FS_TREE_LIVE_H
#define IMAPFS_FS_TREE_LIVE_H

#include <glib.h>
#include <stdint.h>

#include "mailbox.h"
#include "notify.h"
#include "session.h"
#include "tree.h"

/* What the tree knows of one loaded folder. */
struct fs_live_folder {
	uint64_t ino;
	char *mailbox; /* server name (owned) */
	uint32_t uidvalidity;
	uint64_t modseq;  /* HIGHESTMODSEQ the tree is current to, 0: ? */
	uint32_t max_uid; /* highest UID listed */
	uint32_t count;	  /* messages listed */
	gint64 used_at;	  /* last access (monotonic us) */
	uint64_t gen;	  /* the folder's generation (tree_write.c) */
};

/* Frees the strings of @f. */
void fs_live_folder_clear(struct fs_live_folder *f);

/* Every folder whose listing is loaded (struct fs_live_folder, the array
 * clears its elements), most recently used first. */
GArray *fs_tree_live_folders(struct fs_tree *tree);

/* The loaded folder of server mailbox @mailbox: TRUE and @f_r filled
 * (caller clears), FALSE if none is loaded. */
gboolean fs_tree_live_folder(struct fs_tree *tree, const char *mailbox,
			     struct fs_live_folder *f_r);

/* Adds the messages of @metas (struct imap_message_meta) not yet known
 * to folder @ino; known UIDs (this mount's own APPENDs among them) and
 * UIDs this mount removed are left alone. Returns how many were added,
 * or -ENOENT / -ESTALE. */
int fs_tree_live_add(struct fs_tree *tree, struct fs_notify *notify,
		     uint64_t ino, uint32_t uidvalidity, const GArray *metas);

/* Removes the messages of folder @ino whose UID is in @ranges (struct
 * imap_uid_range, sorted and merged): they leave, their inodes answer
 * ESTALE, their names ENOENT.  Costs O(messages removed + log n) per
 * range however wide it is. Returns how many went, or -ENOENT/-ESTALE. */
int fs_tree_live_expunge(struct fs_tree *tree, struct fs_notify *notify,
			 uint64_t ino, uint32_t uidvalidity,
			 const GArray *ranges);

/* Removes the messages of folder @ino with a UID <= @upto that are not
 * in @present (struct imap_uid_range, sorted, merged): the result of a
 * UID listing asked for when the folder was at generation @gen (from
 * fs_tree_live_folder()); messages added since are kept. Returns how
 * many went, or -ENOENT/-ESTALE. */
int fs_tree_live_keep_only(struct fs_tree *tree, struct fs_notify *notify,
			   uint64_t ino, uint32_t uidvalidity,
			   const GArray *present, uint32_t upto, uint64_t gen);

/* Sets the flags of message @uid of folder @ino (ignored for an unknown
 * UID). With -o delete=flag a message that gains \Deleted leaves the
 * kernel's view (as if expunged) and one that loses it comes back (as if
 * new): see fs_tree_set_hide_deleted(). Returns 1 if they changed, 0, or
 * -ENOENT/-ESTALE. */
int fs_tree_live_set_flags(struct fs_tree *tree, struct fs_notify *notify,
			   uint64_t ino, uint32_t uidvalidity, uint32_t uid,
			   const char *flags);

/* Records that folder @ino is current to HIGHESTMODSEQ @modseq and, when
 * @confirmed, that the server's state was just compared with it (the
 * listing counts as fresh from now on, so no reload by age is needed). */
void fs_tree_live_set_synced(struct fs_tree *tree, uint64_t ino,
			     uint32_t uidvalidity, uint64_t modseq,
			     gboolean confirmed);

/* Folder @ino's UIDVALIDITY is no longer @uidvalidity (or the watcher
 * lost track of it): every message node goes (gone: ESTALE / ENOENT) and
 * the listing is loaded afresh on the next access. */
void fs_tree_live_reset(struct fs_tree *tree, struct fs_notify *notify,
			uint64_t ino);

/* Makes every folder load call @fn(@user_data) (with the tree lock held:
 * it must not block nor call into the tree; NULL removes it). */
void fs_tree_live_set_load_hook(struct fs_tree *tree,
				void (*fn)(void *user_data), void *user_data);

/* Every directory (ino, parent ino, name) as "parent/name" keys of a
 * set, for comparing the mailbox structure before and after a reload:
 * returns a hash table of g_strdup_printf("%" PRIu64 "/%s") -> ino. */
GHashTable *fs_tree_live_dir_names(struct fs_tree *tree);

#endif
