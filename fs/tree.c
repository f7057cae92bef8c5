/* tree.c - see tree.h. */
#include "config.h"

#include <errno.h>
#include <string.h>

#include "acl.h"
#include "log.h"
#include "mutate.h"
#include "namemap.h"
#include "reqctx.h"
#include "tree-private.h"

void fs_entry_clear(struct fs_entry *entry)
{
	g_clear_pointer(&entry->name, g_free);
	g_clear_pointer(&entry->mailbox, g_free);
	g_clear_pointer(&entry->flags, g_free);
	g_clear_pointer(&entry->spool, fs_spool_unref);
	g_clear_pointer(&entry->rights, g_free);
}

mode_t fs_tree_rights_mode(mode_t mode, const char *rights)
{
	if (!imap_acl_has_right(rights, 'r'))
		mode &= ~(mode_t)(S_IRUSR | S_IRGRP | S_IROTH);
	if (!imap_acl_has_right(rights, 'i') &&
	    !imap_acl_has_right(rights, 't') &&
	    !imap_acl_has_right(rights, 'e'))
		mode &= ~(mode_t)(S_IWUSR | S_IWGRP | S_IWOTH);
	return mode;
}

/* Flag sets are interned with a reference count: a million messages
 * share a handful of strings such as "\\Seen" and "". */
struct tree_flags {
	guint refs;
	gboolean deleted; /* the set holds \Deleted */
	char str[];
};

const char *tree_flags_intern(struct fs_tree *tree, const char *flags)
{
	struct tree_flags *f;
	size_t len;

	if (flags == NULL)
		flags = "";
	f = g_hash_table_lookup(tree->flag_sets, flags);
	if (f == NULL) {
		len = strlen(flags);
		f = g_malloc(sizeof(*f) + len + 1);
		f->refs = 0;
		f->deleted = imap_flags_contain(flags, "\\Deleted");
		memcpy(f->str, flags, len + 1);
		g_hash_table_insert(tree->flag_sets, f->str, f);
	}
	f->refs++;
	return f->str;
}

void tree_flags_unref(struct fs_tree *tree, const char *flags)
{
	struct tree_flags *f;

	if (flags == NULL)
		return;
	f = (struct tree_flags *)(void *)(flags -
					  offsetof(struct tree_flags, str));
	if (--f->refs == 0)
		g_hash_table_remove(tree->flag_sets, f->str);
}

gboolean tree_hidden(const struct fs_tree *tree, const struct tree_node *n)
{
	const struct tree_flags *f;

	if (!tree->hide_deleted || n->kind != TREE_MSG || n->flags == NULL)
		return FALSE;
	f = (const struct tree_flags *)(const void *)(n->flags -
						      offsetof(
							      struct tree_flags,
							      str));
	return f->deleted;
}

void tree_flag_deleted(struct fs_tree *tree, struct tree_node *msg)
{
	const char *old = msg->flags != NULL ? msg->flags : "";
	char *flags;

	if (imap_flags_contain(old, "\\Deleted"))
		return;
	flags = *old != '\0' ? g_strconcat(old, " \\Deleted", NULL)
			     : g_strdup("\\Deleted");
	tree_flags_unref(tree, msg->flags);
	msg->flags = tree_flags_intern(tree, flags);
	g_free(flags);
}

struct tree_node *tree_node_new(struct fs_tree *tree, enum tree_kind kind,
				const char *name, struct tree_node *parent)
{
	struct tree_node *n = g_malloc0(
		kind == TREE_DIR ? sizeof(struct tree_node) : TREE_SMALL_NODE);

	n->ino = tree->next_ino++;
	n->kind = kind;
	n->name = g_strdup(name);
	n->parent = parent;
	if (kind == TREE_DIR) {
		n->subdirs = g_hash_table_new(g_str_hash, g_str_equal);
		n->msgs = g_hash_table_new(g_direct_hash, g_direct_equal);
		n->uids = g_array_new(FALSE, FALSE, sizeof(uint32_t));
		n->locals = g_hash_table_new(g_str_hash, g_str_equal);
		n->aliases = g_hash_table_new_full(g_str_hash, g_str_equal,
						   g_free, NULL);
		n->tombs = g_hash_table_new_full(g_direct_hash, g_direct_equal,
						 NULL, g_free);
		g_ptr_array_add(tree->dirs, n);
	} else {
		tree->nfiles++;
	}
	g_hash_table_insert(tree->nodes, &n->ino, n);
	return n;
}

static void tree_node_free(struct fs_tree *tree, struct tree_node *n)
{
	if (n->kind == TREE_DIR) {
		g_hash_table_destroy(n->subdirs);
		g_hash_table_destroy(n->msgs);
		g_array_unref(n->uids);
		g_hash_table_destroy(n->locals);
		g_hash_table_destroy(n->aliases);
		g_hash_table_destroy(n->tombs);
		g_free(n->mailbox);
		g_free(n->server_name);
		g_free(n->rights);
	}
	fs_spool_unref(n->spool);
	g_free(n->name);
	tree_flags_unref(tree, n->flags);
	g_free(n);
}

