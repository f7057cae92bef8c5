/* test_mutate.c - the write requests (imap/mutate.c) and the streamed,
 * non-idempotent sending under them (imap/conn.c), against a scripted TLS
 * peer (imappeer.h): the exact bytes on the wire, what is parsed from the
 * replies, and what happens when the peer hangs up at the worst moments.
 */
#include "config.h"

#include <string.h>

#include "imap-error.h"
#include "imappeer.h"
#include "mutate.h"
#include "testtls.h"

#define EXAMINE_OK                                                        \
	"* 3 EXISTS\r\n* OK [UIDVALIDITY 7] v\r\n* OK [UIDNEXT 50] n\r\n" \
	"* OK [PERMANENTFLAGS ()] read-only\r\n%t OK [READ-ONLY] done\r\n"
#define SELECT_OK                                                         \
	"* 3 EXISTS\r\n* OK [UIDVALIDITY 7] v\r\n* OK [UIDNEXT 50] n\r\n" \
	"* FLAGS (\\Seen \\Deleted $Junk)\r\n"                            \
	"* OK [PERMANENTFLAGS (\\Seen \\Deleted \\*)] p\r\n"              \
	"%t OK [READ-WRITE] done\r\n"

/* Closes the session, stops the peer, checks it saw exactly @transcript
 * (NULL: do not check) and nothing unexpected. */
static void finish(struct imap_session *s, struct peer *p,
		   const char *transcript)
{
	imap_session_free(s);
	peer_stop(p);
	peer_assert_done(p);
	if (transcript != NULL)
		g_assert_cmpstr(p->transcript->str, ==, transcript);
	peer_free(p);
}

/* ---- sources ---- */

struct mem_source {
	const char *data;
	size_t max_piece;
	unsigned int calls;
	uint64_t next;	  /* the offset the next read must ask for */
	uint64_t fail_at; /* 0: never */
};

static gssize mem_read(void *user_data, uint64_t offset, void *buf, size_t len,
		       GError **error)
{
	struct mem_source *m = user_data;

	g_assert_cmpuint(offset, ==, m->next);
	m->calls++;
	m->max_piece = MAX(m->max_piece, len);
	if (m->fail_at != 0 && offset + len > m->fail_at) {
		g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_IO,
			    "disk on fire");
		return -1;
	}
	if (m->data != NULL)
		memcpy(buf, m->data + offset, len);
	else
		for (size_t i = 0; i < len; i++)
			((guchar *)buf)[i] = (guchar)((offset + i) * 131 + 7);
	m->next = offset + len;
	return (gssize)len;
}

static struct imap_append_req mem_req(struct mem_source *m, const char *data,
				      size_t len)
{
	struct imap_append_req req = {.mailbox = "INBOX"};

	memset(m, 0, sizeof(*m));
	m->data = data;
	req.source.size = len;
	req.source.read = mem_read;
	req.source.user_data = m;
	return req;
}

/* ---- APPEND ---- */

static void test_append_literal_plus(void)
{
	static const struct peer_step steps[] = {
		{"APPEND", "%t OK [APPENDUID 38505 3955] done\r\n", PEER_REPLY,
		 0},
		{NULL, NULL, PEER_REPLY, 0}};
	struct peer *p = peer_start("LITERAL+ UIDPLUS", NULL, steps);
	struct imap_session *s = peer_session(p);
	struct imap_append_result res;
	struct mem_source m;
	struct imap_append_req req = mem_req(&m, "hello\r\n", 7);
	GError *error = NULL;

	req.flags = "\\Seen $Label1 \\Recent";
	req.internaldate = 1700000000;
	g_assert_true(imap_session_append(s, &req, &res, &error));
	g_assert_no_error(error);
	g_assert_cmpuint(res.uidvalidity, ==, 38505);
	g_assert_cmpuint(res.uid, ==, 3955);
	finish(s, p,
	       "APPEND \"INBOX\" (\\Seen $Label1) \"14-Nov-2023 22:13:20 "
	       "+0000\" {7+}\r\nhello\r\n\r\n");
}

/* LITERAL-: non-synchronising up to 4096 bytes, synchronising above. */
static void test_append_literal_minus(void)
{
	static const struct peer_step steps[] = {
		{"APPEND", "%t OK\r\n", PEER_REPLY, 0},
		{"APPEND", "%t OK\r\n", PEER_REPLY, 0},
		{NULL, NULL, PEER_REPLY, 0}};
	struct peer *p = peer_start("LITERAL-", NULL, steps);
	struct imap_session *s = peer_session(p);
	struct imap_append_result res;
	struct mem_source m;
	char *big = g_malloc0(4097);
	struct imap_append_req req;
	GError *error = NULL;

	memset(big, 'x', 4097);
	req = mem_req(&m, big, 4096);
	g_assert_true(imap_session_append(s, &req, &res, &error));
	g_assert_no_error(error);
	/* No APPENDUID: the server did not say. */
	g_assert_cmpuint(res.uid, ==, 0);
	g_assert_cmpuint(res.uidvalidity, ==, 0);
	req = mem_req(&m, big, 4097);
	g_assert_true(imap_session_append(s, &req, &res, &error));
	g_assert_no_error(error);
	imap_session_free(s);
	peer_stop(p);
	peer_assert_done(p);
	g_assert_true(g_str_has_prefix(p->transcript->str,
				       "APPEND \"INBOX\" {4096+}\r\nxxxx"));
	g_assert_true(g_str_has_suffix(p->transcript->str,
				       "xx\r\nAPPEND \"INBOX\" {4097}\r\n<4097 "
				       "bytes>\r\n"));
	peer_free(p);
	g_free(big);
}

/* Without LITERAL+/-: "{n}", then the literal only after "+".  The peer
 * refuses instead of "+": a client that did not wait would send the
 * literal as a command, which the peer reports. */
static void test_append_sync_waits(void)
{
	static const struct peer_step steps[] = {
		{"APPEND", "%t OK [APPENDUID 7 9] ok\r\n", PEER_REPLY, 0},
		{"APPEND", "%t NO [TOOBIG] too big\r\n", PEER_REFUSE_LITERAL,
		 0},
		{NULL, NULL, PEER_REPLY, 0}};
	struct peer *p = peer_start("", NULL, steps);
	struct imap_session *s = peer_session(p);
	struct imap_append_result res;
	struct mem_source m;
	struct imap_append_req req = mem_req(&m, "hello\r\n", 7);
	GError *error = NULL;

	g_assert_true(imap_session_append(s, &req, &res, &error));
	g_assert_no_error(error);
	g_assert_cmpuint(res.uid, ==, 9);
	req = mem_req(&m, "hello\r\n", 7);
	g_assert_false(imap_session_append(s, &req, &res, &error));
	g_assert_error(error, IMAP_ERROR, IMAP_ERROR_TOOBIG);
	g_clear_error(&error);
	g_assert_cmpuint(m.calls, ==, 0);
	g_assert_true(imap_session_is_usable(s));
	finish(s, p,
	       "APPEND \"INBOX\" {7}\r\nhello\r\n\r\n"
	       "APPEND \"INBOX\" {7}\r\n");
}

