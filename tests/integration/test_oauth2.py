"""OAuth2 logins (-o oauth2_token_command) against a real Dovecot.

Dovecot's oauth2 passdb asks a token-introspection endpoint whether a token
is active; the fixture serves that endpoint itself (http.server on
127.0.0.1, in a thread): a token is active for alice while it is in the
endpoint's current set.  The token command is a shell script that prints
"<prefix>-N" with N counting its runs in a file, so a test can tell which
token each login used and how often the command ran.
"""

import base64
import http.server
import json
import os
import secrets
import subprocess
import sys
import threading
import urllib.parse

import pytest

_ROOT = os.environ.get("IMAPFS_SOURCE_ROOT") or os.path.abspath(
    os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(_ROOT, "tests", "support"))

import testenv  # noqa: E402
from test_resilience import imap_pids, kill_sessions  # noqa: E402

OP_BOUND_S = 90
MAX_BODY = 64 * 1024


class Introspection:
    """A token-introspection endpoint (RFC 7662 style, as Dovecot's
    introspection_mode = post asks it: a form field "token")."""

    def __init__(self, user):
        self.user = user
        self.valid = set()       # protected by self.lock
        self.asked = []          # tokens asked about, in order
        self.lock = threading.Lock()
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            timeout = 10

            def do_POST(self):
                n = min(int(self.headers.get("Content-Length") or 0),
                        MAX_BODY)
                form = urllib.parse.parse_qs(
                    self.rfile.read(n).decode("ascii", "replace"))
                token = (form.get("token") or [""])[0]
                with outer.lock:
                    outer.asked.append(token)
                    active = token in outer.valid
                body = json.dumps({"active": True, "username": outer.user}
                                  if active else {"active": False}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0),
                                                     Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}" \
            "/introspect"
        self.thread = threading.Thread(target=self.httpd.serve_forever,
                                       kwargs={"poll_interval": 0.1},
                                       daemon=True)

    def start(self):
        self.thread.start()

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(10)

    def set_valid(self, tokens):
        with self.lock:
            self.valid = set(tokens)

    def asked_about(self):
        with self.lock:
            return list(self.asked)


def _server(work, name, mechanisms, without_caps=()):
    intro = Introspection("alice")
    intro.start()
    srv = testenv.DovecotServer(os.path.join(work, name),
                                oauth2_introspection_url=intro.url,
                                oauth2_mechanisms=mechanisms,
                                without_caps=without_caps)
    try:
        srv.start()
        srv.append_many("INBOX", [(m, "", None) for m in
                                  testenv.sample_messages(4, seed=77)])
    except BaseException:
        srv.stop()
        intro.stop()
        raise
    return srv, intro


@pytest.fixture(scope="module")
def oauth(imapfs_bin, tmp_path_factory):
    """(DovecotServer offering XOAUTH2 and OAUTHBEARER, Introspection)."""
    srv, intro = _server(str(tmp_path_factory.mktemp("oauth2")), "dovecot",
                         ("xoauth2", "oauthbearer"))
    try:
        yield srv, intro
    finally:
        srv.stop()
        intro.stop()


class TokenCommand:
    """A token helper: prints <prefix>-N on its Nth run."""

    def __init__(self, directory):
        self.prefix = "tok" + secrets.token_hex(12)
        self.counter = os.path.join(directory, "counter")
        self.script = os.path.join(directory, "token.sh")
        with open(self.script, "w") as f:
            f.write(f"""#!/bin/sh
n=$(cat '{self.counter}' 2>/dev/null || echo 0)
n=$((n + 1))
echo "$n" > '{self.counter}'
echo "{self.prefix}-$n"
""")
        os.chmod(self.script, 0o700)
        self.option = f"oauth2_token_command=sh {self.script}"

    def token(self, n):
        return f"{self.prefix}-{n}"

    def runs(self):
        try:
            with open(self.counter) as f:
                return int(f.read())
        except FileNotFoundError:
            return 0


