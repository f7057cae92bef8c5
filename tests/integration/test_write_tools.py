"""Real editors and tools writing through a read-write mount.

Every test drives the real program against the `wenv` mount and then reads
the server over its own imaplib connection: the exact bytes (bare LF is
stored as CRLF, so bodies are compared in their CRLF form), the flags, the
INTERNALDATE, the number of messages in each folder touched (so that no
scratch file reached the server), and the \\Deleted sentinel another client
left in every folder.

Messages to edit are written through the mount first (a new file with
user.imap.flags and a date set before close), so that the mount lists them
as "<UID>.eml" at once; their server state is checked before the tool runs.
"""

import datetime
import itertools
import os
import re
import shutil
import subprocess
import tarfile
import time

import pytest

from conftest import SENTINEL, WRITE_FOLDERS

import testenv

FLAGS = {"\\Seen", "\\Flagged", "$Label1"}
# A date far from "now", so a lost INTERNALDATE cannot pass for it.
DATE = int(datetime.datetime(2019, 7, 14, 9, 26, 53,
                             tzinfo=datetime.timezone.utc).timestamp())
OTHER_DATE = int(datetime.datetime(2021, 5, 6, 7, 8, 9,
                                   tzinfo=datetime.timezone.utc).timestamp())
XATTR = "user.imap.flags"
_serial = itertools.count(1)


def crlf(b: bytes) -> bytes:
    """The bytes as the server stores them: every bare LF made CRLF."""
    return re.sub(rb"(?<!\r)\n", b"\r\n", b)


def message(subject: str, text: str = "foo line\nsecond foo\n") -> bytes:
    n = next(_serial)
    return (f"From: tools@example.org\nTo: alice@example.org\n"
            f"Subject: {subject}\nMessage-ID: <tools-{n}-{os.getpid()}"
            f"@example.org>\n\n{text}").encode()


def run(argv, **kw):
    kw.setdefault("stdin", subprocess.DEVNULL)
    return subprocess.run(argv, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, timeout=120, **kw)


def need(*tools):
    for t in tools:
        if shutil.which(t) is None:
            pytest.skip(f"{t} is not installed (contrib/setup-deps.sh)")


class Snap(dict):
    """A folder's messages ({uid: msg}) and its UIDNEXT: a file stored and
    expunged again leaves no message but moves UIDNEXT on."""
    uidnext = 0


def state(wenv, folder) -> Snap:
    c = wenv.server.client()
    try:
        typ, data = c.status(testenv.imap_quote(
            wenv.server.server_name(folder)), "(UIDNEXT)")
        assert typ == "OK", data
    finally:
        c.logout()
    snap = Snap(wenv.messages(folder))
    snap.uidnext = int(re.search(rb"UIDNEXT (\d+)", data[0]).group(1))
    return snap


def assert_unchanged(wenv, before):
    """@before: {folder: Snap}. Nothing was stored, not even briefly."""
    for f, snap in before.items():
        now = state(wenv, f)
        assert now == snap, f"{f} changed"
        assert now.uidnext == snap.uidnext, \
            f"something was stored in {f} (and removed again)"


def others(msgs):
    """{uid: msg} without the sentinel."""
    return {u: m for u, m in msgs.items() if m["body"] != SENTINEL}


def flagset(s: str) -> set:
    return set(s.split())


def seed(wenv, folder, body, flags=FLAGS, date=DATE):
    """Stores @body in @folder through the mount, with @flags and @date
    set before close. Returns (uid, path of "<UID>.eml")."""
    before = state(wenv, folder)
    name = f"seed-{next(_serial)}.eml"
    with open(wenv.path(folder, name), "wb") as f:
        f.write(body)
        f.flush()  # a write after utime would set the time again
        os.setxattr(f.fileno(), XATTR, " ".join(sorted(flags)).encode())
        os.utime(f.fileno(), (date, date))
    after = state(wenv, folder)
    new = set(after) - set(before)
    assert len(new) == 1 and len(after) == len(before) + 1, \
        "seeding through the mount did not store exactly one message"
    uid = new.pop()
    m = after[uid]
    assert (m["body"], m["flags"], m["date"]) == (crlf(body), set(flags),
                                                  date)
    return uid, wenv.path(folder, f"{uid}.eml")


