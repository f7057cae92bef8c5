#!/bin/bash
# Try imapfs against a throwaway local Dovecot filled with sample mail.
#
#   contrib/demo.sh               build, start the server, mount at ./mail and
#                                 stay in the foreground; Ctrl-C unmounts and
#                                 stops the server
#   contrib/demo.sh --background  the same, but return once mounted
#   contrib/demo.sh stop          unmount and stop the server (e.g. from
#                                 another terminal, or after --background)
#
# Paths are relative to the repository root: the mount is ./mail, the state
# (server pid, ports, CA file, password file, temp dir) is ./.demo/state.json.
# Starting again cleans up a previous run (stale mount, old server) first.
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD
MNT=$ROOT/mail
STATE_DIR=$ROOT/.demo
STATE=$STATE_DIR/state.json
PY=/usr/bin/python3
# IMAPFS_BIN: use this binary instead of building build/plain.
BIN=${IMAPFS_BIN:-$ROOT/build/plain/fs/imapfs}

say() { printf 'demo: %s\n' "$*"; }
die() {
	printf 'demo: error: %s\n' "$*" >&2
	exit 1
}

usage() {
	sed -n '2,13s/^# \{0,1\}//p' "$0"
}

# state_get KEY: one field of the state file (empty if absent).
state_get() {
	"$PY" -c 'import json, sys
try:
    v = json.load(open(sys.argv[1])).get(sys.argv[2], "")
except (OSError, ValueError):
    v = ""
print(v)' "$STATE" "$1"
}

is_mounted() { # is_mounted PATH (also true for a dead "not connected" mount)
	# /proc/mounts escapes blanks, tabs, newlines and backslashes as \ooo
	want=$1 awk '{
		m = $2
		gsub(/\\040/, " ", m); gsub(/\\011/, "\t", m)
		gsub(/\\012/, "\n", m); gsub(/\\134/, "\\", m)
		if (m == ENVIRON["want"]) found = 1
	} END { exit !found }' /proc/mounts
}

do_unmount() {
	local i
	for i in 1 2 3 4 5 6 7 8 9 10; do
		is_mounted "$MNT" || return 0
		fusermount3 -u "$MNT" 2>/dev/null && return 0
		[ "$i" -lt 10 ] && sleep 0.5
	done
	say "mount busy, detaching lazily (a shell may still be inside $MNT)"
	fusermount3 -uz "$MNT" 2>/dev/null || umount -l "$MNT" 2>/dev/null || true
}

# Unmount ./mail and stop the server recorded in the state file, if any.
cleanup() {
	local pid root tmpdir p i
	if is_mounted "$MNT"; then
		say "unmounting $MNT"
		do_unmount
	fi
	[ -f "$STATE" ] || return 0
	pid=$(state_get pid)
	root=$(state_get server_root)
	tmpdir=$(state_get tmpdir)
	if [ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ] &&
		tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q demo_server.py; then
		say "stopping the demo server (pid $pid)"
		kill -TERM "$pid" 2>/dev/null || true
		for i in $(seq 1 40); do
			[ -d "/proc/$pid" ] || break
			sleep 0.25
		done
		if [ -d "/proc/$pid" ]; then
			kill -KILL "$pid" 2>/dev/null || true
		fi
	fi
	# If the launcher died without cleaning up (e.g. SIGKILL), its dovecot
	# master is still running from the server root: find it by config path.
	if [ -n "$root" ]; then
		for p in /proc/[0-9]*; do
			case "$(readlink "$p/exe" 2>/dev/null)" in
			*dovecot*) ;;
			*) continue ;;
			esac
			if tr '\0' ' ' <"$p/cmdline" 2>/dev/null | grep -qF "$root/"; then
				say "stopping leftover dovecot (pid ${p#/proc/})"
				kill -TERM "${p#/proc/}" 2>/dev/null || true
			fi
		done
		rm -rf "$root"
	fi
	[ -n "$tmpdir" ] && rm -rf "$tmpdir"
	rm -f "$STATE"
}

