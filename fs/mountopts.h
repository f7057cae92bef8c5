/* mountopts.h - the FUSE and mount(8) options imapfs accepts besides its
 * own.
 *
 * imapfs is started by hand, by mount(8) through mount.fuse3 (which hands
 * over "rw", "dev", "suid", "defaults", "x-..." and the like), by fstab and
 * by systemd.  Every -o option that is not imapfs's own is looked up here:
 * options FUSE and the kernel understand are passed on, the generic ones
 * that mean nothing to a FUSE file system are dropped, anything else is an
 * error reported before any network traffic.  Pure functions, thread-safe.
 */
#ifndef IMAPFS_FS_MOUNTOPTS_H
#define IMAPFS_FS_MOUNTOPTS_H

#include <glib.h>

enum fs_mountopt_kind {
	FS_MOUNTOPT_UNKNOWN, /* not an option imapfs knows: refuse */
	FS_MOUNTOPT_FUSE,    /* hand to fuse_session_new() */
	FS_MOUNTOPT_IGNORE,  /* accepted from mount(8)/fstab, no effect */
};

/* Classifies one option as fuse_opt_parse() hands it over: "name" or
 * "name=value" from -o, or a dash argument such as "-s". */
enum fs_mountopt_kind fs_mountopt_classify(const char *opt);

/* The fuse_opt_parse() callback's answer for an option that is not
 * imapfs's own: 1 (keep it for FUSE), or 0 (drop it); for an unknown
 * option it also sets *@error_r, if still NULL, to a one-line message
 * (g_malloc'd) naming the option. */
int fs_mountopt_filter(const char *opt, char **error_r);

#endif
