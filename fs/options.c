/* options.c - see options.h. */
#include "config.h"

#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "imap-error.h"
#include "mountopts.h"
#include "options.h"

enum { KEY_HELP, KEY_VERSION, KEY_FOREGROUND, KEY_DEBUG };

#define OPT(t, p)                                    \
	{                                            \
		t, offsetof(struct fs_options, p), 1 \
	}

/* Numbers are parsed as strings first so that garbage ("4x") is an error
 * rather than silently read as 4. */
struct options_raw {
	char *connections, *cache_size, *timeout, *attr_timeout, *listing_ttl;
	char *umask;
	char *watch, *watchdog, *idle_renew, *limit_retry;
};

/* fuse_opt_parse() hands the same pointer to the templates (as a base for
 * offsetof) and to the callback, so the options come first. */
struct options_ctx {
	struct fs_options o;
	struct fs_options *opts;
	struct options_raw raw;
	int positional;
	char *error;
};

static const struct fuse_opt options_spec[] = {
	OPT("password_command=%s", password_command),
	OPT("password_file=%s", password_file),
	OPT("oauth2_token_command=%s", oauth2_token_command),
	OPT("cafile=%s", cafile),
	OPT("spool_dir=%s", spool_dir),
	FUSE_OPT_KEY("-h", KEY_HELP),
	FUSE_OPT_KEY("--help", KEY_HELP),
	FUSE_OPT_KEY("-V", KEY_VERSION),
	FUSE_OPT_KEY("--version", KEY_VERSION),
	FUSE_OPT_KEY("-f", KEY_FOREGROUND),
	FUSE_OPT_KEY("-d", KEY_DEBUG),
	FUSE_OPT_KEY("debug", KEY_DEBUG),
	FUSE_OPT_END,
};

static int options_proc(void *data, const char *arg, int key,
			struct fuse_args *outargs)
{
	struct options_ctx *ctx = data;
	struct options_raw *raw = &ctx->raw;
	static const struct {
		const char *prefix;
		size_t off;
	} nums[] = {
		{"connections=", offsetof(struct options_raw, connections)},
		{"cache_size=", offsetof(struct options_raw, cache_size)},
		{"timeout=", offsetof(struct options_raw, timeout)},
		{"attr_timeout=", offsetof(struct options_raw, attr_timeout)},
		{"listing_ttl=", offsetof(struct options_raw, listing_ttl)},
		{"umask=", offsetof(struct options_raw, umask)},
		{"watch=", offsetof(struct options_raw, watch)},
		{"watchdog=", offsetof(struct options_raw, watchdog)},
		{"idle_renew=", offsetof(struct options_raw, idle_renew)},
		{"limit_retry=", offsetof(struct options_raw, limit_retry)},
	};
	size_t i;

	switch (key) {
	case KEY_HELP:
		ctx->opts->show_help = 1;
		return 0;
	case KEY_VERSION:
		ctx->opts->show_version = 1;
		return 0;
	case KEY_FOREGROUND:
		ctx->opts->foreground = 1;
		return 0;
	case KEY_DEBUG:
		ctx->opts->debug = 1;
		ctx->opts->foreground = 1;
		return 0;
	case FUSE_OPT_KEY_NONOPT:
		if (ctx->positional == 0)
			ctx->opts->url = g_strdup(arg);
		else if (ctx->positional == 1)
			ctx->opts->mountpoint = g_strdup(arg);
		else if (ctx->error == NULL)
			ctx->error = g_strdup_printf("unexpected argument '%s'",
						     arg);
		ctx->positional++;
		return 0;
	case FUSE_OPT_KEY_OPT:
		for (i = 0; i < G_N_ELEMENTS(nums); i++) {
			if (g_str_has_prefix(arg, nums[i].prefix)) {
				char **slot =
					(char **)((char *)raw + nums[i].off);

				g_free(*slot);
				*slot = g_strdup(arg + strlen(nums[i].prefix));
				return 0;
			}
		}
		if (strcmp(arg, "ro") == 0) {
			/* Kept from the kernel: our own handlers answer
			 * EROFS (so they are what the tests check). */
			ctx->opts->read_only = 1;
			return 0;
		}
		if (strcmp(arg, "password_keyring") == 0) {
			ctx->opts->password_keyring = 1;
			return 0;
		}
		if (strcmp(arg, "rw") == 0) {
			ctx->opts->read_only = 0;
			return 0;
		}
		if (g_str_has_prefix(arg, "delete=")) {
			const char *v = arg + strlen("delete=");
			int m;

			for (m = FS_DELETE_FLAG; m >= 0; m--) {
				if (strcmp(v, fs_options_delete_name(m)) == 0)
					break;
			}
			if (m >= 0)
				ctx->opts->delete_mode = m;
			else if (ctx->error == NULL)
				ctx->error = g_strdup_printf(
					"delete= must be expunge, trash or "
					"flag, not '%s'",
					v);
			return 0;
		}
		if (strcmp(arg, "allow_other") == 0)
			ctx->opts->allow_other = 1; /* and on to FUSE */
		if (g_str_has_prefix(arg, "password=")) {
			if (ctx->error == NULL)
				ctx->error = g_strdup(
					"passwords are not accepted as "
					"options (they would be visible in "
					"the process list); use "
					"password_command, password_file, "
					"IMAPFS_PASSWORD or ~/.netrc");
			return 0;
		}
		return fs_mountopt_filter(arg, &ctx->error);
	default:
		return 1;
	}
}