static void test_append_binary(void)
{
	static const char bin[] = {'a', '\0', 'b'};
	static const char wire[] = "APPEND \"INBOX\" ~{3+}\r\na\0b\r\n";
	static const struct peer_step steps[] = {
		{"APPEND", "%t OK\r\n", PEER_REPLY, 0},
		{NULL, NULL, PEER_REPLY, 0}};
	struct peer *p = peer_start("BINARY LITERAL+", NULL, steps);
	struct imap_session *s = peer_session(p);
	struct imap_append_result res;
	struct mem_source m;
	struct imap_append_req req = mem_req(&m, bin, 3);
	GError *error = NULL;

	req.binary = TRUE;
	g_assert_true(imap_session_append(s, &req, &res, &error));
	g_assert_no_error(error);
	imap_session_free(s);
	peer_stop(p);
	peer_assert_done(p);
	g_assert_cmpmem(p->transcript->str, p->transcript->len, wire,
			sizeof(wire) - 1);
	peer_free(p);

	/* Without BINARY: refused before anything is sent. */
	p = peer_start("LITERAL+", NULL, NULL);
	s = peer_session(p);
	req = mem_req(&m, bin, 3);
	req.binary = TRUE;
	g_assert_false(imap_session_append(s, &req, &res, &error));
	g_assert_error(error, IMAP_ERROR, IMAP_ERROR_INVALID);
	g_clear_error(&error);
	finish(s, p, "");
}

/* Replies that would make us believe a wrong UID. */
static const char *const hostile_appenduid[] = {
	"0 5",
	"5 0",
	"4294967296 5",
	"5 4294967296",
	"5 1:3",
	"5",
	"abc def",
	"5  6",
	"-1 5",
	"5 6 7",
	"+5 6",
	"5 6 ",
	"99999999999999999999999 5",
};

static void test_appenduid_hostile(void)
{
	struct peer_step steps[G_N_ELEMENTS(hostile_appenduid) + 1] = {0};
	char *replies[G_N_ELEMENTS(hostile_appenduid)];
	struct peer *p;
	struct imap_session *s;

	for (size_t i = 0; i < G_N_ELEMENTS(hostile_appenduid); i++) {
		replies[i] = g_strdup_printf("%%t OK [APPENDUID %s] ok\r\n",
					     hostile_appenduid[i]);
		steps[i].expect = "APPEND";
		steps[i].reply = replies[i];
	}
	p = peer_start("LITERAL+ UIDPLUS", NULL, steps);
	s = peer_session(p);
	for (size_t i = 0; i < G_N_ELEMENTS(hostile_appenduid); i++) {
		struct imap_append_result res = {1, 1};
		struct mem_source m;
		struct imap_append_req req = mem_req(&m, "x\r\n", 3);
		GError *error = NULL;

		g_test_message("APPENDUID %s", hostile_appenduid[i]);
		g_assert_true(imap_session_append(s, &req, &res, &error));
		g_assert_no_error(error);
		g_assert_cmpuint(res.uid, ==, 0);
		g_assert_cmpuint(res.uidvalidity, ==, 0);
	}
	finish(s, p, NULL);
	for (size_t i = 0; i < G_N_ELEMENTS(hostile_appenduid); i++)
		g_free(replies[i]);
}

#define BIG_SIZE (5u * 1024 * 1024 + 17)

static char *generated_sha256(uint64_t size)
{
	GChecksum *sum = g_checksum_new(G_CHECKSUM_SHA256);
	struct mem_source m = {0};
	guchar buf[4096];
	char *hex;

	for (uint64_t off = 0; off < size; off += sizeof(buf)) {
		size_t n = (size_t)MIN(sizeof(buf), size - off);

		mem_read(&m, off, buf, n, NULL);
		g_checksum_update(sum, buf, n);
	}
	hex = g_strdup(g_checksum_get_string(sum));
	g_checksum_free(sum);
	return hex;
}

/* A 5 MB message is read from its source in pieces of at most 64 KiB, in
 * order, and arrives byte-exact. */
static void test_append_streamed(void)
{
	static const struct peer_step steps[] = {
		{"APPEND", "%t OK\r\n", PEER_REPLY, 0},
		{NULL, NULL, PEER_REPLY, 0}};
	struct peer *p = peer_start("LITERAL+", NULL, steps);
	struct imap_session *s = peer_session(p);
	struct imap_append_result res;
	struct mem_source m;
	struct imap_append_req req = mem_req(&m, NULL, BIG_SIZE);
	GError *error = NULL;

	g_assert_true(imap_session_append(s, &req, &res, &error));
	g_assert_no_error(error);
	g_assert_cmpuint(m.next, ==, BIG_SIZE);
	g_assert_cmpuint(m.max_piece, <=, 64 * 1024);
	g_assert_cmpuint(m.calls, >=, BIG_SIZE / (64 * 1024));
	finish(s, p, "APPEND \"INBOX\" {5242897+}\r\n<5242897 bytes>\r\n");
}

/* Same, checking the bytes (the peer keeps a hash of big literals). */
static void test_append_streamed_exact(void)
{
	static const struct peer_step steps[] = {
		{"APPEND", "%t OK\r\n", PEER_REPLY, 0},
		{NULL, NULL, PEER_REPLY, 0}};
	struct peer *p = peer_start("", NULL, steps);
	struct imap_session *s = peer_session(p);
	struct imap_append_result res;
	struct mem_source m;
	struct imap_append_req req = mem_req(&m, NULL, BIG_SIZE);
	GError *error = NULL;
	char *sha;

	g_assert_true(imap_session_append(s, &req, &res, &error));
	g_assert_no_error(error);
	g_assert_cmpuint(m.max_piece, <=, 64 * 1024);
	imap_session_free(s);
	peer_stop(p);
	peer_assert_done(p);
	sha = generated_sha256(BIG_SIZE);
	g_assert_cmpuint(p->big_size, ==, BIG_SIZE);
	g_assert_cmpstr(p->big_sha256, ==, sha);
	g_assert_cmpstr(p->transcript->str, ==,
			"APPEND \"INBOX\" {5242897}\r\n<5242897 bytes>\r\n");
	g_free(sha);
	peer_free(p);
}

/* A source that fails: IMAP_ERROR_SOURCE, and the connection is broken
 * (the literal cannot be completed). */