def read(path) -> bytes:
    with open(path, "rb") as f:
        return f.read()


def assert_replaced(wenv, folder, before, old_uid, body, flags=FLAGS,
                    date=DATE, names=()):
    """Message @old_uid of @folder was replaced by @body with the old
    @flags and @date; nothing else in the folder changed; each of @names
    (mount paths) reads as the new message."""
    after = state(wenv, folder)
    assert old_uid not in after, "the old version is still on the server"
    new = set(after) - set(before)
    assert len(new) == 1, f"expected one new message, got {sorted(new)}"
    assert len(after) == len(before), \
        "the folder's message count changed (a scratch file was stored?)"
    assert set(after) - new == set(before) - {old_uid}
    uid = new.pop()
    assert after.uidnext == before.uidnext + 1, \
        "more than the new version was stored (a scratch file?)"
    m = after[uid]
    assert m["body"] == crlf(body)
    assert m["flags"] == set(flags), "the old flags were not kept"
    assert m["date"] == date, "the old INTERNALDATE was not kept"
    for p in names:
        assert read(p) == crlf(body), f"{p} does not show the new version"
    assert sorted(os.listdir(os.path.dirname(names[0]) if names else
                             wenv.path(folder))) == \
        sorted(f"{u}.eml" for u in after), "the folder lists other names"
    wenv.check_sentinels()
    return uid


def assert_added(wenv, folder, before, bodies):
    """@bodies (raw) were added to @folder, nothing else; returns
    {crlf body: server message}."""
    after = state(wenv, folder)
    assert set(before) <= set(after), "a message was removed"
    new = {after[u]["body"]: after[u] for u in set(after) - set(before)}
    assert sorted(new) == sorted(crlf(b) for b in bodies), \
        "the new messages are not exactly the files written"
    assert len(after) == len(before) + len(bodies)
    assert after.uidnext == before.uidnext + len(bodies), \
        "more than the files written was stored (a scratch file?)"
    return new


def folder_names(wenv, folder):
    return sorted(os.listdir(wenv.path(folder)))


# --------------------------------------------------------------------------
# Editing a message in place: the new version keeps the old one's flags
# and INTERNALDATE, the old UID is gone, the old name shows the new one.
# --------------------------------------------------------------------------

@pytest.mark.parametrize("backupcopy,swap", [("yes", True), ("no", True),
                                             ("auto", True), ("yes", False),
                                             ("auto", False)])
def test_vim_edit(wenv, tmp_path, backupcopy, swap):
    need("vim")
    body = message(f"vim {backupcopy}")
    uid, path = seed(wenv, "INBOX", body)
    before = state(wenv, "INBOX")
    listing = tmp_path / "listing"
    # backupskip is emptied because its default skips /tmp/*, where the
    # test's mount lives: a user's mail is not there.
    argv = ["vim", "-Es", "-u", "NONE", "-i", "NONE",
            "-c", "set backupskip=", "-c", f"set backupcopy={backupcopy}",
            "-c", "%s/foo/bar/",
            "-c", f'call writefile(readdir("."), "{listing}")',
            "-c", "wq", f"{uid}.eml"]
    if not swap:
        argv.insert(1, "-n")
    r = run(argv, cwd=wenv.path("INBOX"))
    assert r.returncode == 0, r.stderr
    seen = listing.read_text().split()
    if swap:
        assert f".{uid}.eml.swp" in seen, "vim made no swap file: " \
            f"the test does not cover it ({seen})"
    else:
        assert not [n for n in seen if n.endswith(".swp")]
    assert_replaced(wenv, "INBOX", before, uid, body.replace(b"foo", b"bar"),
                    names=[path])


