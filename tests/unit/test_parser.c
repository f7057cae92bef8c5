/* test_parser.c - unit tests for the IMAP response parser (imap/parser.c).
 *
 * Every valid response is compared as a string rendering of its tree, and
 * is parsed three ways (whole, one byte at a time, random chunks) to prove
 * that the result does not depend on how the input is split.
 */
#include "config.h"

#include <string.h>

#include "imap-error.h"
#include "parser.h"

#if defined(__SANITIZE_ADDRESS__)
#define TEST_HAVE_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define TEST_HAVE_ASAN 1
#endif
#endif

#ifdef TEST_HAVE_ASAN
/* Exported by the ASan runtime (gcc does not ship the header). */
size_t __sanitizer_get_current_allocated_bytes(void);
static gboolean allocated_bytes(size_t *bytes_r)
{
	*bytes_r = __sanitizer_get_current_allocated_bytes();
	return TRUE;
}
#elif defined(__GLIBC__)
#include <malloc.h>
static gboolean allocated_bytes(size_t *bytes_r)
{
	struct mallinfo2 mi = mallinfo2();

	*bytes_r = mi.uordblks + mi.hblkhd;
	return TRUE;
}
#else
static gboolean allocated_bytes(size_t *bytes_r)
{
	return FALSE;
}
#endif

#define S(x) x, sizeof(x) - 1

/* ---- tree rendering ---------------------------------------------------- */

static void put_bytes(GString *out, const char *s, size_t len, char quote)
{
	size_t i;

	for (i = 0; i < len; i++) {
		guchar c = (guchar)s[i];

		if (quote != 0 && (c == (guchar)quote || c == '\\'))
			g_string_append_printf(out, "\\%c", c);
		else if (c < 0x20 || c >= 0x7f)
			g_string_append_printf(out, "\\x%02x", c);
		else
			g_string_append_c(out, (char)c);
	}
}

static void put_arg(GString *out, const struct imap_arg *arg)
{
	size_t i;

	switch (arg->type) {
	case IMAP_ARG_NIL:
		g_string_append(out, "NIL");
		break;
	case IMAP_ARG_ATOM:
		put_bytes(out, arg->str, arg->len, 0);
		break;
	case IMAP_ARG_STRING:
		g_string_append_c(out, '"');
		put_bytes(out, arg->str, arg->len, '"');
		g_string_append_c(out, '"');
		break;
	case IMAP_ARG_LITERAL:
		g_assert_cmpint(arg->str[arg->len], ==, '\0');
		g_string_append_printf(out, "%s{%zu:", arg->literal8 ? "~" : "",
				       arg->len);
		put_bytes(out, arg->str, arg->len, 0);
		g_string_append_c(out, '}');
		break;
	case IMAP_ARG_LIST:
		g_string_append_c(out, '(');
		for (i = 0; i < arg->count; i++) {
			if (i > 0)
				g_string_append_c(out, ' ');
			put_arg(out, &arg->list[i]);
		}
		g_string_append_c(out, ')');
		break;
	}
}

static const char *status_name(enum imap_status status)
{
	static const char *const names[] = {"NONE", "OK",  "NO",
					    "BAD",  "BYE", "PREAUTH"};

	return names[status];
}

/* "+ text=..", "TAG OK [CODE args] text=..", "* 5 FETCH (UID 9)" */
static void put_response(GString *out, const struct imap_response *r)
{
	size_t i;

	if (r->kind == IMAP_RESPONSE_CONTINUATION) {
		g_assert_null(r->tag);
		g_string_append_printf(out, "+ text=%s", r->text);
		return;
	}
	if (r->kind == IMAP_RESPONSE_TAGGED) {
		g_assert_nonnull(r->tag);
		g_string_append(out, r->tag);
	} else {
		g_assert_null(r->tag);
		g_string_append_c(out, '*');
	}
	if (r->status != IMAP_STATUS_NONE) {
		g_assert_null(r->keyword);
		g_assert_nonnull(r->text);
		g_string_append_printf(out, " %s", status_name(r->status));
		if (r->code != NULL) {
			g_string_append_printf(out, " [%s", r->code);
			if (r->code_args != NULL)
				g_string_append_printf(out, " %s",
						       r->code_args);
			g_string_append_c(out, ']');
		} else {
			g_assert_null(r->code_args);
		}
		g_string_append(out, " text=");
		put_bytes(out, r->text, strlen(r->text), 0);
		return;
	}
	g_assert_nonnull(r->keyword);
	g_assert_null(r->text);
	if (r->has_number)
		g_string_append_printf(out, " %u", r->number);
	g_string_append_printf(out, " %s", r->keyword);
	for (i = 0; i < r->count; i++) {
		g_string_append_c(out, ' ');
		put_arg(out, &r->args[i]);
	}
}

/* ---- feeding helpers --------------------------------------------------- */

enum split {
	SPLIT_WHOLE,
	SPLIT_BYTES,
	SPLIT_RANDOM,
};

/* Parses @in split as asked; returns the rendered responses joined by
 * "\n" (with "<partial>" appended if the input ends inside a response), or
 * NULL with @error set and *error_pos_r the offset of the bad byte. */
