/* tree_live.c - the live view's deltas; see tree_live.h.
 *
 * Kernel invalidations, per change:
 *   new message      inval_entry(dir, "<UID>.eml") drops a cached negative
 *                    lookup; inval_inode(dir) its attributes;
 *   expunged         notify_delete(dir, ino, name): the dentry goes (new
 *                    lookups ask us: ENOENT) and inotify hears IN_DELETE;
 *   UIDVALIDITY      the same for every message of the folder;
 *   \Deleted set or  with -o delete=flag, as an expunge or as new mail
 *   cleared          (the message is hidden or shown again).
 * Readdir is never cached by the kernel here (opendir sets no
 * cache_readdir), so listings need nothing more.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <string.h>

#include "namemap.h"
#include "tree-private.h"
#include "tree_live.h"

void fs_live_folder_clear(struct fs_live_folder *f)
{
	g_clear_pointer(&f->mailbox, g_free);
}

static void live_folder_clear_cb(gpointer p)
{
	fs_live_folder_clear(p);
}

static gboolean live_is_loaded(const struct tree_node *n)
{
	return n->kind == TREE_DIR && !n->gone && n->selectable &&
	       n->mailbox != NULL && n->loaded_at != 0;
}

static void live_fill(const struct tree_node *n, struct fs_live_folder *f)
{
	f->ino = n->ino;
	f->mailbox = g_strdup(n->mailbox);
	f->uidvalidity = n->uidvalidity;
	f->modseq = n->modseq;
	f->max_uid = n->uids->len > 0 ? g_array_index(n->uids, uint32_t,
						      n->uids->len - 1)
				      : 0;
	f->count = g_hash_table_size(n->msgs);
	f->used_at = n->used_at;
	f->gen = n->gen;
}

static gint live_by_use(gconstpointer a, gconstpointer b)
{
	const struct fs_live_folder *x = a, *y = b;

	return x->used_at > y->used_at ? -1 : x->used_at < y->used_at;
}

GArray *fs_tree_live_folders(struct fs_tree *tree)
{
	GArray *out = g_array_new(FALSE, TRUE, sizeof(struct fs_live_folder));

	g_array_set_clear_func(out, live_folder_clear_cb);
	g_mutex_lock(&tree->lock);
	for (guint i = 0; i < tree->dirs->len; i++) {
		struct fs_live_folder f;

		if (!live_is_loaded(tree->dirs->pdata[i]))
			continue;
		live_fill(tree->dirs->pdata[i], &f);
		g_array_append_val(out, f);
	}
	g_mutex_unlock(&tree->lock);
	g_array_sort(out, live_by_use);
	return out;
}

/* The loaded folder node of @mailbox, or NULL. Called with the lock. */
static struct tree_node *live_find_mailbox(struct fs_tree *tree,
					   const char *mailbox)
{
	for (guint i = 0; i < tree->dirs->len; i++) {
		struct tree_node *n = tree->dirs->pdata[i];

		if (live_is_loaded(n) && strcmp(n->mailbox, mailbox) == 0)
			return n;
	}
	return NULL;
}

gboolean fs_tree_live_folder(struct fs_tree *tree, const char *mailbox,
			     struct fs_live_folder *f_r)
{
	struct tree_node *n;

	g_mutex_lock(&tree->lock);
	n = live_find_mailbox(tree, mailbox);
	if (n != NULL)
		live_fill(n, f_r);
	g_mutex_unlock(&tree->lock);
	return n != NULL;
}

/* The folder @ino if it still has @uidvalidity; NULL with *r set. */
static struct tree_node *live_dir(struct fs_tree *tree, uint64_t ino,
				  uint32_t uidvalidity, int *r)
{
	struct tree_node *d = tree_find(tree, ino);

	if (d == NULL || d->gone || d->kind != TREE_DIR) {
		*r = -ENOENT;
		return NULL;
	}
	if (d->uidvalidity != uidvalidity) {
		*r = -ESTALE;
		return NULL;
	}
	return d;
}

