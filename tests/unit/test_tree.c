/* test_tree.c - the inode table: mailbox tree, listings, UIDVALIDITY. */
#include "config.h"

#include <errno.h>
#include <string.h>

#include <glib/gstdio.h>

#include "tree.h"
#include "tree_live.h"

static void add_box(GPtrArray *infos, const char *name, char delim,
		    gboolean noselect)
{
	struct imap_mailbox_info *i = g_new0(struct imap_mailbox_info, 1);

	i->name = g_strdup(name);
	i->delimiter = delim;
	i->noselect = noselect;
	g_ptr_array_add(infos, i);
}

static void info_free(gpointer p)
{
	struct imap_mailbox_info *i = p;

	g_free(i->name);
	g_free(i->special_use);
	g_free(i->old_name);
	g_free(i);
}

static struct fs_tree *make_tree(void)
{
	struct fs_tree *t = fs_tree_new(1000, 1000, 0400, 0500);
	GPtrArray *infos = g_ptr_array_new_with_free_func(info_free);

	add_box(infos, "INBOX", '.', FALSE);
	add_box(infos, "Archive.2024.Q1", '.', FALSE);
	add_box(infos, "Archive", '.', TRUE);
	add_box(infos, "Entw&APw-rfe", '.', FALSE);
	add_box(infos, "a/b", '.', FALSE);
	fs_tree_set_mailboxes(t, infos);
	g_ptr_array_unref(infos);
	return t;
}

static uint64_t lookup_ino(struct fs_tree *t, uint64_t parent, const char *name)
{
	struct fs_entry e;
	uint64_t ino;

	if (fs_tree_lookup(t, parent, name, &e) != 0)
		return 0;
	ino = e.ino;
	fs_entry_clear(&e);
	return ino;
}

static void load(struct fs_tree *t, uint64_t dir, uint32_t uidvalidity,
		 const uint32_t *uids, size_t n)
{
	struct imap_mailbox_status st = {.uidvalidity = uidvalidity};
	GArray *metas =
		g_array_new(FALSE, TRUE, sizeof(struct imap_message_meta));
	struct fs_folder_base base;
	size_t i;

	fs_tree_folder_invalidate_full(t, dir);
	g_assert_cmpint(
		fs_tree_folder_begin(t, dir, G_USEC_PER_SEC * 60, &base), ==,
		FS_FOLDER_LOAD);
	for (i = 0; i < n; i++) {
		struct imap_message_meta m = {.uid = uids[i],
					      .size = 100 * uids[i],
					      .internaldate =
						      1700000000 + uids[i],
					      .flags = "\\Seen"};

		g_array_append_val(metas, m);
	}
	fs_tree_folder_end(t, dir, TRUE, &st, metas);
	g_array_unref(metas);
	fs_folder_base_clear(&base);
}

static void assert_list_name(struct fs_tree *t, GArray *list, guint i,
			     const char *name)
{
	struct fs_entry e;

	g_assert_cmpint(fs_tree_list_entry(t, list, i, &e), ==, 0);
	g_assert_cmpstr(e.name, ==, name);
	fs_entry_clear(&e);
}

static void test_structure(void)
{
	struct fs_tree *t = make_tree();
	uint64_t archive, y2024, q1;
	struct fs_entry e;

	g_assert_cmpuint(lookup_ino(t, FS_ROOT_INO, "INBOX"), !=, 0);
	g_assert_cmpuint(lookup_ino(t, FS_ROOT_INO, "Entwürfe"), !=, 0);
	g_assert_cmpuint(lookup_ino(t, FS_ROOT_INO, "a%2Fb"), !=, 0);
	archive = lookup_ino(t, FS_ROOT_INO, "Archive");
	y2024 = lookup_ino(t, archive, "2024");
	q1 = lookup_ino(t, y2024, "Q1");
	g_assert_cmpuint(q1, !=, 0);
	/* "2024" exists only as a parent: a directory, not a mailbox. */
	g_assert_cmpint(fs_tree_get(t, y2024, &e), ==, 0);
	g_assert_true(e.is_dir);
	g_assert_null(e.mailbox);
	fs_entry_clear(&e);
	g_assert_cmpint(fs_tree_get(t, archive, &e), ==, 0);
	g_assert_false(e.selectable);
	g_assert_cmpuint(e.st.st_mode, ==, S_IFDIR | 0500);
	g_assert_cmpuint(e.st.st_uid, ==, 1000);
	fs_entry_clear(&e);
	/* Probes are answered without anything to load. */
	g_assert_cmpint(fs_tree_lookup(t, FS_ROOT_INO, ".hidden", &e), ==,
			-ENOENT);
	g_assert_cmpint(fs_tree_lookup(t, FS_ROOT_INO, "1.eml", &e), ==,
			-ENOENT);
	fs_tree_free(t);
}

static void test_listing(void)
{
	struct fs_tree *t = make_tree();
	uint64_t inbox = lookup_ino(t, FS_ROOT_INO, "INBOX");
	const uint32_t uids[] = {7, 3, 12};
	struct fs_folder_base base;
	struct fs_entry e;
	GArray *list;
	int err;

	load(t, inbox, 42, uids, 3);
	g_assert_cmpint(fs_tree_lookup(t, inbox, "7.eml", &e), ==, 0);
	g_assert_cmpuint(e.st.st_size, ==, 700);
	g_assert_cmpint(e.st.st_mtime, ==, 1700000007);
	g_assert_cmpint(e.st.st_blocks, >, 0);
	g_assert_cmpuint(e.st.st_mode, ==, S_IFREG | 0400);
	g_assert_cmpstr(e.mailbox, ==, "INBOX");
	g_assert_cmpuint(e.uidvalidity, ==, 42);
	g_assert_cmpstr(e.flags, ==, "\\Seen");
	fs_entry_clear(&e);
	g_assert_cmpint(fs_tree_lookup(t, inbox, "8.eml", &e), ==, -ENOENT);
	g_assert_cmpint(fs_tree_lookup(t, inbox, "07.eml", &e), ==, -ENOENT);
	/* Fresh listing: no reload needed. */
	g_assert_cmpint(
		fs_tree_folder_begin(t, inbox, G_USEC_PER_SEC * 60, &base), ==,
		FS_FOLDER_FRESH);
	fs_folder_base_clear(&base);
	/* ., .., then messages in UID order. */
	list = fs_tree_list(t, inbox, &err);
	g_assert_nonnull(list);
	g_assert_cmpuint(list->len, ==, 5);
	assert_list_name(t, list, 0, ".");
	assert_list_name(t, list, 1, "..");
	assert_list_name(t, list, 2, "3.eml");
	assert_list_name(t, list, 3, "7.eml");
	assert_list_name(t, list, 4, "12.eml");
	g_array_unref(list);
	g_assert_null(fs_tree_list(t, 999999, &err));
	g_assert_cmpint(err, ==, -ENOENT);
	fs_tree_free(t);
}