static void test_append_source_error(void)
{
	static const struct peer_step steps[] = {
		{"APPEND", "%t OK\r\n", PEER_REPLY, 0},
		{NULL, NULL, PEER_REPLY, 0}};
	struct peer *p = peer_start("LITERAL+", NULL, steps);
	struct imap_session *s = peer_session(p);
	struct imap_append_result res;
	struct mem_source m;
	struct imap_append_req req = mem_req(&m, NULL, 1024 * 1024);
	GError *error = NULL;

	m.fail_at = 300 * 1000;
	g_assert_false(imap_session_append(s, &req, &res, &error));
	g_assert_error(error, IMAP_ERROR, IMAP_ERROR_SOURCE);
	g_assert_nonnull(strstr(error->message, "disk on fire"));
	g_clear_error(&error);
	g_assert_false(imap_session_is_usable(s));
	finish(s, p, NULL);
}

static void test_append_limit(void)
{
	struct peer *p = peer_start("LITERAL+ APPENDLIMIT=100", NULL, NULL);
	struct imap_session *s = peer_session(p);
	struct imap_append_result res;
	struct mem_source m;
	char data[101];
	struct imap_append_req req = mem_req(&m, data, sizeof(data));
	GError *error = NULL;

	memset(data, 'x', sizeof(data));
	g_assert_cmpuint(imap_session_append_limit(s), ==, 100);
	g_assert_false(imap_session_append(s, &req, &res, &error));
	g_assert_error(error, IMAP_ERROR, IMAP_ERROR_TOOBIG);
	g_clear_error(&error);
	g_assert_cmpuint(m.calls, ==, 0);
	finish(s, p, "");

	/* A bare APPENDLIMIT (per-mailbox limits) is no global limit. */
	p = peer_start("APPENDLIMIT", NULL, NULL);
	s = peer_session(p);
	g_assert_cmpuint(imap_session_append_limit(s), ==, 0);
	finish(s, p, "");
}

/* ---- outcome unknown ---- */

struct unknown_case {
	const char *caps;
	enum peer_action action;
	size_t arg;
	const char *reply;
	size_t size;
};

static const struct unknown_case unknown_cases[] = {
	/* mid-literal (non-synchronising and synchronising) */
	{"LITERAL+", PEER_HANGUP_MID_LITERAL, 1000, "", 1024 * 1024},
	{"", PEER_HANGUP_MID_LITERAL, 10, "", 1024 * 1024},
	/* after the literal, before the tagged reply */
	{"LITERAL+", PEER_HANGUP, 0, "", 7},
	/* BYE instead of the tagged reply */
	{"LITERAL+", PEER_REPLY, 0, "* BYE going down\r\n", 7},
	/* garbage instead of the tagged reply */
	{"LITERAL+", PEER_REPLY, 0, ")(garbage\r\n", 7},
};

static void test_append_unknown_outcome(void)
{
	for (size_t i = 0; i < G_N_ELEMENTS(unknown_cases); i++) {
		const struct unknown_case *c = &unknown_cases[i];
		struct peer_step steps[] = {
			{"APPEND", c->reply, c->action, c->arg},
			{NULL, NULL, PEER_REPLY, 0}};
		struct peer *p = peer_start(c->caps, NULL, steps);
		struct imap_session *s = peer_session(p);
		struct imap_append_result res;
		struct mem_source m;
		struct imap_append_req req = mem_req(&m, NULL, c->size);
		GError *error = NULL;

		g_test_message("case %zu", i);
		g_assert_false(imap_session_append(s, &req, &res, &error));
		g_assert_error(error, IMAP_ERROR, IMAP_ERROR_UNKNOWN_OUTCOME);
		g_assert_nonnull(strstr(error->message, "APPEND"));
		g_clear_error(&error);
		g_assert_false(imap_session_is_usable(s));
		/* Nothing is sent on a broken connection: that failure is
		 * no unknown outcome. */
		req = mem_req(&m, "x\r\n", 3);
		g_assert_false(imap_session_append(s, &req, &res, &error));
		g_assert_error(error, IMAP_ERROR, IMAP_ERROR_IO);
		g_clear_error(&error);
		finish(s, p, NULL);
	}
}

/* A read keeps its old error code when the peer hangs up. */
static void test_read_hangup_is_io(void)
{
	static const struct peer_step steps[] = {{"STATUS", "", PEER_HANGUP, 0},
						 {NULL, NULL, PEER_REPLY, 0}};
	struct peer *p = peer_start("", NULL, steps);
	struct imap_session *s = peer_session(p);
	struct imap_mailbox_status st;
	GError *error = NULL;

	g_assert_false(imap_session_status(s, "INBOX", &st, &error));
	g_assert_error(error, IMAP_ERROR, IMAP_ERROR_IO);
	g_clear_error(&error);
	finish(s, p, NULL);
}

/* ---- EXPUNGE ---- */

static void test_expunge_uidplus(void)
{
	static const struct peer_step steps[] = {
		{"EXAMINE", EXAMINE_OK, PEER_REPLY, 0},
		{"UID FETCH", "* 1 FETCH (UID 42 FLAGS (\\Seen))\r\n%t OK\r\n",
		 PEER_REPLY, 0},
		{"SELECT", SELECT_OK, PEER_REPLY, 0},
		{"UID STORE", "%t OK\r\n", PEER_REPLY, 0},
		{"UID EXPUNGE", "* 1 EXPUNGE\r\n%t OK\r\n", PEER_REPLY, 0},
		{NULL, NULL, PEER_REPLY, 0}};
	struct peer *p = peer_start("UIDPLUS", NULL, steps);
	struct imap_session *s = peer_session(p);
	GError *error = NULL;
	gboolean exists = FALSE;

	/* A read EXAMINEs; the write upgrades to SELECT. */
	g_assert_true(imap_session_uid_state(s, "INBOX", 7, 42, &exists, NULL,
					     NULL, &error));
	g_assert_true(exists);
	g_assert_true(imap_session_expunge_uid(s, "INBOX", 7, 42, FALSE, NULL,
					       &error));
	g_assert_no_error(error);
	finish(s, p,
	       "EXAMINE \"INBOX\"\r\nUID FETCH 42 (UID FLAGS)\r\n"
	       "SELECT \"INBOX\"\r\nUID STORE 42 +FLAGS.SILENT (\\Deleted)\r\n"
	       "UID EXPUNGE 42\r\n");
}

static void test_expunge_no_uidplus(void)
{
	static const struct peer_step steps[] = {
		{"SELECT", SELECT_OK, PEER_REPLY, 0},
		{"UID STORE", "%t OK\r\n", PEER_REPLY, 0},
		{NULL, NULL, PEER_REPLY, 0}};
	struct peer *p = peer_start("", NULL, steps);
	struct imap_session *s = peer_session(p);
	GError *error = NULL;

	/* Never a bare EXPUNGE: refused, nothing sent (not even SELECT). */
	g_assert_false(imap_session_expunge_uid(s, "INBOX", 7, 42, FALSE, NULL,
						&error));
	g_assert_error(error, IMAP_ERROR, IMAP_ERROR_UNSUPPORTED);
	g_clear_error(&error);
	g_assert_cmpstr(p->transcript->str, ==, "");
	/* flag_only: \Deleted only. */
	g_assert_true(imap_session_expunge_uid(s, "INBOX", 7, 42, TRUE, NULL,
					       &error));
	g_assert_no_error(error);
	finish(s, p,
	       "SELECT \"INBOX\"\r\nUID STORE 42 +FLAGS.SILENT "
	       "(\\Deleted)\r\n");
}

