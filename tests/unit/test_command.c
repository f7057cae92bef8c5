/* test_command.c - safe command building (imap/command.c). */
#include "config.h"

#include <string.h>

#include "command.h"
#include "conn.h"
#include "imap-error.h"
#include "parser.h"

/* What the connection would send (synchronising literals, no tag/CRLF). */
static char *wire(const struct imap_cmd *cmd)
{
	GString *out = g_string_new(NULL);

	for (guint i = 0; i < cmd->chunks->len; i++) {
		const struct imap_cmd_chunk *c =
			g_ptr_array_index(cmd->chunks, i);

		if (c->kind == IMAP_CMD_CHUNK_LITERAL)
			g_string_append_printf(out, "%s{%zu}\r\n",
					       c->binary ? "~" : "",
					       (size_t)c->data->len);
		g_string_append_len(out, c->data->str, c->data->len);
	}
	return g_string_free(out, FALSE);
}

static void assert_wire(const struct imap_cmd *cmd, const char *expected)
{
	char *w = wire(cmd);

	g_assert_cmpstr(w, ==, expected);
	g_free(w);
}

static void assert_describe(const struct imap_cmd *cmd, const char *expected)
{
	char *d = imap_cmd_describe(cmd);

	g_assert_cmpstr(d, ==, expected);
	g_assert_null(strpbrk(d, "\r\n"));
	g_free(d);
}

struct quote_case {
	const char *in;
	size_t len;
	const char *out; /* NULL: must be refused */
};

static const struct quote_case quote_cases[] = {
	{"INBOX", 5, "\"INBOX\""},
	{"", 0, "\"\""},
	{"a\"b\\c", 5, "\"a\\\"b\\\\c\""},
	{"\\", 1, "\"\\\\\""},
	{"\"\"", 2, "\"\\\"\\\"\""},
	{"with space (and) {3} %*", 23, "\"with space (and) {3} %*\""},
	{"tab\t", 4, "\"tab\t\""},
	{"abc", 2, "\"ab\""}, /* only @len bytes */
	{"a\rb", 3, NULL},
	{"a\nb", 3, NULL},
	{"a\0b", 3, NULL},
	{"caf\xc3\xa9", 5, NULL},
	{"\x80", 1, NULL},
};

static void test_quote_table(void)
{
	for (size_t i = 0; i < G_N_ELEMENTS(quote_cases); i++) {
		const struct quote_case *t = &quote_cases[i];
		GString *out = g_string_new("X");

		if (t->out != NULL) {
			g_assert_true(imap_quote_append(out, t->in, t->len));
			g_assert_cmpstr(out->str + 1, ==, t->out);
		} else {
			g_assert_false(imap_quote_append(out, t->in, t->len));
			g_assert_cmpstr(out->str, ==, "X");
		}
		g_string_free(out, TRUE);
	}
}

static void test_simple_command(void)
{
	struct imap_cmd *cmd = imap_cmd_new("UID FETCH");

	imap_cmd_add_atom(cmd, "1:*");
	imap_cmd_add_atom(cmd, "(UID RFC822.SIZE INTERNALDATE FLAGS)");
	assert_wire(cmd, "UID FETCH 1:* (UID RFC822.SIZE INTERNALDATE FLAGS)");
	g_assert_cmpuint(cmd->chunks->len, ==, 1);
	imap_cmd_free(cmd);

	cmd = imap_cmd_new("UID STORE");
	imap_cmd_add_uint64(cmd, 4294967295u);
	imap_cmd_add_atom(cmd, "+FLAGS.SILENT");
	imap_cmd_add_atom(cmd, "(\\Seen \\Deleted)");
	assert_wire(cmd,
		    "UID STORE 4294967295 +FLAGS.SILENT (\\Seen \\Deleted)");
	imap_cmd_free(cmd);

	cmd = imap_cmd_new("SELECT");
	g_assert_true(imap_cmd_add_string(cmd, "a\"b\\c", 5, FALSE, NULL));
	assert_wire(cmd, "SELECT \"a\\\"b\\\\c\"");
	assert_describe(cmd, "SELECT \"a\\\"b\\\\c\"");
	imap_cmd_free(cmd);

	cmd = imap_cmd_new("LIST");
	g_assert_true(imap_cmd_add_string(cmd, "", 0, FALSE, NULL));
	g_assert_true(imap_cmd_add_string(cmd, "*", 1, FALSE, NULL));
	assert_wire(cmd, "LIST \"\" \"*\"");
	imap_cmd_free(cmd);

	/* NULL is allowed. */
	imap_cmd_free(NULL);
}