static void test_expunge_and_forget(void)
{
	struct fs_tree *t = make_tree();
	uint64_t inbox = lookup_ino(t, FS_ROOT_INO, "INBOX");
	const uint32_t before[] = {1, 2, 3}, after[] = {1, 3};
	uint64_t two;
	struct fs_entry e;

	load(t, inbox, 5, before, 3);
	two = lookup_ino(t, inbox, "2.eml");
	load(t, inbox, 5, after, 2);
	g_assert_cmpint(fs_tree_lookup(t, inbox, "2.eml", &e), ==, -ENOENT);
	g_assert_cmpint(fs_tree_get(t, two, &e), ==, -ENOENT);
	fs_tree_forget(t, two, 1);
	g_assert_cmpuint(fs_tree_count_files(t), ==, 2);
	fs_tree_free(t);
}

static void test_uidvalidity_change(void)
{
	struct fs_tree *t = make_tree();
	uint64_t inbox = lookup_ino(t, FS_ROOT_INO, "INBOX");
	const uint32_t uids[] = {1, 2};
	uint64_t old1, new1;
	struct fs_entry e;

	load(t, inbox, 100, uids, 2);
	old1 = lookup_ino(t, inbox, "1.eml");
	load(t, inbox, 200, uids, 2);
	new1 = lookup_ino(t, inbox, "1.eml");
	/* Same name, new identity: the old inode never serves the new
	 * message. */
	g_assert_cmpuint(new1, !=, 0);
	g_assert_cmpuint(new1, !=, old1);
	g_assert_cmpint(fs_tree_get(t, old1, &e), ==, -ENOENT);
	g_assert_cmpint(fs_tree_get(t, new1, &e), ==, 0);
	g_assert_cmpuint(e.uidvalidity, ==, 200);
	fs_entry_clear(&e);
	fs_tree_free(t);
}

static void test_mailbox_vanishes(void)
{
	struct fs_tree *t = make_tree();
	GPtrArray *infos = g_ptr_array_new_with_free_func(info_free);
	uint64_t entw = lookup_ino(t, FS_ROOT_INO, "Entwürfe");
	uint64_t inbox = lookup_ino(t, FS_ROOT_INO, "INBOX");
	struct fs_entry e;
	struct fs_folder_base base;

	add_box(infos, "INBOX", '.', FALSE);
	fs_tree_set_mailboxes(t, infos);
	g_ptr_array_unref(infos);
	g_assert_cmpint(fs_tree_get(t, entw, &e), ==, -ENOENT);
	g_assert_cmpint(fs_tree_lookup(t, FS_ROOT_INO, "Archive", &e), ==,
			-ENOENT);
	g_assert_cmpint(fs_tree_folder_begin(t, entw, 0, &base), ==, -ENOENT);
	/* INBOX keeps its inode. */
	g_assert_cmpuint(lookup_ino(t, FS_ROOT_INO, "INBOX"), ==, inbox);
	fs_tree_free(t);
}

static void test_failed_load_keeps_listing(void)
{
	struct fs_tree *t = make_tree();
	uint64_t inbox = lookup_ino(t, FS_ROOT_INO, "INBOX");
	const uint32_t uids[] = {4};
	struct imap_mailbox_status st = {0};
	struct fs_folder_delta delta = {0};
	struct fs_folder_base base;

	load(t, inbox, 9, uids, 1);
	/* A failed refresh keeps the listing... */
	fs_tree_folder_invalidate(t, inbox);
	g_assert_cmpint(fs_tree_folder_begin(t, inbox, 0, &base), ==,
			FS_FOLDER_REFRESH);
	fs_tree_folder_refresh_end(t, inbox, FALSE, &st, &delta);
	fs_folder_base_clear(&base);
	g_assert_cmpuint(lookup_ino(t, inbox, "4.eml"), !=, 0);
	/* ... and so does a failed full load. */
	fs_tree_folder_invalidate_full(t, inbox);
	g_assert_cmpint(fs_tree_folder_begin(t, inbox, 0, &base), ==,
			FS_FOLDER_LOAD);
	g_assert_cmpuint(base.uidvalidity, ==, 9);
	fs_tree_folder_end(t, inbox, FALSE, &st, NULL);
	fs_folder_base_clear(&base);
	g_assert_cmpuint(lookup_ino(t, inbox, "4.eml"), !=, 0);
	fs_tree_free(t);
}

static gboolean plan(struct fs_tree *t, uint64_t ino, GArray *items)
{
	char *mb = NULL;
	uint32_t uv = 0;
	gboolean r;

	g_array_set_size(items, 0);
	r = fs_tree_prefetch_plan(t, ino, 1 << 30, 256 * 1024, items, &mb, &uv,
				  NULL);
	if (r) {
		g_assert_cmpstr(mb, ==, "INBOX");
		g_assert_cmpuint(uv, ==, 7);
	}
	g_free(mb);
	return r;
}

static void test_prefetch_plan(void)
{
	struct fs_tree *t = make_tree();
	uint64_t inbox = lookup_ino(t, FS_ROOT_INO, "INBOX");
	GArray *items =
		g_array_new(FALSE, FALSE, sizeof(struct fs_prefetch_item));
	uint32_t uids[100];
	uint64_t ino[101];
	guint i;

	for (i = 0; i < 100; i++)
		uids[i] = 2 * i + 1; /* sparse: 1, 3, 5, ... */
	load(t, inbox, 7, uids, 100);
	for (i = 0; i < 100; i++) {
		char name[32];

		g_snprintf(name, sizeof(name), "%u.eml", uids[i]);
		ino[i] = lookup_ino(t, inbox, name);
	}
	/* One read is not a walk; a jump back is not either. */
	g_assert_false(plan(t, ino[10], items));
	g_assert_false(plan(t, ino[5], items));
	g_assert_false(plan(t, ino[6], items));
	/* The second forward step starts a walk: the next 16 messages. */
	g_assert_true(plan(t, ino[7], items));
	g_assert_cmpuint(items->len, ==, 16);
	g_assert_cmpuint(g_array_index(items, struct fs_prefetch_item, 0).uid,
			 ==, uids[8]);
	g_assert_cmpuint(g_array_index(items, struct fs_prefetch_item, 0).ino,
			 ==, ino[8]);
	g_assert_cmpuint(g_array_index(items, struct fs_prefetch_item, 0).size,
			 ==, 100 * uids[8]);
	/* Nothing more while most of the batch is still ahead. */
	g_assert_false(plan(t, ino[8], items));
	g_assert_false(plan(t, ino[12], items));
	/* Half consumed: the next batch, twice as large, continues after
	 * the first one. */
	g_assert_true(plan(t, ino[16], items));
	g_assert_cmpuint(items->len, ==, 32);
	g_assert_cmpuint(g_array_index(items, struct fs_prefetch_item, 0).uid,
			 ==, uids[24]);
	fs_tree_free(t);
	g_array_unref(items);
}

static struct imap_mailbox_info *add_ns_box(GPtrArray *infos, const char *name,
					    enum imap_ns_kind kind,
					    const char *prefix)
{
	struct imap_mailbox_info *i = g_new0(struct imap_mailbox_info, 1);

	i->name = g_strdup(name);
	i->delimiter = '.';
	i->ns_kind = kind;
	i->ns_prefix = g_strdup(prefix);
	i->rel_name = g_strdup(g_ascii_strcasecmp(name, "INBOX") == 0
				       ? name
				       : name + strlen(prefix));
	g_ptr_array_add(infos, i);
	return i;
}

static void ns_info_free(gpointer p)
{
	struct imap_mailbox_info *i = p;

	g_free(i->ns_prefix);
	g_free(i->rel_name);
	g_free(i->rights);
	info_free(i);
}

