"""Startup checks: refused options and mount points, before any traffic.

An option imapfs does not know is refused in one line before a connection
is made; the options mount(8), mount.fuse3 and fstab hand over still work.
A mount point that already holds a FUSE mount -- live, or dead after its
daemon was killed -- is refused in one line that says how to clean up,
instead of a second mount being stacked on it.
"""

import errno
import os
import socket
import subprocess

import pytest

import testenv
from test_cli import mnt  # noqa: F401 - the fixture
from test_cli import clean_env, mounted, read_one, unmount_and_check, url

TIMEOUT = 60


def run_imapfs(env, args):
    return subprocess.run([env.bin] + args, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True,
                          stdin=subprocess.DEVNULL, timeout=TIMEOUT,
                          env=clean_env(IMAPFS_PASSWORD=env.server.password))


def one_line(r):
    assert r.returncode != 0, "imapfs should have failed"
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, f"want one stderr line, got: {r.stderr!r}"
    assert lines[0].startswith("imapfs: "), lines[0]
    return lines[0]


@pytest.fixture
def listener():
    """A TCP port that records whether anybody connected to it."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    s.listen(8)
    s.setblocking(False)
    yield s
    s.close()


def connected(listener):
    try:
        c, _ = listener.accept()
    except BlockingIOError:
        return False
    c.close()
    return True


@pytest.mark.parametrize("opt", [["-o", "bogus"], ["-o", "conections=2"],
                                 ["-o", "ro,nonempty"], ["-s"]])
def test_unknown_option_refused_before_connecting(env, mnt, listener, opt):
    port = listener.getsockname()[1]
    r = run_imapfs(env, opt + [f"imaps://alice@127.0.0.1:{port}", mnt])
    line = one_line(r)
    name = opt[-1].split(",")[-1]
    assert f"unknown option '{'-o ' if opt[0] == '-o' else ''}{name}'" \
        in line, line
    assert not connected(listener), "imapfs connected before refusing"
    assert not mounted(mnt)


@pytest.mark.parametrize("value", ["9", "1000", "abc", ""])
def test_bad_umask_refused_before_connecting(env, mnt, listener, value):
    port = listener.getsockname()[1]
    r = run_imapfs(env, ["-o", f"umask={value}",
                         f"imaps://alice@127.0.0.1:{port}", mnt])
    line = one_line(r)
    assert "invalid value for -o umask" in line, line
    assert not connected(listener), "imapfs connected before refusing"
    assert not mounted(mnt)


@pytest.mark.parametrize("value", ["flagged", "", "Flag", "expunge trash"])
def test_bad_delete_mode_refused_before_connecting(env, mnt, listener,
                                                   value):
    port = listener.getsockname()[1]
    r = run_imapfs(env, ["-o", f"delete={value}",
                         f"imaps://alice@127.0.0.1:{port}", mnt])
    line = one_line(r)
    assert f"delete= must be expunge, trash or flag, not '{value}'" in line, \
        line
    assert not connected(listener), "imapfs connected before refusing"
    assert not mounted(mnt)


def test_mount_and_fstab_options_accepted(env, mnt):
    """What mount(8)/mount.fuse3/fstab may pass is accepted; the mount
    stays nosuid,nodev whatever they say."""
    opts = ("rw,dev,suid,exec,defaults,noauto,user,users,_netdev,nofail,"
            "relatime,x-systemd.automount,comment=systemd.automount,"
            "noatime,owner,group")
    r = testenv.mount_imapfs(env.bin, env.server, mnt,
                             options=["-o", opts])
    assert r.returncode == 0, r.stderr
    assert r.stderr == "", r.stderr
    read_one(env, mnt)
    with open("/proc/mounts") as f:
        line = next(ln for ln in f
                    if ln.split()[1] == os.path.realpath(mnt))
    flags = line.split()[3].split(",")
    assert "nosuid" in flags and "nodev" in flags, line
    unmount_and_check(mnt)


def test_live_mount_is_not_stacked(env):
    """imapfs on the suite's live mount refuses; the mount keeps serving."""
    before = open("/proc/self/mountinfo").read().count(
        " " + os.path.realpath(env.mnt) + " ")
    r = run_imapfs(env, ["-o", f"cafile={env.server.cafile}",
                         url(env.server), env.mnt])
    line = one_line(r)
    assert "already mounted" in line and "fusermount3 -u" in line, line
    after = open("/proc/self/mountinfo").read().count(
        " " + os.path.realpath(env.mnt) + " ")
    assert after == before == 1
    read_one(env, env.mnt)


def test_dead_mount_is_refused_with_cleanup_hint(env, mnt):
    r = testenv.mount_imapfs(env.bin, env.server, mnt)
    assert r.returncode == 0, r.stderr
    pid = testenv.daemon_pid(mnt)
    assert pid is not None
    os.kill(pid, 9)
    testenv.wait_for(lambda: not os.path.exists(f"/proc/{pid}/status") or
                     "State:\tZ" in open(f"/proc/{pid}/status").read(),
                     10, what="daemon death")
    with pytest.raises(OSError) as e:
        os.statvfs(mnt)
    assert e.value.errno in (errno.ENOTCONN, errno.ECONNABORTED)
    r = run_imapfs(env, ["-o", f"cafile={env.server.cafile}",
                         url(env.server), mnt])
    line = one_line(r)
    assert "dead" in line and f"fusermount3 -u {mnt}" in line, line
    # the advice works, and then imapfs mounts there again
    subprocess.run(["fusermount3", "-u", mnt], check=True, timeout=30)
    r = testenv.mount_imapfs(env.bin, env.server, mnt)
    assert r.returncode == 0, r.stderr
    read_one(env, mnt)
    unmount_and_check(mnt)
