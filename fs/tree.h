/* tree.h - the inode table: directories for mailboxes, files for messages.
 *
 * Every node has an inode number that is never reused, so a number the
 * kernel still holds can never come to name another message: a message is
 * identified by (mailbox, UIDVALIDITY, UID) and gets a fresh inode when
 * any of those differ.  Nodes that left their directory (expunged, the
 * mailbox's UIDVALIDITY changed, the mailbox vanished) are marked gone and
 * freed once the kernel forgets them.
 *
 * Locking: one mutex (tree->lock) protects every node field and table. No
 * function here does I/O or blocks on anything but that mutex and, in
 * fs_tree_folder_begin(), on a bounded condition wait, so FUSE workers
 * never hold the lock across a network round trip.
 */
#ifndef IMAPFS_FS_TREE_H
#define IMAPFS_FS_TREE_H

#include <glib.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "session.h"
#include "spool.h"

#define FS_ROOT_INO 1

struct fs_tree;

/* A stable copy of what a caller needs from a node, taken under the lock. */
struct fs_entry {
	uint64_t ino;
	char *name; /* file name in its directory ("" for the root) */
	struct stat st;
	/* Messages: where the bytes live. Directories: mailbox may be NULL
	 * (root, or a level that only holds other mailboxes). */
	char *mailbox;
	uint32_t uidvalidity;
	uint32_t uid;
	gboolean is_dir;
	gboolean selectable;
	gboolean gone;		/* only from fs_tree_get_for_read() */
	gboolean size_verified; /* messages: st_size was proven by a read */
	gboolean bad_size;	/* messages: the claimed size is implausible */
	/* messages: the server claimed size 0, which is never true of a
	 * message (and would keep the kernel from ever reading it): the
	 * size must be measured before it is reported. */
	gboolean size_unknown;
	char *flags; /* messages: space-separated flags */
	/* Local files (scratch files and messages not yet sent): the bytes
	 * are in @spool (a reference, dropped by fs_entry_clear()). A
	 * message being edited also has @spool (its shadow copy). */
	gboolean is_local;
	struct fs_spool *spool;
	uint64_t parent; /* inode of the containing directory */
	/* MYRIGHTS (RFC 4314) of the mailbox (for a message: of its folder);
	 * NULL when not restricted or not known. Test a right with
	 * imap_acl_has_right() (imap/acl.h). st_mode already reflects it
	 * (fs_tree_rights_mode()). */
	char *rights;
};

/* Frees the strings of @entry (not @entry itself). */
void fs_entry_clear(struct fs_entry *entry);

/* Creates the tree with just the root. Files and directories are owned by
 * @uid/@gid with modes @file_mode/@dir_mode. Never returns NULL. */
struct fs_tree *fs_tree_new(uid_t uid, gid_t gid, mode_t file_mode,
			    mode_t dir_mode);

/* -o delete=flag: from now on messages flagged \Deleted (by anyone) are
 * not listed and their names do not resolve (lookup: ENOENT); they stay
 * in the tree all the same (their folder's count is the server's, which
 * the refreshes and the live view compare with EXISTS), and one whose
 * \Deleted goes is shown again. An inode the kernel still holds keeps
 * answering (an open file stays readable). Call before serving. */
void fs_tree_set_hide_deleted(struct fs_tree *tree, gboolean hide);

/* Frees everything. */
void fs_tree_free(struct fs_tree *tree);

/* Replaces the directory structure with the mailboxes in @infos (struct
 * imap_mailbox_info *, from imap_session_list()), at the paths
 * fs_namemap_mailbox_paths() gives them (the personal namespace at the
 * root, its prefix stripped; other namespaces in their own top-level
 * directories). Directories of mailboxes that disappeared are marked
 * gone; intermediate levels are created as needed and hold only
 * subdirectories, also when they were mailboxes before; a mailbox that
 * became \Noselect loses its messages. */
void fs_tree_set_mailboxes(struct fs_tree *tree, GPtrArray *infos);

