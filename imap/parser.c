/* parser.c - incremental, resumable IMAP response parser.
 *
 * Design: a byte-at-a-time state machine.  Every byte outside literal
 * contents goes through step(), which looks only at the current state and
 * that byte, so the result cannot depend on how the input was split into
 * chunks: feeding one byte at a time and feeding everything at once walk
 * through exactly the same states.  Literal contents are the exception: they
 * are copied in bulk (they need no inspection), which keeps large FETCH
 * bodies cheap.
 *
 * The response tree is built as tokens complete: the current token's bytes
 * live in one growable buffer (bounded by max_line_length), and each open
 * list is a GArray on a stack.  Nothing is allocated from a size the server
 * claims; a literal's buffer grows with the bytes received.
 */
#include "config.h"

#include <stdarg.h>
#include <string.h>

#include "imap-error.h"
#include "parser.h"

/* First allocation for a literal: small, so a literal that is announced
 * but never sent costs next to nothing. */
#define LITERAL_FIRST_CHUNK 4096

enum state {
	S_START,      /* first byte of a response */
	S_TAG,	      /* inside the tag */
	S_STAR,	      /* after "*": SP */
	S_PLUS,	      /* after "+": SP or end of line */
	S_WORD,	      /* number, keyword or status word (see enum word) */
	S_RESP_TEXT,  /* after "status SP": "[" or text */
	S_CODE,	      /* inside "[CODE" */
	S_CODE_ARGS,  /* inside "[CODE args" */
	S_CODE_END,   /* after "]" */
	S_TEXT,	      /* free text up to the line end */
	S_ARG_START,  /* an argument, ")" or (top level) the line end */
	S_ARG_SEP,    /* after an argument: SP, ")", "(" or the line end */
	S_ATOM,	      /* inside an atom */
	S_QUOTED,     /* inside a quoted string */
	S_QUOTED_ESC, /* after a backslash in a quoted string */
	S_LIT_SIZE,   /* after "{": digits */
	S_LIT_PLUS,   /* after "{n+": "}" */
	S_LIT_EOL,    /* after "}": the line end */
	S_LITERAL,    /* literal contents (handled in bulk by feed) */
	S_CR,	      /* after CR: LF */
	S_DONE,	      /* a response is complete */
	S_ERROR,      /* refuse everything until reset */
};

/* Names used in "unexpected byte" messages; indexed by enum state. */
static const char *const state_names[] = {
	[S_START] = "response start",
	[S_TAG] = "tag",
	[S_STAR] = "untagged response",
	[S_PLUS] = "continuation",
	[S_WORD] = "keyword",
	[S_RESP_TEXT] = "response text",
	[S_CODE] = "response code",
	[S_CODE_ARGS] = "response code",
	[S_CODE_END] = "response code",
	[S_TEXT] = "text",
	[S_ARG_START] = "arguments",
	[S_ARG_SEP] = "arguments",
	[S_ATOM] = "atom",
	[S_QUOTED] = "quoted string",
	[S_QUOTED_ESC] = "quoted string",
	[S_LIT_SIZE] = "literal size",
	[S_LIT_PLUS] = "literal size",
	[S_LIT_EOL] = "literal header",
	[S_LITERAL] = "literal",
	[S_CR] = "line ending",
	[S_DONE] = "response",
	[S_ERROR] = "response",
};

/* Which word S_WORD is reading. */
enum word {
	W_UNTAGGED_FIRST, /* "* " then a number, a status or a keyword */
	W_KEYWORD,	  /* "* <n> " then a keyword */
	W_TAGGED_STATUS,  /* "tag " then a status */
};

/* What the LF after a CR (or a bare LF) does. */
enum eol {
	EOL_FINISH,  /* the response is complete */
	EOL_LITERAL, /* literal contents follow */
};

struct buf {
	char *data;
	size_t len;
	size_t cap;
};

