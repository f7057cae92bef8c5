/* sdnotify.c - see sdnotify.h. */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "sdnotify.h"

struct fs_sdnotify {
	/* Immutable after fs_sdnotify_open(). */
	struct sockaddr_un addr;
	socklen_t addr_len;
};

struct fs_sdnotify *fs_sdnotify_open(void)
{
	const char *path = getenv("NOTIFY_SOCKET");
	struct fs_sdnotify *n;
	size_t len;

	if (path == NULL)
		return NULL;
	len = strlen(path);
	/* A path or an abstract name; anything else (vsock: "vsock:...")
	 * is not for a user's mount. */
	if (len < 2 || (path[0] != '/' && path[0] != '@') ||
	    len >= sizeof(n->addr.sun_path)) {
		unsetenv("NOTIFY_SOCKET");
		return NULL;
	}
	n = g_new0(struct fs_sdnotify, 1);
	n->addr.sun_family = AF_UNIX;
	memcpy(n->addr.sun_path, path, len);
	if (path[0] == '@')
		n->addr.sun_path[0] = '\0';
	/* An abstract name's length is exact; a path includes its NUL. */
	n->addr_len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len +
				  (path[0] == '/' ? 1 : 0));
	unsetenv("NOTIFY_SOCKET");
	return n;
}

int fs_sdnotify_send(struct fs_sdnotify *n, const char *fmt, ...)
{
	va_list ap;
	char *msg;
	ssize_t sent;
	int fd, r = 0;

	if (n == NULL)
		return 0;
	va_start(ap, fmt);
	msg = g_strdup_vprintf(fmt, ap);
	va_end(ap);
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		r = -errno;
		goto out;
	}
	/* One datagram, never blocking a mount for systemd's sake. */
	sent = sendto(fd, msg, strlen(msg), MSG_NOSIGNAL | MSG_DONTWAIT,
		      (struct sockaddr *)&n->addr, n->addr_len);
	if (sent < 0)
		r = -errno;
	else if ((size_t)sent != strlen(msg))
		r = -EMSGSIZE;
	close(fd);
out:
	g_free(msg);
	return r;
}

void fs_sdnotify_free(struct fs_sdnotify *n)
{
	g_free(n);
}