/* For a server whose list says nothing that tells a mailbox another
 * client renamed (no LIST-STATUS, no OLDNAME): the mailboxes of @infos (a
 * fresh imap_session_list(), not yet applied) worth a STATUS (UIDVALIDITY
 * MESSAGES UIDNEXT), whose answers, put in their infos, let
 * fs_tree_set_mailboxes_since() recognise them as folders gone from the
 * list: the selectable names the tree does not have, without UIDVALIDITY
 * or OLDNAME, shortest first, at most @max -- and none unless a folder
 * whose UIDVALIDITY the tree knows is missing from @infos. Returns a new
 * array of infos borrowed from @infos. Takes the tree lock briefly (never
 * hold it over the STATUS); any thread. */
GPtrArray *fs_tree_rename_candidates(struct fs_tree *tree, GPtrArray *infos,
				     guint max);

/* The selectable mailboxes the tree has and @infos (a fresh
 * imap_session_list(), not yet applied) lacks, shortest first, at most
 * @max: new strings, for a STATUS that tells a deleted mailbox from a
 * list the server answered from a stale view (Dovecot's mailbox list
 * index, right after our own DELETE and CREATE, listed a deleted name and
 * left out three just created). Takes the tree lock briefly; any
 * thread. */
GPtrArray *fs_tree_gone_mailboxes(struct fs_tree *tree, GPtrArray *infos,
				  guint max);

/* The generation of the folder tree: raised by this mount's own
 * fs_tree_add_dir(), fs_tree_remove_dir() and fs_tree_move_dir(). Take
 * it before asking the server for the mailbox list. Any thread. */
uint64_t fs_tree_mailboxes_gen(struct fs_tree *tree);

/* fs_tree_set_mailboxes() of a list asked for at generation @gen: if the
 * tree changed since (a RENAME of ours completed while the LIST was on
 * the wire), the list is older than that change and nothing is applied
 * (the caller asks again later). Returns whether it was applied. */
gboolean fs_tree_set_mailboxes_since(struct fs_tree *tree, GPtrArray *infos,
				     uint64_t gen);

/* fs_tree_set_mailboxes_since(), except that the mailboxes named in @keep
 * (the tree has them, the list does not, STATUS says they exist:
 * fs_tree_gone_mailboxes()) keep their directories, listings and inodes
 * as they are. @keep may be NULL. */
gboolean fs_tree_set_mailboxes_keep(struct fs_tree *tree, GPtrArray *infos,
				    uint64_t gen, GPtrArray *keep);

/* The mode bits @mode (0777 part) as MYRIGHTS @rights allow them: no 'r'
 * clears the read bits; none of 'i', 't', 'e' clears the write bits.
 * NULL rights leave @mode as it is. Pure. */
mode_t fs_tree_rights_mode(mode_t mode, const char *rights);

/* For mkdir and rename: the server name a mailbox with file name @name in
 * directory @parent would get. At the root that is the personal
 * namespace's mapping (fs_namemap_path_to_server_name(): "x" is
 * "INBOX.x" on a server whose personal prefix is "INBOX."); below, the
 * parent level's server name, its delimiter and @name encoded. Returns 0
 * with *@server_name_r (caller frees), -ENOENT or -ENOTDIR for @parent,
 * -EINVAL if @name cannot be a mailbox name (a bad escape, the delimiter
 * inside it), -EPERM where no mailbox can be created: a namespace
 * directory without a server name ("Shared Folders"), a flat namespace,
 * or INBOX on a server whose personal prefix is not empty. Does not check
 * that @name is free. */
int fs_tree_child_server_name(struct fs_tree *tree, uint64_t parent,
			      const char *name, char **server_name_r);

/* Replaces the MYRIGHTS kept for directory @ino (NULL: not restricted),
 * e.g. after imap_session_myrights() or a NO [NOPERM]; its messages
 * follow. Returns 0, -ENOENT or -ENOTDIR. */
int fs_tree_set_rights(struct fs_tree *tree, uint64_t ino, const char *rights);

