/* command.h - building IMAP commands whose arguments are always safe.
 *
 * Every string that reaches the server goes through this builder and is
 * sent as an atom (only for values known to be atoms), a correctly escaped
 * quoted string, or a literal.  CR, LF and NUL are never sent inside an
 * argument: adding such a string fails with IMAP_ERROR_INVALID, so a file
 * name can never inject a command.
 *
 * A command is a list of chunks: text, and literals that follow the text.
 * The connection serialises them, choosing "{n+}" (LITERAL+/LITERAL- within
 * limits) or a synchronising "{n}" with a wait for "+" per literal.  Chunks
 * can be marked secret; imap_cmd_describe() prints them as "<redacted>" for
 * debug logs.
 *
 * The tag and the final CRLF are added by the connection, not here.
 * Threading: a command is built and sent by one thread.
 */
#ifndef IMAPFS_IMAP_COMMAND_H
#define IMAPFS_IMAP_COMMAND_H

#include <glib.h>
#include <stddef.h>

#include <stdint.h>

enum imap_cmd_chunk_kind {
	IMAP_CMD_CHUNK_TEXT,
	IMAP_CMD_CHUNK_LITERAL,
	/* A literal whose bytes come from a source (a spool file), streamed
	 * in pieces while it is sent: never whole in memory. */
	IMAP_CMD_CHUNK_SOURCE,
};

/* Where a streamed literal's bytes come from. @read copies up to @len
 * bytes at literal offset @offset into @buf and returns how many (> 0),
 * or -1 with an error (any domain; the connection reports it as
 * IMAP_ERROR_SOURCE). Called from the sending thread only. */
struct imap_literal_source {
	uint64_t size;
	gssize (*read)(void *user_data, uint64_t offset, void *buf, size_t len,
		       GError **error);
	void *user_data;
};

struct imap_cmd_chunk {
	enum imap_cmd_chunk_kind kind;
	GString *data;	 /* text, or the literal's bytes */
	gboolean secret; /* redact in logs */
	gboolean binary; /* LITERAL: send as literal8 "~{n}" */
	struct imap_literal_source source; /* CHUNK_SOURCE only */
};

struct imap_cmd {
	GPtrArray *chunks; /* of struct imap_cmd_chunk*, owned */
};

/* Starts a command whose first word is @name (e.g. "UID FETCH", "LOGIN"),
 * which must consist of atom characters and spaces. Never returns NULL. */
struct imap_cmd *imap_cmd_new(const char *name);

/* Frees the command. NULL is allowed. */
void imap_cmd_free(struct imap_cmd *cmd);

/* Appends SP and @atom verbatim. @atom must be non-empty and made of
 * ATOM-CHARs (or be a syntax fragment the caller built from numbers and
 * fixed keywords, such as "(UID RFC822.SIZE)" or "1:500"); it is a
 * programming error (g_return_if_fail) otherwise. Not for user data. */
void imap_cmd_add_atom(struct imap_cmd *cmd, const char *atom);

/* Like imap_cmd_add_atom() for a value that must be redacted in logs
 * (a SASL initial response). */
void imap_cmd_add_atom_secret(struct imap_cmd *cmd, const char *atom);

/* Appends SP and a number in decimal. */
void imap_cmd_add_uint64(struct imap_cmd *cmd, guint64 value);

/* Appends SP and @len bytes of @str as a quoted string when it is 7-bit
 * and at most 1024 bytes, otherwise as a literal.  Never as an atom.
 * Returns FALSE with IMAP_ERROR_INVALID, adding nothing, if @str contains
 * CR, LF or NUL.  @secret marks the value for redaction in logs. */
gboolean imap_cmd_add_string(struct imap_cmd *cmd, const char *str, size_t len,
			     gboolean secret, GError **error);

/* Appends SP and a literal of @len bytes (may contain any octet, including
 * CR LF; NUL only when @binary, which sends a literal8 "~{n}"). For APPEND
 * bodies. */
void imap_cmd_add_literal(struct imap_cmd *cmd, const void *data, size_t len,
			  gboolean binary);

/* Appends SP and a literal whose bytes are read from @source while the
 * command is sent (copied: @source's user_data must outlive the send).
 * @binary sends a literal8. */
void imap_cmd_add_literal_source(struct imap_cmd *cmd,
				 const struct imap_literal_source *source,
				 gboolean binary);

/* Returns a newly allocated one-line description of the command for debug
 * logs: secret chunks as "<redacted>", literals as "{n}" followed by
 * "<n bytes>", no CR/LF. */
char *imap_cmd_describe(const struct imap_cmd *cmd);

/* Like imap_cmd_describe(), with each literal announced exactly as the
 * connection sends it to a server with these capabilities ("{n+}" for a
 * non-synchronising literal): the debug trace of what goes on the wire. */
char *imap_cmd_describe_sent(const struct imap_cmd *cmd, gboolean literal_plus,
			     gboolean literal_minus);

/* TRUE if a literal of @len bytes must be synchronising ("{n}", wait for
 * "+") on a server with these capabilities: always without LITERAL+ or
 * LITERAL-; with LITERAL- only (RFC 7888) above 4096 bytes. */
gboolean imap_cmd_literal_sync(uint64_t len, gboolean literal_plus,
			       gboolean literal_minus);

/* The byte count of a LITERAL or SOURCE chunk. */
uint64_t imap_cmd_chunk_literal_size(const struct imap_cmd_chunk *chunk);

/* Appends to @out the quoted-string form of @str ("..." with \ and "
 * escaped). Returns FALSE, appending nothing, if @str has CR, LF, NUL or
 * 8-bit bytes (those need a literal). */
gboolean imap_quote_append(GString *out, const char *str, size_t len);

#endif