@pytest.mark.parametrize("backupcopy", ["yes", "no", "auto"])
def test_vim_edit_written_name(wenv, backupcopy):
    """Vim on the name a new message was written under (cp x.eml INBOX/
    && vim INBOX/x.eml): with backupcopy=no it renames that name away and
    writes a new file under it, then removes the backup."""
    need("vim")
    body = message(f"vim written name {backupcopy}")
    name = f"written-{next(_serial)}.eml"
    before = state(wenv, "INBOX")
    with open(wenv.path("INBOX", name), "wb") as f:
        f.write(body)
    uid, = set(state(wenv, "INBOX")) - set(before)
    before = state(wenv, "INBOX")
    r = run(["vim", "-Es", "-N", "-u", "NONE", "-i", "NONE",
             "-c", "set backupskip=", "-c", f"set backupcopy={backupcopy}",
             "-c", "%s/foo/bar/", "-c", "wq", name], cwd=wenv.path("INBOX"))
    assert r.returncode == 0, r.stderr
    after = state(wenv, "INBOX")
    assert uid not in after
    new = set(after) - set(before)
    assert len(new) == 1 and len(after) == len(before), \
        "the edited message is not on the server exactly once"
    assert after.uidnext == before.uidnext + 1
    assert after[new.pop()]["body"] == crlf(body.replace(b"foo", b"bar"))
    assert read(wenv.path("INBOX", name)) == \
        crlf(body.replace(b"foo", b"bar"))
    wenv.check_sentinels()


def test_vim_4913_probe(wenv, tmp_path):
    """backupcopy=auto makes Vim create and remove "4913" in the folder to
    learn whether it may rename; the probe works and is never stored."""
    need("vim", "strace")
    body = message("vim probe")
    uid, path = seed(wenv, "Work", body)
    before = state(wenv, "Work")
    trace = tmp_path / "trace"
    r = run(["strace", "-f", "-o", str(trace), "-e",
             "trace=openat,fchown,unlink",
             "vim", "-Es", "-N", "-u", "NONE", "-i", "NONE",
             "-c", "set backupskip=", "-c", "set backupcopy=auto",
             "-c", "%s/foo/baz/", "-c", "wq", f"{uid}.eml"],
            cwd=wenv.path("Work"))
    assert r.returncode == 0, r.stderr
    t = trace.read_text()
    assert re.search(r'openat\(AT_FDCWD, "4913", O_WRONLY\|O_CREAT\|O_EXCL'
                     r'[^)]*\) = \d+', t), "vim's 4913 probe did not succeed"
    assert re.search(r'fchown\(\d+, \d+, \d+\) += 0', t)
    assert re.search(r'unlink\("4913"\) += 0', t)
    assert_replaced(wenv, "Work", before, uid, body.replace(b"foo", b"baz"),
                    names=[path])


def test_sed_i(wenv):
    body = message("sed")
    uid, path = seed(wenv, "INBOX", body)
    before = state(wenv, "INBOX")
    r = run(["sed", "-i", "s/foo/sed/g", path])
    assert r.returncode == 0, r.stderr
    assert_replaced(wenv, "INBOX", before, uid, body.replace(b"foo", b"sed"),
                    names=[path])


def test_perl_pi(wenv):
    need("perl")
    body = message("perl")
    uid, path = seed(wenv, "Archive", body)
    before = state(wenv, "Archive")
    r = run(["perl", "-pi", "-e", "s/foo/perl/g", path])
    assert r.returncode == 0, r.stderr
    assert_replaced(wenv, "Archive", before, uid,
                    body.replace(b"foo", b"perl"), names=[path])


def test_shell_truncating_redirect(wenv):
    uid, path = seed(wenv, "INBOX", message("shell >"))
    before = state(wenv, "INBOX")
    new = message("replaced by >", "all new\n")
    r = run(["bash", "-c", 'printf "%s" "$1" > "$2"', "sh", new.decode(),
             path])
    assert r.returncode == 0, r.stderr
    assert_replaced(wenv, "INBOX", before, uid, new, names=[path])


