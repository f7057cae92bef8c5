/* mountcheck.c - see mountcheck.h. */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

#include "imap-error.h"
#include "mountcheck.h"

/* mountinfo writes blanks, tabs, newlines and backslashes as \ooo. */
static char *mountcheck_unescape(const char *s)
{
	GString *out = g_string_new(NULL);

	while (*s != '\0') {
		if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' && s[2] >= '0' &&
		    s[2] <= '7' && s[3] >= '0' && s[3] <= '7') {
			g_string_append_c(out, (char)((s[1] - '0') * 64 +
						      (s[2] - '0') * 8 +
						      (s[3] - '0')));
			s += 4;
		} else {
			g_string_append_c(out, *s++);
		}
	}
	return g_string_free(out, FALSE);
}

char *fs_mountcheck_fuse_mount(const char *mountinfo, const char *path)
{
	char **lines = g_strsplit(mountinfo, "\n", -1);
	char *found = NULL;
	size_t i;

	/* "36 35 0:40 / /mnt/x rw,nosuid - fuse.imapfs imapfs:a@h rw,..."
	 * field 5 is the mount point; after " - " come type and source. */
	for (i = 0; lines[i] != NULL; i++) {
		char **f = g_strsplit(lines[i], " ", -1);
		guint n = g_strv_length(f), sep;
		char *mp;

		for (sep = 6; sep < n && strcmp(f[sep], "-") != 0; sep++)
			;
		if (n < 5 || sep + 2 >= n ||
		    !g_str_has_prefix(f[sep + 1], "fuse")) {
			g_strfreev(f);
			continue;
		}
		mp = mountcheck_unescape(f[4]);
		if (strcmp(mp, path) == 0) {
			char *src = mountcheck_unescape(f[sep + 2]);

			g_free(found);
			found = g_strdup_printf("%s %s", f[sep + 1], src);
			g_free(src);
		}
		g_free(mp);
		g_strfreev(f);
	}
	g_strfreev(lines);
	return found;
}

static gboolean mountcheck_is_fd_path(const char *path)
{
	const char *p;

	if (!g_str_has_prefix(path, "/dev/fd/") || path[8] == '\0')
		return FALSE;
	for (p = path + 8; *p != '\0'; p++)
		if (!g_ascii_isdigit(*p))
			return FALSE;
	return TRUE;
}

static void mountcheck_dead(const char *path, GError **error)
{
	g_set_error(error, IMAP_ERROR, IMAP_ERROR_INVALID,
		    "%s: a dead FUSE mount is still there (its daemon has "
		    "gone); clean it up with 'fusermount3 -u %s' and mount "
		    "again",
		    path, path);
}

gboolean fs_mountcheck(const char *path, GError **error)
{
	struct statvfs sv;
	struct stat st;
	char *real, *info = NULL, *mounted = NULL;

	if (mountcheck_is_fd_path(path))
		return TRUE;
	if (stat(path, &st) != 0) {
		int e = errno;

		if (e == ENOTCONN || e == ECONNABORTED)
			mountcheck_dead(path, error);
		else
			g_set_error(error, IMAP_ERROR, IMAP_ERROR_INVALID,
				    "mountpoint %s: %s", path, g_strerror(e));
		return FALSE;
	}
	if (!S_ISDIR(st.st_mode)) {
		g_set_error(error, IMAP_ERROR, IMAP_ERROR_INVALID,
			    "mountpoint %s is not a directory", path);
		return FALSE;
	}
	real = realpath(path, NULL);
	if (real != NULL &&
	    g_file_get_contents("/proc/self/mountinfo", &info, NULL, NULL))
		mounted = fs_mountcheck_fuse_mount(info, real);
	g_free(info);
	free(real);
	if (mounted != NULL) {
		/* The kernel answers stat() from its cache after the daemon
		 * has died; statfs always asks the daemon.  A dead mount
		 * answers ENOTCONN, or ECONNABORTED when the connection was
		 * aborted with requests in flight. */
		if (statvfs(path, &sv) != 0 &&
		    (errno == ENOTCONN || errno == ECONNABORTED))
			mountcheck_dead(path, error);
		else
			g_set_error(error, IMAP_ERROR, IMAP_ERROR_INVALID,
				    "%s is already mounted (%s); unmount it "
				    "first with "
				    "'fusermount3 -u %s'",
				    path, mounted, path);
		g_free(mounted);
		return FALSE;
	}
	return TRUE;
}