struct fs_tree *fs_tree_new(uid_t uid, gid_t gid, mode_t file_mode,
			    mode_t dir_mode)
{
	struct fs_tree *tree = g_new0(struct fs_tree, 1);

	g_mutex_init(&tree->lock);
	g_cond_init(&tree->load_cond);
	tree->nodes = g_hash_table_new(g_int64_hash, g_int64_equal);
	tree->dirs = g_ptr_array_new();
	tree->flag_sets =
		g_hash_table_new_full(g_str_hash, g_str_equal, NULL, g_free);
	tree->next_ino = FS_ROOT_INO;
	tree->uid = uid;
	tree->gid = gid;
	tree->file_mode = file_mode;
	tree->dir_mode = dir_mode;
	tree->mount_time = g_get_real_time() / G_USEC_PER_SEC;
	tree->root = tree_node_new(tree, TREE_DIR, "", NULL);
	tree->root->parent = tree->root;
	return tree;
}

void fs_tree_set_hide_deleted(struct fs_tree *tree, gboolean hide)
{
	g_mutex_lock(&tree->lock);
	tree->hide_deleted = hide;
	g_mutex_unlock(&tree->lock);
}

void fs_tree_free(struct fs_tree *tree)
{
	GHashTableIter it;
	gpointer v;

	g_hash_table_iter_init(&it, tree->nodes);
	while (g_hash_table_iter_next(&it, NULL, &v))
		tree_node_free(tree, v);
	g_hash_table_destroy(tree->nodes);
	g_ptr_array_unref(tree->dirs);
	g_hash_table_destroy(tree->flag_sets);
	g_free(tree->personal_prefix);
	g_mutex_clear(&tree->lock);
	g_cond_clear(&tree->load_cond);
	g_free(tree);
}

struct tree_node *tree_find(struct fs_tree *tree, uint64_t ino)
{
	return g_hash_table_lookup(tree->nodes, &ino);
}

/* Frees a gone message node nobody refers to any more. */
void tree_maybe_drop(struct fs_tree *tree, struct tree_node *n)
{
	if (n->kind == TREE_DIR || !n->gone || n->nlookup > 0)
		return;
	g_hash_table_remove(tree->nodes, &n->ino);
	tree->nfiles--;
	tree_node_free(tree, n);
}

/* Removes a message from its folder; it stays reachable by inode for the
 * kernel's references until forgotten. */
void tree_msg_gone(struct fs_tree *tree, struct tree_node *msg)
{
	msg->gone = TRUE;
	tree_maybe_drop(tree, msg);
}

void tree_fill_entry(struct fs_tree *tree, struct tree_node *n,
		     struct fs_entry *e)
{
	memset(e, 0, sizeof(*e));
	e->ino = n->ino;
	e->name = g_strdup(n->name);
	e->st.st_ino = n->ino;
	e->st.st_uid = tree->uid;
	e->st.st_gid = tree->gid;
	e->st.st_blksize = 4096;
	if (n->kind == TREE_DIR) {
		e->is_dir = TRUE;
		e->selectable = n->selectable;
		e->mailbox = g_strdup(n->mailbox);
		e->uidvalidity = n->uidvalidity;
		e->rights = g_strdup(n->rights);
		e->st.st_mode = S_IFDIR |
				fs_tree_rights_mode(tree->dir_mode, n->rights);
		e->st.st_nlink = 2 + g_hash_table_size(n->subdirs);
		e->st.st_size = 4096;
		e->st.st_blocks = 8;
		e->st.st_mtime = e->st.st_ctime = e->st.st_atime =
			tree->mount_time;
	} else if (n->kind == TREE_LOCAL) {
		struct fs_spool_attr a;

		fs_spool_get_attr(n->spool, &a);
		e->is_local = TRUE;
		e->spool = fs_spool_ref(n->spool);
		e->rights = g_strdup(n->parent->rights);
		e->mailbox = g_strdup(n->parent->mailbox);
		e->flags = a.flags != NULL ? a.flags : g_strdup("");
		e->size_verified = TRUE;
		e->st.st_mode = S_IFREG | (a.mode & 07777);
		e->st.st_nlink = 1;
		e->st.st_size = (off_t)a.size;
		e->st.st_blocks = (blkcnt_t)((a.size + 511) / 512);
		e->st.st_mtime = a.mtime;
		e->st.st_atime = a.atime;
		e->st.st_ctime = a.ctime;
	} else {
		struct tree_node *dir = n->parent;

		e->mailbox = g_strdup(dir->mailbox);
		e->uidvalidity = dir->uidvalidity;
		e->uid = n->uid;
		e->flags = g_strdup(n->flags);
		e->rights = g_strdup(dir->rights);
		e->size_verified = n->size_verified;
		e->bad_size = n->size > TREE_MAX_SIZE;
		e->size_unknown = n->size == 0 && !n->size_verified;
		e->st.st_mode = S_IFREG | fs_tree_rights_mode(tree->file_mode,
							      dir->rights);
		e->st.st_nlink = 1;
		e->st.st_size = (off_t)n->size;
		/* Never 0, so du and file managers see the space. */
		e->st.st_blocks = (blkcnt_t)MAX((n->size + 511) / 512, 1);
		e->st.st_mtime = e->st.st_ctime = e->st.st_atime = n->mtime;
		if (n->spool != NULL) {
			/* Being edited: the shadow copy is the content. */
			struct fs_spool_attr a;

			fs_spool_get_attr(n->spool, &a);
			g_free(a.flags);
			e->spool = fs_spool_ref(n->spool);
			e->size_verified = TRUE;
			e->size_unknown = FALSE;
			e->bad_size = FALSE;
			e->st.st_size = (off_t)a.size;
			e->st.st_blocks = (blkcnt_t)((a.size + 511) / 512);
		}
	}
	e->parent = n->parent != NULL ? n->parent->ino : FS_ROOT_INO;
}

