/* password.c - see password.h.
 *
 * Errors are IMAP_ERROR_AUTH ("the credentials are unavailable"), or
 * IMAP_ERROR_TIMEOUT when the password command hangs; their messages name
 * the source and the reason and never quote file contents, command output
 * or the command line (a careless user may have put the secret there).
 *
 * Every buffer that may have held the password is wiped before it is
 * freed.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "imap-error.h"
#include "keyring.h"
#include "password.h"

/* A hung password command (say, a pinentry nobody answers) must not hang
 * the mount forever. */
static const int PASSWORD_COMMAND_TIMEOUT_MS = 30 * 1000;

/* Only the first line matters; anything longer than this is not a
 * password, and the caps bound memory on a hostile file or command. */
enum {
	PASSWORD_MAX_LINE = 4096,
	PASSWORD_MAX_NETRC = 1 << 20,
};

static void password_wipe_string(GString *s)
{
	explicit_bzero(s->str, s->allocated_len);
	g_string_free(s, TRUE);
}

/* Turns the first line of @buf into the password (g_malloc'd) or sets
 * @error mentioning @source. */
static char *password_first_line(const char *buf, size_t len,
				 const char *source, GError **error)
{
	const char *nl = memchr(buf, '\n', len);
	size_t n = nl != NULL ? (size_t)(nl - buf) : len;

	while (n > 0 && (buf[n - 1] == '\r' || buf[n - 1] == '\n'))
		n--;
	if (n == 0) {
		g_set_error(error, IMAP_ERROR, IMAP_ERROR_AUTH,
			    "%s: the first line is empty", source);
		return NULL;
	}
	if (memchr(buf, '\0', n) != NULL) {
		g_set_error(error, IMAP_ERROR, IMAP_ERROR_AUTH,
			    "%s: the password contains a NUL byte", source);
		return NULL;
	}
	return g_strndup(buf, n);
}

/* ---- 1. password_command ---- */

/* Waits for @pid until @deadline (monotonic µs). Returns TRUE with the
 * wait status, or FALSE after killing it on timeout. */
static gboolean password_reap(GPid pid, gint64 deadline, int *status_r)
{
	for (;;) {
		pid_t r = waitpid(pid, status_r, WNOHANG);

		if (r == pid)
			return TRUE;
		if (r < 0 && errno != EINTR) {
			*status_r = -1;
			return TRUE;
		}
		if (g_get_monotonic_time() >= deadline)
			break;
		g_usleep(10 * 1000);
	}
	/* Only the shell is killed: the command shares our process group so
	 * that it can still prompt on the terminal (pinentry, ssh-askpass),
	 * and a grandchild that outlives it can at worst keep a closed pipe
	 * open. */
	kill(pid, SIGKILL);
	while (waitpid(pid, status_r, 0) < 0 && errno == EINTR)
		;
	return FALSE;
}