struct imap_parser {
	struct imap_parser_limits limits;
	enum state state;
	enum word word;
	enum eol eol;
	struct imap_response *resp;
	/* Current token: tag, word, code, code args, text, atom, string. */
	struct buf tok;
	/* Open lists: GArray of struct imap_arg; [0] is the top level. */
	GPtrArray *stack;
	/* Counters for the current response. */
	size_t line_len;
	unsigned int nargs;
	uint64_t total_literal;
	/* "[" nesting inside an atom or a response code's arguments. */
	unsigned int brackets;
	/* S_ARG_SEP: the argument just finished was a list, so "(" may
	 * follow directly (multipart BODYSTRUCTURE has no SP there). */
	gboolean after_list;
	/* Literal being read. */
	uint64_t lit_size;
	unsigned int lit_digits;
	gboolean lit8;
	char *lit;
	size_t lit_len;
	size_t lit_cap;
	/* The caller's literal sink and whether the current literal goes
	 * there (then lit_len counts delivered bytes, lit stays NULL). */
	struct imap_literal_sink sink;
	gboolean lit_streaming;
};

static void buf_add(struct buf *b, char c)
{
	if (b->len + 1 >= b->cap) {
		b->cap = b->cap < 32 ? 32 : b->cap * 2;
		b->data = g_realloc(b->data, b->cap);
	}
	b->data[b->len++] = c;
}

/* Returns the token as a NUL-terminated g_malloc'd string and empties the
 * buffer (the next token starts with a fresh, small allocation). */
static char *buf_steal(struct buf *b, size_t *len_r)
{
	char *s;

	if (b->data == NULL)
		s = g_malloc0(1);
	else {
		b->data[b->len] = '\0';
		s = b->data;
	}
	if (len_r != NULL)
		*len_r = b->len;
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
	return s;
}

static gboolean buf_equals(const struct buf *b, const char *s)
{
	if (b->len == 0)
		return s[0] == '\0';
	return b->len == strlen(s) && memcmp(b->data, s, b->len) == 0;
}

static void arg_clear(struct imap_arg *arg)
{
	size_t i;

	g_free(arg->str);
	for (i = 0; i < arg->count; i++)
		arg_clear(&arg->list[i]);
	g_free(arg->list);
	memset(arg, 0, sizeof(*arg));
}

static void arg_array_free(gpointer data)
{
	GArray *array = data;
	guint i;

	for (i = 0; i < array->len; i++)
		arg_clear(&g_array_index(array, struct imap_arg, i));
	g_array_free(array, TRUE);
}

/* Turns a finished GArray into a plain (pointer, count) pair. */
static struct imap_arg *arg_array_finish(GArray *array, size_t *count_r)
{
	*count_r = array->len;
	if (array->len == 0) {
		g_array_free(array, TRUE);
		return NULL;
	}
	return (struct imap_arg *)(void *)g_array_free(array, FALSE);
}

static void response_clear_state(struct imap_parser *p)
{
	imap_response_free(p->resp);
	p->resp = NULL;
	g_free(p->tok.data);
	memset(&p->tok, 0, sizeof(p->tok));
	g_ptr_array_set_size(p->stack, 0);
	g_free(p->lit);
	p->lit = NULL;
	p->lit_len = 0;
	p->lit_cap = 0;
	p->lit_streaming = FALSE;
	p->lit_size = 0;
	p->lit_digits = 0;
	p->lit8 = FALSE;
	p->line_len = 0;
	p->nargs = 0;
	p->total_literal = 0;
	p->brackets = 0;
	p->after_list = FALSE;
	p->state = S_START;
}

struct imap_parser *imap_parser_new(const struct imap_parser_limits *limits)
{
	static const struct imap_parser_limits defaults =
		IMAP_PARSER_DEFAULT_LIMITS;
	struct imap_parser *p = g_new0(struct imap_parser, 1);

	p->limits = limits != NULL ? *limits : defaults;
	p->stack = g_ptr_array_new_with_free_func(arg_array_free);
	p->state = S_START;
	return p;
}

void imap_parser_free(struct imap_parser *parser)
{
	if (parser == NULL)
		return;
	response_clear_state(parser);
	g_ptr_array_free(parser->stack, TRUE);
	g_free(parser);
}

void imap_parser_reset(struct imap_parser *parser)
{
	response_clear_state(parser);
}