gint64 fs_tree_mailboxes_time(struct fs_tree *tree)
{
	gint64 t;

	g_mutex_lock(&tree->lock);
	t = tree->mailboxes_time;
	g_mutex_unlock(&tree->lock);
	return t;
}

struct tree_node *tree_subdir(struct fs_tree *tree, struct tree_node *parent,
			      const char *name)
{
	struct tree_node *d = g_hash_table_lookup(parent->subdirs, name);

	if (d == NULL) {
		d = tree_node_new(tree, TREE_DIR, name, parent);
		g_hash_table_insert(parent->subdirs, d->name, d);
	}
	return d;
}

static void tree_clear_seen(struct tree_node *dir)
{
	GHashTableIter it;
	gpointer v;

	dir->seen = FALSE;
	dir->assigned = FALSE;
	g_hash_table_iter_init(&it, dir->subdirs);
	while (g_hash_table_iter_next(&it, NULL, &v))
		tree_clear_seen(v);
}

void tree_dir_gone(struct fs_tree *tree, struct tree_node *dir)
{
	GHashTableIter it;
	gpointer v;

	dir->gone = TRUE;
	g_hash_table_iter_init(&it, dir->subdirs);
	while (g_hash_table_iter_next(&it, NULL, &v))
		tree_dir_gone(tree, v);
	g_hash_table_remove_all(dir->subdirs);
	g_hash_table_iter_init(&it, dir->locals);
	while (g_hash_table_iter_next(&it, NULL, &v)) {
		struct tree_node *l = v;

		g_hash_table_iter_remove(&it);
		if (l->kind == TREE_LOCAL) {
			/* Unsent data of a folder that vanished stays in
			 * the spool (fs_spool_dir_close() logs it). */
			l->gone = TRUE;
			tree_maybe_drop(tree, l);
		}
	}
	g_hash_table_iter_init(&it, dir->msgs);
	while (g_hash_table_iter_next(&it, NULL, &v)) {
		g_hash_table_iter_remove(&it);
		tree_msg_gone(tree, v);
	}
	g_hash_table_remove_all(dir->aliases);
	/* Directory nodes are few: they stay allocated so that inode
	 * numbers the kernel holds keep answering (ENOENT). */
}

/* A directory that is no longer a selectable mailbox keeps its place (its
 * children may still exist) but loses its messages. */
static void tree_dir_unselect(struct fs_tree *tree, struct tree_node *dir)
{
	GHashTableIter it;
	gpointer v;

	g_hash_table_iter_init(&it, dir->msgs);
	while (g_hash_table_iter_next(&it, NULL, &v)) {
		g_hash_table_iter_remove(&it);
		tree_msg_gone(tree, v);
	}
	g_array_set_size(dir->uids, 0);
	dir->selectable = FALSE;
	dir->uidvalidity = 0;
	dir->loaded_at = 0;
}

/* Drops directories not marked seen; a level that is only a parent now
 * (its mailbox was deleted, or LIST says \NonExistent) stops being a
 * mailbox. */
/* A directory this mount made or moved to its place this recently stays
 * as it is when a mailbox list leaves it out: Dovecot refreshes its
 * mailbox list index at most once a second, so a LIST right after our own
 * CREATE or RENAME, even on the same session, may not show it yet
 * (test_own_folder_rename_races_nothing failed on it once the live view's
 * polls stopped stirring the index). The next list decides. */
#define TREE_OWN_GRACE_US (3 * G_USEC_PER_SEC)

static void tree_sweep(struct fs_tree *tree, struct tree_node *dir, gint64 now)
{
	GHashTableIter it;
	gpointer v;

	g_hash_table_iter_init(&it, dir->subdirs);
	while (g_hash_table_iter_next(&it, NULL, &v)) {
		struct tree_node *d = v;

		if ((!d->seen || !d->assigned) && d->own_at != 0 &&
		    now - d->own_at < TREE_OWN_GRACE_US)
			continue; /* with what is below it */
		if (!d->seen) {
			g_hash_table_iter_remove(&it);
			tree_dir_gone(tree, d);
			continue;
		}
		if (!d->assigned) {
			g_clear_pointer(&d->mailbox, g_free);
			g_clear_pointer(&d->rights, g_free);
			tree_dir_unselect(tree, d);
		}
		tree_sweep(tree, d, now);
	}
}

