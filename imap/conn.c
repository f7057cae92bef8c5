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
#include "imap-error.h"
#include "log.h"
#include "transport.h"

#define CONN_READ_CHUNK (64 * 1024)
/* LITERAL- (RFC 7888) allows non-synchronising literals up to this size. */
#define CONN_LITERAL_MINUS_MAX 4096
/* How long LOGOUT may take at shutdown. */
#define CONN_LOGOUT_TIMEOUT_MS 2000

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
	if (imap_error_is_fatal(err))
		conn->broken = TRUE;
	g_propagate_error(error, err);
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
		g_string_append_c(out, '"');
		g_string_append_len(out, arg->str, MIN(arg->len, 200));
		g_string_append_c(out, '"');
		break;
	case IMAP_ARG_LITERAL:
		/* Literal contents are message data: never logged. */
		g_string_append_printf(out, "{%" G_GUINT64_FORMAT "}",
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

static void conn_trace_response(const struct imap_response *resp)
{
	static const char *const status[] = {"",    "OK",  "NO",
					     "BAD", "BYE", "PREAUTH"};
	GString *out;
	size_t i;

	if (!imapfs_log_enabled(IMAPFS_LOG_DEBUG))
		return;
	out = g_string_new("S: ");
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
	imapfs_debug("%s", out->str);
	g_string_free(out, TRUE);
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
		size_t avail = conn->inbuf->len - conn->inpos;
		size_t consumed = 0;
		enum imap_parse_result res;
		gssize n;

		if (avail > 0) {
			res = imap_parser_feed(conn->parser,
					       conn->inbuf->data + conn->inpos,
					       avail, &consumed, &err);
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
		g_free(conn->bye_text);
		conn->bye_text = g_strdup(resp->text);
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

static void conn_error_from_tagged(const struct imap_response *resp,
				   GError **error)
{
	int code = IMAP_ERROR_NO;
	const char *c = resp->code != NULL ? resp->code : "";

	if (resp->status == IMAP_STATUS_BAD)
		code = IMAP_ERROR_BAD;
	else if (strcmp(c, "NONEXISTENT") == 0 || strcmp(c, "TRYCREATE") == 0)
		code = IMAP_ERROR_NONEXISTENT;
	else if (strcmp(c, "NOPERM") == 0 || strcmp(c, "READ-ONLY") == 0)
		code = IMAP_ERROR_NOPERM;
	else if (strcmp(c, "OVERQUOTA") == 0 || strcmp(c, "LIMIT") == 0)
		code = IMAP_ERROR_OVERQUOTA;
	else if (strcmp(c, "AUTHENTICATIONFAILED") == 0 ||
		 strcmp(c, "AUTHORIZATIONFAILED") == 0 ||
		 strcmp(c, "EXPIRED") == 0)
		code = IMAP_ERROR_AUTH;
	g_set_error(error, IMAP_ERROR, code, "%s%s%s%s",
		    resp->code != NULL ? "[" : "", resp->code ? resp->code : "",
		    resp->code != NULL ? "] " : "",
		    resp->text != NULL ? resp->text : "");
}

/* Reads responses until the tagged completion for @tag, or, if @want_cont,
 * until a continuation (returns TRUE with *tagged_r NULL). */
static gboolean conn_wait(struct imap_conn *conn, const char *tag,
			  gboolean want_cont, imap_untagged_fn *cb,
			  void *user_data, struct imap_response **tagged_r,
			  GError **error)
{
	for (;;) {
		struct imap_response *resp =
			conn_read_response(conn, conn->timeout_ms, error);

		if (resp == NULL)
			return FALSE;
		if (resp->kind == IMAP_RESPONSE_CONTINUATION) {
			imap_response_free(resp);
			if (want_cont)
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
			if (!ok)
				conn_error_from_tagged(resp, error);
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

/* Sends everything of @cmd, @extra_line if not NULL after a continuation,
 * and waits for completion. */
static gboolean conn_run_full(struct imap_conn *conn,
			      const struct imap_cmd *cmd,
			      const char *extra_line, imap_untagged_fn *cb,
			      void *user_data, struct imap_response **tagged_r,
			      GError **error)
{
	gboolean lit_plus = imap_conn_has_cap(conn, "LITERAL+");
	gboolean lit_minus = imap_conn_has_cap(conn, "LITERAL-");
	char *tag = conn_next_tag(conn);
	GString *out = g_string_new(tag);
	gboolean ok = FALSE;
	guint i;

	if (tagged_r != NULL)
		*tagged_r = NULL;
	if (conn->broken) {
		g_set_error(error, IMAP_ERROR, IMAP_ERROR_IO,
			    "connection is broken");
		goto out;
	}
	if (imapfs_log_enabled(IMAPFS_LOG_DEBUG)) {
		char *desc = imap_cmd_describe(cmd);

		imapfs_debug("C: %s %s", tag, desc);
		g_free(desc);
	}
	g_string_append_c(out, ' ');
	for (i = 0; i < cmd->chunks->len; i++) {
		const struct imap_cmd_chunk *ch = cmd->chunks->pdata[i];
		gboolean sync;

		if (ch->kind == IMAP_CMD_CHUNK_TEXT) {
			g_string_append_len(out, ch->data->str, ch->data->len);
			continue;
		}
		sync = !(lit_plus || (lit_minus &&
				      ch->data->len <= CONN_LITERAL_MINUS_MAX));
		g_string_append_printf(out, "%s{%zu%s}\r\n",
				       ch->binary ? "~" : "", ch->data->len,
				       sync ? "" : "+");
		if (sync) {
			/* Only one literal announcement may wait for a
			 * continuation at a time (isync's rule). */
			if (!conn_write(conn, out, conn->timeout_ms, error) ||
			    !conn_wait(conn, tag, TRUE, cb, user_data, tagged_r,
				       error))
				goto out;
		}
		g_string_append_len(out, ch->data->str, ch->data->len);
	}
	g_string_append(out, "\r\n");
	if (!conn_write(conn, out, conn->timeout_ms, error))
		goto out;
	if (extra_line != NULL) {
		if (!conn_wait(conn, tag, TRUE, cb, user_data, tagged_r, error))
			goto out;
		imapfs_debug("C: <redacted SASL response>");
		g_string_append(out, extra_line);
		g_string_append(out, "\r\n");
		if (!conn_write(conn, out, conn->timeout_ms, error))
			goto out;
	}
	ok = conn_wait(conn, tag, FALSE, cb, user_data, tagged_r, error);
out:
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
	return conn_run_full(conn, cmd, NULL, cb, user_data, tagged_r, error);
}

gboolean imap_conn_run_sasl(struct imap_conn *conn, const struct imap_cmd *cmd,
			    const char *response, imap_untagged_fn *cb,
			    void *user_data, struct imap_response **tagged_r,
			    GError **error)
{
	return conn_run_full(conn, cmd, response, cb, user_data, tagged_r,
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
		g_set_error(error, IMAP_ERROR, IMAP_ERROR_BYE,
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
	g_free(conn);
}
