/* main.c - imapfs: options, login, mount, serve, clean up.
 *
 * Everything that can fail for a reason the user should hear about (bad
 * URL, no password, server unreachable, TLS, authentication, the mailbox
 * list) happens before the mount, so a failure leaves nothing mounted and
 * prints one line.  The command daemonizes only once the mount is live.
 */
#include "config.h"

#include <errno.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/opensslv.h>

#include "accounts.h"
#include "control.h"
#include "imap-error.h"
#include "mutate.h"
#include "log.h"
#include "mountcheck.h"
#include "ops.h"
#include "options.h"
#include "password.h"
#include "pool.h"
#include "sdnotify.h"
#include "status.h"
#include "url.h"
#include "watch.h"

static void main_fail(const char *what, const GError *error)
{
	fprintf(stderr, "imapfs: %s%s%s\n", what != NULL ? what : "",
		what != NULL ? ": " : "", error->message);
}

static int main_check_mountpoint(const char *path)
{
	GError *error = NULL;

	if (fs_mountcheck(path, &error))
		return 0;
	main_fail(NULL, error);
	g_error_free(error);
	return -1;
}

/* mount(8), run by a user for an fstab "user" mount, starts its helper
 * (mount.fuse3, then imapfs) with root's HOME=/root. The spool, the
 * control socket and the config file are looked up below HOME (GLib),
 * so a HOME that belongs to someone else is replaced by the user's own
 * from the password database, before GLib first reads it. */
static void main_fix_home(void)
{
	const char *home = getenv("HOME");
	struct passwd *pw;
	struct stat st;

	if (getuid() == 0 || home == NULL ||
	    (stat(home, &st) == 0 && st.st_uid == getuid()))
		return;
	pw = getpwuid(getuid());
	if (pw != NULL && pw->pw_dir != NULL && pw->pw_dir[0] == '/')
		setenv("HOME", pw->pw_dir, 1);
}

/* fs_options_parse(), an account name first expanded from the config
 * file (imapfs ACCOUNT MOUNTPOINT). */
static gboolean main_parse(int argc, char **argv, struct fs_options *opts,
			   GError **error)
{
	char **expanded = NULL;
	gboolean ok;

	if (!fs_accounts_expand(argc, argv, &expanded, error)) {
		memset(opts, 0, sizeof(*opts));
		return FALSE;
	}
	if (expanded == NULL)
		return fs_options_parse(argc, argv, opts, error);
	ok = fs_options_parse((int)g_strv_length(expanded), expanded, opts,
			      error);
	g_strfreev(expanded);
	return ok;
}

/* "imapfs status MOUNTPOINT" / "imapfs refresh MOUNTPOINT". */
static gboolean main_is_control_command(int argc, char **argv)
{
	return argc == 3 && (strcmp(argv[1], "status") == 0 ||
			     strcmp(argv[1], "refresh") == 0);
}

/* What "imapfs status" reports; the mount point is made absolute now,
 * before daemonizing changes the working directory. */
/* The inode table, with the modes -o umask (or its default) leaves: files
 * 0666, directories 0777, without write bits on a -o ro mount. */
static struct fs_tree *main_tree_new(const struct fs_options *opts,
				     mode_t process_umask, gboolean read_only)
{
	mode_t mask = fs_options_umask(opts, process_umask);

	if (read_only)
		mask |= 0222;
	return fs_tree_new(getuid(), getgid(), 0666 & ~mask, 0777 & ~mask);
}

static void main_status_init(struct fs_status *status, struct imapfs *fs,
			     const struct fs_options *opts,
			     const struct imap_url *url,
			     const struct imap_session *first)
{
	status->fs = fs;
	status->mountpoint = g_canonicalize_filename(opts->mountpoint, NULL);
	status->user = g_strdup(url->user);
	status->host = g_strdup(url->host);
	status->port = url->port;
	status->implicit_tls = url->implicit_tls;
	status->cache_mb = opts->cache_mb;
	status->timeout_s = opts->timeout_s;
	status->listing_ttl = opts->listing_ttl;
	status->attr_timeout = opts->attr_timeout;
	status->started = g_get_real_time();
	fs_status_set_caps(status, first);
}

