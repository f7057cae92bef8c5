"""Big folders: what a lookup or an expired listing costs on the wire.

A private Dovecot serves this module through the fault proxy
(tests/support/faultproxy.py), which records every command imapfs sends.
The folders are small (the cost is counted in commands, not measured in
time; tests/bench measures a million-message folder), but each statement
is one that matters at a million messages: a stat of one name does not
list the folder, and an expired listing is brought up to date by what
changed instead of being fetched again.
"""

import errno
import os
import re
import sys
import time

import pytest

_ROOT = os.environ.get("IMAPFS_SOURCE_ROOT") or os.path.abspath(
    os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(_ROOT, "tests", "support"))

import faultproxy  # noqa: E402
import testenv  # noqa: E402
# The mount fixture (through this module's proxy; options from
# @pytest.mark.mount_options).
from test_observed import mount  # noqa: E402,F401

N = 40
# A listing of every message's metadata: what must not be sent again.
FULL_META_RE = re.compile(r"^UID FETCH 1:(\*|\d+) \(UID RFC822\.SIZE "
                          r"INTERNALDATE FLAGS\)$")
ANY_META_RE = re.compile(r"^UID FETCH (\d+):(\*|\d+) \(UID RFC822\.SIZE "
                         r"INTERNALDATE FLAGS\)$")


@pytest.fixture(scope="module")
def proxy(imapfs_bin, tmp_path_factory):
    work = str(tmp_path_factory.mktemp("bigfolder"))
    server = testenv.DovecotServer(os.path.join(work, "dovecot"))
    server.start()
    p = faultproxy.FaultProxy(server, lifetime=600)
    try:
        for box in ("Cold", "Walk", "Change"):
            server.bulk_load(box, testenv.sample_messages(N, seed=len(box)))
        p.start()
        p.work = work
        p.server = server
        yield p
    finally:
        p.stop()
        server.stop()


def _since(proxy, start):
    return [c.text for c in proxy.commands_snapshot()[start:]]


def _uids(proxy, mailbox):
    c = proxy.server.client()
    try:
        c.select(mailbox, readonly=True)
        typ, data = c.uid("SEARCH", None, "ALL")
        assert typ == "OK", data
        return [int(x) for x in data[0].split()]
    finally:
        c.logout()


def test_stat_of_one_name_in_a_cold_folder_fetches_that_uid(proxy, mount):
    """SEMANTICS: a lookup of one "<UID>.eml" in a folder that was never
    listed asks for that one message (UID FETCH uid:uid), not for the
    folder's listing; a UID that does not exist is ENOENT the same way."""
    uid = _uids(proxy, "Cold")[N // 2]
    start = len(proxy.commands_snapshot())
    st = os.stat(os.path.join(mount, "Cold", f"{uid}.eml"))
    assert st.st_size > 0
    with pytest.raises(OSError) as e:
        os.stat(os.path.join(mount, "Cold", "99999.eml"))
    assert e.value.errno == errno.ENOENT
    sent = _since(proxy, start)
    metas = [t for t in sent if ANY_META_RE.match(t)]
    assert metas == [f"UID FETCH {uid}:{uid} (UID RFC822.SIZE "
                     "INTERNALDATE FLAGS)",
                     "UID FETCH 99999:99999 (UID RFC822.SIZE "
                     "INTERNALDATE FLAGS)"], sent
    # The listing comes with readdir, and knows the message by the same
    # inode.
    names = os.listdir(os.path.join(mount, "Cold"))
    assert len(names) == N
    assert os.stat(os.path.join(mount, "Cold", f"{uid}.eml")).st_ino == \
        st.st_ino
    assert any(FULL_META_RE.match(t) for t in _since(proxy, start))


@pytest.mark.mount_options("-o", "listing_ttl=1")
def test_expired_listing_is_refreshed_not_relisted(proxy, mount):
    """SEMANTICS: when listing_ttl expires, a listed folder with one new
    and one expunged message (and a flag changed by another client) is
    brought up to date without listing its metadata again: EXAMINE, the
    metadata of the new UIDs only and, since the count says something
    went, the flags changed and the UIDs expunged since the last
    HIGHESTMODSEQ in one QRESYNC command (test_resync.py covers the
    servers without it)."""
    folder = os.path.join(mount, "Change")
    before = set(os.listdir(folder))
    assert len(before) == N
    uids = _uids(proxy, "Change")
    gone, flagged = uids[3], uids[7]
    c = proxy.server.client()
    try:
        c.select("Change")
        c.uid("STORE", str(gone), "+FLAGS.SILENT", r"(\Deleted)")
        c.uid("EXPUNGE", str(gone))
        c.uid("STORE", str(flagged), "+FLAGS.SILENT", r"(\Flagged)")
    finally:
        c.logout()
    new_uid = proxy.server.append("Change",
                                  testenv.sample_messages(1, seed=99)[0])
    start = len(proxy.commands_snapshot())
    time.sleep(1.5)  # past listing_ttl
    after = set(os.listdir(folder))
    assert after == (before - {f"{gone}.eml"}) | {f"{new_uid}.eml"}
    flags = os.getxattr(os.path.join(folder, f"{flagged}.eml"),
                        "user.imap.flags").decode()
    assert "\\Flagged" in flags.split()
    sent = _since(proxy, start)
    assert not any(FULL_META_RE.match(t) for t in sent), sent
    assert f"UID FETCH {max(uids) + 1}:* (UID RFC822.SIZE INTERNALDATE " \
        "FLAGS)" in sent, sent
    assert any(re.match(r"^UID FETCH 1:\d+ \(UID FLAGS\) \(CHANGEDSINCE "
                        r"\d+ VANISHED\)$", t) for t in sent), sent
    assert not any(t.startswith("UID SEARCH") for t in sent), sent


@pytest.mark.mount_options("-o", "listing_ttl=1", "-o", "attr_timeout=0")
def test_walk_across_listing_ttl_does_not_relist(proxy, mount):
    """SEMANTICS: a walk (listdir, then lstat of every entry) that spans
    listing_ttl expiries lists the folder once: the expiries are
    refreshes (EXAMINE and nothing else when nothing changed)."""
    folder = os.path.join(mount, "Walk")
    start = len(proxy.commands_snapshot())
    names = sorted(os.listdir(folder))
    assert len(names) == N
    for i, name in enumerate(names):
        st = os.lstat(os.path.join(folder, name))
        assert st.st_size > 0
        if i % 10 == 9:
            time.sleep(1.1)
    sent = _since(proxy, start)
    # The walk did outlive the listing (it was refreshed on the way)...
    assert len([t for t in sent if t == 'EXAMINE "Walk"']) >= 3, sent
    # ...and was listed once.
    assert len([t for t in sent if FULL_META_RE.match(t)]) == 1, sent
    assert not any(t.startswith("UID FETCH") and "FLAGS)" in t and
                   not FULL_META_RE.match(t) for t in sent), sent
