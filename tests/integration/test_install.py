"""`meson install` installs what a user runs: the binary and imapfs(1).

The build directory is installed with `meson install --destdir` into a
temporary directory (never into the machine).  The man page must render
with man(1) and groff without a single warning, and name every option that
fs/options.c parses and every FUSE/mount option fs/mountopts.c accepts.
"""

import os
import re
import shutil
import subprocess

import pytest

ROOT = os.environ.get("IMAPFS_SOURCE_ROOT") or os.path.abspath(
    os.path.join(os.path.dirname(__file__), "..", ".."))


def build_root():
    b = os.environ.get("IMAPFS_BUILD_ROOT")
    if b:
        return b
    binary = os.environ.get("IMAPFS_BIN")
    if not binary:
        pytest.fail("IMAPFS_BUILD_ROOT (or IMAPFS_BIN) is not set")
    # IMAPFS_BIN is BUILD/fs/imapfs
    return os.path.dirname(os.path.dirname(os.path.abspath(binary)))


def find_installed(destdir, tail):
    """Paths below destdir ending in `tail` (e.g. "bin/imapfs")."""
    out = []
    for dirpath, _, files in os.walk(destdir):
        for f in files:
            p = os.path.join(dirpath, f)
            if p.endswith("/" + tail):
                out.append(p)
    return out


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """destdir after `meson install`; the prefix inside is meson's."""
    dest = str(tmp_path_factory.mktemp("destdir"))
    r = subprocess.run(["meson", "install", "-C", build_root(),
                        "--no-rebuild", "--destdir", dest],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       text=True, timeout=300)
    assert r.returncode == 0, f"meson install failed:\n{r.stdout}"
    return dest


def manpage_built():
    if shutil.which("scdoc") is None:
        pytest.skip("scdoc is not installed (the man page is optional "
                    "then); apt-get install scdoc")


def installed_manpage(installed):
    manpage_built()
    pages = find_installed(installed, "man1/imapfs.1")
    assert len(pages) == 1, f"imapfs.1 not installed below {installed}: " \
        f"{pages}"
    return pages[0]


def rendered(page, width=80):
    """The man page as man(1) shows it, hyphenation at line ends undone."""
    env = dict(os.environ, MANWIDTH=str(width), MAN_KEEP_FORMATTING="",
               LC_ALL="C.UTF-8")
    r = subprocess.run(["man", "--warnings", "-l", page], env=env,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       text=True, timeout=60)
    return r


def dehyphenate(text):
    # man breaks long words as "fs\u2010\n       name="; join them again
    return re.sub(r"[\u2010-]\n\s+", "", text)


def test_binary_installed(installed):
    bins = find_installed(installed, "bin/imapfs")
    assert len(bins) == 1, f"no bin/imapfs below {installed}"
    assert os.access(bins[0], os.X_OK)
    r = subprocess.run([bins[0], "--version"], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, text=True, timeout=30)
    assert r.returncode == 0 and r.stdout.startswith("imapfs "), r


def test_manpage_renders_without_warnings(installed):
    if shutil.which("man") is None or shutil.which("groff") is None:
        pytest.skip("man or groff is not installed")
    page = installed_manpage(installed)
    r = rendered(page)
    assert r.returncode == 0, r.stderr
    assert r.stderr == "", f"man --warnings complained:\n{r.stderr}"
    for heading in ("NAME", "SYNOPSIS", "DESCRIPTION", "OPTIONS", "URL",
                    "PASSWORD", "SEMANTICS", "EXAMPLES"):
        assert re.search(rf"^{heading}$", r.stdout, re.M), heading
    g = subprocess.run(["groff", "-ww", "-man", "-Tutf8", "-z", page],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       text=True, timeout=60)
    assert g.returncode == 0 and g.stderr == "", g.stderr


_OPTION = re.compile(r"(-[A-Za-z]|--[a-z][a-z-]*|"
                     r"[a-z_][a-z0-9_.]*(=(%s|%u|%d|%lu)?)?)")


def option_names(path):
    """Every option name a C source matches on: the string literals that
    look like an option ("-f", "--help", "ro", "cafile=%s", "timeout="),
    without the value format.  Comments and #include lines are ignored."""
    with open(path, encoding="utf-8") as f:
        src = f.read()
    src = re.sub(r"/\*.*?\*/", "", src, flags=re.S)
    src = re.sub(r"^#include.*$", "", src, flags=re.M)
    names = set()
    for lit in re.findall(r'"((?:[^"\\]|\\.)*)"', src):
        if _OPTION.fullmatch(lit) and not lit.endswith("_"):  # a prefix
            names.add(re.sub(r"=.*$", "=", lit))
    return names


def documented(text, name):
    if name.endswith("="):
        return re.search(rf"(?<![\w-]){re.escape(name)}", text) is not None
    return re.search(rf"(?<![\w-]){re.escape(name)}(?![\w=-])",
                     text) is not None or \
        re.search(rf"(?<![\w-]){re.escape(name)}=", text) is not None


def test_every_option_is_documented(installed):
    page = installed_manpage(installed)
    text = dehyphenate(rendered(page, width=200).stdout)
    sources = [os.path.join(ROOT, "fs", f)
               for f in ("options.c", "mountopts.c", "accounts.c")]
    names = set()
    for s in sources:
        if os.path.exists(s):
            names |= option_names(s)
    names |= {"status", "refresh", "SIGHUP"}  # commands of fs/main.c
    # what options.c knows must have been found, or the parser is broken
    assert {"password_command=", "cafile=", "connections=", "-f", "ro",
            "--help"} <= names, names
    missing = sorted(n for n in names if not documented(text, n))
    assert not missing, f"options not documented in imapfs(1): {missing}"
