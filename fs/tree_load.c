/* tree_load.c - folder listings on the inode table: full loads,
 * incremental refreshes, single messages looked up before the folder was
 * listed, and directory snapshots for readdir; see tree.h.
 *
 * A folder of a million messages must never be copied or relisted
 * wholesale on the way: a load marks the nodes it saw instead of building
 * a set, a refresh changes only what the server says changed, and a
 * readdir snapshot is the inode numbers alone, in UID order (the order
 * dir->uids already has).
 */
#include "config.h"

#include <errno.h>
#include <string.h>

#include "log.h"
#include "namemap.h"
#include "reqctx.h"
#include "tree-private.h"

void fs_folder_base_clear(struct fs_folder_base *base)
{
	g_clear_pointer(&base->mailbox, g_free);
}

static void tree_fill_base(struct tree_node *dir, struct fs_folder_base *b)
{
	b->mailbox = g_strdup(dir->mailbox);
	b->uidvalidity = dir->uidvalidity;
	b->uidnext = dir->srv_uidnext;
	b->exists = dir->srv_exists;
	b->modseq = dir->srv_modseq;
}

int fs_tree_folder_begin(struct fs_tree *tree, uint64_t ino, gint64 max_age_us,
			 struct fs_folder_base *base_r)
{
	/* Waiting for another thread's load is bounded by the calling
	 * request's deadline too, and interruptible with it (reqctx.h). */
	gint64 deadline =
		imap_reqctx_clamp(g_get_monotonic_time() + TREE_LOAD_WAIT_US);
	struct tree_node *dir;
	gboolean refreshable;
	int ret;

	memset(base_r, 0, sizeof(*base_r));
	g_mutex_lock(&tree->lock);
	for (;;) {
		dir = tree_find(tree, ino);
		if (dir == NULL || dir->gone) {
			ret = -ENOENT;
			break;
		}
		if (dir->kind != TREE_DIR) {
			ret = -ENOTDIR;
			break;
		}
		if (!dir->selectable || dir->mailbox == NULL) {
			ret = FS_FOLDER_FRESH;
			break;
		}
		dir->used_at = g_get_monotonic_time();
		/* Loaded before: it is brought up to date by what changed. */
		refreshable = dir->srv_uidnext != 0 && dir->uidvalidity != 0;
		/* A full load in progress -- or one about to start while a
		 * refresh ends (invalidate_full) -- is waited for. */
		if (dir->loading || (dir->refreshing && !refreshable)) {
			gint64 now = g_get_monotonic_time();

			if (now >= deadline) {
				ret = -EIO;
				break;
			}
			if (!imap_reqctx_check(NULL)) {
				ret = -EINTR;
				break;
			}
			g_cond_wait_until(
				&tree->load_cond, &tree->lock,
				imap_reqctx_interruptible()
					? MIN(deadline,
					      now + IMAP_REQCTX_SLICE_MS * 1000)
					: deadline);
			continue;
		}
		if (dir->loaded_at != 0 &&
		    g_get_monotonic_time() - dir->loaded_at < max_age_us) {
			ret = FS_FOLDER_FRESH;
			break;
		}
		if (refreshable && dir->refreshing) {
			/* Everybody else is served the listing as it is. */
			ret = FS_FOLDER_FRESH;
			break;
		}
		if (refreshable) {
			dir->refreshing = TRUE;
			dir->load_gen = dir->gen;
			tree_fill_base(dir, base_r);
			ret = FS_FOLDER_REFRESH;
			break;
		}
		dir->loading = TRUE;
		dir->load_gen = dir->gen;
		tree_fill_base(dir, base_r);
		ret = FS_FOLDER_LOAD;
		break;
	}
	g_mutex_unlock(&tree->lock);
	return ret;
}

gboolean fs_tree_folder_fresh(struct fs_tree *tree, uint64_t ino,
			      gint64 max_age_us)
{
	struct tree_node *dir;
	gboolean fresh;

	g_mutex_lock(&tree->lock);
	dir = tree_find(tree, ino);
	/* A stale listing that another thread is refreshing is served as
	 * it is (fs_tree_folder_begin() answers FS_FOLDER_FRESH). */
	fresh = dir == NULL || dir->gone || dir->kind != TREE_DIR ||
		!dir->selectable || dir->mailbox == NULL ||
		(!dir->loading && dir->loaded_at != 0 &&
		 ((dir->refreshing && dir->srv_uidnext != 0 &&
		   dir->uidvalidity != 0) ||
		  g_get_monotonic_time() - dir->loaded_at < max_age_us));
	g_mutex_unlock(&tree->lock);
	return fresh;
}

