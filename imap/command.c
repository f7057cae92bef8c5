/* command.c - see command.h.
 *
 * The only way text gets into a command is through a function here, and
 * each one checks its input against the one form it emits.  That keeps the
 * "no CR/LF in an argument" rule in one file instead of at every caller.
 */
#include "config.h"

#include <string.h>

#include "command.h"
#include "imap-error.h"

/* Longer strings go as literals: servers limit quoted string length less
 * predictably than literal size, and a literal needs no escaping. */
#define QUOTED_MAX 1024
/* LITERAL- (RFC 7888) allows non-synchronising literals up to this size. */
#define LITERAL_MINUS_MAX 4096

static struct imap_cmd_chunk *chunk_new(enum imap_cmd_chunk_kind kind,
					gboolean secret)
{
	struct imap_cmd_chunk *chunk = g_new0(struct imap_cmd_chunk, 1);

	chunk->kind = kind;
	chunk->data = g_string_new(NULL);
	chunk->secret = secret;
	return chunk;
}

static void chunk_free(gpointer p)
{
	struct imap_cmd_chunk *chunk = p;

	g_string_free(chunk->data, TRUE);
	g_free(chunk);
}

/* Returns the TEXT chunk to append to: the last one if it has the same
 * secrecy, so that a secret value sits in a chunk of its own and a plain
 * command stays one chunk. */
static GString *text_chunk(struct imap_cmd *cmd, gboolean secret)
{
	struct imap_cmd_chunk *last = NULL;

	if (cmd->chunks->len > 0)
		last = g_ptr_array_index(cmd->chunks, cmd->chunks->len - 1);
	if (last == NULL || last->kind != IMAP_CMD_CHUNK_TEXT ||
	    last->secret != secret) {
		last = chunk_new(IMAP_CMD_CHUNK_TEXT, secret);
		g_ptr_array_add(cmd->chunks, last);
	}
	return last->data;
}

static gboolean is_atom_char(unsigned char c)
{
	if (c <= 0x20 || c >= 0x7f)
		return FALSE;
	return strchr("(){%*\"\\]", c) == NULL;
}

static gboolean name_is_valid(const char *name)
{
	if (name == NULL || *name == '\0' || *name == ' ')
		return FALSE;
	for (const char *p = name; *p != '\0'; p++) {
		if (*p != ' ' && !is_atom_char((unsigned char)*p))
			return FALSE;
	}
	return TRUE;
}

/* Atoms, flag lists, sequence sets and fetch items.  Beyond ATOM-CHAR this
 * admits the list syntax "( ) [ ] SP", wildcards "* %" and a "\" that starts
 * a flag word ("\Seen"), which is all callers build from fixed keywords and
 * numbers.  Quote, "{" and control characters stay out: they would change
 * how the server tokenises the rest of the line. */
static gboolean atom_is_valid(const char *atom)
{
	if (atom == NULL || *atom == '\0')
		return FALSE;
	for (const char *p = atom; *p != '\0'; p++) {
		unsigned char c = (unsigned char)*p;

		if (c == '\\') {
			if (p != atom && p[-1] != '(' && p[-1] != ' ')
				return FALSE;
			if (!g_ascii_isalpha(p[1]))
				return FALSE;
			continue;
		}
		if (c == ' ' || is_atom_char(c))
			continue;
		if (strchr("()[]*%", c) == NULL)
			return FALSE;
	}
	return TRUE;
}

struct imap_cmd *imap_cmd_new(const char *name)
{
	struct imap_cmd *cmd = g_new0(struct imap_cmd, 1);

	cmd->chunks = g_ptr_array_new_with_free_func(chunk_free);
	if (!name_is_valid(name)) {
		/* Never send a caller's bad name; an unknown command word
		 * makes the server answer BAD, which the caller sees. */
		g_critical("imap_cmd_new: invalid command name");
		name = "X-IMAPFS-INVALID-COMMAND";
	}
	g_string_append(text_chunk(cmd, FALSE), name);
	return cmd;
}

void imap_cmd_free(struct imap_cmd *cmd)
{
	if (cmd == NULL)
		return;
	g_ptr_array_free(cmd->chunks, TRUE);
	g_free(cmd);
}

void imap_cmd_add_atom(struct imap_cmd *cmd, const char *atom)
{
	GString *text;

	g_return_if_fail(cmd != NULL);
	g_return_if_fail(atom_is_valid(atom));

	text = text_chunk(cmd, FALSE);
	g_string_append_c(text, ' ');
	g_string_append(text, atom);
}

void imap_cmd_add_atom_secret(struct imap_cmd *cmd, const char *atom)
{
	g_return_if_fail(cmd != NULL);
	g_return_if_fail(atom_is_valid(atom));

	/* The separating space stays in the plain chunk so that the secret
	 * chunk holds exactly the value. */
	g_string_append_c(text_chunk(cmd, FALSE), ' ');
	g_string_append(text_chunk(cmd, TRUE), atom);
}

void imap_cmd_add_uint64(struct imap_cmd *cmd, guint64 value)
{
	g_return_if_fail(cmd != NULL);

	g_string_append_printf(text_chunk(cmd, FALSE), " %" G_GUINT64_FORMAT,
			       value);
}

static void add_literal_chunk(struct imap_cmd *cmd, const void *data,
			      size_t len, gboolean binary, gboolean secret)
{
	struct imap_cmd_chunk *chunk;

	/* The SP goes before the literal; the connection writes "{n}". */
	g_string_append_c(text_chunk(cmd, FALSE), ' ');
	chunk = chunk_new(IMAP_CMD_CHUNK_LITERAL, secret);
	chunk->binary = binary;
	g_string_append_len(chunk->data, data, len);
	g_ptr_array_add(cmd->chunks, chunk);
}

