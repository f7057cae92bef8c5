"""-o delete=flag against a Dovecot that announces neither UIDPLUS nor MOVE.

rm, mv between folders and an edit in place only STORE \\Deleted: no
EXPUNGE of any kind is sent (the fault proxy sees every command, and the
sentinel another client flagged \\Deleted in every folder must survive).
A message flagged \\Deleted, by us or anyone, is not listed and its name
does not resolve; it still counts, so that the refreshes (listing_ttl) and
the live view, which compare message counts with EXISTS, go on in step
without relisting the folder; one whose \\Deleted another client clears is
shown again. Without the option the same operations answer EPERM and send
nothing (test_write_faults.py::test_without_uidplus_or_literal_plus).
"""

import errno
import os
import re
import subprocess
import time

import pytest

from conftest import SENTINEL, mount_write_env, proxied_write_env
import testenv
from test_idle_liveness import status

NO_CAPS = ("UIDPLUS", "MOVE")
BOUND_S = 10  # generous bound on the live view's latency
_n = [0]


def msg(tag: str) -> bytes:
    _n[0] += 1
    return (f"From: flag@example.org\r\nSubject: {tag}\r\n"
            f"Message-ID: <{tag}-{_n[0]}-{os.getpid()}@imapfs.test>\r\n"
            f"\r\nfoo body of {tag}\r\n").encode()


def full_listings(mnt) -> int:
    m = re.search(r"^listings: +(\d+) full", status(mnt), re.M)
    assert m, status(mnt)
    return int(m.group(1))


def expunges(proxy):
    """Every EXPUNGE of any kind the mount sent (bare, UID, CLOSE)."""
    return [c.text for c in proxy.commands_snapshot()
            if re.search(r"EXPUNGE|^CLOSE", c.name)]


def store(env, folder, uid, how):
    """Another client: UID STORE uid how (\\Deleted)."""
    c = env.server.client()
    try:
        c.select(testenv.imap_quote(env.server.server_name(folder)))
        typ, data = c.uid("STORE", str(uid), how, "(\\Deleted)")
        assert typ == "OK", data
    finally:
        c.logout()


def flagged(env, folder):
    """{uid: has \\Deleted} of every message on the server."""
    return {u: "\\Deleted" in m["flags"]
            for u, m in env.messages(folder).items()}


def names(env, folder):
    return set(os.listdir(env.path(folder)))


def by_body(env, folder, body):
    return [u for u, m in env.messages(folder).items() if m["body"] == body]


def wait(pred, what):
    testenv.wait_for(pred, BOUND_S, interval=0.05, what=what)


@pytest.fixture
def flagenv(imapfs_bin, tmp_path):
    """(env, proxy): a Dovecot without UIDPLUS and MOVE, mounted through
    the fault proxy with -o delete=flag (listing_ttl=0: every access
    refreshes the folder)."""
    with proxied_write_env(imapfs_bin, str(tmp_path), ["-o", "delete=flag"],
                           without_caps=NO_CAPS) as ep:
        yield ep


