/* tree-private.h - the node structures shared by tree.c (reading,
 * listings) and tree_write.c (the write path's deltas). Not for use
 * outside those two files. Every field is protected by fs_tree.lock. */
#ifndef IMAPFS_FS_TREE_PRIVATE_H
#define IMAPFS_FS_TREE_PRIVATE_H

#include <stddef.h>

#include "spool.h"
#include "tree.h"

/* How long fs_tree_folder_begin() waits for another thread's load (the
 * load itself is bounded by the IMAP timeouts; this only guards against
 * a bug turning into a hang). */
#define TREE_LOAD_WAIT_US (300 * G_USEC_PER_SEC)
/* A claimed RFC822.SIZE above this is not plausible (and near 2^63 the
 * kernel refuses it): such a message answers EIO instead of attributes. */
#define TREE_MAX_SIZE ((uint64_t)1 << 53)
/* First read-ahead window of a sequential read; it doubles from there. */
#define TREE_INITIAL_READAHEAD (256 * 1024)

/* TREE_LOCAL: a file that exists only here (a scratch file, or a new
 * message not yet sent), its bytes in a spool file. */
enum tree_kind { TREE_DIR, TREE_MSG, TREE_LOCAL };

/* A node. Message and local-file nodes are allocated only up to
 * TREE_SMALL_NODE (the fields before the TREE_DIR part): a folder may hold
 * a million messages, and the directory fields would more than double
 * each one. Never touch a TREE_DIR field of a node without checking its
 * kind, and never copy a node by value. */
struct tree_node {
	uint64_t ino; /* first: &n->ino is the key of tree->nodes */
	enum tree_kind kind : 2;
	unsigned int gone : 1;
	/* TREE_MSG: listed under a name of its own (in parent->locals)
	 * rather than "<UID>.eml". */
	unsigned int renamed : 1;
	unsigned int size_verified : 1;
	/* Mark of the listing being applied (fs_tree_folder_end). */
	unsigned int listed : 1;
	uint32_t uid; /* TREE_MSG */
	char *name;
	struct tree_node *parent;
	uint64_t nlookup;

	/* TREE_MSG and TREE_LOCAL: the spool file (a local file's bytes,
	 * or a message's shadow copy while it is edited), or NULL. */
	struct fs_spool *spool;
	/* The folder generation at which this mount created the node. */
	uint64_t born_gen;

	/* TREE_MSG */
	uint64_t size;
	gint64 mtime;
	const char *flags;  /* interned: tree_flags_intern() */
	uint64_t ra_next;   /* where a sequential read would continue */
	uint64_t ra_window; /* current read-ahead */

	/* TREE_DIR only: not allocated for other kinds. */
	char *mailbox; /* server name, NULL if not a mailbox */
	gboolean selectable;
	/* The server's name of this level even if it is no mailbox (NULL
	 * for the root and namespace directories), and the MYRIGHTS of the
	 * mailbox (NULL: not restricted). */
	char *server_name;
	char *rights;
	gboolean assigned;   /* mark for fs_tree_set_mailboxes */
	GHashTable *subdirs; /* name -> struct tree_node * */
	GHashTable *msgs;    /* GUINT_TO_POINTER(uid) -> struct tree_node * */
	uint32_t uidvalidity;
	gint64 loaded_at; /* monotonic us, 0 = not loaded */
	char delimiter;	  /* the mailbox's hierarchy delimiter */
	/* Names that are not "<UID>.eml": local files and messages renamed
	 * in this directory (listed), name -> struct tree_node *. */
	GHashTable *locals;
	/* Names that resolve to a message without being listed (the name a
	 * message was written under, the old name of a replaced message):
	 * name (owned) -> GUINT_TO_POINTER(uid). */
	GHashTable *aliases;
	/* UIDs this mount removed, GUINT_TO_POINTER(uid) -> generation as
	 * (guint64 *): a listing that began before may still show them. */
	GHashTable *tombs;
	/* Generation of the last delta applied to this folder (sshfs's
	 * write_ctr) and the one current when the load in progress began. */
	uint64_t gen;
	uint64_t load_gen;
	gboolean loading;    /* a full load is in progress */
	gboolean refreshing; /* an incremental refresh is in progress */
	gboolean seen;	     /* mark for fs_tree_set_mailboxes */
	/* When this mount made the directory (mkdir) or moved it here
	 * (rename), monotonic us; 0: never. */
	gint64 own_at;
	/* What the last mailbox list said of it (LIST-STATUS; 0: nothing):
	 * how a mailbox renamed by another client is recognised. */
	uint32_t list_uidvalidity, list_exists, list_uidnext;
	GArray *uids; /* sorted UIDs of msgs (uint32_t) */
	/* What the server said at the last load or refresh (the base of the
	 * next incremental refresh); uidnext 0 = unknown. */
	uint32_t srv_uidnext;
	uint32_t srv_exists;
	uint64_t srv_modseq;
	/* The live view (tree_live.c): HIGHESTMODSEQ the listing and the
	 * deltas since are current to (0: unknown), and when the folder
	 * was last asked for (monotonic us). */
	uint64_t modseq;
	gint64 used_at;
	uint32_t last_read_uid; /* prefetch: the walk so far */
	unsigned int streak;
	uint32_t prefetch_mark; /* highest UID planned */
	unsigned int prefetch_window;
};

