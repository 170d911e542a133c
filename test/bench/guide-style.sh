#!/bin/bash
# The first-boot hardening of the public guides (the rc.local scripts of shared/seeds and the
# like), pointed at an image tree instead of the running system, for test/bench/boot-local.mjs.
#
#   bash test/bench/guide-style.sh ROOT
#
# It does what those scripts do and nothing more: no validation, no fsync, no rollback.
# - host keys: delete the baked ones, then `ssh-keygen -A` (which makes the missing default
#   types one after the other; -f ROOT makes it write under ROOT/etc/ssh);
# - passwords: lock root and the default user (the known hash stays behind the "!");
# - sshd: sed on sshd_config only. Note that on the demo image this leaves password logins ON:
#   its sshd_config.d/50-cloud-init.conf is included first and sshd keeps the first value it
#   reads. The benchmark times this script as the guides' baseline; it is not a correct fix.
# `set -eu` is the one departure from the guides: a benchmark must not time a failing run.
set -eu
ROOT=${1:?usage: guide-style.sh ROOT}

rm -f "$ROOT"/etc/ssh/ssh_host_*
ssh-keygen -A -f "$ROOT" >/dev/null

passwd --root "$ROOT" -l root >/dev/null
usermod --root "$ROOT" -L debian

sed -i \
  -e 's/^#\?[[:space:]]*PasswordAuthentication[[:space:]].*/PasswordAuthentication no/' \
  -e 's/^#\?[[:space:]]*PermitRootLogin[[:space:]].*/PermitRootLogin prohibit-password/' \
  "$ROOT/etc/ssh/sshd_config"
