/* tree_write.c - the write path's deltas on the inode table; see tree.h.
 *
 * Names in a folder: "<UID>.eml" names a message; other names are local
 * files (dir->locals) or messages renamed by the user (also in locals,
 * node->renamed); aliases (dir->aliases) are names that resolve to a
 * message without being listed, such as the name a new message was
 * written under. Every delta bumps the folder's generation so that a
 * listing in flight cannot undo it (tree.c, fs_tree_folder_end()).
 */
#include "config.h"

#include <errno.h>
#include <string.h>

#include "log.h"
#include "namemap.h"
#include "tree-private.h"

uint64_t tree_bump(struct tree_node *dir)
{
	return ++dir->gen;
}

static struct tree_node *tree_dir(struct fs_tree *tree, uint64_t ino,
				  int *errno_r)
{
	struct tree_node *d = tree_find(tree, ino);

	if (d == NULL || d->gone) {
		*errno_r = -ENOENT;
		return NULL;
	}
	if (d->kind != TREE_DIR) {
		*errno_r = -ENOTDIR;
		return NULL;
	}
	return d;
}

int fs_tree_peek(struct fs_tree *tree, uint64_t parent, const char *name,
		 struct fs_entry *entry_r)
{
	struct tree_node *dir, *n;
	int r;

	g_mutex_lock(&tree->lock);
	dir = tree_dir(tree, parent, &r);
	if (dir == NULL) {
		g_mutex_unlock(&tree->lock);
		return r;
	}
	n = tree_child(tree, dir, name);
	if (n == NULL) {
		r = FS_NAME_NONE;
	} else {
		tree_fill_entry(tree, n, entry_r);
		r = n->kind == TREE_DIR	    ? FS_NAME_DIR
		    : n->kind == TREE_LOCAL ? FS_NAME_LOCAL
					    : FS_NAME_MSG;
	}
	g_mutex_unlock(&tree->lock);
	return r;
}

/* The message of @dir that was renamed away from its "<UID>.eml" @name,
 * or NULL. */
static struct tree_node *tree_vacated(struct tree_node *dir, const char *name)
{
	struct tree_node *m;
	guint32 uid;

	if (!dir->selectable || !fs_namemap_parse_message_name(name, &uid))
		return NULL;
	m = g_hash_table_lookup(dir->msgs, GUINT_TO_POINTER(uid));
	return m != NULL && m->renamed && !m->gone ? m : NULL;
}

int fs_tree_add_local(struct fs_tree *tree, uint64_t parent, const char *name,
		      struct fs_spool *sp, struct fs_entry *entry_r)
{
	struct tree_node *dir, *n, *old;
	int r = 0;

	g_mutex_lock(&tree->lock);
	dir = tree_dir(tree, parent, &r);
	if (dir == NULL)
		goto out;
	if (!dir->selectable || dir->mailbox == NULL) {
		r = -EPERM;
		goto out;
	}
	if (tree_child(tree, dir, name) != NULL) {
		r = -EEXIST;
		goto out;
	}
	/* A new file under the name a message was just renamed away from
	 * takes its place (Vim's backupcopy=no and Emacs keep the old file
	 * as the backup and write a new one): it starts with the message's
	 * flags and INTERNALDATE, as an edit in place would. */
	old = tree_vacated(dir, name);
	if (old != NULL)
		fs_spool_inherit(sp, old->flags, old->mtime);
	n = tree_node_new(tree, TREE_LOCAL, name, dir);
	n->spool = fs_spool_ref(sp);
	n->born_gen = tree_bump(dir);
	n->nlookup = 1;
	g_hash_table_insert(dir->locals, n->name, n);
	tree_fill_entry(tree, n, entry_r);
out:
	g_mutex_unlock(&tree->lock);
	return r;
}

struct fs_spool *fs_tree_attach_shadow(struct fs_tree *tree, uint64_t ino,
				       struct fs_spool *sp)
{
	struct tree_node *n;
	struct fs_spool *ret = NULL;

	g_mutex_lock(&tree->lock);
	n = tree_find(tree, ino);
	if (n != NULL && !n->gone && n->kind == TREE_MSG) {
		if (n->spool == NULL)
			n->spool = fs_spool_ref(sp);
		ret = fs_spool_ref(n->spool);
	} else if (n != NULL && n->kind == TREE_LOCAL) {
		ret = fs_spool_ref(n->spool);
	}
	g_mutex_unlock(&tree->lock);
	return ret;
}