/* flag_only sends the STORE alone, even when UIDPLUS would allow the
 * UID EXPUNGE (-o delete=flag never expunges). */
static void test_expunge_flag_only_with_uidplus(void)
{
	static const struct peer_step steps[] = {
		{"SELECT", SELECT_OK, PEER_REPLY, 0},
		{"UID STORE", "%t OK\r\n", PEER_REPLY, 0},
		{NULL, NULL, PEER_REPLY, 0}};
	struct peer *p = peer_start("UIDPLUS", NULL, steps);
	struct imap_session *s = peer_session(p);
	GError *error = NULL;
	gboolean kept = TRUE;

	g_assert_true(imap_session_expunge_uid(s, "INBOX", 7, 42, TRUE, &kept,
					       &error));
	g_assert_no_error(error);
	g_assert_false(kept);
	finish(s, p,
	       "SELECT \"INBOX\"\r\nUID STORE 42 +FLAGS.SILENT "
	       "(\\Deleted)\r\n");
}

static void test_stale_uidvalidity(void)
{
	static const struct peer_step steps[] = {
		{"SELECT", SELECT_OK, PEER_REPLY, 0},
		{NULL, NULL, PEER_REPLY, 0}};
	struct peer *p = peer_start("UIDPLUS", NULL, steps);
	struct imap_session *s = peer_session(p);
	GError *error = NULL;

	g_assert_false(imap_session_expunge_uid(s, "INBOX", 8, 42, FALSE, NULL,
						&error));
	g_assert_error(error, IMAP_ERROR, IMAP_ERROR_STALE);
	g_clear_error(&error);
	finish(s, p, "SELECT \"INBOX\"\r\n");
}

/* ---- MOVE / COPY ---- */

/* A move of UID 42 to Archive (COPYUID 9 42 17), then one of UID 43 to a
 * mailbox that does not exist ([TRYCREATE]): nothing more is sent after
 * the refused COPY/MOVE, so the source stays. */
static void check_move(const char *caps, const struct peer_step *steps,
		       const char *transcript)
{
	struct peer *p = peer_start(caps, NULL, steps);
	struct imap_session *s = peer_session(p);
	struct imap_copy_result res;
	GError *error = NULL;

	g_assert_true(imap_session_move(s, "INBOX", 7, 42, "Archive", FALSE,
					&res, NULL, &error));
	g_assert_no_error(error);
	g_assert_cmpuint(res.uidvalidity, ==, 9);
	g_assert_cmpuint(res.uid, ==, 17);
	g_assert_false(imap_session_move(s, "INBOX", 7, 43, "Gone", FALSE, &res,
					 NULL, &error));
	g_assert_error(error, IMAP_ERROR, IMAP_ERROR_NONEXISTENT);
	g_clear_error(&error);
	finish(s, p, transcript);
}

static void test_move(void)
{
	static const struct peer_step steps[] = {
		{"SELECT", SELECT_OK, PEER_REPLY, 0},
		{"UID MOVE",
		 "* OK [COPYUID 9 42 17] moved\r\n* 1 EXPUNGE\r\n"
		 "%t OK done\r\n",
		 PEER_REPLY, 0},
		{"UID MOVE", "%t NO [TRYCREATE] no such mailbox\r\n",
		 PEER_REPLY, 0},
		{NULL, NULL, PEER_REPLY, 0}};

	check_move("MOVE UIDPLUS", steps,
		   "SELECT \"INBOX\"\r\nUID MOVE 42 \"Archive\"\r\n"
		   "UID MOVE 43 \"Gone\"\r\n");
}

static void test_move_fallback(void)
{
	static const struct peer_step steps[] = {
		{"SELECT", SELECT_OK, PEER_REPLY, 0},
		{"UID COPY", "%t OK [COPYUID 9 42 17] copied\r\n", PEER_REPLY,
		 0},
		{"UID STORE", "%t OK\r\n", PEER_REPLY, 0},
		{"UID EXPUNGE", "* 1 EXPUNGE\r\n%t OK\r\n", PEER_REPLY, 0},
		{"UID COPY", "%t NO [TRYCREATE] no such mailbox\r\n",
		 PEER_REPLY, 0},
		{NULL, NULL, PEER_REPLY, 0}};
	struct imap_copy_result res;
	GError *error = NULL;
	struct peer *p;
	struct imap_session *s;

	check_move("UIDPLUS", steps,
		   "SELECT \"INBOX\"\r\nUID COPY 42 \"Archive\"\r\n"
		   "UID STORE 42 +FLAGS.SILENT (\\Deleted)\r\n"
		   "UID EXPUNGE 42\r\nUID COPY 43 \"Gone\"\r\n");

	/* Neither MOVE nor UIDPLUS: refused before anything is sent. */
	p = peer_start("", NULL, NULL);
	s = peer_session(p);
	g_assert_false(imap_session_move(s, "INBOX", 7, 42, "Archive", FALSE,
					 &res, NULL, &error));
	g_assert_error(error, IMAP_ERROR, IMAP_ERROR_UNSUPPORTED);
	g_clear_error(&error);
	finish(s, p, "");
}

/* flag_only without MOVE: COPY, then \Deleted on the original, and no
 * EXPUNGE of any kind (UIDPLUS or not). */
static void test_move_fallback_flag_only(void)
{
	static const struct peer_step steps[] = {
		{"SELECT", SELECT_OK, PEER_REPLY, 0},
		{"UID COPY", "%t OK copied\r\n", PEER_REPLY, 0},
		{"UID STORE", "%t OK\r\n", PEER_REPLY, 0},
		{NULL, NULL, PEER_REPLY, 0}};
	const char *caps[] = {"", "UIDPLUS"};

	for (guint i = 0; i < G_N_ELEMENTS(caps); i++) {
		struct peer *p = peer_start(caps[i], NULL, steps);
		struct imap_session *s = peer_session(p);
		struct imap_copy_result res;
		GError *error = NULL;
		gboolean flagged = FALSE;

		g_assert_true(imap_session_move(s, "INBOX", 7, 42, "Archive",
						TRUE, &res, &flagged, &error));
		g_assert_no_error(error);
		g_assert_true(flagged);
		g_assert_cmpuint(res.uid, ==, 0);
		finish(s, p,
		       "SELECT \"INBOX\"\r\nUID COPY 42 \"Archive\"\r\n"
		       "UID STORE 42 +FLAGS.SILENT (\\Deleted)\r\n");
	}
}

static const char *const hostile_copyuid[] = {
	"9 41 17", "9 42 17:18",    "0 42 17",	       "9 42",
	"9 42 0",  "9 42,43 17,18", "9 42 4294967296", "x 42 17",
};

