"""Logging to the systemd journal (GLib structured logging).

When imapfs's stderr is the journal's stream ($JOURNAL_STREAM names that
socket, as systemd sets it for a service), the lines go to the journal's
native socket with PRIORITY= and SYSLOG_IDENTIFIER= fields; without a
journal socket they still reach stderr. No journald runs here: a private
mount namespace puts a socket of the test's own at
/run/systemd/journal/socket (or an empty directory there), so nothing of
the machine's /run is touched. A fake or foreign JOURNAL_STREAM is
covered by the unit test (tests/unit/test_log.c)."""

import os
import shutil
import signal
import socket
import subprocess
import threading

import pytest

import testenv

from test_systemd import NotifySocket

SCRIPT = ('mount -t tmpfs tmpfs /run/systemd && '
          'mkdir /run/systemd/journal && '
          'mount --bind "$JOURNAL_DIR" /run/systemd/journal && exec "$@"')


@pytest.fixture
def runtime():
    d = testenv.short_runtime_dir()
    yield d
    shutil.rmtree(d, ignore_errors=True)


def _fields(datagram):
    """The KEY=VALUE lines of a native journal datagram (one-line values,
    which is what imapfs sends)."""
    out = {}
    for line in datagram.split(b"\n"):
        k, sep, v = line.partition(b"=")
        if sep:
            out[k.decode()] = v.decode(errors="replace")
    return out


@pytest.mark.parametrize("journal", ["present", "absent"])
def test_journal_stream(env, runtime, tmp_path, journal):
    for tool in ("unshare", "mount"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed")
    jdir = os.path.join(runtime, "journal")
    os.mkdir(jdir)
    jsock = None
    if journal == "present":
        jsock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        jsock.bind(os.path.join(jdir, "socket"))
    entries = []

    def drain():
        # Read as it comes: a full socket buffer blocks the sender, as
        # a slow journald would.
        while True:
            data = jsock.recv(65536)
            if data == b"":
                return
            entries.append(_fields(data))
    notify = NotifySocket(runtime)
    err_ours, err_theirs = socket.socketpair()
    st = os.fstat(err_theirs.fileno())
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    argv, pwfile = testenv._imapfs_argv(env.bin, env.server, str(mnt), False,
                                        ["-f", "-d", "-o", "ro"], True)
    e = dict(os.environ, JOURNAL_STREAM=f"{st.st_dev}:{st.st_ino}",
             JOURNAL_DIR=jdir, NOTIFY_SOCKET=notify.path)
    # The mount lives in the private namespace too: it ends with the
    # daemon (SIGTERM unmounts), nothing to clean up outside.
    p = subprocess.Popen(["unshare", "--mount", "--propagation", "private",
                          "sh", "-c", SCRIPT, "sh"] + argv, env=e,
                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=err_theirs.fileno())
    err_theirs.close()
    stderr = []
    reader = threading.Thread(
        target=lambda: stderr.extend(iter(lambda: err_ours.recv(65536), b"")),
        daemon=True)
    reader.start()
    if jsock is not None:
        jreader = threading.Thread(target=drain, daemon=True)
        jreader.start()
    try:
        notify.wait("READY", 60)
        os.kill(int(notify.got[-1]["MAINPID"]), signal.SIGTERM)
        p.wait(30)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait(10)
        os.unlink(pwfile)
        notify.close()
    reader.join(10)
    err_ours.close()
    stderr = b"".join(stderr).decode(errors="replace")
    if jsock is not None:
        # The daemon has exited: whatever it sent is queued; an empty
        # datagram ends the reader.
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
            s.sendto(b"", os.path.join(jdir, "socket"))
        jreader.join(10)
        jsock.close()
    if journal == "present":
        assert entries, f"nothing in the journal; stderr: {stderr[-500:]}"
        assert all(x.get("SYSLOG_IDENTIFIER") == "imapfs" for x in entries)
        trace = [x for x in entries if x.get("PRIORITY") == "7"]
        text = "\n".join(x["MESSAGE"] for x in trace)
        assert "C: " in text and "LOGIN" in text, text[:500]
        assert "<redacted>" in text
        assert env.server.password not in "\n".join(
            "\n".join(x.values()) for x in entries)
        # Not both: the journal has it, the stream does not.
        assert "imapfs: debug:" not in stderr, stderr[-500:]
    else:
        # No journal socket: the stream (the journal's, in real life)
        # still carries every line.
        assert "imapfs: debug: C: " in stderr and "LOGIN" in stderr, \
            stderr[-500:]
        assert "<redacted>" in stderr
        assert env.server.password not in stderr
