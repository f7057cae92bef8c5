/* sdnotify.h - tell systemd how the mount is doing (sd_notify(3)).
 *
 * Under a Type=notify unit systemd passes the path of a datagram socket in
 * $NOTIFY_SOCKET; each datagram is newline-separated KEY=VALUE lines
 * (READY=1, STOPPING=1, STATUS=...). This is that protocol, without
 * libsystemd. Without $NOTIFY_SOCKET everything here does nothing.
 */
#ifndef IMAPFS_FS_SDNOTIFY_H
#define IMAPFS_FS_SDNOTIFY_H

#include <glib.h>

struct fs_sdnotify;

/* Takes $NOTIFY_SOCKET (a path, or "@name" for an abstract socket) and
 * removes it from the environment, so the password and token commands
 * imapfs runs cannot speak for it. Returns NULL when it is unset or not
 * a usable address (then every call below is a no-op). Call from main()
 * before any thread starts; free with fs_sdnotify_free(). */
struct fs_sdnotify *fs_sdnotify_open(void);

/* Sends one datagram built from @fmt (printf-style; lines separated by
 * "\n", e.g. "READY=1\nSTATUS=Mounted"). Returns 0, or a negative errno if
 * it could not be sent (nothing else happens: systemd's view is only
 * informational beyond READY=1). @n may be NULL. Any thread. */
int fs_sdnotify_send(struct fs_sdnotify *n, const char *fmt, ...)
	G_GNUC_PRINTF(2, 3);

/* Frees @n (NULL is fine). */
void fs_sdnotify_free(struct fs_sdnotify *n);

#endif