int fs_tree_live_add(struct fs_tree *tree, struct fs_notify *notify,
		     uint64_t ino, uint32_t uidvalidity, const GArray *metas)
{
	struct tree_node *dir;
	int r = 0;

	g_mutex_lock(&tree->lock);
	dir = live_dir(tree, ino, uidvalidity, &r);
	for (guint i = 0; dir != NULL && i < metas->len; i++) {
		const struct imap_message_meta *m =
			&g_array_index(metas, struct imap_message_meta, i);
		gpointer key = GUINT_TO_POINTER(m->uid);
		struct tree_node *msg;
		char name[32];

		/* Known (our own APPEND echoed back, or listed), or
		 * removed by this mount: nothing to do. */
		if (m->uid == 0 || g_hash_table_contains(dir->msgs, key) ||
		    g_hash_table_contains(dir->tombs, key))
			continue;
		fs_namemap_message_name(m->uid, name, sizeof(name));
		msg = tree_node_new(tree, TREE_MSG, name, dir);
		msg->uid = m->uid;
		msg->size = m->size;
		msg->mtime = m->internaldate;
		msg->flags = tree_flags_intern(tree, m->flags != NULL ? m->flags
								      : "");
		msg->born_gen = tree_bump(dir);
		g_hash_table_insert(dir->msgs, key, msg);
		tree_uids_add(dir, m->uid);
		fs_notify_inval_entry(notify, dir->ino, name);
		r++;
	}
	if (r > 0)
		fs_notify_inval_inode(notify, dir->ino);
	g_mutex_unlock(&tree->lock);
	return r;
}

/* Message @msg of @dir went on the server. Called with the lock. */
static void live_drop(struct fs_tree *tree, struct fs_notify *notify,
		      struct tree_node *dir, struct tree_node *msg)
{
	char name[32];

	fs_namemap_message_name(msg->uid, name, sizeof(name));
	if (msg->renamed)
		fs_notify_delete(notify, dir->ino, msg->ino, msg->name);
	fs_notify_delete(notify, dir->ino, msg->ino, name);
	tree_tomb(dir, msg->uid);
	tree_unlink_node(msg);
	tree_msg_gone(tree, msg);
}

/* -o delete=flag: message @msg of @dir was just hidden (@hidden) or shown
 * again: the kernel is told as of an expunge or of new mail. Called with
 * the lock (the notifications are only queued). */
static void live_visibility(struct fs_notify *notify, struct tree_node *dir,
			    struct tree_node *msg, gboolean hidden)
{
	char name[32];

	fs_namemap_message_name(msg->uid, name, sizeof(name));
	if (hidden) {
		if (msg->renamed)
			fs_notify_delete(notify, dir->ino, msg->ino, msg->name);
		fs_notify_delete(notify, dir->ino, msg->ino, name);
	} else {
		if (msg->renamed)
			fs_notify_inval_entry(notify, dir->ino, msg->name);
		fs_notify_inval_entry(notify, dir->ino, name);
	}
	fs_notify_inval_inode(notify, dir->ino);
}

/* Drops every message of @dir with a UID in @lo..@hi, walking the sorted
 * UID array from the first one >= @lo. Called with the lock. */
static int live_drop_range(struct fs_tree *tree, struct fs_notify *notify,
			   struct tree_node *dir, uint32_t lo, uint32_t hi)
{
	int n = 0;

	for (;;) {
		guint a = 0, b = dir->uids->len;
		uint32_t uid;
		struct tree_node *msg;

		while (a < b) {
			guint mid = a + (b - a) / 2;

			if (g_array_index(dir->uids, uint32_t, mid) < lo)
				a = mid + 1;
			else
				b = mid;
		}
		if (a >= dir->uids->len)
			break;
		uid = g_array_index(dir->uids, uint32_t, a);
		if (uid > hi)
			break;
		msg = g_hash_table_lookup(dir->msgs, GUINT_TO_POINTER(uid));
		if (msg == NULL) {
			tree_uids_remove(dir, uid); /* cannot happen */
			continue;
		}
		live_drop(tree, notify, dir, msg);
		n++;
		if (uid == G_MAXUINT32)
			break;
		lo = uid + 1;
	}
	return n;
}

int fs_tree_live_expunge(struct fs_tree *tree, struct fs_notify *notify,
			 uint64_t ino, uint32_t uidvalidity,
			 const GArray *ranges)
{
	struct tree_node *dir;
	int r = 0;

	g_mutex_lock(&tree->lock);
	dir = live_dir(tree, ino, uidvalidity, &r);
	for (guint i = 0; dir != NULL && i < ranges->len; i++) {
		const struct imap_uid_range *x =
			&g_array_index(ranges, struct imap_uid_range, i);

		r += live_drop_range(tree, notify, dir, x->lo, x->hi);
	}
	if (r > 0)
		fs_notify_inval_inode(notify, dir->ino);
	g_mutex_unlock(&tree->lock);
	return r;
}

