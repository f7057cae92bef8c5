"""SEMANTICS.md statements about what imapfs sends, observed on the wire.

A private Dovecot serves this module through the fault proxy
(tests/support/faultproxy.py), which records every command imapfs sends
and can hold a reply back; each test mounts imapfs through it.
"""

import os
import re
import secrets
import sys
import threading

import pytest

_ROOT = os.environ.get("IMAPFS_SOURCE_ROOT") or os.path.abspath(
    os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(_ROOT, "tests", "support"))

import faultproxy  # noqa: E402
import testenv  # noqa: E402

PARALLEL_COUNT = 8
PARALLEL_SIZE = 600_000      # above the folder-walk prefetch bound
BODY_RE = r"^UID FETCH (\d+) \(UID BODY\.PEEK\[\]"


@pytest.fixture(scope="module")
def proxy(imapfs_bin, tmp_path_factory):
    work = str(tmp_path_factory.mktemp("observed"))
    server = testenv.DovecotServer(os.path.join(work, "dovecot"))
    server.start()
    p = faultproxy.FaultProxy(server, lifetime=600)
    try:
        server.append_many("INBOX", [(m, "", None) for m in
                                     testenv.sample_messages(5, seed=3)])
        server.create_mailbox("Sub")
        server.append("Sub", testenv.sample_messages(1, seed=4)[0])
        server.bulk_load("Par", [testenv.big_message(PARALLEL_SIZE, seed=i)
                                 for i in range(PARALLEL_COUNT)])
        p.start()
        p.work = work
        yield p
    finally:
        p.stop()
        server.stop()


def _mount(imapfs_bin, proxy, options):
    mnt = os.path.join(proxy.work, "mnt-" + secrets.token_hex(4))
    os.mkdir(mnt)
    # These tests count the commands requests cause: the live view's
    # own traffic (IDLE, STATUS and LIST polls) is left out.
    options = ["-o", "watch=0"] + list(options)
    r = testenv.mount_imapfs(imapfs_bin, proxy, mnt, options=options)
    if r.returncode != 0:
        pytest.fail(f"mounting through the proxy failed: {r.stderr}")
    return mnt


@pytest.fixture
def mount(imapfs_bin, proxy, request):
    """A mount through the proxy; options from @pytest.mark.mount_options."""
    marker = request.node.get_closest_marker("mount_options")
    mnt = _mount(imapfs_bin, proxy, list(marker.args) if marker else [])
    try:
        yield mnt
    finally:
        proxy.clear_rules()
        proxy.resume()
        testenv.unmount(mnt)
        if testenv.daemon_pid(mnt) is not None:
            testenv.force_unmount(mnt)


PROBES = [".hidden", ".Trash", ".Trash-0", "autorun.inf", ".xdg-volume-info",
          ".directory", "abc", "01.eml", "+1.eml", "1.EML", "1.eml.swp", "1"]


@pytest.mark.mount_options("-o", "listing_ttl=0")
def test_enoent_probe_without_round_trip(proxy, mount):
    """SEMANTICS: names that cannot be messages (.hidden, autorun.inf, ...)
    answer ENOENT from memory, without a server round trip.  With
    listing_ttl=0 a name that can be a message does go to the server,
    which shows the observation works."""
    for folder in ("INBOX", "Sub"):
        os.listdir(os.path.join(mount, folder))
        before = len(proxy.commands_snapshot())
        with pytest.raises(FileNotFoundError):
            os.stat(os.path.join(mount, folder, "999999.eml"))
        sent = proxy.commands_snapshot()[before:]
        assert sent, "a message-name lookup with listing_ttl=0 sent " \
            "nothing: the proxy does not see the mount's commands"
        for folder_rel in ("", folder):
            for name in PROBES:
                # A new name each time (the kernel caches negative
                # lookups); the .eml ones are checked on first use.
                unique = name if name.lower().endswith(".eml") else \
                    name + secrets.token_hex(3)
                before = len(proxy.commands_snapshot())
                with pytest.raises(FileNotFoundError):
                    os.stat(os.path.join(mount, folder_rel, unique))
                sent = proxy.commands_snapshot()[before:]
                assert not sent, f"stat of {folder_rel}/{unique} sent " \
                    f"{[c.text for c in sent]}"


def test_reads_of_different_messages_run_in_parallel(proxy, mount):
    """SEMANTICS: reads of different messages run in parallel over the
    connection pool.  The proxy holds back the reply to the first body
    FETCH; while the reader waits for it, a read of another message must
    send its FETCH on another connection.  (With connections=1 the second
    FETCH can only come after the held reply, so this fails.)"""
    folder = os.path.join(mount, "Par")
    names = sorted(os.listdir(folder), key=lambda n: -int(n.split(".")[0]))
    assert len(names) == PARALLEL_COUNT
    seen = {}
    first = {}

    def hold(conn, cmd):
        first["cmd"] = cmd
        start = len(proxy.commands_snapshot())
        uid = re.match(BODY_RE, cmd.text).group(1)

        def other():
            return [c for c in proxy.commands_snapshot()[start:]
                    if c.conn != cmd.conn and re.match(BODY_RE, c.text) and
                    re.match(BODY_RE, c.text).group(1) != uid]
        seen["other"] = proxy.wait_for(other, 30)

    proxy.add_rule(faultproxy.Rule(BODY_RE, at="reply", action=hold))
    errors = []

    def read_one(name):
        try:
            fd = os.open(os.path.join(folder, name), os.O_RDONLY)
            try:
                # One block from the middle, no read-ahead: one FETCH of
                # this message and nothing else.
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_RANDOM)
                assert len(os.pread(fd, 4096, 300_000)) == 4096
            finally:
                os.close(fd)
        except BaseException as e:  # noqa: B902 - reported below
            errors.append(f"{name}: {e!r}")

    threads = [threading.Thread(target=read_one, args=(n,), daemon=True)
               for n in names]
    for t in threads:
        t.start()
    for t in threads:
        t.join(90)
    assert not any(t.is_alive() for t in threads), "reads hang"
    assert not errors, errors
    assert "cmd" in first, "no body FETCH reached the server"
    assert seen.get("other"), \
        f"while the reply to {first['cmd'].text!r} (connection " \
        f"{first['cmd'].conn}) was held, no FETCH of another message was " \
        f"sent on another connection: reads do not run in parallel"