/* Makes @d the directory of mailbox @info. */
static void tree_assign(struct fs_tree *tree, struct tree_node *d,
			const struct imap_mailbox_info *info)
{
	if (d->assigned && d->mailbox != NULL &&
	    strcmp(d->mailbox, info->name) != 0) {
		/* Two server names map to one file name (an invalid mUTF-7
		 * name shown raw): the first one wins. */
		imapfs_warning("mailboxes %s and %s map to the same name; "
			       "showing the first",
			       d->mailbox, info->name);
		return;
	}
	d->assigned = TRUE;
	g_free(d->mailbox);
	d->mailbox = g_strdup(info->name);
	g_free(d->server_name);
	d->server_name = g_strdup(info->name);
	d->delimiter = info->delimiter;
	d->list_uidvalidity = info->uidvalidity;
	d->list_exists = info->exists;
	d->list_uidnext = info->uidnext;
	g_free(d->rights);
	d->rights = g_strdup(info->rights);
	if (info->noselect)
		tree_dir_unselect(tree, d);
	else
		d->selectable = TRUE;
}

/* Adds every mailbox directory at and below @d to @out (name -> node). */
static void tree_index_mailboxes(struct tree_node *d, GHashTable *out)
{
	GHashTableIter it;
	gpointer v;

	if (d->mailbox != NULL && !d->gone)
		g_hash_table_insert(out, d->mailbox, d);
	g_hash_table_iter_init(&it, d->subdirs);
	while (g_hash_table_iter_next(&it, NULL, &v))
		tree_index_mailboxes(v, out);
}

/* Whether @info (a name new in the list) is the mailbox of @d (a name gone
 * from it) under a new name: the server said so (OLDNAME), or it has the
 * same UIDVALIDITY (kept across RENAME, unique per user on Dovecot) and
 * the same MESSAGES and UIDNEXT as when we last heard of @d. */
static gboolean tree_is_renamed(const struct tree_node *d,
				const struct imap_mailbox_info *info)
{
	uint32_t uv =
		d->uidvalidity != 0 ? d->uidvalidity : d->list_uidvalidity;

	if (info->old_name != NULL)
		return strcmp(info->old_name, d->mailbox) == 0;
	if (info->uidvalidity == 0 || uv != info->uidvalidity)
		return FALSE;
	return (d->list_uidnext != 0 && info->uidnext == d->list_uidnext &&
		info->exists == d->list_exists) ||
	       (d->srv_uidnext != 0 && info->uidnext == d->srv_uidnext &&
		info->exists == d->srv_exists);
}

static gint tree_by_length(gconstpointer a, gconstpointer b)
{
	size_t x = strlen((*(struct imap_mailbox_info *const *)a)->name);
	size_t y = strlen((*(struct imap_mailbox_info *const *)b)->name);

	return x < y ? -1 : x > y;
}

/* Moves @d (with what is below it: inodes, listings, cached bodies) to
 * the path @names of mailbox @info, unless that place is taken. */
static gboolean tree_move_renamed(struct fs_tree *tree, struct tree_node *d,
				  const struct imap_mailbox_info *info,
				  char *const *names)
{
	struct tree_node *p = tree->root;
	char *old;
	guint j;

	for (j = 0; names[j] != NULL && names[j + 1] != NULL; j++) {
		if (strlen(names[j]) > 255)
			return FALSE;
		p = tree_subdir(tree, p, names[j]);
	}
	if (names[0] == NULL || strlen(names[j]) > 255 ||
	    g_hash_table_lookup(p->subdirs, names[j]) != NULL)
		return FALSE;
	for (struct tree_node *up = p; up != tree->root; up = up->parent) {
		if (up == d)
			return FALSE; /* into itself */
	}
	imapfs_info("%s was renamed to %s (by another client)", d->mailbox,
		    info->name);
	g_hash_table_remove(d->parent->subdirs, d->name);
	g_free(d->name);
	d->name = g_strdup(names[j]);
	d->parent = p;
	g_hash_table_insert(p->subdirs, d->name, d);
	old = g_strdup(d->mailbox);
	tree_rename_mailboxes(d, old, info->name);
	g_free(old);
	return TRUE;
}

/* Mailboxes another client renamed (names gone from the list, each with a
 * new name that is the same mailbox, tree_is_renamed()) keep their
 * directories: moved to the new place before the list is applied.
 * Parents first, so that a renamed parent takes its children along. */
static void tree_follow_renames(struct fs_tree *tree, GPtrArray *infos,
				GPtrArray *paths)
{
	GHashTable *listed = g_hash_table_new(g_str_hash, g_str_equal);
	GHashTable *where = g_hash_table_new(g_direct_hash, g_direct_equal);
	GPtrArray *fresh = g_ptr_array_new();
	GHashTable *known;
	guint i;

	for (i = 0; i < infos->len; i++) {
		struct imap_mailbox_info *info = infos->pdata[i];

		g_hash_table_add(listed, info->name);
		g_hash_table_insert(where, info, paths->pdata[i]);
	}
	known = g_hash_table_new(g_str_hash, g_str_equal);
	tree_index_mailboxes(tree->root, known);
	for (i = 0; i < infos->len; i++) {
		struct imap_mailbox_info *info = infos->pdata[i];

		if (!info->noselect &&
		    !g_hash_table_contains(known, info->name) &&
		    (info->uidvalidity != 0 || info->old_name != NULL))
			g_ptr_array_add(fresh, info);
	}
	g_ptr_array_sort(fresh, tree_by_length);
	for (i = 0; i < fresh->len; i++) {
		const struct imap_mailbox_info *info = fresh->pdata[i];
		const struct fs_namemap_path *mp =
			g_hash_table_lookup(where, info);
		struct tree_node *match = NULL;
		GHashTableIter it;
		gpointer k, v;
		guint n = 0;

		if (g_hash_table_contains(known, info->name))
			continue; /* came along with its parent */
		g_hash_table_iter_init(&it, known);
		while (g_hash_table_iter_next(&it, &k, &v)) {
			if (!g_hash_table_contains(listed, k) &&
			    ((struct tree_node *)v)->selectable &&
			    tree_is_renamed(v, info)) {
				match = v;
				n++;
			}
		}
		if (n != 1 || !tree_move_renamed(tree, match, info, mp->names))
			continue;
		g_hash_table_remove_all(known);
		tree_index_mailboxes(tree->root, known);
	}
	g_ptr_array_unref(fresh);
	g_hash_table_destroy(known);
	g_hash_table_destroy(where);
	g_hash_table_destroy(listed);
}