def test_shell_append_redirect(wenv):
    body = message("shell >>")
    uid, path = seed(wenv, "INBOX", body)
    before = state(wenv, "INBOX")
    r = run(["bash", "-c", 'echo "appended line" >> "$1"', "sh", path])
    assert r.returncode == 0, r.stderr
    # Appended at the real end: after the server's (CRLF) bytes.
    assert_replaced(wenv, "INBOX", before, uid,
                    crlf(body) + b"appended line\n", names=[path])


def test_truncate_s(wenv):
    body = message("truncate", "keep this\ncut this\n")
    uid, path = seed(wenv, "Work", body)
    before = state(wenv, "Work")
    kept = crlf(body)[:crlf(body).index(b"cut this")]
    r = run(["truncate", "-s", str(len(kept)), path])
    assert r.returncode == 0, r.stderr
    assert_replaced(wenv, "Work", before, uid, kept, names=[path])


def test_gio_save(wenv, tmp_path):
    """g_file_replace: .goutputstream-XXXXXX, fsync, rename over."""
    need("gio", "strace")
    uid, path = seed(wenv, "Archive", message("gio save"))
    before = state(wenv, "Archive")
    new = message("saved by gio", "gio text\n")
    trace = tmp_path / "trace"
    r = run(["strace", "-f", "-o", str(trace), "-e", "trace=rename,fsync",
             "gio", "save", path], input=new, stdin=None)
    assert r.returncode == 0, r.stderr
    t = trace.read_text()
    assert re.search(r'rename\("[^"]*/\.goutputstream-\w+", "' +
                     re.escape(path) + r'"\) = 0', t), t
    assert re.search(r"fsync\(\d+\) += 0", t), t
    assert_replaced(wenv, "Archive", before, uid, new, names=[path])


# --------------------------------------------------------------------------
# New messages from ordinary copying tools
# --------------------------------------------------------------------------

def test_cp_a_between_folders(wenv):
    body = message("cp -a between folders")
    uid, src = seed(wenv, "INBOX", body, flags={"\\Answered", "$Label1"},
                    date=OTHER_DATE)
    dst_name = f"{uid}.eml"
    assert not os.path.exists(wenv.path("Archive", dst_name)), \
        "UID clash between the folders: the test would overwrite a message"
    before_in, before_ar = state(wenv, "INBOX"), state(wenv, "Archive")
    r = run(["cp", "-a", src, wenv.path("Archive") + "/"])
    assert r.returncode == 0 and r.stderr == b"", r.stderr
    new = assert_added(wenv, "Archive", before_ar, [body])
    m = new[crlf(body)]
    assert m["flags"] == {"\\Answered", "$Label1"}
    assert m["date"] == OTHER_DATE
    assert state(wenv, "INBOX") == before_in, "the source changed"
    # The name it was written under resolves to it.
    assert read(wenv.path("Archive", dst_name)) == crlf(body)
    wenv.check_sentinels()


def test_cp_a_from_local_file(wenv, tmp_path):
    need("setfattr")
    body = message("cp -a from a local file")
    local = tmp_path / "local.eml"
    local.write_bytes(body)
    r = run(["setfattr", "-n", XATTR, "-v", "\\Seen \\Draft", str(local)])
    assert r.returncode == 0, r.stderr
    r = run(["touch", "-d", "2018-02-03 04:05:06 UTC", str(local)])
    assert r.returncode == 0, r.stderr
    before = state(wenv, "Work")
    r = run(["cp", "-a", str(local), wenv.path("Work") + "/"])
    assert r.returncode == 0 and r.stderr == b"", r.stderr
    m = assert_added(wenv, "Work", before, [body])[crlf(body)]
    assert m["flags"] == {"\\Seen", "\\Draft"}
    assert m["date"] == int(datetime.datetime(
        2018, 2, 3, 4, 5, 6, tzinfo=datetime.timezone.utc).timestamp())
    assert read(wenv.path("Work", "local.eml")) == crlf(body)
    wenv.check_sentinels()


