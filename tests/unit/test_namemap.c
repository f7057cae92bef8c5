/* test_namemap.c - mailbox name <-> file name mapping (fs/namemap.c). */
#include "config.h"

#include <string.h>

#include "mutf7.h"
#include "namemap.h"

#define MAX_COMPONENTS 5

struct path_case {
	const char *mailbox;
	char delimiter;
	/* Every component is canonical modified UTF-7, so the mapping must
	 * be reversible. */
	gboolean canonical;
	const char *path[MAX_COMPONENTS + 1];
};

static const struct path_case path_cases[] = {
	{"INBOX", '.', TRUE, {"INBOX"}},
	{"Archive.2024.Q1", '.', TRUE, {"Archive", "2024", "Q1"}},
	{"Archive/2024/Q1", '/', TRUE, {"Archive", "2024", "Q1"}},
	{"Archive.2024.Q1", '/', TRUE, {"Archive.2024.Q1"}},
	{"a/b", '.', TRUE, {"a%2Fb"}},
	{"Entw&APw-rfe", '.', TRUE, {"Entw\xc3\xbcrfe"}},
	{"INBOX.Entw&APw-rfe", '.', TRUE, {"INBOX", "Entw\xc3\xbcrfe"}},
	{"&ZeVnLIqe-/&ZeVnLIqe-",
	 '/',
	 TRUE,
	 {"\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e",
	  "\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e"}},
	{"&-", '.', TRUE, {"&"}},
	{"100%", '.', TRUE, {"100%25"}},
	{"%2F", '.', TRUE, {"%252F"}},
	{"a..b", '.', TRUE, {"a", "%", "b"}},
	{"a.", '.', TRUE, {"a", "%"}},
	{".a", '.', TRUE, {"%", "a"}},
	{".", '.', TRUE, {"%", "%"}},
	{"", '.', TRUE, {"%"}},
	{".", '/', TRUE, {"%2E"}},
	{"..", '/', TRUE, {"%2E%2E"}},
	{"...", '/', TRUE, {"..."}},
	{"a/./../b", '/', TRUE, {"a", "%2E", "%2E%2E", "b"}},
	{".hidden", '/', TRUE, {".hidden"}},
	{"123.eml", '/', TRUE, {"123%2Eeml"}},
	{"123.eml", '.', TRUE, {"123", "eml"}},
	{"0.eml", '/', TRUE, {"0%2Eeml"}},
	{"007.eml", '/', TRUE, {"007%2Eeml"}},
	{"1.EML", '/', TRUE, {"1.EML"}},
	{"x1.eml", '/', TRUE, {"x1.eml"}},
	{"1.eml~", '/', TRUE, {"1.eml~"}},
	{".eml", '/', TRUE, {".eml"}},
	{"a/1.eml", '/', TRUE, {"a", "1%2Eeml"}},
	{"a.b/c", '\0', TRUE, {"a.b%2Fc"}},
	{"", '\0', TRUE, {"%"}},
	{"..", '\0', TRUE, {"%2E%2E"}},
	/* Not modified UTF-7: shown as sent, escaped. */
	{"&Jjo", '.', FALSE, {"&Jjo"}},
	{"&Jjo%", '.', FALSE, {"&Jjo%25"}},
	{"INBOX.&Jjo", '.', FALSE, {"INBOX", "&Jjo"}},
	{"&AGE-", '/', FALSE, {"&AGE-"}},
	{"caf\xc3\xa9/x", '/', FALSE, {"caf\xc3\xa9", "x"}},
};

static void test_mailbox_to_path(void)
{
	for (size_t i = 0; i < G_N_ELEMENTS(path_cases); i++) {
		const struct path_case *t = &path_cases[i];
		char **path =
			fs_namemap_mailbox_to_path(t->mailbox, t->delimiter);
		guint n = g_strv_length(path);

		g_assert_cmpuint(n, ==, g_strv_length((char **)t->path));
		for (guint j = 0; j < n; j++)
			g_assert_cmpstr(path[j], ==, t->path[j]);
		g_strfreev(path);
	}
}

