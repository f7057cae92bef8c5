/* test_resync.c - unit tests for QRESYNC's resync (imap/resync.c).
 *
 * VANISHED replies are fed to the real parser one byte at a time and the
 * response read with imap_resync_parse_vanished(); the hostile cases
 * come from a server that lies (0, "*", reversed ranges, ranges beyond
 * what was asked, more ranges than any honest line holds). The command
 * itself runs against the scripted peer (imappeer.h): the exact windows
 * on the wire, and what reaches the caller.
 */
#include "config.h"

#include <string.h>

#include "imap-error.h"
#include "imappeer.h"
#include "mailbox.h"
#include "parser.h"
#include "resync.h"
#include "testtls.h"

/* Feeds @text (one response) byte by byte into a parser with @max_line;
 * returns the response. */
static struct imap_response *parse_one(const char *text, size_t max_line)
{
	struct imap_parser_limits limits = IMAP_PARSER_DEFAULT_LIMITS;

	struct imap_parser *p;
	struct imap_response *resp = NULL;
	size_t len = strlen(text);

	limits.max_line_length = max_line;
	p = imap_parser_new(&limits);
	for (size_t i = 0; i < len && resp == NULL;) {
		GError *err = NULL;
		size_t used = 0;
		enum imap_parse_result r =
			imap_parser_feed(p, text + i, 1, &used, &err);

		g_assert_no_error(err);
		g_assert_cmpint(r, !=, IMAP_PARSE_ERROR);
		i += used;
		if (r == IMAP_PARSE_DONE)
			resp = imap_parser_take(p);
	}
	imap_parser_free(p);
	g_assert_nonnull(resp);
	return resp;
}

/* @ranges as "a-b,c-d" (single UIDs as "a"). */
static char *ranges_str(const GArray *ranges)
{
	GString *s = g_string_new(NULL);

	for (guint i = 0; i < ranges->len; i++) {
		const struct imap_uid_range *r =
			&g_array_index(ranges, struct imap_uid_range, i);

		if (i > 0)
			g_string_append_c(s, ',');
		if (r->lo == r->hi)
			g_string_append_printf(s, "%u", r->lo);
		else
			g_string_append_printf(s, "%u-%u", r->lo, r->hi);
	}
	return g_string_free(s, FALSE);
}

static const struct {
	const char *line;
	uint32_t first, last;
	gboolean ok, earlier;
	const char *ranges; /* when ok */
} vanished_cases[] = {
	{"* VANISHED (EARLIER) 1:3,5\r\n", 1, 10, TRUE, TRUE, "1-3,5"},
	{"* VANISHED 7\r\n", 1, 10, TRUE, FALSE, "7"},
	{"* VANISHED (EARLIER) 9:4,2\r\n", 1, 10, TRUE, TRUE, "2,4-9"},
	{"* VANISHED (earlier) 3:4,4:6\r\n", 1, 10, TRUE, TRUE, "3-6"},
	/* Beyond what was asked: clipped, one range however wide. */
	{"* VANISHED (EARLIER) 1:4294967295\r\n", 10, 20, TRUE, TRUE, "10-20"},
	{"* VANISHED (EARLIER) 4294967295:1\r\n", 5, 5, TRUE, TRUE, "5"},
	{"* VANISHED (EARLIER) 30:40,1\r\n", 2, 20, TRUE, TRUE, ""},
	/* Malformed. */
	{"* VANISHED (EARLIER) 0:3\r\n", 1, 10, FALSE, FALSE, NULL},
	{"* VANISHED (EARLIER) 0\r\n", 1, 10, FALSE, FALSE, NULL},
	{"* VANISHED (EARLIER) 1:*\r\n", 1, 10, FALSE, FALSE, NULL},
	{"* VANISHED (EARLIER) 1,,2\r\n", 1, 10, FALSE, FALSE, NULL},
	{"* VANISHED (EARLIER) 4294967296\r\n", 1, 10, FALSE, FALSE, NULL},
	{"* VANISHED (EARLIER) -1\r\n", 1, 10, FALSE, FALSE, NULL},
	{"* VANISHED (LATER) 1\r\n", 1, 10, FALSE, FALSE, NULL},
	{"* VANISHED (EARLIER)\r\n", 1, 10, FALSE, FALSE, NULL},
	{"* VANISHED\r\n", 1, 10, FALSE, FALSE, NULL},
	{"* VANISHED 1 2\r\n", 1, 10, FALSE, FALSE, NULL},
	{"* VANISHED \"1:3\"\r\n", 1, 10, FALSE, FALSE, NULL},
	{"* 3 EXPUNGE\r\n", 1, 10, FALSE, FALSE, NULL},
};

