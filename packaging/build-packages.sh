#!/usr/bin/env bash
# Build the imprint .deb and .rpm from one executable.
#
# Usage: packaging/build-packages.sh [options] BINARY VERSION
#   BINARY   the executable that becomes /usr/bin/imprint: dist/imprint-linux-x64 (npm run
#            build:binary), or any stand-in executable for tests
#   VERSION  e.g. 0.1.0 (npm's package.json version); "-" becomes "~" (0.2.0-rc.1 sorts
#            before 0.2.0 in both dpkg and rpm)
# Options:
#   --formats deb,rpm  which packages (default: both)
#   --out DIR          where they go (default: dist/ in the repository)
#   --arch ARCH        amd64 or arm64 (default: from the ELF header; amd64 for a script)
#   --lintian          run lintian on the .deb afterwards (fails on errors and warnings)
#   --fast             gzip -1 instead of xz -6 (which takes ~80 s on the ~120 MB binary here): for
#                      tests and local iterations, not for releases
#
# Output: dist/imprint_<ver>_<arch>.deb and dist/imprint-<ver>-1.<rpmarch>.rpm; their paths
# are printed on stdout, one a line. Needs dpkg-deb (dpkg), gzip; for the rpm, rpmbuild
# (Debian: apt-get install rpm); readelf (binutils) for the library dependencies of an ELF
# binary (packaging/elf-depends.sh). Reproducible: every timestamp is SOURCE_DATE_EPOCH (default: the last git
# commit's time).
#
# Environment: IMPRINT_MAINTAINER ("Name <email>") for the package metadata;
# IMPRINT_SHLIBS_DEPENDS to give the library dependencies instead of reading them from the binary
# (e.g. "libc6 (>= 2.28), libgcc-s1 (>= 3.4), libstdc++6 (>= 5.2)").
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)

die() { printf 'build-packages: %s\n' "$*" >&2; exit 2; }
log() { printf 'build-packages: %s\n' "$*" >&2; }

formats=deb,rpm
out=$repo/dist
arch=
run_lintian=0
compress=(-Zxz -z6)
rpm_payload=w6.xzdio
args=()
while [ $# -gt 0 ]; do
  case "$1" in
    --formats) formats=${2:?--formats needs a value}; shift 2 ;;
    --formats=*) formats=${1#*=}; shift ;;
    --out) out=${2:?--out needs a directory}; shift 2 ;;
    --out=*) out=${1#*=}; shift ;;
    --arch) arch=${2:?--arch needs a value}; shift 2 ;;
    --arch=*) arch=${1#*=}; shift ;;
    --lintian) run_lintian=1; shift ;;
    --fast) compress=(-Zgzip -z1); rpm_payload=w1.gzdio; shift ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'; exit 0 ;;
    --) shift; args+=("$@"); break ;;
    -*) die "unknown option $1 (see --help)" ;;
    *) args+=("$1"); shift ;;
  esac
done
[ ${#args[@]} -eq 2 ] || die "usage: $0 [--formats deb,rpm] [--out DIR] [--arch ARCH] [--lintian] BINARY VERSION"
binary=${args[0]}
version=${args[1]}
[ -f "$binary" ] && [ -x "$binary" ] || die "$binary: not an executable file (build it with npm run build:binary)"
[[ $version =~ ^[0-9][0-9A-Za-z.+~-]*$ ]] || die "version \"$version\" must start with a digit and use only [0-9A-Za-z.+~-]"
version=${version//-/\~}

want_deb=0; want_rpm=0
IFS=, read -r -a fmt_list <<< "$formats"
for f in "${fmt_list[@]}"; do
  case "$f" in deb) want_deb=1 ;; rpm) want_rpm=1 ;; *) die "unknown format \"$f\" (deb, rpm)" ;; esac
done

