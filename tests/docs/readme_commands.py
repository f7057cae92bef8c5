#!/usr/bin/python3
"""The commands README.md tells a user to type run as written.

Every command line in README.md (fenced code blocks, "$ " prompts
stripped, and inline `code` spans) whose program is a path inside the
checkout (contrib/demo.sh, tests/bench/run.sh, ...) must name a file that
is tracked by git with mode 100755 (what a fresh clone gets), is executable
here, and -- when the script handles --help -- answers `SCRIPT --help`
with exit status 0 and some text, run exactly as a user would (a relative
path from the top of the checkout, no "bash" in front).  The quick start
must contain at least one such command, so a README rewrite that the
parser no longer understands fails instead of passing with nothing
checked.

    tests/docs/readme_commands.py [SOURCE_ROOT]

Exit status 0 when all hold, 1 with one line per problem otherwise, 77
(skip) when SOURCE_ROOT is not a git checkout or git is missing.
"""

import os
import re
import shlex
import shutil
import subprocess
import sys

# A program named by a relative path inside the checkout: "a/b", "a/b/c.sh".
_SCRIPT = re.compile(r"^[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)+$")
# What a program's name may end in; "docs/SEMANTICS.md" is not one.
_PROGRAM_EXTS = ("", ".sh", ".py", ".pl")
_ASSIGN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")


def command_lines(text):
    """[(section heading, command line)] from code blocks and spans."""
    out = []
    section = ""
    in_block = False
    for line in text.splitlines():
        if line.lstrip().startswith("```"):
            in_block = not in_block
            continue
        if in_block:
            cmd = line.strip()
            if cmd.startswith("$ "):
                cmd = cmd[2:]
            out.append((section, cmd))
            continue
        if line.startswith("#"):
            section = line.lstrip("#").strip()
        for span in re.findall(r"`([^`]+)`", line):
            out.append((section, span.strip()))
    return out


def program_of(cmd):
    """The relative script path a command line runs, or None."""
    try:
        words = shlex.split(cmd, comments=True)
    except ValueError:
        words = cmd.split()
    while words and _ASSIGN.match(words[0]):
        words.pop(0)
    if words and words[0] in ("sudo", "exec"):
        words.pop(0)
    if not words:
        return None
    prog = words[0][2:] if words[0].startswith("./") else words[0]
    if not _SCRIPT.match(prog):
        return None  # a plain program name, or ./DIR
    if prog.startswith("build/"):
        return None  # a build product, not part of the checkout
    ext = os.path.splitext(prog)[1]
    if ext not in _PROGRAM_EXTS:
        return None  # a document named in text: docs/X.md, contrib/x.conf
    return prog


def git_modes(root):
    r = subprocess.run(["git", "-C", root, "ls-files", "-s"],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       text=True, check=False)
    if r.returncode != 0:
        return None
    modes = {}
    for line in r.stdout.splitlines():
        meta, _, path = line.partition("\t")
        modes[path] = meta.split()[0]
    return modes


def check(root):
    with open(os.path.join(root, "README.md"), encoding="utf-8") as f:
        lines = command_lines(f.read())
    modes = git_modes(root)
    if modes is None:
        print(f"SKIP: {root} is not a git checkout")
        return 77
    problems = []
    scripts = {}
    for section, cmd in lines:
        prog = program_of(cmd)
        if prog is not None:
            scripts.setdefault(prog, []).append(section)
    quick = [p for p, secs in scripts.items()
             if any(s.lower().startswith("quick start") for s in secs)]
    if not quick:
        problems.append("README.md: no command found in the Quick start "
                        "section (parser and README disagree)")
    for prog in sorted(scripts):
        before = len(problems)
        path = os.path.join(root, prog)
        mode = modes.get(prog)
        if not os.path.isfile(path):
            problems.append(f"{prog}: named in README.md but missing")
            continue
        if mode is None:
            problems.append(f"{prog}: not tracked by git (a fresh clone "
                            f"would not have it)")
        elif mode != "100755":
            problems.append(f"{prog}: git mode {mode}, not 100755: a fresh "
                            f"clone says 'Permission denied' (git "
                            f"update-index --chmod=+x {prog})")
        if not os.access(path, os.X_OK):
            problems.append(f"{prog}: not executable in this checkout")
        if len(problems) > before:
            continue
        with open(path, encoding="utf-8", errors="replace") as f:
            text = f.read()
        if not re.search(r"(^|[\s|(])--help\b", text):
            print(f"ok   {prog} (mode {mode}; no --help to run)")
            continue
        try:
            r = subprocess.run(["./" + prog, "--help"], cwd=root,
                               stdin=subprocess.DEVNULL,
                               stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True,
                               timeout=60, check=False)
        except OSError as e:
            problems.append(f"{prog} --help: {e}")
            continue
        except subprocess.TimeoutExpired:
            problems.append(f"{prog} --help: still running after 60 s")
            continue
        if r.returncode != 0 or not r.stdout.strip():
            problems.append(f"{prog} --help: exit {r.returncode}, output "
                            f"{r.stdout.strip()[:200]!r}")
            continue
        print(f"ok   {prog} (mode {mode}; --help answers)")
    for p in problems:
        print(f"FAIL {p}")
    return 1 if problems else 0


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else os.path.abspath(
        os.path.join(os.path.dirname(__file__), "..", ".."))
    if shutil.which("git") is None:
        print("SKIP: git is not installed")
        return 77
    return check(root)


if __name__ == "__main__":
    sys.exit(main())