/* The mailbox was recreated: every UID we knew may now name another
 * message. All old nodes go; new ones get new inodes. */
static void tree_uidvalidity_changed(struct fs_tree *tree,
				     struct tree_node *dir,
				     uint32_t uidvalidity)
{
	GHashTableIter it;
	gpointer v;

	imapfs_warning("UIDVALIDITY of %s changed (%u -> %u); "
		       "dropping its cached state",
		       dir->mailbox, dir->uidvalidity, uidvalidity);
	g_hash_table_iter_init(&it, dir->msgs);
	while (g_hash_table_iter_next(&it, NULL, &v)) {
		g_hash_table_iter_remove(&it);
		tree_drop_msg_names(dir, v);
		tree_msg_gone(tree, v);
	}
	g_array_set_size(dir->uids, 0);
	g_hash_table_remove_all(dir->aliases);
	g_hash_table_remove_all(dir->tombs);
	dir->srv_uidnext = dir->srv_exists = 0;
	dir->srv_modseq = 0;
}

/* Adds or updates message @m in @dir (a listing's or a refresh's),
 * unless this mount removed it after the listing began. Returns the node
 * or NULL; *@added_r (may be NULL) says whether it is new. */
static struct tree_node *tree_apply_meta(struct fs_tree *tree,
					 struct tree_node *dir,
					 const struct imap_message_meta *m,
					 gboolean *added_r)
{
	gpointer key = GUINT_TO_POINTER(m->uid);
	struct tree_node *msg = g_hash_table_lookup(dir->msgs, key);
	guint64 *tomb;

	if (added_r != NULL)
		*added_r = FALSE;
	if (msg == NULL) {
		char name[32];

		/* Removed by this mount after the listing began: the listing
		 * is older than our delta, do not resurrect. */
		tomb = g_hash_table_lookup(dir->tombs, key);
		if (tomb != NULL && *tomb > dir->load_gen)
			return NULL;
		fs_namemap_message_name(m->uid, name, sizeof(name));
		msg = tree_node_new(tree, TREE_MSG, name, dir);
		msg->uid = m->uid;
		g_hash_table_insert(dir->msgs, key, msg);
		if (added_r != NULL)
			*added_r = TRUE;
	}
	/* Keep a size that reading proved (the server's RFC822.SIZE may be
	 * wrong). */
	if (!msg->size_verified)
		msg->size = m->size;
	msg->mtime = m->internaldate;
	if (msg->flags == NULL || strcmp(msg->flags, m->flags) != 0) {
		tree_flags_unref(tree, msg->flags);
		msg->flags = tree_flags_intern(tree, m->flags);
	}
	return msg;
}

/* What the server said, kept as the base of the next refresh. */
static void tree_note_status(struct tree_node *dir,
			     const struct imap_mailbox_status *status)
{
	uint32_t max = dir->uids->len > 0 ? g_array_index(dir->uids, uint32_t,
							  dir->uids->len - 1)
					  : 0;

	dir->uidvalidity = status->uidvalidity;
	/* Without UIDNEXT from the server, the next UID after the highest
	 * known one is where new mail would start. */
	dir->srv_uidnext = status->uidnext != 0 ? status->uidnext : max + 1;
	dir->srv_exists = status->exists;
	dir->srv_modseq = status->highestmodseq;
	dir->modseq = status->highestmodseq;
	dir->loaded_at = g_get_monotonic_time();
}