@pytest.fixture
def mounts(imapfs_bin, tmp_path):
    """mount(server, options) -> CompletedProcess; the mount point is
    tmp_path/mnt, unmounted at teardown whatever happened."""
    mnt = str(tmp_path / "mnt")
    os.mkdir(mnt)

    def do_mount(server, options):
        return testenv.mount_imapfs(imapfs_bin, server, mnt,
                                    options=options, password_file=False)
    do_mount.mnt = mnt
    do_mount.bin = imapfs_bin
    yield do_mount
    testenv.unmount(mnt)
    if testenv.daemon_pid(mnt) is not None:
        testenv.force_unmount(mnt)


def read_first(server, mnt):
    """Reads the first INBOX message through the mount and compares it with
    the server's bytes."""
    c = server.client()
    try:
        c.select("INBOX", readonly=True)
        typ, data = c.uid("SEARCH", "ALL")
        uids = [int(x) for x in data[0].split()]
        typ, data = c.uid("FETCH", str(uids[0]), "(BODY.PEEK[])")
        want = next(x[1] for x in data if isinstance(x, tuple))
    finally:
        c.logout()

    def read():
        with open(os.path.join(mnt, "INBOX", f"{uids[0]}.eml"), "rb") as f:
            return f.read()
    data, exc, _ = testenv.run_bounded(mnt, read, OP_BOUND_S)
    assert exc is None, repr(exc)
    assert data == want


def secret_forms(user, token):
    """The token and the initial responses that carry it, as they could
    leak."""
    forms = {token}
    for raw in (f"n,a={user},\x01auth=Bearer {token}\x01\x01",
                f"user={user}\x01auth=Bearer {token}\x01\x01"):
        b = base64.b64encode(raw.encode()).decode()
        forms.update({b, b.rstrip("=")})
    return forms


def test_valid_token_mounts_and_reads(oauth, mounts, tmp_path):
    srv, intro = oauth
    cmd = TokenCommand(str(tmp_path))
    intro.set_valid({cmd.token(1)})
    r = mounts(srv, ["-o", cmd.option, "-o", "connections=1",
                     "-o", "watch=0"])
    assert r.returncode == 0, r.stderr + srv.log_tail()
    read_first(srv, mounts.mnt)
    assert cmd.runs() == 1
    assert cmd.token(1) in intro.asked_about()
    pid = testenv.daemon_pid(mounts.mnt)
    assert pid is not None
    with open(f"/proc/{pid}/cmdline", "rb") as f:
        cmdline = f.read().decode("utf-8", "replace")
    for form in secret_forms(srv.user, cmd.token(1)):
        assert form not in cmdline


def test_unknown_token_refused_with_server_text(oauth, mounts, tmp_path):
    """Both tokens (the first and the one asked for after the refusal) are
    unknown: the mount fails with the server's words, nothing mounted."""
    srv, intro = oauth
    cmd = TokenCommand(str(tmp_path))
    intro.set_valid(set())
    r = mounts(srv, ["-o", cmd.option])
    assert r.returncode != 0
    assert not testenv._is_mounted(mounts.mnt)
    assert "authentication failed for alice" in r.stderr, r.stderr
    # Dovecot's tagged NO text and its OAUTHBEARER error status.
    assert "AUTHENTICATIONFAILED" in r.stderr, r.stderr
    assert "invalid_token" in r.stderr, r.stderr
    assert cmd.runs() == 2, "the command was not run again after a refusal"
    for form in secret_forms(srv.user, cmd.token(1)) | \
            secret_forms(srv.user, cmd.token(2)):
        assert form not in r.stderr