static size_t count_entries(struct fs_tree *t, uint64_t dir, gboolean dirs)
{
	int err = 0;
	GArray *list = fs_tree_list(t, dir, &err);
	size_t n = 0;

	g_assert_nonnull(list);
	for (guint i = 2; i < list->len; i++) {
		struct fs_entry e;

		g_assert_cmpint(fs_tree_list_entry(t, list, i, &e), ==, 0);
		n += e.is_dir == dirs;
		fs_entry_clear(&e);
	}
	g_array_unref(list);
	return n;
}

/* A Courier-like account: prefix "INBOX.", a shared namespace, rights. */
static void test_namespaces(void)
{
	struct fs_tree *t = fs_tree_new(1000, 1000, 0600, 0700);
	GPtrArray *infos = g_ptr_array_new_with_free_func(ns_info_free);
	uint64_t inbox, archive, y2024, shared, proj;
	struct fs_entry e;
	char *sn = NULL;

	add_ns_box(infos, "INBOX", IMAP_NS_PERSONAL, "INBOX.");
	add_ns_box(infos, "INBOX.Archive.2024", IMAP_NS_PERSONAL, "INBOX.");
	add_ns_box(infos, "shared.bob.Projects", IMAP_NS_OTHER, "shared.")
		->rights = g_strdup("lr");
	add_ns_box(infos, "shared.bob.Blind", IMAP_NS_OTHER, "shared.")
		->rights = g_strdup("l");
	fs_tree_set_mailboxes(t, infos);
	inbox = lookup_ino(t, FS_ROOT_INO, "INBOX");
	archive = lookup_ino(t, FS_ROOT_INO, "Archive");
	y2024 = lookup_ino(t, archive, "2024");
	shared = lookup_ino(t, FS_ROOT_INO, "shared");
	proj = lookup_ino(t, lookup_ino(t, shared, "bob"), "Projects");
	g_assert_cmpuint(inbox * archive * y2024 * proj, !=, 0);
	/* INBOX holds no children: they are the top level. */
	g_assert_cmpuint(count_entries(t, inbox, TRUE), ==, 0);
	g_assert_cmpint(fs_tree_get(t, y2024, &e), ==, 0);
	g_assert_cmpstr(e.mailbox, ==, "INBOX.Archive.2024");
	g_assert_cmpuint(e.st.st_mode, ==, S_IFDIR | 0700);
	g_assert_null(e.rights);
	fs_entry_clear(&e);
	/* MYRIGHTS "lr": readable, not writable; its messages too. */
	g_assert_cmpint(fs_tree_get(t, proj, &e), ==, 0);
	g_assert_cmpuint(e.st.st_mode, ==, S_IFDIR | 0500);
	g_assert_cmpstr(e.rights, ==, "lr");
	fs_entry_clear(&e);
	load(t, proj, 9, (const uint32_t[]){4}, 1);
	g_assert_cmpint(fs_tree_lookup(t, proj, "4.eml", &e), ==, 0);
	g_assert_cmpuint(e.st.st_mode, ==, S_IFREG | 0400);
	g_assert_cmpstr(e.rights, ==, "lr");
	fs_entry_clear(&e);
	g_assert_cmpint(fs_tree_get(t,
				    lookup_ino(t, lookup_ino(t, shared, "bob"),
					       "Blind"),
				    &e),
			==, 0);
	g_assert_cmpuint(e.st.st_mode, ==, S_IFDIR | 0100);
	fs_entry_clear(&e);
	/* The accessor for the write path. */
	g_assert_cmpint(fs_tree_set_rights(t, proj, "lrsitwe"), ==, 0);
	g_assert_cmpint(fs_tree_get(t, proj, &e), ==, 0);
	g_assert_cmpuint(e.st.st_mode, ==, S_IFDIR | 0700);
	fs_entry_clear(&e);
	g_assert_cmpint(fs_tree_set_rights(t, 999999, NULL), ==, -ENOENT);

	/* Server names for mkdir. */
	g_assert_cmpint(fs_tree_child_server_name(t, FS_ROOT_INO, "New", &sn),
			==, 0);
	g_assert_cmpstr(sn, ==, "INBOX.New");
	g_clear_pointer(&sn, g_free);
	g_assert_cmpint(fs_tree_child_server_name(t, archive, "Q1", &sn), ==,
			0);
	g_assert_cmpstr(sn, ==, "INBOX.Archive.Q1");
	g_clear_pointer(&sn, g_free);
	g_assert_cmpint(
		fs_tree_child_server_name(t, y2024, "Entw\xc3\xbcrfe", &sn), ==,
		0);
	g_assert_cmpstr(sn, ==, "INBOX.Archive.2024.Entw&APw-rfe");
	g_clear_pointer(&sn, g_free);
	g_assert_cmpint(fs_tree_child_server_name(t, proj, "sub", &sn), ==, 0);
	g_assert_cmpstr(sn, ==, "shared.bob.Projects.sub");
	g_clear_pointer(&sn, g_free);
	g_assert_cmpint(fs_tree_child_server_name(t, inbox, "x", &sn), ==,
			-EPERM);
	g_assert_cmpint(fs_tree_child_server_name(t, FS_ROOT_INO, "a.b", &sn),
			==, -EINVAL);
	g_assert_cmpint(fs_tree_child_server_name(t, archive, "%zz", &sn), ==,
			-EINVAL);
	g_assert_cmpint(fs_tree_child_server_name(t, 999999, "x", &sn), ==,
			-ENOENT);
	g_assert_null(sn);
	fs_tree_free(t);
	g_ptr_array_unref(infos);
}

/* A mailbox that becomes a mere parent (deleted while a child stays:
 * left out of LIST, \NonExistent, or \Noselect) holds only its children,
 * and no stale message; a failed load of a listed parent does the same. */
static void test_parent_only(void)
{
	static const struct {
		gboolean listed, nonexistent;
	} how[] = {{FALSE, FALSE}, {TRUE, TRUE}, {TRUE, FALSE}};

	for (size_t k = 0; k < G_N_ELEMENTS(how); k++) {
		struct fs_tree *t = fs_tree_new(1000, 1000, 0400, 0500);
		GPtrArray *infos = g_ptr_array_new_with_free_func(info_free);
		uint64_t a, b;
		struct fs_entry e;
		struct fs_folder_base base;

		add_box(infos, "a", '.', FALSE);
		add_box(infos, "a.b", '.', FALSE);
		fs_tree_set_mailboxes(t, infos);
		a = lookup_ino(t, FS_ROOT_INO, "a");
		b = lookup_ino(t, a, "b");
		load(t, a, 5, (const uint32_t[]){1, 2}, 2);
		g_assert_cmpuint(count_entries(t, a, FALSE), ==, 2);

		g_ptr_array_set_size(infos, 0);
		if (how[k].listed) {
			add_box(infos, "a", '.', TRUE);
			((struct imap_mailbox_info *)infos->pdata[0])
				->nonexistent = how[k].nonexistent;
		}
		add_box(infos, "a.b", '.', FALSE);
		fs_tree_set_mailboxes(t, infos);
		g_assert_cmpuint(lookup_ino(t, FS_ROOT_INO, "a"), ==, a);
		g_assert_cmpuint(lookup_ino(t, a, "b"), ==, b);
		g_assert_cmpuint(count_entries(t, a, FALSE), ==, 0);
		g_assert_cmpuint(count_entries(t, a, TRUE), ==, 1);
		g_assert_cmpint(fs_tree_lookup(t, a, "1.eml", &e), ==, -ENOENT);
		/* Nothing to EXAMINE. */
		g_assert_cmpint(fs_tree_folder_begin(t, a, 0, &base), ==,
				FS_FOLDER_FRESH);
		g_assert_null(base.mailbox);
		g_assert_cmpint(fs_tree_get(t, a, &e), ==, 0);
		g_assert_false(e.selectable);
		fs_entry_clear(&e);
		fs_tree_free(t);
		g_ptr_array_unref(infos);
	}
}

