/* fuzz_parser.c - libFuzzer target for the IMAP response parser.
 *
 * The input is parsed twice: once in a single chunk and once split into
 * chunks whose sizes come from a tiny PRNG seeded by the first byte.  Every
 * response is taken, every argument is walked through the accessors, and
 * both runs are rendered to a transcript; the transcripts must be equal,
 * since the parser promises that chunking never changes the result.  After
 * an error the parser is reset and parsing continues after the next LF, so
 * one input exercises many responses.
 *
 * Small limits make the limit checks reachable with short inputs.
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "imap-error.h"
#include "parser.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const struct imap_parser_limits fuzz_limits = {
	.max_line_length = 512,
	.max_literal_size = 1024,
	.max_total_literal_size = 2048,
	.max_depth = 8,
	.max_args = 64,
};

/* Touches an argument through every accessor; the results go into the
 * transcript so both runs must agree on them too. */
static void walk_arg(GString *out, struct imap_arg *arg)
{
	const struct imap_arg *list;
	const char *str;
	uint32_t u32;
	uint64_t u64;
	size_t len, count, i;

	g_string_append_printf(out, " t%d", (int)arg->type);
	if (imap_arg_get_atom(arg, &str))
		g_string_append_printf(out, " a=%s%d", str,
				       imap_arg_atom_equals(arg, "NIL"));
	if (imap_arg_get_astring(arg, &str))
		g_string_append_printf(out, " s=%zu", strlen(str));
	if (imap_arg_get_nstring(arg, &str, &len)) {
		g_string_append_printf(out, " n=%zu:", len);
		if (str != NULL) {
			g_assert(str[len] == '\0');
			g_string_append_len(out, str, (gssize)len);
		}
	}
	if (imap_arg_get_uint32(arg, &u32))
		g_string_append_printf(out, " u32=%u", u32);
	if (imap_arg_get_uint64(arg, &u64))
		g_string_append_printf(out, " u64=%" G_GUINT64_FORMAT, u64);
	if (imap_arg_get_list(arg, &list, &count)) {
		g_assert(count == 0 || list != NULL);
		g_string_append_c(out, '(');
		for (i = 0; i < count; i++)
			walk_arg(out, (struct imap_arg *)&list[i]);
		g_string_append_c(out, ')');
	}
	if (arg->type == IMAP_ARG_LITERAL) {
		char *str_stolen = imap_arg_steal(arg, &len);

		g_assert(str_stolen != NULL && str_stolen[len] == '\0');
		g_assert(arg->type == IMAP_ARG_NIL && arg->str == NULL);
		g_free(str_stolen);
	}
}

static void walk_response(GString *out, struct imap_response *r)
{
	size_t i;

	g_string_append_printf(
		out,
		"k%d s%d n%d:%u tag=%s kw=%s code=%s/%s "
		"text=%s",
		(int)r->kind, (int)r->status, r->has_number, r->number,
		r->tag ? r->tag : "-", r->keyword ? r->keyword : "-",
		r->code ? r->code : "-", r->code_args ? r->code_args : "-",
		r->text ? r->text : "-");
	g_assert((r->kind == IMAP_RESPONSE_TAGGED) == (r->tag != NULL));
	g_assert((r->keyword == NULL) == (r->text != NULL));
	g_assert(r->count == 0 || r->args != NULL);
	for (i = 0; i < r->count; i++)
		walk_arg(out, &r->args[i]);
	g_string_append_c(out, '\n');
}

/* Parses @data in chunks (chunk_seed 0: one chunk) and returns the
 * transcript. */
static char *run(const uint8_t *data, size_t size, unsigned int chunk_seed)
{
	struct imap_parser *p = imap_parser_new(&fuzz_limits);
	GString *out = g_string_new(NULL);
	uint32_t rng = chunk_seed * 2654435761u + 1;
	size_t pos = 0;

	while (pos < size) {
		size_t n = size - pos, used;
		enum imap_parse_result r;
		const uint8_t *nl;
		GError *error = NULL;

		if (chunk_seed != 0) {
			rng = rng * 1103515245u + 12345u;
			n = MIN(n,
				(size_t)((rng >> 16) % (chunk_seed % 64 + 1)) +
					1);
		}
		r = imap_parser_feed(p, data + pos, n, &used, &error);
		g_assert(used <= n);
		pos += used;
		if (r == IMAP_PARSE_ERROR) {
			g_assert(error != NULL && error->domain == IMAP_ERROR &&
				 error->code == IMAP_ERROR_PROTOCOL);
			g_string_append_printf(out, "E@%zu %s\n", pos,
					       error->message);
			g_error_free(error);
			g_assert(imap_parser_take(p) == NULL);
			imap_parser_reset(p);
			/* Resynchronise at the next line, as a connection
			 * would after reconnecting. */
			nl = memchr(data + pos, '\n', size - pos);
			pos = nl != NULL ? (size_t)(nl - data) + 1 : size;
		} else if (r == IMAP_PARSE_DONE) {
			struct imap_response *resp = imap_parser_take(p);

			g_assert(resp != NULL && used > 0);
			walk_response(out, resp);
			imap_response_free(resp);
		} else {
			g_assert(used == n && error == NULL);
		}
	}
	g_string_append_printf(out, "end lit=%d\n", imap_parser_in_literal(p));
	imap_parser_free(p);
	return g_string_free(out, FALSE);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *whole, *chunked;

	if (size == 0)
		return 0;
	/* The first byte seeds the chunk sizes but is parsed as well, so
	 * that corpus files are plain server transcripts. */
	whole = run(data, size, 0);
	chunked = run(data, size, (unsigned int)data[0] + 1);
	if (strcmp(whole, chunked) != 0)
		abort();
	g_free(whole);
	g_free(chunked);
	return 0;
}