def test_expired_token_replaced_at_login(oauth, mounts, tmp_path):
    """The first token is refused (expired); the command's second one is
    accepted on the same login."""
    srv, intro = oauth
    cmd = TokenCommand(str(tmp_path))
    intro.set_valid({cmd.token(2)})
    r = mounts(srv, ["-o", cmd.option, "-o", "connections=1",
                     "-o", "watch=0"])
    assert r.returncode == 0, r.stderr + srv.log_tail()
    assert cmd.runs() == 2
    assert intro.asked_about()[-2:] == [cmd.token(1), cmd.token(2)]
    read_first(srv, mounts.mnt)


def test_refresh_on_reconnect_and_trace(oauth, imapfs_bin, tmp_path):
    """After mount the first token stops being valid and the server ends
    imapfs's sessions; the read still works because the new connection ran
    the command again. The -d trace shows the AUTHENTICATE commands but
    never a token."""
    srv, intro = oauth
    cmd = TokenCommand(str(tmp_path))
    intro.set_valid({cmd.token(1)})
    mnt = str(tmp_path / "mnt")
    os.mkdir(mnt)
    trace = str(tmp_path / "trace")
    proc = testenv.mount_traced(imapfs_bin, srv, mnt, trace,
                                ["-o", cmd.option, "-o", "connections=1",
                                 "-o", "timeout=10",
                                 # the script counts the pool's logins;
                                 # the live view's own are not counted
                                 "-o", "watch=0"], password_file=False)
    try:
        assert cmd.runs() == 1
        intro.set_valid({cmd.token(2)})
        killed = kill_sessions(srv, "kick")
        read_first(srv, mnt)
        assert cmd.runs() == 2
        assert cmd.token(2) in intro.asked_about()
        now = imap_pids(srv)
        assert now and not (set(now) & set(killed))
    finally:
        testenv.stop_traced(mnt, proc)
    with open(trace, errors="replace") as f:
        text = f.read()
    # SASL-IR: the initial response in the command, redacted.
    assert text.count("AUTHENTICATE OAUTHBEARER <redacted>") == 2, \
        text[-3000:]
    for n in (1, 2):
        for form in secret_forms(srv.user, cmd.token(n)):
            assert form not in text, "a token is in the -d trace"


def test_xoauth2_when_oauthbearer_is_not_offered(imapfs_bin, tmp_path):
    """A server with XOAUTH2 only and without SASL-IR: logins use XOAUTH2,
    the token sent after the first continuation; a refused token is
    reported with the server's text after its error challenge."""
    srv, intro = _server(str(tmp_path), "dovecot-x", ("xoauth2",),
                         without_caps=("SASL-IR",))
    mnt = str(tmp_path / "mnt")
    os.mkdir(mnt)
    try:
        caps = srv.capabilities(login=False)
        assert "AUTH=XOAUTH2" in caps and "AUTH=OAUTHBEARER" not in caps
        assert "SASL-IR" not in caps, caps
        cmd = TokenCommand(str(tmp_path))
        r = testenv.mount_imapfs(imapfs_bin, srv, mnt,
                                 options=["-o", cmd.option],
                                 password_file=False)
        assert r.returncode != 0
        assert "authentication failed for alice" in r.stderr, r.stderr
        assert "AUTHENTICATIONFAILED" in r.stderr, r.stderr
        assert cmd.runs() == 2
        intro.set_valid({cmd.token(3)})
        trace = str(tmp_path / "trace")
        proc = testenv.mount_traced(imapfs_bin, srv, mnt, trace,
                                    ["-o", cmd.option, "-o",
                                     "connections=1", "-o", "watch=0"],
                                    password_file=False)
        try:
            read_first(srv, mnt)
        finally:
            testenv.stop_traced(mnt, proc)
        with open(trace, errors="replace") as f:
            text = f.read()
        auth = [ln for ln in text.splitlines() if "AUTHENTICATE" in ln]
        # No SASL-IR: the command alone, the token after the "+".
        assert auth and auth[0].endswith(" AUTHENTICATE XOAUTH2"), auth
        assert "C: <redacted SASL response>" in text
        assert "AUTHENTICATE OAUTHBEARER" not in text
        assert cmd.token(3) not in text
    finally:
        testenv.unmount(mnt)
        if testenv.daemon_pid(mnt) is not None:
            testenv.force_unmount(mnt)
        srv.stop()
        intro.stop()