/* The names of @infos (borrowed), as a set. */
static GHashTable *tree_listed_names(GPtrArray *infos)
{
	GHashTable *listed = g_hash_table_new(g_str_hash, g_str_equal);

	for (guint i = 0; i < infos->len; i++)
		g_hash_table_add(
			listed,
			((struct imap_mailbox_info *)infos->pdata[i])->name);
	return listed;
}

GPtrArray *fs_tree_rename_candidates(struct fs_tree *tree, GPtrArray *infos,
				     guint max)
{
	GHashTable *listed = tree_listed_names(infos);
	GHashTable *known = g_hash_table_new(g_str_hash, g_str_equal);
	GPtrArray *ask = g_ptr_array_new();
	gboolean vanished = FALSE;
	GHashTableIter it;
	gpointer k, v;
	guint i;

	g_mutex_lock(&tree->lock);
	tree_index_mailboxes(tree->root, known);
	/* Only a folder whose UIDVALIDITY we know can be recognised under a
	 * new name (tree_is_renamed()): none of them gone, nothing to ask. */
	g_hash_table_iter_init(&it, known);
	while (!vanished && g_hash_table_iter_next(&it, &k, &v)) {
		const struct tree_node *d = v;

		vanished = !g_hash_table_contains(listed, k) && d->selectable &&
			   (d->uidvalidity != 0 || d->list_uidvalidity != 0);
	}
	for (i = 0; vanished && i < infos->len; i++) {
		struct imap_mailbox_info *info = infos->pdata[i];

		if (!info->noselect && info->uidvalidity == 0 &&
		    info->old_name == NULL &&
		    !g_hash_table_contains(known, info->name))
			g_ptr_array_add(ask, info);
	}
	g_mutex_unlock(&tree->lock);
	/* Parents first: one renamed parent takes its children along. */
	g_ptr_array_sort(ask, tree_by_length);
	if (ask->len > max)
		g_ptr_array_set_size(ask, max);
	g_hash_table_destroy(known);
	g_hash_table_destroy(listed);
	return ask;
}

static gint tree_by_strlen(gconstpointer a, gconstpointer b)
{
	size_t x = strlen(*(char *const *)a), y = strlen(*(char *const *)b);

	return x < y ? -1 : x > y;
}

GPtrArray *fs_tree_gone_mailboxes(struct fs_tree *tree, GPtrArray *infos,
				  guint max)
{
	GHashTable *listed = tree_listed_names(infos);
	GHashTable *known = g_hash_table_new(g_str_hash, g_str_equal);
	GPtrArray *gone = g_ptr_array_new_with_free_func(g_free);
	GHashTableIter it;
	gpointer k, v;

	g_mutex_lock(&tree->lock);
	tree_index_mailboxes(tree->root, known);
	g_hash_table_iter_init(&it, known);
	while (g_hash_table_iter_next(&it, &k, &v)) {
		const struct tree_node *d = v;

		if (d->selectable && !g_hash_table_contains(listed, k))
			g_ptr_array_add(gone, g_strdup(k));
	}
	g_mutex_unlock(&tree->lock);
	g_ptr_array_sort(gone, tree_by_strlen);
	if (gone->len > max)
		g_ptr_array_set_size(gone, max);
	g_hash_table_destroy(known);
	g_hash_table_destroy(listed);
	return gone;
}

uint64_t fs_tree_mailboxes_gen(struct fs_tree *tree)
{
	uint64_t gen;

	g_mutex_lock(&tree->lock);
	gen = tree->mailboxes_gen;
	g_mutex_unlock(&tree->lock);
	return gen;
}

void fs_tree_set_mailboxes(struct fs_tree *tree, GPtrArray *infos)
{
	fs_tree_set_mailboxes_since(tree, infos, fs_tree_mailboxes_gen(tree));
}

gboolean fs_tree_set_mailboxes_since(struct fs_tree *tree, GPtrArray *infos,
				     uint64_t gen)
{
	return fs_tree_set_mailboxes_keep(tree, infos, gen, NULL);
}

/* Marks the directories of mailboxes @keep (names) as listed, with their
 * parents: tree_sweep() leaves them as they are. */
