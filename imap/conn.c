/* conn.c - one IMAP connection; see conn.h.
 *
 * Input is read from the transport into a small buffer and fed to the
 * incremental parser; bytes the parser did not consume stay in the buffer
 * for the next response.  After STARTTLS the buffer and the parser are
 * reset, so nothing a man-in-the-middle injected in plaintext survives the
 * handshake.
 */
#include "config.h"

#include <string.h>

#include "conn.h"
#include "reqctx.h"
#include "imap-error.h"
#include "log.h"
#include "transport.h"

#define CONN_READ_CHUNK (64 * 1024)
/* A streamed literal is read from its source and written in pieces of
 * this size: the only buffer it ever needs. */
#define CONN_SOURCE_PIECE (64 * 1024)
/* How long LOGOUT may take at shutdown. */
#define CONN_LOGOUT_TIMEOUT_MS 2000
/* Challenges one AUTHENTICATE may bring; the mechanisms we speak need at
 * most one (an error report). */
#define CONN_SASL_ROUNDS 4

struct imap_conn {
	struct imap_transport *transport;
	struct imap_parser *parser;
	/* Unparsed input: inbuf[inpos..inbuf->len). */
	GByteArray *inbuf;
	size_t inpos;
	int timeout_ms;
	unsigned int next_tag;
	/* Upper-case capability names; NULL while unknown. */
	GHashTable *caps;
	gboolean broken;
	char *bye_text;
	/* The text of the last continuation of a SASL exchange. */
	char *sasl_challenge;
	/* The tag of the IDLE in progress (NULL: none), and the server's
	 * completion of it if it ended the IDLE by itself. */
	char *idle_tag;
	struct imap_response *idle_done;
};

static void conn_set_caps(struct imap_conn *conn, const char *const *words,
			  size_t n)
{
	size_t i;

	if (conn->caps != NULL)
		g_hash_table_destroy(conn->caps);
	conn->caps =
		g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
	for (i = 0; i < n; i++) {
		if (words[i] != NULL && *words[i] != '\0')
			g_hash_table_add(conn->caps,
					 g_ascii_strup(words[i], -1));
	}
}

static void conn_caps_from_text(struct imap_conn *conn, const char *text)
{
	char **words = g_strsplit(text != NULL ? text : "", " ", -1);

	conn_set_caps(conn, (const char *const *)words, g_strv_length(words));
	g_strfreev(words);
}

static void conn_caps_from_args(struct imap_conn *conn,
				const struct imap_response *resp)
{
	const char **words = g_new0(const char *, resp->count + 1);
	size_t i;

	for (i = 0; i < resp->count; i++) {
		const char *w = NULL;

		if (imap_arg_get_atom(&resp->args[i], &w))
			words[i] = w;
	}
	conn_set_caps(conn, words, resp->count);
	g_free(words);
}

gboolean imap_conn_has_cap(const struct imap_conn *conn, const char *cap)
{
	char *up;
	gboolean found;

	if (conn->caps == NULL)
		return FALSE;
	up = g_ascii_strup(cap, -1);
	found = g_hash_table_contains(conn->caps, up);
	g_free(up);
	return found;
}

const char *imap_conn_cap_value(const struct imap_conn *conn, const char *name)
{
	GHashTableIter iter;
	gpointer key;
	size_t len = strlen(name);

	if (conn->caps == NULL)
		return NULL;
	g_hash_table_iter_init(&iter, conn->caps);
	while (g_hash_table_iter_next(&iter, &key, NULL)) {
		const char *cap = key;

		if (g_ascii_strncasecmp(cap, name, len) == 0 && cap[len] == '=')
			return cap + len + 1;
	}
	return NULL;
}

gboolean imap_conn_is_broken(const struct imap_conn *conn)
{
	return conn->broken;
}

void imap_conn_set_literal_sink(struct imap_conn *conn,
				const struct imap_literal_sink *sink)
{
	imap_parser_set_literal_sink(conn->parser, sink);
}

void imap_conn_abort(struct imap_conn *conn)
{
	imap_transport_shutdown(conn->transport);
}

static void conn_fail(struct imap_conn *conn, GError *err, GError **error)
{
	/* An interrupted wait leaves a reply half read: as unusable as a
	 * fatal error, though it says nothing about the server. */
	if (imap_error_is_fatal(err) ||
	    g_error_matches(err, IMAP_ERROR, IMAP_ERROR_CANCELLED))
		conn->broken = TRUE;
	g_propagate_error(error, err);
}

/* A quoted string as the wire carries it: escaped with imap_quote_append()
 * when that form exists; otherwise (8-bit or control bytes, which a server
 * may send) with \ and " escaped, controls as \xNN so the line stays one
 * line, and 8-bit bytes as they are. */
