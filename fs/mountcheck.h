/* mountcheck.h - is the mount point usable, before anything is mounted?
 *
 * Refuses, with one line the user can act on, a mount point that does not
 * exist, is not a directory, holds a live FUSE mount (imapfs would stack a
 * second mount on top of it) or a dead one whose daemon has gone (ENOTCONN:
 * "Transport endpoint is not connected", or ECONNABORTED), so a crashed mount is cleaned up
 * instead of being hidden.  Runs at startup, before the password is looked
 * up or the server contacted.  Not thread-safe (reads /proc/self/mountinfo).
 */
#ifndef IMAPFS_FS_MOUNTCHECK_H
#define IMAPFS_FS_MOUNTCHECK_H

#include <glib.h>

/* Returns TRUE if @path may be mounted on; otherwise FALSE with a one-line
 * message in @error (IMAP_ERROR_INVALID) that names @path and, for a mount
 * that is in the way, the command that removes it.  "/dev/fd/N" (a FUSE
 * descriptor that mount.fuse3 -o drop_privileges opened and mounted
 * already) is accepted without checks. */
gboolean fs_mountcheck(const char *path, GError **error);

/* The FUSE mount whose mount point is exactly @path (already resolved to a
 * canonical absolute path), as "TYPE SOURCE" (g_malloc'd), or NULL if none.
 * With several stacked, the top one. @mountinfo is the text of a
 * /proc/PID/mountinfo file (the tests pass their own). */
char *fs_mountcheck_fuse_mount(const char *mountinfo, const char *path);

#endif
