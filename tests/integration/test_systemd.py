"""The systemd user unit template contrib/imapfs@.service.

It is installed by `meson install`, passes `systemd-analyze verify --user`
(run where the installed imapfs and its man page are found: a private
mount namespace puts the binary on /usr/local/sbin, MANPATH the man page),
and says what the unit must do: report started only once the mount is live
(Type=notify: imapfs -f sends READY=1 on $NOTIFY_SOCKET only after the
first login and the mount), stop with a clean unmount (STOPPING=1),
restart on failure.
"""

import configparser
import os
import shutil
import socket
import subprocess
import time

import pytest

import testenv

from test_install import find_installed, installed  # noqa: F401

ROOT = os.environ.get("IMAPFS_SOURCE_ROOT") or os.path.abspath(
    os.path.join(os.path.dirname(__file__), "..", ".."))
UNIT = os.path.join(ROOT, "contrib", "imapfs@.service")


def unit_file(installed):  # noqa: F811
    units = find_installed(installed, "systemd/user/imapfs@.service")
    assert len(units) == 1, f"imapfs@.service not installed: {units}"
    with open(units[0]) as f, open(UNIT) as g:
        assert f.read() == g.read()
    return units[0]


def parse(path):
    p = configparser.ConfigParser(strict=False, interpolation=None,
                                  delimiters=("=",))
    p.optionxform = str
    with open(path) as f:
        p.read_string(f.read())
    return p


def test_unit_semantics(installed):  # noqa: F811
    u = parse(unit_file(installed))
    s = u["Service"]
    assert s["Type"] == "notify", "started must mean mounted"
    assert s["NotifyAccess"] == "main"
    assert s["ExecStart"].split()[0] in ("imapfs", "/usr/bin/imapfs",
                                         "/usr/local/bin/imapfs")
    assert s["ExecStart"].split()[1:] == ["-f", "%i", "%h/mail/%i"]
    assert s["ExecStop"].split()[:2] == ["fusermount3", "-u"]
    assert s["ExecStop"].split()[-1] == "%h/mail/%i"
    assert s["Restart"] == "on-failure"
    assert u["Install"]["WantedBy"] == "default.target"


@pytest.fixture
def short_runtime():
    d = testenv.short_runtime_dir()
    yield d
    shutil.rmtree(d, ignore_errors=True)