void fs_tree_folder_end(struct fs_tree *tree, uint64_t ino, gboolean ok,
			const struct imap_mailbox_status *status, GArray *metas)
{
	struct tree_node *dir;
	GHashTableIter it;
	gpointer v;
	guint i;

	g_mutex_lock(&tree->lock);
	dir = tree_find(tree, ino);
	if (dir == NULL)
		goto out;
	dir->loading = FALSE;
	if (!ok || dir->gone)
		goto out;
	tree->full_loads++;
	if (dir->uidvalidity != 0 && dir->uidvalidity != status->uidvalidity)
		tree_uidvalidity_changed(tree, dir, status->uidvalidity);
	dir->uidvalidity = status->uidvalidity;
	/* A mark on each node seen instead of a set of the UIDs: a set
	 * would cost as much again as the listing. */
	for (i = 0; i < metas->len; i++) {
		struct tree_node *msg = tree_apply_meta(
			tree, dir,
			&g_array_index(metas, struct imap_message_meta, i),
			NULL);

		if (msg != NULL)
			msg->listed = TRUE;
	}
	g_hash_table_iter_init(&it, dir->msgs);
	while (g_hash_table_iter_next(&it, NULL, &v)) {
		struct tree_node *msg = v;

		/* Added by this mount after the listing began: keep it. */
		if (!msg->listed && msg->born_gen <= dir->load_gen) {
			g_hash_table_iter_remove(&it);
			tree_drop_msg_names(dir, msg);
			tree_msg_gone(tree, msg);
			continue;
		}
		msg->listed = FALSE;
	}
	/* Tombstones older than this listing are settled: the server
	 * agreed when it was asked after our change. */
	g_hash_table_iter_init(&it, dir->tombs);
	while (g_hash_table_iter_next(&it, NULL, &v)) {
		if (*(guint64 *)v <= dir->load_gen)
			g_hash_table_iter_remove(&it);
	}
	tree_rebuild_uids(dir);
	tree_note_status(dir, status);
	/* The live view learns of a newly listed folder (it may watch it). */
	if (tree->load_hook != NULL)
		tree->load_hook(tree->load_hook_data);
out:
	g_cond_broadcast(&tree->load_cond);
	g_mutex_unlock(&tree->lock);
}

/* TRUE if @uid is in one of @ranges (ascending); *@pos walks along with
 * ascending queries. */
static gboolean tree_in_ranges(GArray *ranges, guint *pos, uint32_t uid)
{
	while (*pos < ranges->len &&
	       g_array_index(ranges, struct imap_uid_range, *pos).hi < uid)
		(*pos)++;
	return *pos < ranges->len &&
	       g_array_index(ranges, struct imap_uid_range, *pos).lo <= uid;
}

/* Removes every message of @dir below @bound that @present does not hold
 * (expunged by someone), except those this mount added after the refresh
 * began. Keeps dir->uids sorted by compacting it in place. */
static guint tree_apply_present(struct fs_tree *tree, struct tree_node *dir,
				GArray *present, uint32_t bound)
{
	guint i, j = 0, pos = 0, removed = 0;

	for (i = 0; i < dir->uids->len; i++) {
		uint32_t uid = g_array_index(dir->uids, uint32_t, i);
		struct tree_node *msg =
			g_hash_table_lookup(dir->msgs, GUINT_TO_POINTER(uid));

		if (msg != NULL && uid < bound &&
		    msg->born_gen <= dir->load_gen &&
		    !tree_in_ranges(present, &pos, uid)) {
			g_hash_table_remove(dir->msgs, GUINT_TO_POINTER(uid));
			tree_drop_msg_names(dir, msg);
			tree_msg_gone(tree, msg);
			removed++;
			continue;
		}
		g_array_index(dir->uids, uint32_t, j++) = uid;
	}
	g_array_set_size(dir->uids, j);
	return removed;
}

/* Removes the known messages of @dir from UID @from on that the refresh's
 * new-mail listing did not mark (one this mount sent and another client
 * expunged), except those added after the refresh began; clears the
 * marks. */
static guint tree_sweep_new(struct fs_tree *tree, struct tree_node *dir,
			    uint32_t from)
{
	guint i = tree_uid_upper(dir->uids, from - 1), j = i, removed = 0;

	for (; i < dir->uids->len; i++) {
		uint32_t uid = g_array_index(dir->uids, uint32_t, i);
		struct tree_node *msg =
			g_hash_table_lookup(dir->msgs, GUINT_TO_POINTER(uid));

		if (msg != NULL && !msg->listed &&
		    msg->born_gen <= dir->load_gen) {
			g_hash_table_remove(dir->msgs, GUINT_TO_POINTER(uid));
			tree_drop_msg_names(dir, msg);
			tree_msg_gone(tree, msg);
			removed++;
			continue;
		}
		if (msg != NULL)
			msg->listed = FALSE;
		g_array_index(dir->uids, uint32_t, j++) = uid;
	}
	g_array_set_size(dir->uids, j);
	return removed;
}

