"""STARTTLS against a man in the middle (scripted server).

The server sends bytes right behind its "OK Begin TLS", in the same write,
as an attacker on the plaintext connection could. imapfs must throw them
away with everything else it knew before the handshake; had it kept them,
the injected BYE would end the session and the mount would fail.
"""

import os
import sys


_ROOT = os.environ.get("IMAPFS_SOURCE_ROOT") or os.path.abspath(
    os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(_ROOT, "tests", "support"))

import fakeserver  # noqa: E402
import testenv  # noqa: E402

MESSAGE = (b"From: a@example.org\r\nTo: b@example.org\r\n"
           b"Subject: after STARTTLS\r\n\r\nhello through TLS\r\n")
INJECTED = (b"* BYE injected in plaintext\r\n"
            b"* OK [CAPABILITY IMAP4rev1 AUTH=NONE] injected\r\n")


def test_starttls_discards_plaintext_after_ok(imapfs_bin, tmp_path):
    mnt = str(tmp_path / "mnt")
    os.mkdir(mnt)
    server = fakeserver.FakeImapServer([MESSAGE], workdir=str(tmp_path / "f"),
                                       starttls_inject=INJECTED)
    server.start()
    try:
        r = testenv.mount_imapfs(imapfs_bin, server, mnt, starttls=True)
        assert r.returncode == 0, r.stderr
        with open(os.path.join(mnt, "INBOX", "1.eml"), "rb") as f:
            assert f.read() == MESSAGE
        cmds = server.commands_snapshot()
        first = [c for c in cmds if c.conn == 1]
        # STARTTLS first, before any credentials, then capabilities are
        # asked again over TLS (the plaintext ones are not trusted).
        assert first[0].name == "STARTTLS", [c.text for c in first]
        assert first[1].name == "CAPABILITY", [c.text for c in first]
        assert any(c.name in ("AUTHENTICATE", "LOGIN") for c in first[2:])
    finally:
        testenv.unmount(mnt)
        server.stop()


def test_imap_url_on_a_tls_port_fails_bounded(imapfs_bin, tmp_path):
    """imap:// pointed at an implicit-TLS port: no plaintext greeting ever
    comes. The attempt ends within the timeout with one error line,
    nothing mounted and no credentials sent. (A server that does not
    offer STARTTLS at all is test_cli.py's, on a real Dovecot.)"""
    mnt = str(tmp_path / "mnt")
    os.mkdir(mnt)
    server = fakeserver.FakeImapServer([MESSAGE], workdir=str(tmp_path / "f"),
                                       starttls_inject=b"")
    server.start()
    try:
        server.imap_port, saved = server.imaps_port, server.imap_port
        r = testenv.mount_imapfs(imapfs_bin, server, mnt, starttls=True,
                                 options=["-o", "timeout=3"])
        server.imap_port = saved
        assert r.returncode != 0
        assert r.stderr.startswith("imapfs:"), r.stderr
        assert not os.path.ismount(mnt)
        assert not any(c.name in ("AUTHENTICATE", "LOGIN")
                       for c in server.commands_snapshot())
    finally:
        testenv.unmount(mnt)
        server.stop()
