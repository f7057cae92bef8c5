/* accounts.c - see accounts.h.
 *
 * (Not "config.c": config.h is meson's build configuration.)
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fuse_opt.h>

#include "accounts.h"
#include "imap-error.h"

/* Keys an account group may have besides "options"; each is the -o option
 * of the same name. */
static const char *const accounts_option_keys[] = {
	"password_command",
	"password_file",
	"oauth2_token_command",
	"cafile",
};

/* The file is small; anything bigger is not an account file. */
enum { ACCOUNTS_MAX_SIZE = 1 << 20 };

char *fs_accounts_path(void)
{
	return g_build_filename(g_get_user_config_dir(), "imapfs", "config",
				NULL);
}

/* -o options and positional arguments of a command line, in order. */
struct accounts_scan {
	GPtrArray *opts; /* "name[=value]" */
};

static int accounts_scan_proc(void *data, const char *arg, int key,
			      struct fuse_args *outargs)
{
	struct accounts_scan *scan = data;

	if (key == FUSE_OPT_KEY_OPT && arg[0] != '-')
		g_ptr_array_add(scan->opts, g_strdup(arg));
	return 0;
}

/* Splits a command line's (or an "options=" value's) -o options into
 * "name[=value]" items, with fuse_opt's own comma and escape rules. */
static GPtrArray *accounts_split_opts(int argc, char **argv)
{
	struct fuse_args args = FUSE_ARGS_INIT(0, NULL);
	struct accounts_scan scan = {g_ptr_array_new_with_free_func(g_free)};
	int i;

	for (i = 0; i < argc; i++)
		fuse_opt_add_arg(&args, argv[i]);
	/* The callback accepts everything, so this cannot fail on input. */
	(void)fuse_opt_parse(&args, &scan, NULL, accounts_scan_proc);
	fuse_opt_free_args(&args);
	return scan.opts;
}

static char *accounts_opt_name(const char *opt)
{
	const char *eq = strchr(opt, '=');

	return eq != NULL ? g_strndup(opt, (gsize)(eq - opt)) : g_strdup(opt);
}

/* Index in argv of the first positional argument, -1 if none: the rules
 * of fuse_opt_parse() ("-o" takes the next argument, "--" ends options). */
static int accounts_first_positional(int argc, char **argv)
{
	int i;

	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--") == 0)
			return i + 1 < argc ? i + 1 : -1;
		if (strcmp(argv[i], "-o") == 0)
			i++;
		else if (argv[i][0] != '-' || argv[i][1] == '\0')
			return i;
	}
	return -1;
}

/* Reads the file, refusing one that others could have written. */
static char *accounts_read(const char *path, gboolean *world_readable_r,
			   GError **error)
{
	struct stat st;
	char *buf;
	ssize_t n;
	int fd;

	fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		g_set_error(error, IMAP_ERROR, IMAP_ERROR_INVALID, "%s: %s",
			    path, g_strerror(errno));
		return NULL;
	}
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		g_set_error(error, IMAP_ERROR, IMAP_ERROR_INVALID,
			    "%s: not a regular file", path);
		close(fd);
		return NULL;
	}
	if ((st.st_uid != getuid() && st.st_uid != 0) ||
	    (st.st_mode & (S_IWGRP | S_IWOTH)) != 0) {
		g_set_error(error, IMAP_ERROR, IMAP_ERROR_INVALID,
			    "%s: refused, it names commands imapfs runs and "
			    "others may change it (make it yours and run "
			    "'chmod go-w %s')",
			    path, path);
		close(fd);
		return NULL;
	}
	if (st.st_size > ACCOUNTS_MAX_SIZE) {
		g_set_error(error, IMAP_ERROR, IMAP_ERROR_INVALID,
			    "%s: too big for an account file", path);
		close(fd);
		return NULL;
	}
	buf = g_malloc((gsize)st.st_size + 1);
	n = read(fd, buf, (size_t)st.st_size);
	close(fd);
	if (n != st.st_size) {
		g_set_error(error, IMAP_ERROR, IMAP_ERROR_INVALID,
			    "%s: cannot read it", path);
		g_free(buf);
		return NULL;
	}
	buf[n] = '\0';
	*world_readable_r = (st.st_mode & (S_IRGRP | S_IROTH)) != 0;
	return buf;
}