static void test_round_trip_table(void)
{
	int checked = 0;

	for (size_t i = 0; i < G_N_ELEMENTS(path_cases); i++) {
		const struct path_case *t = &path_cases[i];
		char **path;
		char *back;

		if (!t->canonical)
			continue;
		path = fs_namemap_mailbox_to_path(t->mailbox, t->delimiter);
		back = fs_namemap_path_to_mailbox((const char *const *)path,
						  g_strv_length(path),
						  t->delimiter);
		g_assert_cmpstr(back, ==, t->mailbox);
		g_free(back);
		g_strfreev(path);
		checked++;
	}
	g_assert_cmpint(checked, >, 20);
}

struct unescape_case {
	const char *name;
	const char *component; /* NULL: must be refused */
};

static const struct unescape_case unescape_cases[] = {
	{"INBOX", "INBOX"},
	{"%", ""},
	{"%25", "%"},
	{"%2F", "/"},
	{"a%2Fb%25c", "a/b%c"},
	{"%2E", "."},
	{"%2E%2E", ".."},
	{"...", "..."},
	{"1%2Eeml", "1.eml"},
	{"0%2Eeml", "0.eml"},
	{"Entw\xc3\xbcrfe", "Entw\xc3\xbcrfe"},
	{"a%", NULL},
	{"%a", NULL},
	{"%%", NULL},
	{"%2", NULL},
	{"a%2", NULL},
	{"%zz", NULL},
	{"%41", NULL},
	{"%00", NULL},
	{"%0A", NULL},
	{"%2f", NULL}, /* lower case is not what escape() writes */
	{"%2e", NULL},
	{"a%2Eb", NULL}, /* %2E only where the table says */
	{"%2E%2E%2E", NULL},
	{"%2Ea", NULL},
	{"%2E.", NULL},
	{".", NULL},
	{"..", NULL},
	{"", NULL},
	{"a/b", NULL},
	{"1.eml", NULL}, /* a message file, not a mailbox */
	{"007.eml", NULL},
	{"1%2Eeml%2E", NULL},
};

static void test_unescape_table(void)
{
	for (size_t i = 0; i < G_N_ELEMENTS(unescape_cases); i++) {
		const struct unescape_case *t = &unescape_cases[i];
		char *c = fs_namemap_unescape(t->name);

		g_assert_cmpstr(c, ==, t->component);
		if (c != NULL) {
			char *again = fs_namemap_escape(c);

			g_assert_cmpstr(again, ==, t->name);
			g_free(again);
		}
		g_free(c);
	}
}

struct to_mailbox_case {
	const char *path[MAX_COMPONENTS + 1];
	char delimiter;
	const char *mailbox; /* NULL: must be refused */
};

static const struct to_mailbox_case to_mailbox_cases[] = {
	{{"INBOX", "Entw\xc3\xbcrfe"}, '.', "INBOX.Entw&APw-rfe"},
	{{"a&b"}, '/', "a&-b"},
	{{"INBOX", "%"}, '.', "INBOX."},
	{{"a.b"}, '/', "a.b"},
	{{"a%2Fb"}, '.', "a/b"},
	{{"a.b"}, '.', NULL},	  /* delimiter inside a component */
	{{"a%2Fb"}, '/', NULL},	  /* ditto, after unescaping */
	{{"a", "b"}, '\0', NULL}, /* flat namespace has no hierarchy */
	{{"a/b"}, '\0', NULL},
	{{"x", "%41"}, '.', NULL},
	{{"."}, '/', NULL},
	{{"1.eml"}, '/', NULL},
	{{"\xff"}, '/', NULL}, /* not UTF-8 */
	{{""}, '/', NULL},
	{{NULL}, '/', NULL}, /* no components */
};

static void test_path_to_mailbox_table(void)
{
	for (size_t i = 0; i < G_N_ELEMENTS(to_mailbox_cases); i++) {
		const struct to_mailbox_case *t = &to_mailbox_cases[i];
		char *mb = fs_namemap_path_to_mailbox(
			t->path, g_strv_length((char **)t->path), t->delimiter);

		g_assert_cmpstr(mb, ==, t->mailbox);
		g_free(mb);
	}
}