static void conn_trace_string(GString *out, const char *str, size_t len)
{
	if (imap_quote_append(out, str, len))
		return;
	g_string_append_c(out, '"');
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)str[i];

		if (c == '"' || c == '\\')
			g_string_append_c(out, '\\');
		if (c < 0x20 || c == 0x7f)
			g_string_append_printf(out, "\\x%02x", c);
		else
			g_string_append_c(out, (char)c);
	}
	g_string_append_c(out, '"');
}

static void conn_trace_arg(GString *out, const struct imap_arg *arg)
{
	size_t i;

	switch (arg->type) {
	case IMAP_ARG_NIL:
		g_string_append(out, "NIL");
		break;
	case IMAP_ARG_ATOM:
		g_string_append_len(out, arg->str, arg->len);
		break;
	case IMAP_ARG_STRING:
		conn_trace_string(out, arg->str, MIN(arg->len, 200));
		break;
	case IMAP_ARG_LITERAL:
		/* Literal contents are message data: never logged. */
		g_string_append_printf(out, "%s{%" G_GUINT64_FORMAT "}",
				       arg->literal8 ? "~" : "",
				       arg->streamed ? arg->streamed_size
						     : (guint64)arg->len);
		break;
	case IMAP_ARG_LIST:
		g_string_append_c(out, '(');
		for (i = 0; i < arg->count && out->len < 1000; i++) {
			if (i > 0)
				g_string_append_c(out, ' ');
			conn_trace_arg(out, &arg->list[i]);
		}
		g_string_append_c(out, ')');
		break;
	}
}

char *imap_conn_describe_response(const struct imap_response *resp)
{
	static const char *const status[] = {"",    "OK",  "NO",
					     "BAD", "BYE", "PREAUTH"};
	GString *out = g_string_new(NULL);
	size_t i;

	if (resp->kind == IMAP_RESPONSE_CONTINUATION) {
		g_string_append(out, "+ ...");
	} else {
		g_string_append(out, resp->kind == IMAP_RESPONSE_TAGGED
					     ? resp->tag
					     : "*");
		if (resp->status != IMAP_STATUS_NONE) {
			g_string_append_printf(out, " %s",
					       status[resp->status]);
			if (resp->code != NULL)
				g_string_append_printf(
					out, " [%s%s%s]", resp->code,
					resp->code_args ? " " : "",
					resp->code_args ? resp->code_args : "");
			g_string_append_printf(out, " %s", resp->text);
		} else {
			if (resp->has_number)
				g_string_append_printf(out, " %u",
						       resp->number);
			g_string_append_printf(out, " %s", resp->keyword);
			for (i = 0; i < resp->count && out->len < 1000; i++) {
				g_string_append_c(out, ' ');
				conn_trace_arg(out, &resp->args[i]);
			}
		}
	}
	if (out->len > 1000) {
		g_string_truncate(out, 1000);
		g_string_append(out, "...");
	}
	return g_string_free(out, FALSE);
}

static void conn_trace_response(const struct imap_response *resp)
{
	char *desc;

	if (!imapfs_log_enabled(IMAPFS_LOG_DEBUG))
		return;
	desc = imap_conn_describe_response(resp);
	imapfs_debug("S: %s", desc);
	g_free(desc);
}

/* A complete response from what is already buffered, or NULL (the bytes
 * went into the parser's partial state). */
static struct imap_response *conn_take_buffered(struct imap_conn *conn,
						GError **error)
{
	GError *err = NULL;

	while (conn->inpos < conn->inbuf->len) {
		size_t consumed = 0;
		enum imap_parse_result res = imap_parser_feed(
			conn->parser, conn->inbuf->data + conn->inpos,
			conn->inbuf->len - conn->inpos, &consumed, &err);

		conn->inpos += consumed;
		if (res == IMAP_PARSE_ERROR) {
			conn_fail(conn, err, error);
			return NULL;
		}
		if (res == IMAP_PARSE_DONE) {
			struct imap_response *resp =
				imap_parser_take(conn->parser);

			conn_trace_response(resp);
			return resp;
		}
	}
	return NULL;
}

/* Reads until one whole response has been parsed. */
static struct imap_response *conn_read_response(struct imap_conn *conn,
						int timeout_ms, GError **error)
{
	GError *err = NULL;

	if (conn->broken) {
		g_set_error(error, IMAP_ERROR, IMAP_ERROR_IO,
			    "connection is broken");
		return NULL;
	}
	for (;;) {
		GError *perr = NULL;
		struct imap_response *resp = conn_take_buffered(conn, &perr);
		gssize n;

		if (perr != NULL) {
			g_propagate_error(error, perr);
			return NULL;
		}
		if (resp != NULL)
			return resp;
		/* Everything buffered was consumed: refill from scratch. */
		g_byte_array_set_size(conn->inbuf, CONN_READ_CHUNK);
		conn->inpos = 0;
		n = imap_transport_read(conn->transport, conn->inbuf->data,
					CONN_READ_CHUNK, timeout_ms, &err);
		if (n < 0) {
			g_byte_array_set_size(conn->inbuf, 0);
			conn_fail(conn, err, error);
			return NULL;
		}
		g_byte_array_set_size(conn->inbuf, n);
	}
}

