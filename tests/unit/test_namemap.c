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
	return g_test_run();
}