static void test_folder_vanished(void)
{
	struct fs_tree *t = make_tree();
	uint64_t archive = lookup_ino(t, FS_ROOT_INO, "Archive");
	uint64_t y2024 = lookup_ino(t, archive, "2024");
	uint64_t q1 = lookup_ino(t, y2024, "Q1");
	struct fs_entry e;

	/* A listed parent whose EXAMINE says it does not exist. */
	g_assert_true(fs_tree_folder_vanished(t, y2024));
	g_assert_cmpint(fs_tree_get(t, y2024, &e), ==, 0);
	g_assert_false(e.selectable);
	fs_entry_clear(&e);
	g_assert_cmpuint(lookup_ino(t, y2024, "Q1"), ==, q1);
	/* A leaf has nothing to show: ENOENT stands. */
	g_assert_false(fs_tree_folder_vanished(t, q1));
	g_assert_false(fs_tree_folder_vanished(t, 999999));
	fs_tree_free(t);
}

static void test_rights_mode(void)
{
	g_assert_cmpuint(fs_tree_rights_mode(0700, NULL), ==, 0700);
	g_assert_cmpuint(fs_tree_rights_mode(0700, "lrswipkxtea"), ==, 0700);
	g_assert_cmpuint(fs_tree_rights_mode(0700, "lr"), ==, 0500);
	g_assert_cmpuint(fs_tree_rights_mode(0600, "lrs"), ==, 0400);
	g_assert_cmpuint(fs_tree_rights_mode(0700, "li"), ==, 0300);
	g_assert_cmpuint(fs_tree_rights_mode(0700, "lrt"), ==, 0700);
	g_assert_cmpuint(fs_tree_rights_mode(0700, "lre"), ==, 0700);
	/* RFC 2086's d stands for t and e. */
	g_assert_cmpuint(fs_tree_rights_mode(0700, "lrd"), ==, 0700);
	g_assert_cmpuint(fs_tree_rights_mode(0755, ""), ==, 0111);
	g_assert_cmpuint(fs_tree_rights_mode(0500, "l"), ==, 0100);
}

/* The write path's deltas against a listing that was in flight. */
static void finish_load(struct fs_tree *t, uint64_t dir, const uint32_t *uids,
			size_t n)
{
	struct imap_mailbox_status st = {.uidvalidity = 7};
	GArray *metas =
		g_array_new(FALSE, TRUE, sizeof(struct imap_message_meta));
	size_t i;

	for (i = 0; i < n; i++) {
		struct imap_message_meta m = {
			.uid = uids[i], .size = 10, .flags = ""};

		g_array_append_val(metas, m);
	}
	fs_tree_folder_end(t, dir, TRUE, &st, metas);
	g_array_unref(metas);
}

static void begin_load(struct fs_tree *t, uint64_t dir)
{
	struct fs_folder_base base;

	fs_tree_folder_invalidate_full(t, dir);
	g_assert_cmpint(
		fs_tree_folder_begin(t, dir, G_USEC_PER_SEC * 60, &base), ==,
		FS_FOLDER_LOAD);
	fs_folder_base_clear(&base);
}

/* A mailbox list asked for before this mount's own RENAME (mv B C/B)
 * and answered after it must not undo it: applied, it would sweep C/B
 * (and its listing) and bring back an empty B. */
static void test_stale_list_after_rename(void)
{
	struct fs_tree *t = fs_tree_new(1000, 1000, 0400, 0500);
	GPtrArray *before = g_ptr_array_new_with_free_func(info_free);
	GPtrArray *after = g_ptr_array_new_with_free_func(info_free);
	const uint32_t uids[] = {1, 2};
	uint64_t b, c, gen;
	GArray *list;
	int r;

	add_box(before, "INBOX", '.', FALSE);
	add_box(before, "B", '.', FALSE);
	add_box(before, "C", '.', FALSE);
	add_box(after, "INBOX", '.', FALSE);
	add_box(after, "C", '.', FALSE);
	add_box(after, "C.B", '.', FALSE);
	fs_tree_set_mailboxes(t, before);
	b = lookup_ino(t, FS_ROOT_INO, "B");
	c = lookup_ino(t, FS_ROOT_INO, "C");
	load(t, b, 7, uids, 2);
	/* The LIST goes out; our RENAME completes before its answer. */
	gen = fs_tree_mailboxes_gen(t);
	g_assert_cmpint(fs_tree_move_dir(t, FS_ROOT_INO, "B", c, "B", "C.B"),
			==, 0);
	g_assert_false(fs_tree_set_mailboxes_since(t, before, gen));
	g_assert_cmpuint(lookup_ino(t, c, "B"), ==, b);
	g_assert_cmpuint(lookup_ino(t, FS_ROOT_INO, "B"), ==, 0);
	list = fs_tree_list(t, b, &r);
	g_assert_nonnull(list);
	g_assert_cmpuint(list->len, ==, 2 + 2);
	g_array_unref(list);
	/* A list asked for after it applies, and keeps the moved node. */
	gen = fs_tree_mailboxes_gen(t);
	g_assert_true(fs_tree_set_mailboxes_since(t, after, gen));
	g_assert_cmpuint(lookup_ino(t, c, "B"), ==, b);
	g_ptr_array_unref(before);
	g_ptr_array_unref(after);
	fs_tree_free(t);
}

/* Without LIST-STATUS: which new names are asked STATUS. None while every
 * folder with a known UIDVALIDITY is still listed (a folder only listed,
 * never loaded, does not count); once a loaded one went, the new
 * selectable names without OLDNAME, shortest first, capped; and their
 * STATUS answers let the list keep the folder's inode. */