/* Handles responses the connection owns. Returns TRUE if @resp was a BYE
 * (the connection is then broken). */
static gboolean conn_handle_own(struct imap_conn *conn,
				const struct imap_response *resp)
{
	if (resp->code != NULL && strcmp(resp->code, "CAPABILITY") == 0)
		conn_caps_from_text(conn, resp->code_args);
	if (resp->kind == IMAP_RESPONSE_UNTAGGED &&
	    resp->status == IMAP_STATUS_NONE && resp->keyword != NULL &&
	    strcmp(resp->keyword, "CAPABILITY") == 0)
		conn_caps_from_args(conn, resp);
	if (resp->kind == IMAP_RESPONSE_UNTAGGED &&
	    resp->status == IMAP_STATUS_BYE) {
		/* The code stays in the text: "[THROTTLED]" or
		 * "[UNAVAILABLE]" tell imap_pool_run() to back off. */
		g_free(conn->bye_text);
		conn->bye_text = g_strdup_printf(
			"%s%s%s%s", resp->code != NULL ? "[" : "",
			resp->code != NULL ? resp->code : "",
			resp->code != NULL ? "] " : "",
			resp->text != NULL ? resp->text : "");
		return TRUE;
	}
	return FALSE;
}

static gboolean conn_write(struct imap_conn *conn, GString *out, int timeout_ms,
			   GError **error)
{
	GError *err = NULL;

	if (!imap_transport_write_all(conn->transport, out->str, out->len,
				      timeout_ms, &err)) {
		conn_fail(conn, err, error);
		return FALSE;
	}
	g_string_truncate(out, 0);
	return TRUE;
}

/* RFC 5530 response codes (and a few older ones) -> IMAP_ERROR codes. */
static const struct {
	const char *code;
	int error;
} conn_codes[] = {
	{"NONEXISTENT", IMAP_ERROR_NONEXISTENT},
	{"TRYCREATE", IMAP_ERROR_NONEXISTENT},
	{"NOPERM", IMAP_ERROR_NOPERM},
	{"READ-ONLY", IMAP_ERROR_NOPERM},
	{"OVERQUOTA", IMAP_ERROR_OVERQUOTA},
	{"LIMIT", IMAP_ERROR_OVERQUOTA},
	{"AUTHENTICATIONFAILED", IMAP_ERROR_AUTH},
	{"AUTHORIZATIONFAILED", IMAP_ERROR_AUTH},
	{"EXPIRED", IMAP_ERROR_AUTH},
	{"TOOBIG", IMAP_ERROR_TOOBIG},
	{"CANNOT", IMAP_ERROR_CANNOT},
	{"ALREADYEXISTS", IMAP_ERROR_EXISTS},
	{"INUSE", IMAP_ERROR_INUSE},
	{"HASCHILDREN", IMAP_ERROR_NOTEMPTY},
	{"MODIFIED", IMAP_ERROR_MODIFIED},
	{"THROTTLED", IMAP_ERROR_THROTTLED},
	{"UNAVAILABLE", IMAP_ERROR_UNAVAILABLE},
};

static void conn_error_from_tagged(const struct imap_response *resp,
				   GError **error)
{
	int code = IMAP_ERROR_NO;
	const char *c = resp->code != NULL ? resp->code : "";

	if (resp->status == IMAP_STATUS_BAD) {
		code = IMAP_ERROR_BAD;
	} else {
		for (size_t i = 0; i < G_N_ELEMENTS(conn_codes); i++) {
			if (strcmp(c, conn_codes[i].code) == 0)
				code = conn_codes[i].error;
		}
		/* Microsoft 365 throttles with a plain NO and says so only in
		 * its text. */
		if (code == IMAP_ERROR_NO && resp->text != NULL &&
		    strstr(resp->text, "is throttled") != NULL)
			code = IMAP_ERROR_THROTTLED;
	}
	g_set_error(error, IMAP_ERROR, code, "%s%s%s%s",
		    resp->code != NULL ? "[" : "", resp->code ? resp->code : "",
		    resp->code != NULL ? "] " : "",
		    resp->text != NULL ? resp->text : "");
}

/* What conn_wait() returns at. */
enum conn_wait_for {
	CONN_WAIT_TAGGED,	/* the tagged completion only */
	CONN_WAIT_LITERAL_CONT, /* a continuation; completing is an error */
	/* a SASL challenge (continuation) or the completion, whichever
	 * comes: conn->sasl_challenge gets the continuation's text */
	CONN_WAIT_SASL,
};

/* Reads responses until the tagged completion for @tag, or, if @want
 * allows, until a continuation (returns TRUE with *tagged_r NULL). */
