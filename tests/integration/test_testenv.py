"""The Dovecot fixture's options (tests/support/testenv.py) do what the
write-path tests rely on: a storage quota, and capabilities left out."""

import os
import re
import sys

import pytest

_ROOT = os.environ.get("IMAPFS_SOURCE_ROOT") or os.path.abspath(
    os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(_ROOT, "tests", "support"))

import testenv  # noqa: E402
from conftest import _missing_prerequisite  # noqa: E402

QUOTA_KB = 300
DROPPED = ("UIDPLUS", "MOVE", "LITERAL+", "NOTIFY")


@pytest.fixture(scope="module")
def need_dovecot():
    why = _missing_prerequisite()
    if why:
        pytest.skip(f"needs Dovecot: {why}")


def _server(tmp_path_factory, **kw):
    return testenv.DovecotServer(str(tmp_path_factory.mktemp("dc")), **kw)


def _quota(c):
    typ, data = c.getquotaroot("INBOX")
    assert typ == "OK", data
    text = b" ".join(x for part in data for x in part).decode()
    m = re.search(r"STORAGE (\d+) (\d+)", text)
    assert m, text
    return int(m.group(1)), int(m.group(2))


def test_quota(need_dovecot, tmp_path_factory):
    with _server(tmp_path_factory, quota_kb=QUOTA_KB) as server:
        c = server.client()
        try:
            assert "QUOTA" in server.capabilities()
            assert _quota(c) == (0, QUOTA_KB)
            small = testenv.sample_messages(1, seed=5)[0]
            typ, data = c.append("INBOX", None, None, small)
            assert typ == "OK", data
            used, limit = _quota(c)
            assert limit == QUOTA_KB and used == -(-len(small) // 1024)
            big = testenv.big_message(400 * 1024, seed=5)
            typ, data = c.append("INBOX", None, None, big)
            assert typ == "NO" and b"[OVERQUOTA]" in data[0], (typ, data)
            assert _quota(c)[0] == used
            typ, data = c.select("INBOX", readonly=True)
            assert int(data[0]) == 1
        finally:
            c.logout()


def test_default_has_no_quota(need_dovecot, tmp_path_factory):
    with _server(tmp_path_factory) as server:
        assert "QUOTA" not in server.capabilities()


def test_without_caps(need_dovecot, tmp_path_factory):
    with _server(tmp_path_factory) as plain:
        default = plain.capabilities()
    for cap in DROPPED + ("IMAP4REV1", "IDLE"):
        assert cap in default, (cap, default)
    with _server(tmp_path_factory, without_caps=DROPPED) as server:
        for login in (True, False):
            caps = server.capabilities(login=login)
            assert "IMAP4REV1" in caps
            for cap in DROPPED:
                assert cap not in caps, (login, cap, caps)
        after = server.capabilities()
        assert set(after) == set(default) - set(DROPPED)
        # It still works as a server.
        c = server.client()
        try:
            typ, data = c.append("INBOX", None, None,
                                 testenv.sample_messages(1, seed=6)[0])
            assert typ == "OK", data
        finally:
            c.logout()