static gboolean options_number(const char *name, const char *text, guint64 min,
			       guint64 max, unsigned int *out, GError **error)
{
	guint64 v;

	if (text == NULL)
		return TRUE;
	if (!g_ascii_string_to_unsigned(text, 10, min, max, &v, NULL)) {
		g_set_error(error, IMAP_ERROR, IMAP_ERROR_INVALID,
			    "invalid value for -o %s: '%s' (expected a whole "
			    "number from %" G_GUINT64_FORMAT
			    " to %" G_GUINT64_FORMAT ")",
			    name, text, min, max);
		return FALSE;
	}
	*out = (unsigned int)v;
	return TRUE;
}

gboolean fs_options_parse(int argc, char **argv, struct fs_options *opts_r,
			  GError **error)
{
	struct fs_options *opts;
	struct fuse_args args = FUSE_ARGS_INIT(0, NULL);
	struct options_ctx ctx;
	unsigned int attr = 60;
	gboolean ok = FALSE;
	int i;

	memset(&ctx, 0, sizeof(ctx));
	ctx.opts = &ctx.o;
	opts = &ctx.o;
	opts->connections = 4;
	opts->cache_mb = 64;
	opts->timeout_s = 30;
	opts->listing_ttl = 30;
	opts->umask = -1;
	opts->watch = 1;
	opts->watchdog_s = 300;
	opts->idle_renew_s = 25 * 60;
	opts->limit_retry_s = 30;
	for (i = 0; i < argc; i++)
		fuse_opt_add_arg(&args, argv[i]);
	if (fuse_opt_parse(&args, &ctx, options_spec, options_proc) != 0) {
		g_set_error(error, IMAP_ERROR, IMAP_ERROR_INVALID,
			    "invalid options");
		goto out;
	}
	if (ctx.error != NULL) {
		g_set_error(error, IMAP_ERROR, IMAP_ERROR_INVALID, "%s",
			    ctx.error);
		goto out;
	}
	if (opts->show_help || opts->show_version) {
		ok = TRUE;
		goto out;
	}
	if (!options_number("connections", ctx.raw.connections, 1, 64,
			    &opts->connections, error) ||
	    !options_number("cache_size", ctx.raw.cache_size, 1, 1 << 20,
			    &opts->cache_mb, error) ||
	    !options_number("timeout", ctx.raw.timeout, 1, 3600,
			    &opts->timeout_s, error) ||
	    !options_number("attr_timeout", ctx.raw.attr_timeout, 0, 86400,
			    &attr, error) ||
	    !options_number("listing_ttl", ctx.raw.listing_ttl, 0, 86400,
			    &opts->listing_ttl, error) ||
	    !options_number("watch", ctx.raw.watch, 0, 16, &opts->watch,
			    error) ||
	    !options_number("watchdog", ctx.raw.watchdog, 1, 3600,
			    &opts->watchdog_s, error) ||
	    /* RFC 2177: less than 29 minutes. */
	    !options_number("idle_renew", ctx.raw.idle_renew, 1, 29 * 60 - 1,
			    &opts->idle_renew_s, error) ||
	    !options_number("limit_retry", ctx.raw.limit_retry, 1, 3600,
			    &opts->limit_retry_s, error))
		goto out;
	if (ctx.raw.umask != NULL) {
		guint64 v;

		if (!g_ascii_string_to_unsigned(ctx.raw.umask, 8, 0, 0777, &v,
						NULL)) {
			g_set_error(error, IMAP_ERROR, IMAP_ERROR_INVALID,
				    "invalid value for -o umask: '%s' "
				    "(expected an octal number from 0 to 777)",
				    ctx.raw.umask);
			goto out;
		}
		opts->umask = (int)v;
	}
	opts->attr_timeout = attr;
	if (opts->oauth2_token_command != NULL &&
	    (opts->password_command != NULL || opts->password_file != NULL)) {
		g_set_error(error, IMAP_ERROR, IMAP_ERROR_INVALID,
			    "-o oauth2_token_command logs in without a "
			    "password: drop -o %s",
			    opts->password_command != NULL ? "password_command"
							   : "password_file");
		goto out;
	}
	if (opts->url == NULL || opts->mountpoint == NULL) {
		g_set_error(error, IMAP_ERROR, IMAP_ERROR_INVALID,
			    "usage: imapfs [options] URL MOUNTPOINT "
			    "(see imapfs --help)");
		goto out;
	}
	ok = TRUE;
out:
	g_free(ctx.error);
	g_free(ctx.raw.connections);
	g_free(ctx.raw.cache_size);
	g_free(ctx.raw.timeout);
	g_free(ctx.raw.attr_timeout);
	g_free(ctx.raw.listing_ttl);
	g_free(ctx.raw.umask);
	g_free(ctx.raw.watch);
	g_free(ctx.raw.watchdog);
	g_free(ctx.raw.idle_renew);
	g_free(ctx.raw.limit_retry);
	opts->fuse_args = args;
	*opts_r = ctx.o;
	return ok;
}