/* Monotonic time (us) of the last fs_tree_set_mailboxes(), 0 if never. */
gint64 fs_tree_mailboxes_time(struct fs_tree *tree);

/* Looks up @name in directory @parent. On success fills @entry_r (caller
 * clears it), adds one kernel reference to the node and returns 0; else
 * -ENOENT, -ENOTDIR, or -EIO for a message whose claimed size is not
 * plausible (> 2^53 bytes). Message names are only found if the folder's
 * listing is loaded (see fs_tree_folder_begin). */
int fs_tree_lookup(struct fs_tree *tree, uint64_t parent, const char *name,
		   struct fs_entry *entry_r);

/* Like fs_tree_lookup() without taking a reference (for getattr). */
int fs_tree_get(struct fs_tree *tree, uint64_t ino, struct fs_entry *entry_r);

/* For a read of @size bytes at @offset of message @ino: fills @entry_r
 * even if the message is gone (so cached bytes can still be served), and
 * returns in *readahead_r how far to read ahead: the window doubles (from
 * 256 KiB up to @max_readahead) while reads are sequential and drops to 0
 * on a seek. Returns 0, -ESTALE (an inode no longer known: its message
 * went and the node was freed) or -EISDIR. */
int fs_tree_get_for_read(struct fs_tree *tree, uint64_t ino, uint64_t offset,
			 uint64_t size, uint64_t max_readahead,
			 struct fs_entry *entry_r, uint64_t *readahead_r);

/* One message to prefetch. */
struct fs_prefetch_item {
	uint64_t ino;
	uint32_t uid;
	uint64_t size;
};

/* Called on a read at offset 0 of message @ino. Tracks whether reads in its
 * folder walk forward through the UIDs (grep -r, cat *.eml, a file
 * manager's preview pass); once they do, and when fewer than half of the
 * messages planned last time remain ahead of the reader, appends the next
 * messages of at most @per_message bytes (larger ones are skipped: reads
 * and their read-ahead handle them) to @items -- a batch that doubles from
 * 16 to 512 messages, bounded by @max_bytes -- and returns TRUE with the
 * folder's *mailbox_r (caller frees) and *uidvalidity_r. A walk in a
 * folder that was never listed (its messages looked up one by one) plans
 * nothing and sets *@need_listing_r (may be NULL): list it, then ask
 * again. */
gboolean fs_tree_prefetch_plan(struct fs_tree *tree, uint64_t ino,
			       uint64_t max_bytes, uint64_t per_message,
			       GArray *items, char **mailbox_r,
			       uint32_t *uidvalidity_r,
			       gboolean *need_listing_r);

/* Drops @n kernel references of @ino (FUSE forget). */
void fs_tree_forget(struct fs_tree *tree, uint64_t ino, uint64_t n);

/* Adds one kernel reference to @ino (for readdirplus entries). */
void fs_tree_ref(struct fs_tree *tree, uint64_t ino);

/* Records that reading showed the message's real size (st_size must equal
 * what reads return); the size counts as verified from then on and folder
 * reloads no longer change it. */
void fs_tree_set_size(struct fs_tree *tree, uint64_t ino, uint64_t size);

/* Returns a snapshot of directory @ino for readdir: the inode numbers
 * (guint64) of ".", ".." and its entries -- directories by name, messages
 * in UID order, other names by name -- or NULL with *errno_r set (-ENOENT,
 * -ENOTDIR). 8 bytes per entry; nothing is sorted per message. */
GArray *fs_tree_list(struct fs_tree *tree, uint64_t ino, int *errno_r);

/* Fills @entry_r (caller clears it) for entry @index of snapshot @snap
 * ("." and ".." for 0 and 1) as the node is now. -ENOENT if @index is
 * past the end or the entry left the directory since the snapshot. No
 * reference is taken. */
int fs_tree_list_entry(struct fs_tree *tree, GArray *snap, guint index,
		       struct fs_entry *entry_r);

