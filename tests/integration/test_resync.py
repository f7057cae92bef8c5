"""Resync after the network was away (docs/SEMANTICS.md "Resync"): a
mount that listed a folder, lost the server while another client
expunged, flagged and appended, shows exactly the server's state once it
is back -- with QRESYNC (Dovecot as it ships), with CONDSTORE only
(QRESYNC left out of its capabilities) and with neither.

The mount goes through the fault proxy (tests/support/faultproxy.py),
which cuts the network and records every command and the bytes of its
reply: each test also checks which commands the resync used, so it fails
when the QRESYNC path (or the fallback a server without it needs) is not
the one taken. The other client talks to Dovecot directly.
"""

import os
import re
import secrets
import shutil
import subprocess
import sys
import time

import pytest

_ROOT = os.environ.get("IMAPFS_SOURCE_ROOT") or os.path.abspath(
    os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(_ROOT, "tests", "support"))

import fakeproviders  # noqa: E402
import faultproxy  # noqa: E402
import testenv  # noqa: E402
from conftest import _missing_prerequisite  # noqa: E402
# mount(server, options): through the proxy, -o timeout=3, unmounted at
# teardown.
from test_offline import mount  # noqa: E402,F401

COUNT = 300
VARIANTS = {
    "qresync": (),
    "condstore": ("QRESYNC",),
    "plain": ("QRESYNC", "CONDSTORE"),
}
QRESYNC_RE = re.compile(
    r"^UID FETCH \d+:\d+ \(UID FLAGS\) \(CHANGEDSINCE \d+ VANISHED\)$")
CHANGEDSINCE_RE = re.compile(
    r"^UID FETCH \S+ \(UID FLAGS\) \(CHANGEDSINCE \d+\)$")
SEARCH_RE = re.compile(r"^UID SEARCH ")
FULL_FLAGS_RE = re.compile(r"^UID FETCH 1:\d+ \(UID FLAGS\)$")


@pytest.fixture(scope="module", params=list(VARIANTS))
def proxy(request, tmp_path_factory):
    why = _missing_prerequisite()
    if why:
        pytest.skip(f"needs Dovecot: {why}")
    variant = request.param
    server = testenv.DovecotServer(
        str(tmp_path_factory.mktemp("resync-" + variant)),
        without_caps=VARIANTS[variant])
    server.start()
    p = faultproxy.FaultProxy(server, lifetime=900)
    try:
        caps = server.capabilities()
        assert ("QRESYNC" in caps) == (variant == "qresync")
        assert ("CONDSTORE" in caps) == (variant != "plain")
        p.start()
        p.variant = variant
        p.server = server
        yield p
    finally:
        p.stop()
        server.stop()


def message(i: int) -> bytes:
    return (f"From: resync@example.org\r\nSubject: m{i}\r\n"
            f"Message-ID: <resync{i}-{secrets.token_hex(4)}@imapfs.test>"
            f"\r\n\r\nbody {i}\r\n").encode()


def new_folder(server, count=COUNT) -> str:
    name = "R" + secrets.token_hex(3)
    server.create_mailbox(name)
    server.append_many(name, [(message(i), "\\Seen" if i % 3 == 0 else "",
                               None) for i in range(count)])
    return name


def server_state(server, folder) -> dict:
    """{uid: frozenset of flags} as Dovecot has it (without \\Recent)."""
    c = server.client()
    try:
        c.select(testenv.imap_quote(server.server_name(folder)),
                 readonly=True)
        typ, data = c.uid("FETCH", "1:*", "(FLAGS)")
        assert typ == "OK", data
        out = {}
        for item in data:
            if not item:
                continue
            line = item.decode() if isinstance(item, bytes) else \
                item[0].decode()
            m = re.search(r"UID (\d+)", line)
            f = re.search(r"FLAGS \(([^)]*)\)", line)
            if m and f:
                out[int(m.group(1))] = frozenset(
                    x for x in f.group(1).split() if x != "\\Recent")
        return out
    finally:
        c.logout()


