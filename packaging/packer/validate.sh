#!/usr/bin/env bash
# Validate imprint.pkr.hcl with whatever Packer is installed (Debian 12: apt-get install packer,
# which is 1.6.6). Offline: no cloud credentials, no downloads.
set -euo pipefail
cd "$(dirname "$0")"
deb=$(mktemp --suffix=.deb)
trap 'rm -f "$deb" "${compat:-}"' EXIT
packer version
for f in imprint.pkr.hcl plugins.pkr.hcl; do packer fmt -check -diff "$f"; done
packer validate -syntax-only imprint.pkr.hcl
vars=(-var "deb=$deb" -var qemu_image_checksum=none)
if packer version | grep -qE 'Packer v1\.[0-6]\.'; then
  # Packer < 1.7 has its builders built in, without three arguments the current plugins have
  # (amazon: metadata_options, imds_support; qemu: cd_content) and without required_plugins.
  # Validate everything else in full on a copy without them.
  compat=$(mktemp --suffix=.pkr.hcl)
  python3 - imprint.pkr.hcl "$compat" <<'PY'
import re, sys
s = open(sys.argv[1]).read()
s = re.sub(r'  # IMDSv2 only.*?\n  imds_support = "v2.0"\n', '', s, flags=re.S)
s = re.sub(r'  # The base image.s cloud-init reads this NoCloud seed.*?    EOT\n  }\n', '', s, flags=re.S)
assert 'metadata_options' not in s and 'cd_content' not in s and 'imds_support' not in s
open(sys.argv[2], 'w').write(s)
PY
  packer validate "${vars[@]}" "$compat"
  echo "validated in full except metadata_options, imds_support, cd_content (need Packer >= 1.7 plugins)"
else
  packer init .
  packer validate "${vars[@]}" .
fi