static char *parse_split(const char *in, size_t len, enum split split,
			 const struct imap_parser_limits *limits,
			 size_t *error_pos_r, GError **error)
{
	struct imap_parser *p = imap_parser_new(limits);
	GString *out = g_string_new(NULL);
	GRand *rand = g_rand_new_with_seed(g_test_rand_int());
	enum imap_parse_result r = IMAP_PARSE_DONE;
	size_t pos = 0;

	while (pos < len) {
		size_t n = split == SPLIT_WHOLE ? len
			   : split == SPLIT_BYTES
				   ? 1
				   : (size_t)g_rand_int_range(rand, 1, 40);
		size_t off = 0;

		n = MIN(n, len - pos);
		while (off < n) {
			size_t used = 12345;
			struct imap_response *resp;

			r = imap_parser_feed(p, in + pos + off, n - off, &used,
					     error);
			g_assert_cmpuint(used, <=, n - off);
			off += used;
			if (r == IMAP_PARSE_ERROR) {
				*error_pos_r = pos + off;
				g_assert_null(imap_parser_take(p));
				imap_parser_free(p);
				g_rand_free(rand);
				g_string_free(out, TRUE);
				return NULL;
			}
			if (r == IMAP_PARSE_MORE) {
				g_assert_cmpuint(off, ==, n);
				continue;
			}
			g_assert_cmpuint(used, >, 0);
			resp = imap_parser_take(p);
			g_assert_nonnull(resp);
			g_assert_null(imap_parser_take(p));
			if (out->len > 0)
				g_string_append_c(out, '\n');
			put_response(out, resp);
			imap_response_free(resp);
		}
		pos += n;
	}
	if (r != IMAP_PARSE_DONE)
		g_string_append(out,
				out->len > 0 ? "\n<partial>" : "<partial>");
	imap_parser_free(p);
	g_rand_free(rand);
	return g_string_free(out, FALSE);
}

static void check_valid(const char *in, size_t len, const char *expected,
			const struct imap_parser_limits *limits)
{
	static const enum split splits[] = {SPLIT_WHOLE, SPLIT_BYTES,
					    SPLIT_RANDOM, SPLIT_RANDOM};
	size_t i, pos;

	for (i = 0; i < G_N_ELEMENTS(splits); i++) {
		GError *error = NULL;
		char *got =
			parse_split(in, len, splits[i], limits, &pos, &error);

		if (got == NULL)
			g_error("input %s: split %d: error at %zu: %s",
				g_strescape(in, NULL), splits[i], pos,
				error->message);
		g_assert_cmpstr(got, ==, expected);
		g_free(got);
	}
}

static void check_invalid(const char *in, size_t len, const char *message,
			  const struct imap_parser_limits *limits)
{
	static const enum split splits[] = {SPLIT_WHOLE, SPLIT_BYTES,
					    SPLIT_RANDOM};
	size_t i, pos, first_pos = 0;

	for (i = 0; i < G_N_ELEMENTS(splits); i++) {
		GError *error = NULL;
		char *got =
			parse_split(in, len, splits[i], limits, &pos, &error);

		if (got != NULL)
			g_error("input %s: expected an error, got %s",
				g_strescape(in, NULL), got);
		g_assert_error(error, IMAP_ERROR, IMAP_ERROR_PROTOCOL);
		if (message != NULL && strstr(error->message, message) == NULL)
			g_error("input %s: message '%s' lacks '%s'",
				g_strescape(in, NULL), error->message, message);
		/* The error is found at the same byte however it is split. */
		if (i == 0)
			first_pos = pos;
		g_assert_cmpuint(pos, ==, first_pos);
		g_error_free(error);
	}
}

/* ---- valid responses --------------------------------------------------- */

struct valid_case {
	const char *in;
	size_t len;
	const char *expected;
};

