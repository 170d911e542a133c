#!/usr/bin/env bash
# Build (once) and cache a minimal Debian root filesystem tarball that tests and
# benchmarks unpack into a scratch directory: the release matrix is Debian 11
# (bullseye: OpenSSH 8.4, systemd 247), 12 (bookworm: OpenSSH 9.2, systemd 252)
# and 13 (trixie: OpenSSH 10.0, systemd 257).
#
# Usage:   test/support/debian-rootfs.sh [bullseye|bookworm|trixie]   (default bookworm)
# Output:  stdout gets exactly one line, the tarball's absolute path; progress
#          goes to stderr. Exit 0 on success; 3 when this machine cannot build
#          (not root, or mmdebstrap not installed) and nothing is cached;
#          anything else is a failed build.
#
# Cache:   $IMPRINT_ROOTFS_CACHE (default /var/cache/imprint-test), outside the
#          repo. The file is debian<N>-<hash>.tar (N = 11, 12, 13) where <hash> is a
#          short sha256 of the recipe: suite, mirrors, package list, every mmdebstrap option
#          and hook below, and RECIPE_VERSION. Change any of them and a new
#          tarball is built; old ones are left alone (delete them by hand).
#          A cache hit costs one stat and one sha256 of a few KiB (well < 1 s).
#
# Needs (on a fresh Debian 12):  apt-get install mmdebstrap
#          - run as root (mmdebstrap's "root" mode; no uidmap/fakechroot needed)
#          - with its default Recommends: mount (for /proc,/sys,/dev in the chroot)
#            and gpg; plus debian-archive-keyring (priority important, present on
#            every Debian install) to verify the mirror's signatures.
#          - coreutils (sha256sum, mktemp), util-linux (flock): always present.
#          Network: only the Debian mirror(s) below, fetched by apt.
#
# Env overrides (all part of the hash):
#   IMPRINT_DEBIAN_MIRROR           default: the first URI of this machine's apt sources
#   IMPRINT_DEBIAN_SECURITY_MIRROR  default: its URI that ends in -security
#   (read from /etc/apt/sources.list.d/debian.sources or /etc/apt/sources.list, so the
#   image comes from the same mirror this machine's apt already uses)
#
# What the image looks like (a typical *unsealed* cloud image, on purpose):
#   - root password "imagepass"; user "debian" (uid 1000, groups sudo), password
#     "imagepass"; both hashed with SHA512 ($6$) via chpasswd -c SHA512
#   - baked SSH host keys (rsa, ecdsa, ed25519) from openssh-server's postinst,
#     verified below
#   - /etc/machine-id = IMAGE_MACHINE_ID (fixed, non-empty), and
#     /var/lib/dbus/machine-id a symlink to it
#   - dpkg/apt logs kept (mmdebstrap's cleanup/reproducible step is skipped,
#     since that step would also empty /etc/machine-id)
#   - hostname "debian"; the host's /etc/resolv.conf is not carried over
#   - no man pages, info, translations or docs (dpkg path-exclude, kept in
#     /etc/dpkg/dpkg.cfg.d/99mmdebstrap as in debian:*-slim images)
set -euo pipefail

readonly RECIPE_VERSION=1
readonly SUITE=${1:-bookworm}
case "$SUITE" in
  bullseye) release=11 ;;
  bookworm) release=12 ;;
  trixie) release=13 ;;
  *) printf 'debian-rootfs: unknown suite "%s" (bullseye, bookworm, trixie)\n' "$SUITE" >&2; exit 2 ;;
esac
readonly VARIANT=minbase
readonly PACKAGES=(systemd systemd-sysv openssh-server sudo passwd iproute2 dbus)
readonly IMAGE_PASSWORD=imagepass
readonly IMAGE_USER=debian
readonly IMAGE_MACHINE_ID=5e1f0c0ffee0b4ed1d0000000000d12a

apt_uris() {
  { grep -hE '^URIs:' /etc/apt/sources.list.d/*.sources 2>/dev/null | sed -E 's/^URIs:[[:space:]]*//' | tr ' ' '\n'
    grep -hE '^deb[[:space:]]' /etc/apt/sources.list 2>/dev/null | sed -E 's/^deb[[:space:]]+(\[[^]]*\][[:space:]]+)?([^[:space:]]+).*/\2/'
  } | grep -E '^https?://' || true
}
mirror=${IMPRINT_DEBIAN_MIRROR:-$(apt_uris | grep -v -- '-security' | head -n 1)}
security_mirror=${IMPRINT_DEBIAN_SECURITY_MIRROR:-$(apt_uris | grep -- '-security' | head -n 1)}
if [ -z "$mirror" ] || [ -z "$security_mirror" ]; then
  echo "debian-rootfs: cannot find the Debian mirror in this machine's apt sources; set IMPRINT_DEBIAN_MIRROR and IMPRINT_DEBIAN_SECURITY_MIRROR" >&2
  exit 3
fi
cache_dir=${IMPRINT_ROOTFS_CACHE:-/var/cache/imprint-test}

log() { printf 'debian-rootfs: %s\n' "$*" >&2; }