static void random_component(GString *s)
{
	static const char *const pieces[] = {
		"a",
		"Z",
		".",
		"/",
		"%",
		"&",
		"-",
		"1",
		"0",
		".eml",
		"~",
		" ",
		"\xc3\xbc",
		"\xe6\x97\xa5",
		"\xf0\x9f\x98\x80",
		"\t",
		"%2E",
		"\\",
	};
	int n = g_test_rand_int_range(0, 6);

	switch (g_test_rand_int_range(0, 8)) {
	case 0:
		g_string_append(s, ".");
		return;
	case 1:
		g_string_append(s, "..");
		return;
	case 2:
		g_string_append_printf(s, "%u.eml", (guint32)g_test_rand_int());
		return;
	default:
		break;
	}
	for (int i = 0; i < n; i++)
		g_string_append(
			s,
			pieces[g_test_rand_int_range(0, G_N_ELEMENTS(pieces))]);
}

/* Any canonical name survives mailbox -> path -> mailbox, and every file
 * name produced is a safe single path component that is not a message
 * name and that unescape() accepts. */
static void test_random_round_trip(void)
{
	static const char delimiters[] = {'.', '/', '\0'};

	for (int iter = 0; iter < 20000; iter++) {
		char delim = delimiters[g_test_rand_int_range(0, 3)];
		int ncomp = delim ? g_test_rand_int_range(1, 5) : 1;
		GString *mailbox = g_string_new(NULL);
		char **path;
		char *back;

		/* A component holding the delimiter just makes more
		 * components; the joined name is still canonical. */
		for (int i = 0; i < ncomp; i++) {
			GString *comp = g_string_new(NULL);
			char *enc;

			random_component(comp);
			enc = imap_mutf7_encode(comp->str, NULL);
			g_assert_nonnull(enc);
			if (i > 0)
				g_string_append_c(mailbox, delim);
			g_string_append(mailbox, enc);
			g_free(enc);
			g_string_free(comp, TRUE);
		}

		path = fs_namemap_mailbox_to_path(mailbox->str, delim);
		for (char **p = path; *p != NULL; p++) {
			char *u;
			guint32 uid;

			g_assert_null(strchr(*p, '/'));
			g_assert_cmpstr(*p, !=, "");
			g_assert_cmpstr(*p, !=, ".");
			g_assert_cmpstr(*p, !=, "..");
			g_assert_false(fs_namemap_parse_message_name(*p, &uid));
			u = fs_namemap_unescape(*p);
			g_assert_nonnull(u);
			g_free(u);
		}
		back = fs_namemap_path_to_mailbox((const char *const *)path,
						  g_strv_length(path), delim);
		g_assert_cmpstr(back, ==, mailbox->str);
		g_free(back);
		g_strfreev(path);
		g_string_free(mailbox, TRUE);
	}
}

struct message_case {
	const char *name;
	gboolean ok;
	guint32 uid;
};

static const struct message_case message_cases[] = {
	{"1.eml", TRUE, 1},
	{"42.eml", TRUE, 42},
	{"4294967295.eml", TRUE, 4294967295u},
	{"4294967296.eml", FALSE, 0},
	{"99999999999.eml", FALSE, 0},
	{"18446744073709551617.eml", FALSE, 0},
	{"0.eml", FALSE, 0},
	{"01.eml", FALSE, 0},
	{"1.EML", FALSE, 0},
	{"1.eml~", FALSE, 0},
	{"1.emlx", FALSE, 0},
	{"1.em", FALSE, 0},
	{"1", FALSE, 0},
	{".eml", FALSE, 0},
	{"abc.eml", FALSE, 0},
	{"+1.eml", FALSE, 0},
	{"-1.eml", FALSE, 0},
	{" 1.eml", FALSE, 0},
	{"1 .eml", FALSE, 0},
	{"1%2Eeml", FALSE, 0},
	{"", FALSE, 0},
};

