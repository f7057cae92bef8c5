/* control.c - see control.h. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "control.h"
#include "imap-error.h"
#include "log.h"

enum {
	CONTROL_TIMEOUT_MS = 2000,
	CONTROL_MAX_REQUEST = 64,
	CONTROL_MAX_REPLY = 1 << 20,
};

struct fs_control {
	char *path;
	int listen_fd;
	int wake[2]; /* [0] polled by the thread; [1] written by stop */
	GThread *thread;
	fs_control_fn *fn;
	void *user_data;
};

/* SIGHUP's pipe: written by the handler, read by the control thread. Set
 * before the handler is installed, cleared after it is removed. */
static int control_hup_fd = -1;

static void control_on_hup(int sig)
{
	char c = 'h';
	int saved = errno;

	(void)sig;
	if (control_hup_fd >= 0 && write(control_hup_fd, &c, 1) < 0) {
		/* a full pipe already holds a pending refresh */
	}
	errno = saved;
}

char *fs_control_socket_path(const char *mountpoint)
{
	char *abs = g_canonicalize_filename(mountpoint, NULL);
	char *hash = g_compute_checksum_for_string(G_CHECKSUM_SHA256, abs, -1);
	char *path;

	hash[16] = '\0';
	path = g_strdup_printf("%s/imapfs/%s.sock", g_get_user_runtime_dir(),
			       hash);
	g_free(hash);
	g_free(abs);
	return path;
}

static gboolean control_address(const char *path, struct sockaddr_un *sa,
				GError **error)
{
	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sa->sun_path)) {
		g_set_error(error, IMAP_ERROR, IMAP_ERROR_INVALID,
			    "control socket path too long: %s", path);
		return FALSE;
	}
	strcpy(sa->sun_path, path);
	return TRUE;
}

static void control_set_timeouts(int fd)
{
	struct timeval tv = {CONTROL_TIMEOUT_MS / 1000,
			     (CONTROL_TIMEOUT_MS % 1000) * 1000};

	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

static void control_write_all(int fd, const char *buf, size_t len)
{
	while (len > 0) {
		ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return;
		buf += n;
		len -= (size_t)n;
	}
}

static void control_serve_one(struct fs_control *c, int fd)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);
	char req[CONTROL_MAX_REQUEST + 1];
	size_t got = 0;
	char *reply, *nl;

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0 ||
	    (cred.uid != geteuid() && cred.uid != 0))
		return;
	control_set_timeouts(fd);
	while (got < CONTROL_MAX_REQUEST) {
		ssize_t n = recv(fd, req + got, CONTROL_MAX_REQUEST - got, 0);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
		if (memchr(req, '\n', got) != NULL)
			break;
	}
	req[got] = '\0';
	nl = strchr(req, '\n');
	if (nl == NULL)
		return;
	*nl = '\0';
	reply = c->fn(req, c->user_data);
	if (reply == NULL)
		reply = g_strdup_printf("error: unknown request '%s'\n", req);
	control_write_all(fd, reply, strlen(reply));
	g_free(reply);
}

static gpointer control_thread(gpointer data)
{
	struct fs_control *c = data;

	for (;;) {
		struct pollfd p[2] = {{c->listen_fd, POLLIN, 0},
				      {c->wake[0], POLLIN, 0}};
		char buf[16];
		int fd;

		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (p[1].revents != 0) {
			ssize_t n = read(c->wake[0], buf, sizeof(buf));

			/* 's' = stop; anything else (SIGHUP) = refresh */
			if (n <= 0 || memchr(buf, 's', (size_t)n) != NULL)
				break;
			g_free(c->fn("refresh", c->user_data));
			continue;
		}
		if (p[0].revents == 0)
			continue;
		fd = accept4(c->listen_fd, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0)
			continue;
		control_serve_one(c, fd);
		close(fd);
	}
	return NULL;
}

