/* test_password.c - fs/password.c: every source, their order, netrc.
 *
 * password.c is included rather than linked so that the command runner can
 * be tested with a short timeout instead of the real 30 s constant.  (The
 * static library's password.o is then never pulled in: every symbol it
 * defines is already defined here.)
 */
#include "password.c"

#include <glib/gstdio.h>

#define SECRET "s3cr3t-Pw"

struct env {
	char *dir;
};

static void env_setup(struct env *env, gconstpointer unused)
{
	GError *error = NULL;

	env->dir = g_dir_make_tmp("imapfs-password-XXXXXX", &error);
	g_assert_no_error(error);
	g_setenv("HOME", env->dir, TRUE);
	g_unsetenv("NETRC");
	g_unsetenv("IMAPFS_PASSWORD");
}

static void env_teardown(struct env *env, gconstpointer unused)
{
	GDir *d = g_dir_open(env->dir, 0, NULL);
	const char *name;

	while (d != NULL && (name = g_dir_read_name(d)) != NULL) {
		char *p = g_build_filename(env->dir, name, NULL);

		g_unlink(p);
		g_free(p);
	}
	if (d != NULL)
		g_dir_close(d);
	g_rmdir(env->dir);
	g_free(env->dir);
}

/* Writes @text to DIR/@name with @mode; returns the path. */
static char *write_file(struct env *env, const char *name, const char *text,
			int mode)
{
	char *path = g_build_filename(env->dir, name, NULL);
	GError *error = NULL;

	g_file_set_contents(path, text, -1, &error);
	g_assert_no_error(error);
	g_assert_cmpint(g_chmod(path, mode), ==, 0);
	return path;
}

static char *get(const char *command, const char *file, GError **error)
{
	struct fs_password_sources src = {
		.command = command,
		.file = file,
		.user = "alice",
		.host = "mail.example.org",
	};

	return fs_password_get(&src, error);
}

/* @errorp, not the error itself: arguments are evaluated in no set order,
 * so expect_password(get(..., &error), &error, ...) must read it late. */
static void expect_password(char *pw, GError **errorp, const char *want)
{
	g_assert_no_error(*errorp);
	g_assert_cmpstr(pw, ==, want);
	fs_password_free(pw);
}

/* An error, of the AUTH or TIMEOUT kind, that mentions @needle and never
 * the secret. */
static void expect_error(char *pw, GError **errorp, const char *needle)
{
	GError *error = *errorp;

	*errorp = NULL;
	g_assert_null(pw);
	g_assert_nonnull(error);
	g_assert_true(g_error_matches(error, IMAP_ERROR, IMAP_ERROR_AUTH) ||
		      g_error_matches(error, IMAP_ERROR, IMAP_ERROR_TIMEOUT));
	g_test_message("error: %s", error->message);
	g_assert_nonnull(strstr(error->message, needle));
	g_assert_null(strstr(error->message, SECRET));
	g_error_free(error);
}

/* ---- password_command ---- */

static const struct command_case {
	const char *command;
	const char *password; /* NULL: an error containing .error */
	const char *error;
} command_cases[] = {
	{"printf '" SECRET "\\r\\nsecond line\\n'", SECRET, NULL},
	{"echo " SECRET, SECRET, NULL},
	{"printf " SECRET, SECRET, NULL},	   /* no newline at all */
	{"echo to-stderr >&2; echo x", "x", NULL}, /* stderr apart */
	{"yes " SECRET " | head -c 200000", SECRET, NULL}, /* drained */
	{"pwd", "/", NULL},
	{"echo " SECRET "; exit 1", NULL, "exit status 1"},
	{"echo " SECRET "; exit 7", NULL, "exit status 7"},
	{"echo " SECRET "; kill -9 $$", NULL, "killed by signal 9"},
	{"true", NULL, "first line is empty"},
	{"printf '\\r\\n" SECRET "\\n'", NULL, "first line is empty"},
	{"printf 'a\\000b\\n'", NULL, "NUL byte"},
	{"", NULL, "password_command is empty"},
	{"exec /nonexistent/helper", NULL, "exit status 127"},
};