void imap_parser_set_literal_sink(struct imap_parser *parser,
				  const struct imap_literal_sink *sink)
{
	if (sink != NULL)
		parser->sink = *sink;
	else
		memset(&parser->sink, 0, sizeof(parser->sink));
}

gboolean imap_parser_in_literal(const struct imap_parser *parser)
{
	return parser->state == S_LITERAL;
}

struct imap_response *imap_parser_take(struct imap_parser *parser)
{
	struct imap_response *resp;

	if (parser->state != S_DONE)
		return NULL;
	resp = parser->resp;
	parser->resp = NULL;
	response_clear_state(parser);
	return resp;
}

void imap_response_free(struct imap_response *response)
{
	size_t i;

	if (response == NULL)
		return;
	g_free(response->tag);
	g_free(response->code);
	g_free(response->code_args);
	g_free(response->text);
	g_free(response->keyword);
	for (i = 0; i < response->count; i++)
		arg_clear(&response->args[i]);
	g_free(response->args);
	g_free(response);
}

static gboolean G_GNUC_PRINTF(3, 4)
	fail(struct imap_parser *p, GError **error, const char *fmt, ...)
{
	va_list ap;
	char *msg;

	va_start(ap, fmt);
	msg = g_strdup_vprintf(fmt, ap);
	va_end(ap);
	g_set_error_literal(error, IMAP_ERROR, IMAP_ERROR_PROTOCOL, msg);
	g_free(msg);
	p->state = S_ERROR;
	return FALSE;
}

static gboolean unexpected(struct imap_parser *p, guchar c, GError **error)
{
	const char *where = state_names[p->state];

	return fail(p, error, "unexpected byte 0x%02x in %s", c, where);
}

/* Tag bytes: ASTRING-CHAR except "+" (RFC 9051 section 9). */
static gboolean is_tag_char(guchar c)
{
	if (c <= 0x20 || c >= 0x7f)
		return FALSE;
	return strchr("(){%*\"\\+", c) == NULL;
}

/* Atom bytes.  More permissive than RFC ATOM-CHAR on purpose: flags carry
 * "\" and "*", mailbox names in LIST carry "%", "*" and "]", and 8-bit
 * bytes come from UTF8=ACCEPT servers.  What ends an atom is what matters
 * for staying in sync: SP, parentheses, quotes, controls. */
static gboolean is_atom_char(guchar c)
{
	return c > 0x20 && c != 0x7f && c != '(' && c != ')' && c != '"';
}

static gboolean is_status(const struct buf *b, enum imap_status *status_r)
{
	static const struct {
		const char *name;
		enum imap_status status;
	} names[] = {
		{"OK", IMAP_STATUS_OK},		  {"NO", IMAP_STATUS_NO},
		{"BAD", IMAP_STATUS_BAD},	  {"BYE", IMAP_STATUS_BYE},
		{"PREAUTH", IMAP_STATUS_PREAUTH},
	};
	size_t i;

	for (i = 0; i < G_N_ELEMENTS(names); i++) {
		if (buf_equals(b, names[i].name)) {
			*status_r = names[i].status;
			return TRUE;
		}
	}
	return FALSE;
}

/* Counts one more argument against max_args. */
static gboolean count_arg(struct imap_parser *p, GError **error)
{
	if (p->nargs >= p->limits.max_args)
		return fail(p, error, "too many arguments");
	p->nargs++;
	return TRUE;
}

static void add_arg(struct imap_parser *p, const struct imap_arg *arg)
{
	GArray *top = g_ptr_array_index(p->stack, p->stack->len - 1);

	g_array_append_vals(top, arg, 1);
	p->after_list = arg->type == IMAP_ARG_LIST;
	p->state = S_ARG_SEP;
}

static void push_list(struct imap_parser *p)
{
	g_ptr_array_add(p->stack,
			g_array_new(FALSE, TRUE, sizeof(struct imap_arg)));
}

static void pop_list(struct imap_parser *p)
{
	struct imap_arg arg = {.type = IMAP_ARG_LIST};
	GArray *array = g_ptr_array_steal_index(p->stack, p->stack->len - 1);

	arg.list = arg_array_finish(array, &arg.count);
	add_arg(p, &arg);
}