void fs_tree_detach_shadow(struct fs_tree *tree, uint64_t ino,
			   struct fs_spool *sp)
{
	struct tree_node *n;
	struct fs_spool *drop = NULL;

	g_mutex_lock(&tree->lock);
	n = tree_find(tree, ino);
	if (n != NULL && n->kind == TREE_MSG && n->spool == sp) {
		drop = n->spool;
		n->spool = NULL;
	}
	g_mutex_unlock(&tree->lock);
	fs_spool_unref(drop);
}

void tree_drop_msg_names(struct tree_node *dir, struct tree_node *msg)
{
	GHashTableIter it;
	gpointer v;

	if (msg->renamed && g_hash_table_lookup(dir->locals, msg->name) == msg)
		g_hash_table_remove(dir->locals, msg->name);
	g_hash_table_iter_init(&it, dir->aliases);
	while (g_hash_table_iter_next(&it, NULL, &v)) {
		if (GPOINTER_TO_UINT(v) == msg->uid)
			g_hash_table_iter_remove(&it);
	}
}

/* Takes @n out of the directory it is listed in (not freeing it). */
void tree_unlink_node(struct tree_node *n)
{
	struct tree_node *dir = n->parent;

	if (n->kind == TREE_LOCAL || (n->kind == TREE_MSG && n->renamed)) {
		if (g_hash_table_lookup(dir->locals, n->name) == n)
			g_hash_table_remove(dir->locals, n->name);
	}
	if (n->kind == TREE_MSG &&
	    g_hash_table_lookup(dir->msgs, GUINT_TO_POINTER(n->uid)) == n) {
		g_hash_table_remove(dir->msgs, GUINT_TO_POINTER(n->uid));
		tree_drop_msg_names(dir, n);
		tree_uids_remove(dir, n->uid);
	}
	n->renamed = FALSE;
}

void tree_tomb(struct tree_node *dir, uint32_t uid)
{
	guint64 *g = g_new(guint64, 1);

	*g = tree_bump(dir);
	g_hash_table_insert(dir->tombs, GUINT_TO_POINTER(uid), g);
}

/* Removes message @uid of @dir (ours, so tombstoned) and returns TRUE if
 * there was one. */
static gboolean tree_drop_uid(struct fs_tree *tree, struct tree_node *dir,
			      uint32_t uid)
{
	struct tree_node *old =
		g_hash_table_lookup(dir->msgs, GUINT_TO_POINTER(uid));

	tree_tomb(dir, uid);
	if (old == NULL)
		return FALSE;
	tree_unlink_node(old);
	tree_msg_gone(tree, old);
	return TRUE;
}

/* -o delete=flag: message @uid of @dir was only flagged \Deleted by us
 * and stays on the server, so it stays here too (hidden), and the
 * folder's count stays the server's. @was (may be NULL): the node that was
 * it, already out of @dir (reused for the new version or moved away): a
 * node of its own is made from it. */
static void tree_clear_local_name(struct fs_tree *tree, struct tree_node *dir,
				  const char *name);

/* Our STORE flagged @m \Deleted: it is hidden from now on, and a name of
 * its own (mv in the folder) goes, free for a new file or, after an edit,
 * for the new version; shown again, it is "<UID>.eml". */
static void tree_hide(struct fs_tree *tree, struct tree_node *m)
{
	if (m->renamed) {
		char *own = g_strdup(m->name);

		tree_clear_local_name(tree, m->parent, own);
		g_free(own);
	}
	tree_flag_deleted(tree, m);
}

static void tree_keep_flagged(struct fs_tree *tree, struct tree_node *dir,
			      uint32_t uid, const struct tree_node *was)
{
	gpointer key = GUINT_TO_POINTER(uid);
	struct tree_node *m = g_hash_table_lookup(dir->msgs, key);
	char name[32];

	if (m == NULL && was != NULL) {
		fs_namemap_message_name(uid, name, sizeof(name));
		m = tree_node_new(tree, TREE_MSG, name, dir);
		m->uid = uid;
		m->size = was->size;
		m->size_verified = was->size_verified;
		m->mtime = was->mtime;
		m->flags = tree_flags_intern(tree, was->flags);
		m->born_gen = was->born_gen;
		g_hash_table_insert(dir->msgs, key, m);
		g_hash_table_remove(dir->tombs, key);
		tree_uids_add(dir, uid);
	}
	if (m != NULL)
		tree_hide(tree, m);
	tree_bump(dir);
}

