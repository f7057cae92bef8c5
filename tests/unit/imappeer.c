/* imappeer.c - see imappeer.h. */
#include "config.h"

#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "imappeer.h"
#include "testtls.h"

/* Literals up to this size are kept in the transcript. */
#define PEER_LITERAL_KEEP 4096

struct peer_conn {
	struct peer *peer;
	int fd;
	SSL *ssl;
	GThread *thread;
	char buf[16384];
	size_t pos, len;
	/* The tag of the last command: an untagged line ("DONE", which
	 * ends IDLE) is answered with it. */
	char *last_tag;
	gboolean logged_in; /* counted in peer->logged_in */
};

static gboolean conn_fill(struct peer_conn *c)
{
	size_t n = 0;

	if (c->pos < c->len)
		return TRUE;
	if (SSL_read_ex(c->ssl, c->buf, sizeof(c->buf), &n) != 1 || n == 0)
		return FALSE;
	c->pos = 0;
	c->len = n;
	return TRUE;
}

/* One line without its CRLF; NULL at EOF. */
static char *conn_read_line(struct peer_conn *c)
{
	GString *line = g_string_new(NULL);

	for (;;) {
		char ch;

		if (!conn_fill(c)) {
			g_string_free(line, TRUE);
			return NULL;
		}
		ch = c->buf[c->pos++];
		if (ch == '\n' && line->len > 0 &&
		    line->str[line->len - 1] == '\r') {
			g_string_truncate(line, line->len - 1);
			return g_string_free(line, FALSE);
		}
		g_string_append_c(line, ch);
	}
}

static void conn_send(struct peer_conn *c, const char *text)
{
	size_t n;

	if (*text != '\0')
		SSL_write_ex(c->ssl, text, strlen(text), &n);
}

static void conn_send_reply(struct peer_conn *c, const char *reply,
			    const char *tag)
{
	char **parts = g_strsplit(reply, "%t", -1);
	char *text = g_strjoinv(tag, parts);

	conn_send(c, text);
	g_free(text);
	g_strfreev(parts);
}

/* "... {12}", "{12+}", "~{12}": returns TRUE with the size and whether it
 * synchronises. */
static gboolean literal_suffix(const char *line, uint64_t *size_r,
			       gboolean *sync_r)
{
	size_t len = strlen(line);
	const char *open;
	char *end;

	if (len < 3 || line[len - 1] != '}')
		return FALSE;
	open = strrchr(line, '{');
	if (open == NULL)
		return FALSE;
	*size_r = g_ascii_strtoull(open + 1, &end, 10);
	*sync_r = *end != '+';
	return end != open + 1 &&
	       (*end == '}' || (end[0] == '+' && end[1] == '}'));
}

/* Reads @size literal bytes (at most @limit: fewer means hang up),
 * recording them. FALSE at EOF. */
static gboolean conn_read_literal(struct peer_conn *c, GString *cmd,
				  uint64_t size, uint64_t limit)
{
	GChecksum *sum = g_checksum_new(G_CHECKSUM_SHA256);
	uint64_t got = 0, want = MIN(size, limit);

	while (got < want) {
		size_t n;

		if (!conn_fill(c)) {
			g_checksum_free(sum);
			return FALSE;
		}
		n = (size_t)MIN(c->len - c->pos, want - got);
		if (size <= PEER_LITERAL_KEEP)
			g_string_append_len(cmd, c->buf + c->pos, n);
		g_checksum_update(sum, (const guchar *)c->buf + c->pos, n);
		c->pos += n;
		got += n;
	}
	if (size > PEER_LITERAL_KEEP) {
		g_string_append_printf(cmd, "<%" G_GUINT64_FORMAT " bytes>",
				       size);
		if (got == size) {
			g_mutex_lock(&c->peer->lock);
			g_free(c->peer->big_sha256);
			c->peer->big_sha256 =
				g_strdup(g_checksum_get_string(sum));
			c->peer->big_size = size;
			g_mutex_unlock(&c->peer->lock);
		}
	}
	g_checksum_free(sum);
	return got == size;
}

/* Answers what a session sends while it logs in and out. Returns FALSE
 * if @cmd is not one of those. */
