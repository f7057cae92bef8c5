/* test_mountopts.c - fs/mountopts.c (which -o options are FUSE's, which
 * are mount(8)'s and ignored, which are refused) and fs/mountcheck.c
 * (finding a FUSE mount in mountinfo). */
#include "config.h"

#include <string.h>

#include <glib.h>

#include "mountcheck.h"
#include "mountopts.h"

static const struct {
	const char *opt;
	enum fs_mountopt_kind kind;
} cases[] = {
	/* what mount.fuse3 hands over from "mount -t fuse.imapfs" */
	{"rw", FS_MOUNTOPT_FUSE},
	{"dev", FS_MOUNTOPT_FUSE},
	{"suid", FS_MOUNTOPT_FUSE},
	{"exec", FS_MOUNTOPT_FUSE},
	{"noexec", FS_MOUNTOPT_FUSE},
	{"nosuid", FS_MOUNTOPT_FUSE},
	{"nodev", FS_MOUNTOPT_FUSE},
	{"allow_other", FS_MOUNTOPT_FUSE},
	{"auto_unmount", FS_MOUNTOPT_FUSE},
	{"fsname=mail", FS_MOUNTOPT_FUSE},
	{"max_read=131072", FS_MOUNTOPT_FUSE},
	{"noatime", FS_MOUNTOPT_FUSE},
	/* fstab and mount(8) generic options */
	{"defaults", FS_MOUNTOPT_IGNORE},
	{"noauto", FS_MOUNTOPT_IGNORE},
	{"user", FS_MOUNTOPT_IGNORE},
	{"users", FS_MOUNTOPT_IGNORE},
	{"_netdev", FS_MOUNTOPT_IGNORE},
	{"nofail", FS_MOUNTOPT_IGNORE},
	{"relatime", FS_MOUNTOPT_IGNORE},
	{"x-systemd.automount", FS_MOUNTOPT_IGNORE},
	{"x-gvfs-show", FS_MOUNTOPT_IGNORE},
	{"comment=systemd.automount", FS_MOUNTOPT_IGNORE},
	/* neither */
	{"foo", FS_MOUNTOPT_UNKNOWN},
	{"conections=2", FS_MOUNTOPT_UNKNOWN},
	{"nonempty", FS_MOUNTOPT_UNKNOWN},
	{"-s", FS_MOUNTOPT_UNKNOWN},
	{"allow_other=1", FS_MOUNTOPT_UNKNOWN},
	{"fsname", FS_MOUNTOPT_UNKNOWN},
	{"", FS_MOUNTOPT_UNKNOWN},
};

static void test_classify(void)
{
	for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
		if (fs_mountopt_classify(cases[i].opt) != cases[i].kind)
			g_error("'%s': got %d, want %d", cases[i].opt,
				fs_mountopt_classify(cases[i].opt),
				cases[i].kind);
	}
}

static void test_filter(void)
{
	char *err = NULL;

	g_assert_cmpint(fs_mountopt_filter("rw", &err), ==, 1);
	g_assert_cmpint(fs_mountopt_filter("_netdev", &err), ==, 0);
	g_assert_null(err);
	g_assert_cmpint(fs_mountopt_filter("bogus", &err), ==, 0);
	g_assert_cmpstr(err, ==,
			"unknown option '-o bogus' (see imapfs --help or "
			"man imapfs)");
	/* the first unknown one is reported */
	g_assert_cmpint(fs_mountopt_filter("-x", &err), ==, 0);
	g_assert_nonnull(strstr(err, "bogus"));
	g_free(err);
	err = NULL;
	fs_mountopt_filter("-x", &err);
	g_assert_cmpstr(err, ==,
			"unknown option '-x' (see imapfs --help or man "
			"imapfs)");
	g_free(err);
}

static const char mountinfo[] =
	"22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw\n"
	"40 22 0:35 / /tmp/a\\040b rw,nosuid,nodev shared:20 - fuse.imapfs "
	"imapfs:alice@host rw,user_id=0,group_id=0\n"
	"41 22 0:36 / /tmp/t rw - tmpfs tmpfs rw\n"
	"42 22 0:37 / /tmp/s rw - fuse.sshfs bob@h:/ rw\n"
	"43 42 0:38 / /tmp/s rw - fuse.imapfs imapfs:carol@h rw\n"
	"44 22 0:39 / /tmp/o rw master:3 shared:9 - fuse /dev/fuse rw\n"
	"bad line\n"
	"\n";

static void test_fuse_mount(void)
{
	char *m;

	m = fs_mountcheck_fuse_mount(mountinfo, "/tmp/a b");
	g_assert_cmpstr(m, ==, "fuse.imapfs imapfs:alice@host");
	g_free(m);
	/* stacked: the top one */
	m = fs_mountcheck_fuse_mount(mountinfo, "/tmp/s");
	g_assert_cmpstr(m, ==, "fuse.imapfs imapfs:carol@h");
	g_free(m);
	/* optional fields before the separator */
	m = fs_mountcheck_fuse_mount(mountinfo, "/tmp/o");
	g_assert_cmpstr(m, ==, "fuse /dev/fuse");
	g_free(m);
	g_assert_null(fs_mountcheck_fuse_mount(mountinfo, "/tmp/t"));
	g_assert_null(fs_mountcheck_fuse_mount(mountinfo, "/tmp/a"));
	g_assert_null(fs_mountcheck_fuse_mount(mountinfo, "/"));
	g_assert_null(fs_mountcheck_fuse_mount("", "/tmp/a b"));
}

static void test_fd_path(void)
{
	GError *error = NULL;

	g_assert_true(fs_mountcheck("/dev/fd/3", &error));
	g_assert_false(fs_mountcheck("/dev/fd/x", &error));
	g_clear_error(&error);
	g_assert_false(fs_mountcheck("/nonexistent/imapfs-test", &error));
	g_assert_nonnull(strstr(error->message, "No such file"));
	g_clear_error(&error);
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/mountopts/classify", test_classify);
	g_test_add_func("/mountopts/filter", test_filter);
	g_test_add_func("/mountcheck/fuse_mount", test_fuse_mount);
	g_test_add_func("/mountcheck/fd_path", test_fd_path);
	return g_test_run();
}