static void test_rename_candidates(void)
{
	struct fs_tree *t = fs_tree_new(1000, 1000, 0400, 0500);
	GPtrArray *infos = g_ptr_array_new_with_free_func(info_free);
	GPtrArray *next = g_ptr_array_new_with_free_func(info_free);
	const uint32_t uids[] = {1, 2};
	struct imap_mailbox_info *i;
	GPtrArray *ask;
	uint64_t a;

	add_box(infos, "INBOX", '.', FALSE);
	add_box(infos, "A", '.', FALSE);
	add_box(infos, "Listed", '.', FALSE);
	fs_tree_set_mailboxes(t, infos);
	a = lookup_ino(t, FS_ROOT_INO, "A");
	load(t, a, 101, uids, 2);
	/* Listed (never loaded) went, New came: nothing to compare. */
	add_box(next, "INBOX", '.', FALSE);
	add_box(next, "A", '.', FALSE);
	add_box(next, "New", '.', FALSE);
	ask = fs_tree_rename_candidates(t, next, 20);
	g_assert_cmpuint(ask->len, ==, 0);
	g_ptr_array_unref(ask);
	/* A went: the new names, shortest first, but not a \Noselect one
	 * nor one whose OLDNAME (or UIDVALIDITY) says it already. */
	g_ptr_array_remove_index(next, 1);
	add_box(next, "Longer.B", '.', FALSE);
	add_box(next, "B", '.', FALSE);
	add_box(next, "Parent", '.', TRUE);
	add_box(next, "Told", '.', FALSE);
	i = next->pdata[next->len - 1];
	i->old_name = g_strdup("Other");
	ask = fs_tree_rename_candidates(t, next, 20);
	g_assert_cmpuint(ask->len, ==, 3);
	g_assert_cmpstr(((struct imap_mailbox_info *)ask->pdata[0])->name, ==,
			"B");
	g_assert_cmpstr(((struct imap_mailbox_info *)ask->pdata[1])->name, ==,
			"New");
	g_assert_cmpstr(((struct imap_mailbox_info *)ask->pdata[2])->name, ==,
			"Longer.B");
	g_ptr_array_unref(ask);
	ask = fs_tree_rename_candidates(t, next, 1);
	g_assert_cmpuint(ask->len, ==, 1);
	/* STATUS B: A's UIDVALIDITY, MESSAGES and UIDNEXT as its load saw
	 * them (load() reports no EXISTS, and UIDNEXT past the last UID). */
	i = ask->pdata[0];
	i->uidvalidity = 101;
	i->exists = 0;
	i->uidnext = 3;
	g_ptr_array_unref(ask);
	fs_tree_set_mailboxes(t, next);
	g_assert_cmpuint(lookup_ino(t, FS_ROOT_INO, "B"), ==, a);
	g_assert_cmpuint(lookup_ino(t, FS_ROOT_INO, "A"), ==, 0);
	g_ptr_array_unref(next);
	g_ptr_array_unref(infos);
	fs_tree_free(t);
}

/* Dovecot refreshes its mailbox list index at most once a second: a LIST
 * sent after our own CREATE or RENAME completed may leave the new name
 * out. A directory this mount made or moved stays for a grace of 3 s
 * (TREE_OWN_GRACE_US); a list after that decides. */
static void test_stale_list_after_own_change(void)
{
	struct fs_tree *t = make_tree();
	GPtrArray *stale = g_ptr_array_new_with_free_func(info_free);
	uint64_t archive = lookup_ino(t, FS_ROOT_INO, "Archive");
	uint64_t fresh, moved;
	struct fs_entry e;

	add_box(stale, "INBOX", '.', FALSE);
	add_box(stale, "Archive.2024.Q1", '.', FALSE);
	add_box(stale, "Archive", '.', TRUE);
	add_box(stale, "a/b", '.', FALSE);
	g_assert_cmpint(fs_tree_add_dir(t, FS_ROOT_INO, "New", "New", &e), ==,
			0);
	fresh = e.ino;
	fs_entry_clear(&e);
	moved = lookup_ino(t, FS_ROOT_INO, "Entw\xc3\xbcrfe");
	g_assert_cmpuint(moved, !=, 0);
	g_assert_cmpint(fs_tree_move_dir(t, FS_ROOT_INO, "Entw\xc3\xbcrfe",
					 archive, "Drafts", "Archive.Drafts"),
			==, 0);
	fs_tree_set_mailboxes(t, stale);
	g_assert_cmpuint(lookup_ino(t, FS_ROOT_INO, "New"), ==, fresh);
	g_assert_cmpuint(lookup_ino(t, archive, "Drafts"), ==, moved);
	g_usleep(3100 * 1000);
	fs_tree_set_mailboxes(t, stale);
	g_assert_cmpuint(lookup_ino(t, FS_ROOT_INO, "New"), ==, 0);
	g_assert_cmpuint(lookup_ino(t, archive, "Drafts"), ==, 0);
	g_assert_cmpuint(lookup_ino(t, archive, "2024"), !=, 0);
	g_ptr_array_unref(stale);
	fs_tree_free(t);
}

/* Another client's RENAME, seen in the polled mailbox list: the same
 * mailbox under a new name (OLDNAME, or the same UIDVALIDITY, MESSAGES and
 * UIDNEXT) keeps its inodes and listing; anything else is a deletion and
 * a creation. */
static void test_renamed_by_another_client(void)
{
	struct fs_tree *t = fs_tree_new(1000, 1000, 0400, 0500);
	GPtrArray *infos = g_ptr_array_new_with_free_func(info_free);
	const uint32_t uids[] = {1, 2};
	uint64_t a, kid, msg, b;
	struct imap_mailbox_info *i;

	add_box(infos, "INBOX", '.', FALSE);
	add_box(infos, "A", '.', FALSE);
	add_box(infos, "A.Kid", '.', FALSE);
	add_box(infos, "Gone", '.', FALSE);
	for (guint j = 1; j < infos->len; j++) {
		i = infos->pdata[j];
		i->uidvalidity = 100 + j;
		i->exists = 2;
		i->uidnext = 3;
	}
	fs_tree_set_mailboxes(t, infos);
	a = lookup_ino(t, FS_ROOT_INO, "A");
	kid = lookup_ino(t, a, "Kid");
	load(t, a, 101, uids, 2);
	msg = lookup_ino(t, a, "1.eml");
	g_assert_cmpuint(msg, !=, 0);
	/* A -> B (with its child); Gone deleted and a new mailbox with the
	 * same UIDVALIDITY but other counts created. */
	i = infos->pdata[1];
	g_free(i->name);
	i->name = g_strdup("B");
	i = infos->pdata[2];
	g_free(i->name);
	i->name = g_strdup("B.Kid");
	i = infos->pdata[3];
	g_free(i->name);
	i->name = g_strdup("New");
	i->exists = 5;
	fs_tree_set_mailboxes(t, infos);
	b = lookup_ino(t, FS_ROOT_INO, "B");
	g_assert_cmpuint(b, ==, a);
	g_assert_cmpuint(lookup_ino(t, b, "Kid"), ==, kid);
	g_assert_cmpuint(lookup_ino(t, b, "1.eml"), ==, msg);
	g_assert_cmpuint(lookup_ino(t, FS_ROOT_INO, "A"), ==, 0);
	g_assert_cmpuint(lookup_ino(t, FS_ROOT_INO, "New"), !=, 0);
	g_assert_cmpuint(lookup_ino(t, FS_ROOT_INO, "Gone"), ==, 0);
	/* OLDNAME says so, even with nothing else to go by. */
	i = infos->pdata[1];
	g_free(i->name);
	i->name = g_strdup("C");
	i->uidvalidity = i->exists = i->uidnext = 0;
	i->old_name = g_strdup("B");
	i = infos->pdata[2];
	g_free(i->name);
	i->name = g_strdup("C.Kid");
	fs_tree_set_mailboxes(t, infos);
	g_assert_cmpuint(lookup_ino(t, FS_ROOT_INO, "C"), ==, a);
	g_assert_cmpuint(lookup_ino(t, a, "Kid"), ==, kid);
	g_ptr_array_unref(infos);
	fs_tree_free(t);
}

