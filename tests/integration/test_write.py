"""The write path, checked against the server (issue 5).

Each test changes the mount with real system calls or commands and then
asks the server over its own imaplib connection what happened: bytes,
flags, INTERNALDATE, counts, and that another client's \\Deleted message
survived (wenv.check_sentinels()).
"""

import ctypes
import datetime
import errno
import os
import stat
import subprocess

import pytest

from conftest import SENTINEL, mount_write_env
import testenv

UTC = datetime.timezone.utc


def msg(tag: str, lf: bool = False) -> bytes:
    body = (f"From: writer@example.org\r\nTo: alice@example.org\r\n"
            f"Subject: {tag}\r\nMessage-ID: <{tag}@imapfs.test>\r\n\r\n"
            f"Body of {tag}.\r\nSecond line.\r\n").encode()
    return body.replace(b"\r\n", b"\n") if lf else body


def crlf(b: bytes) -> bytes:
    return b.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def listed(wenv, folder):
    return sorted(n for n in os.listdir(wenv.path(folder)))


def uid_of(wenv, folder, body):
    found = [u for u, m in wenv.messages(folder).items()
             if m["body"] == body]
    assert len(found) == 1, f"{len(found)} copies of the message"
    return found[0]


def write_file(path, data: bytes):
    with open(path, "wb") as f:
        f.write(data)


# -- new messages ------------------------------------------------------------

def test_cp_new_message_is_appended_once(wenv, tmp_path):
    src = tmp_path / "new.eml"
    src.write_bytes(msg("cp-new"))
    before = len(wenv.messages("INBOX"))
    subprocess.run(["cp", str(src), wenv.path("INBOX")], check=True)
    msgs = wenv.messages("INBOX")
    assert len(msgs) == before + 1
    uid = uid_of(wenv, "INBOX", msg("cp-new"))
    # Listed under its UID; the name it was written under still works.
    assert f"{uid}.eml" in listed(wenv, "INBOX")
    assert "new.eml" not in listed(wenv, "INBOX")
    with open(wenv.path("INBOX", "new.eml"), "rb") as f:
        assert f.read() == msg("cp-new")
    assert os.stat(wenv.path("INBOX", "new.eml")).st_ino == \
        os.stat(wenv.path("INBOX", f"{uid}.eml")).st_ino
    wenv.check_sentinels()


def test_bare_lf_becomes_crlf(wenv):
    with open(wenv.path("Work", "lf.eml"), "wb") as f:
        f.write(msg("lf-only", lf=True))
    uid = uid_of(wenv, "Work", msg("lf-only"))
    assert wenv.messages("Work")[uid]["body"] == crlf(msg("lf-only"))
    with open(wenv.path("Work", f"{uid}.eml"), "rb") as f:
        assert f.read() == msg("lf-only")
    wenv.check_sentinels()


def test_shell_redirect_creates_message(wenv):
    p = wenv.path("Work", "redir.eml")
    subprocess.run(["sh", "-c", f"printf 'Subject: redir\\n\\nhi\\n' > '{p}'"],
                   check=True)
    assert b"Subject: redir\r\n\r\nhi\r\n" in wenv.bodies("Work")
    wenv.check_sentinels()


def test_flags_and_date_set_before_close_are_used(wenv):
    p = wenv.path("Archive", "dated.eml")
    fd = os.open(p, os.O_CREAT | os.O_WRONLY | os.O_EXCL, 0o600)
    try:
        os.write(fd, msg("dated"))
        os.setxattr(fd, "user.imap.flags", b"\\Seen \\Flagged $Label1")
        when = datetime.datetime(2021, 6, 7, 8, 9, 10, tzinfo=UTC)
        os.utime(fd, (when.timestamp(), when.timestamp()))
    finally:
        os.close(fd)
    m = wenv.messages("Archive")[uid_of(wenv, "Archive", msg("dated"))]
    assert m["flags"] == {"\\Seen", "\\Flagged", "$Label1"}
    assert m["date"] == int(when.timestamp())
    st = os.stat(p)
    assert st.st_mtime == when.timestamp()
    wenv.check_sentinels()