/* Folder listings.  fs_tree_folder_begin() decides what directory @ino's
 * message list needs:
 *  - FS_FOLDER_FRESH (0): nothing -- younger than @max_age_us, not a
 *    selectable mailbox, or being refreshed by another thread (whose
 *    listing is served meanwhile; a full load by another thread is
 *    waited for, within the calling request's deadline, imap/reqctx.h);
 *  - FS_FOLDER_LOAD: never listed (or its UIDVALIDITY changed): the
 *    caller lists it all and calls fs_tree_folder_end();
 *  - FS_FOLDER_REFRESH: listed, now stale (or invalidated): the caller
 *    asks the server what changed since @base_r and calls
 *    fs_tree_folder_refresh_end().
 * Either way *@base_r (caller clears it with fs_folder_base_clear()) gets
 * the mailbox and what the server said at the last load or refresh.
 * Negative errno: -ENOENT (gone directory), -ENOTDIR, -EIO (another
 * thread's load did not finish within the request's deadline, at most
 * 300 s), -EINTR (the request was interrupted while waiting). */
enum {
	FS_FOLDER_FRESH = 0,
	FS_FOLDER_LOAD = 1,
	FS_FOLDER_REFRESH = 2,
};
struct fs_folder_base {
	char *mailbox;
	uint32_t uidvalidity; /* 0 if never listed */
	uint32_t uidnext;     /* the next UID the server announced */
	uint32_t exists;      /* the message count it announced */
	uint64_t modseq;      /* its HIGHESTMODSEQ, 0 without CONDSTORE */
};
void fs_folder_base_clear(struct fs_folder_base *base);
int fs_tree_folder_begin(struct fs_tree *tree, uint64_t ino, gint64 max_age_us,
			 struct fs_folder_base *base_r);

/* TRUE if fs_tree_folder_begin(@ino, @max_age_us) would return at once
 * without a load: the listing is fresh and no load is under way, or @ino
 * is not a selectable mailbox (or not a directory, or gone). Never waits;
 * the answer may be out of date by the time it is used. */
gboolean fs_tree_folder_fresh(struct fs_tree *tree, uint64_t ino,
			      gint64 max_age_us);

/* Finishes a load begun by fs_tree_folder_begin(). @metas (struct
 * imap_message_meta, flags owned by the caller) with @status's
 * UIDVALIDITY replace the listing when @ok; a changed UIDVALIDITY turns
 * every old message node gone. When !ok the old listing stays and waiting
 * threads go on. @status is kept as the base of the next refresh. */
void fs_tree_folder_end(struct fs_tree *tree, uint64_t ino, gboolean ok,
			const struct imap_mailbox_status *status,
			GArray *metas);

/* What a refresh found (every array may be NULL). */
struct fs_folder_delta {
	GArray *metas; /* struct imap_message_meta: new or changed messages */
	GArray *flags; /* struct imap_message_meta: new flags of known ones */
	/* struct imap_uid_range: every UID below @present_below that
	 * exists; known messages below it that are not in it were
	 * expunged. NULL: no expunge is known. */
	GArray *present;
	uint32_t present_below;
	/* Not 0: @metas holds every message with a UID from @new_from on;
	 * known ones up there that it does not hold were expunged. */
	uint32_t new_from;
};

/* Finishes a refresh begun by fs_tree_folder_begin(): applies @delta as
 * deltas (the folder's generation rises; what this mount changed after
 * the refresh began is kept) and keeps @status as the next base. A
 * @status with another UIDVALIDITY turns every message node gone and
 * makes the next fs_tree_folder_begin() ask for a full load. !@ok: the
 * listing stays as it was. */
void fs_tree_folder_refresh_end(struct fs_tree *tree, uint64_t ino, gboolean ok,
				const struct imap_mailbox_status *status,
				const struct fs_folder_delta *delta);

/* For a lookup of one message name in a folder that was never listed: adds
 * @meta (NULL: the server has no such message) from a single UID FETCH
 * with @status, unless the folder got listed meanwhile. Returns 0 or
 * -ENOENT (the directory is gone). */
int fs_tree_folder_add_one(struct fs_tree *tree, uint64_t ino,
			   const struct imap_mailbox_status *status,
			   const struct imap_message_meta *meta);

