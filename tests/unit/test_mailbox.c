/* test_mailbox.c - unit tests for the untagged dispatch table
 * (imap/untagged.c) and the selected-mailbox state (imap/mailbox.c).
 *
 * Every script is fed to the real parser one byte at a time and each
 * response it yields goes through an untagged table into the state, as
 * a connection would do it; the hostile cases come from a server that
 * lies (MSNs out of range, an EXISTS that shrinks, huge VANISHED
 * ranges, UIDs that contradict the map).
 */
#include "config.h"

#include <string.h>

#include "mailbox.h"
#include "parser.h"
#include "untagged.h"

/* Feeds @text byte by byte; dispatches each untagged response through
 * @table and each tagged one's code to @mb. */
static void feed(struct imap_untagged *table, struct imap_mailbox *mb,
		 const char *text)
{
	struct imap_parser *p = imap_parser_new(NULL);
	size_t len = strlen(text);

	for (size_t i = 0; i < len;) {
		GError *err = NULL;
		size_t used = 0;
		enum imap_parse_result r =
			imap_parser_feed(p, text + i, 1, &used, &err);

		g_assert_no_error(err);
		g_assert_cmpint(r, !=, IMAP_PARSE_ERROR);
		i += used;
		if (r == IMAP_PARSE_DONE) {
			struct imap_response *resp = imap_parser_take(p);

			if (resp->kind == IMAP_RESPONSE_TAGGED && mb != NULL)
				imap_mailbox_note_code(mb, resp->code,
						       resp->code_args);
			else
				imap_untagged_dispatch(table, resp);
			imap_response_free(resp);
		}
	}
	imap_parser_free(p);
}

struct fixture {
	struct imap_untagged *table;
	struct imap_mailbox *mb;
};

static void fixture_init(struct fixture *f, uint32_t max_messages,
			 uint32_t max_pending)
{
	f->table = imap_untagged_new();
	f->mb = imap_mailbox_new(max_messages, max_pending);
	imap_mailbox_register(f->mb, f->table);
}

static void fixture_clear(struct fixture *f)
{
	imap_untagged_free(f->table);
	imap_mailbox_free(f->mb);
}

/* The map as "uid,uid,..." (0 for unknown). */
static char *map_string(struct imap_mailbox *mb)
{
	GString *s = g_string_new(NULL);

	for (uint32_t i = 1; i <= imap_mailbox_exists(mb); i++)
		g_string_append_printf(s, "%s%u", i > 1 ? "," : "",
				       imap_mailbox_uid(mb, i));
	return g_string_free(s, FALSE);
}

static void assert_map(struct imap_mailbox *mb, const char *want)
{
	char *got = map_string(mb);

	g_assert_cmpstr(got, ==, want);
	g_free(got);
}

static char *ranges_string(const GArray *r)
{
	GString *s = g_string_new(NULL);

	for (guint i = 0; i < r->len; i++) {
		const struct imap_uid_range *x =
			&g_array_index(r, struct imap_uid_range, i);

		g_string_append_printf(s, "%s%u:%u", i ? "," : "", x->lo,
				       x->hi);
	}
	return g_string_free(s, FALSE);
}

/* Takes the changes and checks the expunged ranges, number of flag
 * changes and the grew/desync bits. */
static void assert_changes(struct imap_mailbox *mb, const char *expunged,
			   guint nflags, gboolean grew, gboolean desync)
{
	struct imap_mailbox_changes ch;
	char *got;

	imap_mailbox_take_changes(mb, &ch);
	got = ranges_string(ch.expunged);
	g_assert_cmpstr(got, ==, expunged);
	g_free(got);
	g_assert_cmpuint(ch.flags->len, ==, nflags);
	g_assert_cmpint(ch.grew, ==, grew);
	g_assert_cmpint(ch.desync, ==, desync);
	imap_mailbox_changes_clear(&ch);
}