def test_rm_only_flags_and_hides(flagenv):
    env, proxy = flagenv
    a = env.append("Work", msg("rm-a"))
    b = env.append("Work", msg("rm-b"))
    (sentinel,) = by_body(env, "Work", SENTINEL)
    # Another client's \Deleted mail is not shown either.
    assert names(env, "Work") == {f"{a}.eml", f"{b}.eml"}
    with pytest.raises(FileNotFoundError):
        os.stat(env.path("Work", f"{sentinel}.eml"))
    assert "delete=flag" in status(env.mnt)
    for _ in os.walk(env.mnt):
        pass  # every folder listed once
    full = full_listings(env.mnt)

    fd = os.open(env.path("Work", f"{a}.eml"), os.O_RDONLY)
    os.unlink(env.path("Work", f"{a}.eml"))
    # An open file of it reads on.
    assert b"rm-a" in os.pread(fd, 4096, 0)
    os.close(fd)
    # On the server: flagged, still there; nothing was expunged (the
    # sentinel, \Deleted already, is still there too).
    assert flagged(env, "Work") == {sentinel: True, a: True, b: False}
    assert expunges(proxy) == []
    assert any(c.name == "UID STORE" and f"{a} +FLAGS" in c.text
               for c in proxy.commands_snapshot())
    env.check_sentinels()
    # Not listed, not found, not walked, and refreshes (listing_ttl=0:
    # one per access) do not bring it back nor relist the folder.
    for _ in range(3):
        assert names(env, "Work") == {f"{b}.eml"}
        with pytest.raises(FileNotFoundError):
            os.stat(env.path("Work", f"{a}.eml"))
    walked = {f for _, _, fs in os.walk(env.mnt) for f in fs}
    assert f"{a}.eml" not in walked and f"{b}.eml" in walked
    with pytest.raises(FileNotFoundError):
        os.unlink(env.path("Work", f"{a}.eml"))
    assert full_listings(env.mnt) == full, "the folder was listed again"
    # A folder that holds only hidden mail is not empty on the server:
    # rmdir (and so rm -r) is refused rather than DELETE it.
    os.mkdir(env.path("Gone"))
    with open(env.path("Gone", "x.eml"), "wb") as f:
        f.write(msg("in-gone"))
    (x,) = os.listdir(env.path("Gone"))
    os.unlink(env.path("Gone", x))
    assert os.listdir(env.path("Gone")) == []
    with pytest.raises(OSError) as e:
        os.rmdir(env.path("Gone"))
    assert e.value.errno == errno.ENOTEMPTY
    assert "Gone" in env.server_folders()

    # A new mount hides it as well.
    testenv.unmount(env.mnt)
    r = testenv.mount_imapfs(env.bin, proxy, env.mnt, options=[
        "-o", f"spool_dir={env.spool}", "-o", "listing_ttl=0",
        "-o", "delete=flag"])
    assert r.returncode == 0, r.stderr
    assert names(env, "Work") == {f"{b}.eml"}

    # Another client clears \Deleted: it is back, content and all.
    store(env, "Work", a, "-FLAGS.SILENT")
    assert names(env, "Work") == {f"{a}.eml", f"{b}.eml"}
    with open(env.path("Work", f"{a}.eml"), "rb") as f:
        assert b"rm-a" in f.read()
    # Another client sets it: gone from the listing (whoever set it).
    store(env, "Work", b, "+FLAGS.SILENT")
    assert names(env, "Work") == {f"{a}.eml"}
    # And so is one flagged through the mount (setfattr), also for a
    # stat of the name the kernel had cached.
    os.stat(env.path("Work", f"{a}.eml"))
    os.setxattr(env.path("Work", f"{a}.eml"), "user.imap.flags",
                b"\\Seen \\Deleted")
    assert names(env, "Work") == set()
    with pytest.raises(FileNotFoundError):
        os.stat(env.path("Work", f"{a}.eml"))
    assert flagged(env, "Work")[a] is True
    assert expunges(proxy) == []
    env.check_sentinels()


def test_mv_between_folders_copies_and_flags(flagenv):
    """No MOVE, no UIDPLUS: UID COPY, then \\Deleted on the original."""
    env, proxy = flagenv
    body = msg("mv")
    a = env.append("Work", body)
    assert f"{a}.eml" in names(env, "Work")
    os.rename(env.path("Work", f"{a}.eml"), env.path("Archive", "moved.eml"))
    assert flagged(env, "Work")[a] is True
    (copy,) = by_body(env, "Archive", body)
    assert flagged(env, "Archive")[copy] is False
    assert expunges(proxy) == []
    assert f"{a}.eml" not in names(env, "Work")
    shown = [n for n in names(env, "Archive")
             if open(env.path("Archive", n), "rb").read() == body]
    assert shown, names(env, "Archive")
    env.check_sentinels()