static gboolean conn_wait(struct imap_conn *conn, const char *tag,
			  enum conn_wait_for want, imap_untagged_fn *cb,
			  void *user_data, struct imap_response **tagged_r,
			  GError **error)
{
	gboolean want_cont = want == CONN_WAIT_LITERAL_CONT;

	for (;;) {
		struct imap_response *resp =
			conn_read_response(conn, conn->timeout_ms, error);

		if (resp == NULL)
			return FALSE;
		if (resp->kind == IMAP_RESPONSE_CONTINUATION) {
			if (want == CONN_WAIT_SASL) {
				g_free(conn->sasl_challenge);
				conn->sasl_challenge = g_strdup(
					resp->text != NULL ? resp->text : "");
			}
			imap_response_free(resp);
			if (want != CONN_WAIT_TAGGED)
				return TRUE;
			/* A continuation we did not ask for: the server
			 * misread our command stream. */
			conn_fail(conn,
				  g_error_new(IMAP_ERROR, IMAP_ERROR_PROTOCOL,
					      "unexpected continuation"),
				  error);
			return FALSE;
		}
		if (resp->kind == IMAP_RESPONSE_TAGGED) {
			gboolean ok;

			conn_handle_own(conn, resp);
			if (strcmp(resp->tag, tag) != 0) {
				conn_fail(conn,
					  g_error_new(IMAP_ERROR,
						      IMAP_ERROR_PROTOCOL,
						      "response for unknown "
						      "tag"),
					  error);
				imap_response_free(resp);
				return FALSE;
			}
			ok = resp->status == IMAP_STATUS_OK;
			if (!ok) {
				conn_error_from_tagged(resp, error);
			} else if (want_cont) {
				/* Completed before we sent the literal: the
				 * stream no longer matches the command. */
				ok = FALSE;
				conn_fail(conn,
					  g_error_new(IMAP_ERROR,
						      IMAP_ERROR_PROTOCOL,
						      "command completed "
						      "before its literal was "
						      "sent"),
					  error);
			}
			if (tagged_r != NULL)
				*tagged_r = resp;
			else
				imap_response_free(resp);
			return ok;
		}
		if (conn_handle_own(conn, resp)) {
			/* BYE: the tagged reply will not come. LOGOUT
			 * expects it, everyone else failed. */
			conn->broken = TRUE;
			g_set_error(error, IMAP_ERROR, IMAP_ERROR_BYE,
				    "server closed the connection: %s",
				    conn->bye_text);
			imap_response_free(resp);
			return FALSE;
		}
		if (cb != NULL)
			cb(resp, user_data);
		imap_response_free(resp);
	}
}

static char *conn_next_tag(struct imap_conn *conn)
{
	return g_strdup_printf("a%u", ++conn->next_tag);
}

/* Writes @src's bytes in pieces of CONN_SOURCE_PIECE, never more in memory.
 * A failing or short source breaks the connection: the literal it
 * announced can no longer be completed. */
static gboolean conn_send_source(struct imap_conn *conn,
				 const struct imap_literal_source *src,
				 GError **error)
{
	char *buf = g_malloc(MAX(MIN(src->size, CONN_SOURCE_PIECE), 1));
	uint64_t off = 0;
	gboolean ok = TRUE;

	while (ok && off < src->size) {
		size_t want = (size_t)MIN(src->size - off, CONN_SOURCE_PIECE);
		GError *err = NULL;
		gssize n = src->read(src->user_data, off, buf, want, &err);

		if (n <= 0 || (size_t)n > want) {
			conn->broken = TRUE;
			g_set_error(error, IMAP_ERROR, IMAP_ERROR_SOURCE,
				    "cannot read the data to send at offset "
				    "%" G_GUINT64_FORMAT ": %s",
				    off,
				    err != NULL ? err->message
				    : n == 0	? "unexpected end of data"
						: "source misbehaved");
			g_clear_error(&err);
			ok = FALSE;
		} else if (!imap_transport_write_all(conn->transport, buf,
						     (size_t)n,
						     conn->timeout_ms, &err)) {
			conn_fail(conn, err, error);
			ok = FALSE;
		}
		off += (uint64_t)MAX(n, 0);
	}
	g_free(buf);
	return ok;
}

/* The command's name for messages: its first word, two for "UID ...". */
static char *conn_cmd_name(const struct imap_cmd *cmd)
{
	const struct imap_cmd_chunk *first = cmd->chunks->pdata[0];
	const char *text = first->data->str;
	const char *end = strchr(text, ' ');

	if (end != NULL && strncmp(text, "UID ", 4) == 0)
		end = strchr(end + 1, ' ');
	return end != NULL ? g_strndup(text, (gsize)(end - text))
			   : g_strdup(text);
}

/* The answers of a SASL exchange (imap_conn_run_sasl()). */
struct conn_sasl {
	const char *initial;
	imap_sasl_challenge_fn *challenge_fn;
	void *user_data;
};

/* After AUTHENTICATE was sent: answers each continuation (the first with
 * @sasl->initial when not NULL, the others through the challenge
 * function) until the tagged completion, in @out (wiped by the caller).
 * A server that keeps challenging is cut off after CONN_SASL_ROUNDS. */