def _export_dir(tmp_path, n, name="export", date=OTHER_DATE):
    """A local directory of @n .eml files dated @date: (dir, {name: body})."""
    d = tmp_path / name
    d.mkdir()
    # rsync -a copies the source directory's mode onto the folder, which
    # only the mode the mount shows allows (folders cannot change mode).
    d.chmod(testenv.mount_modes()[1])
    files = {}
    for i in range(n):
        fname = f"{name}-{next(_serial)}.eml"
        files[fname] = message(f"{name} {i}", f"line {i}\n")
        (d / fname).write_bytes(files[fname])
        os.utime(d / fname, (date, date))
    return d, files


def test_rsync_a(wenv, tmp_path):
    """rsync writes .NAME.XXXXXX temp files and renames them: the temp
    files stay local, the renames store the messages with rsync's dates."""
    need("rsync", "strace")
    src, files = _export_dir(tmp_path, 3, "rsync")
    before = state(wenv, "Archive")
    trace = tmp_path / "trace"
    r = run(["strace", "-f", "-o", str(trace), "-e", "trace=rename,renameat",
             "rsync", "-a", f"{src}/", wenv.path("Archive") + "/"])
    assert r.returncode == 0, r.stderr
    temps = re.findall(r'renameat\(\d+, "(\.[^"]+)", \d+, "([^"]+)"\) = 0',
                       trace.read_text())
    assert sorted(t[1] for t in temps) == sorted(files), \
        "rsync did not go through temp files: the test does not cover them"
    new = assert_added(wenv, "Archive", before, list(files.values()))
    assert all(m["flags"] == set() and m["date"] == OTHER_DATE
               for m in new.values())
    for fname, b in files.items():
        assert read(wenv.path("Archive", fname)) == crlf(b)
    assert not [n for n in folder_names(wenv, "Archive")
                if n.startswith(".")]
    wenv.check_sentinels()


def test_rsync_a_from_directory_of_another_mode(wenv, tmp_path):
    """Folders cannot change mode: rsync -a from a directory whose mode
    differs from the one the mount shows stores every message but reports
    that it could not chmod the folder."""
    need("rsync")
    src, files = _export_dir(tmp_path, 2, "rsyncmode")
    dmode = testenv.mount_modes()[1]
    other = 0o700 if dmode != 0o700 else 0o750
    src.chmod(other)
    before = state(wenv, "Archive")
    r = run(["rsync", "-a", f"{src}/", wenv.path("Archive") + "/"],
            text=True)
    assert r.returncode == 23, r.stderr
    assert "failed to set permissions" in r.stderr, r.stderr
    assert_added(wenv, "Archive", before, list(files.values()))
    assert os.stat(wenv.path("Archive")).st_mode & 0o777 == dmode
    wenv.check_sentinels()


def test_rsync_a_with_the_umask_modes_is_clean_and_idempotent(wenv, tmp_path):
    """Files and folders made under the umask imapfs runs with (0644 and
    0755 under the usual 022) are what the mount shows, so rsync -a runs
    clean; a second run finds nothing to do (same size, date and mode)
    and sends nothing."""
    need("rsync")
    fmode, dmode = testenv.mount_modes()
    src, files = _export_dir(tmp_path, 2, "rsyncum")
    for f in files:
        # CRLF already, so the stored size is the file's size.
        files[f] = crlf(files[f])
        (src / f).write_bytes(files[f])
        (src / f).chmod(fmode)
        os.utime(src / f, (OTHER_DATE, OTHER_DATE))
    before = state(wenv, "Archive")
    for attempt in range(2):
        r = run(["rsync", "-a", "--itemize-changes", f"{src}/",
                 wenv.path("Archive") + "/"], text=True)
        assert r.returncode == 0, (attempt, r.stderr)
        if attempt == 1:
            # Only the folder's own time (folders keep no time) is
            # itemized; no file is sent or touched again.
            assert [ln for ln in r.stdout.splitlines()
                    if not ln.endswith(" ./")] == [], r.stdout
    assert_added(wenv, "Archive", before, list(files.values()))
    for f in files:
        assert os.stat(wenv.path("Archive", f)).st_mode & 0o777 == fmode
    wenv.check_sentinels()