def test_empty_new_file_stays_local(wenv):
    before = len(wenv.messages("Work"))
    p = wenv.path("Work", "empty.eml")
    open(p, "wb").close()
    assert os.path.exists(p) and os.path.getsize(p) == 0
    assert len(wenv.messages("Work")) == before
    os.unlink(p)
    wenv.check_sentinels()


# -- scratch files -------------------------------------------------------------

@pytest.mark.parametrize("name", ["4913", ".x.eml.swp", "sedAbC123",
                                  "#x.eml#", "x.eml~",
                                  ".goutputstream-ABCDEF", "notes.txt"])
def test_scratch_files_work_and_never_reach_the_server(wenv, name):
    before = wenv.bodies("INBOX")
    p = wenv.path("INBOX", name)
    fd = os.open(p, os.O_CREAT | os.O_RDWR | os.O_EXCL, 0o644)
    try:
        os.pwrite(fd, b"0123456789", 0)
        os.pwrite(fd, b"abc", 20)
        os.ftruncate(fd, 15)
        os.fsync(fd)
        st = os.fstat(fd)
        os.fchown(fd, st.st_uid, st.st_gid)
        os.fchmod(fd, 0o644)
        assert os.pread(fd, 100, 0) == b"0123456789" + b"\0" * 5
    finally:
        os.close(fd)
    assert stat.S_IMODE(os.stat(p).st_mode) == 0o644
    os.rename(p, p + ".2")
    assert os.path.getsize(p + ".2") == 15
    assert name + ".2" in listed(wenv, "INBOX")
    os.unlink(p + ".2")
    assert not os.path.exists(p + ".2")
    assert wenv.bodies("INBOX") == before
    wenv.check_sentinels()


def test_rename_scratch_to_message_name_sends_it(wenv):
    p = wenv.path("Work", ".tmp-upload")
    write_file(p, msg("renamed-in"))
    assert msg("renamed-in") not in wenv.bodies("Work")
    os.rename(p, wenv.path("Work", "final.eml"))
    uid = uid_of(wenv, "Work", msg("renamed-in"))
    assert f"{uid}.eml" in listed(wenv, "Work")
    with open(wenv.path("Work", "final.eml"), "rb") as f:
        assert f.read() == msg("renamed-in")
    wenv.check_sentinels()


# -- replacing a message -------------------------------------------------------

def test_rename_over_message_replaces_it_keeping_flags_and_date(wenv):
    when = datetime.datetime(2020, 1, 2, 3, 4, 5, tzinfo=UTC)
    old = wenv.append("Archive", msg("to-replace"), "\\Seen \\Answered",
                      when)
    tmp = wenv.path("Archive", ".goutputstream-QWERTY")
    write_file(tmp, msg("replacement"))
    os.rename(tmp, wenv.path("Archive", f"{old}.eml"))
    msgs = wenv.messages("Archive")
    assert old not in msgs
    new = uid_of(wenv, "Archive", msg("replacement"))
    assert msgs[new]["flags"] == {"\\Seen", "\\Answered"}
    assert msgs[new]["date"] == int(when.timestamp())
    # The old name reads the new content.
    with open(wenv.path("Archive", f"{old}.eml"), "rb") as f:
        assert f.read() == msg("replacement")
    wenv.check_sentinels()


def test_append_to_message_edits_it(wenv):
    old = wenv.append("Work", msg("grow"), "\\Flagged")
    with open(wenv.path("Work", f"{old}.eml"), "ab") as f:
        f.write(b"Appended.\r\n")
    msgs = wenv.messages("Work")
    assert old not in msgs
    new = uid_of(wenv, "Work", msg("grow") + b"Appended.\r\n")
    assert msgs[new]["flags"] == {"\\Flagged"}
    wenv.check_sentinels()


