#!/bin/bash
# The floor of test/bench/notify-boot.mjs (issue 12): the least a first boot must do before
# READY=1, on an image tree, with nothing checked, for comparison with `imprint boot`:
#
#   bash test/bench/floor-boot.sh ROOT URL TYPES      (TYPES: ed25519,ecdsa or ed25519,ecdsa,rsa)
#
# URL is the loopback `imprint emulate` the benchmark started (never the real metadata address).
# - launch key: fetched with curl (IMDSv2 token, then key 0) from the start, in parallel with
#   everything else, written to ~debian/.ssh/authorized_keys (uid/gid 1000, as in the demo image);
# - host keys: ssh-keygen ed25519 and ecdsa 256 in parallel (rsa 3072 only after READY);
# - one `sshd -T` on the tree's sshd_config with the new ed25519 key (read-only; sshd follows the
#   config's absolute Include, i.e. this machine's /etc/ssh/sshd_config.d, which it only reads);
# - passwords: root and debian locked by editing the tree's shadow lines in place ("!" in front),
#   what one `chpasswd -e` would leave; `chpasswd -R` is not used because it chroots into the tree
#   and could load the tree's NSS modules as root;
# - READY=1 with systemd-notify (NOTIFY_SOCKET comes from the benchmark's runner).
set -eu
ROOT=${1:?usage: floor-boot.sh ROOT URL TYPES}
URL=${2:?usage: floor-boot.sh ROOT URL TYPES}
TYPES=${3:?usage: floor-boot.sh ROOT URL TYPES}
SSH_DIR="$ROOT/home/debian/.ssh"

(
  TOKEN=$(curl -sf -X PUT -H 'X-aws-ec2-metadata-token-ttl-seconds: 21600' "$URL/latest/api/token")
  mkdir -p -m 700 "$SSH_DIR"
  curl -sf -H "X-aws-ec2-metadata-token: $TOKEN" -o "$SSH_DIR/.authorized_keys.new" "$URL/latest/meta-data/public-keys/0/openssh-key"
  chmod 600 "$SSH_DIR/.authorized_keys.new"
  chown -R 1000:1000 "$SSH_DIR"
  mv "$SSH_DIR/.authorized_keys.new" "$SSH_DIR/authorized_keys"
) &
KEY_PID=$!

rm -f "$ROOT"/etc/ssh/ssh_host_*
ssh-keygen -q -t ed25519 -N '' -C root@floor -f "$ROOT/etc/ssh/ssh_host_ed25519_key" &
E=$!
ssh-keygen -q -t ecdsa -b 256 -N '' -C root@floor -f "$ROOT/etc/ssh/ssh_host_ecdsa_key" &
wait $E $!

sshd -T -f "$ROOT/etc/ssh/sshd_config" -h "$ROOT/etc/ssh/ssh_host_ed25519_key" >/dev/null

awk -F: -v OFS=: '($1 == "root" || $1 == "debian") && $2 !~ /^!/ { $2 = "!" $2 } { print }' \
  "$ROOT/etc/shadow" >"$ROOT/etc/shadow.floor-new"
chmod --reference="$ROOT/etc/shadow" "$ROOT/etc/shadow.floor-new"
mv "$ROOT/etc/shadow.floor-new" "$ROOT/etc/shadow"

systemd-notify READY=1

case ",$TYPES," in
  *,rsa,*) ssh-keygen -q -t rsa -b 3072 -N '' -C root@floor -f "$ROOT/etc/ssh/ssh_host_rsa_key" ;;
esac
wait $KEY_PID