static void test_copyuid_hostile(void)
{
	struct peer_step steps[G_N_ELEMENTS(hostile_copyuid) + 2] = {0};
	char *replies[G_N_ELEMENTS(hostile_copyuid)];
	struct peer *p;
	struct imap_session *s;

	steps[0].expect = "EXAMINE";
	steps[0].reply = EXAMINE_OK;
	for (size_t i = 0; i < G_N_ELEMENTS(hostile_copyuid); i++) {
		/* Alternately untagged and tagged. */
		replies[i] = g_strdup_printf(
			i % 2 ? "%%t OK [COPYUID %s] ok\r\n"
			      : "* OK [COPYUID %s] ok\r\n%%t OK\r\n",
			hostile_copyuid[i]);
		steps[i + 1].expect = "UID COPY";
		steps[i + 1].reply = replies[i];
	}
	p = peer_start("UIDPLUS", NULL, steps);
	s = peer_session(p);
	for (size_t i = 0; i < G_N_ELEMENTS(hostile_copyuid); i++) {
		struct imap_copy_result res = {1, 1};
		GError *error = NULL;

		g_test_message("COPYUID %s", hostile_copyuid[i]);
		g_assert_true(imap_session_copy(s, "INBOX", 7, 42, "Archive",
						&res, &error));
		g_assert_no_error(error);
		g_assert_cmpuint(res.uid, ==, 0);
		g_assert_cmpuint(res.uidvalidity, ==, 0);
	}
	finish(s, p, NULL);
	for (size_t i = 0; i < G_N_ELEMENTS(hostile_copyuid); i++)
		g_free(replies[i]);
}

/* ---- STORE ---- */

static void test_store_conditional(void)
{
	static const struct peer_step steps[] = {
		{"SELECT", SELECT_OK, PEER_REPLY, 0},
		{"UID STORE", "* 1 FETCH (UID 42 MODSEQ (101))\r\n%t OK\r\n",
		 PEER_REPLY, 0},
		{"UID STORE",
		 "%t OK [MODIFIED 42] conditional store failed\r\n", PEER_REPLY,
		 0},
		{"UID STORE", "%t NO [MODIFIED 40:45] no\r\n", PEER_REPLY, 0},
		{"UID STORE", "%t OK [MODIFIED 43] not ours\r\n", PEER_REPLY,
		 0},
		{"UID STORE", "%t OK [MODIFIED x:y] garbled\r\n", PEER_REPLY,
		 0},
		{NULL, NULL, PEER_REPLY, 0}};
	struct peer *p = peer_start("CONDSTORE ENABLE", NULL, steps);
	struct imap_session *s = peer_session(p);
	GError *error = NULL;
	uint64_t modseq = 0;

	g_assert_true(imap_session_store_flags(s, "INBOX", 7, 42,
					       IMAP_STORE_SET, "\\Seen", 100,
					       &modseq, &error));
	g_assert_no_error(error);
	g_assert_cmpuint(modseq, ==, 101);
	for (int i = 0; i < 2; i++) {
		g_assert_false(imap_session_store_flags(s, "INBOX", 7, 42,
							IMAP_STORE_ADD, "$Junk",
							100, NULL, &error));
		g_assert_error(error, IMAP_ERROR, IMAP_ERROR_MODIFIED);
		g_clear_error(&error);
	}
	g_assert_true(imap_session_store_flags(s, "INBOX", 7, 42,
					       IMAP_STORE_REMOVE, "\\Seen", 100,
					       NULL, &error));
	/* A set we cannot read counts as "ours was modified". */
	g_assert_false(imap_session_store_flags(
		s, "INBOX", 7, 42, IMAP_STORE_SET, "", 100, NULL, &error));
	g_assert_error(error, IMAP_ERROR, IMAP_ERROR_MODIFIED);
	g_clear_error(&error);
	finish(s, p,
	       "SELECT \"INBOX\"\r\n"
	       "UID STORE 42 (UNCHANGEDSINCE 100) FLAGS.SILENT (\\Seen)\r\n"
	       "UID STORE 42 (UNCHANGEDSINCE 100) +FLAGS.SILENT ($Junk)\r\n"
	       "UID STORE 42 (UNCHANGEDSINCE 100) +FLAGS.SILENT ($Junk)\r\n"
	       "UID STORE 42 (UNCHANGEDSINCE 100) -FLAGS.SILENT (\\Seen)\r\n"
	       "UID STORE 42 (UNCHANGEDSINCE 100) FLAGS.SILENT ()\r\n");
}

static void test_store_unconditional_without_condstore(void)
{
	static const struct peer_step steps[] = {
		{"SELECT", SELECT_OK, PEER_REPLY, 0},
		{"UID STORE", "%t OK\r\n", PEER_REPLY, 0},
		{NULL, NULL, PEER_REPLY, 0}};
	struct peer *p = peer_start("", NULL, steps);
	struct imap_session *s = peer_session(p);
	GError *error = NULL;

	g_assert_false(imap_session_store_flags(s, "INBOX", 7, 42,
						IMAP_STORE_SET, "\\Seen", 100,
						NULL, &error));
	g_assert_error(error, IMAP_ERROR, IMAP_ERROR_UNSUPPORTED);
	g_clear_error(&error);
	g_assert_true(imap_session_store_flags(
		s, "INBOX", 7, 42, IMAP_STORE_SET, "\\Seen", 0, NULL, &error));
	finish(s, p,
	       "SELECT \"INBOX\"\r\nUID STORE 42 FLAGS.SILENT (\\Seen)\r\n");
}

static void test_permanentflags(void)
{
	static const struct peer_step steps[] = {
		{"SELECT",
		 "* OK [UIDVALIDITY 7] v\r\n"
		 "* OK [PERMANENTFLAGS (\\Seen \\Deleted)] p\r\n"
		 "%t OK [READ-WRITE] done\r\n",
		 PEER_REPLY, 0},
		{"UID STORE", "%t OK\r\n", PEER_REPLY, 0},
		{NULL, NULL, PEER_REPLY, 0}};
	struct peer *p = peer_start("", NULL, steps);
	struct imap_session *s = peer_session(p);
	GError *error = NULL;
	char *perm;

	perm = imap_session_permanent_flags(s, "INBOX", &error);
	g_assert_no_error(error);
	g_assert_cmpstr(perm, ==, "\\Seen \\Deleted");
	g_free(perm);
	/* No \* : a keyword cannot be stored; nothing is sent. */
	g_assert_false(
		imap_session_store_flags(s, "INBOX", 7, 42, IMAP_STORE_ADD,
					 "\\Seen $Label1", 0, NULL, &error));
	g_assert_error(error, IMAP_ERROR, IMAP_ERROR_INVALID);
	g_clear_error(&error);
	g_assert_false(imap_session_store_flags(s, "INBOX", 7, 42,
						IMAP_STORE_SET, "\\Flagged", 0,
						NULL, &error));
	g_assert_error(error, IMAP_ERROR, IMAP_ERROR_INVALID);
	g_clear_error(&error);
	g_assert_true(imap_session_store_flags(
		s, "INBOX", 7, 42, IMAP_STORE_ADD, "\\seen", 0, NULL, &error));
	g_assert_no_error(error);
	finish(s, p,
	       "SELECT \"INBOX\"\r\nUID STORE 42 +FLAGS.SILENT (\\seen)\r\n");
}