static void tree_keep_mailboxes(struct fs_tree *tree, GPtrArray *keep)
{
	GHashTable *known = g_hash_table_new(g_str_hash, g_str_equal);

	tree_index_mailboxes(tree->root, known);
	for (guint i = 0; i < keep->len; i++) {
		struct tree_node *d =
			g_hash_table_lookup(known, keep->pdata[i]);

		if (d == NULL || d->seen)
			continue;
		imapfs_info("%s exists but the server's list left it out: "
			    "kept",
			    d->mailbox);
		d->assigned = TRUE;
		for (; d != NULL && d != tree->root; d = d->parent)
			d->seen = TRUE;
	}
	g_hash_table_destroy(known);
}

gboolean fs_tree_set_mailboxes_keep(struct fs_tree *tree, GPtrArray *infos,
				    uint64_t gen, GPtrArray *keep)
{
	GPtrArray *paths = fs_namemap_mailbox_paths(infos);
	gboolean have_ns = FALSE;
	guint i;

	g_mutex_lock(&tree->lock);
	if (tree->mailboxes_gen != gen) {
		/* Applied, it would undo our newer change (a renamed folder
		 * swept, its old name back, empty). */
		g_mutex_unlock(&tree->lock);
		g_ptr_array_unref(paths);
		return FALSE;
	}
	tree_follow_renames(tree, infos, paths);
	tree_clear_seen(tree->root);
	for (i = 0; i < infos->len; i++) {
		const struct imap_mailbox_info *info = infos->pdata[i];
		const struct fs_namemap_path *mp = paths->pdata[i];
		struct tree_node *d = tree->root;
		gboolean skip = FALSE;
		guint j;

		if (!have_ns && imap_mailbox_info_is_primary(info)) {
			have_ns = TRUE;
			g_free(tree->personal_prefix);
			tree->personal_prefix = g_strdup(
				info->ns_prefix != NULL ? info->ns_prefix : "");
			tree->personal_delimiter = info->delimiter;
		}
		if (info->nonexistent)
			continue;
		for (j = 0; mp->names[j] != NULL; j++) {
			if (strlen(mp->names[j]) > 255) {
				imapfs_warning("mailbox %s: name too long for "
					       "a file name; not shown",
					       info->name);
				skip = TRUE;
				break;
			}
		}
		for (j = 0; !skip && mp->names[j] != NULL; j++) {
			d = tree_subdir(tree, d, mp->names[j]);
			d->seen = TRUE;
			if (!d->assigned && mp->levels[j] != NULL) {
				g_free(d->server_name);
				d->server_name = g_strdup(mp->levels[j]);
				d->delimiter = info->delimiter;
			}
		}
		if (info->delimiter != 0)
			tree->delimiter = info->delimiter;
		if (!skip && d != tree->root)
			tree_assign(tree, d, info);
	}
	if (keep != NULL)
		tree_keep_mailboxes(tree, keep);
	tree->mailboxes_time = g_get_monotonic_time();
	tree_sweep(tree, tree->root, tree->mailboxes_time);
	g_mutex_unlock(&tree->lock);
	g_ptr_array_unref(paths);
	return TRUE;
}

int fs_tree_child_server_name(struct fs_tree *tree, uint64_t parent,
			      const char *name, char **server_name_r)
{
	struct tree_node *dir;
	char *child;
	int ret = 0;

	g_mutex_lock(&tree->lock);
	dir = tree_find(tree, parent);
	if (dir == NULL || dir->gone) {
		ret = -ENOENT;
	} else if (dir->kind != TREE_DIR) {
		ret = -ENOTDIR;
	} else if (dir == tree->root) {
		*server_name_r = fs_namemap_path_to_server_name(
			tree->personal_prefix != NULL ? tree->personal_prefix
						      : "",
			tree->personal_delimiter, &name, 1);
		if (*server_name_r == NULL)
			ret = -EINVAL;
	} else if (dir->server_name == NULL || dir->delimiter == '\0' ||
		   (dir->parent == tree->root &&
		    tree->personal_prefix != NULL &&
		    *tree->personal_prefix != '\0' &&
		    g_ascii_strcasecmp(dir->server_name, "INBOX") == 0)) {
		/* A namespace directory, a flat namespace, or INBOX where
		 * "INBOX.x" is shown as the top-level "x". */
		ret = -EPERM;
	} else {
		child = fs_namemap_path_to_mailbox(&name, 1, dir->delimiter);
		if (child == NULL) {
			ret = -EINVAL;
		} else {
			*server_name_r =
				g_strdup_printf("%s%c%s", dir->server_name,
						dir->delimiter, child);
			g_free(child);
		}
	}
	g_mutex_unlock(&tree->lock);
	return ret;
}

gboolean fs_tree_folder_vanished(struct fs_tree *tree, uint64_t ino)
{
	struct tree_node *dir;
	gboolean parent = FALSE;

	g_mutex_lock(&tree->lock);
	dir = tree_find(tree, ino);
	if (dir != NULL && dir->kind == TREE_DIR && !dir->gone &&
	    g_hash_table_size(dir->subdirs) > 0) {
		tree_dir_unselect(tree, dir);
		parent = TRUE;
	}
	g_mutex_unlock(&tree->lock);
	return parent;
}

int fs_tree_set_rights(struct fs_tree *tree, uint64_t ino, const char *rights)
{
	struct tree_node *n;
	int ret = 0;

	g_mutex_lock(&tree->lock);
	n = tree_find(tree, ino);
	if (n == NULL || n->gone)
		ret = -ENOENT;
	else if (n->kind != TREE_DIR)
		ret = -ENOTDIR;
	else {
		g_free(n->rights);
		n->rights = g_strdup(rights);
	}
	g_mutex_unlock(&tree->lock);
	return ret;
}