def test_o_trunc_rewrites_message(wenv):
    old = wenv.append("Work", msg("trunc-me"), "$Label2")
    with open(wenv.path("Work", f"{old}.eml"), "wb") as f:
        f.write(msg("rewritten"))
    msgs = wenv.messages("Work")
    assert old not in msgs
    new = uid_of(wenv, "Work", msg("rewritten"))
    assert msgs[new]["flags"] == {"$Label2"}
    wenv.check_sentinels()


def test_emptying_a_message_is_refused_and_keeps_it(wenv):
    old = wenv.append("Work", msg("not-empty"))
    with pytest.raises(OSError) as e:
        fd = os.open(wenv.path("Work", f"{old}.eml"),
                     os.O_WRONLY | os.O_TRUNC)
        os.close(fd)
    assert e.value.errno == errno.EINVAL
    assert old in wenv.messages("Work")
    wenv.check_sentinels()


def test_edit_of_message_changed_elsewhere_keeps_both(wenv):
    old = wenv.append("Work", msg("contested"))
    os.listdir(wenv.path("Work"))
    fd = os.open(wenv.path("Work", f"{old}.eml"), os.O_WRONLY | os.O_APPEND)
    try:
        os.write(fd, b"mine\r\n")
        # Another client flags it meanwhile.
        c = wenv.server.client()
        c.select("Work")
        c.uid("STORE", str(old), "+FLAGS", "(\\Flagged)")
        c.logout()
        with pytest.raises(OSError) as e:
            os.close(fd)
        fd = None
        assert e.value.errno == errno.ESTALE
    finally:
        if fd is not None:
            os.close(fd)
    msgs = wenv.messages("Work")
    assert old in msgs and "\\Flagged" in msgs[old]["flags"]
    uid_of(wenv, "Work", msg("contested") + b"mine\r\n")
    wenv.check_sentinels()


# -- delete, move ----------------------------------------------------------------

def test_rm_expunges_only_that_message(wenv):
    uid = wenv.append("INBOX", msg("delete-me"))
    keep = wenv.append("INBOX", msg("keep-me"))
    os.listdir(wenv.path("INBOX"))
    os.unlink(wenv.path("INBOX", f"{uid}.eml"))
    msgs = wenv.messages("INBOX")
    assert uid not in msgs and keep in msgs
    assert not os.path.exists(wenv.path("INBOX", f"{uid}.eml"))
    wenv.check_sentinels()


def test_rm_by_written_name(wenv):
    write_file(wenv.path("INBOX", "bye.eml"), msg("bye"))
    uid = uid_of(wenv, "INBOX", msg("bye"))
    os.unlink(wenv.path("INBOX", "bye.eml"))
    assert uid not in wenv.messages("INBOX")
    assert not os.path.exists(wenv.path("INBOX", f"{uid}.eml"))
    wenv.check_sentinels()


def test_mv_between_folders_moves(wenv):
    uid = wenv.append("INBOX", msg("move-me"), "\\Seen")
    os.listdir(wenv.path("INBOX"))
    st = os.stat(wenv.path("INBOX", f"{uid}.eml"))
    subprocess.run(["mv", wenv.path("INBOX", f"{uid}.eml"),
                    wenv.path("Archive")], check=True)
    assert uid not in wenv.messages("INBOX")
    new = uid_of(wenv, "Archive", msg("move-me"))
    assert wenv.messages("Archive")[new]["flags"] == {"\\Seen"}
    # Same inode under the new folder, readable, listed by its new UID.
    st2 = os.stat(wenv.path("Archive", f"{uid}.eml"))
    assert st2.st_ino == st.st_ino
    assert f"{new}.eml" in listed(wenv, "Archive")
    with open(wenv.path("Archive", f"{new}.eml"), "rb") as f:
        assert f.read() == msg("move-me")
    wenv.check_sentinels()


_libc = ctypes.CDLL(None, use_errno=True)
RENAME_NOREPLACE, RENAME_EXCHANGE = 1, 2
AT_FDCWD = -100


def renameat2(a, b, flags):
    if _libc.renameat2(AT_FDCWD, a.encode(), AT_FDCWD, b.encode(),
                       flags) != 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))