static const char *const valid_atoms[] = {
	"INBOX",
	"1:*",
	"1:500,7,9:12",
	"(UID RFC822.SIZE INTERNALDATE FLAGS)",
	"BODY.PEEK[]<0.65536>",
	"BODY.PEEK[HEADER.FIELDS (FROM SUBJECT)]",
	"\\Seen",
	"(\\Seen \\Answered $Forwarded)",
	"+FLAGS.SILENT",
	"*",
	"%",
	"(CHANGEDSINCE 12345)",
};

static void test_atom_valid(void)
{
	for (size_t i = 0; i < G_N_ELEMENTS(valid_atoms); i++) {
		struct imap_cmd *cmd = imap_cmd_new("X");
		char *expected = g_strconcat("X ", valid_atoms[i], NULL);

		imap_cmd_add_atom(cmd, valid_atoms[i]);
		assert_wire(cmd, expected);
		g_free(expected);
		imap_cmd_free(cmd);
	}
}

static const char *const invalid_atoms[] = {
	"",
	"INBOX\r\nA1 DELETE Sent",
	"a\nb",
	"a\rb",
	"\"quoted\"",
	"{5}",
	"{5+}",
	"a\\b",	    /* backslash inside a word */
	"\\",	    /* backslash without flag name */
	"(\\ x)",   /* backslash not followed by a letter */
	"\\\\Seen", /* double backslash */
	"caf\xc3\xa9",
	"a\tb",
	"\x7f",
};

static void test_atom_invalid(void)
{
	for (size_t i = 0; i < G_N_ELEMENTS(invalid_atoms); i++) {
		struct imap_cmd *cmd = imap_cmd_new("NOOP");

		g_test_expect_message(G_LOG_DOMAIN, G_LOG_LEVEL_CRITICAL,
				      "*atom_is_valid*");
		imap_cmd_add_atom(cmd, invalid_atoms[i]);
		g_test_assert_expected_messages();
		assert_wire(cmd, "NOOP");
		imap_cmd_free(cmd);
	}
	g_test_expect_message(G_LOG_DOMAIN, G_LOG_LEVEL_CRITICAL,
			      "*atom_is_valid*");
	{
		struct imap_cmd *cmd = imap_cmd_new("NOOP");

		imap_cmd_add_atom(cmd, NULL);
		g_test_assert_expected_messages();
		assert_wire(cmd, "NOOP");
		imap_cmd_free(cmd);
	}
}

static void test_invalid_name(void)
{
	struct imap_cmd *cmd;

	g_test_expect_message(G_LOG_DOMAIN, G_LOG_LEVEL_CRITICAL,
			      "*invalid command name*");
	cmd = imap_cmd_new("NOOP\r\nA1 LOGOUT");
	g_test_assert_expected_messages();
	g_assert_nonnull(cmd);
	assert_wire(cmd, "X-IMAPFS-INVALID-COMMAND");
	imap_cmd_free(cmd);
}

struct injection {
	const char *str;
	size_t len;
};

static const struct injection injections[] = {
	{"INBOX\r\nA1 DELETE \"Sent\"", 24},
	{"x\n", 2},
	{"x\r", 2},
	{"x\0y", 3},
	{"\0", 1},
	{"caf\xc3\xa9\r\nA1 LOGOUT", 17}, /* 8-bit would be a literal */
};

