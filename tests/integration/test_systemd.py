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


def test_systemd_analyze_verify(installed, tmp_path):  # noqa: F811
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
    runtime = tmp_path / "runtime"
    runtime.mkdir(mode=0o700)
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