def test_rename_flags(wenv):
    a = wenv.append("Work", msg("flag-a"))
    b = wenv.append("Work", msg("flag-b"))
    os.listdir(wenv.path("Work"))
    pa, pb = wenv.path("Work", f"{a}.eml"), wenv.path("Work", f"{b}.eml")
    with pytest.raises(OSError) as e:
        renameat2(pa, pb, RENAME_NOREPLACE)
    assert e.value.errno == errno.EEXIST
    with pytest.raises(OSError) as e:
        renameat2(pa, pb, RENAME_EXCHANGE)
    assert e.value.errno == errno.EINVAL
    msgs = wenv.messages("Work")
    assert a in msgs and b in msgs
    wenv.check_sentinels()


# -- folders -----------------------------------------------------------------------

def test_mkdir_p_rmdir_and_rename_of_folders(wenv):
    os.makedirs(wenv.path("Projects", "2026", "Q1"))
    folders = wenv.server_folders()
    assert {"Projects", "Projects.2026", "Projects.2026.Q1"} <= folders
    os.rename(wenv.path("Projects", "2026"), wenv.path("Projects", "Old"))
    folders = wenv.server_folders()
    assert "Projects.Old.Q1" in folders and "Projects.2026" not in folders
    assert os.listdir(wenv.path("Projects", "Old")) == ["Q1"]
    os.rmdir(wenv.path("Projects", "Old", "Q1"))
    os.rmdir(wenv.path("Projects", "Old"))
    os.rmdir(wenv.path("Projects"))
    assert not {f for f in wenv.server_folders() if f.startswith("Proj")}
    wenv.check_sentinels()


def test_mkdir_with_special_characters(wenv):
    name = "Entwürfe & \"Notizen\" 100%25"
    server = 'Entwürfe & "Notizen" 100%'
    os.mkdir(wenv.path(name))
    assert testenv.mutf7_encode(server) in wenv.server_folders()
    # A lone "%" is not a name the mapping produces (it would be "%25").
    with pytest.raises(OSError) as e:
        os.mkdir(wenv.path("50%"))
    assert e.value.errno == errno.EINVAL
    write_file(wenv.path(name, "n.eml"), msg("special-dir"))
    assert msg("special-dir") in wenv.bodies(server)
    os.unlink(wenv.path(name, "n.eml"))
    os.rmdir(wenv.path(name))
    assert testenv.mutf7_encode(server) not in wenv.server_folders()


def test_rmdir_of_folder_with_mail_is_enotempty(wenv):
    os.mkdir(wenv.path("Full"))
    # Mail that arrived from another client: the server knows, the
    # mount's cache does not.
    wenv.append("Full", msg("in-full"))
    with pytest.raises(OSError) as e:
        os.rmdir(wenv.path("Full"))
    assert e.value.errno == errno.ENOTEMPTY
    assert "Full" in wenv.server_folders()


def test_inbox_cannot_be_removed_or_renamed(wenv):
    for op in (lambda: os.rmdir(wenv.path("INBOX")),
               lambda: os.rename(wenv.path("INBOX"), wenv.path("Inbox2"))):
        with pytest.raises(OSError) as e:
            op()
        assert e.value.errno == errno.EBUSY


def test_file_manager_trash_dirs_are_not_mailboxes(wenv):
    for name in (".Trash-0", ".Trash", ".directory"):
        with pytest.raises(OSError) as e:
            os.mkdir(wenv.path(name))
        assert e.value.errno == errno.EPERM
    assert not {f for f in wenv.server_folders() if f.startswith(".")}


# -- flags, attributes, links ----------------------------------------------------------

def test_setfattr_flags_stores_them(wenv):
    uid = wenv.append("Work", msg("flag-me"), "\\Seen")
    os.listdir(wenv.path("Work"))
    p = wenv.path("Work", f"{uid}.eml")
    subprocess.run(["setfattr", "-n", "user.imap.flags", "-v",
                    "\\Seen \\Flagged $Label1", p], check=True)
    assert wenv.messages("Work")[uid]["flags"] == \
        {"\\Seen", "\\Flagged", "$Label1"}
    assert set(os.getxattr(p, "user.imap.flags").decode().split()) == \
        {"\\Seen", "\\Flagged", "$Label1"}
    os.removexattr(p, "user.imap.flags")
    assert wenv.messages("Work")[uid]["flags"] == set()
    wenv.check_sentinels()


