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

#include "session.h"

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

/* Namespaces (docs/SEMANTICS.md, "Namespaces").
 *
 * The primary personal namespace is the mount root, its prefix stripped:
 * with prefix "INBOX." (Courier, Cyrus) "INBOX.Archive" is "Archive", as
 * on a server with prefix "" (Dovecot). INBOX is "INBOX". A mailbox whose
 * first component below a non-empty prefix is "INBOX" in any case
 * ("INBOX.INBOX") would collide with INBOX itself; its first file name
 * has its first letter escaped: "%49NBOX" (or "%69nbox"), which no other
 * name maps to.
 *
 * Every other namespace (other users, shared, a second personal one) is
 * shown under a top-level directory: its full server names are mapped as
 * usual, so prefix "shared." gives "shared/bob/INBOX" and "#shared/"
 * gives "#shared/...". A namespace with an empty prefix (Cyrus's shared
 * one) gets a directory named after its kind: "Other Users", "Shared
 * Folders" or "Personal Folders". If a primary personal mailbox already
 * has that top-level name, the namespace directory's name gets a "%"
 * appended ("shared%"): escaped names never end in a lone "%", so the two
 * can never collide, and a personal mailbox is never hidden. */

/* Where a mailbox appears: @names is the file-name path from the root
 * (NULL-terminated), @levels[i] the server's name of the directory
 * @names[0..i] (NULL for a namespace directory that has no name on the
 * server, "" never); @levels has one entry per name plus a final NULL,
 * so it may hold NULLs before its end (not a strv). */
struct fs_namemap_path {
	char **names;
	char **levels;
};

/* Maps every struct imap_mailbox_info * of @infos (imap_session_list())
 * to its path as described above. Returns an array of the same length
 * and order holding struct fs_namemap_path * (freed by the array).
 * Never returns NULL. */
GPtrArray *fs_namemap_mailbox_paths(GPtrArray *infos);

/* Inverse of the primary personal mapping: returns the server name of the
 * mailbox at file-name path @components (n of them, from the mount root)
 * on a server whose personal namespace has @prefix ("" or e.g. "INBOX.")
 * and @delimiter, or NULL when no mailbox of the personal namespace can
 * have that path: a component that does not unescape, contains the
 * delimiter, a namespace directory name ("shared%"), or a child of INBOX
 * when the prefix is not empty (there "INBOX.x" is shown as "x"). For
 * mkdir/rename at or below the top level of the personal tree. */
char *fs_namemap_path_to_server_name(const char *prefix, char delimiter,
				     const char *const *components, size_t n);

/* If @name is a message file name "<UID>.eml" with a UID in 1..2^32-1
 * written without leading zeros, stores the UID and returns TRUE. */
gboolean fs_namemap_parse_message_name(const char *name, guint32 *uid_r);

/* Formats the message file name for @uid into @buf (at least 16 bytes). */
void fs_namemap_message_name(guint32 uid, char *buf, gsize size);

#endif
