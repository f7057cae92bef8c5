/* test_acl.c - MYRIGHTS replies and rights (imap/acl.c). */
#include "config.h"

#include <string.h>

#include "acl.h"
#include "parser.h"

static struct imap_response *parse_line(const char *line)
{
	struct imap_parser *p = imap_parser_new(NULL);
	struct imap_response *resp;
	GError *error = NULL;
	size_t used, len = strlen(line);

	g_assert_cmpint(imap_parser_feed(p, line, len, &used, &error), ==,
			IMAP_PARSE_DONE);
	g_assert_no_error(error);
	g_assert_cmpuint(used, ==, len);
	resp = imap_parser_take(p);
	imap_parser_free(p);
	return resp;
}

struct myrights_case {
	const char *line;
	const char *mailbox;
	const char *rights; /* NULL: not a MYRIGHTS for @mailbox */
};

static void test_parse_myrights(void)
{
	static const struct myrights_case cases[] = {
		{"* MYRIGHTS shared.bob.Projects lr\r\n", "shared.bob.Projects",
		 "lr"},
		{"* MYRIGHTS \"Say \\\"hi\\\"\" lrswipkxtecda\r\n",
		 "Say \"hi\"", "lrswipkxtecda"},
		{"* MYRIGHTS {5}\r\nINBOX \"\"\r\n", "INBOX", ""},
		/* INBOX is case-insensitive, other names are not. */
		{"* myrights inbox lrs\r\n", "INBOX", "lrs"},
		{"* MYRIGHTS archive lrs\r\n", "Archive", NULL},
		/* Another mailbox's rights are not ours. */
		{"* MYRIGHTS Other lr\r\n", "Projects", NULL},
		/* Junk in the rights is dropped, repeats too. */
		{"* MYRIGHTS Projects \"lr1 R\\\\ll\"\r\n", "Projects", "lr"},
		/* Not MYRIGHTS, or malformed. */
		{"* ACL Projects alice lr\r\n", "Projects", NULL},
		{"* MYRIGHTS Projects\r\n", "Projects", NULL},
		{"* MYRIGHTS Projects lr extra\r\n", "Projects", NULL},
		{"* MYRIGHTS Projects (l r)\r\n", "Projects", NULL},
		{"* MYRIGHTS NIL lr\r\n", "NIL", NULL},
		{"* OK [MYRIGHTS] x\r\n", "x", NULL},
	};

	for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
		struct imap_response *r = parse_line(cases[i].line);
		char *got = imap_acl_parse_myrights(r, cases[i].mailbox);

		g_assert_cmpstr(got, ==, cases[i].rights);
		g_free(got);
		imap_response_free(r);
	}
}

static void test_parse_myrights_bounded(void)
{
	GString *line = g_string_new("* MYRIGHTS x ");
	struct imap_response *r;
	char *got;

	/* Every letter many times over: each kept once. */
	for (int i = 0; i < 40; i++)
		g_string_append(line, "abcdefghijklmnopqrstuvwxyz");
	g_string_append(line, "\r\n");
	r = parse_line(line->str);
	got = imap_acl_parse_myrights(r, "x");
	g_assert_cmpstr(got, ==, "abcdefghijklmnopqrstuvwxyz");
	g_free(got);
	imap_response_free(r);
	g_string_free(line, TRUE);
}

static void test_has_right(void)
{
	g_assert_true(imap_acl_has_right(NULL, 'i'));
	g_assert_true(imap_acl_has_right("lr", 'r'));
	g_assert_false(imap_acl_has_right("lr", 'i'));
	g_assert_false(imap_acl_has_right("", 'l'));
	/* RFC 2086's c and d (RFC 4314 section 2.1.1). */
	g_assert_true(imap_acl_has_right("lrc", 'k'));
	g_assert_true(imap_acl_has_right("lrc", 'x'));
	g_assert_false(imap_acl_has_right("lrc", 't'));
	g_assert_true(imap_acl_has_right("lrd", 't'));
	g_assert_true(imap_acl_has_right("lrd", 'e'));
	g_assert_false(imap_acl_has_right("lrd", 'k'));
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/acl/parse-myrights", test_parse_myrights);
	g_test_add_func("/acl/parse-myrights-bounded",
			test_parse_myrights_bounded);
	g_test_add_func("/acl/has-right", test_has_right);
	return g_test_run();
}