static const struct valid_case valid_cases[] = {
	{S("* OK [CAPABILITY IMAP4rev1 LITERAL+ SASL-IR] Dovecot ready.\r\n"),
	 "* OK [CAPABILITY IMAP4rev1 LITERAL+ SASL-IR] text=Dovecot ready."},
	{S("A1 OK [READ-ONLY] Select completed.\r\n"),
	 "A1 OK [READ-ONLY] text=Select completed."},
	{S("* OK [UIDVALIDITY 3857529045] UIDs valid\r\n"),
	 "* OK [UIDVALIDITY 3857529045] text=UIDs valid"},
	{S("* OK [HIGHESTMODSEQ 1] Highest\r\n"),
	 "* OK [HIGHESTMODSEQ 1] text=Highest"},
	{S("* ok [uidnext 5] x\r\n"), "* OK [UIDNEXT 5] text=x"},
	{S("* OK [PERMANENTFLAGS (\\Answered \\*)] Flags permitted.\r\n"),
	 "* OK [PERMANENTFLAGS (\\Answered \\*)] text=Flags permitted."},
	{S("* OK [FOO a[b]c] t\r\n"), "* OK [FOO a[b]c] text=t"},
	{S("* OK [ALERT]text\r\n"), "* OK [ALERT] text=text"},
	{S("* OK [ALERT]\r\n"), "* OK [ALERT] text="},
	{S("* OK [ALERT] \r\n"), "* OK [ALERT] text="},
	{S("A1 OK\r\n"), "A1 OK text="},
	{S("A2 OK \r\n"), "A2 OK text="},
	{S("a3 no [NONEXISTENT] Mailbox doesn't exist: Foo\r\n"),
	 "a3 NO [NONEXISTENT] text=Mailbox doesn't exist: Foo"},
	{S("* BYE Logging out\r\n"), "* BYE text=Logging out"},
	{S("* PREAUTH [CAPABILITY IMAP4rev1] Logged in\r\n"),
	 "* PREAUTH [CAPABILITY IMAP4rev1] text=Logged in"},
	{S("A4 BAD Error in IMAP command\n"),
	 "A4 BAD text=Error in IMAP command"},
	{S("a.b-1 OK done [not a code]\r\n"),
	 "a.b-1 OK text=done [not a code]"},
	{S("A]1 OK x\r\n"), "A]1 OK text=x"},
	{S("* OK Gr\xc3\xbc\xc3\x9f\x65 \t tab\r\n"),
	 "* OK text=Gr\\xc3\\xbc\\xc3\\x9fe \\x09 tab"},
	{S("+ Ready for literal data\r\n"), "+ text=Ready for literal data"},
	{S("+\r\n"), "+ text="},
	{S("+ \r\n"), "+ text="},
	{S("+ [ALERT] raw\r\n"), "+ text=[ALERT] raw"},
	{S("* 23 EXISTS\r\n"), "* 23 EXISTS"},
	{S("* 0 RECENT\r\n"), "* 0 RECENT"},
	{S("* 4294967295 EXPUNGE\n"), "* 4294967295 EXPUNGE"},
	{S("* 5 FETCH (UID 9 RFC822.SIZE 1234 FLAGS (\\Seen) INTERNALDATE "
	   "\"17-Jul-1996 02:44:25 -0700\" BODY[]<0> {5}\r\nhello)\r\n"),
	 "* 5 FETCH (UID 9 RFC822.SIZE 1234 FLAGS (\\Seen) INTERNALDATE "
	 "\"17-Jul-1996 02:44:25 -0700\" BODY[]<0> {5:hello})"},
	{S("* 3 fetch (uid 1)\r\n"), "* 3 FETCH (uid 1)"},
	{S("* CAPABILITY IMAP4rev1 SASL-IR ID ENABLE IDLE LITERAL+ "
	   "AUTH=PLAIN\r\n"),
	 "* CAPABILITY IMAP4rev1 SASL-IR ID ENABLE IDLE LITERAL+ AUTH=PLAIN"},
	{S("* LIST (\\HasNoChildren) \".\" \"INBOX\"\r\n"),
	 "* LIST (\\HasNoChildren) \".\" \"INBOX\""},
	{S("* LIST () NIL \"Foo\"\r\n"), "* LIST () NIL \"Foo\""},
	{S("* LIST (\\Noselect) \"/\" ~/Mail/foo\r\n"),
	 "* LIST (\\Noselect) \"/\" ~/Mail/foo"},
	{S("* LIST () \"/\" {3}\r\nfoo\r\n"), "* LIST () \"/\" {3:foo}"},
	{S("* LIST () \"/\" \"a\\\"b\\\\c\"\r\n"),
	 "* LIST () \"/\" \"a\\\"b\\\\c\""},
	{S("* LIST () \"/\" \"Ent\xc3\xa4\"\r\n"),
	 "* LIST () \"/\" \"Ent\\xc3\\xa4\""},
	{S("* LIST () \"/\" \"\"\r\n"), "* LIST () \"/\" \"\""},
	{S("* NAMESPACE ((\"\" \"/\")) NIL NIL\r\n"),
	 "* NAMESPACE ((\"\" \"/\")) NIL NIL"},
	{S("* SEARCH 1 2 3\r\n"), "* SEARCH 1 2 3"},
	{S("* SEARCH\r\n"), "* SEARCH"},
	{S("* SEARCH \r\n"), "* SEARCH"},
	{S("* STATUS \"x\" (MESSAGES 2)\r\n"), "* STATUS \"x\" (MESSAGES 2)"},
	{S("* QUOTA \"\" (STORAGE 10 512)\r\n"),
	 "* QUOTA \"\" (STORAGE 10 512)"},
	{S("* ENABLED CONDSTORE QRESYNC\r\n"), "* ENABLED CONDSTORE QRESYNC"},
	{S("* VANISHED (EARLIER) 1:5\r\n"), "* VANISHED (EARLIER) 1:5"},
	{S("* ID (\"name\" \"Dovecot\")\r\n"), "* ID (\"name\" \"Dovecot\")"},
	{S("* ID NIL\r\n"), "* ID NIL"},
	{S("* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)\r\n"),
	 "* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)"},
	{S("* ESEARCH (TAG \"A1\") UID ALL 1:3,5\r\n"),
	 "* ESEARCH (TAG \"A1\") UID ALL 1:3,5"},
	{S("* X nil Nil NIL NILS\r\n"), "* X NIL NIL NIL NILS"},
	{S("* 1 FETCH (BODY[HEADER.FIELDS (FROM TO)]<0> {3}\r\nabc)\r\n"),
	 "* 1 FETCH (BODY[HEADER.FIELDS (FROM TO)]<0> {3:abc})"},
	{S("* 1 FETCH (X[a[b c]d]e Y)\r\n"), "* 1 FETCH (X[a[b c]d]e Y)"},
	{S("* 1 FETCH (BODY[] {3+}\r\nabc)\r\n"), "* 1 FETCH (BODY[] {3:abc})"},
	{S("* 1 FETCH (BINARY[1] ~{3}\r\na\0b)\r\n"),
	 "* 1 FETCH (BINARY[1] ~{3:a\\x00b})"},
	{S("* 1 FETCH (BINARY[1] ~{2+}\r\nab)\r\n"),
	 "* 1 FETCH (BINARY[1] ~{2:ab})"},
	{S("* 1 FETCH (BODY[] {0}\r\n)\r\n"), "* 1 FETCH (BODY[] {0:})"},
	{S("* 1 FETCH (BODY[] {7}\na\r\nb\r\nc UID 4)\n"),
	 "* 1 FETCH (BODY[] {7:a\\x0d\\x0ab\\x0d\\x0ac} UID 4)"},
	{S("* 2 FETCH (BODY[1] {1}\r\n( BODY[2] {1}\r\n))\r\n"),
	 "* 2 FETCH (BODY[1] {1:(} BODY[2] {1:)})"},
	{S("* 1 FETCH (BODYSTRUCTURE ((\"text\" \"plain\" NIL NIL NIL "
	   "\"7bit\" 1 1)(\"text\" \"html\" NIL NIL NIL \"7bit\" 1 1) "
	   "\"alternative\"))\r\n"),
	 "* 1 FETCH (BODYSTRUCTURE ((\"text\" \"plain\" NIL NIL NIL "
	 "\"7bit\" 1 1) (\"text\" \"html\" NIL NIL NIL \"7bit\" 1 1) "
	 "\"alternative\"))"},
	{S("* 1 FETCH (X-GM-LABELS (\\Inbox \"\\\\Important\"))\r\n"),
	 "* 1 FETCH (X-GM-LABELS (\\Inbox \"\\\\Important\"))"},
	{S("* X (a )\r\n"), "* X (a)"},
	{S("* X ((()))\r\n"), "* X ((()))"},
};