struct fs_control *fs_control_open(const char *path, fs_control_fn *fn,
				   void *user_data, GError **error)
{
	struct fs_control *c;
	struct sockaddr_un sa;
	char *dir;
	mode_t old;

	if (!control_address(path, &sa, error))
		return NULL;
	dir = g_path_get_dirname(path);
	if (g_mkdir_with_parents(dir, 0700) != 0) {
		g_set_error(error, IMAP_ERROR, IMAP_ERROR_IO, "%s: %s", dir,
			    g_strerror(errno));
		g_free(dir);
		return NULL;
	}
	g_free(dir);
	c = g_new0(struct fs_control, 1);
	c->path = g_strdup(path);
	c->fn = fn;
	c->user_data = user_data;
	c->wake[0] = c->wake[1] = -1;
	c->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (c->listen_fd < 0 || pipe2(c->wake, O_CLOEXEC | O_NONBLOCK) != 0)
		goto fail;
	/* A socket left by a daemon that died: the mount point check has
	 * made sure no live mount owns this path. */
	unlink(path);
	old = umask(077);
	if (bind(c->listen_fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		umask(old);
		goto fail;
	}
	umask(old);
	if (listen(c->listen_fd, 8) != 0)
		goto fail;
	return c;
fail:
	g_set_error(error, IMAP_ERROR, IMAP_ERROR_IO, "control socket %s: %s",
		    path, g_strerror(errno));
	unlink(path);
	fs_control_stop(c);
	return NULL;
}

void fs_control_run(struct fs_control *c)
{
	struct sigaction act;

	if (c == NULL || c->thread != NULL)
		return;
	c->thread = g_thread_new("control", control_thread, c);
	control_hup_fd = c->wake[1];
	memset(&act, 0, sizeof(act));
	act.sa_handler = control_on_hup;
	sigemptyset(&act.sa_mask);
	act.sa_flags = SA_RESTART;
	sigaction(SIGHUP, &act, NULL);
}

void fs_control_stop(struct fs_control *c)
{
	char s = 's';

	if (c == NULL)
		return;
	if (c->thread != NULL) {
		signal(SIGHUP, SIG_DFL);
		control_hup_fd = -1;
		if (write(c->wake[1], &s, 1) != 1)
			imapfs_log(IMAPFS_LOG_WARNING,
				   "control: cannot stop the thread");
		g_thread_join(c->thread);
	}
	if (c->listen_fd >= 0) {
		close(c->listen_fd);
		unlink(c->path);
	}
	if (c->wake[0] >= 0)
		close(c->wake[0]);
	if (c->wake[1] >= 0)
		close(c->wake[1]);
	g_free(c->path);
	g_free(c);
}

int fs_control_client(const char *mountpoint, const char *request)
{
	char *path = fs_control_socket_path(mountpoint);
	struct sockaddr_un sa;
	GString *reply = g_string_new(NULL);
	GError *error = NULL;
	char buf[4096], *req;
	int fd, ret = 1;

	if (!control_address(path, &sa, &error)) {
		fprintf(stderr, "imapfs: %s\n", error->message);
		g_error_free(error);
		goto out;
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		fprintf(stderr,
			"imapfs: no running imapfs mount at %s (control "
			"socket %s: %s)\n",
			mountpoint, path, g_strerror(errno));
		if (fd >= 0)
			close(fd);
		goto out;
	}
	control_set_timeouts(fd);
	req = g_strdup_printf("%s\n", request);
	control_write_all(fd, req, strlen(req));
	g_free(req);
	for (;;) {
		ssize_t n = recv(fd, buf, sizeof(buf), 0);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			fprintf(stderr,
				"imapfs: the mount at %s did not answer: %s\n",
				mountpoint, g_strerror(errno));
			close(fd);
			goto out;
		}
		if (n == 0 || reply->len > CONTROL_MAX_REPLY)
			break;
		g_string_append_len(reply, buf, n);
	}
	close(fd);
	if (reply->len == 0) {
		fprintf(stderr, "imapfs: the mount at %s did not answer\n",
			mountpoint);
		goto out;
	}
	fwrite(reply->str, 1, reply->len, stdout);
	ret = g_str_has_prefix(reply->str, "error:") ? 1 : 0;
out:
	g_string_free(reply, TRUE);
	g_free(path);
	return ret;
}