/* The control socket, listening (the thread starts after daemonizing);
 * the mount works without it (warning). */
static struct fs_control *main_control_start(struct fs_status *status)
{
	char *path = fs_control_socket_path(status->mountpoint);
	GError *error = NULL;
	struct fs_control *control;

	control = fs_control_open(path, fs_status_answer, status, &error);
	if (control == NULL) {
		imapfs_warning("no imapfs status for this mount: %s",
			       error->message);
		g_error_free(error);
	}
	g_free(path);
	return control;
}

/* The account's token source (imap_token_fn): -o oauth2_token_command. */
static char *main_oauth2_token(void *user_data, GError **error)
{
	return fs_password_command(user_data, "oauth2_token_command", error);
}

int main(int argc, char **argv)
{
	struct fs_options opts;
	struct imap_url url = {0};
	struct imap_account account = {0};
	struct fs_password_sources sources = {0};
	struct imapfs fs = {0};
	struct imap_session *first;
	struct fuse_session *se = NULL;
	struct fuse_loop_config *loop_cfg;
	struct fs_status status = {0};
	struct fs_control *control = NULL;
	struct fs_sdnotify *sd = NULL;
	struct fs_watch *watch = NULL;
	gboolean server_notify = FALSE, server_idle = FALSE;
	GError *err = NULL;
	char *fsopts, *fsname;
	int ret = 1;
	mode_t process_umask = umask(022);

	umask(process_umask); /* only read: nothing is created in between */
	signal(SIGPIPE, SIG_IGN);
	main_fix_home();
	if (main_is_control_command(argc, argv))
		return fs_control_client(argv[2], argv[1]);
	if (!main_parse(argc, argv, &opts, &err)) {
		main_fail(NULL, err);
		g_error_free(err);
		fs_options_clear(&opts);
		return 1;
	}
	if (opts.show_help) {
		fs_options_print_help(argv[0]);
		ret = 0;
		goto out_opts;
	}
	if (opts.show_version) {
		printf("imapfs %s (libfuse %s, %s)\n", IMAPFS_VERSION,
		       fuse_pkgversion(), OPENSSL_VERSION_TEXT);
		ret = 0;
		goto out_opts;
	}
	imapfs_log_setup(opts.debug ? IMAPFS_LOG_DEBUG : IMAPFS_LOG_WARNING,
			 FALSE);
	/* Taken before any command runs (password, token) or thread starts. */
	sd = fs_sdnotify_open();
	if (!imap_url_parse(opts.url, &url, &err)) {
		main_fail("invalid URL", err);
		goto out_err;
	}
	if (main_check_mountpoint(opts.mountpoint) != 0)
		goto out_url;

	if (opts.oauth2_token_command != NULL) {
		/* Run for every login (each new connection), not now: a
		 * token expires, the command knows how to refresh it. */
		account.token_fn = main_oauth2_token;
		account.token_data = opts.oauth2_token_command;
	} else {
		sources.command = opts.password_command;
		sources.file = opts.password_file;
		sources.keyring = opts.password_keyring;
		sources.user = url.user;
		sources.host = url.host;
		account.password = fs_password_get(&sources, &err);
		if (account.password == NULL) {
			main_fail(NULL, err);
			goto out_err;
		}
	}
	account.host = url.host;
	account.port = url.port;
	account.implicit_tls = url.implicit_tls;
	account.cafile = opts.cafile;
	account.user = url.user;
	account.timeout_ms = (int)opts.timeout_s * 1000;

	/* Log in once now so that every failure is reported before
	 * anything is mounted. */
	fs_sdnotify_send(sd, "STATUS=Logging in to %s as %s", url.host,
			 url.user);
	first = imap_session_open(&account, &err);
	if (first == NULL) {
		main_fail(NULL, err);
		goto out_err;
	}
	fs.read_only = opts.read_only;
	fs.delete_mode = opts.delete_mode;
	fs.ns_prefix = g_strdup(imap_session_personal_prefix(first));
	fs.cap_uidplus = imap_session_has_cap(first, "UIDPLUS");
	fs.cap_move = imap_session_has_cap(first, "MOVE");
	server_notify = imap_session_has_cap(first, "NOTIFY");
	server_idle = imap_session_has_cap(first, "IDLE");
	fs.append_limit = imap_session_append_limit(first);
	fs.cap_quota = imap_session_has_cap(first, "QUOTA");
	g_mutex_init(&fs.meta_lock);
	g_mutex_init(&fs.own_lock);
	g_cond_init(&fs.own_cond);
	fs.own_inflight =
		g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
	if (!fs.read_only) {
		fs.spool_dir = fs_spool_dir_new(opts.spool_dir, &err);
		if (fs.spool_dir == NULL) {
			imap_session_free(first);
			main_fail(NULL, err);
			goto out_err;
		}
	}
	main_status_init(&status, &fs, &opts, &url, first);
	fs.pool = imap_pool_new(&account, opts.connections, first);
	imap_pool_set_limit_retry(fs.pool, opts.limit_retry_s * 1000);
	fs.tree = main_tree_new(&opts, process_umask, fs.read_only);
	fs_tree_set_hide_deleted(fs.tree, fs.delete_mode == FS_DELETE_FLAG);
	fs.quota = fs_quota_new(fs.pool, FS_QUOTA_TTL_US);
	fs.cache = fs_bodycache_new((uint64_t)opts.cache_mb * 1024 * 1024);
	fs.attr_timeout = opts.attr_timeout;
	fs.entry_timeout = opts.attr_timeout;
	fs.listing_ttl_us = (gint64)opts.listing_ttl * G_USEC_PER_SEC;
	/* A read-ahead window stays well inside the cache, so the blocks it
	 * brings are not evicted before they are read. */
	fs.max_readahead =
		MIN((uint64_t)opts.cache_mb * 1024 * 1024 / 4, 8 * 1024 * 1024);
	if (fs_ops_load_mailboxes(&fs, &err) != 0) {
		main_fail("cannot list mailboxes", err);
		goto out_fs;
	}
	/* Reads and prefetch run side by side: log in a few connections now,
	 * while the mount is set up, rather than on the first read. */
	imap_pool_open_more(fs.pool, MIN(opts.connections, 3u));

	/* A ':' in fsname makes df and gnulib treat the mount as remote.
	 * A comma (impossible in a host, possible in a user name) would
	 * end the option, and a backslash is fuse_opt's escape: replace
	 * both. */
	fsname = g_strdup_printf("imapfs:%s@%s", url.user, url.host);
	g_strdelimit(fsname, ",\\", '_');
	fsopts = g_strdup_printf("-osubtype=imapfs,fsname=%s,"
				 "default_permissions,nosuid,nodev",
				 fsname);
	g_free(fsname);
	fuse_opt_add_arg(&opts.fuse_args, fsopts);
	g_free(fsopts);
	/* -o ro is refused by our own handlers (EROFS) and by the kernel's
	 * ro flag too: only with the flag does the kernel keep st_atime
	 * after a read, so that a warm grep -r sends nothing at all (no
	 * GETATTR per file). The tests remount such a mount rw (the daemon
	 * is not told) to check the handlers. */
	if (fs.read_only)
		fuse_opt_add_arg(&opts.fuse_args, "-oro");
	se = fuse_session_new(&opts.fuse_args, fs_ops_get(),
			      sizeof(struct fuse_lowlevel_ops), &fs);
	if (se == NULL) {
		fprintf(stderr, "imapfs: cannot create the FUSE session "
				"(bad option?)\n");
		goto out_fs;
	}
	if (fuse_set_signal_handlers(se) != 0)
		goto out_session;
	if (fuse_session_mount(se, opts.mountpoint) != 0) {
		fprintf(stderr, "imapfs: cannot mount on %s\n",
			opts.mountpoint);
		goto out_signals;
	}
	control = main_control_start(&status);
	if (fuse_daemonize(opts.foreground) != 0)
		goto out_unmount;
	if (!opts.foreground)
		imapfs_log_setup(IMAPFS_LOG_WARNING, TRUE);

	fs.notify = fs_notify_new(se);
	if (opts.watch > 0) {
		struct fs_watch_params wp = {
			.listeners = opts.watch,
			.notify = server_notify,
			.idle = server_idle,
			.watchdog_ms = (int)opts.watchdog_s * 1000,
			.renew_ms = (int)opts.idle_renew_s * 1000,
			.limit_retry_ms = opts.limit_retry_s * 1000,
		};

		watch = fs_watch_start(&fs, &account, &wp);
		fs.watch = watch;
		fs_status_set_watch(&status, watch);
	}
	/* A prefetch batch may use a quarter of the cache, so it cannot
	 * push out what the reader has not consumed yet; whole-message
	 * fetches at most half. */
	fs.prefetch = fs_prefetch_new(
		fs.pool, fs.tree, fs.cache,
		MIN((uint64_t)opts.cache_mb * 1024 * 1024 / 4, 8 * 1024 * 1024),
		MIN((uint64_t)opts.cache_mb * 1024 * 1024 / 2,
		    32 * 1024 * 1024));
	fs_control_run(control);
	/* Without the control thread SIGHUP cannot refresh; it must not end
	 * the mount either (libfuse's handler would). */
	if (control == NULL)
		signal(SIGHUP, SIG_IGN);
	/* Requests that wait for the server get threads of their own
	 * (defer.h), so the FUSE workers are never all taken by them. */
	fs.defer = fs_defer_new(64, account.timeout_ms);
	loop_cfg = fuse_loop_cfg_create();
	fuse_loop_cfg_set_max_threads(loop_cfg, 16);
	fuse_loop_cfg_set_idle_threads(loop_cfg, 8);
	/* The kernel holds the mount and the first login worked: requests
	 * are answered as soon as the loop below reads them. */
	fs_sdnotify_send(sd, "READY=1\nMAINPID=%ld\nSTATUS=Mounted %s@%s on %s",
			 (long)getpid(), url.user, url.host, status.mountpoint);
	ret = fuse_session_loop_mt(se, loop_cfg) != 0 ? 1 : 0;
	fs_sdnotify_send(sd, "STOPPING=1\nSTATUS=Unmounting %s",
			 status.mountpoint);
	fuse_loop_cfg_destroy(loop_cfg);
	fs_defer_free(fs.defer);
	fs.watch = NULL;
	fs_status_set_watch(&status, NULL);
	fs_watch_stop(watch);
	fs_prefetch_free(fs.prefetch);
	fs_notify_free(fs.notify);

out_unmount:
	fs_control_stop(control);
	fuse_session_unmount(se);
out_signals:
	fuse_remove_signal_handlers(se);
out_session:
	fuse_session_destroy(se);
out_fs:
	fs_quota_free(fs.quota);
	imap_pool_free(fs.pool);
	/* Unsent files are kept (and logged) before the tree lets go of
	 * them. */
	fs_spool_dir_close(fs.spool_dir);
	if (fs.tree != NULL)
		fs_tree_free(fs.tree);
	fs_bodycache_free(fs.cache);
	g_free(fs.ns_prefix);
	g_free(fs.trash_mailbox);
	g_hash_table_destroy(fs.own_inflight);
out_err:
out_url:
	g_clear_error(&err);
	fs_status_clear(&status);
	fs_password_free(account.password);
	imap_url_clear(&url);
out_opts:
	fs_sdnotify_free(sd);
	fs_options_clear(&opts);
	return ret;
}