def test_rsync_aX_keeps_flags(wenv, tmp_path):
    need("rsync", "setfattr")
    src, files = _export_dir(tmp_path, 2, "rsyncx")
    flagged, plain = sorted(files)
    r = run(["setfattr", "-n", XATTR, "-v", "\\Flagged $Work",
             str(src / flagged)])
    assert r.returncode == 0, r.stderr
    os.utime(src / flagged, (OTHER_DATE, OTHER_DATE))
    before = state(wenv, "Work")
    r = run(["rsync", "-aX", f"{src}/", wenv.path("Work") + "/"])
    assert r.returncode == 0, r.stderr
    new = assert_added(wenv, "Work", before, list(files.values()))
    assert new[crlf(files[flagged])]["flags"] == {"\\Flagged", "$Work"}
    assert new[crlf(files[plain])]["flags"] == set()
    assert all(m["date"] == OTHER_DATE for m in new.values())
    wenv.check_sentinels()


def test_tar_x(wenv, tmp_path):
    src, files = _export_dir(tmp_path, 3, "tar")
    tarball = tmp_path / "mail.tar"
    with tarfile.open(tarball, "w") as t:
        for fname in files:
            t.add(src / fname, arcname=fname)
    before = state(wenv, "INBOX")
    r = run(["tar", "xf", str(tarball)], cwd=wenv.path("INBOX"))
    assert r.returncode == 0, r.stderr
    new = assert_added(wenv, "INBOX", before, list(files.values()))
    # tar sets the date on the open file (futimens) before close.
    assert all(m["date"] == OTHER_DATE and m["flags"] == set()
               for m in new.values())
    for fname, b in files.items():
        assert read(wenv.path("INBOX", fname)) == crlf(b)
    wenv.check_sentinels()


def test_mv_from_local_directory(wenv, tmp_path):
    """Across file systems mv copies (with the date) and unlinks."""
    body = message("mv from home")
    local = tmp_path / "x.eml"
    local.write_bytes(body)
    os.utime(local, (OTHER_DATE, OTHER_DATE))
    before = state(wenv, "Archive")
    r = run(["mv", str(local), wenv.path("Archive") + "/"])
    assert r.returncode == 0, r.stderr
    assert not local.exists()
    m = assert_added(wenv, "Archive", before, [body])[crlf(body)]
    assert m["date"] == OTHER_DATE and m["flags"] == set()
    assert read(wenv.path("Archive", "x.eml")) == crlf(body)
    wenv.check_sentinels()


# --------------------------------------------------------------------------
# GIO (what file managers use)
# --------------------------------------------------------------------------

def assert_added_redated(wenv, folder, before, body, date):
    """@body was added to @folder with INTERNALDATE @date, as GIO does it:
    stored at close, then (the date set by path after close) stored again
    with the date and the first copy expunged (IMAP cannot change the
    date of a stored message): one message more, two UIDs used."""
    after = state(wenv, folder)
    assert set(before) <= set(after), "a message was removed"
    new = [after[u] for u in set(after) - set(before)]
    assert [m["body"] for m in new] == [crlf(body)]
    assert new[0]["date"] == date and new[0]["flags"] == set()
    assert after.uidnext == before.uidnext + 2


def test_gio_copy(wenv, tmp_path):
    need("gio")
    body = message("gio copy")
    local = tmp_path / "g.eml"
    local.write_bytes(body)
    os.utime(local, (OTHER_DATE, OTHER_DATE))
    before = state(wenv, "Work")
    r = run(["gio", "copy", str(local), wenv.path("Work") + "/"])
    assert r.returncode == 0, r.stderr
    assert_added_redated(wenv, "Work", before, body, OTHER_DATE)
    assert read(wenv.path("Work", "g.eml")) == crlf(body)
    assert int(os.stat(wenv.path("Work", "g.eml")).st_mtime) == OTHER_DATE
    assert local.exists()
    wenv.check_sentinels()


