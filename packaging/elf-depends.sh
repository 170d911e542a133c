#!/usr/bin/env bash
# Print the Debian library dependencies an ELF executable really needs, from its own
# version needs (.gnu.version_r, read with readelf): the highest GLIBC_x.y it references
# gives libc6 (>= x.y), GLIBCXX/CXXABI the libstdc++6 release that introduced them, GCC_x.y
# libgcc-s1 (>= x.y).
#
# Usage: packaging/elf-depends.sh BINARY   e.g. -> libc6 (>= 2.28), libgcc-s1 (>= 3.4), libstdc++6 (>= 5)
#
# Why not dpkg-shlibdeps: it takes the minimum versions from the *build host's* symbols
# files, where every symbol glibc 2.34 moved from libpthread/libdl into libc.so.6 is listed at
# 2.34: a binary built against glibc 2.28 got "libc6 (>= 2.34)" on Debian 12 and would not
# install on Debian 11, where it runs. Needs readelf (binutils). A NEEDED library this script
# does not know is an error (say what package provides it, or set IMPRINT_SHLIBS_DEPENDS).
set -euo pipefail
binary=${1:?usage: elf-depends.sh BINARY}
command -v readelf >/dev/null || { echo "elf-depends: readelf not found (apt-get install binutils)" >&2; exit 2; }

# "FILE VERSION" lines from the version needs section.
needs=$(LC_ALL=C readelf --version-info --wide "$binary" | awk '
  /Version needs section/ { inside = 1; next }
  /^Version (symbols|definition) section/ { inside = 0 }
  inside && /File:/ { for (i = 1; i <= NF; i++) if ($i == "File:") file = $(i + 1) }
  inside && /Name:/ { for (i = 1; i <= NF; i++) if ($i == "Name:") print file, $(i + 1) }')
mapfile -t libraries < <(LC_ALL=C readelf -d "$binary" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p')

highest() { sed -n "s/^$1\$/\\1/p" | sort -V | tail -n 1; }
# The GCC major release whose libstdc++ first had a GLIBCXX_3.4.N / CXXABI_1.3.N (rounded up to
# the next major where a minor release introduced it: a stricter bound, never a looser one).
glibcxx_gcc() { case $1 in [0-9]|1[0-9]|20) echo 4.9 ;; 21) echo 5 ;; 22) echo 6 ;; 23|24) echo 7 ;; 25) echo 8 ;; 26|27) echo 9 ;;
  28) echo 10 ;; 29) echo 11 ;; 30) echo 12 ;; 31) echo 13 ;; 32) echo 14 ;; 33) echo 15 ;; *) return 1 ;; esac; }
cxxabi_gcc() { case $1 in ''|[0-9]|10) echo 4.9 ;; 11) echo 7 ;; 12) echo 9 ;; 13) echo 11 ;; 14) echo 12 ;; 15) echo 13 ;; 16) echo 14 ;; *) return 1 ;; esac; }

deps=()
libc=0; cxx=0; gcc_s=0
for lib in "${libraries[@]}"; do
  case $lib in
    libc.so.6|libm.so.6|libdl.so.2|libpthread.so.0|librt.so.1|libutil.so.1|ld-linux-x86-64.so.2|ld-linux-aarch64.so.1) libc=1 ;;
    libstdc++.so.6) cxx=1 ;;
    libgcc_s.so.1) gcc_s=1 ;;
    *) echo "elf-depends: $binary needs $lib, which this script cannot map to a package; set IMPRINT_SHLIBS_DEPENDS" >&2; exit 2 ;;
  esac
done
if [ "$libc" = 1 ]; then
  v=$(printf '%s\n' "$needs" | awk '{print $2}' | highest 'GLIBC_\([0-9][0-9.]*\)')
  [ -n "$v" ] || { echo "elf-depends: no GLIBC_ version needs in $binary" >&2; exit 2; }
  deps+=("libc6 (>= $v)")
fi
if [ "$gcc_s" = 1 ]; then
  v=$(printf '%s\n' "$needs" | awk '$1 == "libgcc_s.so.1" {print $2}' | highest 'GCC_\([0-9][0-9.]*\)')
  deps+=("libgcc-s1${v:+ (>= $v)}")
fi
if [ "$cxx" = 1 ]; then
  n=$(printf '%s\n' "$needs" | awk '$1 == "libstdc++.so.6" {print $2}' | highest 'GLIBCXX_3\.4\.\{0,1\}\([0-9]*\)')
  a=$(printf '%s\n' "$needs" | awk '$1 == "libstdc++.so.6" {print $2}' | highest 'CXXABI_1\.3\.\{0,1\}\([0-9]*\)')
  g1=$(glibcxx_gcc "${n:-0}") || { echo "elf-depends: GLIBCXX_3.4.$n is newer than this script knows" >&2; exit 2; }
  g2=$(cxxabi_gcc "${a:-}") || { echo "elf-depends: CXXABI_1.3.$a is newer than this script knows" >&2; exit 2; }
  deps+=("libstdc++6 (>= $(printf '%s\n%s\n' "$g1" "$g2" | sort -V | tail -n 1))")
fi
(IFS=,; printf '%s\n' "${deps[*]}" | sed 's/,/, /g')