static char *password_from_command(const char *command, const char *name,
				   int timeout_ms, GError **error)
{
	const char *argv[] = {"/bin/sh", "-c", command, NULL};
	gint64 deadline = g_get_monotonic_time() + (gint64)timeout_ms * 1000;
	GString *out = g_string_sized_new(256);
	gboolean timed_out = FALSE, eof = FALSE;
	char *password = NULL;
	GError *local = NULL;
	int out_fd = -1, status = 0;
	GPid pid;

	if (command[0] == '\0') {
		g_set_error(error, IMAP_ERROR, IMAP_ERROR_AUTH, "%s is empty",
			    name);
		goto out;
	}
	/* stdin is /dev/null and stderr inherited by g_spawn's defaults;
	 * every other descriptor (the FUSE device, sockets) is closed in the
	 * child. */
	if (!g_spawn_async_with_pipes("/", (char **)argv, NULL,
				      G_SPAWN_DO_NOT_REAP_CHILD, NULL, NULL,
				      &pid, NULL, &out_fd, NULL, &local)) {
		g_set_error(error, IMAP_ERROR, IMAP_ERROR_AUTH,
			    "%s: cannot run /bin/sh: %s", name, local->message);
		g_error_free(local);
		goto out;
	}

	/* Read to EOF so a chatty command never blocks on a full pipe, but
	 * keep only what can hold the first line. */
	while (!eof) {
		struct pollfd pfd = {.fd = out_fd, .events = POLLIN};
		gint64 left = deadline - g_get_monotonic_time();
		char buf[1024];
		ssize_t n;
		int r;

		if (left <= 0) {
			timed_out = TRUE;
			break;
		}
		r = poll(&pfd, 1, (int)((left + 999) / 1000));
		if (r < 0 && errno != EINTR)
			break;
		if (r <= 0)
			continue;
		n = read(out_fd, buf, sizeof(buf));
		if (n > 0 && out->len < PASSWORD_MAX_LINE)
			g_string_append_len(
				out, buf,
				MIN((size_t)n, PASSWORD_MAX_LINE - out->len));
		else if (n == 0 || (n < 0 && errno != EINTR && errno != EAGAIN))
			eof = TRUE;
		explicit_bzero(buf, sizeof(buf));
	}
	close(out_fd);

	if (!password_reap(pid, timed_out ? 0 : deadline, &status) ||
	    timed_out) {
		g_set_error(error, IMAP_ERROR, IMAP_ERROR_TIMEOUT,
			    "%s timed out after %d s "
			    "and was killed",
			    name, (timeout_ms + 999) / 1000);
		goto out;
	}
	if (status == -1 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		if (status != -1 && WIFSIGNALED(status))
			g_set_error(error, IMAP_ERROR, IMAP_ERROR_AUTH,
				    "%s was killed by signal %d", name,
				    WTERMSIG(status));
		else
			g_set_error(error, IMAP_ERROR, IMAP_ERROR_AUTH,
				    "%s failed (exit status %d)", name,
				    status == -1 ? -1 : WEXITSTATUS(status));
		goto out;
	}
	password = password_first_line(out->str, out->len, name, error);
out:
	password_wipe_string(out);
	return password;
}

/* ---- 2. password_file, and reading files in general ---- */

/* Reads at most @max bytes of the open @fd into a new GString. */
static GString *password_read_fd(int fd, size_t max, int *errno_r)
{
	GString *s = g_string_sized_new(MIN(max, 4096) + 1);
	char buf[4096];

	while (s->len < max) {
		ssize_t n = read(fd, buf, MIN(sizeof(buf), max - s->len));

		if (n == 0)
			break;
		if (n < 0) {
			if (errno == EINTR)
				continue;
			*errno_r = errno;
			explicit_bzero(buf, sizeof(buf));
			password_wipe_string(s);
			return NULL;
		}
		g_string_append_len(s, buf, n);
	}
	explicit_bzero(buf, sizeof(buf));
	return s;
}

static char *password_from_file(const char *path, GError **error)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	char *password = NULL;
	GString *s;
	int e = 0;

	if (fd < 0) {
		e = errno;
		g_set_error(error, IMAP_ERROR, IMAP_ERROR_AUTH,
			    "password_file %s: %s", path, g_strerror(e));
		return NULL;
	}
	s = password_read_fd(fd, PASSWORD_MAX_LINE, &e);
	close(fd);
	if (s == NULL) {
		g_set_error(error, IMAP_ERROR, IMAP_ERROR_AUTH,
			    "password_file %s: %s", path, g_strerror(e));
		return NULL;
	}
	{
		char *source = g_strdup_printf("password_file %s", path);

		password = password_first_line(s->str, s->len, source, error);
		g_free(source);
	}
	password_wipe_string(s);
	return password;
}

/* ---- 4. netrc ---- */

struct netrc_lexer {
	const char *p, *end;
};

/* The next whitespace-separated token, or NULL at the end. A token may
 * be double-quoted with backslash escapes, as in the GNU and Python
 * readers. The result is g_malloc'd and must be wiped by the caller. */