int fs_tree_commit(struct fs_tree *tree, uint64_t ino, uint64_t dir_ino,
		   uint32_t uidvalidity, uint32_t uid, uint64_t size,
		   gint64 mtime, const char *flags, const char *alias,
		   uint32_t old_uid, gboolean old_kept)
{
	struct tree_node *n, *dir;
	char name[32], *old_name = NULL;
	int r = 0;

	g_mutex_lock(&tree->lock);
	n = tree_find(tree, ino);
	dir = tree_dir(tree, dir_ino, &r);
	if (n == NULL || dir == NULL) {
		r = -ENOENT;
		goto out;
	}
	/* Names that named the replaced message name the new one. */
	if (old_uid != 0 && uid != 0) {
		GHashTableIter it;
		gpointer v;

		g_hash_table_iter_init(&it, dir->aliases);
		while (g_hash_table_iter_next(&it, NULL, &v)) {
			if (GPOINTER_TO_UINT(v) == old_uid)
				g_hash_table_iter_replace(
					&it, GUINT_TO_POINTER(uid));
		}
	}
	if (!n->gone)
		tree_unlink_node(n);
	if (old_uid != 0) {
		struct tree_node *old = g_hash_table_lookup(
			dir->msgs, GUINT_TO_POINTER(old_uid));

		if (old == n)
			old = NULL;
		/* (A copy: the old node may lose its name, or go.) */
		if (old != NULL && old->renamed && alias == NULL)
			alias = old_name = g_strdup(old->name);
		if (uid != 0) {
			fs_namemap_message_name(old_uid, name, sizeof(name));
			g_hash_table_insert(dir->aliases, g_strdup(name),
					    GUINT_TO_POINTER(uid));
		}
		if (!old_kept)
			tree_drop_uid(tree, dir, old_uid);
		else
			tree_keep_flagged(tree, dir, old_uid,
					  n->kind == TREE_MSG &&
							  n->uid == old_uid
						  ? n
						  : NULL);
	}
	/* A folder never listed yet learns its UIDVALIDITY from APPENDUID
	 * (its listing is still loaded on the next access). */
	if (dir->uidvalidity == 0 && dir->loaded_at == 0)
		dir->uidvalidity = uidvalidity;
	if (uid == 0 || dir->uidvalidity != uidvalidity ||
	    dir->mailbox == NULL) {
		/* We cannot name it: let the next listing show it. */
		dir->loaded_at = 0;
		n->gone = TRUE;
		if (n->kind == TREE_LOCAL)
			n->kind = TREE_MSG;
		tree_maybe_drop(tree, n);
		goto out;
	}
	n->kind = TREE_MSG;
	n->gone = FALSE;
	n->parent = dir;
	n->uid = uid;
	n->size = size;
	n->size_verified = TRUE;
	n->mtime = mtime;
	tree_flags_unref(tree, n->flags);
	n->flags = tree_flags_intern(tree, flags);
	n->ra_next = n->ra_window = 0;
	fs_namemap_message_name(uid, name, sizeof(name));
	g_free(n->name);
	n->name = g_strdup(name);
	n->born_gen = tree_bump(dir);
	/* A message that arrived meanwhile under this UID cannot exist
	 * (UIDs are not reused), but a listing may have created a node for
	 * it already: ours replaces it. */
	{
		struct tree_node *dup =
			g_hash_table_lookup(dir->msgs, GUINT_TO_POINTER(uid));

		if (dup != NULL && dup != n) {
			tree_unlink_node(dup);
			tree_msg_gone(tree, dup);
		}
	}
	g_hash_table_insert(dir->msgs, GUINT_TO_POINTER(uid), n);
	g_hash_table_remove(dir->tombs, GUINT_TO_POINTER(uid));
	if (alias != NULL && strcmp(alias, name) != 0 &&
	    g_hash_table_lookup(dir->subdirs, alias) == NULL &&
	    g_hash_table_lookup(dir->locals, alias) == NULL)
		g_hash_table_insert(dir->aliases, g_strdup(alias),
				    GUINT_TO_POINTER(uid));
	tree_uids_add(dir, uid);
out:
	g_mutex_unlock(&tree->lock);
	g_free(old_name);
	return r;
}