def test_touch_d_redates_a_message_and_plain_touch_does_nothing(wenv):
    """utimensat with a date on a stored message stores it again with that
    INTERNALDATE (flags kept, old UID expunged, the name follows);
    UTIME_NOW (touch without a date) changes nothing on the server."""
    body = message("redate")
    uid, p = seed(wenv, "INBOX", body)
    before = state(wenv, "INBOX")
    r = run(["touch", p])
    assert r.returncode == 0, r.stderr
    assert state(wenv, "INBOX").uidnext == before.uidnext
    assert set(state(wenv, "INBOX")) == set(before)
    os.utime(p, (OTHER_DATE, OTHER_DATE))
    after = state(wenv, "INBOX")
    assert uid not in after
    new = [after[u] for u in set(after) - set(before)]
    assert len(new) == 1 and new[0]["body"] == before[uid]["body"]
    assert new[0]["date"] == OTHER_DATE
    assert new[0]["flags"] == before[uid]["flags"] != set()
    assert int(os.stat(p).st_mtime) == OTHER_DATE
    assert read(p) == before[uid]["body"]
    wenv.check_sentinels()


def test_gio_move_between_folders(wenv):
    need("gio")
    body = message("gio move")
    uid, src = seed(wenv, "INBOX", body)
    before_in, before_wk = state(wenv, "INBOX"), state(wenv, "Work")
    r = run(["gio", "move", src, wenv.path("Work") + "/"])
    assert r.returncode == 0, r.stderr
    after_in = state(wenv, "INBOX")
    assert set(after_in) == set(before_in) - {uid}
    m = assert_added(wenv, "Work", before_wk, [body])[crlf(body)]
    assert m["flags"] == FLAGS and m["date"] == DATE
    assert not os.path.exists(src)
    wenv.check_sentinels()


def test_gio_move_from_local(wenv, tmp_path):
    need("gio")
    body = message("gio move in")
    local = tmp_path / "in.eml"
    local.write_bytes(body)
    os.utime(local, (OTHER_DATE, OTHER_DATE))
    before = state(wenv, "Archive")
    r = run(["gio", "move", str(local), wenv.path("Archive") + "/"])
    assert r.returncode == 0, r.stderr
    assert_added_redated(wenv, "Archive", before, body, OTHER_DATE)
    assert not local.exists()
    assert read(wenv.path("Archive", "in.eml")) == crlf(body)
    wenv.check_sentinels()


def test_gio_remove(wenv):
    need("gio")
    uid, path = seed(wenv, "Archive", message("gio remove"))
    before = state(wenv, "Archive")
    r = run(["gio", "remove", path])
    assert r.returncode == 0, r.stderr
    assert set(state(wenv, "Archive")) == set(before) - {uid}
    assert not os.path.exists(path)
    wenv.check_sentinels()


def test_gio_trash_refused(wenv):
    """The mount has no trash directory and refuses to create one
    (mkdir .Trash-UID: EPERM), so gio reports that it cannot trash, and
    the message stays."""
    need("gio")
    body = message("gio trash")
    uid, path = seed(wenv, "INBOX", body)
    before = state(wenv, "INBOX")
    with pytest.raises(PermissionError):
        os.mkdir(wenv.path(f".Trash-{os.getuid()}"))
    r = run(["gio", "trash", path], text=True)
    assert r.returncode != 0
    assert "trash" in r.stderr.lower(), r.stderr
    assert_unchanged(wenv, {"INBOX": before})
    assert read(path) == crlf(body)
    assert not [n for n in os.listdir(wenv.mnt) if n.startswith(".Trash")]
    assert not [f for f in wenv.server_folders() if "Trash" in f]
    wenv.check_sentinels()


# --------------------------------------------------------------------------
# Scratch names are local files: they work like files, never reach the
# server, and a rename to a message name stores them.
# --------------------------------------------------------------------------

SCRATCH = ["4913", ".x.eml.swp", "sedAb3dEf", "#x.eml#", "x.eml~",
           ".goutputstream-ZQ3K1X", ".x.eml.AbC123", "notes.txt"]


