#!/bin/bash
# The public guides' whole first-boot rc.local (the AWS "shared AMI" snippet and the hardening
# guides built on it), pointed at an image tree and a metadata URL instead of the running system
# and 169.254.169.254, for test/bench/boot-full.mjs:
#
#   bash test/bench/guide-style-full.sh ROOT URL
#
# URL is the loopback `imprint emulate` the benchmark started (never the real metadata address).
# It does what those scripts do and nothing more: no validation of the key, no retry or
# deadline, no fsync, no rollback.
# - host keys: delete the baked ones, then `ssh-keygen -A` (the missing default types, one after
#   the other; -f ROOT makes it write under ROOT/etc/ssh);
# - launch key: an IMDSv2 token with curl, then public-keys/0/openssh-key appended (>>) to the
#   default user's authorized_keys, with the guides' mkdir/chmod/chown. Only key 0, and every
#   rebundle appends again: launch keys pile up;
# - passwords: lock root and the default user with usermod -L (same as passwd -l; the known hash
#   stays behind the "!");
# - sshd: sed on sshd_config only. On the demo image this leaves password logins ON: its
#   sshd_config.d/50-cloud-init.conf is included first and sshd keeps the first value it reads.
# `set -eu` and curl's -f are the departures from the guides: a benchmark must not time a
# failing run.
set -eu
ROOT=${1:?usage: guide-style-full.sh ROOT URL}
URL=${2:?usage: guide-style-full.sh ROOT URL}
USER_NAME=debian

rm -f "$ROOT"/etc/ssh/ssh_host_*
ssh-keygen -A -f "$ROOT" >/dev/null

# The user's home and ids from the tree's passwd (a bash loop: the live-system guides would just
# say ~debian and chown debian:).
while IFS=: read -r name _ uid gid _ home _; do
  if [ "$name" = "$USER_NAME" ]; then USER_UID=$uid USER_GID=$gid USER_HOME=$home; fi
done <"$ROOT/etc/passwd"
SSH_DIR="$ROOT${USER_HOME:?no $USER_NAME in $ROOT/etc/passwd}/.ssh"

TOKEN=$(curl -sf -X PUT -H 'X-aws-ec2-metadata-token-ttl-seconds: 21600' "$URL/latest/api/token")
mkdir -p "$SSH_DIR"
chmod 700 "$SSH_DIR"
curl -sf -H "X-aws-ec2-metadata-token: $TOKEN" "$URL/latest/meta-data/public-keys/0/openssh-key" >>"$SSH_DIR/authorized_keys"
chmod 600 "$SSH_DIR/authorized_keys"
chown -R "$USER_UID:$USER_GID" "$SSH_DIR"

usermod --root "$ROOT" -L root
usermod --root "$ROOT" -L "$USER_NAME"

sed -i \
  -e 's/^#\?[[:space:]]*PasswordAuthentication[[:space:]].*/PasswordAuthentication no/' \
  -e 's/^#\?[[:space:]]*PermitRootLogin[[:space:]].*/PermitRootLogin prohibit-password/' \
  "$ROOT/etc/ssh/sshd_config"