static void test_injection_refused(void)
{
	for (size_t i = 0; i < G_N_ELEMENTS(injections); i++) {
		const struct injection *t = &injections[i];
		for (int secret = 0; secret <= 1; secret++) {
			struct imap_cmd *cmd = imap_cmd_new("SELECT");
			GError *error = NULL;

			imap_cmd_add_atom(cmd, "(CONDSTORE)");
			g_assert_false(imap_cmd_add_string(cmd, t->str, t->len,
							   secret, &error));
			g_assert_error(error, IMAP_ERROR, IMAP_ERROR_INVALID);
			g_error_free(error);
			g_assert_cmpuint(cmd->chunks->len, ==, 1);
			assert_wire(cmd, "SELECT (CONDSTORE)");
			imap_cmd_free(cmd);
		}
	}
}

static void test_literal_strings(void)
{
	struct imap_cmd *cmd = imap_cmd_new("SELECT");
	const struct imap_cmd_chunk *lit;
	char *big;

	/* 8-bit data cannot be quoted. */
	g_assert_true(imap_cmd_add_string(cmd, "caf\xc3\xa9", 5, FALSE, NULL));
	imap_cmd_add_atom(cmd, "(CONDSTORE)");
	g_assert_cmpuint(cmd->chunks->len, ==, 3);
	lit = g_ptr_array_index(cmd->chunks, 1);
	g_assert_cmpint(lit->kind, ==, IMAP_CMD_CHUNK_LITERAL);
	g_assert_false(lit->binary);
	assert_wire(cmd, "SELECT {5}\r\ncaf\xc3\xa9 (CONDSTORE)");
	assert_describe(cmd, "SELECT {5} <5 bytes> (CONDSTORE)");
	imap_cmd_free(cmd);

	/* Exactly 1024 bytes is still quoted; 1025 is a literal. */
	big = g_strnfill(1025, 'a');
	cmd = imap_cmd_new("SELECT");
	g_assert_true(imap_cmd_add_string(cmd, big, 1024, FALSE, NULL));
	g_assert_cmpuint(cmd->chunks->len, ==, 1);
	g_assert_cmpuint(
		((struct imap_cmd_chunk *)g_ptr_array_index(cmd->chunks, 0))
			->data->len,
		==, strlen("SELECT \"\"") + 1024);
	imap_cmd_free(cmd);

	cmd = imap_cmd_new("SELECT");
	g_assert_true(imap_cmd_add_string(cmd, big, 1025, FALSE, NULL));
	g_assert_cmpuint(cmd->chunks->len, ==, 2);
	lit = g_ptr_array_index(cmd->chunks, 1);
	g_assert_cmpint(lit->kind, ==, IMAP_CMD_CHUNK_LITERAL);
	g_assert_cmpuint(lit->data->len, ==, 1025);
	assert_describe(cmd, "SELECT {1025} <1025 bytes>");
	imap_cmd_free(cmd);
	g_free(big);
}

static void test_append_literal(void)
{
	static const char body[] = "Subject: x\r\n\r\nhello\r\n";
	static const char bin[] = {'a', '\0', 'b'};
	struct imap_cmd *cmd = imap_cmd_new("APPEND");
	const struct imap_cmd_chunk *lit;

	g_assert_true(imap_cmd_add_string(cmd, "INBOX", 5, FALSE, NULL));
	imap_cmd_add_atom(cmd, "(\\Seen)");
	imap_cmd_add_literal(cmd, body, strlen(body), FALSE);
	lit = g_ptr_array_index(cmd->chunks, cmd->chunks->len - 1);
	g_assert_cmpint(lit->kind, ==, IMAP_CMD_CHUNK_LITERAL);
	g_assert_cmpmem(lit->data->str, lit->data->len, body, strlen(body));
	assert_describe(cmd, "APPEND \"INBOX\" (\\Seen) {21} <21 bytes>");
	imap_cmd_free(cmd);

	cmd = imap_cmd_new("APPEND");
	g_assert_true(imap_cmd_add_string(cmd, "INBOX", 5, FALSE, NULL));
	imap_cmd_add_literal(cmd, bin, sizeof(bin), TRUE);
	lit = g_ptr_array_index(cmd->chunks, cmd->chunks->len - 1);
	g_assert_true(lit->binary);
	g_assert_cmpmem(lit->data->str, lit->data->len, bin, sizeof(bin));
	assert_describe(cmd, "APPEND \"INBOX\" ~{3} <3 bytes>");

	/* NUL in a non-binary literal is a programming error. */
	g_test_expect_message(G_LOG_DOMAIN, G_LOG_LEVEL_CRITICAL, "*memchr*");
	imap_cmd_add_literal(cmd, bin, sizeof(bin), FALSE);
	g_test_assert_expected_messages();
	g_assert_cmpuint(cmd->chunks->len, ==, 2);
	imap_cmd_free(cmd);
}