# Architecture from the ELF header (e_machine, little endian at offset 18).
elf=0
if [ "$(head -c 4 "$binary" | od -An -c | tr -d ' ')" = "177ELF" ]; then
  elf=1
  machine=$(od -An -t u2 -j 18 -N 2 "$binary" | tr -d ' ')
  case "$machine" in
    62) elf_arch=amd64 ;;
    183) elf_arch=arm64 ;;
    *) die "$binary: ELF machine $machine is neither x86-64 nor aarch64" ;;
  esac
  [ -z "$arch" ] || [ "$arch" = "$elf_arch" ] || die "$binary is $elf_arch, not $arch"
  arch=$elf_arch
fi
arch=${arch:-amd64}
case "$arch" in
  amd64) rpm_arch=x86_64 ;;
  arm64) rpm_arch=aarch64 ;;
  *) die "unknown architecture $arch (amd64, arm64)" ;;
esac

maintainer=${IMPRINT_MAINTAINER:-imprint maintainers <imprint-maintainers@example.org>}
if [ -z "${SOURCE_DATE_EPOCH:-}" ]; then
  SOURCE_DATE_EPOCH=$(git -C "$repo" log -1 --format=%ct 2>/dev/null || true)
  SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(stat -c %Y "$repo/package.json")}
fi
export SOURCE_DATE_EPOCH
export TZ=UTC LC_ALL=C
# A value for the replacement side of sed s/// (the maintainer may hold / or &).
sed_value() { printf '%s' "$1" | sed -e 's/[\/&|]/\\&/g'; }
maintainer_sed=$(sed_value "$maintainer")