static void finish_atom(struct imap_parser *p)
{
	struct imap_arg arg = {.type = IMAP_ARG_ATOM};

	if (p->tok.len == 3 &&
	    g_ascii_strncasecmp(p->tok.data, "NIL", 3) == 0) {
		g_free(buf_steal(&p->tok, NULL));
		arg.type = IMAP_ARG_NIL;
	} else {
		arg.str = buf_steal(&p->tok, &arg.len);
	}
	add_arg(p, &arg);
}

static void begin_literal(struct imap_parser *p)
{
	struct imap_arg arg = {.type = IMAP_ARG_LITERAL};

	if (p->lit_size > 0) {
		GArray *top = g_ptr_array_index(p->stack, p->stack->len - 1);

		p->state = S_LITERAL;
		p->lit_streaming =
			p->sink.start != NULL &&
			p->sink.start(
				p->sink.ctx,
				(const struct imap_arg *)(void *)top->data,
				top->len, p->stack->len - 1, p->lit_size);
		return;
	}
	arg.str = g_malloc0(1);
	arg.literal8 = p->lit8;
	add_arg(p, &arg);
}

/* Checks a literal size as its digits arrive, so an absurd size fails at
 * the digit that makes it too large, long before any allocation. */
static gboolean literal_digit(struct imap_parser *p, guchar c, GError **error)
{
	uint64_t d = (uint64_t)(c - '0');

	if (p->lit_size > (UINT64_MAX - d) / 10)
		return fail(p, error, "literal size overflow");
	p->lit_size = p->lit_size * 10 + d;
	p->lit_digits++;
	if (p->lit_size > p->limits.max_literal_size)
		return fail(p, error, "literal too large");
	if (p->lit_size > p->limits.max_total_literal_size - p->total_literal)
		return fail(p, error, "literal too large (total)");
	return TRUE;
}

static gboolean end_literal_size(struct imap_parser *p, GError **error)
{
	if (p->lit_digits == 0)
		return fail(p, error, "missing literal size");
	p->total_literal += p->lit_size;
	p->state = S_LIT_EOL;
	return TRUE;
}

/* Copies literal contents; returns how many bytes of @data were used.
 * The buffer at most doubles per step and never exceeds the announced
 * size + 1, so memory follows the bytes that actually arrived. */
static size_t literal_copy(struct imap_parser *p, const guchar *data,
			   size_t len)
{
	uint64_t want = p->lit_size - p->lit_len;
	size_t n = len < want ? len : (size_t)want;
	struct imap_arg arg = {.type = IMAP_ARG_LITERAL};

	if (p->lit_streaming) {
		p->sink.data(p->sink.ctx, data, n);
		p->lit_len += n;
		if (p->lit_len == p->lit_size) {
			arg.str = g_malloc0(1);
			arg.literal8 = p->lit8;
			arg.streamed = TRUE;
			arg.streamed_size = p->lit_size;
			p->lit_len = 0;
			p->lit_streaming = FALSE;
			add_arg(p, &arg);
		}
		return n;
	}
	if (p->lit_len + n + 1 > p->lit_cap) {
		size_t need = p->lit_len + n + 1;
		size_t cap =
			p->lit_cap == 0 ? LITERAL_FIRST_CHUNK : p->lit_cap * 2;

		if (cap < need)
			cap = need;
		if (cap > p->lit_size + 1)
			cap = (size_t)p->lit_size + 1;
		p->lit = g_realloc(p->lit, cap);
		p->lit_cap = cap;
	}
	memcpy(p->lit + p->lit_len, data, n);
	p->lit_len += n;
	if (p->lit_len == p->lit_size) {
		p->lit[p->lit_len] = '\0';
		arg.str = p->lit;
		arg.len = p->lit_len;
		arg.literal8 = p->lit8;
		p->lit = NULL;
		p->lit_len = 0;
		p->lit_cap = 0;
		add_arg(p, &arg);
	}
	return n;
}

/* Handles CR or LF where a line end is allowed; @what says what follows
 * the LF.  A CR must be followed by LF; a bare LF is accepted. */