def test_systemd_analyze_verify(installed, tmp_path,  # noqa: F811
                                short_runtime):
    for tool in ("systemd-analyze", "unshare"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed")
    unit = unit_file(installed)
    bins = find_installed(installed, "bin/imapfs")
    mans = find_installed(installed, "man1/imapfs.1")
    assert len(bins) == 1, bins
    units = tmp_path / "units"
    units.mkdir()
    shutil.copy(unit, units / "imapfs@.service")
    runtime = short_runtime
    env = dict(os.environ, XDG_RUNTIME_DIR=str(runtime),
               BIN_DIR=os.path.dirname(bins[0]))
    if mans:
        env["MANPATH"] = os.path.dirname(os.path.dirname(mans[0]))
    script = ('mount --bind "$BIN_DIR" /usr/local/sbin && '
              'exec systemd-analyze verify --user "$UNIT_PATH"')
    env["UNIT_PATH"] = str(units / "imapfs@work.service")
    r = subprocess.run(["unshare", "--mount", "--propagation", "private",
                        "sh", "-c", script], cwd=str(units), env=env,
                       stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, text=True, timeout=120)
    # without scdoc there is no man page; then only that complaint is ok
    out = "\n".join(ln for ln in r.stdout.splitlines()
                    if mans or "man imapfs(1)" not in ln)
    assert r.returncode == 0 or (not mans and out == ""), r.stdout
    assert out == "", f"systemd-analyze verify:\n{r.stdout}"


def unit_commands(installed, key, home, instance):  # noqa: F811
    """The unit's command lines for `key` as systemd would run them for
    instance `instance` with home `home`: [(ignore_failure, argv)], the
    program "imapfs" being the installed one."""
    bins = find_installed(installed, "bin/imapfs")
    assert len(bins) == 1, bins
    cmds = []
    with open(unit_file(installed)) as f:
        for line in f:
            k, sep, v = line.strip().partition("=")
            if not sep or k != key:
                continue
            ignore = v.startswith("-")
            argv = v.lstrip("-").replace("%h", home).replace(
                "%i", instance).split()
            if argv[0] == "imapfs":
                argv[0] = bins[0]
            cmds.append((ignore, argv))
    assert cmds, f"no {key}= in the unit"
    return cmds


def run_unit(installed, key, home, env_vars):  # noqa: F811
    for ignore, argv in unit_commands(installed, key, home, "work"):
        r = subprocess.run(argv, env=env_vars, stdin=subprocess.DEVNULL,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           text=True, timeout=120)
        assert ignore or r.returncode == 0, f"{argv}: {r.stderr}"


class NotifySocket:
    """The socket systemd listens on for a Type=notify service
    ($NOTIFY_SOCKET): a datagram socket below a short private directory.
    messages() are the datagrams received, each a dict of its lines."""

    def __init__(self, directory):
        self.path = os.path.join(directory, "notify")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.got = []

    def wait(self, key, timeout, on_each=None):
        """The first datagram holding `key`=..., received within
        `timeout` s; on_each(fields) is called for every datagram as it
        arrives (to look at the mount at that moment)."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no {key}= in {self.got}")
            self.sock.settimeout(left)
            data = self.sock.recv(4096).decode()
            fields = dict(ln.split("=", 1) for ln in data.split("\n")
                          if "=" in ln)
            if on_each is not None:
                fields["_seen"] = on_each(fields)
            self.got.append(fields)
            if key in fields:
                return fields

    def close(self):
        self.sock.close()


@pytest.fixture
def notify_socket(short_runtime):
    n = NotifySocket(short_runtime)
    yield n
    n.close()


def mounted_and_listing(mnt):
    """Whether the mount answers now (in /proc/mounts and lists INBOX)."""
    if not os.path.ismount(mnt):
        return False
    try:
        return len(os.listdir(os.path.join(mnt, "INBOX"))) > 0
    except OSError:
        return False


def start_unit(installed, home, e, notify):  # noqa: F811
    """ExecStartPre, then ExecStart as systemd runs it (in the background,
    $NOTIFY_SOCKET set), until READY=1; returns the process."""
    run_unit(installed, "ExecStartPre", home, e)
    [(_, argv)] = unit_commands(installed, "ExecStart", home, "work")
    p = subprocess.Popen(argv, env=dict(e, NOTIFY_SOCKET=notify.path),
                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE)
    mnt = argv[-1]
    try:
        ready = notify.wait("READY", 60, lambda f: "READY" in f and
                            mounted_and_listing(mnt))
    except TimeoutError:
        p.kill()
        raise AssertionError(f"no READY=1: {p.communicate()[1]!r}")
    assert ready["READY"] == "1"
    assert ready["_seen"], "READY=1 came before the mount answered"
    assert ready["MAINPID"] == str(p.pid)
    assert mnt in ready["STATUS"]
    assert any("STATUS" in f and "READY" not in f for f in notify.got), \
        notify.got
    return p


def test_unit_start_means_mounted(env, installed, tmp_path,  # noqa: F811
                                  notify_socket):
    """ExecStartPre/ExecStart/ExecStop as written, for an account from the
    config file, with $NOTIFY_SOCKET as systemd sets it: READY=1 arrives
    only once the mount answers (ls works), STOPPING=1 at ExecStop, and
    the daemon exits; after a crash (daemon killed) a restart cleans up
    the dead mount and mounts again. NOTIFY_SOCKET is not passed on to the
    password command."""
    import testenv
    from test_cli import clean_env, read_one, url

    home = tmp_path / "home"
    (home / ".config" / "imapfs").mkdir(parents=True)
    seen = tmp_path / "pwcmd-env"
    pwcmd = tmp_path / "pwcmd"
    pwcmd.write_text(f"#!/bin/sh\nprintenv NOTIFY_SOCKET > {seen}\n"
                     f"echo '{env.server.password}'\n")
    os.chmod(pwcmd, 0o700)
    cfg = home / ".config" / "imapfs" / "config"
    cfg.write_text(f"[account work]\nurl={url(env.server)}\n"
                   f"password_command={pwcmd}\n"
                   f"cafile={env.server.cafile}\n")
    os.chmod(cfg, 0o600)
    e = clean_env(HOME=str(home))
    e.pop("XDG_CONFIG_HOME", None)
    e.pop("NOTIFY_SOCKET", None)
    mnt = str(home / "mail" / "work")
    procs = []
    try:
        for attempt in ("start", "restart after crash"):
            p = start_unit(installed, str(home), e, notify_socket)
            procs.append(p)
            read_one(env, mnt)
            assert seen.read_text() == "", "NOTIFY_SOCKET leaked"
            if attempt == "start":
                p.kill()
                p.wait(10)
        assert "STOPPING" not in notify_socket.got[-1]
        run_unit(installed, "ExecStop", str(home), e)
        assert not os.path.ismount(mnt)
        stopping = notify_socket.wait("STOPPING", 10)
        assert stopping["STOPPING"] == "1"
        assert p.wait(10) == 0, p.stderr.read()
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait(10)
            p.stderr.close()
        testenv.force_unmount(mnt)