unsigned int fs_options_umask(const struct fs_options *opts,
			      unsigned int process_umask)
{
	if (opts->umask >= 0)
		return (unsigned int)opts->umask;
	return opts->allow_other ? 077 : process_umask & 0777;
}

const char *fs_options_delete_name(enum fs_delete_mode mode)
{
	switch (mode) {
	case FS_DELETE_TRASH:
		return "trash";
	case FS_DELETE_FLAG:
		return "flag";
	default:
		return "expunge";
	}
}

void fs_options_clear(struct fs_options *opts)
{
	g_free(opts->url);
	g_free(opts->mountpoint);
	g_free(opts->password_command);
	g_free(opts->password_file);
	g_free(opts->oauth2_token_command);
	g_free(opts->cafile);
	g_free(opts->spool_dir);
	fuse_opt_free_args(&opts->fuse_args);
	memset(opts, 0, sizeof(*opts));
}

void fs_options_print_help(const char *progname)
{
	printf("usage: %s [options] URL MOUNTPOINT\n"
	       "       imapfs [options] ACCOUNT MOUNTPOINT  (an account of "
	       "~/.config/imapfs/config)\n"
	       "       imapfs status|refresh MOUNTPOINT\n"
	       "\n"
	       "Mounts an IMAP account: mailboxes are directories, messages "
	       "are files <UID>.eml.\n"
	       "\n"
	       "URL:\n"
	       "    imaps://USER@HOST[:PORT]   TLS from the first byte "
	       "(default port 993)\n"
	       "    imap://USER@HOST[:PORT]    STARTTLS, required "
	       "(default port 143)\n"
	       "    USER may be percent-encoded (alice%%40example.org)\n"
	       "\n"
	       "Password (first found): -o password_command=CMD, "
	       "-o password_file=FILE,\n"
	       "    -o password_keyring, environment IMAPFS_PASSWORD,\n"
	       "    ~/.netrc entry for HOST (must be mode 600)\n"
	       "\n"
	       "Options:\n"
	       "    -o password_command=CMD  run CMD with /bin/sh, use the "
	       "first line of its output\n"
	       "    -o password_file=FILE    use the first line of FILE\n"
	       "    -o password_keyring      the password from the desktop "
	       "keyring (libsecret:\n"
	       "                             service imapfs user USER host "
	       "HOST)\n"
	       "    -o oauth2_token_command=CMD  OAuth2 (OAUTHBEARER, "
	       "XOAUTH2): CMD prints an\n"
	       "                             access token; run for every "
	       "connection\n"
	       "    -o cafile=FILE           also trust the PEM "
	       "certificates in FILE\n"
	       "    -o ro                    read-only mount (default: "
	       "read-write)\n"
	       "    -o delete=expunge|trash|flag  rm expunges (default), "
	       "moves to \\Trash,\n"
	       "                             or only flags \\Deleted "
	       "(no UIDPLUS needed;\n"
	       "                             \\Deleted mail is then not "
	       "listed)\n"
	       "    -o umask=OCTAL           permission bits the mount does "
	       "not show (default: the\n"
	       "                             umask imapfs runs with; 077 "
	       "with allow_other)\n"
	       "    -o spool_dir=DIR         where written files wait "
	       "(default ~/.cache/imapfs/spool)\n"
	       "    -o connections=N         IMAP connections in the pool "
	       "(default 4)\n"
	       "    -o cache_size=MB         memory for cached message "
	       "content (default 64)\n"
	       "    -o timeout=SECONDS       bound on every wait for the "
	       "server (default 30)\n"
	       "    -o attr_timeout=SECONDS  kernel attribute/name cache "
	       "time (default 60)\n"
	       "    -o listing_ttl=SECONDS   reload folder listings after "
	       "this long (default 30)\n"
	       "    -o watch=N               live view: NOTIFY where offered, "
	       "else IDLE on up to N\n"
	       "                             folders in use plus STATUS "
	       "polls (default 1; 0: off)\n"
	       "    -o watchdog=SECONDS      probe a silent watch connection "
	       "after this long\n"
	       "                             (default 300)\n"
	       "    -f                       stay in the foreground\n"
	       "    -d                       debug: trace IMAP (secrets "
	       "redacted), implies -f\n"
	       "    -h, --help               print this help\n"
	       "    -V, --version            print the version\n"
	       "FUSE and mount(8) options (allow_other, noatime, ...): "
	       "see man imapfs.\n",
	       progname);
}