static gboolean conn_auto(struct peer_conn *c, const char *tag, const char *cmd,
			  gboolean *close_r)
{
	struct peer *p = c->peer;
	char *text = NULL;

	if (g_str_has_prefix(cmd, "AUTHENTICATE OAUTHBEARER ") ||
	    g_str_has_prefix(cmd, "AUTHENTICATE XOAUTH2 ")) {
		/* Every token is refused as RFC 7628 3.2.2 says: an error
		 * challenge, whose answer goes to the transcript, then NO. */
		char *answer;

		conn_send(c, "+ " PEER_OAUTH_ERROR_B64 "\r\n");
		answer = conn_read_line(c);
		if (answer == NULL)
			return TRUE;
		g_mutex_lock(&p->lock);
		g_string_append_printf(p->transcript, "%.*s\r\nSASL: %s\r\n",
				       (int)(13 + strcspn(cmd + 13, " ")), cmd,
				       answer);
		g_mutex_unlock(&p->lock);
		g_free(answer);
		text = g_strdup_printf("%s NO [AUTHENTICATIONFAILED] token "
				       "refused\r\n",
				       tag);
	} else if (g_str_has_prefix(cmd, "AUTHENTICATE ") ||
		   g_str_has_prefix(cmd, "LOGIN ")) {
		gboolean full;

		g_mutex_lock(&p->lock);
		full = p->max_logins > 0 && p->logged_in >= p->max_logins;
		if (!full && !c->logged_in) {
			p->logged_in++;
			c->logged_in = TRUE;
		}
		g_mutex_unlock(&p->lock);
		text = full ? g_strdup_printf("%s NO [LIMIT] Maximum number of "
					      "connections exceeded\r\n",
					      tag)
			    : g_strdup_printf("%s OK logged in\r\n", tag);
	} else if (strcmp(cmd, "CAPABILITY") == 0) {
		text = g_strdup_printf("* CAPABILITY %s\r\n%s OK\r\n", p->caps,
				       tag);
	} else if (g_str_has_prefix(cmd, "ENABLE ")) {
		text = g_strdup_printf("* ENABLED %s\r\n%s OK\r\n", cmd + 7,
				       tag);
	} else if (strcmp(cmd, "NAMESPACE") == 0) {
		text = g_strdup_printf("* NAMESPACE %s\r\n%s OK\r\n",
				       p->namespace, tag);
	} else if (strcmp(cmd, "LOGOUT") == 0) {
		text = g_strdup_printf("* BYE bye\r\n%s OK\r\n", tag);
		*close_r = TRUE;
	} else {
		return FALSE;
	}
	conn_send(c, text);
	g_free(text);
	return TRUE;
}

static void peer_note_error(struct peer *p, const char *fmt, ...)
	G_GNUC_PRINTF(2, 3);

static void peer_note_error(struct peer *p, const char *fmt, ...)
{
	va_list ap;

	g_mutex_lock(&p->lock);
	va_start(ap, fmt);
	g_string_append_vprintf(p->errors, fmt, ap);
	va_end(ap);
	g_string_append_c(p->errors, '\n');
	g_mutex_unlock(&p->lock);
}

/* Serves one command. FALSE: hang up. */
static gboolean conn_command(struct peer_conn *c)
{
	struct peer *p = c->peer;
	const struct peer_step *step = NULL;
	GString *cmd = g_string_new(NULL);
	char *line = conn_read_line(c), *sp, *tag;
	gboolean keep = TRUE, close = FALSE, first = TRUE;

	if (line == NULL) {
		g_string_free(cmd, TRUE);
		return FALSE;
	}
	sp = strchr(line, ' ');
	tag = g_strndup(line, sp != NULL ? (size_t)(sp - line) : strlen(line));
	if (sp == NULL && strcmp(line, "DONE") == 0 && c->last_tag != NULL) {
		/* IDLE's end: matched as the command "DONE", answered with
		 * the IDLE's tag. */
		g_free(tag);
		g_free(line);
		tag = g_strdup(c->last_tag);
		line = g_strdup_printf("%s DONE", tag);
		sp = strchr(line, ' ');
	} else {
		g_free(c->last_tag);
		c->last_tag = g_strdup(tag);
	}
	if (sp != NULL && conn_auto(c, tag, sp + 1, &close)) {
		g_free(tag);
		g_free(line);
		g_string_free(cmd, TRUE);
		return !close;
	}
	g_mutex_lock(&p->lock);
	if (p->steps[p->next_step].expect != NULL && sp != NULL &&
	    g_str_has_prefix(sp + 1, p->steps[p->next_step].expect))
		step = &p->steps[p->next_step++];
	g_mutex_unlock(&p->lock);
	if (step == NULL) {
		peer_note_error(p, "unexpected command: %s", line);
		conn_send_reply(c, "%t BAD unexpected\r\n", tag);
		g_free(tag);
		g_free(line);
		g_string_free(cmd, TRUE);
		return TRUE;
	}
	/* The command, literal by literal. */
	for (;;) {
		uint64_t size;
		gboolean sync;

		g_string_append(cmd, first ? sp + 1 : line);
		g_string_append(cmd, "\r\n");
		first = FALSE;
		if (!literal_suffix(line, &size, &sync))
			break;
		if (sync && step->action == PEER_REFUSE_LITERAL) {
			conn_send_reply(c, step->reply, tag);
			goto out;
		}
		if (sync)
			conn_send(c, "+ go ahead\r\n");
		if (step->action == PEER_HANGUP_MID_LITERAL) {
			conn_read_literal(c, cmd, size, step->arg);
			keep = FALSE;
			goto out;
		}
		if (!conn_read_literal(c, cmd, size, size)) {
			keep = FALSE;
			goto out;
		}
		g_free(line);
		line = conn_read_line(c);
		if (line == NULL) {
			keep = FALSE;
			goto out;
		}
	}
	if (step->action == PEER_HANGUP)
		keep = FALSE;
	else
		conn_send_reply(c, step->reply, tag);
out:
	g_mutex_lock(&p->lock);
	g_string_append_len(p->transcript, cmd->str, cmd->len);
	g_mutex_unlock(&p->lock);
	g_string_free(cmd, TRUE);
	g_free(tag);
	g_free(line);
	return keep;
}