/* Every group: no secrets, no unknown keys. */
static gboolean accounts_check(GKeyFile *kf, const char *path,
			       gboolean readable, GError **error)
{
	char **groups = g_key_file_get_groups(kf, NULL);
	gboolean ok = TRUE;
	size_t i, j, k;

	for (i = 0; ok && groups[i] != NULL; i++) {
		char **keys = g_key_file_get_keys(kf, groups[i], NULL, NULL);

		for (j = 0; ok && keys != NULL && keys[j] != NULL; j++) {
			const char *key = keys[j];
			gboolean known = strcmp(key, "url") == 0 ||
					 strcmp(key, "options") == 0;

			for (k = 0; k < G_N_ELEMENTS(accounts_option_keys); k++)
				known = known ||
					strcmp(key, accounts_option_keys[k]) ==
						0;
			if (g_str_has_prefix(key, "password") && !known) {
				g_set_error(
					error, IMAP_ERROR, IMAP_ERROR_INVALID,
					"%s: [%s] holds a secret (%s=); imapfs "
					"never reads passwords from its config "
					"file, use password_command= or "
					"password_file=%s",
					path, groups[i], key,
					readable ? " (and the file is readable "
						   "by others: change that "
						   "password)"
						 : "");
				ok = FALSE;
			} else if (!known) {
				g_set_error(
					error, IMAP_ERROR, IMAP_ERROR_INVALID,
					"%s: [%s]: unknown key '%s' (keys: "
					"url, password_command, "
					"password_file, oauth2_token_command, "
					"cafile, options)",
					path, groups[i], key);
				ok = FALSE;
			}
		}
		g_strfreev(keys);
	}
	g_strfreev(groups);
	return ok;
}

/* The group of account @name: "[account NAME]", else "[NAME]". */
static char *accounts_group(GKeyFile *kf, const char *name)
{
	char *group = g_strdup_printf("account %s", name);

	if (g_key_file_has_group(kf, group))
		return group;
	g_free(group);
	if (g_key_file_has_group(kf, name))
		return g_strdup(name);
	return NULL;
}

/* fuse_opt splits -o values at commas and takes '\' as an escape. */
static char *accounts_escape(const char *name, const char *value)
{
	GString *s = g_string_new(name);
	const char *p;

	g_string_append_c(s, '=');
	for (p = value; *p != '\0'; p++) {
		if (*p == ',' || *p == '\\')
			g_string_append_c(s, '\\');
		g_string_append_c(s, *p);
	}
	return g_string_free(s, FALSE);
}

/* A way to the credentials: one on the command line replaces them all. */
static gboolean accounts_is_credential(const char *name)
{
	return g_str_has_prefix(name, "password_") ||
	       strcmp(name, "oauth2_token_command") == 0;
}

static gboolean accounts_overridden(GPtrArray *cli, const char *opt)
{
	char *name = accounts_opt_name(opt);
	gboolean credential = accounts_is_credential(name);
	gboolean found = FALSE;
	guint i;

	for (i = 0; !found && i < cli->len; i++) {
		char *other = accounts_opt_name(cli->pdata[i]);

		found = strcmp(name, other) == 0 ||
			(credential && accounts_is_credential(other));
		g_free(other);
	}
	g_free(name);
	return found;
}

/* argv0, the file's options not overridden, then the command line with
 * the account name replaced by its URL. */