static void test_deltas_beat_stale_listings(void)
{
	struct fs_tree *t = make_tree();
	struct fs_spool_dir *sd;
	struct fs_spool *sp;
	struct fs_entry e;
	uint64_t inbox = lookup_ino(t, FS_ROOT_INO, "INBOX"), local;
	const uint32_t first[] = {1, 2, 3};
	const uint32_t stale[] = {1, 2, 3};
	char *base = g_dir_make_tmp("imapfs-tree-XXXXXX", NULL);
	int r;

	sd = fs_spool_dir_new(base, NULL);
	g_assert_nonnull(sd);
	begin_load(t, inbox);
	finish_load(t, inbox, first, 3);
	/* A listing begins; meanwhile this mount stores a new message (UID
	 * 4, written as new.eml) and removes UID 2. */
	begin_load(t, inbox);
	sp = fs_spool_new(sd, "INBOX/new.eml", &r);
	g_assert_nonnull(sp);
	g_assert_cmpint(fs_tree_add_local(t, inbox, "new.eml", sp, &e), ==, 0);
	local = e.ino;
	fs_entry_clear(&e);
	g_assert_cmpint(fs_tree_commit(t, local, inbox, 7, 4, 10, 0, "",
				       "new.eml", 0, FALSE),
			==, 0);
	fs_tree_remove_msg(t, inbox, 2);
	/* The listing, from before both changes, arrives. */
	finish_load(t, inbox, stale, 3);
	g_assert_cmpuint(lookup_ino(t, inbox, "4.eml"), ==, local);
	g_assert_cmpuint(lookup_ino(t, inbox, "new.eml"), ==, local);
	g_assert_cmpuint(lookup_ino(t, inbox, "2.eml"), ==, 0);
	/* A listing that began after the changes is the truth again. */
	begin_load(t, inbox);
	{
		const uint32_t now[] = {1, 3};

		finish_load(t, inbox, now, 2);
	}
	g_assert_cmpuint(lookup_ino(t, inbox, "4.eml"), ==, 0);
	g_assert_cmpuint(lookup_ino(t, inbox, "1.eml"), !=, 0);
	fs_spool_unref(sp);
	fs_tree_free(t);
	fs_spool_dir_close(sd);
	g_rmdir(base);
	g_free(base);
}

static guint list_len(struct fs_tree *t, uint64_t dir)
{
	int err;
	GArray *list = fs_tree_list(t, dir, &err);
	guint n;

	g_assert_nonnull(list);
	n = list->len - 2;
	g_array_unref(list);
	return n;
}

static guint live_count(struct fs_tree *t, const char *mailbox)
{
	struct fs_live_folder f = {0};
	guint n;

	g_assert_true(fs_tree_live_folder(t, mailbox, &f));
	n = f.count;
	fs_live_folder_clear(&f);
	return n;
}

/* -o delete=flag: a message flagged \Deleted (by us: rm, an edit, a move
 * without MOVE; or by anyone) is neither listed nor found by name, yet
 * stays counted; clearing the flag shows it again. Without the option a
 * \Deleted message is an ordinary one. */
static void test_hide_deleted(void)
{
	struct fs_tree *t = make_tree();
	uint64_t inbox = lookup_ino(t, FS_ROOT_INO, "INBOX");
	uint64_t q1 = lookup_ino(
		t, lookup_ino(t, lookup_ino(t, FS_ROOT_INO, "Archive"), "2024"),
		"Q1");
	const uint32_t uids[] = {1, 2, 3}, q1_uids[] = {5};
	uint64_t two, three, one, five;
	struct fs_entry e;

	fs_tree_set_hide_deleted(t, TRUE);
	load(t, inbox, 42, uids, 3);
	load(t, q1, 43, q1_uids, 1);
	one = lookup_ino(t, inbox, "1.eml");
	two = lookup_ino(t, inbox, "2.eml");
	three = lookup_ino(t, inbox, "3.eml");
	/* rm 2.eml */
	fs_tree_flag_deleted(t, two);
	g_assert_cmpuint(lookup_ino(t, inbox, "2.eml"), ==, 0);
	g_assert_cmpint(fs_tree_peek(t, inbox, "2.eml", &e), ==, FS_NAME_NONE);
	g_assert_cmpuint(list_len(t, inbox), ==, 2);
	g_assert_cmpuint(live_count(t, "INBOX"), ==, 3);
	g_assert_cmpint(fs_tree_get(t, two, &e), ==, 0); /* an open file */
	g_assert_cmpstr(e.flags, ==, "\\Seen \\Deleted");
	fs_entry_clear(&e);
	/* Another client clears it; sets it again. */
	g_assert_cmpint(fs_tree_live_set_flags(t, NULL, inbox, 42, 2, "\\Seen"),
			==, 1);
	g_assert_cmpuint(lookup_ino(t, inbox, "2.eml"), ==, two);
	g_assert_cmpint(
		fs_tree_live_set_flags(t, NULL, inbox, 42, 2, "\\DELETED"), ==,
		1);
	g_assert_cmpuint(lookup_ino(t, inbox, "2.eml"), ==, 0);
	/* An edit of 3.eml stored as UID 4: 3 stays, hidden; its name reads
	 * the new version (the same inode). */
	g_assert_cmpint(fs_tree_commit(t, three, inbox, 42, 4, 10, 0, "\\Seen",
				       NULL, 3, TRUE),
			==, 0);
	g_assert_cmpuint(lookup_ino(t, inbox, "4.eml"), ==, three);
	g_assert_cmpuint(lookup_ino(t, inbox, "3.eml"), ==, three);
	g_assert_cmpuint(list_len(t, inbox), ==, 2); /* 1.eml, 4.eml */
	g_assert_cmpuint(live_count(t, "INBOX"), ==, 4);
	/* A move of 1.eml by COPY: the original stays, hidden. */
	fs_tree_move_msg(t, one, q1, 43, 6, NULL, TRUE);
	g_assert_cmpuint(lookup_ino(t, q1, "6.eml"), ==, one);
	g_assert_cmpuint(lookup_ino(t, inbox, "1.eml"), ==, 0);
	g_assert_cmpuint(list_len(t, inbox), ==, 1);
	g_assert_cmpuint(live_count(t, "INBOX"), ==, 4);
	/* Cleared by another client, the original shows again. */
	g_assert_cmpint(fs_tree_live_set_flags(t, NULL, inbox, 42, 1, ""), ==,
			1);
	g_assert_cmpuint(lookup_ino(t, inbox, "1.eml"), !=, 0);
	g_assert_cmpuint(lookup_ino(t, inbox, "1.eml"), !=, one);
	/* A message renamed in its folder loses that name when hidden. */
	five = lookup_ino(t, q1, "5.eml");
	g_assert_cmpint(fs_tree_rename_msg(t, five, "keep.eml"), ==, 0);
	g_assert_cmpuint(lookup_ino(t, q1, "keep.eml"), ==, five);
	fs_tree_flag_deleted(t, five);
	g_assert_cmpuint(lookup_ino(t, q1, "keep.eml"), ==, 0);
	g_assert_cmpuint(list_len(t, q1), ==, 1); /* 6.eml */
	g_assert_cmpint(fs_tree_live_set_flags(t, NULL, q1, 43, 5, ""), ==, 1);
	g_assert_cmpuint(lookup_ino(t, q1, "5.eml"), ==, five);
	g_assert_cmpuint(list_len(t, q1), ==, 2);
	fs_tree_free(t);

	/* Without the option: listed like any other. */
	t = make_tree();
	inbox = lookup_ino(t, FS_ROOT_INO, "INBOX");
	load(t, inbox, 42, uids, 3);
	fs_tree_flag_deleted(t, lookup_ino(t, inbox, "2.eml"));
	g_assert_cmpuint(lookup_ino(t, inbox, "2.eml"), !=, 0);
	g_assert_cmpuint(list_len(t, inbox), ==, 3);
	fs_tree_free(t);
}