static void test_valid(void)
{
	size_t i;

	for (i = 0; i < G_N_ELEMENTS(valid_cases); i++)
		check_valid(valid_cases[i].in, valid_cases[i].len,
			    valid_cases[i].expected, NULL);
}

/* All valid cases back to back in one stream: each response must stop at
 * its own line end, whatever the chunk boundaries. */
static void test_stream(void)
{
	GString *in = g_string_new(NULL);
	GString *expected = g_string_new(NULL);
	size_t i;

	for (i = 0; i < G_N_ELEMENTS(valid_cases); i++) {
		g_string_append_len(in, valid_cases[i].in, valid_cases[i].len);
		if (i > 0)
			g_string_append_c(expected, '\n');
		g_string_append(expected, valid_cases[i].expected);
	}
	check_valid(in->str, in->len, expected->str, NULL);
	/* Cut anywhere: the tail is reported as a partial response. */
	g_string_append(expected, "\n<partial>");
	g_string_append(in, "* 1 FETCH (BODY[] {10}\r\nabc");
	check_valid(in->str, in->len, expected->str, NULL);
	g_string_free(in, TRUE);
	g_string_free(expected, TRUE);
}

/* consumed_r stops after each response's LF. */
static void test_consumed(void)
{
	static const char in[] = "* 1 EXISTS\r\nA1 OK done\n+ go\r\n* 2 EXI";
	static const size_t ends[] = {12, 23, 29};
	struct imap_parser *p = imap_parser_new(NULL);
	size_t pos = 0, used, i;
	GError *error = NULL;

	for (i = 0; i < G_N_ELEMENTS(ends); i++) {
		g_assert_cmpint(imap_parser_feed(p, in + pos,
						 sizeof(in) - 1 - pos, &used,
						 &error),
				==, IMAP_PARSE_DONE);
		g_assert_no_error(error);
		pos += used;
		g_assert_cmpuint(pos, ==, ends[i]);
		/* Not taken yet: feeding again consumes nothing. */
		g_assert_cmpint(imap_parser_feed(p, in + pos, 1, &used, &error),
				==, IMAP_PARSE_DONE);
		g_assert_cmpuint(used, ==, 0);
		imap_response_free(imap_parser_take(p));
	}
	g_assert_cmpint(imap_parser_feed(p, in + pos, sizeof(in) - 1 - pos,
					 &used, &error),
			==, IMAP_PARSE_MORE);
	g_assert_cmpuint(used, ==, sizeof(in) - 1 - pos);
	g_assert_null(imap_parser_take(p));
	g_assert_cmpint(imap_parser_feed(p, NULL, 0, &used, &error), ==,
			IMAP_PARSE_MORE);
	g_assert_cmpuint(used, ==, 0);
	imap_parser_free(p);
}

/* ---- malformed responses ----------------------------------------------- */

static const struct imap_parser_limits unlimited_literal = {
	65536, UINT64_MAX, UINT64_MAX, 32, 1000000};

struct invalid_case {
	const char *in;
	size_t len;
	const char *message; /* substring of the error message, or NULL */
	const struct imap_parser_limits *limits;
};

