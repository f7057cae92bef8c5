/* mountopts.c - see mountopts.h.
 *
 * The FUSE list is what libfuse 3.14's fuse_session_new() accepts (its
 * mount options in lib/mount.c and the low-level "allow_root"); a name it
 * does not know would make the session fail after the login, reported on
 * two lines.  The ignored list is what mount(8) and mount.fuse3 pass on
 * without stripping (mount.fuse3 itself strips user, nouser, users, auto,
 * noauto, _netdev and nofail, mount(8) most of the others, but either may
 * be run directly), plus the atime variants libfuse does not know: reads
 * never change a message, so atime has no meaning here.
 */
#include "config.h"

#include <string.h>

#include "mountopts.h"

static const char *const mountopts_fuse[] = {
	"allow_other",
	"allow_root",
	"auto_unmount",
	"default_permissions",
	"rw",
	"suid",
	"nosuid",
	"dev",
	"nodev",
	"exec",
	"noexec",
	"async",
	"sync",
	"dirsync",
	"noatime",
	"nodiratime",
	"nostrictatime",
	"symfollow",
	"nosymfollow",
};

/* Options with a value, matched by "name=". */
static const char *const mountopts_fuse_value[] = {
	"fsname=",  "subtype=",	  "max_read=",	 "blksize=",
	"context=", "fscontext=", "defcontext=", "rootcontext=",
};

static const char *const mountopts_ignore[] = {
	"defaults", "auto",	  "noauto",   "user",	    "nouser",
	"users",    "owner",	  "group",    "_netdev",    "nofail",
	"atime",    "diratime",	  "relatime", "norelatime", "strictatime",
	"lazytime", "nolazytime",
};

static gboolean mountopts_in(const char *opt, const char *const *list, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (strcmp(opt, list[i]) == 0)
			return TRUE;
	return FALSE;
}

enum fs_mountopt_kind fs_mountopt_classify(const char *opt)
{
	size_t i;

	if (mountopts_in(opt, mountopts_fuse, G_N_ELEMENTS(mountopts_fuse)))
		return FS_MOUNTOPT_FUSE;
	for (i = 0; i < G_N_ELEMENTS(mountopts_fuse_value); i++)
		if (g_str_has_prefix(opt, mountopts_fuse_value[i]))
			return FS_MOUNTOPT_FUSE;
	if (mountopts_in(opt, mountopts_ignore, G_N_ELEMENTS(mountopts_ignore)))
		return FS_MOUNTOPT_IGNORE;
	/* x-systemd.automount, x-gvfs-show, comment=...: for other tools */
	if (g_str_has_prefix(opt, "x-") || g_str_has_prefix(opt, "comment="))
		return FS_MOUNTOPT_IGNORE;
	return FS_MOUNTOPT_UNKNOWN;
}

int fs_mountopt_filter(const char *opt, char **error_r)
{
	switch (fs_mountopt_classify(opt)) {
	case FS_MOUNTOPT_FUSE:
		return 1;
	case FS_MOUNTOPT_IGNORE:
		return 0;
	case FS_MOUNTOPT_UNKNOWN:
	default:
		break;
	}
	if (*error_r == NULL)
		*error_r = g_strdup_printf(
			"unknown option '%s%s' (see imapfs --help or "
			"man imapfs)",
			opt[0] == '-' ? "" : "-o ", opt);
	return 0;
}
