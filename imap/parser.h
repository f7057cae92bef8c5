/* parser.h - incremental, resumable IMAP response parser.
 *
 * The parser turns the byte stream a server sends into one struct
 * imap_response per server response line (including the literals embedded
 * in it).  It is fed arbitrary chunks -- down to one byte at a time -- and
 * keeps its state between calls, so it never needs the whole response in
 * one buffer and never blocks.
 *
 * Untrusted input: every limit is fixed at creation.  Exceeding one, or any
 * byte sequence that is not a valid response, yields IMAP_ERROR_PROTOCOL and
 * the parser must be freed or reset.  Memory grows with the bytes actually
 * received, never with a size the server merely claims: a literal header
 * "{4000000000}" is rejected against max_literal_size before anything is
 * allocated, and a literal's buffer is grown as its bytes arrive.
 *
 * Grammar handled (RFC 9051 / RFC 3501 response syntax):
 *   "+" [SP text] CRLF                                  continuation
 *   "*" SP status SP [ "[" code [SP code-args] "]" SP ] text CRLF
 *   tag SP status SP [ "[" code ... "]" SP ] text CRLF  tagged completion
 *   "*" SP [number SP] keyword [SP args] CRLF          untagged data
 * where status is OK, NO, BAD, BYE or PREAUTH (case-insensitive) and args are
 * atoms, NIL, quoted strings, literals {n} / {n+} / ~{n}, and parenthesised
 * lists of those.  An atom that contains "[" extends to the matching "]"
 * (spaces and parentheses included) and then continues, so that
 * "BODY[HEADER.FIELDS (FROM)]<0>" is one atom.
 *
 * Threading: a parser is owned by one connection and used by one thread at a
 * time; it has no global state.
 */
#ifndef IMAPFS_IMAP_PARSER_H
#define IMAPFS_IMAP_PARSER_H

#include <glib.h>
#include <stddef.h>
#include <stdint.h>

struct imap_parser;

struct imap_parser_limits {
	/* Max bytes of one response excluding literal contents. */
	size_t max_line_length;
	/* Max size of one literal (checked against the announced size). */
	uint64_t max_literal_size;
	/* Max total literal bytes in one response. */
	uint64_t max_total_literal_size;
	/* Max parenthesis nesting depth. */
	unsigned int max_depth;
	/* Max number of arguments (all levels together) in one response. */
	unsigned int max_args;
};

/* Sensible defaults: 64 KiB lines, 64 MiB literals and total, depth 32,
 * 1,000,000 args. */
#define IMAP_PARSER_DEFAULT_LIMITS                                       \
	{                                                                \
		65536, 64u * 1024 * 1024, 64u * 1024 * 1024, 32, 1000000 \
	}

enum imap_arg_type {
	IMAP_ARG_NIL,
	IMAP_ARG_ATOM,	  /* also numbers, flags (\Seen), BODY[]<0> */
	IMAP_ARG_STRING,  /* quoted string, escapes removed */
	IMAP_ARG_LITERAL, /* {n}, {n+} or ~{n}; may contain NUL bytes */
	IMAP_ARG_LIST,
};

struct imap_arg {
	enum imap_arg_type type;
	/* ATOM, STRING, LITERAL: the bytes, always followed by an extra NUL
	 * (not counted in len) so text values can be used as C strings.
	 * NULL for NIL and LIST. */
	char *str;
	size_t len;
	/* LITERAL only: TRUE for a literal8 (~{n}). */
	gboolean literal8;
	/* LITERAL only: TRUE if the contents went to the literal sink (see
	 * imap_parser_set_literal_sink()); str is then "" and len 0, and
	 * streamed_size says how many bytes were delivered. */
	gboolean streamed;
	uint64_t streamed_size;
	/* LIST only: the elements. */
	struct imap_arg *list;
	size_t count;
};

enum imap_response_kind {
	IMAP_RESPONSE_UNTAGGED,
	IMAP_RESPONSE_TAGGED,
	IMAP_RESPONSE_CONTINUATION,
};

enum imap_status {
	IMAP_STATUS_NONE, /* not a status response (untagged data) */
	IMAP_STATUS_OK,
	IMAP_STATUS_NO,
	IMAP_STATUS_BAD,
	IMAP_STATUS_BYE,
	IMAP_STATUS_PREAUTH,
};

struct imap_response {
	enum imap_response_kind kind;
	/* TAGGED: the tag. NULL otherwise. */
	char *tag;
	/* TAGGED and status untagged responses: which status. */
	enum imap_status status;
	/* Status responses: the response code inside [...] uppercased (e.g.
	 * "UIDVALIDITY", "CAPABILITY", "NONEXISTENT") or NULL; code_args is
	 * the raw text after the code up to "]" (NULL if none). */
	char *code;
	char *code_args;
	/* Status responses and continuations: the human-readable text (may
	 * be ""). NULL for untagged data. */
	char *text;
	/* Untagged data: TRUE and the value if it started with a number, as
	 * in "* 23 EXISTS" or "* 5 FETCH (...)". */
	gboolean has_number;
	uint32_t number;
	/* Untagged data: the keyword uppercased ("CAPABILITY", "FETCH",
	 * "LIST", "EXISTS", ...). NULL for status responses. */
	char *keyword;
	/* Untagged data: arguments after the keyword (count may be 0). */
	struct imap_arg *args;
	size_t count;
};