static void test_permanentflags_default(void)
{
	static const struct peer_step steps[] = {
		{"SELECT",
		 "* OK [UIDVALIDITY 7] v\r\n* FLAGS (\\Seen $X)\r\n"
		 "%t OK done\r\n",
		 PEER_REPLY, 0},
		{NULL, NULL, PEER_REPLY, 0}};
	struct peer *p = peer_start("", NULL, steps);
	struct imap_session *s = peer_session(p);
	GError *error = NULL;
	char *perm = imap_session_permanent_flags(s, "INBOX", &error);

	g_assert_no_error(error);
	g_assert_cmpstr(perm, ==, "\\Seen $X \\*");
	g_free(perm);
	finish(s, p, "SELECT \"INBOX\"\r\n");
}

static void test_read_only_select(void)
{
	static const struct peer_step steps[] = {
		{"SELECT", "* OK [UIDVALIDITY 7] v\r\n%t OK [READ-ONLY] ro\r\n",
		 PEER_REPLY, 0},
		{NULL, NULL, PEER_REPLY, 0}};
	struct peer *p = peer_start("UIDPLUS", NULL, steps);
	struct imap_session *s = peer_session(p);
	GError *error = NULL;

	g_assert_false(imap_session_expunge_uid(s, "INBOX", 7, 42, FALSE, NULL,
						&error));
	g_assert_error(error, IMAP_ERROR, IMAP_ERROR_NOPERM);
	g_clear_error(&error);
	finish(s, p, "SELECT \"INBOX\"\r\n");
}

/* Words that are no flag atoms: refused, nothing sent. */
static const char *const bad_flags[] = {
	"(x",	       "x)",   "\"q\"", "\\*", "a]",
	"caf\xc3\xa9", "x{3}", "\\",	"\\1", "x\r\nA1 DELETE INBOX",
	"%",	       "a\\b", "x\ty",
};

static void test_flag_injection(void)
{
	struct peer *p = peer_start("UIDPLUS LITERAL+", NULL, NULL);
	struct imap_session *s = peer_session(p);

	for (size_t i = 0; i < G_N_ELEMENTS(bad_flags); i++) {
		struct imap_append_result res;
		struct mem_source m;
		struct imap_append_req req = mem_req(&m, "x\r\n", 3);
		GError *error = NULL;
		char *flags = g_strdup_printf("\\Seen %s", bad_flags[i]);

		g_test_message("flag %s", bad_flags[i]);
		g_assert_false(imap_flag_is_valid(bad_flags[i]));
		req.flags = flags;
		g_assert_false(imap_session_append(s, &req, &res, &error));
		g_assert_error(error, IMAP_ERROR, IMAP_ERROR_INVALID);
		g_clear_error(&error);
		g_assert_false(imap_session_store_flags(s, "INBOX", 0, 42,
							IMAP_STORE_ADD, flags,
							0, NULL, &error));
		g_assert_error(error, IMAP_ERROR, IMAP_ERROR_INVALID);
		g_clear_error(&error);
		g_free(flags);
	}
	g_assert_true(imap_flag_is_valid("\\Seen"));
	g_assert_true(imap_flag_is_valid("$Label1"));
	g_assert_true(imap_flag_is_valid("NonJunk"));
	finish(s, p, "");
}

/* ---- mailboxes ---- */

static void test_mailbox_names(void)
{
	static const struct peer_step steps[] = {
		{"CREATE", "%t OK\r\n", PEER_REPLY, 0},
		{"CREATE", "%t OK\r\n", PEER_REPLY, 0},
		{"RENAME", "%t OK\r\n", PEER_REPLY, 0},
		{"STATUS",
		 "* STATUS {3}\r\na\\b (MESSAGES 0 UIDVALIDITY 3)\r\n"
		 "%t OK\r\n",
		 PEER_REPLY, 0},
		{"DELETE", "%t OK\r\n", PEER_REPLY, 0},
		{NULL, NULL, PEER_REPLY, 0}};
	struct peer *p = peer_start("LITERAL+", NULL, steps);
	struct imap_session *s = peer_session(p);
	GError *error = NULL;

	g_assert_true(imap_session_create(s, "a \"q\" \\ b", &error));
	g_assert_no_error(error);
	g_assert_true(imap_session_create(s, "caf\xc3\xa9", &error));
	g_assert_no_error(error);
	g_assert_true(imap_session_rename(s, "a\"", "b\\", &error));
	g_assert_no_error(error);
	g_assert_true(imap_session_delete(s, "a\\b", &error));
	g_assert_no_error(error);
	/* CR/LF would inject a command: refused, nothing sent. */
	g_assert_false(imap_session_create(s, "x\r\nA1 LOGOUT", &error));
	g_assert_error(error, IMAP_ERROR, IMAP_ERROR_INVALID);
	g_clear_error(&error);
	g_assert_false(imap_session_rename(s, "ok", "x\ny", &error));
	g_assert_error(error, IMAP_ERROR, IMAP_ERROR_INVALID);
	g_clear_error(&error);
	finish(s, p,
	       "CREATE \"a \\\"q\\\" \\\\ b\"\r\n"
	       "CREATE {5+}\r\ncaf\xc3\xa9\r\n"
	       "RENAME \"a\\\"\" \"b\\\\\"\r\n"
	       "STATUS \"a\\\\b\" (MESSAGES UIDNEXT UIDVALIDITY)\r\n"
	       "DELETE \"a\\\\b\"\r\n");
}