static void test_message_names(void)
{
	for (size_t i = 0; i < G_N_ELEMENTS(message_cases); i++) {
		const struct message_case *t = &message_cases[i];
		guint32 uid = 12345;

		g_assert_cmpint(fs_namemap_parse_message_name(t->name, &uid),
				==, t->ok);
		if (t->ok)
			g_assert_cmpuint(uid, ==, t->uid);
		else
			g_assert_cmpuint(uid, ==, 12345);
	}
}

static void test_message_name_format(void)
{
	char buf[16];
	guint32 uid;
	static const guint32 uids[] = {1, 42, 1000000, 4294967295u};

	fs_namemap_message_name(42, buf, sizeof(buf));
	g_assert_cmpstr(buf, ==, "42.eml");
	fs_namemap_message_name(4294967295u, buf, sizeof(buf));
	g_assert_cmpstr(buf, ==, "4294967295.eml");
	for (size_t i = 0; i < G_N_ELEMENTS(uids); i++) {
		fs_namemap_message_name(uids[i], buf, sizeof(buf));
		g_assert_true(fs_namemap_parse_message_name(buf, &uid));
		g_assert_cmpuint(uid, ==, uids[i]);
	}
}

/* Namespaces */

struct ns_box {
	const char *name;
	enum imap_ns_kind kind;
	const char *prefix;
	const char *path;   /* expected, "/"-joined */
	const char *levels; /* expected server names per level, "|"-joined;
			       "-" for none */
};

static void ns_check(const struct ns_box *boxes, size_t n)
{
	GPtrArray *infos = g_ptr_array_new();
	GPtrArray *paths;
	size_t i;

	for (i = 0; i < n; i++) {
		struct imap_mailbox_info *info =
			g_new0(struct imap_mailbox_info, 1);
		const char *p = boxes[i].prefix;

		info->name = (char *)boxes[i].name;
		info->delimiter = '.';
		info->ns_kind = boxes[i].kind;
		info->ns_prefix = (char *)p;
		info->rel_name = g_ascii_strcasecmp(info->name, "INBOX") == 0
					 ? info->name
					 : info->name + strlen(p);
		g_ptr_array_add(infos, info);
	}
	paths = fs_namemap_mailbox_paths(infos);
	g_assert_cmpuint(paths->len, ==, n);
	for (i = 0; i < n; i++) {
		const struct fs_namemap_path *mp = paths->pdata[i];
		char *joined = g_strjoinv("/", mp->names);
		GString *lv = g_string_new(NULL);

		for (size_t j = 0; mp->names[j] != NULL; j++) {
			if (j > 0)
				g_string_append_c(lv, '|');
			g_string_append(lv, mp->levels[j] != NULL
						    ? mp->levels[j]
						    : "-");
		}
		g_assert_null(mp->levels[g_strv_length(mp->names)]);
		g_assert_cmpstr(joined, ==, boxes[i].path);
		g_assert_cmpstr(lv->str, ==, boxes[i].levels);
		g_free(joined);
		g_string_free(lv, TRUE);
	}
	g_ptr_array_unref(paths);
	for (i = 0; i < n; i++)
		g_free(infos->pdata[i]);
	g_ptr_array_unref(infos);
}

static void test_ns_courier(void)
{
	/* Courier: NAMESPACE (("INBOX." ".")) NIL (("#shared." ".")
	 * ("shared." ".")). A personal INBOX.shared pushes the namespace
	 * directory aside. */
	static const struct ns_box boxes[] = {
		{"INBOX", IMAP_NS_PERSONAL, "INBOX.", "INBOX", "INBOX"},
		{"INBOX.Archive", IMAP_NS_PERSONAL, "INBOX.", "Archive",
		 "INBOX.Archive"},
		{"INBOX.Archive.2024", IMAP_NS_PERSONAL, "INBOX.",
		 "Archive/2024", "INBOX.Archive|INBOX.Archive.2024"},
		{"INBOX.Entw&APw-rfe", IMAP_NS_PERSONAL, "INBOX.",
		 "Entw\xc3\xbcrfe", "INBOX.Entw&APw-rfe"},
		{"INBOX.INBOX", IMAP_NS_PERSONAL, "INBOX.", "%49NBOX",
		 "INBOX.INBOX"},
		{"INBOX.inbox.x", IMAP_NS_PERSONAL, "INBOX.", "%69nbox/x",
		 "INBOX.inbox|INBOX.inbox.x"},
		{"INBOX.shared", IMAP_NS_PERSONAL, "INBOX.", "shared",
		 "INBOX.shared"},
		{"shared.news", IMAP_NS_SHARED, "shared.", "shared%/news",
		 "shared|shared.news"},
		{"#shared.x.y", IMAP_NS_SHARED, "#shared.", "#shared/x/y",
		 "#shared|#shared.x|#shared.x.y"},
	};

	ns_check(boxes, G_N_ELEMENTS(boxes));
}