static gboolean conn_sasl_rounds(struct imap_conn *conn, const char *tag,
				 const struct conn_sasl *sasl, GString *out,
				 struct imap_response **tagged_r,
				 GError **error)
{
	const char *initial = sasl->initial;

	for (int round = 0;; round++) {
		struct imap_response *tagged = NULL;
		char *answer;

		if (!conn_wait(conn, tag, CONN_WAIT_SASL, NULL, NULL, &tagged,
			       error)) {
			if (tagged_r != NULL)
				*tagged_r = tagged;
			else
				imap_response_free(tagged);
			return FALSE;
		}
		if (tagged != NULL) {
			if (tagged_r != NULL)
				*tagged_r = tagged;
			else
				imap_response_free(tagged);
			return TRUE;
		}
		if (round >= CONN_SASL_ROUNDS) {
			conn_fail(conn,
				  g_error_new(IMAP_ERROR, IMAP_ERROR_PROTOCOL,
					      "server sent more than %d SASL "
					      "challenges",
					      CONN_SASL_ROUNDS),
				  error);
			return FALSE;
		}
		if (initial != NULL) {
			answer = g_strdup(initial);
			initial = NULL;
		} else if (sasl->challenge_fn != NULL) {
			answer = sasl->challenge_fn(conn->sasl_challenge,
						    sasl->user_data);
		} else {
			answer = g_strdup("*"); /* cancel (RFC 3501) */
		}
		imapfs_debug("C: <redacted SASL response>");
		g_string_append(out, answer);
		g_string_append(out, "\r\n");
		explicit_bzero(answer, strlen(answer));
		g_free(answer);
		if (!conn_write(conn, out, conn->timeout_ms, error))
			return FALSE;
	}
}

/* Sends everything of @cmd, then runs the SASL exchange if @sasl is not
 * NULL, and waits for completion.  @once: see imap_conn_run_once(). */
static gboolean conn_run_full(struct imap_conn *conn,
			      const struct imap_cmd *cmd,
			      const struct conn_sasl *sasl, gboolean once,
			      imap_untagged_fn *cb, void *user_data,
			      struct imap_response **tagged_r, GError **error)
{
	gboolean lit_plus = imap_conn_has_cap(conn, "LITERAL+");
	gboolean lit_minus = imap_conn_has_cap(conn, "LITERAL-");
	char *tag = conn_next_tag(conn);
	GString *out = g_string_new(tag);
	/* Set before the first write: from then on the server may have
	 * (part of) the command. */
	gboolean sent = FALSE;
	GError *err = NULL;
	gboolean ok = FALSE;
	guint i;

	if (tagged_r != NULL)
		*tagged_r = NULL;
	if (conn->broken) {
		g_set_error(&err, IMAP_ERROR, IMAP_ERROR_IO,
			    "connection is broken");
		goto out;
	}
	/* Interrupted or out of time before anything of a non-idempotent
	 * command went out: it fails here, unsent; after this it is never
	 * abandoned for an interrupt (reqctx.h). */
	if (once && !imap_reqctx_begin_send(&err))
		goto out;
	if (imapfs_log_enabled(IMAPFS_LOG_DEBUG)) {
		char *desc = imap_cmd_describe_sent(cmd, lit_plus, lit_minus);

		imapfs_debug("C: %s %s", tag, desc);
		g_free(desc);
	}
	g_string_append_c(out, ' ');
	for (i = 0; i < cmd->chunks->len; i++) {
		const struct imap_cmd_chunk *ch = cmd->chunks->pdata[i];
		uint64_t len;
		gboolean sync;

		if (ch->kind == IMAP_CMD_CHUNK_TEXT) {
			g_string_append_len(out, ch->data->str, ch->data->len);
			continue;
		}
		len = imap_cmd_chunk_literal_size(ch);
		sync = imap_cmd_literal_sync(len, lit_plus, lit_minus);
		g_string_append_printf(out, "%s{%" G_GUINT64_FORMAT "%s}\r\n",
				       ch->binary ? "~" : "", len,
				       sync ? "" : "+");
		if (sync) {
			/* Only one literal announcement may wait for a
			 * continuation at a time (isync's rule). */
			sent = TRUE;
			if (!conn_write(conn, out, conn->timeout_ms, &err) ||
			    !conn_wait(conn, tag, CONN_WAIT_LITERAL_CONT, cb,
				       user_data, tagged_r, &err))
				goto out;
		}
		if (ch->kind == IMAP_CMD_CHUNK_LITERAL) {
			g_string_append_len(out, ch->data->str, ch->data->len);
			continue;
		}
		sent = TRUE;
		if (!conn_write(conn, out, conn->timeout_ms, &err) ||
		    !conn_send_source(conn, &ch->source, &err))
			goto out;
	}
	g_string_append(out, "\r\n");
	sent = TRUE;
	if (!conn_write(conn, out, conn->timeout_ms, &err))
		goto out;
	if (sasl != NULL)
		ok = conn_sasl_rounds(conn, tag, sasl, out, tagged_r, &err);
	else
		ok = conn_wait(conn, tag, CONN_WAIT_TAGGED, cb, user_data,
			       tagged_r, &err);
out:
	if (!ok && once && sent &&
	    (imap_error_is_fatal(err) ||
	     g_error_matches(err, IMAP_ERROR, IMAP_ERROR_CANCELLED)) &&
	    err->code != IMAP_ERROR_SOURCE &&
	    err->code != IMAP_ERROR_UNKNOWN_OUTCOME) {
		char *name = conn_cmd_name(cmd);
		GError *unknown = g_error_new(
			IMAP_ERROR, IMAP_ERROR_UNKNOWN_OUTCOME,
			"outcome of %s unknown: the connection failed after "
			"it was sent and before the server answered (%s)",
			name, err->message);

		conn->broken = TRUE;
		g_free(name);
		g_error_free(err);
		err = unknown;
		imap_reqctx_grant_grace();
	}
	if (err != NULL)
		g_propagate_error(error, err);
	/* The buffer may have held a secret (a LOGIN password, a SASL
	 * response): wipe it before it goes back to the allocator. */
	memset(out->str, 0, out->allocated_len);
	g_string_free(out, TRUE);
	g_free(tag);
	return ok;
}