static GArray *metas_of(const uint32_t *uids, size_t n, const char *flags)
{
	GArray *a = g_array_new(FALSE, TRUE, sizeof(struct imap_message_meta));

	for (size_t i = 0; i < n; i++) {
		struct imap_message_meta m = {.uid = uids[i],
					      .size = 100 * uids[i],
					      .internaldate = 1700000000,
					      .flags = (char *)flags};

		g_array_append_val(a, m);
	}
	return a;
}

static char *flags_of(struct fs_tree *t, uint64_t dir, const char *name)
{
	struct fs_entry e;
	char *f;

	g_assert_cmpint(fs_tree_lookup(t, dir, name, &e), ==, 0);
	f = g_strdup(e.flags);
	fs_entry_clear(&e);
	return f;
}

/* An incremental refresh: new messages, flag changes and expunges become
 * deltas; what this mount removed after the refresh began stays removed;
 * inodes of the messages that stay are kept. */
static void test_refresh(void)
{
	struct fs_tree *t = make_tree();
	uint64_t inbox = lookup_ino(t, FS_ROOT_INO, "INBOX");
	const uint32_t first[] = {1, 2, 3, 4, 6};
	/* UIDNEXT 6: message 6 arrived between EXAMINE and the listing. */
	struct imap_mailbox_status st = {.uidvalidity = 7,
					 .uidnext = 6,
					 .exists = 5,
					 .highestmodseq = 20};
	struct imap_uid_range present[] = {{1, 1}, {3, 6}};
	struct fs_folder_delta delta = {0};
	struct fs_folder_base base;
	GArray *metas = metas_of(first, 5, "\\Seen");
	uint64_t ino1, ino3;
	char *f;

	g_assert_cmpint(fs_tree_folder_begin(t, inbox, 0, &base), ==,
			FS_FOLDER_LOAD);
	fs_folder_base_clear(&base);
	fs_tree_folder_end(t, inbox, TRUE, &st, metas);
	g_array_unref(metas);
	ino1 = lookup_ino(t, inbox, "1.eml");
	ino3 = lookup_ino(t, inbox, "3.eml");
	/* Fresh: nothing to do; stale: a refresh from what the server said. */
	g_assert_cmpint(
		fs_tree_folder_begin(t, inbox, G_USEC_PER_SEC * 60, &base), ==,
		FS_FOLDER_FRESH);
	fs_folder_base_clear(&base);
	fs_tree_folder_invalidate(t, inbox);
	g_assert_cmpint(fs_tree_folder_begin(t, inbox, 0, &base), ==,
			FS_FOLDER_REFRESH);
	g_assert_cmpuint(base.uidvalidity, ==, 7);
	g_assert_cmpuint(base.uidnext, ==, 6);
	g_assert_cmpuint(base.exists, ==, 5);
	g_assert_cmpuint(base.modseq, ==, 20);
	g_assert_cmpstr(base.mailbox, ==, "INBOX");
	/* Meanwhile others are served the listing as it is. */
	{
		struct fs_folder_base other;

		g_assert_cmpint(fs_tree_folder_begin(t, inbox, 0, &other), ==,
				FS_FOLDER_FRESH);
		fs_folder_base_clear(&other);
	}
	fs_folder_base_clear(&base);
	/* This mount removes 4 after the refresh began (the server's answer
	 * may predate that). */
	fs_tree_remove_msg(t, inbox, 4);
	delta.metas = metas_of((const uint32_t[]){4, 7, 8}, 3, "");
	delta.flags = metas_of((const uint32_t[]){3, 99}, 2, "\\Flagged");
	delta.present =
		g_array_new(FALSE, FALSE, sizeof(struct imap_uid_range));
	g_array_append_vals(delta.present, present, G_N_ELEMENTS(present));
	delta.present_below = 6;
	/* The new-mail listing (6:*) holds every message from 6 on: 6 is
	 * not in it, so it went. */
	delta.new_from = 6;
	st.uidnext = 9;
	st.exists = 6;
	st.highestmodseq = 25;
	fs_tree_folder_refresh_end(t, inbox, TRUE, &st, &delta);
	g_array_unref(delta.metas);
	g_array_unref(delta.flags);
	g_array_unref(delta.present);
	g_assert_cmpuint(lookup_ino(t, inbox, "1.eml"), ==, ino1);
	g_assert_cmpuint(lookup_ino(t, inbox, "3.eml"), ==, ino3);
	g_assert_cmpuint(lookup_ino(t, inbox, "2.eml"), ==, 0); /* expunged */
	g_assert_cmpuint(lookup_ino(t, inbox, "4.eml"), ==, 0); /* ours */
	g_assert_cmpuint(lookup_ino(t, inbox, "99.eml"), ==, 0);
	g_assert_cmpuint(lookup_ino(t, inbox, "6.eml"), ==, 0);
	g_assert_cmpuint(lookup_ino(t, inbox, "7.eml"), !=, 0);
	g_assert_cmpuint(lookup_ino(t, inbox, "8.eml"), !=, 0);
	f = flags_of(t, inbox, "3.eml");
	g_assert_cmpstr(f, ==, "\\Flagged");
	g_free(f);
	f = flags_of(t, inbox, "1.eml");
	g_assert_cmpstr(f, ==, "\\Seen");
	g_free(f);
	g_assert_cmpuint(fs_tree_max_uid(t, inbox), ==, 8);
	g_assert_cmpuint(count_entries(t, inbox, FALSE), ==, 4);
	/* The next base is what the server said now. */
	fs_tree_folder_invalidate(t, inbox);
	g_assert_cmpint(fs_tree_folder_begin(t, inbox, 0, &base), ==,
			FS_FOLDER_REFRESH);
	g_assert_cmpuint(base.uidnext, ==, 9);
	g_assert_cmpuint(base.exists, ==, 6);
	g_assert_cmpuint(base.modseq, ==, 25);
	fs_folder_base_clear(&base);
	/* A new UIDVALIDITY: every message goes, the next access lists. */
	st.uidvalidity = 8;
	memset(&delta, 0, sizeof(delta));
	fs_tree_folder_refresh_end(t, inbox, TRUE, &st, &delta);
	g_assert_cmpuint(lookup_ino(t, inbox, "1.eml"), ==, 0);
	g_assert_cmpint(
		fs_tree_folder_begin(t, inbox, 60 * G_USEC_PER_SEC, &base), ==,
		FS_FOLDER_LOAD);
	fs_folder_base_clear(&base);
	fs_tree_free(t);
}

/* A lookup in a folder never listed adds the one message it found; a
 * listing that follows keeps its inode. */
