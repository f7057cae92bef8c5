"""The systemd user unit template contrib/imapfs@.service.

It is installed by `meson install`, passes `systemd-analyze verify --user`
(run where the installed imapfs and its man page are found: a private
mount namespace puts the binary on /usr/local/sbin, MANPATH the man page),
and says what the unit must do: report started only once the mount is live
(Type=forking: imapfs returns only after mounting), stop with a clean
unmount, restart on failure.
"""

import configparser
import os
import shutil
import subprocess

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
    assert s["Type"] == "forking", "started must mean mounted"
    assert s["ExecStart"].split()[0] in ("imapfs", "/usr/bin/imapfs",
                                         "/usr/local/bin/imapfs")
    assert s["ExecStart"].split()[1:] == ["%i", "%h/mail/%i"]
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


def test_unit_start_means_mounted(env, installed, tmp_path):  # noqa: F811
    """ExecStartPre/ExecStart/ExecStop as written, for an account from the
    config file: when ExecStart returns the mount is live; ExecStop
    unmounts and the daemon exits; after a crash (daemon killed) a restart
    cleans up the dead mount and mounts again."""
    import testenv
    from test_cli import clean_env, read_one, secret_file, url

    home = tmp_path / "home"
    (home / ".config" / "imapfs").mkdir(parents=True)
    pw = secret_file(tmp_path, env.server.password)
    cfg = home / ".config" / "imapfs" / "config"
    cfg.write_text(f"[account work]\nurl={url(env.server)}\n"
                   f"password_file={pw}\ncafile={env.server.cafile}\n")
    os.chmod(cfg, 0o600)
    e = clean_env(HOME=str(home))
    e.pop("XDG_CONFIG_HOME", None)
    mnt = str(home / "mail" / "work")
    try:
        for attempt in ("start", "restart after crash"):
            run_unit(installed, "ExecStartPre", str(home), e)
            run_unit(installed, "ExecStart", str(home), e)
            assert os.path.ismount(mnt), f"{attempt}: not mounted"
            read_one(env, mnt)
            pid = testenv.daemon_pid(mnt)
            assert pid is not None
            if attempt == "start":
                os.kill(pid, 9)
                testenv.wait_for(lambda: testenv.daemon_pid(mnt) is None,
                                 10, what="daemon death")
        run_unit(installed, "ExecStop", str(home), e)
        assert not os.path.ismount(mnt)
        testenv.wait_for(lambda: testenv.daemon_pid(mnt) is None, 10,
                         what="daemon exit after ExecStop")
    finally:
        testenv.force_unmount(mnt)