def test_setfattr_bad_flag_is_einval(wenv):
    uid = wenv.append("Work", msg("bad-flag"))
    os.listdir(wenv.path("Work"))
    p = wenv.path("Work", f"{uid}.eml")
    for bad in (b"\\Seen) (\\Deleted", b"a\"b", b"\\Bogus"):
        with pytest.raises(OSError) as e:
            os.setxattr(p, "user.imap.flags", bad)
        assert e.value.errno in (errno.EINVAL, errno.EPERM), bad
    assert wenv.messages("Work")[uid]["flags"] == set()


def test_setfattr_does_not_overwrite_a_concurrent_change(wenv):
    uid = wenv.append("Work", msg("race-flags"))
    p = wenv.path("Work", f"{uid}.eml")
    # An open fd: the flags the mount knows are those of the open.
    fd = os.open(p, os.O_RDONLY)
    try:
        c = wenv.server.client()
        c.select("Work")
        c.uid("STORE", str(uid), "+FLAGS", "(\\Answered)")
        c.logout()
        with pytest.raises(OSError) as e:
            os.setxattr(fd, "user.imap.flags", b"\\Seen")
        assert e.value.errno == errno.ESTALE
    finally:
        os.close(fd)
    assert wenv.messages("Work")[uid]["flags"] == {"\\Answered"}
    # Now the mount knows the server's flags: the next try works.
    os.setxattr(p, "user.imap.flags", b"\\Seen")
    assert wenv.messages("Work")[uid]["flags"] == {"\\Seen"}


def test_chmod_chown_link_symlink_mknod(wenv):
    uid = wenv.append("Work", msg("meta"))
    os.listdir(wenv.path("Work"))
    p = wenv.path("Work", f"{uid}.eml")
    st = os.stat(p)
    fmode = testenv.mount_modes()[0]
    assert stat.S_IMODE(st.st_mode) == fmode
    os.chmod(p, fmode)
    os.chown(p, st.st_uid, st.st_gid)
    for op, want in ((lambda: os.chmod(p, fmode ^ 0o040), errno.EPERM),
                     (lambda: os.chown(p, st.st_uid + 1, -1), errno.EPERM),
                     (lambda: os.link(p, wenv.path("Work", "hard")),
                      errno.EPERM),
                     (lambda: os.symlink("x", wenv.path("Work", ".#lock")),
                      errno.EPERM),
                     (lambda: os.mkfifo(wenv.path("Work", "fifo")),
                      errno.EPERM)):
        with pytest.raises(OSError) as e:
            op()
        assert e.value.errno == want
    assert uid in wenv.messages("Work")


def test_written_file_stays_readable_when_append_fails(wenv):
    # A folder deleted on the server behind the mount's back: the
    # APPEND fails ([TRYCREATE]); close() says so and the data stays.
    os.mkdir(wenv.path("Doomed"))
    wenv.server.delete_mailbox("Doomed")
    p = wenv.path("Doomed", "lost.eml")
    fd = os.open(p, os.O_CREAT | os.O_WRONLY, 0o600)
    os.write(fd, msg("not-lost"))
    with pytest.raises(OSError) as e:
        os.close(fd)
    assert e.value.errno == errno.ENOENT
    with open(p, "rb") as f:
        assert f.read() == msg("not-lost")
    os.unlink(p)


# -- read-only mounts --------------------------------------------------------------

def _append_one(path):
    with open(path, "ab", buffering=0) as f:
        f.write(b"x")