gboolean imap_conn_run(struct imap_conn *conn, const struct imap_cmd *cmd,
		       imap_untagged_fn *cb, void *user_data,
		       struct imap_response **tagged_r, GError **error)
{
	return conn_run_full(conn, cmd, NULL, FALSE, cb, user_data, tagged_r,
			     error);
}

gboolean imap_conn_run_once(struct imap_conn *conn, const struct imap_cmd *cmd,
			    imap_untagged_fn *cb, void *user_data,
			    struct imap_response **tagged_r, GError **error)
{
	return conn_run_full(conn, cmd, NULL, TRUE, cb, user_data, tagged_r,
			     error);
}

gboolean imap_conn_run_sasl(struct imap_conn *conn, const struct imap_cmd *cmd,
			    const char *initial,
			    imap_sasl_challenge_fn *challenge_fn,
			    void *user_data, struct imap_response **tagged_r,
			    GError **error)
{
	struct conn_sasl sasl = {initial, challenge_fn, user_data};

	return conn_run_full(conn, cmd, &sasl, FALSE, NULL, NULL, tagged_r,
			     error);
}

gboolean imap_conn_refresh_caps(struct imap_conn *conn, GError **error)
{
	struct imap_cmd *cmd = imap_cmd_new("CAPABILITY");
	gboolean ok;

	if (conn->caps != NULL) {
		g_hash_table_destroy(conn->caps);
		conn->caps = NULL;
	}
	ok = imap_conn_run(conn, cmd, NULL, NULL, NULL, error);
	imap_cmd_free(cmd);
	if (ok && conn->caps == NULL) {
		g_set_error(error, IMAP_ERROR, IMAP_ERROR_PROTOCOL,
			    "server sent no CAPABILITY");
		return FALSE;
	}
	return ok;
}

/* Reads the greeting: OK (maybe with capabilities), PREAUTH or BYE. */
static gboolean conn_read_greeting(struct imap_conn *conn, GError **error)
{
	struct imap_response *resp =
		conn_read_response(conn, conn->timeout_ms, error);
	gboolean ok = FALSE;

	if (resp == NULL)
		return FALSE;
	if (resp->kind != IMAP_RESPONSE_UNTAGGED ||
	    resp->status == IMAP_STATUS_NONE) {
		conn_fail(conn,
			  g_error_new(IMAP_ERROR, IMAP_ERROR_PROTOCOL,
				      "server greeting is not an IMAP "
				      "greeting"),
			  error);
	} else if (resp->status == IMAP_STATUS_BYE) {
		conn->broken = TRUE;
		/* A connection limit is not a dead server: the pool uses
		 * fewer connections then. */
		g_set_error(
			error, IMAP_ERROR,
			imap_refusal_is_connection_limit(resp->code, resp->text)
				? IMAP_ERROR_UNAVAILABLE
				: IMAP_ERROR_BYE,
			"server refused the connection: %s", resp->text);
	} else if (resp->status == IMAP_STATUS_PREAUTH) {
		/* PREAUTH before TLS would skip authentication on a
		 * channel we cannot trust. */
		conn->broken = TRUE;
		g_set_error(error, IMAP_ERROR, IMAP_ERROR_UNSUPPORTED,
			    "server sent PREAUTH greeting; refusing");
	} else if (resp->status != IMAP_STATUS_OK) {
		conn_fail(conn,
			  g_error_new(IMAP_ERROR, IMAP_ERROR_PROTOCOL,
				      "unexpected server greeting"),
			  error);
	} else {
		conn_handle_own(conn, resp);
		ok = TRUE;
	}
	imap_response_free(resp);
	return ok;
}