static void test_delete_not_empty(void)
{
	static const struct peer_step steps[] = {
		{"STATUS",
		 "* STATUS Old (MESSAGES 2 UIDVALIDITY 3)\r\n"
		 "%t OK\r\n",
		 PEER_REPLY, 0},
		/* A \Noselect parent: STATUS says NO, DELETE goes ahead. */
		{"STATUS", "%t NO not selectable\r\n", PEER_REPLY, 0},
		{"DELETE", "%t NO [HASCHILDREN] has children\r\n", PEER_REPLY,
		 0},
		{"STATUS", "%t NO [NONEXISTENT] no such mailbox\r\n",
		 PEER_REPLY, 0},
		{NULL, NULL, PEER_REPLY, 0}};
	struct peer *p = peer_start("", NULL, steps);
	struct imap_session *s = peer_session(p);
	GError *error = NULL;

	g_assert_false(imap_session_delete(s, "Old", &error));
	g_assert_error(error, IMAP_ERROR, IMAP_ERROR_NOTEMPTY);
	g_clear_error(&error);
	g_assert_false(imap_session_delete(s, "Parent", &error));
	g_assert_error(error, IMAP_ERROR, IMAP_ERROR_NOTEMPTY);
	g_clear_error(&error);
	g_assert_false(imap_session_delete(s, "Gone", &error));
	g_assert_error(error, IMAP_ERROR, IMAP_ERROR_NONEXISTENT);
	g_clear_error(&error);
	finish(s, p,
	       "STATUS \"Old\" (MESSAGES UIDNEXT UIDVALIDITY)\r\n"
	       "STATUS \"Parent\" (MESSAGES UIDNEXT UIDVALIDITY)\r\n"
	       "DELETE \"Parent\"\r\n"
	       "STATUS \"Gone\" (MESSAGES UIDNEXT UIDVALIDITY)\r\n");
}

/* RFC 5530 codes of a tagged NO. */
static const struct {
	const char *reply;
	int code;
} no_codes[] = {
	{"%t NO [TOOBIG] x\r\n", IMAP_ERROR_TOOBIG},
	{"%t NO [CANNOT] x\r\n", IMAP_ERROR_CANNOT},
	{"%t NO [ALREADYEXISTS] x\r\n", IMAP_ERROR_EXISTS},
	{"%t NO [INUSE] x\r\n", IMAP_ERROR_INUSE},
	{"%t NO [HASCHILDREN] x\r\n", IMAP_ERROR_NOTEMPTY},
	{"%t NO [TRYCREATE] x\r\n", IMAP_ERROR_NONEXISTENT},
	{"%t NO [NONEXISTENT] x\r\n", IMAP_ERROR_NONEXISTENT},
	{"%t NO [OVERQUOTA] x\r\n", IMAP_ERROR_OVERQUOTA},
	{"%t NO [NOPERM] x\r\n", IMAP_ERROR_NOPERM},
	{"%t NO [READ-ONLY] x\r\n", IMAP_ERROR_NOPERM},
	{"%t NO [SERVERBUG] x\r\n", IMAP_ERROR_NO},
	{"%t NO x\r\n", IMAP_ERROR_NO},
	{"%t BAD x\r\n", IMAP_ERROR_BAD},
};

static void test_no_codes(void)
{
	struct peer_step steps[G_N_ELEMENTS(no_codes) + 1] = {0};
	struct peer *p;
	struct imap_session *s;

	for (size_t i = 0; i < G_N_ELEMENTS(no_codes); i++) {
		steps[i].expect = "CREATE";
		steps[i].reply = no_codes[i].reply;
	}
	p = peer_start("", NULL, steps);
	s = peer_session(p);
	for (size_t i = 0; i < G_N_ELEMENTS(no_codes); i++) {
		GError *error = NULL;

		g_test_message("%s", no_codes[i].reply);
		g_assert_false(imap_session_create(s, "x", &error));
		g_assert_error(error, IMAP_ERROR, no_codes[i].code);
		g_clear_error(&error);
	}
	g_assert_true(imap_session_is_usable(s));
	finish(s, p, NULL);
}

/* ---- look-ups ---- */

static void test_status(void)
{
	static const struct peer_step steps[] = {
		{"STATUS",
		 "* STATUS INBOX (MESSAGES 3 UIDNEXT 10 UIDVALIDITY 7 "
		 "HIGHESTMODSEQ 99)\r\n%t OK\r\n",
		 PEER_REPLY, 0},
		/* Another mailbox's STATUS is not ours. */
		{"STATUS",
		 "* STATUS Other (MESSAGES 3 UIDVALIDITY 7)\r\n"
		 "%t OK\r\n",
		 PEER_REPLY, 0},
		{"STATUS", "%t NO [NONEXISTENT] no\r\n", PEER_REPLY, 0},
		{NULL, NULL, PEER_REPLY, 0}};
	struct peer *p = peer_start("CONDSTORE", NULL, steps);
	struct imap_session *s = peer_session(p);
	struct imap_mailbox_status st = {0};
	GError *error = NULL;

	g_assert_true(imap_session_status(s, "inbox", &st, &error));
	g_assert_no_error(error);
	g_assert_cmpuint(st.exists, ==, 3);
	g_assert_cmpuint(st.uidnext, ==, 10);
	g_assert_cmpuint(st.uidvalidity, ==, 7);
	g_assert_cmpuint(st.highestmodseq, ==, 99);
	g_assert_false(imap_session_status(s, "Mine", &st, &error));
	g_assert_error(error, IMAP_ERROR, IMAP_ERROR_NO);
	g_clear_error(&error);
	g_assert_false(imap_session_status(s, "Gone", &st, &error));
	g_assert_error(error, IMAP_ERROR, IMAP_ERROR_NONEXISTENT);
	g_clear_error(&error);
	finish(s, p,
	       "STATUS \"inbox\" (MESSAGES UIDNEXT UIDVALIDITY "
	       "HIGHESTMODSEQ)\r\n"
	       "STATUS \"Mine\" (MESSAGES UIDNEXT UIDVALIDITY "
	       "HIGHESTMODSEQ)\r\n"
	       "STATUS \"Gone\" (MESSAGES UIDNEXT UIDVALIDITY "
	       "HIGHESTMODSEQ)\r\n");
}

static void test_uid_state(void)
{
	static const struct peer_step steps[] = {
		{"EXAMINE", EXAMINE_OK, PEER_REPLY, 0},
		{"UID FETCH",
		 "* 2 FETCH (FLAGS (\\Seen) UID 41)\r\n"
		 "* 3 FETCH (UID 42 FLAGS (\\Seen \\Recent $X) "
		 "MODSEQ (77))\r\n%t OK\r\n",
		 PEER_REPLY, 0},
		/* Selected already: a NOOP first brings news from other
		 * connections. */
		{"NOOP", "* 2 EXPUNGE\r\n%t OK\r\n", PEER_REPLY, 0},
		{"UID FETCH", "%t OK\r\n", PEER_REPLY, 0},
		{"NOOP", "%t OK\r\n", PEER_REPLY, 0},
		{"UID FETCH", "%t NO [EXPUNGEISSUED] gone\r\n", PEER_REPLY, 0},
		{"NOOP", "%t OK\r\n", PEER_REPLY, 0},
		{NULL, NULL, PEER_REPLY, 0}};
	struct peer *p = peer_start("CONDSTORE", NULL, steps);
	struct imap_session *s = peer_session(p);
	GError *error = NULL;
	gboolean exists = FALSE;
	uint64_t modseq = 0;
	char *flags = NULL;

	g_assert_true(imap_session_uid_state(s, "INBOX", 7, 42, &exists,
					     &modseq, &flags, &error));
	g_assert_no_error(error);
	g_assert_true(exists);
	g_assert_cmpuint(modseq, ==, 77);
	g_assert_cmpstr(flags, ==, "\\Seen $X");
	g_free(flags);
	g_assert_true(imap_session_uid_state(s, "INBOX", 7, 43, &exists,
					     &modseq, &flags, &error));
	g_assert_false(exists);
	g_assert_null(flags);
	g_assert_true(imap_session_uid_state(s, "INBOX", 7, 44, &exists, NULL,
					     NULL, &error));
	g_assert_no_error(error);
	g_assert_false(exists);
	g_assert_false(imap_session_uid_state(s, "INBOX", 6, 44, &exists, NULL,
					      NULL, &error));
	g_assert_error(error, IMAP_ERROR, IMAP_ERROR_STALE);
	g_clear_error(&error);
	finish(s, p,
	       "EXAMINE \"INBOX\"\r\nUID FETCH 42 (UID FLAGS MODSEQ)\r\n"
	       "NOOP\r\nUID FETCH 43 (UID FLAGS MODSEQ)\r\n"
	       "NOOP\r\nUID FETCH 44 (UID FLAGS MODSEQ)\r\nNOOP\r\n");
}