def test_edit_in_place_flags_the_old_version(flagenv):
    """An edit (vim; a rename over the message, as sed -i does) stores the
    new version, then flags the old one: listed once, under the new UID,
    and the old name reads the new version."""
    env, proxy = flagenv
    body = msg("edit")
    a = env.append("Work", body, "\\Seen")
    path = env.path("Work", f"{a}.eml")
    assert f"{a}.eml" in names(env, "Work")
    if subprocess.run(["which", "vim"], capture_output=True).returncode:
        pytest.skip("vim is not installed")
    r = subprocess.run(["vim", "-Es", "-u", "NONE", "-i", "NONE", "-n",
                        "-c", "%s/foo/bar/", "-c", "wq", f"{a}.eml"],
                       cwd=env.path("Work"), stdin=subprocess.DEVNULL,
                       capture_output=True, timeout=120)
    assert r.returncode == 0, r.stderr
    edited = body.replace(b"foo", b"bar")
    (new,) = by_body(env, "Work", edited)
    assert flagged(env, "Work")[a] is True
    assert flagged(env, "Work")[new] is False
    assert "\\Seen" in env.messages("Work")[new]["flags"]
    assert names(env, "Work") == {f"{new}.eml"}
    with open(path, "rb") as f:
        assert f.read() == edited

    # A rename over the message (sed -i, gio save).
    tmp = env.path("Work", ".sed-tmp")
    with open(tmp, "wb") as f:
        f.write(edited.replace(b"bar", b"baz"))
    os.rename(tmp, env.path("Work", f"{new}.eml"))
    (newer,) = by_body(env, "Work", edited.replace(b"bar", b"baz"))
    assert flagged(env, "Work")[new] is True
    assert names(env, "Work") == {f"{newer}.eml"}
    assert expunges(proxy) == []
    env.check_sentinels()


@pytest.mark.parametrize("mode", ["notify", "idle"])
def test_live_view_follows_deleted(imapfs_bin, tmp_path, mode):
    """The live view, with listing_ttl and attr_timeout long: our own rm
    stays hidden (its echo relists nothing); in a folder the live view only
    polls (STATUS: message counts, without NOTIFY), another client's
    expunge of another message is still seen, since the hidden message
    still counts; another client clearing \\Deleted shows a message again
    and setting it hides one, the kernel's cached name included."""
    caps = NO_CAPS + (("NOTIFY",) if mode == "idle" else ())
    env = mount_write_env(imapfs_bin, str(tmp_path), without_caps=caps,
                          options=["-o", "delete=flag",
                                   "-o", "listing_ttl=3600",
                                   "-o", "attr_timeout=3600"])
    try:
        box = "Archive"
        a, b, c, d, e = (env.append(box, msg(f"live-{x}"))
                         for x in "abcde")
        # Archive is polled, Work (used last) is IDLEd on without NOTIFY.
        names(env, box)
        names(env, "Work")
        wait(lambda: re.search(r"^watch: +[1-9]\d* of", status(env.mnt),
                               re.M), "the live view to connect")
        for u in (a, b, c):
            os.stat(env.path(box, f"{u}.eml"))  # cached by the kernel
        full = full_listings(env.mnt)

        # rm, an edit in place, a move: each leaves a hidden original.
        os.unlink(env.path(box, f"{a}.eml"))
        fd = os.open(env.path(box, f"{d}.eml"), os.O_WRONLY)
        os.pwrite(fd, b"X-Edited: yes\r\n", 0)
        os.close(fd)
        os.rename(env.path(box, f"{e}.eml"), env.path("Work", f"{e}.eml"))
        (d2,) = set(env.messages(box)) - {a, b, c, d, e} - set(
            by_body(env, box, SENTINEL))
        time.sleep(3)  # the echo comes within ms; STATUS polls every 2 s
        assert names(env, box) == {f"{b}.eml", f"{c}.eml", f"{d2}.eml"}
        assert all(flagged(env, box)[u] for u in (a, d, e))
        assert full_listings(env.mnt) == full

        c2 = env.server.client()
        try:
            c2.select(testenv.imap_quote(env.server.server_name(box)))
            c2.uid("STORE", str(b), "+FLAGS.SILENT", "(\\Deleted)")
            typ, data = c2.uid("EXPUNGE", str(b))
            assert typ == "OK", data
        finally:
            c2.logout()
        wait(lambda: names(env, box) == {f"{c}.eml", f"{d2}.eml"},
             "another client's expunge to be seen")
        assert flagged(env, box)[a] is True

        store(env, box, a, "-FLAGS.SILENT")
        wait(lambda: f"{a}.eml" in names(env, box), "the message again")
        os.stat(env.path(box, f"{a}.eml"))
        store(env, box, c, "+FLAGS.SILENT")
        wait(lambda: f"{c}.eml" not in names(env, box), "c to go")

        def c_gone():
            try:
                os.stat(env.path(box, f"{c}.eml"))
                return False
            except FileNotFoundError:
                return True
        wait(c_gone, "the kernel to forget c.eml")
        assert full_listings(env.mnt) == full
        env.check_sentinels()
    finally:
        testenv.unmount(env.mnt)
        env.server.stop()