@pytest.mark.parametrize("name", SCRATCH)
def test_scratch_file_stays_local(wenv, name):
    before = {f: state(wenv, f) for f in WRITE_FOLDERS}
    p = wenv.path("Work", name)
    data = message("scratch " + name)
    fd = os.open(p, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        assert os.pwrite(fd, data, 0) == len(data)
        assert os.pwrite(fd, b"TAIL", 100000) == 4
        assert os.fstat(fd).st_size == 100004
        os.ftruncate(fd, len(data) + 10)
        os.fsync(fd)
        st = os.fstat(fd)
        os.fchmod(fd, st.st_mode & 0o7777)
        os.fchown(fd, st.st_uid, st.st_gid)
        assert os.pread(fd, len(data) + 20, 0) == data + b"\0" * 10
    finally:
        os.close(fd)
    assert os.stat(p).st_size == len(data) + 10
    moved = wenv.path("Work", name + ".tmp2")
    os.rename(p, moved)
    assert read(moved) == data + b"\0" * 10
    assert not os.path.exists(p)
    assert name + ".tmp2" in os.listdir(wenv.path("Work"))
    assert_unchanged(wenv, before)
    os.unlink(moved)
    assert not os.path.exists(moved)
    assert_unchanged(wenv, before)
    wenv.check_sentinels()


def test_mv_scratch_to_message_name(wenv):
    body = message("scratch then mv")
    p = wenv.path("Archive", "draft.txt")
    with open(p, "wb") as f:
        f.write(body)
    before = state(wenv, "Archive")
    assert not [m for m in before.values() if m["body"] == crlf(body)]
    r = run(["mv", p, wenv.path("Archive", "draft.eml")])
    assert r.returncode == 0, r.stderr
    assert_added(wenv, "Archive", before, [body])
    assert not os.path.exists(p)
    assert read(wenv.path("Archive", "draft.eml")) == crlf(body)
    wenv.check_sentinels()


def test_scratch_left_at_unmount_stays_in_spool(imapfs_bin, tmp_path):
    """A scratch file nobody removed is kept in the spool at unmount, and
    the daemon says where. Runs imapfs in the foreground (-f) to read its
    log from stderr (daemonized, it logs to syslog)."""
    work = str(tmp_path)
    server = testenv.DovecotServer(os.path.join(work, "dovecot"))
    server.start()
    proc = None
    mnt = os.path.join(work, "mnt")
    spool = os.path.join(work, "spool")
    os.mkdir(mnt)
    pwfile = os.path.join(work, "pw")
    try:
        with open(pwfile, "w") as f:
            f.write(server.password + "\n")
        os.chmod(pwfile, 0o600)
        proc = subprocess.Popen(
            [imapfs_bin, "-f", "-o", f"cafile={server.cafile}",
             "-o", f"password_file={pwfile}", "-o", f"spool_dir={spool}",
             f"imaps://{server.user}@{server.host}:{server.imaps_port}",
             mnt], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE)
        testenv.wait_for(lambda: os.path.isdir(os.path.join(mnt, "INBOX")),
                         30, what="the foreground mount")
        data = b"unsaved notes\n" * 100
        with open(os.path.join(mnt, "INBOX", "#notes.eml#"), "wb") as f:
            f.write(data)
        with open(os.path.join(mnt, "INBOX", "empty.tmp"), "wb"):
            pass
        testenv.unmount(mnt)
        out, err = proc.communicate(timeout=30)
        err = err.decode(errors="replace")
        assert proc.returncode == 0, err
        kept = [os.path.join(d, n) for d, _, ns in os.walk(spool)
                for n in ns]
        with_data = [p for p in kept if read(p) == data]
        assert len(with_data) == 1, (kept, err)
        assert kept == with_data, "an empty file was kept"
        assert with_data[0] in err, \
            f"the log does not say where the file is:\n{err}"
        c = server.client()
        try:
            typ, d = c.select("INBOX", readonly=True)
            assert typ == "OK" and int(d[0]) == 0, "a scratch file was sent"
        finally:
            c.logout()
    finally:
        if proc is not None and proc.poll() is None:
            testenv.force_unmount(mnt)
            proc.kill()
            proc.wait(10)
        server.stop()