int fs_tree_remove_local(struct fs_tree *tree, uint64_t parent,
			 const char *name)
{
	struct tree_node *dir, *n;
	int r = 0;

	g_mutex_lock(&tree->lock);
	dir = tree_dir(tree, parent, &r);
	if (dir == NULL)
		goto out;
	n = g_hash_table_lookup(dir->locals, name);
	if (n == NULL || n->kind != TREE_LOCAL) {
		r = -ENOENT;
		goto out;
	}
	g_hash_table_remove(dir->locals, name);
	tree_bump(dir);
	n->gone = TRUE;
	/* The user removed it: nothing of it is kept. */
	fs_spool_set_keep(n->spool, FALSE);
	tree_maybe_drop(tree, n);
out:
	g_mutex_unlock(&tree->lock);
	return r;
}

void fs_tree_remove_msg(struct fs_tree *tree, uint64_t dir_ino, uint32_t uid)
{
	struct tree_node *dir;
	int r;

	g_mutex_lock(&tree->lock);
	dir = tree_dir(tree, dir_ino, &r);
	if (dir != NULL)
		tree_drop_uid(tree, dir, uid);
	g_mutex_unlock(&tree->lock);
}

/* Removes whatever local file (or renamed message name) holds @name in
 * @dir, for a rename over it. */
static void tree_clear_local_name(struct fs_tree *tree, struct tree_node *dir,
				  const char *name)
{
	struct tree_node *old = g_hash_table_lookup(dir->locals, name);

	g_hash_table_remove(dir->aliases, name);
	if (old == NULL)
		return;
	g_hash_table_remove(dir->locals, name);
	if (old->kind == TREE_LOCAL) {
		old->gone = TRUE;
		fs_spool_set_keep(old->spool, FALSE);
		tree_maybe_drop(tree, old);
	} else {
		/* A renamed message loses its own name: it is listed as
		 * "<UID>.eml" again. */
		char nm[32];

		old->renamed = FALSE;
		fs_namemap_message_name(old->uid, nm, sizeof(nm));
		g_free(old->name);
		old->name = g_strdup(nm);
	}
}

int fs_tree_move_local(struct fs_tree *tree, uint64_t parent, const char *name,
		       uint64_t newparent, const char *newname)
{
	struct tree_node *dir, *ndir, *n;
	int r = 0;

	g_mutex_lock(&tree->lock);
	dir = tree_dir(tree, parent, &r);
	ndir = dir != NULL ? tree_dir(tree, newparent, &r) : NULL;
	if (ndir == NULL)
		goto out;
	if (!ndir->selectable || ndir->mailbox == NULL) {
		r = -EPERM;
		goto out;
	}
	n = g_hash_table_lookup(dir->locals, name);
	if (n == NULL || n->kind != TREE_LOCAL) {
		r = -ENOENT;
		goto out;
	}
	g_hash_table_remove(dir->locals, name);
	tree_bump(dir);
	tree_clear_local_name(tree, ndir, newname);
	g_free(n->name);
	n->name = g_strdup(newname);
	n->parent = ndir;
	n->born_gen = tree_bump(ndir);
	g_hash_table_insert(ndir->locals, n->name, n);
out:
	g_mutex_unlock(&tree->lock);
	return r;
}

int fs_tree_rename_msg(struct fs_tree *tree, uint64_t ino, const char *newname)
{
	struct tree_node *n, *dir;
	guint32 uid;
	int r = 0;

	g_mutex_lock(&tree->lock);
	n = tree_find(tree, ino);
	if (n == NULL || n->gone || n->kind != TREE_MSG) {
		r = -ENOENT;
		goto out;
	}
	dir = n->parent;
	/* After rename(2) no old name resolves: not its former name, nor
	 * the names it was written under (aliases). Vim's backupcopy=no
	 * renames x.eml to x.eml~ and creates x.eml; had the alias stayed,
	 * that would open this message, and removing the backup would
	 * remove the edit with it. */
	tree_drop_msg_names(dir, n);
	tree_clear_local_name(tree, dir, newname);
	g_free(n->name);
	n->name = g_strdup(newname);
	/* Its own "<UID>.eml" is just its name again. */
	if (fs_namemap_parse_message_name(newname, &uid) && uid == n->uid) {
		n->renamed = FALSE;
	} else {
		n->renamed = TRUE;
		g_hash_table_insert(dir->locals, n->name, n);
	}
	tree_bump(dir);
out:
	g_mutex_unlock(&tree->lock);
	return r;
}