static const struct invalid_case invalid_cases[] = {
	{S("* OK hi\rthere\r\n"), "bare CR", NULL},
	{S("A1 OK\r\r\n"), "bare CR", NULL},
	{S("* SEARCH 1\r2\r\n"), "bare CR", NULL},
	{S("* X {3}\rabc)\r\n"), "bare CR", NULL},
	{S("* X \"a\rb\"\r\n"), "0x0d in quoted string", NULL},
	{S("* X \"a\nb\"\r\n"), "0x0a in quoted string", NULL},
	{S("* X \"a\0b\"\r\n"), "0x00 in quoted string", NULL},
	{S("* X \"abc\r\n"), "quoted string", NULL},
	{S("* OK a\0b\r\n"), "0x00 in text", NULL},
	{S("+ a\0b\r\n"), "0x00", NULL},
	{S("* X a\0b\r\n"), "0x00", NULL},
	{S("* X \"a\\nb\"\r\n"), "bad escape", NULL},
	{S("* X \"a\\'b\"\r\n"), "bad escape", NULL},
	{S("* X \"a\\\r\n"), "quoted string", NULL},
	{S("* X (a b\r\n"), "unterminated list", NULL},
	{S("* X ((a)\r\n"), "unterminated list", NULL},
	{S("* X a)\r\n"), "0x29", NULL},
	{S("* X (a))\r\n"), "0x29", NULL},
	{S("* X )\r\n"), "0x29", NULL},
	{S("* X a(b)\r\n"), "0x28", NULL},
	{S("* X \"a\"\"b\"\r\n"), "0x22", NULL},
	{S("* X \"a\"b\r\n"), "0x62", NULL},
	{S("* X  a\r\n"), "0x20", NULL},
	{S("* X a  b\r\n"), "0x20", NULL},
	{S("* X {99999999999999999999}\r\n"), "literal too large", NULL},
	{S("* X {99999999999999999999}\r\n"), "overflow", &unlimited_literal},
	{S("* X {18446744073709551616}\r\n"), "overflow", &unlimited_literal},
	{S("* X {67108865}\r\n"), "literal too large", NULL},
	{S("* X ~{67108865}\r\n"), "literal too large", NULL},
	{S("* X {5}abcde)\r\n"), "not followed by CRLF", NULL},
	{S("* X {5} \r\nabcde\r\n"), "not followed by CRLF", NULL},
	{S("* X {-1}\r\n"), "0x2d in literal size", NULL},
	{S("* X {}\r\n"), "missing literal size", NULL},
	{S("* X {+}\r\n"), "0x2b in literal size", NULL},
	{S("* X {5++}\r\n"), "0x2b in literal size", NULL},
	{S("* X { 5}\r\n"), "0x20 in literal size", NULL},
	{S("* X {5\r\n"), "0x0d in literal size", NULL},
	{S("* X {0x5}\r\n"), "0x78 in literal size", NULL},
	{S("* X ~{}\r\n"), "missing literal size", NULL},
	{S(" OK\r\n"), "missing tag", NULL},
	{S("\r\n"), "missing tag", NULL},
	{S("\n"), "missing tag", NULL},
	{S("A(1 OK x\r\n"), "0x28 in tag", NULL},
	{S("A+1 OK x\r\n"), "0x2b in tag", NULL},
	{S("A\"1 OK x\r\n"), "0x22 in tag", NULL},
	{S("{1 OK x\r\n"), "missing tag", NULL},
	{S("%1 OK x\r\n"), "missing tag", NULL},
	{S("\\1 OK x\r\n"), "missing tag", NULL},
	{S("\x80"
	   "A OK x\r\n"),
	 "missing tag", NULL},
	{S("\0A OK x\r\n"), "missing tag", NULL},
	{S("A1\r\n"), "0x0d in tag", NULL},
	{S("A1 FOO bar\r\n"), "unknown status", NULL},
	{S("A1 \r\n"), "0x0d in keyword", NULL},
	{S("OK hello\r\n"), "unknown status", NULL},
	{S("*OK\r\n"), "0x4f in untagged", NULL},
	{S("*\r\n"), "0x0d in untagged", NULL},
	{S("* \r\n"), "0x0d in keyword", NULL},
	{S("*  OK\r\n"), "0x20 in keyword", NULL},
	{S("* 5\r\n"), "missing keyword", NULL},
	{S("* 4294967296 EXISTS\r\n"), "number too large", NULL},
	{S("* 99999999999999999999999 EXISTS\r\n"), "number too large", NULL},
	{S("* 5 FE(TCH\r\n"), "0x28 in keyword", NULL},
	{S("* OK [\r\n"), "0x0d in response code", NULL},
	{S("* OK [] x\r\n"), "0x5d in response code", NULL},
	{S("* OK [ ALERT] x\r\n"), "0x20 in response code", NULL},
	{S("* OK [ALERT x\r\n"), "unterminated response code", NULL},
	{S("* OK [A\"B] x\r\n"), "0x22 in response code", NULL},
	{S("* OK [X a\0] x\r\n"), "unterminated response code", NULL},
	{S("* 1 FETCH (BODY[TEXT\r\n"), "unterminated '['", NULL},
	{S("* 1 FETCH (BODY[TEXT\0])\r\n"), "unterminated '['", NULL},
	{S("* X \x01\r\n"), "0x01 in arguments", NULL},
	{S("* X a\x7f\r\n"), "0x7f", NULL},
};

static void test_invalid(void)
{
	size_t i;

	for (i = 0; i < G_N_ELEMENTS(invalid_cases); i++)
		check_invalid(invalid_cases[i].in, invalid_cases[i].len,
			      invalid_cases[i].message,
			      invalid_cases[i].limits);
}

/* ---- limits ------------------------------------------------------------ */

/* Lines of 24 bytes, literals of 16 (24 in total), depth 3, 8 args. */
static const struct imap_parser_limits small = {24, 16, 24, 3, 8};

struct limit_case {
	const char *in;
	size_t len;
	const char *message; /* NULL: must parse */
};

static const struct limit_case limit_cases[] = {
	/* 24 bytes including CRLF, then 25. */
	{S("* SEARCH 1 2 3 4 5 6 7\r\n"), NULL},
	{S("* SEARCH 1 2 3 4 5 6 78\r\n"), "line too long"},
	{S("* OK abcdefghijklmnopq\r\n"), NULL},
	{S("* OK abcdefghijklmnopqr\r\n"), "line too long"},
	/* Literal contents do not count as line bytes. */
	{S("* X {16}\r\n0123456789abcdef\r\n"), NULL},
	{S("* X {17}\r\n"), "literal too large"},
	{S("* X ~{17}\r\n"), "literal too large"},
	{S("* X {016}\r\n0123456789abcdef\r\n"), NULL},
	{S("* X {16}\r\n0123456789abcdef {8}\r\n01234567\r\n"), NULL},
	{S("* X {16}\r\n0123456789abcdef {9}\r\n"), "total"},
	{S("* X (((a)))\r\n"), NULL},
	{S("* X ((((a))))\r\n"), "nesting too deep"},
	{S("* X (1 2 3 4 5 6 7)\r\n"), NULL},
	{S("* X (1 2 3 4 5 6 7 8)\r\n"), "too many arguments"},
	{S("* X 1 2 3 4 5 6 7 8\r\n"), NULL},
	{S("* X 1 2 3 4 5 6 7 8 9\r\n"), "too many arguments"},
	{S("* X () () () () () () () ()\r\n"), "line too long"},
	{S("* X ()()()()()()()()\r\n"), NULL},
	{S("* X ()()()()()()()()()\r\n"), "too many arguments"},
};

static void test_limits(void)
{
	size_t i;

	for (i = 0; i < G_N_ELEMENTS(limit_cases); i++) {
		const struct limit_case *c = &limit_cases[i];

		if (c->message == NULL) {
			char *whole = parse_split(c->in, c->len, SPLIT_WHOLE,
						  &small, &(size_t){0}, NULL);

			g_assert_nonnull(whole);
			check_valid(c->in, c->len, whole, &small);
			g_free(whole);
		} else {
			check_invalid(c->in, c->len, c->message, &small);
		}
	}
}