static gpointer conn_thread(gpointer data)
{
	struct peer_conn *c = data;
	char *greeting;

	if (SSL_accept(c->ssl) == 1) {
		greeting = g_strdup_printf("* OK [CAPABILITY %s] test peer\r\n",
					   c->peer->caps);
		conn_send(c, greeting);
		g_free(greeting);
		while (conn_command(c))
			;
	}
	ERR_clear_error();
	g_mutex_lock(&c->peer->lock);
	if (c->logged_in)
		c->peer->logged_in--;
	c->logged_in = FALSE;
	g_mutex_unlock(&c->peer->lock);
	/* Hang up: the client sees EOF at once. */
	shutdown(c->fd, SHUT_RDWR);
	return NULL;
}

static gpointer accept_thread(gpointer data)
{
	struct peer *p = data;
	SSL_CTX *ctx = testtls_server_ctx("IP:127.0.0.1");
	sigset_t set;

	/* SIGPIPE is thread-directed: the peer's writes to a client that hung
	 * up must not kill the test. */
	sigemptyset(&set);
	sigaddset(&set, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	for (;;) {
		struct pollfd pfd[2] = {{.fd = p->listen_fd, .events = POLLIN},
					{.fd = p->wake[0], .events = POLLIN}};
		struct peer_conn *c;
		int fd;

		if (poll(pfd, 2, 30000) <= 0 || pfd[1].revents != 0)
			break;
		fd = accept(p->listen_fd, NULL, NULL);
		if (fd < 0)
			break;
		c = g_new0(struct peer_conn, 1);
		c->peer = p;
		c->fd = fd;
		c->ssl = SSL_new(ctx);
		SSL_set_fd(c->ssl, fd);
		g_mutex_lock(&p->lock);
		p->connections++;
		g_ptr_array_add(p->conns, c);
		g_mutex_unlock(&p->lock);
		c->thread = g_thread_new("peer-conn", conn_thread, c);
	}
	SSL_CTX_free(ctx);
	return NULL;
}

struct peer *peer_start(const char *caps, const char *namespace,
			const struct peer_step *steps)
{
	static const struct peer_step none[] = {{NULL, NULL, PEER_REPLY, 0}};
	struct peer *p = g_new0(struct peer, 1);

	p->caps = g_strdup_printf("IMAP4rev1 AUTH=PLAIN SASL-IR%s%s",
				  *caps != '\0' ? " " : "", caps);
	p->namespace = g_strdup(namespace != NULL ? namespace
						  : "((\"\" \"/\")) NIL NIL");
	p->steps = steps != NULL ? steps : none;
	p->transcript = g_string_new(NULL);
	p->errors = g_string_new(NULL);
	p->conns = g_ptr_array_new();
	g_mutex_init(&p->lock);
	g_assert_cmpint(pipe(p->wake), ==, 0);
	p->listen_fd = testtls_listen(&p->port);
	p->thread = g_thread_new("peer-accept", accept_thread, p);
	return p;
}

void peer_stop(struct peer *p)
{
	g_assert_cmpint(write(p->wake[1], "x", 1), ==, 1);
	g_thread_join(p->thread);
	p->thread = NULL;
	for (guint i = 0; i < p->conns->len; i++) {
		struct peer_conn *c = p->conns->pdata[i];

		shutdown(c->fd, SHUT_RDWR);
		g_thread_join(c->thread);
		SSL_free(c->ssl);
		close(c->fd);
		g_free(c->last_tag);
		g_free(c);
	}
	g_ptr_array_set_size(p->conns, 0);
}

void peer_free(struct peer *p)
{
	if (p->thread != NULL)
		peer_stop(p);
	close(p->listen_fd);
	close(p->wake[0]);
	close(p->wake[1]);
	g_ptr_array_free(p->conns, TRUE);
	g_string_free(p->transcript, TRUE);
	g_string_free(p->errors, TRUE);
	g_free(p->big_sha256);
	g_free(p->caps);
	g_free(p->namespace);
	g_mutex_clear(&p->lock);
	g_free(p);
}

const struct imap_account *peer_account(const struct peer *p)
{
	static struct imap_account account;

	account.host = (char *)"127.0.0.1";
	account.port = p->port;
	account.implicit_tls = TRUE;
	account.cafile = (char *)testtls_ca_path();
	account.user = (char *)"user";
	account.password = (char *)"secret";
	account.timeout_ms = 5000;
	return &account;
}

struct imap_session *peer_session(const struct peer *p)
{
	GError *error = NULL;
	struct imap_session *s = imap_session_open(peer_account(p), &error);

	g_assert_no_error(error);
	g_assert_nonnull(s);
	return s;
}

void peer_assert_done(struct peer *p)
{
	g_assert_cmpstr(p->errors->str, ==, "");
	g_assert_null(p->steps[p->next_step].expect);
}