int fs_tree_live_keep_only(struct fs_tree *tree, struct fs_notify *notify,
			   uint64_t ino, uint32_t uidvalidity,
			   const GArray *present, uint32_t upto, uint64_t gen)
{
	struct tree_node *dir;
	GArray *gone;
	int r = 0;

	g_mutex_lock(&tree->lock);
	dir = live_dir(tree, ino, uidvalidity, &r);
	if (dir == NULL) {
		g_mutex_unlock(&tree->lock);
		return r;
	}
	gone = g_array_new(FALSE, FALSE, sizeof(uint32_t));
	for (guint i = 0; i < dir->uids->len; i++) {
		uint32_t uid = g_array_index(dir->uids, uint32_t, i);

		if (uid > upto)
			break;
		if (!imap_uid_ranges_contain(present, uid))
			g_array_append_val(gone, uid);
	}
	for (guint i = 0; i < gone->len; i++) {
		struct tree_node *msg = g_hash_table_lookup(
			dir->msgs,
			GUINT_TO_POINTER(g_array_index(gone, uint32_t, i)));

		if (msg != NULL && msg->born_gen <= gen) {
			live_drop(tree, notify, dir, msg);
			r++;
		}
	}
	g_array_unref(gone);
	if (r > 0)
		fs_notify_inval_inode(notify, dir->ino);
	g_mutex_unlock(&tree->lock);
	return r;
}

int fs_tree_live_set_flags(struct fs_tree *tree, struct fs_notify *notify,
			   uint64_t ino, uint32_t uidvalidity, uint32_t uid,
			   const char *flags)
{
	struct tree_node *dir, *msg;
	gboolean hidden;
	int r = 0;

	g_mutex_lock(&tree->lock);
	dir = live_dir(tree, ino, uidvalidity, &r);
	msg = dir != NULL
		      ? g_hash_table_lookup(dir->msgs, GUINT_TO_POINTER(uid))
		      : NULL;
	if (msg != NULL && g_strcmp0(msg->flags, flags) != 0) {
		hidden = tree_hidden(tree, msg);
		tree_flags_unref(tree, msg->flags);
		msg->flags = tree_flags_intern(tree, flags);
		tree_bump(dir);
		if (hidden != tree_hidden(tree, msg))
			live_visibility(notify, dir, msg, !hidden);
		r = 1;
	}
	g_mutex_unlock(&tree->lock);
	return r;
}

void fs_tree_live_set_synced(struct fs_tree *tree, uint64_t ino,
			     uint32_t uidvalidity, uint64_t modseq,
			     gboolean confirmed)
{
	struct tree_node *dir;
	int r;

	g_mutex_lock(&tree->lock);
	dir = live_dir(tree, ino, uidvalidity, &r);
	if (dir != NULL) {
		if (modseq > dir->modseq)
			dir->modseq = modseq;
		if (confirmed && dir->loaded_at != 0 && !dir->loading)
			dir->loaded_at = g_get_monotonic_time();
	}
	g_mutex_unlock(&tree->lock);
}

void fs_tree_live_reset(struct fs_tree *tree, struct fs_notify *notify,
			uint64_t ino)
{
	struct tree_node *dir;
	GHashTableIter it;
	gpointer v;

	g_mutex_lock(&tree->lock);
	dir = tree_find(tree, ino);
	if (dir == NULL || dir->kind != TREE_DIR) {
		g_mutex_unlock(&tree->lock);
		return;
	}
	g_hash_table_iter_init(&it, dir->msgs);
	while (g_hash_table_iter_next(&it, NULL, &v)) {
		struct tree_node *msg = v;
		char name[32];

		fs_namemap_message_name(msg->uid, name, sizeof(name));
		fs_notify_delete(notify, dir->ino, msg->ino, name);
		g_hash_table_iter_remove(&it);
		tree_drop_msg_names(dir, msg);
		tree_msg_gone(tree, msg);
	}
	g_hash_table_remove_all(dir->aliases);
	g_hash_table_remove_all(dir->tombs);
	g_array_set_size(dir->uids, 0);
	dir->loaded_at = 0;
	dir->modseq = 0;
	tree_bump(dir);
	fs_notify_inval_inode(notify, dir->ino);
	g_mutex_unlock(&tree->lock);
}

GHashTable *fs_tree_live_dir_names(struct fs_tree *tree)
{
	GHashTable *out =
		g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
	g_mutex_lock(&tree->lock);
	for (guint i = 0; i < tree->dirs->len; i++) {
		struct tree_node *n = tree->dirs->pdata[i];

		if (n->gone || n->parent == NULL)
			continue;
		g_hash_table_insert(out,
				    g_strdup_printf("%" PRIu64 "/%s",
						    n->parent->ino, n->name),
				    (gpointer)(uintptr_t)n->ino);
	}
	g_mutex_unlock(&tree->lock);
	return out;
}

void fs_tree_live_set_load_hook(struct fs_tree *tree,
				void (*fn)(void *user_data), void *user_data)
{
	g_mutex_lock(&tree->lock);
	tree->load_hook = fn;
	tree->load_hook_data = user_data;
	g_mutex_unlock(&tree->lock);
}