/* The default line limit (64 KiB) is exact too. */
static void test_default_line_limit(void)
{
	GString *in = g_string_new("* OK ");
	GError *error = NULL;
	size_t pos;
	char *got;

	while (in->len < 65536 - 2)
		g_string_append_c(in, 'x');
	g_string_append(in, "\r\n");
	got = parse_split(in->str, in->len, SPLIT_WHOLE, NULL, &pos, &error);
	g_assert_no_error(error);
	g_assert_nonnull(got);
	g_free(got);
	g_string_insert_c(in, 5, 'y');
	got = parse_split(in->str, in->len, SPLIT_WHOLE, NULL, &pos, &error);
	g_assert_null(got);
	g_assert_error(error, IMAP_ERROR, IMAP_ERROR_PROTOCOL);
	g_assert_nonnull(strstr(error->message, "line too long"));
	g_assert_cmpuint(pos, ==, 65536);
	g_error_free(error);
	g_string_free(in, TRUE);
}

/* ---- literals and memory ----------------------------------------------- */

/* A huge announced size fails at the digit that breaks the limit, before
 * the CRLF and before any allocation; a large but allowed size allocates
 * only what arrived. */
static void test_literal_claim_no_alloc(void)
{
	static const char huge[] = "* 1 FETCH (BODY[] {4000000000}\r\n";
	static const char big[] = "* 1 FETCH (BODY[] {60000000}\r\nabc";
	struct imap_parser *p = imap_parser_new(NULL);
	size_t before = 0, after = 0, used;
	GError *error = NULL;
	gboolean measured = allocated_bytes(&before);

	g_assert_cmpint(
		imap_parser_feed(p, huge, sizeof(huge) - 1, &used, &error), ==,
		IMAP_PARSE_ERROR);
	g_assert_error(error, IMAP_ERROR, IMAP_ERROR_PROTOCOL);
	g_assert_nonnull(strstr(error->message, "literal too large"));
	g_assert_cmpuint(used, <, strchr(huge, '}') - huge);
	g_assert_false(imap_parser_in_literal(p));
	g_clear_error(&error);
	if (measured) {
		allocated_bytes(&after);
		g_assert_cmpuint(after, <, before + 64 * 1024);
	}

	imap_parser_reset(p);
	g_assert_cmpint(
		imap_parser_feed(p, big, sizeof(big) - 1, &used, &error), ==,
		IMAP_PARSE_MORE);
	g_assert_no_error(error);
	g_assert_true(imap_parser_in_literal(p));
	if (measured) {
		allocated_bytes(&after);
		g_assert_cmpuint(after, <, before + 1024 * 1024);
	} else {
		g_test_message("allocation size not measurable here");
	}
	imap_parser_free(p);
}

/* 10 MB fed in 4 KiB chunks, then stolen without a copy. */
static void test_big_literal(void)
{
	const size_t size = 10 * 1000 * 1000;
	char *header =
		g_strdup_printf("* 7 FETCH (UID 42 BODY[] {%zu}\r\n", size);
	struct imap_parser *p = imap_parser_new(NULL);
	enum imap_parse_result r = IMAP_PARSE_MORE;
	char chunk[4096];
	size_t sent = 0, used, len, i;
	struct imap_response *resp;
	const struct imap_arg *list;
	GError *error = NULL;
	char *body;

	g_assert_cmpint(
		imap_parser_feed(p, header, strlen(header), &used, &error), ==,
		IMAP_PARSE_MORE);
	g_assert_true(imap_parser_in_literal(p));
	while (sent < size) {
		size_t n = MIN(sizeof(chunk), size - sent);

		for (i = 0; i < n; i++)
			chunk[i] = (char)('a' + (sent + i) % 26);
		r = imap_parser_feed(p, chunk, n, &used, &error);
		g_assert_cmpint(r, ==, IMAP_PARSE_MORE);
		g_assert_cmpuint(used, ==, n);
		sent += n;
	}
	g_assert_false(imap_parser_in_literal(p));
	r = imap_parser_feed(p, ")\r\n", 3, &used, &error);
	g_assert_cmpint(r, ==, IMAP_PARSE_DONE);
	g_assert_no_error(error);
	resp = imap_parser_take(p);
	g_assert_cmpuint(resp->count, ==, 1);
	g_assert_true(imap_arg_get_list(&resp->args[0], &list, &len));
	g_assert_cmpuint(len, ==, 4);
	g_assert_cmpint(list[3].type, ==, IMAP_ARG_LITERAL);
	{
		const char *orig = list[3].str;

		body = imap_arg_steal((struct imap_arg *)&list[3], &len);
		g_assert_true(body == orig);
	}
	g_assert_cmpint(list[3].type, ==, IMAP_ARG_NIL);
	g_assert_null(list[3].str);
	g_assert_cmpuint(len, ==, size);
	g_assert_cmpint(body[size], ==, '\0');
	for (i = 0; i < size; i += 9973)
		g_assert_cmpint(body[i], ==, 'a' + i % 26);
	g_free(body);
	imap_response_free(resp);
	imap_parser_free(p);
	g_free(header);
}

/* ---- accessors ------------------------------------------------------- */

static struct imap_response *parse_one(const char *in, size_t len)
{
	struct imap_parser *p = imap_parser_new(NULL);
	struct imap_response *resp;
	GError *error = NULL;
	size_t used;

	g_assert_cmpint(imap_parser_feed(p, in, len, &used, &error), ==,
			IMAP_PARSE_DONE);
	g_assert_no_error(error);
	g_assert_cmpuint(used, ==, len);
	resp = imap_parser_take(p);
	imap_parser_free(p);
	return resp;
}