struct tree_node *tree_child(struct fs_tree *tree, struct tree_node *dir,
			     const char *name)
{
	struct tree_node *n = g_hash_table_lookup(dir->subdirs, name);
	gpointer uidp;
	guint32 uid;

	if (n != NULL)
		return n;
	/* A hidden message is no name: the name may still resolve further
	 * on (the old "<UID>.eml" of a message edited with -o delete=flag
	 * is an alias of the new version). */
	n = g_hash_table_lookup(dir->locals, name);
	if (n != NULL && !tree_hidden(tree, n))
		return n;
	if (dir->selectable && fs_namemap_parse_message_name(name, &uid)) {
		n = g_hash_table_lookup(dir->msgs, GUINT_TO_POINTER(uid));
		if (n != NULL && !n->renamed && !tree_hidden(tree, n))
			return n;
	}
	if (g_hash_table_lookup_extended(dir->aliases, name, NULL, &uidp)) {
		n = g_hash_table_lookup(dir->msgs, uidp);
		if (n != NULL && !tree_hidden(tree, n))
			return n;
	}
	return NULL;
}

int fs_tree_lookup(struct fs_tree *tree, uint64_t parent, const char *name,
		   struct fs_entry *entry_r)
{
	struct tree_node *dir, *n;
	int ret = 0;

	g_mutex_lock(&tree->lock);
	dir = tree_find(tree, parent);
	if (dir == NULL || dir->gone) {
		ret = -ENOENT;
	} else if (dir->kind != TREE_DIR) {
		ret = -ENOTDIR;
	} else if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0) {
		n = strcmp(name, ".") == 0 ? dir : dir->parent;
		n->nlookup++;
		tree_fill_entry(tree, n, entry_r);
	} else if ((n = tree_child(tree, dir, name)) == NULL) {
		ret = -ENOENT;
	} else if (n->kind == TREE_MSG && n->size > TREE_MAX_SIZE) {
		ret = -EIO;
	} else {
		n->nlookup++;
		tree_fill_entry(tree, n, entry_r);
	}
	g_mutex_unlock(&tree->lock);
	return ret;
}

int fs_tree_get(struct fs_tree *tree, uint64_t ino, struct fs_entry *entry_r)
{
	struct tree_node *n;
	int ret = 0;

	g_mutex_lock(&tree->lock);
	n = tree_find(tree, ino);
	if (n == NULL || n->gone)
		ret = -ENOENT;
	else if (n->kind == TREE_MSG && n->size > TREE_MAX_SIZE)
		ret = -EIO;
	else
		tree_fill_entry(tree, n, entry_r);
	g_mutex_unlock(&tree->lock);
	return ret;
}

int fs_tree_get_for_read(struct fs_tree *tree, uint64_t ino, uint64_t offset,
			 uint64_t size, uint64_t max_readahead,
			 struct fs_entry *entry_r, uint64_t *readahead_r)
{
	struct tree_node *n;
	int ret = 0;

	g_mutex_lock(&tree->lock);
	n = tree_find(tree, ino);
	if (n == NULL) {
		/* Every inode number the kernel holds came from us: one we
		 * no longer know named a message that is gone. */
		ret = -ESTALE;
	} else if (n->kind == TREE_DIR) {
		ret = -EISDIR;
	} else {
		tree_fill_entry(tree, n, entry_r);
		entry_r->gone = n->gone;
		/* Sequential-read detection lives with the inode, so it
		 * works without per-open state (opens never reach us). */
		if (offset == n->ra_next)
			n->ra_window = MIN(
				MAX(n->ra_window * 2, TREE_INITIAL_READAHEAD),
				max_readahead);
		else
			n->ra_window = 0;
		n->ra_next = offset + size;
		*readahead_r = n->ra_window;
	}
	g_mutex_unlock(&tree->lock);
	return ret;
}

void fs_tree_forget(struct fs_tree *tree, uint64_t ino, uint64_t count)
{
	struct tree_node *n;

	g_mutex_lock(&tree->lock);
	n = tree_find(tree, ino);
	if (n != NULL) {
		n->nlookup = n->nlookup > count ? n->nlookup - count : 0;
		tree_maybe_drop(tree, n);
	}
	g_mutex_unlock(&tree->lock);
}

void fs_tree_ref(struct fs_tree *tree, uint64_t ino)
{
	struct tree_node *n;

	g_mutex_lock(&tree->lock);
	n = tree_find(tree, ino);
	if (n != NULL)
		n->nlookup++;
	g_mutex_unlock(&tree->lock);
}

void fs_tree_set_size(struct fs_tree *tree, uint64_t ino, uint64_t size)
{
	struct tree_node *n;

	g_mutex_lock(&tree->lock);
	n = tree_find(tree, ino);
	if (n != NULL && n->kind == TREE_MSG) {
		if (n->size != size)
			imapfs_info("message %s/%u: size is %" G_GUINT64_FORMAT
				    ", server said %" G_GUINT64_FORMAT,
				    n->parent->mailbox, n->uid, size, n->size);
		n->size = size;
		n->size_verified = TRUE;
	}
	g_mutex_unlock(&tree->lock);
}