static void test_parse_vanished(void)
{
	for (size_t i = 0; i < G_N_ELEMENTS(vanished_cases); i++) {
		struct imap_response *resp =
			parse_one(vanished_cases[i].line, 65536);
		GArray *r = g_array_new(FALSE, FALSE,
					sizeof(struct imap_uid_range));
		gboolean earlier = FALSE;
		gboolean ok = imap_resync_parse_vanished(
			resp, vanished_cases[i].first, vanished_cases[i].last,
			r, &earlier);

		g_test_message("%s", vanished_cases[i].line);
		g_assert_cmpint(ok, ==, vanished_cases[i].ok);
		if (ok) {
			char *s = ranges_str(r);

			g_assert_cmpint(earlier, ==, vanished_cases[i].earlier);
			g_assert_cmpstr(s, ==, vanished_cases[i].ranges);
			g_free(s);
		} else {
			g_assert_cmpuint(r->len, ==, 0);
		}
		g_array_unref(r);
		imap_response_free(resp);
	}
}

/* More ranges than a 64 KiB line holds (a parser with a bigger limit):
 * refused, not allocated one by one. */
static void test_parse_vanished_huge(void)
{
	GString *line = g_string_new("* VANISHED (EARLIER) ");
	struct imap_response *resp;
	GArray *r = g_array_new(FALSE, FALSE, sizeof(struct imap_uid_range));

	for (unsigned int i = 0; i < 70000; i++)
		g_string_append_printf(line, "%s%u", i > 0 ? "," : "",
				       2 * i + 1);
	g_string_append(line, "\r\n");
	resp = parse_one(line->str, 1u << 20);
	g_assert_false(
		imap_resync_parse_vanished(resp, 1, G_MAXUINT32, r, NULL));
	g_assert_cmpuint(r->len, ==, 0);
	imap_response_free(resp);
	g_string_free(line, TRUE);
	g_array_unref(r);
}

static void test_vanished_now(void)
{
	static const struct {
		const char *line;
		uint32_t n;
	} cases[] = {
		{"* VANISHED 1:3,10\r\n", 4},
		{"* VANISHED 3:1,2\r\n", 3},
		{"* VANISHED (EARLIER) 1:3\r\n", 0},
		{"* VANISHED 1:4294967295\r\n", G_MAXUINT32},
		{"* VANISHED 0\r\n", 0},
		{"* 2 EXPUNGE\r\n", 0},
	};

	for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
		struct imap_response *resp = parse_one(cases[i].line, 65536);

		g_assert_cmpuint(imap_resync_vanished_now(resp), ==,
				 cases[i].n);
		imap_response_free(resp);
	}
}

/* ---- against the scripted peer ---- */

#define EXAMINE_OK                                                        \
	"* 100 EXISTS\r\n* OK [UIDVALIDITY 7] x\r\n* OK [UIDNEXT 12001] " \
	"x\r\n* OK [HIGHESTMODSEQ 50] x\r\n%t OK [READ-ONLY] done\r\n"

struct flag_seen {
	GString *log;
};

static void flag_cb(uint32_t uid, const char *flags, uint64_t modseq,
		    void *user_data)
{
	struct flag_seen *seen = user_data;

	g_string_append_printf(seen->log, "%u:%s:%" G_GUINT64_FORMAT ";", uid,
			       flags, modseq);
}

/* Logs out, stops the peer and checks it worked through its script. */
static void finish(struct imap_session *s, struct peer *p)
{
	imap_session_free(s);
	peer_stop(p);
	peer_assert_done(p);
}

/* ENABLE QRESYNC is sent (the peer echoes what it is asked to enable)
 * and the windows cover 1..12000; replies outside it are ignored. */
static void test_qresync_since_windows(void)
{
	static const struct peer_step steps[] = {
		{"EXAMINE", EXAMINE_OK, PEER_REPLY, 0},
		{"UID FETCH 1:5000 (UID FLAGS) (CHANGEDSINCE 5 VANISHED)",
		 "* VANISHED (EARLIER) 3:2,4999:6000\r\n"
		 "* 1 FETCH (UID 1 FLAGS (\\Seen \\Recent) MODSEQ (9))\r\n"
		 "* 2 FETCH (UID 20000 FLAGS (\\Seen) MODSEQ (99))\r\n"
		 "* 3 FETCH (FLAGS (\\Seen) MODSEQ (98))\r\n"
		 "%t OK\r\n",
		 PEER_REPLY, 0},
		{"UID FETCH 5001:10000 (UID FLAGS) (CHANGEDSINCE 5 "
		 "VANISHED)",
		 "* VANISHED (EARLIER) 7000\r\n%t OK\r\n", PEER_REPLY, 0},
		{"UID FETCH 10001:12000 (UID FLAGS) (CHANGEDSINCE 5 "
		 "VANISHED)",
		 "* VANISHED 11999:99999\r\n"
		 "* 4 FETCH (UID 10001 FLAGS () MODSEQ (12))\r\n%t OK\r\n",
		 PEER_REPLY, 0},
		{NULL, NULL, PEER_REPLY, 0},
	};
	struct peer *p = peer_start("ENABLE CONDSTORE QRESYNC", NULL, steps);
	struct imap_session *s = peer_session(p);
	GArray *v = g_array_new(FALSE, FALSE, sizeof(struct imap_uid_range));
	struct flag_seen seen = {g_string_new(NULL)};
	uint64_t highest = 0;
	GError *err = NULL;
	gboolean ok;
	char *got;

	g_assert_true(imap_session_qresync(s));
	ok = imap_session_qresync_since(s, "INBOX", 7, 1, 12000, 5, flag_cb,
					&seen, v, &highest, &err);
	g_assert_no_error(err);
	g_assert_true(ok);
	got = ranges_str(v);
	g_assert_cmpstr(got, ==, "2-3,4999-6000,7000,11999-12000");
	g_assert_cmpstr(seen.log->str, ==, "1:\\Seen:9;10001::12;");
	g_assert_cmpuint(highest, ==, 12);
	g_free(got);
	finish(s, p);
	peer_free(p);
	g_string_free(seen.log, TRUE);
	g_array_unref(v);
}