static void line_end(struct imap_parser *p, guchar c, enum eol what)
{
	p->eol = what;
	if (c == '\r') {
		p->state = S_CR;
		return;
	}
	if (what == EOL_LITERAL)
		begin_literal(p);
	else
		p->state = S_DONE;
}

static gboolean is_eol(guchar c)
{
	return c == '\r' || c == '\n';
}

/* Finishes an untagged data response: the top-level argument array moves
 * into the response. */
static void finish_data(struct imap_parser *p, guchar c)
{
	if (p->stack->len == 1) {
		GArray *top = g_ptr_array_steal_index(p->stack, 0);

		p->resp->args = arg_array_finish(top, &p->resp->count);
	}
	line_end(p, c, EOL_FINISH);
}

/* A status response with no text at all ("A1 OK" CRLF). */
static void finish_no_text(struct imap_parser *p, guchar c)
{
	p->resp->text = g_strdup("");
	line_end(p, c, EOL_FINISH);
}

/* The first word after "* " or "tag " (or the keyword after a number) is
 * complete; @c is the SP or line end that ended it. */
static gboolean end_word(struct imap_parser *p, guchar c, GError **error)
{
	struct imap_response *r = p->resp;
	enum imap_status status;
	guint64 number;
	size_t i;

	if (p->tok.len == 0)
		return unexpected(p, c, error);
	p->tok.data[p->tok.len] = '\0';
	for (i = 0; i < p->tok.len; i++)
		p->tok.data[i] = g_ascii_toupper(p->tok.data[i]);

	if (p->word == W_UNTAGGED_FIRST && g_ascii_isdigit(p->tok.data[0]) &&
	    strspn(p->tok.data, "0123456789") == p->tok.len) {
		if (p->tok.len > 10 ||
		    (number = g_ascii_strtoull(p->tok.data, NULL, 10)) >
			    G_MAXUINT32)
			return fail(p, error, "message number too large");
		if (c != ' ')
			return fail(p, error, "missing keyword");
		r->has_number = TRUE;
		r->number = (uint32_t)number;
		p->tok.len = 0;
		p->word = W_KEYWORD;
		return TRUE;
	}
	if (p->word != W_KEYWORD && is_status(&p->tok, &status)) {
		r->status = status;
		p->tok.len = 0;
		if (c == ' ')
			p->state = S_RESP_TEXT;
		else
			finish_no_text(p, c);
		return TRUE;
	}
	if (p->word == W_TAGGED_STATUS)
		return fail(p, error, "unknown status in tagged response");
	r->keyword = buf_steal(&p->tok, NULL);
	push_list(p);
	if (c == ' ')
		p->state = S_ARG_START;
	else
		finish_data(p, c);
	return TRUE;
}

/* Starts an argument with its first byte @c (S_ARG_START). */
static gboolean start_arg(struct imap_parser *p, guchar c, GError **error)
{
	if (c == ')' && p->stack->len > 1) {
		pop_list(p);
		return TRUE;
	}
	if (is_eol(c) && p->stack->len == 1) {
		/* Trailing SP before the line end: seen from old servers. */
		finish_data(p, c);
		return TRUE;
	}
	if (c != '(' && c != '"' && c != '{' && !is_atom_char(c))
		return unexpected(p, c, error);
	if (!count_arg(p, error))
		return FALSE;
	switch (c) {
	case '(':
		if (p->stack->len - 1 >= p->limits.max_depth)
			return fail(p, error, "nesting too deep");
		push_list(p);
		p->state = S_ARG_START;
		break;
	case '"':
		p->state = S_QUOTED;
		break;
	case '{':
		p->lit8 = FALSE;
		p->lit_size = 0;
		p->lit_digits = 0;
		p->state = S_LIT_SIZE;
		break;
	default:
		p->brackets = c == '[' ? 1 : 0;
		buf_add(&p->tok, (char)c);
		p->state = S_ATOM;
		break;
	}
	return TRUE;
}