def test_read_only_mount_refuses_every_change_itself(imapfs_bin, tmp_path):
    env = mount_write_env(imapfs_bin, str(tmp_path), options=["-o", "ro"])
    try:
        assert "ro" in testenv.mount_options(env.mnt)
        # With the kernel flag cleared, what answers is imapfs's handlers.
        testenv.remount_rw(env.mnt)
        assert "ro" not in testenv.mount_options(env.mnt)
        uid = env.append("INBOX", msg("ro"))
        os.listdir(env.path("INBOX"))
        p = env.path("INBOX", f"{uid}.eml")
        ops = [lambda: open(env.path("INBOX", "n.eml"), "wb"),
               # The kernel opens by itself on a -o ro mount: the
               # refusal comes with the first write.
               lambda: _append_one(p),
               lambda: os.unlink(p),
               lambda: os.rename(p, env.path("Work", "x.eml")),
               lambda: os.mkdir(env.path("New")),
               lambda: os.rmdir(env.path("Work")),
               lambda: os.truncate(p, 0),
               lambda: os.setxattr(p, "user.imap.flags", b"\\Seen"),
               lambda: os.symlink("x", env.path("INBOX", "l")),
               lambda: os.link(p, env.path("INBOX", "h"))]
        for op in ops:
            with pytest.raises(OSError) as e:
                op()
            assert e.value.errno == errno.EROFS
        assert SENTINEL in [m["body"] for m in env.messages("INBOX").values()]
        assert len(env.messages("INBOX")) == 2
    finally:
        testenv.unmount(env.mnt)
        env.server.stop()


def test_nul_bytes_go_as_binary_literal(wenv):
    # Dovecot offers BINARY: the message is sent as a literal8 and
    # stored byte for byte (BINARY.PEEK[] shows it; BODY[] cannot carry
    # a NUL, and Dovecot sends 0x80 there instead).
    body = msg("with-nul").replace(b"Second line.", b"Sec\0ond line.")
    write_file(wenv.path("Work", "nul.eml"), body)
    c = wenv.server.client()
    try:
        c.select("Work", readonly=True)
        typ, data = c.uid("SEARCH", "HEADER", "Subject", "with-nul")
        (uid,) = data[0].split()
        typ, data = c.uid("FETCH", uid.decode(), "(BINARY.PEEK[])")
        stored = next(x[1] for x in data if isinstance(x, tuple))
    finally:
        c.logout()
    assert stored == body
    wenv.check_sentinels()


@pytest.mark.parametrize("trash,special", [("Deleted Items", True),
                                           ("Trash", False)])
def test_delete_to_trash(imapfs_bin, tmp_path, trash, special):
    """-o delete=trash moves to the \\Trash special-use mailbox (or, on a
    server without SPECIAL-USE, to a top-level one named Trash)."""
    env = mount_write_env(imapfs_bin, str(tmp_path),
                          options=["-o", "delete=trash"],
                          special_use={trash: "\\Trash"} if special
                          else None)
    try:
        if trash not in env.server_folders():
            try:
                env.server.create_mailbox(trash)
            except RuntimeError as e:
                # Made meanwhile (Dovecot lists it once it exists).
                assert "ALREADYEXISTS" in str(e), e
            # The mount reads the mailbox list at start: remount.
            testenv.unmount(env.mnt)
            env = mount_write_env(imapfs_bin, str(tmp_path),
                                  options=["-o", "delete=trash"],
                                  server=env.server)
        uid = env.append("INBOX", msg("to-trash"))
        os.listdir(env.path("INBOX"))
        os.unlink(env.path("INBOX", f"{uid}.eml"))
        assert uid not in env.messages("INBOX")
        assert env.bodies(trash) == [msg("to-trash")]
        # In the trash itself, rm expunges.
        os.listdir(env.path(trash))
        (tuid,) = [u for u, m in env.messages(trash).items()]
        os.unlink(env.path(trash, f"{tuid}.eml"))
        assert env.messages(trash) == {}
        env.check_sentinels()
    finally:
        testenv.unmount(env.mnt)
        env.server.stop()