static char *netrc_next(struct netrc_lexer *lx)
{
	GString *tok;

	while (lx->p < lx->end && g_ascii_isspace(*lx->p))
		lx->p++;
	if (lx->p >= lx->end)
		return NULL;
	tok = g_string_new(NULL);
	if (*lx->p == '"') {
		lx->p++;
		while (lx->p < lx->end && *lx->p != '"') {
			if (*lx->p == '\\' && lx->p + 1 < lx->end)
				lx->p++;
			g_string_append_c(tok, *lx->p++);
		}
		if (lx->p < lx->end)
			lx->p++; /* closing quote */
	} else {
		while (lx->p < lx->end && !g_ascii_isspace(*lx->p)) {
			if (*lx->p == '\\' && lx->p + 1 < lx->end)
				lx->p++;
			g_string_append_c(tok, *lx->p++);
		}
	}
	{
		char *s = g_strndup(tok->str, tok->len);

		password_wipe_string(tok);
		return s;
	}
}

static void netrc_free(char *s)
{
	if (s != NULL) {
		explicit_bzero(s, strlen(s));
		g_free(s);
	}
}

/* A macro body runs from the end of the "macdef NAME" line to the first
 * empty line. */
static void netrc_skip_macdef(struct netrc_lexer *lx)
{
	const char *nl = memchr(lx->p, '\n', (size_t)(lx->end - lx->p));

	while (nl != NULL) {
		const char *next = nl + 1;

		if (next >= lx->end || *next == '\n' ||
		    (*next == '\r' && next + 1 < lx->end && next[1] == '\n')) {
			lx->p = next;
			return;
		}
		nl = memchr(next, '\n', (size_t)(lx->end - next));
	}
	lx->p = lx->end;
}

struct netrc_entry {
	gboolean is_default;
	char *machine, *login, *password;
};

static void netrc_entry_clear(struct netrc_entry *e)
{
	netrc_free(e->machine);
	netrc_free(e->login);
	netrc_free(e->password);
	memset(e, 0, sizeof(*e));
}

static gboolean netrc_entry_matches(const struct netrc_entry *e,
				    const char *user, const char *host,
				    gboolean want_default)
{
	if (e->password == NULL)
		return FALSE;
	if (want_default ? !e->is_default
			 : e->machine == NULL || host == NULL ||
				   g_ascii_strcasecmp(e->machine, host) != 0)
		return FALSE;
	/* A login that names someone else is another account's entry; this
	 * also holds for "default". */
	return e->login == NULL || user == NULL || strcmp(e->login, user) == 0;
}

/* Finds the password in netrc text: the first matching "machine HOST"
 * entry, else the first matching "default". */
static char *netrc_lookup(const char *text, size_t len, const char *user,
			  const char *host)
{
	for (int pass = 0; pass < 2; pass++) {
		struct netrc_lexer lx = {text, text + len};
		struct netrc_entry e = {0};
		gboolean in_entry = FALSE;
		char *tok;

		for (;;) {
			gboolean end_entry;

			tok = netrc_next(&lx);
			end_entry = tok == NULL ||
				    strcmp(tok, "machine") == 0 ||
				    strcmp(tok, "default") == 0;
			if (end_entry && in_entry &&
			    netrc_entry_matches(&e, user, host, pass == 1)) {
				char *password = e.password;

				e.password = NULL;
				netrc_entry_clear(&e);
				netrc_free(tok);
				return password;
			}
			if (tok == NULL)
				break;
			if (end_entry) {
				netrc_entry_clear(&e);
				in_entry = TRUE;
				if (strcmp(tok, "default") == 0)
					e.is_default = TRUE;
				else
					e.machine = netrc_next(&lx);
			} else if (strcmp(tok, "login") == 0) {
				netrc_free(e.login);
				e.login = netrc_next(&lx);
			} else if (strcmp(tok, "password") == 0) {
				netrc_free(e.password);
				e.password = netrc_next(&lx);
			} else if (strcmp(tok, "account") == 0) {
				netrc_free(netrc_next(&lx));
			} else if (strcmp(tok, "macdef") == 0) {
				netrc_free(netrc_next(&lx));
				netrc_skip_macdef(&lx);
			}
			/* Unknown words (e.g. "port 21" of some clients) are
			 * skipped one by one. */
			netrc_free(tok);
		}
		netrc_entry_clear(&e);
	}
	return NULL;
}

