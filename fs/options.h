/* options.h - the command line of imapfs.
 *
 *   imapfs [options] URL MOUNTPOINT
 *
 * imapfs's own -o options are removed from the argument list; everything
 * else is left in @fuse_args for fuse_session_new() ("other -o options go
 * to FUSE as usual").  Not thread-safe (runs at startup).
 */
#ifndef IMAPFS_FS_OPTIONS_H
#define IMAPFS_FS_OPTIONS_H

#include <fuse_lowlevel.h>
#include <glib.h>

/* -o delete=: how this mount removes a message from a folder (rm, the
 * original of a move without MOVE, the old version of an edited one). */
enum fs_delete_mode {
	FS_DELETE_EXPUNGE, /* STORE \Deleted + UID EXPUNGE (needs UIDPLUS) */
	FS_DELETE_TRASH,   /* rm moves to \Trash; otherwise as EXPUNGE */
	FS_DELETE_FLAG,	   /* STORE \Deleted only; \Deleted mail is hidden */
};

struct fs_options {
	char *url;
	char *mountpoint;
	char *password_command;
	char *password_file;
	int password_keyring;	    /* -o password_keyring: libsecret */
	char *oauth2_token_command; /* set: OAuth2, no password */
	char *cafile;
	int read_only; /* -o ro: refuse every change (EROFS) */
	enum fs_delete_mode delete_mode; /* -o delete= (default expunge) */
	char *spool_dir; /* -o spool_dir=DIR, or NULL for the default */
	unsigned int connections; /* >= 1 */
	unsigned int cache_mb;
	unsigned int timeout_s;	  /* bound on every wait for the server */
	double attr_timeout;	  /* kernel attribute/entry cache (s) */
	unsigned int listing_ttl; /* folder listing reload interval (s) */
	/* -o umask=OCTAL: permission bits taken from files (0666) and
	 * directories (0777); -1 when not given (see fs_options_umask()). */
	int umask;
	int allow_other;    /* -o allow_other was given (passed on to FUSE) */
	unsigned int watch; /* live view listeners (0: off) */
	unsigned int watchdog_s;   /* silence before a listener probes */
	unsigned int idle_renew_s; /* IDLE re-issued after this long */
	/* After the server's connection limit cut the pool or the
	 * listeners down: first wait before trying for more (doubling). */
	unsigned int limit_retry_s;
	int foreground;
	int debug;
	int show_help;
	int show_version;
	/* Arguments for FUSE (argv[0] plus the options FUSE handles). */
	struct fuse_args fuse_args;
};

/* Parses @argc/@argv (not modified). On success fills @opts (release with
 * fs_options_clear()) and returns TRUE; with -h or -V it returns TRUE with
 * show_help/show_version set. Returns FALSE with a one-line message in
 * @error for a bad option, a bad number, or missing/extra arguments. */
gboolean fs_options_parse(int argc, char **argv, struct fs_options *opts,
			  GError **error);

/* The umask that decides the modes the mount reports: -o umask if given;
 * else 077 with allow_other (mail stays private when other users can
 * reach the mount); else @process_umask, the umask imapfs was started
 * with (as rclone mount does). */
unsigned int fs_options_umask(const struct fs_options *opts,
			      unsigned int process_umask);

/* The -o delete= word of @mode ("expunge", "trash", "flag"). */
const char *fs_options_delete_name(enum fs_delete_mode mode);

/* Frees the strings and fuse_args of @opts. */
void fs_options_clear(struct fs_options *opts);

/* Prints the usage text to stdout. */
void fs_options_print_help(const char *progname);

#endif