static void test_command(struct env *env, gconstpointer unused)
{
	for (size_t i = 0; i < G_N_ELEMENTS(command_cases); i++) {
		const struct command_case *c = &command_cases[i];
		GError *error = NULL;
		char *pw;

		g_test_message("command %zu: %s", i, c->command);
		pw = get(c->command, NULL, &error);
		if (c->password != NULL)
			expect_password(pw, &error, c->password);
		else
			expect_error(pw, &error, c->error);
	}
}

/* stdin must be /dev/null even when ours is a pipe with data waiting. */
static void test_command_stdin(struct env *env, gconstpointer unused)
{
	int fds[2], saved = dup(0);
	GError *error = NULL;
	char *pw;

	g_assert_cmpint(pipe(fds), ==, 0);
	g_assert_cmpint(write(fds[1], "ours\n", 5), ==, 5);
	g_assert_cmpint(dup2(fds[0], 0), ==, 0);
	pw = get("if read x; then echo \"inherited:$x\"; else echo null; fi",
		 NULL, &error);
	g_assert_cmpint(dup2(saved, 0), ==, 0);
	close(saved);
	close(fds[0]);
	close(fds[1]);
	expect_password(pw, &error, "null");
}

/* Our descriptors (the FUSE device, sockets) do not leak into the
 * command. */
static void test_command_no_fd_leak(struct env *env, gconstpointer unused)
{
	int fd = open("/dev/null", O_RDONLY); /* deliberately no O_CLOEXEC */
	char *cmd =
		g_strdup_printf("if [ -e /proc/self/fd/%d ]; then echo leaked; "
				"else echo closed; fi",
				fd);
	GError *error = NULL;

	g_assert_cmpint(fd, >, 2);
	expect_password(get(cmd, NULL, &error), &error, "closed");
	close(fd);
	g_free(cmd);
}

static void test_command_timeout(struct env *env, gconstpointer unused)
{
	static const char *const commands[] = {
		"sleep 10",
		"echo " SECRET "; exec sleep 10", /* output, then hangs */
		"exec >&-; sleep 10",		  /* closes stdout, hangs */
	};

	for (size_t i = 0; i < G_N_ELEMENTS(commands); i++) {
		gint64 start = g_get_monotonic_time();
		GError *error = NULL;
		char *pw;

		pw = password_from_command(commands[i], "password_command", 300,
					   &error);
		g_assert_cmpint(g_get_monotonic_time() - start, <,
				3 * G_USEC_PER_SEC);
		g_assert_error(error, IMAP_ERROR, IMAP_ERROR_TIMEOUT);
		expect_error(pw, &error, "timed out");
	}
	/* The real bound is the documented one. */
	g_assert_cmpint(PASSWORD_COMMAND_TIMEOUT_MS, ==, 30000);
}

/* ---- password_file and IMAPFS_PASSWORD ---- */

static void test_file(struct env *env, gconstpointer unused)
{
	char *path = write_file(env, "pw", SECRET "\r\nsecond\n", 0600);
	char *empty = write_file(env, "empty", "", 0600);
	char *blank = write_file(env, "blank", "\n" SECRET "\n", 0600);
	GError *error = NULL;
	char *missing = g_build_filename(env->dir, "missing", NULL);

	expect_password(get(NULL, path, &error), &error, SECRET);
	expect_error(get(NULL, empty, &error), &error, "first line is empty");
	expect_error(get(NULL, blank, &error), &error, "first line is empty");
	expect_error(get(NULL, missing, &error), &error, missing);
	expect_error(get(NULL, env->dir, &error), &error, "password_file");
	g_free(path);
	g_free(empty);
	g_free(blank);
	g_free(missing);
}

static void test_env(struct env *env, gconstpointer unused)
{
	GError *error = NULL;

	g_setenv("IMAPFS_PASSWORD", SECRET "\n", TRUE);
	expect_password(get(NULL, NULL, &error), &error, SECRET);
	/* Empty counts as unset. */
	g_setenv("IMAPFS_PASSWORD", "", TRUE);
	expect_error(get(NULL, NULL, &error), &error, "no password");
}