static void test_add_one(void)
{
	struct fs_tree *t = make_tree();
	uint64_t inbox = lookup_ino(t, FS_ROOT_INO, "INBOX");
	struct imap_mailbox_status st = {
		.uidvalidity = 7, .uidnext = 10, .exists = 3};
	struct imap_message_meta m = {.uid = 5, .size = 50, .flags = ""};
	uint64_t ino;
	char *mb = NULL;
	guint known = 9;

	g_assert_true(fs_tree_folder_cold(t, inbox, &mb, &known));
	g_assert_cmpstr(mb, ==, "INBOX");
	g_assert_cmpuint(known, ==, 0);
	g_free(mb);
	g_assert_cmpint(fs_tree_folder_add_one(t, inbox, &st, &m), ==, 0);
	g_assert_cmpint(fs_tree_folder_add_one(t, inbox, &st, NULL), ==, 0);
	ino = lookup_ino(t, inbox, "5.eml");
	g_assert_cmpuint(ino, !=, 0);
	g_assert_true(fs_tree_folder_cold(t, inbox, NULL, &known));
	g_assert_cmpuint(known, ==, 1);
	load(t, inbox, 7, (const uint32_t[]){4, 5, 6}, 3);
	g_assert_false(fs_tree_folder_cold(t, inbox, NULL, NULL));
	g_assert_cmpuint(lookup_ino(t, inbox, "5.eml"), ==, ino);
	g_assert_cmpuint(count_entries(t, inbox, FALSE), ==, 3);
	fs_tree_free(t);
}

/* The live view's folder walks (fs_tree_live_folders, fs_tree_live_folder,
 * fs_tree_live_dir_names) see exactly the loaded, existing folders:
 * they go over the directory nodes alone, never over the messages. */
static void test_live_folders(void)
{
	struct fs_tree *t = make_tree();
	GPtrArray *infos = g_ptr_array_new_with_free_func(info_free);
	uint64_t inbox = lookup_ino(t, FS_ROOT_INO, "INBOX");
	uint64_t archive = lookup_ino(t, FS_ROOT_INO, "Archive");
	uint64_t y2024 = lookup_ino(t, archive, "2024");
	uint64_t q1 = lookup_ino(t, y2024, "Q1");
	const uint32_t uids[] = {1, 2, 3, 5, 8};
	struct fs_live_folder f;
	GHashTable *names;
	GArray *live;
	char *key;

	live = fs_tree_live_folders(t);
	g_assert_cmpuint(live->len, ==, 0);
	g_array_unref(live);
	load(t, inbox, 7, uids, 5);
	g_usleep(2000); /* distinct use times */
	load(t, q1, 9, uids, 2);
	live = fs_tree_live_folders(t);
	g_assert_cmpuint(live->len, ==, 2);
	/* Most recently used first. */
	g_assert_cmpstr(g_array_index(live, struct fs_live_folder, 0).mailbox,
			==, "Archive.2024.Q1");
	g_assert_cmpuint(g_array_index(live, struct fs_live_folder, 0).ino, ==,
			 q1);
	g_assert_cmpuint(g_array_index(live, struct fs_live_folder, 0).count,
			 ==, 2);
	g_assert_cmpstr(g_array_index(live, struct fs_live_folder, 1).mailbox,
			==, "INBOX");
	g_assert_cmpuint(g_array_index(live, struct fs_live_folder, 1).max_uid,
			 ==, 8);
	g_array_unref(live);
	g_assert_true(fs_tree_live_folder(t, "INBOX", &f));
	g_assert_cmpuint(f.ino, ==, inbox);
	g_assert_cmpuint(f.uidvalidity, ==, 7);
	g_assert_cmpuint(f.count, ==, 5);
	fs_live_folder_clear(&f);
	/* Known but never listed. */
	g_assert_false(fs_tree_live_folder(t, "Entw&APw-rfe", &f));
	names = fs_tree_live_dir_names(t);
	key = g_strdup_printf("%" G_GUINT64_FORMAT "/Q1", y2024);
	g_assert_cmpuint(GPOINTER_TO_SIZE(g_hash_table_lookup(names, key)), ==,
			 q1);
	g_free(key);
	g_assert_true(g_hash_table_contains(names, "1/INBOX"));
	g_assert_false(g_hash_table_contains(names, "1/1.eml"));
	g_hash_table_unref(names);

	/* Q1's mailbox goes: no longer a loaded folder, nor a name. */
	add_box(infos, "INBOX", '.', FALSE);
	fs_tree_set_mailboxes(t, infos);
	g_ptr_array_unref(infos);
	live = fs_tree_live_folders(t);
	g_assert_cmpuint(live->len, ==, 1);
	g_assert_cmpstr(g_array_index(live, struct fs_live_folder, 0).mailbox,
			==, "INBOX");
	g_array_unref(live);
	g_assert_false(fs_tree_live_folder(t, "Archive.2024.Q1", &f));
	names = fs_tree_live_dir_names(t);
	key = g_strdup_printf("%" G_GUINT64_FORMAT "/Q1", y2024);
	g_assert_false(g_hash_table_contains(names, key));
	g_free(key);
	g_assert_true(g_hash_table_contains(names, "1/INBOX"));
	g_hash_table_unref(names);
	/* A directory made after the first walk is walked too. */
	infos = g_ptr_array_new_with_free_func(info_free);
	add_box(infos, "INBOX", '.', FALSE);
	add_box(infos, "Later", '.', FALSE);
	fs_tree_set_mailboxes(t, infos);
	g_ptr_array_unref(infos);
	load(t, lookup_ino(t, FS_ROOT_INO, "Later"), 3, uids, 1);
	g_assert_true(fs_tree_live_folder(t, "Later", &f));
	fs_live_folder_clear(&f);
	fs_tree_free(t);
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/tree/structure", test_structure);
	g_test_add_func("/tree/listing", test_listing);
	g_test_add_func("/tree/expunge", test_expunge_and_forget);
	g_test_add_func("/tree/uidvalidity", test_uidvalidity_change);
	g_test_add_func("/tree/mailbox-vanishes", test_mailbox_vanishes);
	g_test_add_func("/tree/failed-load", test_failed_load_keeps_listing);
	g_test_add_func("/tree/prefetch-plan", test_prefetch_plan);
	g_test_add_func("/tree/namespaces", test_namespaces);
	g_test_add_func("/tree/parent-only", test_parent_only);
	g_test_add_func("/tree/folder-vanished", test_folder_vanished);
	g_test_add_func("/tree/stale-list-after-own-change",
			test_stale_list_after_own_change);
	g_test_add_func("/tree/rights-mode", test_rights_mode);
	g_test_add_func("/tree/deltas", test_deltas_beat_stale_listings);
	g_test_add_func("/tree/renamed-by-another-client",
			test_renamed_by_another_client);
	g_test_add_func("/tree/stale-list-after-rename",
			test_stale_list_after_rename);
	g_test_add_func("/tree/rename-candidates", test_rename_candidates);
	g_test_add_func("/tree/refresh", test_refresh);
	g_test_add_func("/tree/add-one", test_add_one);
	g_test_add_func("/tree/live-folders", test_live_folders);
	g_test_add_func("/tree/hide-deleted", test_hide_deleted);
	return g_test_run();
}