/* TRUE if directory @ino is a selectable mailbox whose listing was never
 * loaded (nor is being loaded): a lookup of one message name there can
 * ask the server for that one message instead. Then *@mailbox_r (caller
 * frees) is its mailbox and *@known_r the number of messages such lookups
 * added (either may be NULL). */
gboolean fs_tree_folder_cold(struct fs_tree *tree, uint64_t ino,
			     char **mailbox_r, guint *known_r);

/* How many full folder loads and incremental refreshes the tree has
 * taken (for "imapfs status" and the benchmark). */
void fs_tree_load_counts(struct fs_tree *tree, uint64_t *full_r,
			 uint64_t *refresh_r);

/* For a folder load (fs_tree_folder_begin/end) that failed with ENOENT:
 * the server says the mailbox does not exist although LIST showed it
 * (Dovecot goes on listing a deleted mailbox that still has children). If
 * directory @ino has subdirectories it stops being a selectable mailbox
 * -- it holds only them until the next mailbox list makes it one again --
 * and TRUE is returned: the caller serves it (opendir succeeds, as for
 * any level that is only a parent). FALSE if it has none: the caller
 * reports ENOENT. */
gboolean fs_tree_folder_vanished(struct fs_tree *tree, uint64_t ino);

/* Marks a folder's listing as stale so that the next access brings it up
 * to date (a refresh when it was listed before). */
void fs_tree_folder_invalidate(struct fs_tree *tree, uint64_t ino);

/* Like fs_tree_folder_invalidate(), but the next access lists the folder
 * in full (no refresh). */
void fs_tree_folder_invalidate_full(struct fs_tree *tree, uint64_t ino);

/* The write path's deltas (tree_write.c).
 *
 * Changes this mount makes are applied to the tree as deltas, each one
 * raising the folder's generation; a listing that was in flight during a
 * change (fs_tree_folder_begin() records the generation it began at)
 * neither drops a message added after it began nor brings back one
 * removed after it began. */

/* What fs_tree_peek() found. */
enum fs_name_kind {
	FS_NAME_NONE,
	FS_NAME_DIR,
	FS_NAME_LOCAL,
	FS_NAME_MSG,
};

/* Looks @name up in directory @parent without taking a reference: returns
 * the kind (filling @entry_r, which the caller clears, unless NONE) or a
 * negative errno (-ENOENT gone parent, -ENOTDIR). */
int fs_tree_peek(struct fs_tree *tree, uint64_t parent, const char *name,
		 struct fs_entry *entry_r);

/* Adds the local file @name (bytes in @sp, which gains a reference) to
 * directory @parent, which must be a selectable mailbox (-EPERM
 * otherwise), with one kernel reference. -EEXIST if the name is taken. */
int fs_tree_add_local(struct fs_tree *tree, uint64_t parent, const char *name,
		      struct fs_spool *sp, struct fs_entry *entry_r);

/* Gives message @ino the shadow copy @sp unless it has one already.
 * Returns a new reference to the shadow in use, or NULL if @ino is not a
 * message that still exists. */
struct fs_spool *fs_tree_attach_shadow(struct fs_tree *tree, uint64_t ino,
				       struct fs_spool *sp);

/* Drops the shadow copy of @ino if it is @sp (reads go to the server
 * again). */
void fs_tree_detach_shadow(struct fs_tree *tree, uint64_t ino,
			   struct fs_spool *sp);

/* After an APPEND of the bytes of @ino (a local file or a message's
 * shadow) into the folder @dir succeeded: @ino becomes message @uid of
 * @dir, listed as "<uid>.eml", with @size, @mtime and @flags. It leaves
 * the directory it was in; @alias (may be NULL) is a name in @dir that
 * resolves to it from now on, and so does every name that named
 * @old_uid (the message it replaced, 0 if none), which leaves. @uid 0
 * (the server did not say which) or a folder whose UIDVALIDITY is no
 * longer @uidvalidity: the node leaves and the folder is reloaded on the
 * next access. Returns 0, or -ENOENT if @ino or @dir are gone. */