/* After an argument (S_ARG_SEP). */
static gboolean arg_separator(struct imap_parser *p, guchar c, GError **error)
{
	if (c == ' ') {
		p->state = S_ARG_START;
	} else if (c == ')' && p->stack->len > 1) {
		pop_list(p);
	} else if (c == '(' && p->after_list) {
		p->state = S_ARG_START;
		return start_arg(p, c, error);
	} else if (is_eol(c) && p->stack->len == 1) {
		finish_data(p, c);
	} else if (is_eol(c)) {
		return fail(p, error, "unterminated list at end of line");
	} else {
		return unexpected(p, c, error);
	}
	return TRUE;
}

static gboolean atom_byte(struct imap_parser *p, guchar c, GError **error)
{
	if (p->brackets > 0) {
		/* Inside "[...]" of e.g. BODY[HEADER.FIELDS (FROM)]. */
		if (c == '\0' || is_eol(c))
			return fail(p, error, "unterminated '[' in atom");
		if (c == '[')
			p->brackets++;
		else if (c == ']')
			p->brackets--;
		buf_add(&p->tok, (char)c);
		return TRUE;
	}
	if (c == '{' && buf_equals(&p->tok, "~")) {
		p->tok.len = 0;
		p->lit8 = TRUE;
		p->lit_size = 0;
		p->lit_digits = 0;
		p->state = S_LIT_SIZE;
		return TRUE;
	}
	if (is_atom_char(c)) {
		if (c == '[')
			p->brackets = 1;
		buf_add(&p->tok, (char)c);
		return TRUE;
	}
	finish_atom(p);
	return arg_separator(p, c, error);
}

static gboolean quoted_byte(struct imap_parser *p, guchar c, GError **error)
{
	struct imap_arg arg = {.type = IMAP_ARG_STRING};

	if (c == '\0' || is_eol(c))
		return unexpected(p, c, error);
	if (p->state == S_QUOTED_ESC) {
		if (c != '"' && c != '\\')
			return fail(p, error,
				    "bad escape \\%c in quoted string",
				    g_ascii_isprint(c) ? c : '?');
		buf_add(&p->tok, (char)c);
		p->state = S_QUOTED;
	} else if (c == '\\') {
		p->state = S_QUOTED_ESC;
	} else if (c == '"') {
		arg.str = buf_steal(&p->tok, &arg.len);
		add_arg(p, &arg);
	} else {
		buf_add(&p->tok, (char)c);
	}
	return TRUE;
}

static gboolean start_response(struct imap_parser *p, guchar c, GError **error)
{
	p->resp = g_new0(struct imap_response, 1);
	if (c == '*') {
		p->resp->kind = IMAP_RESPONSE_UNTAGGED;
		p->state = S_STAR;
	} else if (c == '+') {
		p->resp->kind = IMAP_RESPONSE_CONTINUATION;
		p->state = S_PLUS;
	} else if (is_tag_char(c)) {
		p->resp->kind = IMAP_RESPONSE_TAGGED;
		buf_add(&p->tok, (char)c);
		p->state = S_TAG;
	} else {
		return fail(p, error,
			    "unexpected byte 0x%02x at response start"
			    " (missing tag)",
			    c);
	}
	return TRUE;
}

/* Text after a status code or in a continuation: anything but NUL up to
 * the line end (8-bit included). */
static gboolean text_byte(struct imap_parser *p, guchar c, GError **error)
{
	if (c == '\0')
		return unexpected(p, c, error);
	if (is_eol(c)) {
		p->resp->text = buf_steal(&p->tok, NULL);
		line_end(p, c, EOL_FINISH);
	} else {
		buf_add(&p->tok, (char)c);
	}
	return TRUE;
}

static gboolean code_byte(struct imap_parser *p, guchar c, GError **error)
{
	if (p->state == S_CODE) {
		if (p->tok.len > 0 && (c == ']' || c == ' ')) {
			p->resp->code = buf_steal(&p->tok, NULL);
			p->brackets = 0;
			p->state = c == ']' ? S_CODE_END : S_CODE_ARGS;
		} else if (is_atom_char(c) && c != '[' && c != ']') {
			buf_add(&p->tok, g_ascii_toupper((char)c));
		} else {
			return unexpected(p, c, error);
		}
		return TRUE;
	}
	/* S_CODE_ARGS: raw up to the matching "]". */
	if (c == '\0' || is_eol(c))
		return fail(p, error, "unterminated response code");
	if (c == ']' && p->brackets == 0) {
		if (p->tok.len > 0)
			p->resp->code_args = buf_steal(&p->tok, NULL);
		p->state = S_CODE_END;
		return TRUE;
	}
	if (c == '[')
		p->brackets++;
	else if (c == ']')
		p->brackets--;
	buf_add(&p->tok, (char)c);
	return TRUE;
}