pkgs_csv=$(IFS=,; printf '%s' "${PACKAGES[*]}")

# Everything that determines the tree. Hooks run as `sh -c HOOK exec ROOTDIR`.
recipe=(
  --mode=root
  --format=tar
  --variant="$VARIANT"
  --architectures="$(dpkg --print-architecture)"
  --include="$pkgs_csv"
  # The mirror may be a frozen snapshot whose Release files are past Valid-Until.
  --aptopt='Acquire::Check-Valid-Until "false"'
  --skip=cleanup/reproducible
  # Slim like the debian:*-slim container images: no man pages, docs (except
  # copyright) or translations. ~60 MiB less to unpack per test.
  --dpkgopt='path-exclude=/usr/share/man/*'
  --dpkgopt='path-exclude=/usr/share/info/*'
  --dpkgopt='path-exclude=/usr/share/locale/*'
  --dpkgopt='path-include=/usr/share/locale/locale.alias'
  --dpkgopt='path-exclude=/usr/share/doc/*'
  --dpkgopt='path-include=/usr/share/doc/*/copyright'
  --dpkgopt='path-exclude=/usr/share/lintian/*'
  # Identity: hostname and hosts, no host resolv.conf.
  --customize-hook='echo debian > "$1/etc/hostname"'
  --customize-hook='printf "127.0.0.1\tlocalhost\n127.0.1.1\tdebian\n::1\tlocalhost ip6-localhost ip6-loopback\n" > "$1/etc/hosts"'
  --customize-hook='rm -f "$1/etc/resolv.conf" && : > "$1/etc/resolv.conf"'
  # Accounts: known passwords, default user in group sudo.
  --customize-hook="chroot \"\$1\" useradd --create-home --shell /bin/bash --uid 1000 --user-group --groups sudo --comment Debian $IMAGE_USER"
  --customize-hook="printf '%s\\n' 'root:$IMAGE_PASSWORD' '$IMAGE_USER:$IMAGE_PASSWORD' | chroot \"\$1\" chpasswd -c SHA512"
  # Baked machine-id (an unsealed image carries its builder's id).
  --customize-hook="printf '%s\\n' $IMAGE_MACHINE_ID > \"\$1/etc/machine-id\" && mkdir -p \"\$1/var/lib/dbus\" && ln -sfn /etc/machine-id \"\$1/var/lib/dbus/machine-id\""
  # Verify: host keys from openssh-server's postinst, sshd, hashes, machine-id.
  --customize-hook='set -e
    for t in rsa ecdsa ed25519; do
      test -s "$1/etc/ssh/ssh_host_${t}_key" || { echo "missing ssh_host_${t}_key" >&2; exit 1; }
      test -s "$1/etc/ssh/ssh_host_${t}_key.pub" || { echo "missing ssh_host_${t}_key.pub" >&2; exit 1; }
    done
    test -x "$1/usr/sbin/sshd"
    grep -q "^root:\$6\\$" "$1/etc/shadow" || { echo "root hash is not SHA512" >&2; exit 1; }
    grep -q "^debian:\$6\\$" "$1/etc/shadow" || { echo "debian hash is not SHA512" >&2; exit 1; }
    chroot "$1" id -nG debian | grep -qw sudo
    grep -Eqx "[0-9a-f]{32}" "$1/etc/machine-id"'
  "$SUITE"
)
sources=(
  "deb $mirror $SUITE main"
  "deb $mirror $SUITE-updates main"
  "deb $security_mirror $SUITE-security main"
)

hash=$(printf '%s\0' "recipe-version=$RECIPE_VERSION" "${recipe[@]}" "${sources[@]}" \
  | sha256sum | cut -c1-12)
tarball="$cache_dir/debian$release-$hash.tar"

if [[ -s "$tarball" ]]; then
  printf '%s\n' "$tarball"
  exit 0
fi

if [[ $(id -u) -ne 0 ]]; then
  log "must run as root to build $tarball (mmdebstrap --mode=root)"
  exit 3
fi
if ! command -v mmdebstrap >/dev/null 2>&1; then
  log "mmdebstrap is not installed (apt-get install mmdebstrap)"
  exit 3
fi

mkdir -p "$cache_dir"

# One builder at a time; whoever waited finds the finished file.
exec 9>"$cache_dir/.debian$release.lock"
flock 9
if [[ -s "$tarball" ]]; then
  printf '%s\n' "$tarball"
  exit 0
fi

tmp=$(mktemp "$cache_dir/.debian$release-$hash.XXXXXX.tar")
trap 'rm -f "$tmp"' EXIT

log "building $tarball (suite $SUITE, packages: $pkgs_csv)"
start=$SECONDS
# mmdebstrap's own stdout must not reach ours: only the path goes there.
mmdebstrap "${recipe[@]}" "$tmp" "${sources[@]}" >&2
chmod 0644 "$tmp"
sync -- "$tmp" 2>/dev/null || true
mv -f -- "$tmp" "$tarball"
trap - EXIT
log "built in $((SECONDS - start)) s: $tarball ($(du -h "$tarball" | cut -f1))"

printf '%s\n' "$tarball"