/* @old_kept: @old_uid was only flagged \Deleted (-o delete=flag): it
 * stays in @dir as a message of its own, hidden, instead of leaving. */
int fs_tree_commit(struct fs_tree *tree, uint64_t ino, uint64_t dir,
		   uint32_t uidvalidity, uint32_t uid, uint64_t size,
		   gint64 mtime, const char *flags, const char *alias,
		   uint32_t old_uid, gboolean old_kept);

/* Removes the local file @name of @parent. -ENOENT if there is none. */
int fs_tree_remove_local(struct fs_tree *tree, uint64_t parent,
			 const char *name);

/* Message @uid of folder @dir was removed on the server by us: it leaves
 * (with all its names), and a listing that began earlier cannot bring it
 * back. */
void fs_tree_remove_msg(struct fs_tree *tree, uint64_t dir, uint32_t uid);

/* Moves the local file @name of @parent to @newname in @newparent (a
 * local file there is replaced and goes). -ENOENT, -EPERM (not a
 * mailbox). */
int fs_tree_move_local(struct fs_tree *tree, uint64_t parent, const char *name,
		       uint64_t newparent, const char *newname);

/* Gives message @ino of @dir the name @newname in the same folder (it is
 * then listed under it; neither "<UID>.eml" nor the names it was written
 * under name it any more). */
int fs_tree_rename_msg(struct fs_tree *tree, uint64_t ino, const char *newname);

/* Message @ino was moved by the server to folder @newdir as @newuid (0:
 * unknown, the node leaves and @newdir is reloaded later), named
 * @newname there. @src_kept: it was copied and the original only
 * flagged \Deleted (-o delete=flag), which stays in its folder under its
 * UID, hidden, as a node of its own. */
void fs_tree_move_msg(struct fs_tree *tree, uint64_t ino, uint64_t newdir,
		      uint32_t uidvalidity, uint32_t newuid,
		      const char *newname, gboolean src_kept);

/* Message @ino was flagged \Deleted by us (rm with -o delete=flag): it
 * stays, with \Deleted added to its flags (hidden, see
 * fs_tree_set_hide_deleted()). */
void fs_tree_flag_deleted(struct fs_tree *tree, uint64_t ino);

/* Sets the flags of message @ino (after a STORE). */
void fs_tree_set_msg_flags(struct fs_tree *tree, uint64_t ino,
			   const char *flags);

/* Directories: a new mailbox @mailbox (server name) @name in @parent,
 * with one kernel reference; -EEXIST if the name is taken. */
int fs_tree_add_dir(struct fs_tree *tree, uint64_t parent, const char *name,
		    const char *mailbox, struct fs_entry *entry_r);
/* Removes directory @name of @parent (gone, with its content). */
void fs_tree_remove_dir(struct fs_tree *tree, uint64_t parent,
			const char *name);
/* Moves directory @name of @parent to @newname in @newparent; its mailbox
 * and those below it are renamed from its old server name to
 * @new_mailbox (prefix replaced). Keeps every inode. */
int fs_tree_move_dir(struct fs_tree *tree, uint64_t parent, const char *name,
		     uint64_t newparent, const char *newname,
		     const char *new_mailbox);

/* The highest UID known in folder @dir (0 if none). */
uint32_t fs_tree_max_uid(struct fs_tree *tree, uint64_t dir);

/* Number of non-directory entries (messages, local files) and
 * subdirectories of directory @ino, from memory. */
void fs_tree_dir_counts(struct fs_tree *tree, uint64_t ino,
			unsigned int *locals_r, unsigned int *subdirs_r);
/* Marks every folder listing and the mailbox list as stale, so the next
 * access to each reloads it (SIGHUP, "imapfs refresh"). Any thread. */
void fs_tree_invalidate_all(struct fs_tree *tree);

/* Number of message nodes in the tree (for statfs's f_files). */
uint64_t fs_tree_count_files(struct fs_tree *tree);

#endif