static void test_find_appended(void)
{
	static const struct peer_step steps[] = {
		{"EXAMINE", EXAMINE_OK, PEER_REPLY, 0},
		{"UID SEARCH", "* SEARCH 12 9 15\r\n%t OK\r\n", PEER_REPLY, 0},
		{"NOOP", "* 4 EXISTS\r\n%t OK\r\n", PEER_REPLY, 0},
		/* "UID 60:*" matches the last message even below 60. */
		{"UID SEARCH", "* SEARCH 49\r\n%t OK\r\n", PEER_REPLY, 0},
		{NULL, NULL, PEER_REPLY, 0}};
	struct peer *p = peer_start("", NULL, steps);
	struct imap_session *s = peer_session(p);
	GError *error = NULL;
	uint32_t uid = 1, uidvalidity = 0;

	g_assert_true(imap_session_find_appended(
		s, "INBOX", 7, 10, "<a@b>", 100, &uid, &uidvalidity, &error));
	g_assert_no_error(error);
	g_assert_cmpuint(uid, ==, 15);
	g_assert_cmpuint(uidvalidity, ==, 7);
	g_assert_true(imap_session_find_appended(s, "INBOX", 0, 60, "<a@b>",
						 100, &uid, NULL, &error));
	g_assert_cmpuint(uid, ==, 0);
	finish(s, p,
	       "EXAMINE \"INBOX\"\r\n"
	       "UID SEARCH UID 10:* LARGER 99 SMALLER 101 HEADER Message-ID "
	       "\"<a@b>\"\r\n"
	       "NOOP\r\n"
	       "UID SEARCH UID 60:* LARGER 99 SMALLER 101 HEADER Message-ID "
	       "\"<a@b>\"\r\n");
}

static void test_caps_and_namespace(void)
{
	struct peer *p = peer_start("UIDPLUS NAMESPACE",
				    "((\"INBOX.\" \".\")) NIL NIL", NULL);
	struct imap_session *s = peer_session(p);

	g_assert_true(imap_session_has_cap(s, "uidplus"));
	g_assert_false(imap_session_has_cap(s, "MOVE"));
	g_assert_cmpstr(imap_session_personal_prefix(s), ==, "INBOX.");
	g_assert_cmpint(imap_session_personal_delimiter(s), ==, '.');
	finish(s, p, "");
}

static void test_format_datetime(void)
{
	char buf[64];

	g_assert_true(imap_format_datetime(1700000000, buf, sizeof(buf)));
	g_assert_cmpstr(buf, ==, "14-Nov-2023 22:13:20 +0000");
	g_assert_true(imap_format_datetime(86400 * 4, buf, sizeof(buf)));
	g_assert_cmpstr(buf, ==, "05-Jan-1970 00:00:00 +0000");
	g_assert_false(imap_format_datetime(G_MAXINT64, buf, sizeof(buf)));
	g_assert_false(imap_format_datetime(1700000000, buf, 10));
}

int main(int argc, char **argv)
{
	int ret;

	g_test_init(&argc, &argv, NULL);
	testtls_setup();
	g_test_add_func("/mutate/append-literal-plus",
			test_append_literal_plus);
	g_test_add_func("/mutate/append-literal-minus",
			test_append_literal_minus);
	g_test_add_func("/mutate/append-sync-waits", test_append_sync_waits);
	g_test_add_func("/mutate/append-binary", test_append_binary);
	g_test_add_func("/mutate/appenduid-hostile", test_appenduid_hostile);
	g_test_add_func("/mutate/append-streamed", test_append_streamed);
	g_test_add_func("/mutate/append-streamed-exact",
			test_append_streamed_exact);
	g_test_add_func("/mutate/append-source-error",
			test_append_source_error);
	g_test_add_func("/mutate/append-limit", test_append_limit);
	g_test_add_func("/mutate/append-unknown-outcome",
			test_append_unknown_outcome);
	g_test_add_func("/mutate/read-hangup-is-io", test_read_hangup_is_io);
	g_test_add_func("/mutate/expunge-uidplus", test_expunge_uidplus);
	g_test_add_func("/mutate/expunge-flag-only-with-uidplus",
			test_expunge_flag_only_with_uidplus);
	g_test_add_func("/mutate/expunge-no-uidplus", test_expunge_no_uidplus);
	g_test_add_func("/mutate/stale-uidvalidity", test_stale_uidvalidity);
	g_test_add_func("/mutate/move", test_move);
	g_test_add_func("/mutate/move-fallback", test_move_fallback);
	g_test_add_func("/mutate/move-fallback-flag-only",
			test_move_fallback_flag_only);
	g_test_add_func("/mutate/copyuid-hostile", test_copyuid_hostile);
	g_test_add_func("/mutate/store-conditional", test_store_conditional);
	g_test_add_func("/mutate/store-without-condstore",
			test_store_unconditional_without_condstore);
	g_test_add_func("/mutate/permanentflags", test_permanentflags);
	g_test_add_func("/mutate/permanentflags-default",
			test_permanentflags_default);
	g_test_add_func("/mutate/read-only-select", test_read_only_select);
	g_test_add_func("/mutate/flag-injection", test_flag_injection);
	g_test_add_func("/mutate/mailbox-names", test_mailbox_names);
	g_test_add_func("/mutate/delete-not-empty", test_delete_not_empty);
	g_test_add_func("/mutate/no-codes", test_no_codes);
	g_test_add_func("/mutate/status", test_status);
	g_test_add_func("/mutate/uid-state", test_uid_state);
	g_test_add_func("/mutate/find-appended", test_find_appended);
	g_test_add_func("/mutate/caps-and-namespace", test_caps_and_namespace);
	g_test_add_func("/mutate/format-datetime", test_format_datetime);
	ret = g_test_run();
	testtls_teardown();
	return ret;
}
