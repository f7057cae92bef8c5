/* password.h - finding the account password without it ever touching
 * argv or a log.
 *
 * Sources, first found wins:
 *   1. -o password_command=CMD : run by /bin/sh -c with stdin /dev/null,
 *      cwd "/", a 30 s timeout; the first line of its stdout. A non-zero
 *      exit or an empty first line is an error.
 *   2. -o password_file=FILE   : the first line of FILE.
 *   3. -o password_keyring     : the desktop keyring (fs/keyring.h); not
 *      found there is an error, not a reason to look further.
 *   4. environment IMAPFS_PASSWORD.
 *   5. ~/.netrc (or $NETRC): the entry "machine HOST" (login, if given,
 *      must equal USER), else "default". Refused (error) if the file is
 *      readable or writable by group or others.
 * Trailing "\r" / "\n" are removed. fs_password_get() is not thread-safe
 * (it runs at startup); fs_password_command() is.
 */
#ifndef IMAPFS_FS_PASSWORD_H
#define IMAPFS_FS_PASSWORD_H

#include <glib.h>

struct fs_password_sources {
	const char *command; /* may be NULL */
	const char *file;    /* may be NULL */
	gboolean keyring;    /* -o password_keyring */
	const char *user;    /* for the netrc login match */
	const char *host;    /* for the netrc machine match */
};

/* Returns the password (g_malloc'd; the caller wipes it with
 * fs_password_free()) or NULL with an error whose message says which source
 * failed and why, never containing the password. When no source has one:
 * "no password: use -o password_command=, -o password_file=,
 * IMAPFS_PASSWORD or ~/.netrc". */
char *fs_password_get(const struct fs_password_sources *sources,
		      GError **error);

/* Runs @command like password_command (/bin/sh -c, stdin /dev/null, cwd
 * "/", a 30 s timeout) and returns the first line of its output
 * (g_malloc'd; wipe it with fs_password_free()), or NULL with an error
 * that names the source as @name ("oauth2_token_command") and never
 * quotes the output. Thread-safe: may run while the mount serves. */
char *fs_password_command(const char *command, const char *name,
			  GError **error);

/* Overwrites the string with zeros and frees it. NULL is allowed. */
void fs_password_free(char *password);

#endif