static void test_describe_redacts(void)
{
	struct imap_cmd *cmd = imap_cmd_new("LOGIN");
	char *desc;

	g_assert_true(imap_cmd_add_string(cmd, "alice", 5, FALSE, NULL));
	g_assert_true(imap_cmd_add_string(cmd, "hunter2", 7, TRUE, NULL));
	assert_wire(cmd, "LOGIN \"alice\" \"hunter2\"");
	desc = imap_cmd_describe(cmd);
	g_assert_null(strstr(desc, "hunter2"));
	g_assert_cmpstr(desc, ==, "LOGIN \"alice\" <redacted>");
	g_free(desc);
	imap_cmd_free(cmd);

	/* An 8-bit secret goes as a literal, redacted too (even its size). */
	cmd = imap_cmd_new("LOGIN");
	g_assert_true(imap_cmd_add_string(cmd, "alice", 5, FALSE, NULL));
	g_assert_true(
		imap_cmd_add_string(cmd, "h\xc3\xbcnter2", 8, TRUE, NULL));
	desc = imap_cmd_describe(cmd);
	g_assert_null(strstr(desc, "nter2"));
	g_assert_null(strstr(desc, "8"));
	g_assert_cmpstr(desc, ==, "LOGIN \"alice\" <redacted>");
	g_free(desc);
	imap_cmd_free(cmd);

	/* A secret with quotes must not leak through escaping either. */
	cmd = imap_cmd_new("AUTHENTICATE PLAIN");
	g_assert_true(imap_cmd_add_string(cmd, "hun\"ter2", 8, TRUE, NULL));
	imap_cmd_add_atom(cmd, "X");
	desc = imap_cmd_describe(cmd);
	g_assert_null(strstr(desc, "ter2"));
	g_assert_cmpstr(desc, ==, "AUTHENTICATE PLAIN <redacted> X");
	g_free(desc);
	imap_cmd_free(cmd);

	/* A SASL initial response: sent as an atom, logged as nothing. */
	cmd = imap_cmd_new("AUTHENTICATE PLAIN");
	imap_cmd_add_atom_secret(cmd, "AGFsaWNlAGh1bnRlcjI=");
	assert_wire(cmd, "AUTHENTICATE PLAIN AGFsaWNlAGh1bnRlcjI=");
	desc = imap_cmd_describe(cmd);
	g_assert_null(strstr(desc, "AGFsaWNl"));
	g_assert_cmpstr(desc, ==, "AUTHENTICATE PLAIN <redacted>");
	g_free(desc);
	imap_cmd_free(cmd);
}

static void test_describe_one_line(void)
{
	struct imap_cmd *cmd = imap_cmd_new("SELECT");

	/* Control characters other than CR/LF are legal in a quoted string
	 * but are shown escaped in the log. */
	g_assert_true(imap_cmd_add_string(cmd, "a\tb\x1b", 4, FALSE, NULL));
	imap_cmd_add_literal(cmd, "x\r\ny", 4, FALSE);
	assert_describe(cmd, "SELECT \"a\\x09b\\x1b\" {4} <4 bytes>");
	imap_cmd_free(cmd);
}

static gssize no_read(void *user_data, uint64_t offset, void *buf, size_t len,
		      GError **error)
{
	g_assert_not_reached();
	return -1;
}

/* The C: trace shows the command as sent: escapes kept, each literal
 * announced in the form the server's capabilities select. */
