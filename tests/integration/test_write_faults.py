"""The write path when things go wrong: a connection dropped in the middle
of an APPEND or a MOVE (through the fault proxy), a quota, a server
without UIDPLUS or LITERAL+. Afterwards the server must hold exactly one
copy, and what close()/rename() returned must agree with that."""

import errno
import os
import subprocess

import pytest

from conftest import SENTINEL, mount_write_env, proxied_write_env
import faultproxy
import testenv


def msg(tag: str, size: int = 0) -> bytes:
    head = (f"From: faults@example.org\r\nSubject: {tag}\r\n"
            f"Message-ID: <{tag}@imapfs.test>\r\n\r\n").encode()
    body = b"".join(b"line %06d of the body\r\n" % i
                    for i in range(max(size, 200) // 22))
    return head + body


def copies(env, folder, body):
    return [u for u, m in env.messages(folder).items() if m["body"] == body]


@pytest.fixture
def proxied(imapfs_bin, tmp_path):
    with proxied_write_env(imapfs_bin, str(tmp_path),
                           ["-o", "timeout=10"]) as ep:
        yield ep


def test_append_cut_mid_literal_fails_at_close_and_keeps_data(proxied):
    env, proxy = proxied
    body = msg("cut-mid-literal", 64 * 1024)
    proxy.add_rule(faultproxy.Rule(r"APPEND", at=("literal", 20000),
                                   action="drop"))
    p = env.path("Work", "cut.eml")
    fd = os.open(p, os.O_CREAT | os.O_WRONLY, 0o600)
    os.write(fd, body)
    with pytest.raises(OSError) as e:
        os.close(fd)
    assert e.value.errno == errno.EIO
    # Nothing half-stored, nothing stored twice; the data is still here.
    assert copies(env, "Work", body) == []
    with open(p, "rb") as f:
        assert f.read() == body
    # Nothing is retried behind the user's back; writing and closing
    # again (the rule fired once) stores exactly one copy.
    fd = os.open(p, os.O_WRONLY)
    os.pwrite(fd, body[:10], 0)
    os.close(fd)
    assert len(copies(env, "Work", body)) == 1


def test_append_reply_lost_is_resolved_without_a_duplicate(proxied):
    env, proxy = proxied
    body = msg("reply-lost")
    proxy.add_rule(faultproxy.Rule(r"APPEND", at="reply", action="drop"))
    p = env.path("Work", "lost-reply.eml")
    with open(p, "wb") as f:
        f.write(body)   # close() succeeds: the server has it
    (uid,) = copies(env, "Work", body)
    assert f"{uid}.eml" in os.listdir(env.path("Work"))
    assert os.stat(p).st_ino == os.stat(env.path("Work", f"{uid}.eml")).st_ino
    # The proxy saw the search that found it, and a single APPEND.
    names = [c.name for c in proxy.commands_snapshot()]
    assert names.count("APPEND") == 1
    assert "UID SEARCH" in names


def test_move_reply_lost_is_resolved(proxied):
    env, proxy = proxied
    body = msg("move-reply-lost")
    uid = env.server.append("INBOX", body)
    os.listdir(env.path("INBOX"))
    proxy.add_rule(faultproxy.Rule(r"UID MOVE", at="reply", action="drop"))
    os.rename(env.path("INBOX", f"{uid}.eml"),
              env.path("Archive", f"{uid}.eml"))
    assert copies(env, "INBOX", body) == []
    assert len(copies(env, "Archive", body)) == 1


def test_move_dropped_before_sending_changes_nothing(proxied):
    env, proxy = proxied
    body = msg("move-not-sent")
    uid = env.server.append("INBOX", body)
    os.listdir(env.path("INBOX"))
    proxy.add_rule(faultproxy.Rule(r"UID MOVE", at="before", action="drop"))
    with pytest.raises(OSError) as e:
        os.rename(env.path("INBOX", f"{uid}.eml"),
                  env.path("Archive", f"{uid}.eml"))
    assert e.value.errno == errno.EIO
    assert copies(env, "INBOX", body) == [uid]
    assert copies(env, "Archive", body) == []


def test_over_quota_is_edquot_and_keeps_data(imapfs_bin, tmp_path):
    env = mount_write_env(imapfs_bin, str(tmp_path), quota_kb=300)
    try:
        big = msg("too-big", 600 * 1024)
        src = tmp_path / "big.eml"
        src.write_bytes(big)
        r = subprocess.run(["cp", str(src), env.path("Work", "big.eml")],
                           capture_output=True, text=True)
        assert r.returncode != 0
        assert "quota" in r.stderr.lower(), r.stderr
        with open(env.path("Work", "big.eml"), "rb") as f:
            assert f.read() == big
        assert copies(env, "Work", big) == []
        small = msg("fits")
        with open(env.path("Work", "small.eml"), "wb") as f:
            f.write(small)
        assert len(copies(env, "Work", small)) == 1
        env.check_sentinels()
    finally:
        testenv.unmount(env.mnt)
        env.server.stop()


def test_without_uidplus_or_literal_plus(imapfs_bin, tmp_path):
    """No APPENDUID: the new UID is found by Message-ID, not guessed; no
    UID EXPUNGE: rm, mv to another folder (no MOVE either), an edit in
    place and a rename over a message refuse (EPERM) and send nothing,
    rather than send a bare EXPUNGE (-o delete=flag would only flag:
    test_delete_flag.py); no LITERAL+: synchronising literals."""
    env = mount_write_env(imapfs_bin, str(tmp_path),
                          without_caps=("UIDPLUS", "LITERAL+", "MOVE"))
    try:
        body = msg("no-uidplus", 10000)
        with open(env.path("Work", "nu.eml"), "wb") as f:
            f.write(body)
        (uid,) = copies(env, "Work", body)
        # Another client's \Deleted message is listed as any other (only
        # -o delete=flag hides it).
        (sentinel,) = copies(env, "Work", SENTINEL)
        assert sorted(os.listdir(env.path("Work"))) == \
            sorted([f"{uid}.eml", f"{sentinel}.eml"])
        with open(env.path("Work", "nu.eml"), "rb") as f:
            assert f.read() == body
        with pytest.raises(OSError) as e:
            os.unlink(env.path("Work", f"{uid}.eml"))
        assert e.value.errno == errno.EPERM
        assert copies(env, "Work", body) == [uid]
        with pytest.raises(OSError) as e:
            os.rename(env.path("Work", f"{uid}.eml"),
                      env.path("Archive", f"{uid}.eml"))
        assert e.value.errno == errno.EPERM
        # An edit in place fails at close, before the new version is
        # sent; so does a rename over the message (sed -i).
        fd = os.open(env.path("Work", f"{uid}.eml"), os.O_WRONLY)
        os.pwrite(fd, b"X-Edit: 1\r\n", 0)
        with pytest.raises(OSError) as e:
            os.close(fd)
        assert e.value.errno == errno.EPERM
        with open(env.path("Work", ".sed-tmp"), "wb") as f:
            f.write(body.replace(b"line", b"LINE"))
        with pytest.raises(OSError) as e:
            os.rename(env.path("Work", ".sed-tmp"),
                      env.path("Work", f"{uid}.eml"))
        assert e.value.errno == errno.EPERM
        assert env.bodies("Work") == [body]
        assert env.bodies("Archive") == []
        assert not any("\\Deleted" in m["flags"]
                       for m in env.messages("Work").values()
                       if m["body"] == body)
        env.check_sentinels()
    finally:
        testenv.unmount(env.mnt)
        env.server.stop()
