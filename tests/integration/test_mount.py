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


# -- an fstab "user" mount by a user who is not root -------------------------

USER_SCRIPT = r"""
set -eu
mount --bind "$BIN_DIR" /usr/local/sbin
# The machine's /etc/fstab and /run/mount/utab are never touched: the
# namespace sees a file of the test's own and a private utab.
mount --bind "$FSTAB" /etc/fstab
mount -t tmpfs tmpfs /run/mount
# /dev/fuse is crw-rw-rw- on Debian (udev); where it is not (a container),
# the namespace gets such a node, the machine's stays as it is.
if ! runuser -u "$TUSER" -- test -r /dev/fuse -a -w /dev/fuse; then
  mknod -m 666 "$DEVDIR/fuse" c 10 229
  mount --bind "$DEVDIR/fuse" /dev/fuse
fi
trap 'fusermount3 -uz "$MNT" 2>/dev/null || true' EXIT
runuser -u "$TUSER" -- env HOME="$THOME" mount "$MNT"
grep -F " $MNT fuse.imapfs " /proc/self/mounts >"$OUT.mounts"
runuser -u "$TUSER" -- env HOME="$THOME" cat "$MNT/INBOX/$MSG" >"$OUT"
case "$HOW" in
umount) runuser -u "$TUSER" -- env HOME="$THOME" umount "$MNT" ;;
fusermount) runuser -u "$TUSER" -- env HOME="$THOME" fusermount3 -u "$MNT" ;;
esac
if grep -F " $MNT " /proc/self/mounts; then
  echo "still mounted after $HOW" >&2
  exit 1
fi
trap - EXIT
"""


@pytest.fixture
def test_user():
    """A throwaway user with a home of its own below /tmp (removed with
    the user afterwards): (name, home)."""
    for tool in ("useradd", "userdel", "runuser"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed")
    base = testenv.short_runtime_dir()
    os.chmod(base, 0o755)
    name = "imapfs-t" + os.path.basename(base)[-6:].lower().replace("_", "x")
    home = os.path.join(base, "home")
    r = subprocess.run(["useradd", "-M", "-U", "-d", home, "-s", "/bin/sh",
                        name], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, text=True)
    assert r.returncode == 0, r.stdout
    try:
        os.mkdir(home, 0o700)
        pw = __import__("pwd").getpwnam(name)
        os.chown(home, pw.pw_uid, pw.pw_gid)
        yield name, home, pw.pw_uid, pw.pw_gid
    finally:
        subprocess.run(["pkill", "-KILL", "-u", name])
        subprocess.run(["userdel", name], stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
        shutil.rmtree(base, ignore_errors=True)


@pytest.mark.parametrize("how", ["umount", "fusermount"])
def test_fstab_user_mount_by_non_root(env, installed, tmp_path,  # noqa: F811
                                      test_user, how):
    """The README's fstab line (noauto,user,_netdev) mounted by a user who
    is not root with `mount MOUNTPOINT` (mount(8), setuid, through
    Debian's mount.fuse3 and fusermount3), a message read, and unmounted
    by that user with `umount MOUNTPOINT` or `fusermount3 -u`; the mount
    belongs to that user (user_id=)."""
    need_tools()
    name, home, uid, gid = test_user
    bins = find_installed(installed, "bin/imapfs")
    assert len(bins) == 1, bins
    msg_uid = min(env.truth.messages("INBOX"))
    mnt = os.path.join(home, "mail")
    os.mkdir(mnt, 0o700)
    pw = os.path.join(home, "pw")
    with open(pw, "w") as f:
        f.write(env.server.password + "\n")
    ca = os.path.join(home, "ca.crt")
    shutil.copy(env.server.cafile, ca)
    for p in (mnt, pw, ca):
        os.chown(p, uid, gid)
    os.chmod(pw, 0o600)
    fstab = tmp_path / "fstab"
    fstab.write_text(f"{url(env.server)} {mnt} fuse.imapfs "
                     f"noauto,user,_netdev,password_file={pw},cafile={ca} "
                     f"0 0\n")
    os.chmod(fstab, 0o644)
    out = os.path.join(str(tmp_path), "out")
    # The user's own environment, as from a login: root's HOME and XDG
    # directories are not theirs.
    e = {k: v for k, v in os.environ.items()
         if k != "IMAPFS_PASSWORD" and not k.startswith("XDG_")}
    e.update(BIN_DIR=os.path.dirname(bins[0]), MNT=mnt, FSTAB=str(fstab),
             HOW=how, OUT=out, MSG=f"{msg_uid}.eml", TUSER=name,
             THOME=home, DEVDIR=str(tmp_path))
    r = None
    try:
        r = subprocess.run(["unshare", "--mount", "--propagation", "private",
                            "sh", "-c", USER_SCRIPT], env=e,
                           stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True, timeout=120)
    finally:
        pid = testenv.daemon_pid(mnt)
        if pid is not None and (r is None or r.returncode != 0):
            os.kill(pid, 9)
    assert r.returncode == 0, f"user mount / {how} failed:\n{r.stdout}"
    with open(out, "rb") as f:
        assert f.read() == env.truth.body("INBOX", msg_uid)
    with open(out + ".mounts") as f:
        mounts = f.read()
    assert f"user_id={uid}," in mounts, mounts
    assert "nosuid" in mounts and "nodev" in mounts, mounts
    testenv.wait_for(lambda: testenv.daemon_pid(mnt) is None, 10,
                     what="imapfs exit after unmount")
