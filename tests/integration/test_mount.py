"""mount(8) integration: `mount -t fuse.imapfs`, an fstab line, and
mount.fuse3 run directly, each mounting the test Dovecot with the
*installed* imapfs, reading a message and unmounting.

mount(8) runs its helpers with no PATH, so /bin/sh's default search path
finds `imapfs`: /usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:... .
The tests never touch the machine's directories: each runs in a private
mount namespace (unshare -m) in which the directory holding the binary
from `meson install --destdir` is bind-mounted on /usr/local/sbin.  The
fstab line lives in a temporary file (`mount --fstab FILE MOUNTPOINT`).
"""

import os
import shutil
import subprocess

import pytest

import testenv
from test_cli import mnt  # noqa: F401 - the fixture
from test_cli import secret_file, url
from test_install import find_installed, installed  # noqa: F401

SCRIPT = r"""
set -eu
mount --bind "$BIN_DIR" /usr/local/sbin
trap 'fusermount3 -uz "$MNT" 2>/dev/null || true' EXIT
case "$HOW" in
mount) mount -t fuse.imapfs "$URL" "$MNT" -o "$OPTS" ;;
fstab) mount --fstab "$FSTAB" "$MNT" ;;
helper) /sbin/mount.fuse3 "$URL" "$MNT" -t fuse.imapfs -o "$OPTS" ;;
esac
grep -F " $MNT fuse.imapfs " /proc/self/mounts >"$OUT.mounts"
cat "$MNT/INBOX/$MSG" >"$OUT"
case "$HOW" in
fstab) umount "$MNT" ;;
*) fusermount3 -u "$MNT" ;;
esac
trap - EXIT
"""


def need_tools():
    for tool in ("unshare", "mount", "umount"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed")
    if not os.path.exists("/sbin/mount.fuse3"):
        pytest.skip("/sbin/mount.fuse3 is missing (Debian package fuse3)")


def mount_in_namespace(env, installed, mnt, tmp_path, how, opts):
    need_tools()
    bins = find_installed(installed, "bin/imapfs")
    assert len(bins) == 1, bins
    uid = min(env.truth.messages("INBOX"))
    out = str(tmp_path / "out")
    fstab = tmp_path / "fstab"
    # fstab fields are blank-separated; our temporary paths have none
    fstab.write_text(f"{url(env.server)} {mnt} fuse.imapfs {opts} 0 0\n")
    e = {k: v for k, v in os.environ.items() if k != "IMAPFS_PASSWORD"}
    e.update(BIN_DIR=os.path.dirname(bins[0]), MNT=mnt, URL=url(env.server),
             OPTS=opts, FSTAB=str(fstab), HOW=how, OUT=out,
             MSG=f"{uid}.eml")
    r = None
    try:
        r = subprocess.run(["unshare", "--mount", "--propagation", "private",
                            "sh", "-c", SCRIPT], env=e,
                           stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True, timeout=120)
    finally:
        # the daemon lives in the namespace; if the script failed before
        # unmounting, ending it ends the mount and the namespace too
        pid = testenv.daemon_pid(mnt)
        if pid is not None and (r is None or r.returncode != 0):
            os.kill(pid, 9)
    assert r.returncode == 0, f"{how} failed:\n{r.stdout}"
    with open(out, "rb") as f:
        assert f.read() == env.truth.body("INBOX", uid)
    with open(out + ".mounts") as f:
        mounts = f.read()
    testenv.wait_for(lambda: testenv.daemon_pid(mnt) is None, 10,
                     what="imapfs exit after unmount")
    return mounts


def test_mount_t_fuse_imapfs(env, installed, mnt, tmp_path):  # noqa: F811
    pw = secret_file(tmp_path, env.server.password)
    mounts = mount_in_namespace(
        env, installed, mnt, tmp_path, "mount",
        f"password_file={pw},cafile={env.server.cafile}")
    assert mounts.startswith(f"imapfs:{env.server.user}@"), mounts


def test_fstab_line(env, installed, mnt, tmp_path):  # noqa: F811
    pw = secret_file(tmp_path, env.server.password)
    mounts = mount_in_namespace(
        env, installed, mnt, tmp_path, "fstab",
        f"noauto,user,_netdev,password_file={pw},"
        f"cafile={env.server.cafile}")
    # "user" makes mount(8) add noexec,nosuid,nodev
    assert "nosuid" in mounts and "nodev" in mounts, mounts


def test_mount_fuse3_generic_options(env, installed, mnt,  # noqa: F811
                                     tmp_path):
    """mount.fuse3 run by hand hands over generic options that mount(8)
    would have stripped; imapfs accepts them."""
    pw = secret_file(tmp_path, env.server.password)
    mount_in_namespace(
        env, installed, mnt, tmp_path, "helper",
        f"defaults,relatime,owner,x-gvfs-show,comment=x,noauto,_netdev,"
        f"password_file={pw},cafile={env.server.cafile}")