/* A malformed VANISHED fails the call (no partial answer is taken for a
 * whole one). */
static void test_qresync_since_hostile(void)
{
	static const struct peer_step steps[] = {
		{"EXAMINE", EXAMINE_OK, PEER_REPLY, 0},
		{"UID FETCH 1:20 (UID FLAGS) (CHANGEDSINCE 40 VANISHED)",
		 "* VANISHED (EARLIER) 0:5\r\n%t OK\r\n", PEER_REPLY, 0},
		{NULL, NULL, PEER_REPLY, 0},
	};
	struct peer *p = peer_start("ENABLE CONDSTORE QRESYNC", NULL, steps);
	struct imap_session *s = peer_session(p);
	GArray *v = g_array_new(FALSE, FALSE, sizeof(struct imap_uid_range));
	struct flag_seen seen = {g_string_new(NULL)};
	GError *err = NULL;

	g_assert_false(imap_session_qresync_since(
		s, "INBOX", 7, 1, 20, 40, flag_cb, &seen, v, NULL, &err));
	g_assert_error(err, IMAP_ERROR, IMAP_ERROR_PROTOCOL);
	g_clear_error(&err);
	finish(s, p);
	peer_free(p);
	g_string_free(seen.log, TRUE);
	g_array_unref(v);
}

/* CONDSTORE without QRESYNC: nothing is sent, the caller is told. */
static void test_qresync_unsupported(void)
{
	static const struct peer_step steps[] = {{NULL, NULL, PEER_REPLY, 0}};
	struct peer *p = peer_start("ENABLE CONDSTORE", NULL, steps);
	struct imap_session *s = peer_session(p);
	GArray *v = g_array_new(FALSE, FALSE, sizeof(struct imap_uid_range));
	GError *err = NULL;

	g_assert_false(imap_session_qresync(s));
	g_assert_false(imap_session_qresync_since(
		s, "INBOX", 7, 1, 20, 40, flag_cb, NULL, v, NULL, &err));
	g_assert_error(err, IMAP_ERROR, IMAP_ERROR_UNSUPPORTED);
	g_clear_error(&err);
	finish(s, p);
	g_assert_cmpstr(p->transcript->str, ==, "");
	peer_free(p);
	g_array_unref(v);
}

/* Without CONDSTORE, the full flag listing comes in windows. */
static void test_flags_all_windows(void)
{
	static const struct peer_step steps[] = {
		{"EXAMINE", EXAMINE_OK, PEER_REPLY, 0},
		{"UID FETCH 1:20000 (UID FLAGS)",
		 "* 1 FETCH (UID 3 FLAGS (\\Flagged))\r\n%t OK\r\n", PEER_REPLY,
		 0},
		{"UID FETCH 20001:25000 (UID FLAGS)",
		 "* 2 FETCH (UID 25001 FLAGS (\\Seen))\r\n"
		 "* 3 FETCH (UID 24000 FLAGS ())\r\n%t OK\r\n",
		 PEER_REPLY, 0},
		{NULL, NULL, PEER_REPLY, 0},
	};
	struct peer *p = peer_start("", NULL, steps);
	struct imap_session *s = peer_session(p);
	struct flag_seen seen = {g_string_new(NULL)};
	GError *err = NULL;

	g_assert_true(imap_resync_flags_all(s, "INBOX", 7, 25000, flag_cb,
					    &seen, &err));
	g_assert_no_error(err);
	g_assert_cmpstr(seen.log->str, ==, "3:\\Flagged:0;24000::0;");
	finish(s, p);
	peer_free(p);
	g_string_free(seen.log, TRUE);
}

int main(int argc, char **argv)
{
	int rc;

	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/resync/parse_vanished", test_parse_vanished);
	g_test_add_func("/resync/parse_vanished_huge",
			test_parse_vanished_huge);
	g_test_add_func("/resync/vanished_now", test_vanished_now);
	g_test_add_func("/resync/qresync_since_windows",
			test_qresync_since_windows);
	g_test_add_func("/resync/qresync_since_hostile",
			test_qresync_since_hostile);
	g_test_add_func("/resync/qresync_unsupported",
			test_qresync_unsupported);
	g_test_add_func("/resync/flags_all_windows", test_flags_all_windows);
	testtls_setup();
	rc = g_test_run();
	testtls_teardown();
	return rc;
}