static void test_ns_dovecot_and_cyrus(void)
{
	/* Dovecot: (("" ".")) (("shared." ".")) NIL; INBOX's children stay
	 * below INBOX, INBOX.INBOX is no special case without a prefix. */
	static const struct ns_box dovecot[] = {
		{"INBOX", IMAP_NS_PERSONAL, "", "INBOX", "INBOX"},
		{"INBOX.child", IMAP_NS_PERSONAL, "", "INBOX/child",
		 "INBOX|INBOX.child"},
		{"INBOX.INBOX", IMAP_NS_PERSONAL, "", "INBOX/INBOX",
		 "INBOX|INBOX.INBOX"},
		{"Archive", IMAP_NS_PERSONAL, "", "Archive", "Archive"},
		{"shared.bob.Projects", IMAP_NS_OTHER, "shared.",
		 "shared/bob/Projects",
		 "shared|shared.bob|shared.bob.Projects"},
	};
	/* Cyrus (Debian): (("INBOX." ".")) (("user." ".")) (("" ".")): the
	 * shared namespace has no prefix, so it gets a named directory. */
	static const struct ns_box cyrus[] = {
		{"INBOX", IMAP_NS_PERSONAL, "INBOX.", "INBOX", "INBOX"},
		{"INBOX.Sent", IMAP_NS_PERSONAL, "INBOX.", "Sent",
		 "INBOX.Sent"},
		{"user.bob.Projects", IMAP_NS_OTHER, "user.",
		 "user/bob/Projects", "user|user.bob|user.bob.Projects"},
		{"public.lists", IMAP_NS_SHARED, "",
		 "Shared Folders/public/lists", "-|public|public.lists"},
	};

	ns_check(dovecot, G_N_ELEMENTS(dovecot));
	ns_check(cyrus, G_N_ELEMENTS(cyrus));
}

static void test_ns_zeroed_info(void)
{
	/* An info without namespace fields (prefix and rel_name NULL) is a
	 * primary one with prefix "". */
	struct imap_mailbox_info info = {.name = "Archive.2024",
					 .delimiter = '.'};
	GPtrArray *infos = g_ptr_array_new();
	GPtrArray *paths;
	const struct fs_namemap_path *mp;

	g_ptr_array_add(infos, &info);
	paths = fs_namemap_mailbox_paths(infos);
	mp = paths->pdata[0];
	g_assert_cmpstr(mp->names[0], ==, "Archive");
	g_assert_cmpstr(mp->names[1], ==, "2024");
	g_assert_cmpstr(mp->levels[1], ==, "Archive.2024");
	g_ptr_array_unref(paths);
	g_ptr_array_unref(infos);
}

struct reverse_case {
	const char *prefix;
	const char *path[4];
	const char *server; /* NULL: refused */
};