#define TREE_SMALL_NODE offsetof(struct tree_node, mailbox)

struct fs_tree {
	GMutex lock;
	GCond load_cond;
	/* Everything below is protected by lock. */
	GHashTable *nodes; /* ino -> struct tree_node * */
	/* Every TREE_DIR node (gone ones too: directory nodes are freed
	 * only with the tree), so that a walk over the folders never walks
	 * a million message nodes. */
	GPtrArray *dirs;
	uint64_t next_ino;
	struct tree_node *root;
	gint64 mailboxes_time;
	/* Raised by each of this mount's own changes to the folder tree
	 * (mkdir, rmdir, rename of a directory): a mailbox list asked for
	 * before one of them is older than it and is not applied. */
	uint64_t mailboxes_gen;
	uint64_t nfiles;
	uid_t uid;
	gid_t gid;
	mode_t file_mode, dir_mode;
	gint64 mount_time;
	char delimiter; /* the hierarchy delimiter LIST reported */
	/* Called (under lock; must not block) when a folder listing was
	 * loaded: the live view's wake-up (tree_live.c). May be NULL. */
	void (*load_hook)(void *user_data);
	void *load_hook_data;
	/* The primary personal namespace (from the last mailbox list). */
	char *personal_prefix;
	char personal_delimiter;
	/* Interned flag strings: string -> struct tree_flags (most messages
	 * share a handful of flag sets). */
	GHashTable *flag_sets;
	/* -o delete=flag: messages flagged \Deleted are not shown
	 * (tree_hidden()). */
	gboolean hide_deleted;
	/* Counters for "imapfs status" and the benchmark. */
	uint64_t full_loads;
	uint64_t refreshes;
};

struct tree_node *tree_node_new(struct fs_tree *tree, enum tree_kind kind,
				const char *name, struct tree_node *parent);
/* Returns the interned copy of @flags (one more reference); NULL reads
 * as "". */
const char *tree_flags_intern(struct fs_tree *tree, const char *flags);
/* Drops one reference of an interned string (NULL is allowed). */
void tree_flags_unref(struct fs_tree *tree, const char *flags);
/* TRUE if @n is a message this mount does not show: with hide_deleted,
 * one whose flags hold \Deleted (whoever set it). It stays in its
 * folder's msgs and uids all the same, so that the folder's count is the
 * server's. */
gboolean tree_hidden(const struct fs_tree *tree, const struct tree_node *n);
/* Adds \Deleted to the flags of message @msg (our STORE succeeded). */
void tree_flag_deleted(struct fs_tree *tree, struct tree_node *msg);
struct tree_node *tree_find(struct fs_tree *tree, uint64_t ino);
void tree_msg_gone(struct fs_tree *tree, struct tree_node *msg);
void tree_maybe_drop(struct fs_tree *tree, struct tree_node *n);
void tree_fill_entry(struct fs_tree *tree, struct tree_node *n,
		     struct fs_entry *e);
void tree_dir_gone(struct fs_tree *tree, struct tree_node *dir);
struct tree_node *tree_subdir(struct fs_tree *tree, struct tree_node *parent,
			      const char *name);
void tree_rebuild_uids(struct tree_node *dir);
/* Keep dir->uids (sorted) in step with one message added or removed,
 * without walking the folder: a delta costs a binary search. */
void tree_uids_add(struct tree_node *dir, uint32_t uid);
void tree_uids_remove(struct tree_node *dir, uint32_t uid);
/* Index of the first UID in dir->uids (sorted) greater than @uid. */
guint tree_uid_upper(GArray *uids, uint32_t uid);
/* The child @name of @dir: subdirectory, local file, message by
 * "<UID>.eml" or by alias; NULL if none (a hidden message is none). */
struct tree_node *tree_child(struct fs_tree *tree, struct tree_node *dir,
			     const char *name);
/* Removes every name of @msg in @dir other than "<UID>.eml" (its entry
 * in locals if renamed, aliases naming its UID). */
void tree_drop_msg_names(struct tree_node *dir, struct tree_node *msg);

/* tree_write.c's delta primitives, shared with tree_live.c: raise @dir's
 * generation (returns the new one); take @n out of the directory it is
 * listed in (not freeing it); remember that @uid of @dir was removed at
 * the current generation. */
uint64_t tree_bump(struct tree_node *dir);
/* Replaces the prefix @from of the mailbox names of @d and below by @to
 * (their listings are kept, to be refreshed under the new names). */
void tree_rename_mailboxes(struct tree_node *d, const char *from,
			   const char *to);
void tree_unlink_node(struct tree_node *n);
void tree_tomb(struct tree_node *dir, uint32_t uid);

#endif