work=$(mktemp -d "${TMPDIR:-/tmp}/imprint-pkg.XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir -p "$out"
out=$(cd "$out" && pwd)

# --- Files both packages ship -------------------------------------------------------------
common=$work/common
mkdir -p "$common"
install -m 0755 "$binary" "$common/imprint"
install -m 0644 "$repo/units/imprint.service" "$common/imprint.service"
install -m 0644 "$repo/units/90-imprint.preset" "$common/90-imprint.preset"
install -m 0755 "$repo/units/imprint-generator" "$common/imprint-generator"
install -m 0644 "$repo/units/sshd-keygen@.service.d/imprint.conf" "$common/sshd-keygen-imprint.conf"
install -m 0644 "$repo/units/sshd-keygen.service.d/imprint.conf" "$common/sshd-keygen-debian-imprint.conf"
install -m 0644 "$repo/units/sshd@.service.d/imprint.conf" "$common/sshd-per-connection-imprint.conf"
install -m 0644 "$repo/packaging/imprint.yaml.example" "$common/imprint.yaml"
install -m 0644 "$here/deb/copyright" "$common/copyright"
# The JSON Schemas of imprint's machine outputs (boot report, audit report, config file).
schemas=(boot-report.schema.json status.schema.json config.schema.json audit-report.schema.json)
for s in "${schemas[@]}"; do install -m 0644 "$repo/packaging/schema/$s" "$common/$s"; done
man_date=$(date -u -d "@$SOURCE_DATE_EPOCH" +%Y-%m-%d)
sed -e "s/@VERSION@/$version/g" -e "s/@DATE@/$man_date/g" "$repo/packaging/man/imprint.8" > "$common/imprint.8"
gzip -9n < "$common/imprint.8" > "$common/imprint.8.gz"
# The Node.js runtime's license texts, when the npm package the binary came from is here.
node_pkg=node-linux-$([ "$arch" = amd64 ] && echo x64 || echo arm64)
node_license=$(find "$repo/node_modules/$node_pkg" -maxdepth 3 -name LICENSE -type f 2>/dev/null | LC_ALL=C sort | head -n 1 || true)

# The per-connection sshd templates that get an After=imprint.service drop-in
# (units/sshd@.service.d/imprint.conf says why each).
readonly SSHD_TEMPLATES="sshd@ ssh@ sshd-generated@ sshd-unix-local@ sshd-unix-export@ sshd-vsock@ sshd-extra@"

# Gives every file of a staged tree the reproducible mtime.
stamp_tree() { find "$1" -exec touch --no-dereference -d "@$SOURCE_DATE_EPOCH" {} +; }

# --- .deb ---------------------------------------------------------------------------------
build_deb() {
  command -v dpkg-deb >/dev/null || die "dpkg-deb not found (apt-get install dpkg)"
  local root=$work/deb
  local doc=$root/usr/share/doc/imprint
  install -d -m 0755 "$root/DEBIAN" "$root/usr/bin" "$root/lib/systemd/system" "$root/lib/systemd/system-preset" \
    "$root/lib/systemd/system/sshd-keygen@.service.d" \
    "$root/etc/imprint" "$root/usr/share/man/man8" "$doc" "$root/usr/share/lintian/overrides" "$root/usr/share/imprint/schema"
  install -m 0755 "$common/imprint" "$root/usr/bin/imprint"
  install -m 0644 "$common/imprint.service" "$root/lib/systemd/system/imprint.service"
  install -m 0644 "$common/90-imprint.preset" "$root/lib/systemd/system-preset/90-imprint.preset"
  install -D -m 0755 "$common/imprint-generator" "$root/lib/systemd/system-generators/imprint-generator"
  install -m 0644 "$common/sshd-keygen-imprint.conf" "$root/lib/systemd/system/sshd-keygen@.service.d/imprint.conf"
  install -D -m 0644 "$common/sshd-keygen-debian-imprint.conf" "$root/lib/systemd/system/sshd-keygen.service.d/imprint.conf"
  local t
  for t in $SSHD_TEMPLATES; do
    install -D -m 0644 "$common/sshd-per-connection-imprint.conf" "$root/lib/systemd/system/$t.service.d/imprint.conf"
  done
  install -m 0644 "$common/imprint.yaml" "$root/etc/imprint/imprint.yaml"
  install -m 0644 "$common/imprint.8.gz" "$root/usr/share/man/man8/imprint.8.gz"
  install -m 0644 "$common/copyright" "$doc/copyright"
  for s in "${schemas[@]}"; do install -m 0644 "$common/$s" "$root/usr/share/imprint/schema/$s"; done
  [ -z "$node_license" ] || install -m 0644 "$node_license" "$doc/LICENSE.nodejs"
  install -m 0644 "$here/deb/lintian-overrides" "$root/usr/share/lintian/overrides/imprint"
  {
    printf 'imprint (%s) unstable; urgency=medium\n\n' "$version"
    printf '  * Release %s of imprint, built from its repository; the changes are in its\n' "$version"
    printf '    history.\n\n'
    printf ' -- %s  %s\n' "$maintainer" "$(date -u -R -d "@$SOURCE_DATE_EPOCH")"
  } | gzip -9n > "$doc/changelog.gz"
  chmod 0644 "$doc/changelog.gz"

  local depends="openssh-client, passwd, mount"
  if [ "$elf" = 1 ]; then
    local shlibs=${IMPRINT_SHLIBS_DEPENDS:-}
    if [ -z "$shlibs" ]; then
      # From the binary's own version needs, not the build host's symbols files (see
      # elf-depends.sh): the package installs wherever the binary runs (Debian 11 and later).
      shlibs=$(bash "$here/elf-depends.sh" "$common/imprint") || die "cannot compute the library dependencies of $binary; set IMPRINT_SHLIBS_DEPENDS"
      log "library dependencies (from the ELF version needs): $shlibs"
    fi
    depends="$shlibs, $depends"
  fi

  install -m 0755 "$here/deb/postinst" "$here/deb/prerm" "$here/deb/postrm" "$root/DEBIAN/"
  printf '/etc/imprint/imprint.yaml\n' > "$root/DEBIAN/conffiles"
  local size
  size=$(du -s -k --apparent-size --exclude=DEBIAN "$root" | cut -f1)
  sed -e "s/@VERSION@/$version/" -e "s/@ARCH@/$arch/" -e "s/@MAINTAINER@/$maintainer_sed/" \
    -e "s/@INSTALLED_SIZE@/$size/" -e "s/@DEPENDS@/$depends/" "$here/deb/control.in" > "$root/DEBIAN/control"
  (cd "$root" && find . -path ./DEBIAN -prune -o -type f -printf '%P\n' | LC_ALL=C sort | xargs -d '\n' md5sum) > "$root/DEBIAN/md5sums"
  chmod 0644 "$root/DEBIAN/control" "$root/DEBIAN/conffiles" "$root/DEBIAN/md5sums"
  stamp_tree "$root"
  local deb=$out/imprint_${version}_${arch}.deb
  dpkg-deb --root-owner-group "${compress[@]}" --build "$root" "$deb" >/dev/null
  printf '%s\n' "$deb"
  if [ "$run_lintian" = 1 ]; then
    command -v lintian >/dev/null || die "lintian not found (apt-get install lintian)"
    log "lintian $deb"
    lintian --fail-on error,warning --display-info --pedantic --show-overrides "$deb" >&2
  fi
}

# --- .rpm ---------------------------------------------------------------------------------
build_rpm() {
  command -v rpmbuild >/dev/null || die "rpmbuild not found (Debian: apt-get install rpm)"
  local top=$work/rpm
  mkdir -p "$top/BUILD" "$top/RPMS" "$top/SOURCES" "$top/SPECS" "$top/SRPMS" "$top/tmp"
  cp "$common"/imprint "$common"/imprint.service "$common"/90-imprint.preset "$common"/sshd-keygen-imprint.conf \
    "$common"/sshd-keygen-debian-imprint.conf "$common"/sshd-per-connection-imprint.conf "$common"/imprint-generator "$common"/imprint.yaml \
    "$common"/imprint.8.gz "$common"/copyright "$top/SOURCES/"
  for s in "${schemas[@]}"; do cp "$common/$s" "$top/SOURCES/"; done
  [ -z "$node_license" ] || cp "$node_license" "$top/SOURCES/LICENSE.nodejs"
  stamp_tree "$top/SOURCES"
  local changelog_date
  changelog_date=$(date -u -d "@$SOURCE_DATE_EPOCH" '+%a %b %d %Y')
  sed -e "s/@CHANGELOG_DATE@/$changelog_date/" -e "s/@MAINTAINER@/$maintainer_sed/" "$here/rpm/imprint.spec" > "$top/SPECS/imprint.spec"
  # HOME: Debian's rpm reads ~/.rpmmacros; this build must not depend on the caller's.
  HOME=$top rpmbuild --quiet -bb \
    --target "$rpm_arch-linux" \
    --define "_topdir $top" \
    --define "_tmppath $top/tmp" \
    --define "imprint_version $version" \
    --define "imprint_sshd_templates $SSHD_TEMPLATES" \
    --define "imprint_sources $top/SOURCES" \
    --define "imprint_node_license $([ -n "$node_license" ] && echo 1 || echo 0)" \
    --define "_buildhost reproducible" \
    --define "use_source_date_epoch_as_buildtime 1" \
    --define "clamp_mtime_to_source_date_epoch 1" \
    --define "_rpmdir $top/RPMS" \
    --define "_binary_payload $rpm_payload" \
    "$top/SPECS/imprint.spec" >&2
  local built=$top/RPMS/$rpm_arch/imprint-$version-1.$rpm_arch.rpm
  [ -f "$built" ] || die "rpmbuild made no $built"
  local rpm=$out/imprint-$version-1.$rpm_arch.rpm
  cp "$built" "$rpm"
  printf '%s\n' "$rpm"
}

[ "$want_deb" = 0 ] || build_deb
[ "$want_rpm" = 0 ] || build_rpm