void fs_tree_move_msg(struct fs_tree *tree, uint64_t ino, uint64_t newdir,
		      uint32_t uidvalidity, uint32_t newuid,
		      const char *newname, gboolean src_kept)
{
	struct tree_node *n, *src, *ndir;
	int r;

	g_mutex_lock(&tree->lock);
	n = tree_find(tree, ino);
	ndir = tree_dir(tree, newdir, &r);
	if (n == NULL || n->kind != TREE_MSG || n->gone) {
		g_mutex_unlock(&tree->lock);
		return;
	}
	src = n->parent;
	tree_unlink_node(n);
	if (src_kept)
		tree_keep_flagged(tree, src, n->uid, n);
	else
		tree_tomb(src, n->uid);
	if (ndir == NULL || newuid == 0 || ndir->uidvalidity != uidvalidity) {
		n->gone = TRUE;
		if (ndir != NULL)
			ndir->loaded_at = 0;
		tree_maybe_drop(tree, n);
		g_mutex_unlock(&tree->lock);
		return;
	}
	/* The bytes are the same, but the cache is keyed by inode, which
	 * keeps its identity: nothing to drop. */
	n->parent = ndir;
	n->uid = newuid;
	{
		char nm[32];
		struct tree_node *dup = g_hash_table_lookup(
			ndir->msgs, GUINT_TO_POINTER(newuid));

		if (dup != NULL && dup != n) {
			tree_unlink_node(dup);
			tree_msg_gone(tree, dup);
		}
		fs_namemap_message_name(newuid, nm, sizeof(nm));
		g_free(n->name);
		n->name = g_strdup(nm);
		g_hash_table_insert(ndir->msgs, GUINT_TO_POINTER(newuid), n);
		g_hash_table_remove(ndir->tombs, GUINT_TO_POINTER(newuid));
		if (newname != NULL && strcmp(newname, nm) != 0) {
			tree_clear_local_name(tree, ndir, newname);
			g_hash_table_insert(ndir->aliases, g_strdup(newname),
					    GUINT_TO_POINTER(newuid));
		}
	}
	n->born_gen = tree_bump(ndir);
	tree_uids_add(ndir, newuid);
	g_mutex_unlock(&tree->lock);
}

void fs_tree_flag_deleted(struct fs_tree *tree, uint64_t ino)
{
	struct tree_node *n;

	g_mutex_lock(&tree->lock);
	n = tree_find(tree, ino);
	if (n != NULL && n->kind == TREE_MSG && !n->gone) {
		tree_hide(tree, n);
		tree_bump(n->parent);
	}
	g_mutex_unlock(&tree->lock);
}

void fs_tree_set_msg_flags(struct fs_tree *tree, uint64_t ino,
			   const char *flags)
{
	struct tree_node *n;

	g_mutex_lock(&tree->lock);
	n = tree_find(tree, ino);
	if (n != NULL && n->kind == TREE_MSG) {
		tree_flags_unref(tree, n->flags);
		n->flags = tree_flags_intern(tree, flags);
		tree_bump(n->parent);
	}
	g_mutex_unlock(&tree->lock);
}

int fs_tree_add_dir(struct fs_tree *tree, uint64_t parent, const char *name,
		    const char *mailbox, struct fs_entry *entry_r)
{
	struct tree_node *dir, *d;
	int r = 0;

	g_mutex_lock(&tree->lock);
	dir = tree_dir(tree, parent, &r);
	if (dir == NULL)
		goto out;
	if (tree_child(tree, dir, name) != NULL) {
		r = -EEXIST;
		goto out;
	}
	d = tree_subdir(tree, dir, name);
	d->mailbox = g_strdup(mailbox);
	g_free(d->server_name);
	d->server_name = g_strdup(mailbox);
	d->selectable = TRUE;
	d->delimiter = dir->delimiter != 0 ? dir->delimiter
		       : tree->personal_delimiter != 0
			       ? tree->personal_delimiter
			       : tree->delimiter;
	d->seen = TRUE;
	d->own_at = g_get_monotonic_time();
	d->nlookup = 1;
	tree->mailboxes_gen++;
	tree_fill_entry(tree, d, entry_r);
out:
	g_mutex_unlock(&tree->lock);
	return r;
}