/* command beats file beats env beats netrc; a configured source that fails
 * is an error, not a fall-through. */
static void test_priority(struct env *env, gconstpointer unused)
{
	char *file = write_file(env, "pw", "from-file\n", 0600);
	char *netrc = write_file(env, ".netrc",
				 "machine mail.example.org password from-netrc",
				 0600);
	GError *error = NULL;

	g_setenv("IMAPFS_PASSWORD", "from-env", TRUE);
	expect_password(get("echo from-command", file, &error), &error,
			"from-command");
	expect_password(get(NULL, file, &error), &error, "from-file");
	expect_password(get(NULL, NULL, &error), &error, "from-env");
	g_unsetenv("IMAPFS_PASSWORD");
	expect_password(get(NULL, NULL, &error), &error, "from-netrc");

	g_setenv("IMAPFS_PASSWORD", "from-env", TRUE);
	expect_error(get("exit 1", file, &error), &error, "password_command");
	g_free(file);
	g_free(netrc);
}

/* ---- netrc ---- */

static const struct netrc_case {
	const char *text;
	const char *password; /* NULL: falls through to "no password" */
} netrc_cases[] = {
	{"machine mail.example.org login alice password " SECRET, SECRET},
	{"machine mail.example.org password " SECRET, SECRET},
	{"machine MAIL.Example.ORG login alice password " SECRET, SECRET},
	/* Layout: one token per line, tabs, CRLF. */
	{"machine\tmail.example.org\r\nlogin\r\nalice\r\npassword\r\n" SECRET
	 "\r\n",
	 SECRET},
	/* Another host, and a login for someone else, are skipped. */
	{"machine other.org login alice password wrong\n"
	 "machine mail.example.org login bob password wrong\n"
	 "machine mail.example.org login alice password " SECRET "\n",
	 SECRET},
	/* default only when no machine entry matches; order irrelevant. */
	{"default login alice password fallback\n"
	 "machine mail.example.org login alice password " SECRET "\n",
	 SECRET},
	{"machine other.org password wrong\n"
	 "default password " SECRET "\n",
	 SECRET},
	{"machine mail.example.org login bob password wrong\n"
	 "default login alice password " SECRET "\n",
	 SECRET},
	{"default login bob password wrong\n", NULL},
	{"machine mail.example.org login bob password wrong\n", NULL},
	{"machine other.org login alice password wrong\n", NULL},
	{"machine mail.example.org login alice\n", NULL},
	{"", NULL},
	{"# nothing here\n", NULL},
	/* account values and macro bodies are not tokens. */
	{"machine mail.example.org account machine password " SECRET, SECRET},
	{"macdef init\nmachine mail.example.org password wrong\n\n"
	 "machine mail.example.org password " SECRET "\n",
	 SECRET},
	{"machine mail.example.org login alice password " SECRET "\n"
	 "macdef init\ncd /pub\n\n",
	 SECRET},
	{"machine other.org macdef m\nmachine mail.example.org password x\n",
	 NULL},
	/* Quoted values. */
	{"machine mail.example.org password \"" SECRET " with space\"",
	 SECRET " with space"},
	{"machine mail.example.org password \"q\\\"uote\"", "q\"uote"},
	{"machine mail.example.org password \"unterminated", "unterminated"},
	/* Truncated entries do not crash. */
	{"machine", NULL},
	{"machine mail.example.org password", NULL},
	{"machine mail.example.org login", NULL},
};

static void test_netrc(struct env *env, gconstpointer unused)
{
	for (size_t i = 0; i < G_N_ELEMENTS(netrc_cases); i++) {
		const struct netrc_case *c = &netrc_cases[i];
		char *path = write_file(env, ".netrc", c->text, 0600);
		GError *error = NULL;
		char *pw;

		g_test_message("netrc %zu", i);
		pw = get(NULL, NULL, &error);
		if (c->password != NULL)
			expect_password(pw, &error, c->password);
		else
			expect_error(pw, &error, "no password");
		g_unlink(path);
		g_free(path);
	}
}