/* Processes one byte outside literal contents. */
static gboolean step(struct imap_parser *p, guchar c, GError **error)
{
	switch (p->state) {
	case S_START:
		return start_response(p, c, error);
	case S_TAG:
		if (c == ' ') {
			p->resp->tag = buf_steal(&p->tok, NULL);
			p->word = W_TAGGED_STATUS;
			p->state = S_WORD;
		} else if (is_tag_char(c)) {
			buf_add(&p->tok, (char)c);
		} else {
			return unexpected(p, c, error);
		}
		return TRUE;
	case S_STAR:
		if (c != ' ')
			return unexpected(p, c, error);
		p->word = W_UNTAGGED_FIRST;
		p->state = S_WORD;
		return TRUE;
	case S_PLUS:
		if (is_eol(c)) {
			finish_no_text(p, c);
			return TRUE;
		}
		p->state = S_TEXT;
		/* Tolerate "+text" without the SP. */
		return c == ' ' ? TRUE : text_byte(p, c, error);
	case S_WORD:
		if (c == ' ' || is_eol(c))
			return end_word(p, c, error);
		if (!is_atom_char(c) || c == '[' || c == ']')
			return unexpected(p, c, error);
		buf_add(&p->tok, (char)c);
		return TRUE;
	case S_RESP_TEXT:
		if (c == '[') {
			p->state = S_CODE;
			return TRUE;
		}
		if (is_eol(c)) {
			/* "A1 OK " CRLF: a trailing SP and no text. */
			finish_no_text(p, c);
			return TRUE;
		}
		p->state = S_TEXT;
		return text_byte(p, c, error);
	case S_CODE:
	case S_CODE_ARGS:
		return code_byte(p, c, error);
	case S_CODE_END:
		p->state = S_TEXT;
		if (c == ' ')
			return TRUE;
		return text_byte(p, c, error);
	case S_TEXT:
		return text_byte(p, c, error);
	case S_ARG_START:
		return start_arg(p, c, error);
	case S_ARG_SEP:
		return arg_separator(p, c, error);
	case S_ATOM:
		return atom_byte(p, c, error);
	case S_QUOTED:
	case S_QUOTED_ESC:
		return quoted_byte(p, c, error);
	case S_LIT_SIZE:
		if (g_ascii_isdigit(c))
			return literal_digit(p, c, error);
		if (c == '+' && p->lit_digits > 0) {
			p->state = S_LIT_PLUS;
			return TRUE;
		}
		if (c == '}')
			return end_literal_size(p, error);
		return unexpected(p, c, error);
	case S_LIT_PLUS:
		if (c != '}')
			return unexpected(p, c, error);
		return end_literal_size(p, error);
	case S_LIT_EOL:
		if (!is_eol(c))
			return fail(p, error,
				    "literal header not followed by "
				    "CRLF");
		line_end(p, c, EOL_LITERAL);
		return TRUE;
	case S_CR:
		if (c != '\n')
			return fail(p, error, "bare CR (0x%02x follows)", c);
		if (p->eol == EOL_LITERAL)
			begin_literal(p);
		else
			p->state = S_DONE;
		return TRUE;
	case S_LITERAL:
	case S_DONE:
	case S_ERROR:
		break;
	}
	return fail(p, error, "internal parser state error");
}