static gboolean conn_starttls(struct imap_conn *conn,
			      const struct imap_conn_params *params,
			      GError **error)
{
	struct imap_cmd *cmd;
	GError *err = NULL;
	gboolean ok;

	if (conn->caps == NULL && !imap_conn_refresh_caps(conn, error))
		return FALSE;
	if (!imap_conn_has_cap(conn, "STARTTLS")) {
		g_set_error(error, IMAP_ERROR, IMAP_ERROR_UNSUPPORTED,
			    "server does not offer STARTTLS; refusing to "
			    "authenticate without TLS (use imaps:// if the "
			    "server has implicit TLS)");
		return FALSE;
	}
	cmd = imap_cmd_new("STARTTLS");
	ok = imap_conn_run(conn, cmd, NULL, NULL, NULL, error);
	imap_cmd_free(cmd);
	if (!ok)
		return FALSE;
	/* Anything already buffered arrived in plaintext after the OK and
	 * may be injected: drop it, and forget the plaintext capabilities. */
	g_byte_array_set_size(conn->inbuf, 0);
	conn->inpos = 0;
	imap_parser_reset(conn->parser);
	g_clear_pointer(&conn->caps, g_hash_table_destroy);
	if (!imap_transport_start_tls(conn->transport, params->host,
				      params->cafile, params->timeout_ms,
				      &err)) {
		conn_fail(conn, err, error);
		conn->broken = TRUE;
		return FALSE;
	}
	return TRUE;
}

struct imap_conn *imap_conn_connect(const struct imap_conn_params *params,
				    GError **error)
{
	struct imap_parser_limits limits = IMAP_PARSER_DEFAULT_LIMITS;
	struct imap_conn *conn;
	GError *err = NULL;

	conn = g_new0(struct imap_conn, 1);
	conn->timeout_ms = params->timeout_ms;
	conn->inbuf = g_byte_array_sized_new(CONN_READ_CHUNK);
	conn->parser = imap_parser_new(params->limits != NULL ? params->limits
							      : &limits);
	conn->transport = imap_transport_connect(params->host, params->port,
						 params->timeout_ms, &err);
	if (conn->transport == NULL) {
		g_propagate_prefixed_error(
			error, err, "cannot connect to %s:%u: ", params->host,
			params->port);
		goto fail;
	}
	if (params->implicit_tls &&
	    !imap_transport_start_tls(conn->transport, params->host,
				      params->cafile, params->timeout_ms,
				      error)) {
		conn->broken = TRUE;
		goto fail;
	}
	if (!conn_read_greeting(conn, error))
		goto fail;
	if (!params->implicit_tls && !conn_starttls(conn, params, error))
		goto fail;
	if (conn->caps == NULL && !imap_conn_refresh_caps(conn, error))
		goto fail;
	if (!imap_conn_has_cap(conn, "IMAP4REV1") &&
	    !imap_conn_has_cap(conn, "IMAP4REV2")) {
		g_set_error(error, IMAP_ERROR, IMAP_ERROR_UNSUPPORTED,
			    "server does not speak IMAP4rev1");
		goto fail;
	}
	return conn;
fail:
	conn->broken = TRUE;
	imap_conn_free(conn);
	return NULL;
}

void imap_conn_free(struct imap_conn *conn)
{
	if (conn == NULL)
		return;
	if (!conn->broken && conn->transport != NULL) {
		struct imap_cmd *cmd = imap_cmd_new("LOGOUT");

		conn->timeout_ms = CONN_LOGOUT_TIMEOUT_MS;
		/* LOGOUT ends with BYE then OK; a BYE error is expected. */
		imap_conn_run(conn, cmd, NULL, NULL, NULL, NULL);
		imap_cmd_free(cmd);
	}
	imap_transport_free(conn->transport);
	imap_parser_free(conn->parser);
	g_byte_array_free(conn->inbuf, TRUE);
	if (conn->caps != NULL)
		g_hash_table_destroy(conn->caps);
	g_free(conn->bye_text);
	g_free(conn->sasl_challenge);
	g_free(conn->idle_tag);
	imap_response_free(conn->idle_done);
	g_free(conn);
}

/* ---- listening (IDLE) ---- */

gboolean imap_conn_idling(const struct imap_conn *conn)
{
	return conn->idle_tag != NULL && conn->idle_done == NULL;
}

gboolean imap_conn_idle_begin(struct imap_conn *conn, imap_untagged_fn *cb,
			      void *user_data, GError **error)
{
	char *tag;
	GString *out;
	struct imap_response *tagged = NULL;
	gboolean ok;

	if (conn->broken) {
		g_set_error(error, IMAP_ERROR, IMAP_ERROR_IO,
			    "connection is broken");
		return FALSE;
	}
	g_return_val_if_fail(conn->idle_tag == NULL, FALSE);
	tag = conn_next_tag(conn);
	out = g_string_new(NULL);
	g_string_printf(out, "%s IDLE\r\n", tag);
	imapfs_debug("C: %s IDLE", tag);
	ok = conn_write(conn, out, conn->timeout_ms, error);
	g_string_free(out, TRUE);
	/* The continuation, or a tagged refusal (then FALSE with its
	 * error), whichever comes. */
	if (ok)
		ok = conn_wait(conn, tag, CONN_WAIT_SASL, cb, user_data,
			       &tagged, error);
	if (ok && tagged != NULL) {
		/* Completed with OK without ever idling: nothing to end. */
		imap_response_free(tagged);
		g_free(tag);
		g_set_error(error, IMAP_ERROR, IMAP_ERROR_PROTOCOL,
			    "IDLE completed at once");
		return FALSE;
	}
	imap_response_free(tagged);
	if (!ok) {
		g_free(tag);
		return FALSE;
	}
	conn->idle_tag = tag;
	return TRUE;
}