void fs_tree_remove_dir(struct fs_tree *tree, uint64_t parent, const char *name)
{
	struct tree_node *dir, *d;
	int r;

	g_mutex_lock(&tree->lock);
	dir = tree_dir(tree, parent, &r);
	d = dir != NULL ? g_hash_table_lookup(dir->subdirs, name) : NULL;
	if (d != NULL) {
		g_hash_table_remove(dir->subdirs, name);
		tree_dir_gone(tree, d);
		tree->mailboxes_gen++;
	}
	g_mutex_unlock(&tree->lock);
}

void tree_rename_mailboxes(struct tree_node *d, const char *from,
			   const char *to)
{
	GHashTableIter it;
	gpointer v;
	size_t flen = strlen(from);

	if (d->mailbox != NULL && strncmp(d->mailbox, from, flen) == 0 &&
	    (d->mailbox[flen] == '\0' || d->mailbox[flen] == d->delimiter ||
	     d->delimiter == 0)) {
		char *m = g_strconcat(to, d->mailbox + flen, NULL);

		g_free(d->mailbox);
		d->mailbox = m;
		g_free(d->server_name);
		d->server_name = g_strdup(m);
		/* Sessions address it by name: the old one is gone, the
		 * listing must be fetched under the new name. */
		d->loaded_at = 0;
	}
	g_hash_table_iter_init(&it, d->subdirs);
	while (g_hash_table_iter_next(&it, NULL, &v))
		tree_rename_mailboxes(v, from, to);
}

int fs_tree_move_dir(struct fs_tree *tree, uint64_t parent, const char *name,
		     uint64_t newparent, const char *newname,
		     const char *new_mailbox)
{
	struct tree_node *dir, *ndir, *d;
	char *old;
	int r = 0;

	g_mutex_lock(&tree->lock);
	dir = tree_dir(tree, parent, &r);
	ndir = dir != NULL ? tree_dir(tree, newparent, &r) : NULL;
	if (ndir == NULL)
		goto out;
	d = g_hash_table_lookup(dir->subdirs, name);
	if (d == NULL) {
		r = -ENOENT;
		goto out;
	}
	if (g_hash_table_lookup(ndir->subdirs, newname) != NULL) {
		r = -EEXIST;
		goto out;
	}
	g_hash_table_remove(dir->subdirs, name);
	g_free(d->name);
	d->name = g_strdup(newname);
	d->parent = ndir;
	d->own_at = g_get_monotonic_time();
	g_hash_table_insert(ndir->subdirs, d->name, d);
	tree->mailboxes_gen++;
	old = g_strdup(d->mailbox);
	if (old != NULL)
		tree_rename_mailboxes(d, old, new_mailbox);
	else
		d->mailbox = NULL;
	g_free(old);
out:
	g_mutex_unlock(&tree->lock);
	return r;
}

uint32_t fs_tree_max_uid(struct fs_tree *tree, uint64_t ino)
{
	struct tree_node *d;
	uint32_t m = 0;
	int r;

	g_mutex_lock(&tree->lock);
	d = tree_dir(tree, ino, &r);
	if (d != NULL && d->uids->len > 0)
		m = g_array_index(d->uids, uint32_t, d->uids->len - 1);
	g_mutex_unlock(&tree->lock);
	return m;
}

void fs_tree_dir_counts(struct fs_tree *tree, uint64_t ino,
			unsigned int *locals_r, unsigned int *subdirs_r)
{
	struct tree_node *d;
	int r;

	*locals_r = *subdirs_r = 0;
	g_mutex_lock(&tree->lock);
	d = tree_dir(tree, ino, &r);
	if (d != NULL) {
		*locals_r = g_hash_table_size(d->locals);
		*subdirs_r = g_hash_table_size(d->subdirs);
	}
	g_mutex_unlock(&tree->lock);
}