static void test_accessors(void)
{
	static const char in[] =
		"* X 4294967295 4294967296 +1 -1 18446744073709551615 "
		"18446744073709551616 NIL \"s\" {3}\r\na\0b atom \"\" () "
		"(a b) 007 1a\r\n";
	struct imap_response *r = parse_one(in, sizeof(in) - 1);
	const struct imap_arg *a = r->args, *list;
	uint32_t u32 = 77;
	uint64_t u64 = 77;
	const char *str;
	size_t len, count;
	char *stolen;

	g_assert_cmpuint(r->count, ==, 15);
	g_assert_true(imap_arg_get_uint32(&a[0], &u32));
	g_assert_cmpuint(u32, ==, 4294967295u);
	u32 = 77;
	g_assert_false(imap_arg_get_uint32(&a[1], &u32));
	g_assert_false(imap_arg_get_uint32(&a[2], &u32));
	g_assert_false(imap_arg_get_uint32(&a[3], &u32));
	g_assert_cmpuint(u32, ==, 77);
	g_assert_true(imap_arg_get_uint64(&a[1], &u64));
	g_assert_cmpuint(u64, ==, 4294967296u);
	g_assert_true(imap_arg_get_uint64(&a[4], &u64));
	g_assert_cmpuint(u64, ==, UINT64_MAX);
	u64 = 77;
	g_assert_false(imap_arg_get_uint64(&a[5], &u64));
	g_assert_false(imap_arg_get_uint64(&a[2], &u64));
	g_assert_false(imap_arg_get_uint64(&a[7], &u64));
	g_assert_false(imap_arg_get_uint64(&a[14], &u64));
	g_assert_cmpuint(u64, ==, 77);
	g_assert_true(imap_arg_get_uint32(&a[13], &u32));
	g_assert_cmpuint(u32, ==, 7);
	g_assert_false(imap_arg_get_uint32(NULL, &u32));

	/* nstring: NIL, STRING, LITERAL (with NUL). */
	str = "x";
	len = 9;
	g_assert_true(imap_arg_get_nstring(&a[6], &str, &len));
	g_assert_null(str);
	g_assert_cmpuint(len, ==, 0);
	g_assert_true(imap_arg_get_nstring(&a[7], &str, &len));
	g_assert_cmpstr(str, ==, "s");
	g_assert_true(imap_arg_get_nstring(&a[8], &str, &len));
	g_assert_cmpuint(len, ==, 3);
	g_assert_cmpmem(str, len, "a\0b", 3);
	g_assert_false(imap_arg_get_nstring(&a[9], &str, &len));
	g_assert_false(imap_arg_get_nstring(&a[11], &str, &len));

	/* astring: ATOM, STRING, LITERAL without NUL; not NIL. */
	g_assert_true(imap_arg_get_astring(&a[9], &str));
	g_assert_cmpstr(str, ==, "atom");
	g_assert_true(imap_arg_get_astring(&a[10], &str));
	g_assert_cmpstr(str, ==, "");
	g_assert_false(imap_arg_get_astring(&a[8], &str));
	g_assert_false(imap_arg_get_astring(&a[6], &str));
	g_assert_false(imap_arg_get_astring(&a[11], &str));

	/* atom */
	g_assert_true(imap_arg_get_atom(&a[9], &str));
	g_assert_false(imap_arg_get_atom(&a[7], &str));
	g_assert_true(imap_arg_atom_equals(&a[9], "ATOM"));
	g_assert_false(imap_arg_atom_equals(&a[9], "ato"));
	g_assert_false(imap_arg_atom_equals(&a[7], "s"));
	g_assert_false(imap_arg_atom_equals(NULL, "s"));

	/* lists */
	g_assert_true(imap_arg_get_list(&a[11], &list, &count));
	g_assert_cmpuint(count, ==, 0);
	g_assert_true(imap_arg_get_list(&a[12], &list, &count));
	g_assert_cmpuint(count, ==, 2);
	g_assert_true(imap_arg_atom_equals(&list[1], "b"));
	g_assert_false(imap_arg_get_list(&a[9], &list, &count));

	/* steal: strings, literals and atoms only */
	g_assert_null(imap_arg_steal(&r->args[11], &len));
	g_assert_null(imap_arg_steal(&r->args[6], &len));
	stolen = imap_arg_steal(&r->args[7], &len);
	g_assert_cmpstr(stolen, ==, "s");
	g_assert_cmpuint(len, ==, 1);
	g_assert_cmpint(r->args[7].type, ==, IMAP_ARG_NIL);
	g_free(stolen);
	stolen = imap_arg_steal(&r->args[9], NULL);
	g_assert_cmpstr(stolen, ==, "atom");
	g_free(stolen);
	imap_response_free(r);
	imap_response_free(NULL);
}

/* ---- parser state ---------------------------------------------------- */

static void test_reset_after_error(void)
{
	static const char bad[] = "* X )\r\n";
	static const char good[] = "A1 OK fine\r\n";
	struct imap_parser *p = imap_parser_new(NULL);
	struct imap_response *resp;
	GError *error = NULL;
	size_t used;

	g_assert_cmpint(
		imap_parser_feed(p, bad, sizeof(bad) - 1, &used, &error), ==,
		IMAP_PARSE_ERROR);
	g_assert_cmpuint(used, ==, 4);
	g_clear_error(&error);
	/* Refused until reset. */
	g_assert_cmpint(
		imap_parser_feed(p, good, sizeof(good) - 1, &used, &error), ==,
		IMAP_PARSE_ERROR);
	g_assert_error(error, IMAP_ERROR, IMAP_ERROR_PROTOCOL);
	g_assert_cmpuint(used, ==, 0);
	g_clear_error(&error);
	imap_parser_reset(p);
	g_assert_cmpint(
		imap_parser_feed(p, good, sizeof(good) - 1, &used, &error), ==,
		IMAP_PARSE_DONE);
	resp = imap_parser_take(p);
	g_assert_cmpstr(resp->tag, ==, "A1");
	g_assert_cmpint(resp->status, ==, IMAP_STATUS_OK);
	g_assert_cmpstr(resp->text, ==, "fine");
	imap_response_free(resp);

	/* Reset in the middle of a literal drops it. */
	g_assert_cmpint(
		imap_parser_feed(p, "* X {10}\r\nab", 12, &used, &error), ==,
		IMAP_PARSE_MORE);
	g_assert_true(imap_parser_in_literal(p));
	imap_parser_reset(p);
	g_assert_false(imap_parser_in_literal(p));
	g_assert_cmpint(
		imap_parser_feed(p, good, sizeof(good) - 1, &used, &error), ==,
		IMAP_PARSE_DONE);
	/* Reset with a complete response not taken frees it. */
	imap_parser_reset(p);
	g_assert_null(imap_parser_take(p));
	imap_parser_free(p);
	imap_parser_free(NULL);
}

