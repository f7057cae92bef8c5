/* accounts.h - named accounts in $XDG_CONFIG_HOME/imapfs/config.
 *
 * A GLib key file, one group per account, "[account NAME]" or "[NAME]":
 *
 *   [account work]
 *   url=imaps://alice@mail.example.org
 *   password_command=pass show mail/work
 *   (or oauth2_token_command=~/bin/mail-token work)
 *   cafile=/etc/ssl/work-ca.pem
 *   options=connections=2,cache_size=128
 *
 * "imapfs work ~/mail" mounts account "work": when the first positional
 * argument is not a URL (it has no "://"), the command line is rewritten
 * into "imapfs -o <the file's options> <the command line's> URL
 * MOUNTPOINT".  An option given on the command line replaces the file's
 * option of the same name; a credential source on the command line
 * (password_command, password_file or oauth2_token_command) replaces all
 * of the file's.
 *
 * The file never holds a secret: a "password" key in any group is refused
 * (mentioning that the file is readable by others, when it is).  Since the
 * file names commands that imapfs runs, it is refused unless it belongs to
 * the user (or root) and neither group nor others may write it.  Unknown
 * keys are refused, so a typo is not silently ignored.
 *
 * Not thread-safe (runs at startup, before anything else).
 */
#ifndef IMAPFS_FS_ACCOUNTS_H
#define IMAPFS_FS_ACCOUNTS_H

#include <glib.h>

/* Path of the config file: $XDG_CONFIG_HOME/imapfs/config, by default
 * ~/.config/imapfs/config (g_malloc'd). */
char *fs_accounts_path(void);

/* If the first positional argument of @argv names an account, sets
 * *@argv_r to the expanded argument vector (NULL-terminated, g_strfreev()
 * it; argv[0] is kept) and returns TRUE.  If there is no positional
 * argument or it is a URL, returns TRUE with *@argv_r = NULL (use @argv as
 * it is).  Returns FALSE with a one-line message in @error
 * (IMAP_ERROR_INVALID) when the file is missing, unsafe, unreadable or
 * malformed, or has no such account; the message names the file. */
gboolean fs_accounts_expand(int argc, char **argv, char ***argv_r,
			    GError **error);

#endif