void fs_tree_folder_refresh_end(struct fs_tree *tree, uint64_t ino, gboolean ok,
				const struct imap_mailbox_status *status,
				const struct fs_folder_delta *delta)
{
	struct tree_node *dir;
	guint i, added = 0, changed = 0, removed = 0;

	g_mutex_lock(&tree->lock);
	dir = tree_find(tree, ino);
	if (dir == NULL || dir->kind != TREE_DIR)
		goto out;
	dir->refreshing = FALSE;
	if (!ok || dir->gone)
		goto out;
	if (dir->uidvalidity != status->uidvalidity) {
		/* Nothing known holds: the next access loads it afresh. */
		tree_uidvalidity_changed(tree, dir, status->uidvalidity);
		dir->uidvalidity = status->uidvalidity;
		dir->loaded_at = 0;
		goto out;
	}
	tree->refreshes++;
	for (i = 0; delta->metas != NULL && i < delta->metas->len; i++) {
		gboolean add;
		struct tree_node *msg = tree_apply_meta(
			tree, dir,
			&g_array_index(delta->metas, struct imap_message_meta,
				       i),
			&add);

		if (msg != NULL && add) {
			tree_uids_add(dir, msg->uid);
			added++;
		}
		if (msg != NULL)
			msg->listed = TRUE;
	}
	if (delta->new_from != 0)
		removed += tree_sweep_new(tree, dir, delta->new_from);
	/* No mark may outlive the refresh (a full load relies on them). */
	for (i = 0; delta->metas != NULL && i < delta->metas->len; i++) {
		struct tree_node *msg = g_hash_table_lookup(
			dir->msgs,
			GUINT_TO_POINTER(g_array_index(delta->metas,
						       struct imap_message_meta,
						       i)
						 .uid));

		if (msg != NULL)
			msg->listed = FALSE;
	}
	for (i = 0; delta->flags != NULL && i < delta->flags->len; i++) {
		const struct imap_message_meta *m = &g_array_index(
			delta->flags, struct imap_message_meta, i);
		struct tree_node *msg = g_hash_table_lookup(
			dir->msgs, GUINT_TO_POINTER(m->uid));

		if (msg == NULL || strcmp(msg->flags, m->flags) == 0)
			continue;
		tree_flags_unref(tree, msg->flags);
		msg->flags = tree_flags_intern(tree, m->flags);
		changed++;
	}
	if (delta->present != NULL)
		removed += tree_apply_present(tree, dir, delta->present,
					      delta->present_below);
	if (added + changed + removed > 0) {
		/* A delta like the write path's. */
		dir->gen++;
		imapfs_debug("%s: refreshed: %u new, %u flag changes, %u gone",
			     dir->mailbox, added, changed, removed);
	}
	tree_note_status(dir, status);
out:
	g_cond_broadcast(&tree->load_cond);
	g_mutex_unlock(&tree->lock);
}

int fs_tree_folder_add_one(struct fs_tree *tree, uint64_t ino,
			   const struct imap_mailbox_status *status,
			   const struct imap_message_meta *meta)
{
	struct tree_node *dir;
	int ret = 0;

	g_mutex_lock(&tree->lock);
	dir = tree_find(tree, ino);
	if (dir == NULL || dir->gone || dir->kind != TREE_DIR) {
		ret = -ENOENT;
		goto out;
	}
	/* Listed meanwhile: the listing knows better. */
	if (dir->loaded_at != 0 || dir->loading || !dir->selectable)
		goto out;
	if (dir->uidvalidity != 0 && dir->uidvalidity != status->uidvalidity)
		tree_uidvalidity_changed(tree, dir, status->uidvalidity);
	dir->uidvalidity = status->uidvalidity;
	if (meta != NULL &&
	    !g_hash_table_contains(dir->tombs, GUINT_TO_POINTER(meta->uid))) {
		gboolean add;

		dir->load_gen = dir->gen;
		if (tree_apply_meta(tree, dir, meta, &add) != NULL && add)
			tree_uids_add(dir, meta->uid);
	}
out:
	g_mutex_unlock(&tree->lock);
	return ret;
}

void fs_tree_folder_invalidate(struct fs_tree *tree, uint64_t ino)
{
	struct tree_node *dir;

	g_mutex_lock(&tree->lock);
	dir = tree_find(tree, ino);
	if (dir != NULL && dir->kind == TREE_DIR)
		dir->loaded_at = 0;
	g_mutex_unlock(&tree->lock);
}

void fs_tree_folder_invalidate_full(struct fs_tree *tree, uint64_t ino)
{
	struct tree_node *dir;

	g_mutex_lock(&tree->lock);
	dir = tree_find(tree, ino);
	if (dir != NULL && dir->kind == TREE_DIR) {
		dir->loaded_at = 0;
		dir->srv_uidnext = 0;
	}
	g_mutex_unlock(&tree->lock);
}