static void test_describe_sent(void)
{
	static const char name[] = "INBOX.Projects.Q&-A \"quoted\"";
	struct imap_literal_source src = {7, no_read, NULL};
	struct imap_cmd *cmd = imap_cmd_new("APPEND");
	GError *error = NULL;
	char *d;

	g_assert_true(
		imap_cmd_add_string(cmd, name, strlen(name), FALSE, &error));
	imap_cmd_add_literal(cmd, "hello", 5, FALSE);
	imap_cmd_add_literal_source(cmd, &src, FALSE);
	assert_describe(cmd, "APPEND \"INBOX.Projects.Q&-A \\\"quoted\\\"\" "
			     "{5} <5 bytes> {7} <7 bytes>");
	d = imap_cmd_describe_sent(cmd, TRUE, FALSE);
	g_assert_cmpstr(d, ==,
			"APPEND \"INBOX.Projects.Q&-A \\\"quoted\\\"\" "
			"{5+} <5 bytes> {7+} <7 bytes>");
	g_free(d);
	imap_cmd_free(cmd);

	/* LITERAL-: non-synchronising up to 4096 bytes only. */
	cmd = imap_cmd_new("APPEND");
	src.size = 4097;
	imap_cmd_add_literal_source(cmd, &src, TRUE);
	src.size = 4096;
	imap_cmd_add_literal_source(cmd, &src, FALSE);
	d = imap_cmd_describe_sent(cmd, FALSE, TRUE);
	g_assert_cmpstr(d, ==,
			"APPEND ~{4097} <4097 bytes> {4096+} <4096 bytes>");
	g_free(d);
	d = imap_cmd_describe_sent(cmd, FALSE, FALSE);
	g_assert_cmpstr(d, ==,
			"APPEND ~{4097} <4097 bytes> {4096} <4096 bytes>");
	g_free(d);
	imap_cmd_free(cmd);
}

/* The S: trace shows quoted strings as the wire carries them (issue 7:
 * it used to drop the escapes) and elides literal contents. */
static void test_trace_response(void)
{
	static const struct {
		const char *wire, *trace;
	} cases[] = {
		{"* LIST (\\HasNoChildren) \".\" \"INBOX.Projects.Q&-A "
		 "\\\"quoted\\\"\"\r\n",
		 "* LIST (\\HasNoChildren) \".\" \"INBOX.Projects.Q&-A "
		 "\\\"quoted\\\"\""},
		{"* LIST () \"\\\\\" \"a\\\\b\"\r\n",
		 "* LIST () \"\\\\\" \"a\\\\b\""},
		{"* 1 FETCH (UID 7 BODY[] {5}\r\nhe\"lo)\r\n",
		 "* 1 FETCH (UID 7 BODY[] {5})"},
		{"* STATUS {3}\r\na\"b (MESSAGES 1)\r\n",
		 "* STATUS {3} (MESSAGES 1)"},
		{"a1 OK [COPYUID 9 1 2] done\r\n",
		 "a1 OK [COPYUID 9 1 2] done"},
	};

	for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
		struct imap_parser *parser = imap_parser_new(NULL);
		struct imap_response *resp;
		GError *error = NULL;
		size_t used = 0;
		char *d;

		g_assert_cmpint(imap_parser_feed(parser, cases[i].wire,
						 strlen(cases[i].wire), &used,
						 &error),
				==, IMAP_PARSE_DONE);
		resp = imap_parser_take(parser);
		d = imap_conn_describe_response(resp);
		g_assert_cmpstr(d, ==, cases[i].trace);
		g_free(d);
		imap_response_free(resp);
		imap_parser_free(parser);
	}
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/command/quote-table", test_quote_table);
	g_test_add_func("/command/simple", test_simple_command);
	g_test_add_func("/command/atom-valid", test_atom_valid);
	g_test_add_func("/command/atom-invalid", test_atom_invalid);
	g_test_add_func("/command/invalid-name", test_invalid_name);
	g_test_add_func("/command/injection-refused", test_injection_refused);
	g_test_add_func("/command/literal-strings", test_literal_strings);
	g_test_add_func("/command/append-literal", test_append_literal);
	g_test_add_func("/command/describe-redacts", test_describe_redacts);
	g_test_add_func("/command/describe-one-line", test_describe_one_line);
	g_test_add_func("/command/describe-sent", test_describe_sent);
	g_test_add_func("/command/trace-response", test_trace_response);
	return g_test_run();
}
