"""The write requests of imap/mutate.h against a real Dovecot.

tests/integration/mutate_probe.c runs APPEND (a 3 MB message streamed from
a file, flags and INTERNALDATE), STATUS, the search for an appended
message, a UID's state, PERMANENTFLAGS, a conditional STORE (and a stale
one), COPY, MOVE (to a missing and an existing mailbox), UID EXPUNGE,
CREATE, RENAME and DELETE on a private Dovecot of its own (the shared
corpus stays untouched); this test then checks, over a separate imaplib
connection, that the server holds exactly what those requests should have
made -- and that a message another client had flagged \\Deleted in the
same mailbox survived the UID EXPUNGE.
"""

import os
import re
import subprocess
import sys

_ROOT = os.environ.get("IMAPFS_SOURCE_ROOT") or os.path.abspath(
    os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(_ROOT, "tests", "support"))

import testenv  # noqa: E402

# imap-error.h codes, as the probe prints them.
EXISTS = 18
MODIFIED = 17
NONEXISTENT = 8
NOTEMPTY = 20

MSGID = "<probe-3mb@imapfs.test>"


def _probe_binary(imapfs_bin):
    probe = os.environ.get("IMAPFS_MUTATE_PROBE") or os.path.join(
        os.path.dirname(imapfs_bin), "..", "tests", "integration",
        "mutate_probe")
    assert os.access(probe, os.X_OK), f"mutate_probe not built: {probe}"
    return probe


def _message() -> bytes:
    head = (f"From: probe@example.org\r\nTo: alice@example.org\r\n"
            f"Subject: streamed\r\nMessage-ID: {MSGID}\r\n\r\n").encode()
    line = b"".join(bytes([33 + (i * 7) % 90]) for i in range(76)) + b"\r\n"
    return head + line * (3 * 1024 * 1024 // len(line))


def _uids(c, mailbox):
    typ, _ = c.select(testenv.imap_quote(mailbox), readonly=True)
    assert typ == "OK", mailbox
    typ, data = c.uid("SEARCH", "ALL")
    assert typ == "OK"
    return [int(x) for x in data[0].split()]


def test_mutate_against_dovecot(imapfs_bin, tmp_path):
    probe = _probe_binary(imapfs_bin)
    msg = _message()
    path = tmp_path / "msg.eml"
    path.write_bytes(msg)
    with testenv.DovecotServer(str(tmp_path / "dc")) as server:
        # Another client's message marked \Deleted in INBOX: no request of
        # ours may expunge it.
        other = server.append("INBOX", b"Subject: keep me\r\n\r\nkeep\r\n",
                              flags="\\Deleted")
        env = dict(os.environ, IMAP_HOST=server.host,
                   IMAP_PORT=str(server.imaps_port),
                   IMAP_CAFILE=server.cafile, IMAP_USER=server.user,
                   IMAP_PASSWORD=server.password, PROBE_FILE=str(path),
                   PROBE_MSGID=MSGID)
        r = subprocess.run([probe], env=env, capture_output=True, text=True,
                           timeout=120)
        assert r.returncode == 0, r.stdout + r.stderr
        out = dict(line.split("=", 1) for line in r.stdout.splitlines())
        assert out.get("done") == "1", r.stdout + r.stderr

        uidvalidity, uid = (int(x) for x in out["append"].split())
        assert uid > 0 and uidvalidity > 0
        assert out["create_again"] == f"error:{EXISTS}"
        assert out["status"] == f"1 {uid + 1} {uidvalidity}"
        assert out["find"] == f"{uid} {uidvalidity}"
        assert out["find_wrong_size"] == "0"
        assert out["state"] == "1 \\Seen $Label1"
        assert "\\Seen" in out["perm"].split() and \
            "\\*" in out["perm"].split()
        assert out["store"] == "1"
        assert out["store_stale"] == f"error:{MODIFIED}"
        assert out["move_missing"] == f"error:{NONEXISTENT}"
        assert out["delete_full"] == f"error:{NOTEMPTY}"
        assert out["delete_missing"] == f"error:{NONEXISTENT}"
        assert "create" not in out and "rename" not in out
        assert "delete_empty" not in out
        assert out["expunge"] == "ok"

        c = server.client()
        try:
            # The moved message: in Target, byte-exact, with its flags and
            # date (the refused conditional STORE changed nothing).
            move_uidvalidity, move_uid = (int(x) for x in
                                          out["move"].split())
            assert _uids(c, "Target") == [move_uid]
            typ, data = c.uid("FETCH", str(move_uid),
                              "(BODY.PEEK[] FLAGS INTERNALDATE)")
            assert typ == "OK"
            assert data[0][1] == msg
            meta = data[0][0].decode()
            flags = set(re.search(r"FLAGS \(([^)]*)\)", meta).group(1)
                        .split())
            assert flags - {"\\Recent"} == {"\\Seen", "\\Flagged", "$Label1"}
            assert 'INTERNALDATE "14-Nov-2023 22:13:20 +0000"' in meta
            typ, data = c.status("Target", "(UIDVALIDITY)")
            assert f"UIDVALIDITY {move_uidvalidity}".encode() in data[0]
            # The copy in INBOX was expunged; the other client's \Deleted
            # message is still there.
            assert _uids(c, "INBOX") == [other]
            # Renamed, then deleted: gone, like the source name.
            typ, data = c.list('""', "*")
            names = b"\n".join(data)
            assert b"Renamed" not in names and b"Probe" not in names
        finally:
            c.logout()
