#!/bin/bash
# Install the Debian 12 packages imapfs needs to build, test and demo.
#
# Idempotent: when every package is already installed it does not touch apt at
# all, so it is cheap to call at the start of every check/demo run.  Must run
# as root (it installs packages and may create /dev/fuse).
set -euo pipefail

PACKAGES=(
	build-essential gcc clang clang-format libclang-rt-14-dev
	libfuse3-dev fuse3 libglib2.0-dev libssl-dev
	meson ninja-build pkg-config
	dovecot-imapd debootstrap
	python3 python3-pytest
	openssl attr psmisc procps ca-certificates git strace
	scdoc man-db groff-base
	rsync vim libglib2.0-bin perl inotify-tools
	debhelper dpkg-dev fakeroot lintian
	libsecret-1-dev libsecret-tools gnome-keyring dbus
)

log() { printf 'setup-deps: %s\n' "$*" >&2; }

if [ "$(id -u)" -ne 0 ]; then
	log "error: must run as root (it installs Debian packages with apt-get);"
	log "       re-run as: sudo bash $0"
	exit 1
fi

missing=()
for p in "${PACKAGES[@]}"; do
	# "ii" = wanted install, installed; anything else (absent, half-installed,
	# config-files only) counts as missing.
	st=$(dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null || true)
	case "$st" in
	ii*) ;;
	*) missing+=("$p") ;;
	esac
done

if [ "${#missing[@]}" -gt 0 ]; then
	log "installing: ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	# Keep the package's maintainer scripts from starting the system dovecot
	# (which would grab ports 143/993): policy-rc.d exit 101 = "not allowed".
	policy=/usr/sbin/policy-rc.d
	created_policy=0
	if [ ! -e "$policy" ]; then
		printf '#!/bin/sh\nexit 101\n' >"$policy"
		chmod 755 "$policy"
		created_policy=1
	fi
	rc=0
	{ apt-get update &&
		apt-get install -y --no-install-recommends "${missing[@]}"; } || rc=$?
	if [ "$created_policy" -eq 1 ]; then
		rm -f "$policy"
	fi
	if [ "$rc" -ne 0 ]; then
		log "error: apt-get failed (exit $rc)"
		exit "$rc"
	fi
else
	log "all ${#PACKAGES[@]} packages present"
fi

# The system-wide dovecot is not used: the tests and the demo start private
# instances on free ports.  Make sure a packaged one does not hold ports.
if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
	systemctl disable --now dovecot.service dovecot.socket >/dev/null 2>&1 || true
elif [ -x /etc/init.d/dovecot ]; then
	/etc/init.d/dovecot stop >/dev/null 2>&1 || true
	update-rc.d dovecot disable >/dev/null 2>&1 || true
fi
# A system dovecot runs from /etc/dovecot/dovecot.conf; private ones use their
# own config (-c), so only stop the former.
sys_pids=$(pgrep -f '^/usr/sbin/dovecot( -F)?$' || true)
if [ -n "$sys_pids" ]; then
	log "stopping system dovecot (pid $sys_pids)"
	# shellcheck disable=SC2086 # word splitting of the pid list is intended
	kill $sys_pids 2>/dev/null || true
fi

# FUSE needs the character device; containers sometimes lack the node.
if [ ! -c /dev/fuse ]; then
	modprobe fuse 2>/dev/null || true
	if [ ! -c /dev/fuse ]; then
		mknod -m 0666 /dev/fuse c 10 229 2>/dev/null || true
	fi
	if [ ! -c /dev/fuse ]; then
		log "warning: /dev/fuse is missing and could not be created;"
		log "         mounting (integration tests, demo, benchmark) will fail"
	fi
fi
exit 0