static void test_path_to_server_name(void)
{
	static const struct reverse_case cases[] = {
		{"INBOX.", {"INBOX"}, "INBOX"},
		{"INBOX.", {"inbox"}, "INBOX"},
		{"INBOX.", {"Archive"}, "INBOX.Archive"},
		{"INBOX.", {"Archive", "2024"}, "INBOX.Archive.2024"},
		{"INBOX.", {"Entw\xc3\xbcrfe"}, "INBOX.Entw&APw-rfe"},
		{"INBOX.", {"100%25"}, "INBOX.100%"},
		{"INBOX.", {"%49NBOX"}, "INBOX.INBOX"},
		{"INBOX.", {"%69nbox", "x"}, "INBOX.inbox.x"},
		/* INBOX has no children there: "INBOX.x" is "x". */
		{"INBOX.", {"INBOX", "x"}, NULL},
		{"INBOX.", {"%49nbox"}, "INBOX.Inbox"},
		{"INBOX.", {"%49NBOXX"}, NULL},
		{"INBOX.", {"%4ANBOX"}, NULL},
		/* A namespace directory pushed aside is never a mailbox. */
		{"INBOX.", {"shared%"}, NULL},
		{"INBOX.", {"a.b"}, NULL},
		{"INBOX.", {"%"}, "INBOX."},
		{"", {"INBOX"}, "INBOX"},
		{"", {"INBOX", "child"}, "INBOX.child"},
		{"", {"Archive", "2024"}, "Archive.2024"},
		{"", {"%49NBOX"}, NULL},
		{"", {"1%2Eeml"}, NULL},
		{"", {"a%2Fb"}, "a/b"},
	};

	for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
		const struct reverse_case *c = &cases[i];
		size_t n = 0;
		char *got;

		while (n < 4 && c->path[n] != NULL)
			n++;
		got = fs_namemap_path_to_server_name(c->prefix, '.', c->path,
						     n);
		g_assert_cmpstr(got, ==, c->server);
		g_free(got);
	}
	g_assert_null(fs_namemap_path_to_server_name("INBOX.", '.', NULL, 0));
}

/* Every personal mailbox's path maps back to its server name. */
static void test_ns_round_trip(void)
{
	static const char *const names[] = {"INBOX",
					    "INBOX.Archive",
					    "INBOX.Archive.2024",
					    "INBOX.INBOX",
					    "INBOX.Inbox.deep",
					    "INBOX.100%",
					    "INBOX.Entw&APw-rfe",
					    "INBOX.a..b",
					    "INBOX.123.eml"};
	GPtrArray *infos = g_ptr_array_new_with_free_func(g_free);
	GPtrArray *paths;

	for (size_t i = 0; i < G_N_ELEMENTS(names); i++) {
		struct imap_mailbox_info *info =
			g_new0(struct imap_mailbox_info, 1);

		info->name = (char *)names[i];
		info->delimiter = '.';
		info->ns_prefix = "INBOX.";
		info->rel_name = i == 0 ? info->name : info->name + 6;
		g_ptr_array_add(infos, info);
	}
	paths = fs_namemap_mailbox_paths(infos);
	for (size_t i = 0; i < G_N_ELEMENTS(names); i++) {
		const struct fs_namemap_path *mp = paths->pdata[i];
		char *back = fs_namemap_path_to_server_name(
			"INBOX.", '.', (const char *const *)mp->names,
			g_strv_length(mp->names));

		g_assert_cmpstr(back, ==, names[i]);
		g_free(back);
	}
	g_ptr_array_unref(paths);
	g_ptr_array_unref(infos);
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/namemap/mailbox-to-path", test_mailbox_to_path);
	g_test_add_func("/namemap/round-trip-table", test_round_trip_table);
	g_test_add_func("/namemap/unescape", test_unescape_table);
	g_test_add_func("/namemap/path-to-mailbox", test_path_to_mailbox_table);
	g_test_add_func("/namemap/random-round-trip", test_random_round_trip);
	g_test_add_func("/namemap/message-names", test_message_names);
	g_test_add_func("/namemap/message-name-format",
			test_message_name_format);
	g_test_add_func("/namemap/ns-courier", test_ns_courier);
	g_test_add_func("/namemap/ns-dovecot-cyrus", test_ns_dovecot_and_cyrus);
	g_test_add_func("/namemap/ns-zeroed-info", test_ns_zeroed_info);
	g_test_add_func("/namemap/path-to-server-name",
			test_path_to_server_name);
	g_test_add_func("/namemap/ns-round-trip", test_ns_round_trip);
	return g_test_run();
}