def mount_state(path) -> dict:
    """{uid: frozenset of flags} as the mount shows them: the names, and
    user.imap.flags of every one read by getfattr."""
    names = sorted(n for n in os.listdir(path) if n.endswith(".eml"))
    if not names:
        return {}
    r = subprocess.run(["getfattr", "--absolute-names", "-n",
                        "user.imap.flags"] + [os.path.join(path, n)
                                              for n in names],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    out = {}
    for m in re.finditer(r'# file: .*/(\d+)\.eml\nuser\.imap\.flags="([^"]*)"',
                         r.stdout):
        # getfattr's text encoding: "\\" for a backslash, "\ooo" octal.
        value = re.sub(r"\\(\\|[0-7]{3})",
                       lambda e: "\\" if e.group(1) == "\\"
                       else chr(int(e.group(1), 8)), m.group(2))
        out[int(m.group(1))] = frozenset(value.split())
    assert len(out) == len(names), r.stdout[:2000]
    return out


def change_while_away(server, folder, before: dict):
    """Another client expunges every 15th message (holes all over),
    flags 30, clears \\Seen on 10, appends 5."""
    uids = sorted(before)
    gone = uids[5::15]
    flag = [u for u in uids[1::9] if u not in gone][:30]
    unseen = [u for u in uids[::3] if u not in gone and u not in flag][:10]
    c = server.client()
    try:
        c.select(testenv.imap_quote(server.server_name(folder)))
        for u in flag:
            c.uid("STORE", str(u), "+FLAGS", "(\\Flagged $Label1)")
        for u in unseen:
            c.uid("STORE", str(u), "-FLAGS", "(\\Seen)")
        for u in gone:
            c.uid("STORE", str(u), "+FLAGS", "(\\Deleted)")
        c.expunge()
    finally:
        c.logout()
    server.append_many(folder, [(message(1000 + i), "\\Answered", None)
                                for i in range(5)])


def cut(proxy):
    proxy.refuse(True)
    proxy.reset_all()


def commands_since(proxy, n) -> list:
    return proxy.commands_snapshot()[n:]


def report_bytes(proxy, cmds, what):
    """The reply bytes of the resync's commands, for the report."""
    by = {}
    for c in cmds:
        key = ("QRESYNC" if QRESYNC_RE.match(c.text) else
               "CHANGEDSINCE" if CHANGEDSINCE_RE.match(c.text) else
               "UID SEARCH" if SEARCH_RE.match(c.text) else
               "FULL FLAGS" if FULL_FLAGS_RE.match(c.text) else None)
        if key:
            n, b = by.get(key, (0, 0))
            by[key] = (n + 1, b + c.reply_bytes)
    print(f"\n[{proxy.variant}] {what}: " + ", ".join(
        f"{k} x{n} {b} B" for k, (n, b) in sorted(by.items())))


def assert_path(proxy, cmds):
    texts = [c.text for c in cmds]
    q = [t for t in texts if QRESYNC_RE.match(t)]
    s = [t for t in texts if SEARCH_RE.match(t)]
    cs = [t for t in texts if CHANGEDSINCE_RE.match(t)]
    full = [t for t in texts if FULL_FLAGS_RE.match(t)]
    if proxy.variant == "qresync":
        # One command gave the expunges and the flags: no UID listing,
        # no separate flag query.
        assert q and not s and not cs, texts
    elif proxy.variant == "condstore":
        assert s and cs and not q, texts
    else:
        assert s and full and not q and not cs, texts


def wait_equal(m, proxy, folder, bound=30):
    deadline = time.monotonic() + bound
    want = got = None
    while time.monotonic() < deadline:
        want = server_state(proxy.server, folder)
        try:
            got = mount_state(os.path.join(m.path, folder))
        except OSError as e:
            got = e
        if got == want:
            return want
        time.sleep(0.5)
    missing = sorted(set(want) - set(got)) if isinstance(got, dict) else got
    extra = sorted(set(got) - set(want)) if isinstance(got, dict) else None
    wrong = sorted(u for u in want if isinstance(got, dict) and u in got
                   and got[u] != want[u])
    pytest.fail(f"mount != server after {bound}s: missing {missing}, "
                f"extra {extra}, wrong flags {wrong[:10]}\n"
                + m.trace_tail())


@pytest.fixture(autouse=True)
def _getfattr():
    if not shutil.which("getfattr"):
        pytest.skip("needs getfattr (attr)")


def test_live_view_resyncs_after_reconnect(proxy, mount):
    """The live view (listener on, listings that do not expire) brings a
    loaded folder in line after the network was cut: expunges, flags and
    new mail, with QRESYNC in one command per window."""
    folder = new_folder(proxy.server)
    m = mount(proxy, ["-o", "listing_ttl=3600"])
    before = mount_state(os.path.join(m.path, folder))
    assert before == server_state(proxy.server, folder)
    # The listener is on the folder before the cut.
    time.sleep(1)
    cut(proxy)
    n = len(proxy.commands_snapshot())
    change_while_away(proxy.server, folder, before)
    proxy.refuse(False)
    want = wait_equal(m, proxy, folder)
    assert len(want) == COUNT - COUNT // 15 + 5
    cmds = commands_since(proxy, n)
    report_bytes(proxy, cmds, "live view after reconnect")
    assert_path(proxy, cmds)


def test_refresh_after_outage(proxy, mount):
    """Without the live view, the next access after the listing expired
    finds the same state through the folder refresh."""
    folder = new_folder(proxy.server)
    m = mount(proxy, ["-o", "watch=0", "-o", "listing_ttl=1"])
    before = mount_state(os.path.join(m.path, folder))
    cut(proxy)
    n = len(proxy.commands_snapshot())
    change_while_away(proxy.server, folder, before)
    proxy.refuse(False)
    time.sleep(1.5)  # listing_ttl expires
    wait_equal(m, proxy, folder)
    cmds = commands_since(proxy, n)
    report_bytes(proxy, cmds, "folder refresh")
    assert_path(proxy, cmds)


HOLES_COUNT = 25000


def test_refresh_with_many_holes(proxy, mount):
    """A refresh of a folder where half the messages went (12,500 holes):
    no reply line outgrows the parser (the single UID SEARCH it used to
    send failed the listing with EIO), the mount shows the survivors."""
    if proxy.variant == "plain":
        pytest.skip("the same UID listing as with CONDSTORE")
    server = proxy.server
    folder = "H" + secrets.token_hex(3)
    server.bulk_load(folder, [b"Subject: h%d\r\n\r\nx\r\n" % i
                              for i in range(HOLES_COUNT)])
    m = mount(proxy, ["-o", "watch=0", "-o", "listing_ttl=1"])
    path = os.path.join(m.path, folder)
    assert len([n for n in os.listdir(path)
                if n.endswith(".eml")]) == HOLES_COUNT
    c = server.client()
    try:
        c.select(testenv.imap_quote(server.server_name(folder)))
        for lo in range(1, HOLES_COUNT + 1, 2000):
            odd = ",".join(str(u) for u in range(lo, min(lo + 2000,
                                                         HOLES_COUNT + 1), 2))
            typ, data = c.uid("STORE", odd, "+FLAGS.SILENT", "(\\Deleted)")
            assert typ == "OK", data
        c.expunge()
    finally:
        c.logout()
    n = len(proxy.commands_snapshot())
    time.sleep(1.5)
    names = os.listdir(path)
    assert sorted(int(x[:-4]) for x in names if x.endswith(".eml")) == \
        list(range(2, HOLES_COUNT + 1, 2))
    cmds = commands_since(proxy, n)
    report_bytes(proxy, cmds, "refresh, 12,500 holes")
    texts = [c.text for c in cmds]
    if proxy.variant == "qresync":
        assert sum(1 for t in texts if QRESYNC_RE.match(t)) >= 5, texts
    else:
        assert sum(1 for t in texts if SEARCH_RE.match(t)) >= 5, texts


def test_qresync_that_forgets_expunges_falls_back(imapfs_bin, tmp_path):
    """A server that announces QRESYNC but reports no VANISHED for an
    expunge (scripted: no real server does it on purpose, one that lost
    its expunge log may): the count does not add up, so the refresh lists
    the UIDs after all and the message goes."""
    s = fakeproviders.ProviderServer(
        "gmail", labels={"Box": [(f"k{i}", message(i)) for i in range(20)]},
        workdir=str(tmp_path / "srv"), qresync_forgets=True)
    s.start()
    mnt = str(tmp_path / "mnt")
    os.mkdir(mnt)
    try:
        r = testenv.mount_imapfs(imapfs_bin, s, mnt, options=[
            "-o", "watch=0", "-o", "listing_ttl=1", "-o", "timeout=5"])
        assert r.returncode == 0, r.stderr
        box = os.path.join(mnt, "Box")
        names = sorted(os.listdir(box))
        assert len(names) == 20
        with s.lock:
            f = s.folders["Box"]
            gone = sorted(f.uids)[4]
            s.expunge_from(f, gone)
        n = len(s.commands_snapshot())
        time.sleep(1.5)  # listing_ttl expires
        assert sorted(os.listdir(box)) == \
            sorted(set(names) - {f"{gone}.eml"})
        # The scripted server's texts start with the tag.
        sent = [c.text.split(" ", 1)[1] for c in s.commands_snapshot()[n:]]
        assert any(QRESYNC_RE.match(t) for t in sent), sent
        assert any(SEARCH_RE.match(t) for t in sent), sent
    finally:
        testenv.unmount(mnt)
        if testenv.daemon_pid(mnt) is not None:
            testenv.force_unmount(mnt)
        s.stop()
