"""`imapfs status MOUNTPOINT` and `imapfs refresh MOUNTPOINT` (and SIGHUP)
through the mount's control socket in $XDG_RUNTIME_DIR/imapfs/."""

import os
import re
import signal
import stat
import shutil
import subprocess

import pytest

import testenv
from test_cli import mnt  # noqa: F401 - the fixture
from test_cli import mounted, read_one, unmount_and_check


@pytest.fixture
def runtime():
    d = testenv.short_runtime_dir()
    yield d
    shutil.rmtree(d, ignore_errors=True)


def imapfs(env, runtime, *args):
    return subprocess.run([env.bin, *args], stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True, timeout=30,
                          stdin=subprocess.DEVNULL,
                          env=dict(os.environ, XDG_RUNTIME_DIR=runtime))


@pytest.fixture
def live(env, mnt, runtime):  # noqa: F811
    r = testenv.mount_imapfs(env.bin, env.server, mnt,
                             options=["-o", "connections=2,cache_size=16"],
                             env={"XDG_RUNTIME_DIR": runtime})
    assert r.returncode == 0, r.stderr
    yield mnt


def fields(text):
    out = {}
    for line in text.splitlines():
        k, _, v = line.partition(":")
        out[k.strip()] = v.strip()
    return out


def test_status_of_a_live_mount(env, live, runtime):
    r = imapfs(env, runtime, "status", live)
    assert r.returncode == 0, r.stderr
    f = fields(r.stdout)
    assert f["mount point"] == os.path.realpath(live)
    assert f["account"].startswith(
        f"{env.server.user}@{env.server.host} port {env.server.imaps_port}")
    assert "IMAP4rev1" in f["capabilities"].split()
    assert f["connections"].endswith("at most 2"), f["connections"]
    assert f["cache"] == "0 KiB of 16 MiB", f["cache"]
    read_one(env, live)
    f = fields(imapfs(env, runtime, "status", live).stdout)
    assert int(f["cache"].split()[0]) > 0, f["cache"]
    assert int(f["messages"].split()[0]) > 0
    # folder listings: full loads and refreshes, counted
    os.listdir(os.path.join(live, "INBOX"))
    f = fields(imapfs(env, runtime, "status", live).stdout)
    m = re.match(r"^(\d+) full, (\d+) refreshed$", f["listings"])
    assert m and int(m.group(1)) >= 1, f["listings"]
    # the socket is private to the user
    socks = os.listdir(os.path.join(runtime, "imapfs"))
    assert len(socks) == 1
    st = os.stat(os.path.join(runtime, "imapfs", socks[0]))
    assert stat.S_ISSOCK(st.st_mode) and st.st_mode & 0o077 == 0
    assert os.stat(os.path.join(runtime, "imapfs")).st_mode & 0o077 == 0
    unmount_and_check(live)
    # the daemon removed its socket when it ended
    assert os.listdir(os.path.join(runtime, "imapfs")) == []


def test_status_without_a_mount(env, mnt, runtime):  # noqa: F811
    r = imapfs(env, runtime, "status", mnt)
    assert r.returncode == 1
    lines = r.stderr.splitlines()
    assert len(lines) == 1 and "no running imapfs mount" in lines[0], \
        r.stderr


def new_folder_appears(env, mnt, how, runtime):
    name = f"Fresh-{how}"
    os.listdir(mnt)  # mailbox list loaded now; listing_ttl is 30 s
    env.server.create_mailbox(name)
    try:
        if how == "refresh":
            r = imapfs(env, runtime, "refresh", mnt)
            assert r.returncode == 0 and "refreshed" in r.stdout, r
        else:
            os.kill(testenv.daemon_pid(mnt), signal.SIGHUP)
            # SIGHUP must not end the mount (libfuse's default would)
        testenv.wait_for(lambda: name in os.listdir(mnt), 10,
                         what=f"{name} after {how}")
        assert mounted(mnt)
    finally:
        c = env.server.client()
        try:
            c.delete(name)
        finally:
            c.logout()


@pytest.mark.parametrize("how", ["refresh", "sighup"])
def test_refresh_reloads_listings(env, live, runtime, how):
    new_folder_appears(env, live, how, runtime)
    unmount_and_check(live)
