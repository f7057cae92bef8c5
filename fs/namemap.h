/* namemap.h - mapping between mailbox names and file names.
 *
 * A mailbox's full name on the server is split at the server's hierarchy
 * delimiter into components; each component is decoded from modified
 * UTF-7 and then escaped into one file name:
 *
 *   "%"  -> "%25"     so that the escaping is reversible
 *   "/"  -> "%2F"     a "/" inside a component (delimiter is not "/")
 *   ""   -> "%"       an empty component ("a..b" on a "." server)
 *   "."  -> "%2E", ".." -> "%2E%2E"
 *   a name of the form DIGITS.eml gets its "." written "%2E" so it can
 *   never collide with a message file name "<UID>.eml".
 *
 * A component that is not valid modified UTF-7 is shown undecoded (it is
 * ASCII), escaped the same way, so it is never dropped.
 * Pure functions, thread-safe.
 */
#ifndef IMAPFS_FS_NAMEMAP_H
#define IMAPFS_FS_NAMEMAP_H

#include <glib.h>

/* Splits the server's mailbox name @mailbox (as sent in LIST, modified
 * UTF-7) at @delimiter (0 for a flat namespace: one component) and returns
 * a NULL-terminated vector of file names, one per component (free with
 * g_strfreev). Never returns NULL. */
char **fs_namemap_mailbox_to_path(const char *mailbox, char delimiter);

/* Escapes one decoded (UTF-8) mailbox component into a file name as in the
 * table above. Never returns NULL. */
char *fs_namemap_escape(const char *component);

/* Reverses fs_namemap_escape(): returns the UTF-8 component, or NULL if
 * @name is not a valid escaped name (bad %XX, or an escape that
 * fs_namemap_escape() would not produce). */
char *fs_namemap_unescape(const char *name);

/* Returns the server's modified UTF-7 mailbox name for the file-name path
 * @components (n of them) under @delimiter, or NULL if a component cannot
 * be unescaped or contains the delimiter itself after unescaping.
 * Inverse of fs_namemap_mailbox_to_path() for canonical names. */
char *fs_namemap_path_to_mailbox(const char *const *components, size_t n,
				 char delimiter);

/* If @name is a message file name "<UID>.eml" with a UID in 1..2^32-1
 * written without leading zeros, stores the UID and returns TRUE. */
gboolean fs_namemap_parse_message_name(const char *name, guint32 *uid_r);

/* Formats the message file name for @uid into @buf (at least 16 bytes). */
void fs_namemap_message_name(guint32 uid, char *buf, gsize size);

#endif