static const char select_script[] = "* 3 EXISTS\r\n"
				    "* OK [UIDVALIDITY 77] UIDs valid\r\n"
				    "* OK [UIDNEXT 10] Predicted next UID\r\n"
				    "* OK [HIGHESTMODSEQ 100] Highest\r\n"
				    "* FLAGS (\\Seen \\Deleted)\r\n"
				    "a1 OK [READ-WRITE] done\r\n"
				    "* 1 FETCH (UID 2)\r\n"
				    "* 2 FETCH (UID 5 FLAGS (\\Seen))\r\n"
				    "* 3 FETCH (UID 9)\r\n"
				    "a2 OK done\r\n";

static void test_select_and_fill(void)
{
	struct fixture f;

	fixture_init(&f, 0, 0);
	feed(f.table, f.mb, select_script);
	g_assert_cmpuint(imap_mailbox_uidvalidity(f.mb), ==, 77);
	g_assert_cmpuint(imap_mailbox_uidnext(f.mb), ==, 10);
	g_assert_cmpuint(imap_mailbox_highestmodseq(f.mb), ==, 100);
	assert_map(f.mb, "2,5,9");
	g_assert_cmpuint(imap_mailbox_first_unknown(f.mb), ==, 0);
	/* The flags of msn 2 came with its UID: one change. */
	assert_changes(f.mb, "", 1, TRUE, FALSE);
	fixture_clear(&f);
}

static void test_expunge_and_exists(void)
{
	struct fixture f;

	fixture_init(&f, 0, 0);
	feed(f.table, f.mb, select_script);
	assert_changes(f.mb, "", 1, TRUE, FALSE);
	feed(f.table, f.mb, "* 2 EXPUNGE\r\n");
	assert_map(f.mb, "2,9");
	assert_changes(f.mb, "5:5", 0, FALSE, FALSE);
	feed(f.table, f.mb, "* 4 EXISTS\r\n");
	assert_map(f.mb, "2,9,0,0");
	g_assert_cmpuint(imap_mailbox_first_unknown(f.mb), ==, 3);
	/* Out of order: msn 4 before msn 3 stays unknown. */
	feed(f.table, f.mb, "* 4 FETCH (UID 20)\r\n* 3 FETCH (UID 12)\r\n");
	assert_map(f.mb, "2,9,12,0");
	feed(f.table, f.mb, "* 4 FETCH (UID 20)\r\n");
	assert_map(f.mb, "2,9,12,20");
	g_assert_cmpuint(imap_mailbox_uidnext(f.mb), ==, 21);
	assert_changes(f.mb, "", 0, TRUE, FALSE);
	fixture_clear(&f);
}

static void test_vanished(void)
{
	struct fixture f;

	fixture_init(&f, 0, 0);
	feed(f.table, f.mb, select_script);
	assert_changes(f.mb, "", 1, TRUE, FALSE);
	feed(f.table, f.mb, "* VANISHED 1:4,100\r\n");
	assert_map(f.mb, "5,9");
	assert_changes(f.mb, "1:4,100:100", 0, FALSE, FALSE);
	/* EARLIER with the whole UID space: one range, no enumeration. */
	feed(f.table, f.mb, "* VANISHED (EARLIER) 4294967295:1\r\n");
	assert_map(f.mb, "");
	assert_changes(f.mb, "1:4294967295", 0, FALSE, FALSE);
	fixture_clear(&f);
}

static void test_vanished_unknown_desyncs(void)
{
	struct fixture f;

	fixture_init(&f, 0, 0);
	feed(f.table, f.mb, "* 2 EXISTS\r\n* 1 FETCH (UID 3)\r\n");
	assert_changes(f.mb, "", 0, TRUE, FALSE);
	/* UID 8 may be msn 2, whose UID we do not know: cannot tell. */
	feed(f.table, f.mb, "* VANISHED 8\r\n");
	assert_map(f.mb, "3,0");
	assert_changes(f.mb, "8:8", 0, FALSE, TRUE);
	fixture_clear(&f);
}