enum imap_parse_result {
	IMAP_PARSE_ERROR = -1, /* *error set; reset or free the parser */
	IMAP_PARSE_MORE = 0,   /* all of the input was consumed */
	IMAP_PARSE_DONE = 1,   /* a response is complete: imap_parser_take() */
};

/* Creates a parser with the given limits (copied; NULL = defaults).
 * Never returns NULL. Free with imap_parser_free(). */
struct imap_parser *imap_parser_new(const struct imap_parser_limits *limits);

/* Frees the parser and any partial response. NULL is allowed. */
void imap_parser_free(struct imap_parser *parser);

/* Drops any partial response and error state; the parser is then ready for
 * a new stream (used after STARTTLS and after errors). */
void imap_parser_reset(struct imap_parser *parser);

/* Feeds @len bytes. Sets *consumed_r to how many were used (always <= len;
 * on DONE the rest belongs to the next response and must be fed again).
 * Returns DONE when a whole response (up to and including its final CRLF)
 * has been parsed, MORE when more input is needed, ERROR (with @error set,
 * domain IMAP_ERROR, code IMAP_ERROR_PROTOCOL) on invalid input or a
 * broken limit.  After DONE, call imap_parser_take() before feeding again.
 * After ERROR the parser refuses input until reset. */
enum imap_parse_result imap_parser_feed(struct imap_parser *parser,
					const void *data, size_t len,
					size_t *consumed_r, GError **error);

/* Literal streaming: lets a caller take a large literal's contents as they
 * arrive instead of having them collected in the argument, so a message
 * body is copied once, into its final place, and consumers can use the
 * first bytes before the last ones are received. */
struct imap_literal_sink {
	/* Called when a literal of @size (> 0) bytes begins. @siblings are
	 * the @n arguments before it in the same list (for "* 3 FETCH (UID
	 * 7 BODY[]<0> {5}" inside the parenthesis: UID, 7, BODY[]<0>) and
	 * @depth is the list depth (0 = top level). Return TRUE to receive
	 * the contents through data(); FALSE keeps the normal behaviour. */
	gboolean (*start)(void *ctx, const struct imap_arg *siblings, size_t n,
			  unsigned int depth, uint64_t size);
	/* The contents, in order, in pieces of any size. */
	void (*data)(void *ctx, const void *data, size_t len);
	void *ctx;
};

/* Installs @sink (copied; NULL removes it). It applies from the next
 * literal on and is kept across responses and resets until changed. */
void imap_parser_set_literal_sink(struct imap_parser *parser,
				  const struct imap_literal_sink *sink);

/* Returns TRUE while the parser is inside a literal's contents, i.e. the
 * server announced {n} and its bytes are still arriving. (The connection
 * uses this to know that a synchronizing literal announcement in a
 * response never needs a continuation from us.) */
gboolean imap_parser_in_literal(const struct imap_parser *parser);

/* Returns the completed response and transfers its ownership to the
 * caller; the parser is ready for the next one. Returns NULL if no
 * response is complete. */
struct imap_response *imap_parser_take(struct imap_parser *parser);

/* Frees a response and all of its arguments. NULL is allowed. */
void imap_response_free(struct imap_response *response);

/* Takes the bytes out of a STRING or LITERAL (or ATOM) argument without a
 * copy: returns the g_malloc'd buffer (NUL-terminated, length in *len_r)
 * and leaves the argument as NIL. Returns NULL for other types. */
char *imap_arg_steal(struct imap_arg *arg, size_t *len_r);

/* Typed accessors. Each returns FALSE (and leaves outputs unchanged) when
 * the argument has another type or an invalid value; @arg may be NULL. */

/* TRUE if @arg is an ATOM equal to @atom, ignoring ASCII case. */
gboolean imap_arg_atom_equals(const struct imap_arg *arg, const char *atom);
/* ATOM only. */
gboolean imap_arg_get_atom(const struct imap_arg *arg, const char **str_r);
/* astring: ATOM, STRING or LITERAL (literal must not contain NUL). */
gboolean imap_arg_get_astring(const struct imap_arg *arg, const char **str_r);
/* nstring: NIL (sets *str_r to NULL and *len_r to 0), STRING or LITERAL. */
gboolean imap_arg_get_nstring(const struct imap_arg *arg, const char **str_r,
			      size_t *len_r);
/* ATOM consisting only of digits, value <= UINT32_MAX. */
gboolean imap_arg_get_uint32(const struct imap_arg *arg, uint32_t *value_r);
/* ATOM consisting only of digits, value <= UINT64_MAX (no overflow). */
gboolean imap_arg_get_uint64(const struct imap_arg *arg, uint64_t *value_r);
/* LIST only; *list_r may be NULL when count is 0. */
gboolean imap_arg_get_list(const struct imap_arg *arg,
			   const struct imap_arg **list_r, size_t *count_r);

#endif