start() {
	local background=$1 pid port user cafile pwfile url i
	if [ "$(id -u)" -eq 0 ]; then
		bash "$ROOT/contrib/setup-deps.sh"
	else
		say "not root: skipping contrib/setup-deps.sh (packages must be" \
			"installed; the test Dovecot needs root)"
	fi

	# A previous run may have left a mount or a server behind.
	cleanup

	if [ -z "${IMAPFS_BIN:-}" ]; then
		say "building (build/plain)"
		if [ ! -f "$ROOT/build/plain/build.ninja" ]; then
			meson setup "$ROOT/build/plain" >/dev/null ||
				die "meson setup failed"
		fi
		ninja -C "$ROOT/build/plain" >/dev/null ||
			die "build failed (ninja -C build/plain)"
	fi
	[ -x "$BIN" ] || die "$BIN was not built"

	mkdir -p "$STATE_DIR"
	# From here on, any failure (or Ctrl-C) must not leave things behind.
	trap 'cleanup' EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM

	say "starting a private Dovecot with sample mail (takes a few seconds)"
	# Own session: Ctrl-C in this terminal reaches us, not the server; the
	# EXIT trap then stops it in order (unmount first).
	setsid "$PY" "$ROOT/contrib/demo_server.py" --state "$STATE" \
		>"$STATE_DIR/server.log" 2>&1 </dev/null &
	pid=$!
	for i in $(seq 1 240); do
		[ -f "$STATE" ] && break
		if ! kill -0 "$pid" 2>/dev/null; then
			cat "$STATE_DIR/server.log" >&2
			die "the demo server failed to start (log: .demo/server.log)"
		fi
		sleep 0.25
	done
	[ -f "$STATE" ] || die "the demo server did not become ready in 60 s"

	port=$(state_get imaps_port)
	user=$(state_get user)
	cafile=$(state_get cafile)
	pwfile=$(state_get password_file)
	url="imaps://$user@127.0.0.1:$port"

	mkdir -p "$MNT"
	say "mounting $url at ./mail"
	"$BIN" -o "cafile=$cafile" -o "password_file=$pwfile" \
		-o "spool_dir=$STATE_DIR/spool" "$url" "$MNT" ||
		die "imapfs failed to mount (see the message above)"

	cat <<EOF

imapfs is mounted at $MNT
(the server: $url, user $user, CA $cafile;
 the password is in $pwfile, mode 0600)

Things to try (in $ROOT):
  ls mail
  ls -l mail/INBOX | head
  grep -rl quokka mail | head
  cat mail/INBOX/1.eml | less
  getfattr -d mail/INBOX/1.eml
  find mail -name '*.eml' | wc -l

The mount is read-write; changes go to the demo server:
  cp mail/INBOX/1.eml mail/Archive/copy.eml && cat mail/Archive/copy.eml
  setfattr -n user.imap.flags -v '\\Seen \\Flagged' mail/INBOX/2.eml
  mv mail/INBOX/3.eml mail/Archive/ && ls mail/Archive
  vim mail/INBOX/4.eml          (saving stores a new version, old flags kept)
  mkdir mail/Notes && rm mail/INBOX/5.eml

EOF
	if [ "$background" -eq 1 ]; then
		trap - EXIT INT TERM
		echo "Stop it with: contrib/demo.sh stop"
		return 0
	fi
	echo "Press Ctrl-C here (or run 'contrib/demo.sh stop' elsewhere) to" \
		"unmount and stop the server."
	# Stay until interrupted, or until the mount or the server goes away
	# (e.g. 'demo.sh stop' from another terminal).
	while is_mounted "$MNT" && kill -0 "$pid" 2>/dev/null; do
		sleep 1 &
		wait $! || true
	done
	say "the mount or the server went away; cleaning up"
}

case "${1:-start}" in
start) start 0 ;;
--background | -b | background) start 1 ;;
stop)
	if [ ! -f "$STATE" ] && ! is_mounted "$MNT"; then
		say "nothing to stop"
	fi
	cleanup
	;;
-h | --help | help) usage ;;
*)
	usage >&2
	exit 2
	;;
esac