enum imap_parse_result imap_parser_feed(struct imap_parser *parser,
					const void *data, size_t len,
					size_t *consumed_r, GError **error)
{
	struct imap_parser *p = parser;
	const guchar *in = data;
	size_t i = 0;

	*consumed_r = 0;
	if (p->state == S_ERROR) {
		g_set_error_literal(error, IMAP_ERROR, IMAP_ERROR_PROTOCOL,
				    "parser used after an error");
		return IMAP_PARSE_ERROR;
	}
	if (p->state == S_DONE)
		return IMAP_PARSE_DONE;

	while (i < len) {
		if (p->state == S_LITERAL) {
			i += literal_copy(p, in + i, len - i);
			continue;
		}
		if (p->line_len >= p->limits.max_line_length) {
			*consumed_r = i;
			fail(p, error, "line too long");
			return IMAP_PARSE_ERROR;
		}
		p->line_len++;
		if (!step(p, in[i], error)) {
			*consumed_r = i;
			return IMAP_PARSE_ERROR;
		}
		i++;
		if (p->state == S_DONE) {
			*consumed_r = i;
			return IMAP_PARSE_DONE;
		}
	}
	*consumed_r = len;
	return IMAP_PARSE_MORE;
}

char *imap_arg_steal(struct imap_arg *arg, size_t *len_r)
{
	char *str;

	if (arg == NULL ||
	    (arg->type != IMAP_ARG_STRING && arg->type != IMAP_ARG_LITERAL &&
	     arg->type != IMAP_ARG_ATOM))
		return NULL;
	str = arg->str;
	if (len_r != NULL)
		*len_r = arg->len;
	memset(arg, 0, sizeof(*arg));
	arg->type = IMAP_ARG_NIL;
	return str;
}

gboolean imap_arg_atom_equals(const struct imap_arg *arg, const char *atom)
{
	return arg != NULL && arg->type == IMAP_ARG_ATOM && atom != NULL &&
	       g_ascii_strcasecmp(arg->str, atom) == 0;
}

gboolean imap_arg_get_atom(const struct imap_arg *arg, const char **str_r)
{
	if (arg == NULL || arg->type != IMAP_ARG_ATOM)
		return FALSE;
	*str_r = arg->str;
	return TRUE;
}

gboolean imap_arg_get_astring(const struct imap_arg *arg, const char **str_r)
{
	if (arg == NULL)
		return FALSE;
	switch (arg->type) {
	case IMAP_ARG_LITERAL:
		if (memchr(arg->str, '\0', arg->len) != NULL)
			return FALSE;
		G_GNUC_FALLTHROUGH;
	case IMAP_ARG_ATOM:
	case IMAP_ARG_STRING:
		*str_r = arg->str;
		return TRUE;
	default:
		return FALSE;
	}
}

gboolean imap_arg_get_nstring(const struct imap_arg *arg, const char **str_r,
			      size_t *len_r)
{
	if (arg == NULL)
		return FALSE;
	switch (arg->type) {
	case IMAP_ARG_NIL:
		*str_r = NULL;
		*len_r = 0;
		return TRUE;
	case IMAP_ARG_STRING:
	case IMAP_ARG_LITERAL:
		*str_r = arg->str;
		*len_r = arg->len;
		return TRUE;
	default:
		return FALSE;
	}
}

gboolean imap_arg_get_uint64(const struct imap_arg *arg, uint64_t *value_r)
{
	uint64_t value = 0;
	size_t i;

	if (arg == NULL || arg->type != IMAP_ARG_ATOM || arg->len == 0)
		return FALSE;
	for (i = 0; i < arg->len; i++) {
		uint64_t d = (uint64_t)(arg->str[i] - '0');

		if (!g_ascii_isdigit(arg->str[i]) ||
		    value > (UINT64_MAX - d) / 10)
			return FALSE;
		value = value * 10 + d;
	}
	*value_r = value;
	return TRUE;
}

gboolean imap_arg_get_uint32(const struct imap_arg *arg, uint32_t *value_r)
{
	uint64_t value;

	if (!imap_arg_get_uint64(arg, &value) || value > UINT32_MAX)
		return FALSE;
	*value_r = (uint32_t)value;
	return TRUE;
}

gboolean imap_arg_get_list(const struct imap_arg *arg,
			   const struct imap_arg **list_r, size_t *count_r)
{
	if (arg == NULL || arg->type != IMAP_ARG_LIST)
		return FALSE;
	*list_r = arg->list;
	*count_r = arg->count;
	return TRUE;
}