/* One response that arrived while listening. FALSE with @error on BYE
 * or a response that has no place here. */
static gboolean conn_listen_one(struct imap_conn *conn,
				struct imap_response *resp,
				imap_untagged_fn *cb, void *user_data,
				GError **error)
{
	if (resp->kind == IMAP_RESPONSE_TAGGED) {
		conn_handle_own(conn, resp);
		if (conn->idle_tag == NULL || conn->idle_done != NULL ||
		    strcmp(resp->tag, conn->idle_tag) != 0) {
			imap_response_free(resp);
			conn_fail(conn,
				  g_error_new(IMAP_ERROR, IMAP_ERROR_PROTOCOL,
					      "response for unknown tag"),
				  error);
			return FALSE;
		}
		conn->idle_done = resp; /* the server ended the IDLE */
		return TRUE;
	}
	if (resp->kind == IMAP_RESPONSE_CONTINUATION) {
		imap_response_free(resp);
		conn_fail(conn,
			  g_error_new(IMAP_ERROR, IMAP_ERROR_PROTOCOL,
				      "unexpected continuation"),
			  error);
		return FALSE;
	}
	if (conn_handle_own(conn, resp)) {
		conn->broken = TRUE;
		g_set_error(error, IMAP_ERROR, IMAP_ERROR_BYE,
			    "server closed the connection: %s", conn->bye_text);
		imap_response_free(resp);
		return FALSE;
	}
	if (cb != NULL)
		cb(resp, user_data);
	imap_response_free(resp);
	return TRUE;
}

enum imap_conn_listen_result imap_conn_listen(struct imap_conn *conn,
					      int wake_fd, int timeout_ms,
					      imap_untagged_fn *cb,
					      void *user_data, GError **error)
{
	struct imap_response *resp;
	GError *err = NULL;
	gboolean any = FALSE;

	if (conn->broken) {
		g_set_error(error, IMAP_ERROR, IMAP_ERROR_IO,
			    "connection is broken");
		return IMAP_CONN_LISTEN_ERROR;
	}
	for (;;) {
		resp = conn_take_buffered(conn, &err);
		if (resp == NULL && err != NULL) {
			g_propagate_error(error, err);
			return IMAP_CONN_LISTEN_ERROR;
		}
		if (resp == NULL && any)
			return IMAP_CONN_LISTEN_DATA;
		if (resp == NULL) {
			enum imap_transport_event ev =
				imap_transport_wait_input(conn->transport,
							  wake_fd, timeout_ms,
							  &err);

			if (ev == IMAP_TRANSPORT_ERROR) {
				conn_fail(conn, err, error);
				return IMAP_CONN_LISTEN_ERROR;
			}
			if (ev == IMAP_TRANSPORT_QUIET)
				return IMAP_CONN_LISTEN_QUIET;
			if (ev == IMAP_TRANSPORT_WOKEN)
				return IMAP_CONN_LISTEN_WOKEN;
			resp = conn_read_response(conn, conn->timeout_ms,
						  error);
			if (resp == NULL)
				return IMAP_CONN_LISTEN_ERROR;
		}
		if (!conn_listen_one(conn, resp, cb, user_data, error))
			return IMAP_CONN_LISTEN_ERROR;
		any = TRUE;
	}
}

gboolean imap_conn_idle_end(struct imap_conn *conn, imap_untagged_fn *cb,
			    void *user_data, GError **error)
{
	struct imap_response *tagged = conn->idle_done;
	char *tag = conn->idle_tag;
	gboolean ok = TRUE;

	if (tag == NULL)
		return TRUE;
	conn->idle_tag = NULL;
	conn->idle_done = NULL;
	if (tagged == NULL) {
		GString *out = g_string_new("DONE\r\n");

		imapfs_debug("C: DONE");
		ok = conn_write(conn, out, conn->timeout_ms, error);
		g_string_free(out, TRUE);
		if (ok)
			ok = conn_wait(conn, tag, CONN_WAIT_TAGGED, cb,
				       user_data, NULL, error);
	} else if (tagged->status != IMAP_STATUS_OK) {
		conn_error_from_tagged(tagged, error);
		ok = FALSE;
	}
	imap_response_free(tagged);
	g_free(tag);
	return ok;
}