def test_100mb_message_written_through_the_mount(wenv, tmp_path):
    size = 100 * 1024 * 1024
    big = testenv.big_message(size, seed=11)
    src = tmp_path / "big.eml"
    src.write_bytes(big)
    pid = testenv.daemon_pid(wenv.mnt)
    before = testenv.proc_status_kb(pid, "VmRSS")
    subprocess.run(["cp", str(src), wenv.path("Archive", "big.eml")],
                   check=True, timeout=600)
    peak = testenv.proc_status_kb(pid, "VmHWM")
    c = wenv.server.client()
    try:
        c.select("Archive", readonly=True)
        typ, data = c.uid("SEARCH", "LARGER", str(size // 2))
        uids = data[0].split()
        assert len(uids) == 1
        typ, data = c.uid("FETCH", uids[0].decode(), "(BODY.PEEK[])")
        stored = next(x[1] for x in data if isinstance(x, tuple))
    finally:
        c.logout()
    assert stored == crlf(big)
    if not os.environ.get("IMAPFS_SANITIZED"):
        # Streamed from the spool file: the daemon holds pieces, never
        # the message.
        assert peak - before < 32 * 1024, \
            f"daemon grew by {(peak - before) // 1024} MB writing 100 MB"
    wenv.check_sentinels()


def test_cp_between_folders_copies_on_the_server(wenv):
    """coreutils' cp uses copy_file_range: between two folders of the
    mount that is a UID COPY (flags and INTERNALDATE come along, no bytes
    through the daemon), seen as a COPY and no APPEND in the trace."""
    when = datetime.datetime(2019, 5, 6, 7, 8, 9, tzinfo=UTC)
    uid = wenv.append("INBOX", msg("server-copy"), "\\Answered $Work", when)
    os.listdir(wenv.path("INBOX"))
    subprocess.run(["cp", wenv.path("INBOX", f"{uid}.eml"),
                    wenv.path("Archive", "copied.eml")], check=True)
    new = uid_of(wenv, "Archive", msg("server-copy"))
    m = wenv.messages("Archive")[new]
    assert m["flags"] == {"\\Answered", "$Work"}
    assert m["date"] == int(when.timestamp())
    assert uid in wenv.messages("INBOX")
    with open(wenv.path("Archive", "copied.eml"), "rb") as f:
        assert f.read() == msg("server-copy")
    assert f"{new}.eml" in listed(wenv, "Archive")
    # cp -a of the same: the copy's flags, set again, are unchanged.
    subprocess.run(["cp", "-a", wenv.path("INBOX", f"{uid}.eml"),
                    wenv.path("Work", "copied-a.eml")], check=True)
    new2 = uid_of(wenv, "Work", msg("server-copy"))
    assert wenv.messages("Work")[new2]["flags"] == {"\\Answered", "$Work"}
    wenv.check_sentinels()


def _same_uid_in_two_folders(wenv, tag):
    """A message in Archive and one in Work that have the same UID (as
    happens all the time: UIDs are per folder)."""
    filler = msg(f"{tag}-filler")
    a = wenv.append("Archive", filler)
    w = wenv.append("Work", filler)
    for _ in range(200):
        if a == w:
            break
        if a < w:
            a = wenv.append("Archive", filler)
        else:
            w = wenv.append("Work", filler)
    assert a == w
    a = wenv.append("Archive", msg(f"{tag}-a"))
    w = wenv.append("Work", msg(f"{tag}-w-{a}"))
    assert a == w
    return a


def test_mv_onto_a_colliding_uid_keeps_both(wenv):
    """mv Archive/N.eml Work/ where Work has a UID N of its own: a MOVE,
    and Work's message N is not touched."""
    n = _same_uid_in_two_folders(wenv, "mvcol")
    os.listdir(wenv.path("Archive"))
    os.listdir(wenv.path("Work"))
    subprocess.run(["mv", wenv.path("Archive", f"{n}.eml"),
                    wenv.path("Work")], check=True)
    work = wenv.messages("Work")
    assert work[n]["body"] == msg(f"mvcol-w-{n}")
    assert len(copies_of(work, msg("mvcol-a"))) == 1
    with open(wenv.path("Work", f"{n}.eml"), "rb") as f:
        assert f.read() == msg(f"mvcol-w-{n}")
    wenv.check_sentinels()


def test_cp_onto_a_colliding_uid_keeps_both(wenv):
    n = _same_uid_in_two_folders(wenv, "cpcol")
    os.listdir(wenv.path("Archive"))
    os.listdir(wenv.path("Work"))
    subprocess.run(["cp", wenv.path("Archive", f"{n}.eml"),
                    wenv.path("Work")], check=True)
    work = wenv.messages("Work")
    assert work[n]["body"] == msg(f"cpcol-w-{n}")
    assert len(copies_of(work, msg("cpcol-a"))) == 1
    assert n in wenv.messages("Archive")
    with open(wenv.path("Work", f"{n}.eml"), "rb") as f:
        assert f.read() == msg(f"cpcol-w-{n}")
    wenv.check_sentinels()


def test_mv_onto_another_message_in_the_same_folder_is_eexist(wenv):
    a = wenv.append("Work", msg("same-a"))
    b = wenv.append("Work", msg("same-b"))
    os.listdir(wenv.path("Work"))
    with pytest.raises(OSError) as e:
        os.rename(wenv.path("Work", f"{a}.eml"), wenv.path("Work", f"{b}.eml"))
    assert e.value.errno == errno.EEXIST
    msgs = wenv.messages("Work")
    assert a in msgs and b in msgs


def copies_of(msgs, body):
    return [u for u, m in msgs.items() if m["body"] == body]


def test_rm_r_of_a_folder(wenv):
    """rm -r: every message expunged by UID, then DELETE of the folders."""
    os.makedirs(wenv.path("Doomed2", "Sub"))
    for i, folder in enumerate(("Doomed2", "Doomed2/Sub")):
        for j in range(3):
            wenv.append(folder, msg(f"rmr-{i}-{j}"))
    subprocess.run(["rm", "-r", wenv.path("Doomed2")], check=True)
    assert not {f for f in wenv.server_folders() if f.startswith("Doomed2")}
    assert not os.path.exists(wenv.path("Doomed2"))
    wenv.check_sentinels()


def test_read_in_a_folder_deleted_elsewhere_is_enoent(wenv):
    """An uncached message of a folder another client deleted: ENOENT,
    not EIO (Dovecot answers the FETCH and STATUS with a plain NO)."""
    wenv.server.create_mailbox("GoneElsewhere")
    uid = wenv.append("GoneElsewhere", msg("gone-elsewhere"))
    assert "GoneElsewhere" in os.listdir(wenv.mnt)
    assert f"{uid}.eml" in os.listdir(wenv.path("GoneElsewhere"))
    fd = os.open(wenv.path("GoneElsewhere", f"{uid}.eml"), os.O_RDONLY)
    try:
        wenv.server.delete_mailbox("GoneElsewhere")
        with pytest.raises(OSError) as e:
            os.read(fd, 100)
        assert e.value.errno == errno.ENOENT
    finally:
        os.close(fd)


@pytest.mark.parametrize("options,umask", [
    (["-o", "umask=027"], 0o027),
    (["-o", "allow_other"], 0o077),
    (["-o", "allow_other,umask=002"], 0o002),
])
def test_umask_decides_the_modes(tmp_path, imapfs_bin, options, umask):
    """-o umask, else 077 with allow_other, else imapfs's own umask (the
    default case is what every other mode assertion checks)."""
    env = mount_write_env(imapfs_bin, str(tmp_path), options=options)
    try:
        fmode, dmode = testenv.mount_modes(umask=umask)
        uid = env.append("Work", msg("modes"))
        assert stat.S_IMODE(os.stat(env.path("Work")).st_mode) == dmode
        assert stat.S_IMODE(os.stat(env.mnt).st_mode) == dmode
        p = env.path("Work", f"{uid}.eml")
        assert stat.S_IMODE(os.stat(p).st_mode) == fmode
        os.chmod(p, fmode)  # the current mode: fine
    finally:
        testenv.unmount(env.mnt)
        env.server.stop()