/* $NETRC names the file if set and non-empty (as curl and Python do),
 * else $HOME/.netrc. $HOME is read directly rather than through
 * g_get_home_dir(), which caches it. */
static char *netrc_path(void)
{
	const char *env = g_getenv("NETRC");
	const char *home = g_getenv("HOME");

	if (env != NULL && env[0] != '\0')
		return g_strdup(env);
	if (home == NULL || home[0] == '\0')
		home = g_get_home_dir();
	return g_build_filename(home, ".netrc", NULL);
}

/* Returns the password, or NULL with @error unset when the file has none,
 * or NULL with @error set when the file is unsafe or unreadable. */
static char *password_from_netrc(const struct fs_password_sources *src,
				 GError **error)
{
	char *path = netrc_path(), *password = NULL;
	struct stat st;
	GString *s;
	int fd, e = 0;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		e = errno;
		if (e != ENOENT && e != ENOTDIR)
			g_set_error(error, IMAP_ERROR, IMAP_ERROR_AUTH,
				    "%s: %s", path, g_strerror(e));
		goto out;
	}
	/* fstat on the open file: no window between check and read. */
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		g_set_error(error, IMAP_ERROR, IMAP_ERROR_AUTH,
			    "%s is not a regular file", path);
		goto out;
	}
	if (st.st_mode & 077) {
		g_set_error(error, IMAP_ERROR, IMAP_ERROR_AUTH,
			    "%s is readable by others: chmod 600 %s", path,
			    path);
		goto out;
	}
	if (st.st_size > PASSWORD_MAX_NETRC) {
		g_set_error(error, IMAP_ERROR, IMAP_ERROR_AUTH,
			    "%s is larger than %d bytes", path,
			    PASSWORD_MAX_NETRC);
		goto out;
	}
	s = password_read_fd(fd, PASSWORD_MAX_NETRC, &e);
	if (s == NULL) {
		g_set_error(error, IMAP_ERROR, IMAP_ERROR_AUTH, "%s: %s", path,
			    g_strerror(e));
		goto out;
	}
	password = netrc_lookup(s->str, s->len, src->user, src->host);
	password_wipe_string(s);
out:
	if (fd >= 0)
		close(fd);
	g_free(path);
	return password;
}

/* ---- the public part ---- */

char *fs_password_get(const struct fs_password_sources *sources, GError **error)
{
	const char *env;
	GError *local = NULL;
	char *password;

	if (sources->command != NULL)
		return password_from_command(
			sources->command, "password_command",
			PASSWORD_COMMAND_TIMEOUT_MS, error);
	if (sources->file != NULL)
		return password_from_file(sources->file, error);
	if (sources->keyring)
		return fs_keyring_lookup(sources->user, sources->host, error);
	env = g_getenv("IMAPFS_PASSWORD");
	if (env != NULL && env[0] != '\0')
		return password_first_line(env, strlen(env), "IMAPFS_PASSWORD",
					   error);
	password = password_from_netrc(sources, &local);
	if (password != NULL)
		return password;
	if (local != NULL) {
		g_propagate_error(error, local);
		return NULL;
	}
	g_set_error(error, IMAP_ERROR, IMAP_ERROR_AUTH,
		    "no password: use -o password_command=, -o password_file=, "
		    "IMAPFS_PASSWORD or ~/.netrc");
	return NULL;
}

char *fs_password_command(const char *command, const char *name, GError **error)
{
	return password_from_command(command, name, PASSWORD_COMMAND_TIMEOUT_MS,
				     error);
}

void fs_password_free(char *password)
{
	if (password == NULL)
		return;
	explicit_bzero(password, strlen(password));
	g_free(password);
}