static void test_in_literal(void)
{
	static const char in[] = "* 1 FETCH (BODY[] {2}\r\nab)\r\n";
	struct imap_parser *p = imap_parser_new(NULL);
	GError *error = NULL;
	size_t i, used;

	for (i = 0; i < sizeof(in) - 1; i++) {
		/* Inside the literal exactly between its header and its
		 * last byte. */
		gboolean want = i >= 23 && i < 25;

		g_assert_cmpint(imap_parser_in_literal(p), ==, want);
		g_assert_cmpint(imap_parser_feed(p, in + i, 1, &used, &error),
				==,
				i + 2 == sizeof(in) ? IMAP_PARSE_DONE
						    : IMAP_PARSE_MORE);
	}
	imap_response_free(imap_parser_take(p));
	imap_parser_free(p);
}

struct sink_log {
	GString *data;
	int starts;
	char *last_key;
	size_t nsib;
	unsigned int depth;
	uint64_t size;
	gboolean accept;
};

static gboolean sink_start(void *ctx, const struct imap_arg *sib, size_t n,
			   unsigned int depth, uint64_t size)
{
	struct sink_log *l = ctx;
	const char *key = NULL;

	l->starts++;
	l->nsib = n;
	l->depth = depth;
	l->size = size;
	g_free(l->last_key);
	l->last_key = n > 0 && imap_arg_get_atom(&sib[n - 1], &key)
			      ? g_strdup(key)
			      : NULL;
	return l->accept;
}

static void sink_data(void *ctx, const void *data, size_t len)
{
	struct sink_log *l = ctx;

	g_string_append_len(l->data, data, len);
}

static void test_literal_sink(void)
{
	static const char input[] =
		"* 3 FETCH (UID 7 BODY[]<0> {10}\r\n"
		"0123456789 FLAGS (\\Seen))\r\n"
		"* 4 FETCH (UID 8 BODY[]<0> {3}\r\nabc)\r\n";
	int accept;

	for (accept = 0; accept <= 1; accept++) {
		struct imap_parser *p = imap_parser_new(NULL);
		struct sink_log l = {
			g_string_new(NULL), 0, NULL, 0, 0, 0, accept};
		struct imap_literal_sink sink = {sink_start, sink_data, &l};
		struct imap_response *r;
		const struct imap_arg *items;
		size_t i = 0, n, used;
		int responses = 0;

		imap_parser_set_literal_sink(p, &sink);
		/* One byte at a time: the sink sees every byte once. */
		while (i < strlen(input)) {
			enum imap_parse_result res =
				imap_parser_feed(p, input + i, 1, &used, NULL);

			g_assert_cmpint(res, !=, IMAP_PARSE_ERROR);
			i += used;
			if (res != IMAP_PARSE_DONE)
				continue;
			r = imap_parser_take(p);
			g_assert_true(
				imap_arg_get_list(&r->args[0], &items, &n));
			g_assert_cmpuint(n, ==, responses == 0 ? 6 : 4);
			g_assert_true(items[3].type == IMAP_ARG_LITERAL);
			g_assert_cmpint(items[3].streamed, ==, accept);
			if (accept) {
				g_assert_cmpuint(items[3].len, ==, 0);
				g_assert_cmpuint(items[3].streamed_size, ==,
						 responses == 0 ? 10 : 3);
			} else {
				g_assert_cmpstr(items[3].str, ==,
						responses == 0 ? "0123456789"
							       : "abc");
			}
			imap_response_free(r);
			responses++;
		}
		g_assert_cmpint(responses, ==, 2);
		g_assert_cmpint(l.starts, ==, 2);
		g_assert_cmpstr(l.last_key, ==, "BODY[]<0>");
		g_assert_cmpuint(l.nsib, ==, 3);
		g_assert_cmpuint(l.depth, ==, 1);
		g_assert_cmpuint(l.size, ==, 3);
		g_assert_cmpstr(l.data->str, ==, accept ? "0123456789abc" : "");
		g_string_free(l.data, TRUE);
		g_free(l.last_key);
		imap_parser_free(p);
	}
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/parser/valid", test_valid);
	g_test_add_func("/parser/stream", test_stream);
	g_test_add_func("/parser/consumed", test_consumed);
	g_test_add_func("/parser/invalid", test_invalid);
	g_test_add_func("/parser/limits", test_limits);
	g_test_add_func("/parser/default-line-limit", test_default_line_limit);
	g_test_add_func("/parser/literal-claim-no-alloc",
			test_literal_claim_no_alloc);
	g_test_add_func("/parser/big-literal", test_big_literal);
	g_test_add_func("/parser/accessors", test_accessors);
	g_test_add_func("/parser/reset-after-error", test_reset_after_error);
	g_test_add_func("/parser/in-literal", test_in_literal);
	g_test_add_func("/parser/literal-sink", test_literal_sink);
	return g_test_run();
}