static const struct mode_case {
	int mode;
	gboolean accepted;
} mode_cases[] = {
	{0600, TRUE},  {0400, TRUE},  {0644, FALSE}, {0640, FALSE},
	{0604, FALSE}, {0620, FALSE}, {0602, FALSE}, {0610, FALSE},
};

static void test_netrc_mode(struct env *env, gconstpointer unused)
{
	for (size_t i = 0; i < G_N_ELEMENTS(mode_cases); i++) {
		const struct mode_case *c = &mode_cases[i];
		char *path = write_file(env, ".netrc",
					"machine mail.example.org "
					"password " SECRET "\n",
					c->mode);
		GError *error = NULL;
		char *pw;

		g_test_message("mode %o", (unsigned)c->mode);
		pw = get(NULL, NULL, &error);
		if (c->accepted) {
			expect_password(pw, &error, SECRET);
		} else {
			g_assert_nonnull(error);
			g_assert_nonnull(strstr(error->message, path));
			expect_error(pw, &error,
				     "is readable by others: chmod 600");
		}
		g_unlink(path);
		g_free(path);
	}
}

/* $NETRC wins over $HOME/.netrc. */
static void test_netrc_env(struct env *env, gconstpointer unused)
{
	char *home =
		write_file(env, ".netrc", "default password from-home\n", 0600);
	char *other = write_file(env, "other-netrc",
				 "default password from-NETRC\n", 0600);
	char *missing = g_build_filename(env->dir, "missing", NULL);
	GError *error = NULL;

	expect_password(get(NULL, NULL, &error), &error, "from-home");
	g_setenv("NETRC", other, TRUE);
	expect_password(get(NULL, NULL, &error), &error, "from-NETRC");
	g_setenv("NETRC", missing, TRUE);
	expect_error(get(NULL, NULL, &error), &error, "no password");
	g_setenv("NETRC", env->dir, TRUE); /* a directory */
	expect_error(get(NULL, NULL, &error), &error, "not a regular file");
	g_free(home);
	g_free(other);
	g_free(missing);
}

static void test_netrc_too_big(struct env *env, gconstpointer unused)
{
	char *big = g_malloc(PASSWORD_MAX_NETRC + 2);
	char *path;
	GError *error = NULL;

	memset(big, ' ', PASSWORD_MAX_NETRC + 1);
	big[PASSWORD_MAX_NETRC + 1] = '\0';
	path = write_file(env, ".netrc", big, 0600);
	expect_error(get(NULL, NULL, &error), &error, "larger than");
	g_free(path);
	g_free(big);
}

static void test_no_source(struct env *env, gconstpointer unused)
{
	GError *error = NULL;
	char *pw = get(NULL, NULL, &error);

	g_assert_null(pw);
	g_assert_error(error, IMAP_ERROR, IMAP_ERROR_AUTH);
	g_assert_cmpstr(error->message, ==,
			"no password: use -o password_command=, "
			"-o password_file=, IMAPFS_PASSWORD or ~/.netrc");
	g_error_free(error);
}

#define ADD(path, fn) \
	g_test_add(path, struct env, NULL, env_setup, fn, env_teardown)

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	ADD("/password/command", test_command);
	ADD("/password/command-stdin", test_command_stdin);
	ADD("/password/command-no-fd-leak", test_command_no_fd_leak);
	ADD("/password/command-timeout", test_command_timeout);
	ADD("/password/file", test_file);
	ADD("/password/env", test_env);
	ADD("/password/priority", test_priority);
	ADD("/password/netrc", test_netrc);
	ADD("/password/netrc-mode", test_netrc_mode);
	ADD("/password/netrc-env", test_netrc_env);
	ADD("/password/netrc-too-big", test_netrc_too_big);
	ADD("/password/no-source", test_no_source);
	return g_test_run();
}