static void test_flag_changes(void)
{
	struct fixture f;
	struct imap_mailbox_changes ch;
	const struct imap_flag_change *c;

	fixture_init(&f, 0, 0);
	feed(f.table, f.mb, select_script);
	assert_changes(f.mb, "", 1, TRUE, FALSE);
	feed(f.table, f.mb,
	     "* 3 FETCH (FLAGS (\\Flagged \\Recent $Label1) MODSEQ (105))\r\n");
	imap_mailbox_take_changes(f.mb, &ch);
	g_assert_cmpuint(ch.flags->len, ==, 1);
	c = &g_array_index(ch.flags, struct imap_flag_change, 0);
	g_assert_cmpuint(c->uid, ==, 9);
	g_assert_cmpuint(c->modseq, ==, 105);
	g_assert_cmpstr(c->flags, ==, "\\Flagged $Label1");
	imap_mailbox_changes_clear(&ch);
	g_assert_cmpuint(imap_mailbox_highestmodseq(f.mb), ==, 105);
	fixture_clear(&f);
}

/* A server that lies: nothing changes but the desync bit. */
static void test_hostile_msns(void)
{
	static const char *const scripts[] = {
		"* 0 EXPUNGE\r\n",
		"* 4 EXPUNGE\r\n",
		"* 4294967295 EXPUNGE\r\n",
		"* 0 FETCH (UID 1 FLAGS ())\r\n",
		"* 99 FETCH (FLAGS (\\Seen))\r\n",
		/* UID 4 for msn 2, which is 5 */
		"* 2 FETCH (UID 4 FLAGS (\\Seen))\r\n",
		"* VANISHED (BOGUS) 1\r\n",
		"* VANISHED 1:*\r\n",
		"* VANISHED 0\r\n",
		"* VANISHED 1,,2\r\n",
		"* VANISHED 99999999999\r\n",
	};

	for (size_t i = 0; i < G_N_ELEMENTS(scripts); i++) {
		struct fixture f;
		struct imap_mailbox_changes ch;

		fixture_init(&f, 0, 0);
		feed(f.table, f.mb, select_script);
		assert_changes(f.mb, "", 1, TRUE, FALSE);
		feed(f.table, f.mb, scripts[i]);
		assert_map(f.mb, "2,5,9");
		imap_mailbox_take_changes(f.mb, &ch);
		g_assert_true(ch.desync);
		g_assert_cmpuint(ch.expunged->len, ==, 0);
		g_assert_cmpuint(ch.flags->len, ==, 0);
		imap_mailbox_changes_clear(&ch);
		fixture_clear(&f);
	}
}

static void test_hostile_exists(void)
{
	struct fixture f;

	fixture_init(&f, 1000, 0);
	feed(f.table, f.mb, select_script);
	assert_changes(f.mb, "", 1, TRUE, FALSE);
	/* Shrinks without EXPUNGE. */
	feed(f.table, f.mb, "* 1 EXISTS\r\n");
	assert_map(f.mb, "2");
	assert_changes(f.mb, "", 0, FALSE, TRUE);
	/* Far beyond the bound: the map stops at it. */
	feed(f.table, f.mb, "* 4294967295 EXISTS\r\n");
	g_assert_cmpuint(imap_mailbox_exists(f.mb), ==, 1000);
	assert_changes(f.mb, "", 0, TRUE, TRUE);
	/* An UID that does not ascend is not learnt. */
	feed(f.table, f.mb, "* 2 FETCH (UID 1)\r\n");
	g_assert_cmpuint(imap_mailbox_uid(f.mb, 2), ==, 0);
	assert_changes(f.mb, "", 0, FALSE, TRUE);
	fixture_clear(&f);
}

static void test_pending_bound(void)
{
	struct fixture f;
	GString *s = g_string_new(NULL);

	fixture_init(&f, 0, 4);
	feed(f.table, f.mb, select_script);
	assert_changes(f.mb, "", 1, TRUE, FALSE);
	for (int i = 0; i < 10; i++)
		g_string_append(s, "* 1 FETCH (FLAGS (\\Seen))\r\n");
	feed(f.table, f.mb, s->str);
	assert_changes(f.mb, "", 4, FALSE, TRUE);
	g_string_free(s, TRUE);
	fixture_clear(&f);
}