static gint tree_uid_cmp(gconstpointer a, gconstpointer b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

void tree_rebuild_uids(struct tree_node *dir)
{
	GHashTableIter it;
	gpointer k;

	g_array_set_size(dir->uids, 0);
	g_hash_table_iter_init(&it, dir->msgs);
	while (g_hash_table_iter_next(&it, &k, NULL)) {
		uint32_t uid = GPOINTER_TO_UINT(k);

		g_array_append_val(dir->uids, uid);
	}
	g_array_sort(dir->uids, tree_uid_cmp);
}

guint tree_uid_upper(GArray *uids, uint32_t uid)
{
	guint lo = 0, hi = uids->len;

	while (lo < hi) {
		guint mid = lo + (hi - lo) / 2;

		if (g_array_index(uids, uint32_t, mid) <= uid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

void tree_uids_add(struct tree_node *dir, uint32_t uid)
{
	guint i = tree_uid_upper(dir->uids, uid);

	if (i > 0 && g_array_index(dir->uids, uint32_t, i - 1) == uid)
		return;
	g_array_insert_val(dir->uids, i, uid);
}

void tree_uids_remove(struct tree_node *dir, uint32_t uid)
{
	guint i = tree_uid_upper(dir->uids, uid);

	if (i > 0 && g_array_index(dir->uids, uint32_t, i - 1) == uid)
		g_array_remove_index(dir->uids, i - 1);
}

gboolean fs_tree_prefetch_plan(struct fs_tree *tree, uint64_t ino,
			       uint64_t max_bytes, uint64_t per_message,
			       GArray *items, char **mailbox_r,
			       uint32_t *uidvalidity_r,
			       gboolean *need_listing_r)
{
	struct tree_node *n, *dir;
	guint pos, next, window;
	uint64_t bytes = 0;
	gboolean planned = FALSE;

	g_mutex_lock(&tree->lock);
	n = tree_find(tree, ino);
	if (n == NULL || n->kind != TREE_MSG || n->gone)
		goto out;
	dir = n->parent;
	if (n->uid > dir->last_read_uid) {
		dir->streak++;
	} else if (n->uid < dir->last_read_uid) {
		/* A step backwards: not a walk (any more). The same message
		 * again (asked once more after its folder was listed) is
		 * neither. */
		dir->streak = 0;
		dir->prefetch_mark = 0;
		dir->prefetch_window = 0;
	}
	dir->last_read_uid = n->uid;
	if (dir->streak < 2)
		goto out;
	if (dir->loaded_at == 0 && dir->srv_uidnext == 0 && !dir->loading) {
		/* A walk by name in a folder never listed (its messages
		 * were looked up one by one): the plan needs the listing. */
		if (need_listing_r != NULL)
			*need_listing_r = TRUE;
		goto out;
	}
	pos = tree_uid_upper(dir->uids, n->uid);
	next = tree_uid_upper(dir->uids, MAX(dir->prefetch_mark, n->uid));
	/* prefetch_window is the size of the last batch: wait until half
	 * of it is consumed, then ask for one twice as large. */
	if (dir->prefetch_window != 0 && next - pos > dir->prefetch_window / 2)
		goto out;
	window = dir->prefetch_window != 0 ? MIN(dir->prefetch_window * 2, 512u)
					   : 16;
	dir->prefetch_window = window;
	for (; next < dir->uids->len && items->len < window; next++) {
		uint32_t uid = g_array_index(dir->uids, uint32_t, next);
		struct tree_node *m =
			g_hash_table_lookup(dir->msgs, GUINT_TO_POINTER(uid));
		struct fs_prefetch_item it;

		if (m == NULL || bytes >= max_bytes)
			break;
		/* Only small messages come in batches (whole, which is what
		 * the reader wants and what servers serve fastest); a big
		 * one is left to on-demand reads and their read-ahead. */
		if (m->size > per_message || m->gone || tree_hidden(tree, m)) {
			dir->prefetch_mark = uid;
			continue;
		}
		it.ino = m->ino;
		it.uid = uid;
		it.size = m->size;
		bytes += MIN(m->size, per_message);
		g_array_append_val(items, it);
		dir->prefetch_mark = uid;
	}
	/* What was planned (the byte bound may have cut the window). */
	dir->prefetch_window = MAX(items->len, 1u);
	if (items->len > 0) {
		*mailbox_r = g_strdup(dir->mailbox);
		*uidvalidity_r = dir->uidvalidity;
		planned = TRUE;
	}
out:
	g_mutex_unlock(&tree->lock);
	return planned;
}

uint64_t fs_tree_count_files(struct fs_tree *tree)
{
	uint64_t n;

	g_mutex_lock(&tree->lock);
	n = tree->nfiles;
	g_mutex_unlock(&tree->lock);
	return n;
}

void fs_tree_invalidate_all(struct fs_tree *tree)
{
	g_mutex_lock(&tree->lock);
	for (guint i = 0; i < tree->dirs->len; i++)
		((struct tree_node *)tree->dirs->pdata[i])->loaded_at = 0;
	tree->mailboxes_time = 0;
	g_mutex_unlock(&tree->lock);
}
