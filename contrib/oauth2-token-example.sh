#!/bin/sh
# oauth2-token-example.sh - an example token helper for imapfs's
# -o oauth2_token_command: it prints one OAuth2 access token on its first
# line and exits 0, or exits non-zero (imapfs then reports the failure).
#
#   imapfs -o oauth2_token_command='oauth2-token-example.sh alice@example.org' \
#       imaps://alice%40example.org@imap.example.org ~/mail
#
# imapfs runs the command with /bin/sh, stdin /dev/null, in "/" and with a
# 30 second limit, for every new connection and once more when the server
# refuses a token (it may have expired): so print a token that is valid
# now. This example does not refresh tokens itself; it reads one that
# another program keeps current (a cron job or an OAuth2 client such as
# oama, mutt_oauth2.py or your provider's CLI), from, in order:
#
#   1. $IMAPFS_TOKEN_FILE, or ~/.config/imapfs/token-ACCOUNT: the first
#      line (the file must be readable by you only);
#   2. the desktop keyring: secret-tool lookup service imapfs-oauth2
#      account ACCOUNT  (store it with: secret-tool store --label=imapfs
#      service imapfs-oauth2 account ACCOUNT).
#
# The token is a secret: it goes to stdout only, never to argv or a log.
set -eu

account=${1:-default}
file=${IMAPFS_TOKEN_FILE:-"${XDG_CONFIG_HOME:-$HOME/.config}/imapfs/token-$account"}

if [ -f "$file" ]; then
	# Refuse a token file others may read, as imapfs does for ~/.netrc.
	if [ -n "$(find "$file" -perm /077 2>/dev/null)" ]; then
		echo "oauth2-token-example: $file is readable by others: chmod 600 $file" >&2
		exit 1
	fi
	head -n 1 "$file"
	exit 0
fi
if command -v secret-tool >/dev/null 2>&1; then
	exec secret-tool lookup service imapfs-oauth2 account "$account"
fi
echo "oauth2-token-example: no token: write one to $file or store it with secret-tool" >&2
exit 1