def test_token_command_failure_is_reported(oauth, mounts):
    srv, _ = oauth
    r = mounts(srv, ["-o", "oauth2_token_command=exit 3"])
    assert r.returncode != 0
    assert not testenv._is_mounted(mounts.mnt)
    assert "oauth2_token_command failed (exit status 3)" in r.stderr, \
        r.stderr


def test_token_command_excludes_password_options(oauth, mounts, tmp_path):
    """Both a token command and a password source on one command line is
    a mistake: refused before anything runs."""
    srv, _ = oauth
    cmd = TokenCommand(str(tmp_path))
    r = testenv.mount_imapfs(mounts.bin, srv, mounts.mnt,
                             options=["-o", cmd.option])  # + password_file
    assert r.returncode != 0
    assert "drop -o password_file" in r.stderr, r.stderr
    assert cmd.runs() == 0
    assert not testenv._is_mounted(mounts.mnt)


def test_config_file_account(oauth, imapfs_bin, tmp_path):
    """oauth2_token_command as a key of a config-file account.  Without
    the live view (watch=0), whose own connection would run the command
    too: the count below is the pool's one login."""
    srv, intro = oauth
    cmd = TokenCommand(str(tmp_path))
    intro.set_valid({cmd.token(1)})
    xdg = tmp_path / "xdg"
    (xdg / "imapfs").mkdir(parents=True)
    conf = xdg / "imapfs" / "config"
    conf.write_text(f"""[account tokens]
url=imaps://{srv.user}@{srv.host}:{srv.imaps_port}
oauth2_token_command=sh {cmd.script}
cafile={srv.cafile}
options=connections=1,watch=0
""")
    conf.chmod(0o600)
    mnt = str(tmp_path / "mnt")
    os.mkdir(mnt)
    env = dict(os.environ, XDG_CONFIG_HOME=str(xdg))
    env.pop("IMAPFS_PASSWORD", None)
    try:
        r = subprocess.run([imapfs_bin, "tokens", mnt], env=env,
                           stdin=subprocess.DEVNULL, capture_output=True,
                           text=True, timeout=60)
        assert r.returncode == 0, r.stderr
        read_first(srv, mnt)
        assert cmd.runs() == 1
    finally:
        testenv.unmount(mnt)
        if testenv.daemon_pid(mnt) is not None:
            testenv.force_unmount(mnt)


def test_example_token_helper(oauth, imapfs_bin, mounts, tmp_path):
    """contrib/oauth2-token-example.sh, as the README shows it: the token
    from a file only the user may read; a file others may read is
    refused."""
    srv, intro = oauth
    helper = os.path.join(_ROOT, "contrib", "oauth2-token-example.sh")
    token = "tok" + secrets.token_hex(16)
    token_file = tmp_path / "token"
    token_file.write_text(token + "\n")
    token_file.chmod(0o644)
    intro.set_valid({token})
    option = f"oauth2_token_command={helper} alice"
    env = {"IMAPFS_TOKEN_FILE": str(token_file)}
    r = testenv.mount_imapfs(imapfs_bin, srv, mounts.mnt,
                             options=["-o", option], env=env,
                             password_file=False)
    assert r.returncode != 0
    assert "readable by others" in r.stderr  # the helper's own stderr
    assert "oauth2_token_command failed (exit status 1)" in r.stderr, \
        r.stderr
    token_file.chmod(0o600)
    r = testenv.mount_imapfs(imapfs_bin, srv, mounts.mnt,
                             options=["-o", option], env=env,
                             password_file=False)
    assert r.returncode == 0, r.stderr
    read_first(srv, mounts.mnt)
    assert token in intro.asked_about()
