/* control.h - the control socket of a running mount, and its client.
 *
 *   imapfs status MOUNTPOINT    what the mount is doing
 *   imapfs refresh MOUNTPOINT   drop cached listings (as SIGHUP does)
 *
 * Each mount listens on a UNIX socket of its own,
 * $XDG_RUNTIME_DIR/imapfs/<hash of the mount point>.sock (directory 0700,
 * socket 0600; only the same user or root is answered).  It is served by a
 * thread of its own, never through the FUSE mount, so it answers even when
 * every FUSE worker waits for a server that went away, and it cannot
 * collide with anything in the mail.  The protocol: one request line
 * ("status" or "refresh"), then the reply text, then the daemon closes.
 * Every wait is bounded (2 s per request).
 */
#ifndef IMAPFS_FS_CONTROL_H
#define IMAPFS_FS_CONTROL_H

#include <glib.h>

struct fs_control;

/* Answers one request (e.g. "status"): the reply text, g_malloc'd, or NULL
 * for an unknown request. Called on the control thread. */
typedef char *fs_control_fn(const char *request, void *user_data);

/* Path of the control socket of a mount at @mountpoint (made absolute
 * against the current directory and normalized as a string, with no system
 * call on the mount itself). g_malloc'd. */
char *fs_control_socket_path(const char *mountpoint);

/* Binds @path (replacing a stale socket of a dead daemon) and listens, so
 * a client that connects as soon as imapfs has returned is answered.  Call
 * before daemonizing (the socket survives the fork).  Returns NULL with an
 * error (the mount works without it). */
struct fs_control *fs_control_open(const char *path, fs_control_fn *fn,
				   void *user_data, GError **error);

/* Starts the control thread, which calls @fn for every request; SIGHUP
 * then runs @fn("refresh") on that thread too.  Call after daemonizing.
 * NULL is allowed (does nothing). */
void fs_control_run(struct fs_control *control);

/* Stops the thread, removes the socket and frees @control (NULL allowed).
 * Restores the default SIGHUP action. */
void fs_control_stop(struct fs_control *control);

/* The client side: sends @request to the mount at @mountpoint and copies
 * the reply to stdout. Returns the exit status: 0, or 1 after printing one
 * line to stderr (no such mount, daemon not answering). */
int fs_control_client(const char *mountpoint, const char *request);

#endif