gboolean fs_tree_folder_cold(struct fs_tree *tree, uint64_t ino,
			     char **mailbox_r, guint *known_r)
{
	struct tree_node *dir;
	gboolean cold;

	g_mutex_lock(&tree->lock);
	dir = tree_find(tree, ino);
	cold = dir != NULL && !dir->gone && dir->kind == TREE_DIR &&
	       dir->selectable && dir->mailbox != NULL && !dir->loading &&
	       dir->loaded_at == 0 && dir->srv_uidnext == 0;
	if (cold && mailbox_r != NULL)
		*mailbox_r = g_strdup(dir->mailbox);
	if (cold && known_r != NULL)
		*known_r = dir->uids->len;
	g_mutex_unlock(&tree->lock);
	return cold;
}

void fs_tree_load_counts(struct fs_tree *tree, uint64_t *full_r,
			 uint64_t *refresh_r)
{
	g_mutex_lock(&tree->lock);
	*full_r = tree->full_loads;
	*refresh_r = tree->refreshes;
	g_mutex_unlock(&tree->lock);
}

/* Directory snapshots */

static gint tree_name_cmp(gconstpointer a, gconstpointer b, gpointer data)
{
	struct fs_tree *tree = data;
	const struct tree_node *x = tree_find(tree, *(const guint64 *)a);
	const struct tree_node *y = tree_find(tree, *(const guint64 *)b);

	return strcmp(x->name, y->name);
}

/* Appends the inode numbers of the values of @table to @snap, sorted by
 * name. */
static void tree_snap_named(struct fs_tree *tree, GArray *snap,
			    GHashTable *table)
{
	GHashTableIter it;
	gpointer v;
	guint start = snap->len;

	g_hash_table_iter_init(&it, table);
	while (g_hash_table_iter_next(&it, NULL, &v)) {
		const struct tree_node *n = v;

		if (!tree_hidden(tree, n))
			g_array_append_val(snap, n->ino);
	}
	if (snap->len - start > 1)
		g_qsort_with_data(&g_array_index(snap, guint64, start),
				  (gint)(snap->len - start), sizeof(guint64),
				  tree_name_cmp, tree);
}

GArray *fs_tree_list(struct fs_tree *tree, uint64_t ino, int *errno_r)
{
	struct tree_node *dir;
	GArray *snap;
	guint i;

	g_mutex_lock(&tree->lock);
	dir = tree_find(tree, ino);
	if (dir == NULL || dir->gone || dir->kind != TREE_DIR) {
		*errno_r = dir == NULL || dir->gone ? -ENOENT : -ENOTDIR;
		g_mutex_unlock(&tree->lock);
		return NULL;
	}
	snap = g_array_sized_new(FALSE, FALSE, sizeof(guint64),
				 2 + g_hash_table_size(dir->subdirs) +
					 dir->uids->len +
					 g_hash_table_size(dir->locals));
	g_array_append_val(snap, dir->ino);
	g_array_append_val(snap, dir->parent->ino);
	/* Stable order: ls, find and grep -r see the same sequence every
	 * time: directories by name, then messages in UID order (the order
	 * reads prefer, and the one dir->uids keeps), then other names. */
	tree_snap_named(tree, snap, dir->subdirs);
	for (i = 0; i < dir->uids->len; i++) {
		uint32_t uid = g_array_index(dir->uids, uint32_t, i);
		const struct tree_node *m =
			g_hash_table_lookup(dir->msgs, GUINT_TO_POINTER(uid));

		/* A renamed message is listed under its own name below. */
		if (m != NULL && !m->renamed && !tree_hidden(tree, m))
			g_array_append_val(snap, m->ino);
	}
	tree_snap_named(tree, snap, dir->locals);
	g_mutex_unlock(&tree->lock);
	return snap;
}

int fs_tree_list_entry(struct fs_tree *tree, GArray *snap, guint index,
		       struct fs_entry *entry_r)
{
	struct tree_node *n;
	int ret = 0;

	if (index >= snap->len)
		return -ENOENT;
	g_mutex_lock(&tree->lock);
	n = tree_find(tree, g_array_index(snap, guint64, index));
	if (n == NULL || (index >= 2 && (n->gone || tree_hidden(tree, n)))) {
		/* Left the directory (or was hidden) since the snapshot was
		 * taken. */
		ret = -ENOENT;
	} else {
		tree_fill_entry(tree, n, entry_r);
		if (index < 2) {
			g_free(entry_r->name);
			entry_r->name = g_strdup(index == 0 ? "." : "..");
		}
	}
	g_mutex_unlock(&tree->lock);
	return ret;
}