static void test_uidvalidity_change(void)
{
	struct fixture f;
	struct imap_mailbox_changes ch;

	fixture_init(&f, 0, 0);
	feed(f.table, f.mb, select_script);
	feed(f.table, f.mb, "* OK [UIDVALIDITY 78] new\r\n");
	assert_map(f.mb, "");
	imap_mailbox_take_changes(f.mb, &ch);
	g_assert_true(ch.uidvalidity_changed);
	g_assert_cmpuint(ch.flags->len, ==, 0);
	imap_mailbox_changes_clear(&ch);
	g_assert_cmpuint(imap_mailbox_uidvalidity(f.mb), ==, 78);
	fixture_clear(&f);
}

static void test_uid_set_parse(void)
{
	static const struct {
		const char *in;
		const char *out; /* NULL: refused */
	} cases[] = {
		{"1", "1:1"},
		{"3:1", "1:3"},
		{"1:3,4,6", "1:4,6:6"},
		{"7,1,2:3", "1:3,7:7"},
		{"1:4294967295", "1:4294967295"},
		{"4294967295", "4294967295:4294967295"},
		{"", NULL},
		{"0", NULL},
		{"1:*", NULL},
		{"*", NULL},
		{"1,", NULL},
		{",1", NULL},
		{"1::2", NULL},
		{"4294967296", NULL},
		{"1 2", NULL},
		{"-1", NULL},
	};

	for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
		GArray *r = g_array_new(FALSE, FALSE,
					sizeof(struct imap_uid_range));
		gboolean ok = imap_uid_set_parse(cases[i].in, 100, r);

		g_assert_cmpint(ok, ==, cases[i].out != NULL);
		if (ok) {
			char *got = ranges_string(r);

			g_assert_cmpstr(got, ==, cases[i].out);
			g_free(got);
		}
		g_array_unref(r);
	}
	{
		GArray *r = g_array_new(FALSE, FALSE,
					sizeof(struct imap_uid_range));

		g_assert_false(imap_uid_set_parse("1,2,3,4", 3, r));
		g_assert_true(imap_uid_set_parse("1,3,5", 3, r));
		g_assert_true(imap_uid_ranges_contain(r, 3));
		g_assert_false(imap_uid_ranges_contain(r, 4));
		g_array_unref(r);
	}
}

static GString *seen;

static void record(const struct imap_response *resp, void *user_data)
{
	g_string_append_printf(seen, "%s:%s ", (const char *)user_data,
			       imap_untagged_name(resp));
}

static void test_dispatch_by_name(void)
{
	struct imap_untagged *t = imap_untagged_new();

	seen = g_string_new(NULL);
	imap_untagged_register(t, "exists", record, "e");
	imap_untagged_register(t, "OK [UIDNEXT]", record, "u");
	imap_untagged_register(t, "BYE", record, "b");
	imap_untagged_register(t, "STATUS", record, "s");
	imap_untagged_register(t, "*", record, "all");
	feed(t, NULL,
	     "* 3 EXISTS\r\n* OK [UIDNEXT 4] x\r\n* OK [UIDVALIDITY 1] x\r\n"
	     "* STATUS INBOX (MESSAGES 1)\r\n* LIST () \".\" Foo\r\n"
	     "a1 OK done\r\n* BYE Autologout\r\n");
	g_assert_cmpstr(seen->str, ==,
			"e:EXISTS all:EXISTS u:OK all:OK all:OK s:STATUS "
			"all:STATUS all:LIST b:BYE all:BYE ");
	g_string_free(seen, TRUE);
	imap_untagged_free(t);
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/mailbox/select_and_fill", test_select_and_fill);
	g_test_add_func("/mailbox/expunge_and_exists", test_expunge_and_exists);
	g_test_add_func("/mailbox/vanished", test_vanished);
	g_test_add_func("/mailbox/vanished_unknown_desyncs",
			test_vanished_unknown_desyncs);
	g_test_add_func("/mailbox/flag_changes", test_flag_changes);
	g_test_add_func("/mailbox/hostile_msns", test_hostile_msns);
	g_test_add_func("/mailbox/hostile_exists", test_hostile_exists);
	g_test_add_func("/mailbox/pending_bound", test_pending_bound);
	g_test_add_func("/mailbox/uidvalidity_change", test_uidvalidity_change);
	g_test_add_func("/mailbox/uid_set_parse", test_uid_set_parse);
	g_test_add_func("/untagged/dispatch_by_name", test_dispatch_by_name);
	return g_test_run();
}