static char **accounts_build(int argc, char **argv, int pos, GKeyFile *kf,
			     const char *group, const char *url)
{
	GPtrArray *out = g_ptr_array_new();
	GPtrArray *cli = accounts_split_opts(argc, argv);
	GPtrArray *file = g_ptr_array_new_with_free_func(g_free);
	char *options;
	guint i;
	int a;

	for (i = 0; i < G_N_ELEMENTS(accounts_option_keys); i++) {
		char *v = g_key_file_get_string(kf, group,
						accounts_option_keys[i], NULL);

		if (v != NULL)
			g_ptr_array_add(
				file,
				accounts_escape(accounts_option_keys[i], v));
		g_free(v);
	}
	options = g_key_file_get_string(kf, group, "options", NULL);
	if (options != NULL) {
		char *fake[] = {argv[0], (char *)"-o", options};
		GPtrArray *items = accounts_split_opts(3, fake);

		for (i = 0; i < items->len; i++) {
			/* re-escaped: the item has lost its escapes */
			const char *item = items->pdata[i];
			const char *eq = strchr(item, '=');
			char *name = accounts_opt_name(item);

			g_ptr_array_add(
				file, eq != NULL ? accounts_escape(name, eq + 1)
						 : g_strdup(item));
			g_free(name);
		}
		g_ptr_array_free(items, TRUE);
		g_free(options);
	}

	g_ptr_array_add(out, g_strdup(argv[0]));
	for (i = 0; i < file->len; i++) {
		if (accounts_overridden(cli, file->pdata[i]))
			continue;
		g_ptr_array_add(out, g_strdup("-o"));
		g_ptr_array_add(out, g_strdup(file->pdata[i]));
	}
	for (a = 1; a < argc; a++)
		g_ptr_array_add(out, g_strdup(a == pos ? url : argv[a]));
	g_ptr_array_add(out, NULL);
	g_ptr_array_free(file, TRUE);
	g_ptr_array_free(cli, TRUE);
	return (char **)g_ptr_array_free(out, FALSE);
}

gboolean fs_accounts_expand(int argc, char **argv, char ***argv_r,
			    GError **error)
{
	int pos = accounts_first_positional(argc, argv);
	const char *name;
	char *path, *text, *group = NULL, *url = NULL;
	gboolean readable = FALSE, ok = FALSE;
	GKeyFile *kf = NULL;
	GError *err = NULL;

	*argv_r = NULL;
	if (pos < 0 || strstr(argv[pos], "://") != NULL)
		return TRUE;
	name = argv[pos];
	path = fs_accounts_path();
	if (access(path, F_OK) != 0 && errno == ENOENT) {
		g_set_error(error, IMAP_ERROR, IMAP_ERROR_INVALID,
			    "'%s' is neither a URL (imaps://USER@HOST) nor an "
			    "account: there is no account file %s",
			    name, path);
		goto out;
	}
	text = accounts_read(path, &readable, error);
	if (text == NULL)
		goto out;
	kf = g_key_file_new();
	if (!g_key_file_load_from_data(kf, text, (gsize)-1, G_KEY_FILE_NONE,
				       &err)) {
		g_set_error(error, IMAP_ERROR, IMAP_ERROR_INVALID, "%s: %s",
			    path, err->message);
		g_error_free(err);
		g_free(text);
		goto out;
	}
	g_free(text);
	if (!accounts_check(kf, path, readable, error))
		goto out;
	group = accounts_group(kf, name);
	if (group == NULL) {
		g_set_error(error, IMAP_ERROR, IMAP_ERROR_INVALID,
			    "'%s' is neither a URL (imaps://USER@HOST) nor an "
			    "account in %s",
			    name, path);
		goto out;
	}
	url = g_key_file_get_string(kf, group, "url", NULL);
	if (url == NULL || strstr(url, "://") == NULL) {
		g_set_error(error, IMAP_ERROR, IMAP_ERROR_INVALID,
			    "%s: [%s] needs url=imaps://USER@HOST", path,
			    group);
		goto out;
	}
	*argv_r = accounts_build(argc, argv, pos, kf, group, url);
	ok = TRUE;
out:
	if (kf != NULL)
		g_key_file_free(kf);
	g_free(url);
	g_free(group);
	g_free(path);
	return ok;
}