gboolean imap_cmd_add_string(struct imap_cmd *cmd, const char *str, size_t len,
			     gboolean secret, GError **error)
{
	gboolean eight_bit = FALSE;

	g_return_val_if_fail(cmd != NULL, FALSE);
	g_return_val_if_fail(str != NULL || len == 0, FALSE);

	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)str[i];

		if (c == '\r' || c == '\n' || c == '\0') {
			g_set_error(error, IMAP_ERROR, IMAP_ERROR_INVALID,
				    "string argument contains CR, LF or NUL");
			return FALSE;
		}
		if (c >= 0x80)
			eight_bit = TRUE;
	}

	if (eight_bit || len > QUOTED_MAX) {
		add_literal_chunk(cmd, str, len, FALSE, secret);
	} else {
		g_string_append_c(text_chunk(cmd, FALSE), ' ');
		if (!imap_quote_append(text_chunk(cmd, secret), str, len))
			g_assert_not_reached();
	}
	return TRUE;
}

void imap_cmd_add_literal(struct imap_cmd *cmd, const void *data, size_t len,
			  gboolean binary)
{
	g_return_if_fail(cmd != NULL);
	g_return_if_fail(data != NULL || len == 0);
	/* A NUL in a plain literal is a protocol violation; only literal8
	 * (RFC 3516) may carry one. */
	g_return_if_fail(binary || len == 0 || memchr(data, '\0', len) == NULL);

	add_literal_chunk(cmd, data, len, binary, FALSE);
}

void imap_cmd_add_literal_source(struct imap_cmd *cmd,
				 const struct imap_literal_source *source,
				 gboolean binary)
{
	struct imap_cmd_chunk *chunk;

	g_return_if_fail(cmd != NULL);
	g_return_if_fail(source != NULL && source->read != NULL);

	g_string_append_c(text_chunk(cmd, FALSE), ' ');
	chunk = chunk_new(IMAP_CMD_CHUNK_SOURCE, FALSE);
	chunk->binary = binary;
	chunk->source = *source;
	g_ptr_array_add(cmd->chunks, chunk);
}

uint64_t imap_cmd_chunk_literal_size(const struct imap_cmd_chunk *chunk)
{
	if (chunk->kind == IMAP_CMD_CHUNK_SOURCE)
		return chunk->source.size;
	return chunk->data->len;
}

gboolean imap_cmd_literal_sync(uint64_t len, gboolean literal_plus,
			       gboolean literal_minus)
{
	return !(literal_plus || (literal_minus && len <= LITERAL_MINUS_MAX));
}

/* Appends @len bytes of text for a log line.  Text chunks hold no CR/LF by
 * construction, but a quoted string may carry other control characters and
 * a log line must stay one line whatever happens. */
static void describe_text(GString *out, const GString *text)
{
	for (gsize i = 0; i < text->len; i++) {
		unsigned char c = (unsigned char)text->str[i];

		if (c < 0x20 || c == 0x7f)
			g_string_append_printf(out, "\\x%02x", c);
		else
			g_string_append_c(out, (char)c);
	}
}

/* The literal announcement as the connection sends it: "{n}", "{n+}",
 * "~{n}" (@wire FALSE: always the synchronising form). */
static void describe_literal(GString *out, const struct imap_cmd_chunk *chunk,
			     gboolean wire, gboolean literal_plus,
			     gboolean literal_minus)
{
	uint64_t len = imap_cmd_chunk_literal_size(chunk);
	gboolean sync = !wire ||
			imap_cmd_literal_sync(len, literal_plus, literal_minus);

	g_string_append_printf(
		out,
		"%s{%" G_GUINT64_FORMAT "%s} <%" G_GUINT64_FORMAT " bytes>",
		chunk->binary ? "~" : "", len, sync ? "" : "+", len);
}

static char *describe(const struct imap_cmd *cmd, gboolean wire,
		      gboolean literal_plus, gboolean literal_minus)
{
	GString *out = g_string_new(NULL);

	for (guint i = 0; i < cmd->chunks->len; i++) {
		const struct imap_cmd_chunk *chunk =
			g_ptr_array_index(cmd->chunks, i);

		if (chunk->secret) {
			/* Not even the length of a secret literal. */
			g_string_append(out, "<redacted>");
		} else if (chunk->kind != IMAP_CMD_CHUNK_TEXT) {
			describe_literal(out, chunk, wire, literal_plus,
					 literal_minus);
		} else {
			describe_text(out, chunk->data);
		}
	}
	return g_string_free(out, FALSE);
}

char *imap_cmd_describe(const struct imap_cmd *cmd)
{
	g_return_val_if_fail(cmd != NULL, g_strdup(""));

	return describe(cmd, FALSE, FALSE, FALSE);
}

char *imap_cmd_describe_sent(const struct imap_cmd *cmd, gboolean literal_plus,
			     gboolean literal_minus)
{
	g_return_val_if_fail(cmd != NULL, g_strdup(""));

	return describe(cmd, TRUE, literal_plus, literal_minus);
}

gboolean imap_quote_append(GString *out, const char *str, size_t len)
{
	g_return_val_if_fail(out != NULL, FALSE);
	g_return_val_if_fail(str != NULL || len == 0, FALSE);

	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)str[i];

		if (c == '\r' || c == '\n' || c == '\0' || c >= 0x80)
			return FALSE;
	}
	g_string_append_c(out, '"');
	for (size_t i = 0; i < len; i++) {
		if (str[i] == '"' || str[i] == '\\')
			g_string_append_c(out, '\\');
		g_string_append_c(out, str[i]);
	}
	g_string_append_c(out, '"');
	return TRUE;
}
