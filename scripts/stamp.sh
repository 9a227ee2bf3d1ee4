#!/usr/bin/env bash
# Stamps a release: what the installers and the action trust, written at
# release time from the archives that were just built.
#
#   scripts/stamp.sh DIST REPOSITORY VERSION
#
# DIST holds the archives and their .sha256 files (scripts/package.sh). Writes
# into DIST:
#   release-stamp.txt  the repository, the version and the SHA-256 of each
#                      archive and of the imgsync binary inside it (format in
#                      scripts/origin.sh); release.yml commits it to the
#                      release commit, which the action reads from its checkout
#   install.sh         scripts/install.sh with the repository, the version and
#   install.ps1        the archives' checksums filled in (the release assets)
#   SHA256SUMS         every archive's checksum, in sha256sum format
#   latest             the version, for `latest/download/latest` and mirrors
# Every .sha256 is checked first; nothing is written if one does not match.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

log() { printf 'stamp: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

[ $# -eq 3 ] || die "usage: scripts/stamp.sh DIST REPOSITORY VERSION"
dist=$1 repo=$2 version=${3#v}
[[ $repo =~ ^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$ ]] || die "invalid repository: $repo"
[[ $version =~ ^[0-9A-Za-z.+-]+$ ]] || die "invalid version: $version"
[ -d "$dist" ] || die "no directory $dist"

sha256() {
  if command -v sha256sum >/dev/null 2>&1; then
    sha256sum "$1" | awk '{ print $1 }'
  else
    shasum -a 256 "$1" | awk '{ print $1 }'
  fi
}

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

stamp=$work/release-stamp.txt
sums=$work/SHA256SUMS
{
  echo "# imgsync release stamp, written by scripts/stamp.sh in .github/workflows/release.yml."
  echo "# The action and the installers trust these checksums. Do not edit."
  echo "repository $repo"
  echo "version $version"
} >"$stamp"
: >"$sums"

count=0
shopt -s nullglob
for sumfile in "$dist"/imgsync-"$version"-*.sha256; do
  archive=${sumfile%.sha256}
  name=${archive##*/}
  [ -f "$archive" ] || die "$sumfile has no archive beside it"
  expected=$(awk 'NR == 1 { print tolower($1) }' "$sumfile")
  actual=$(sha256 "$archive")
  [ "$expected" = "$actual" ] || die "$name: checksum mismatch ($expected in its .sha256, $actual on disk)"
  case "$name" in
    *.tar.gz) target=${name%.tar.gz}; exe=imgsync ;;
    *.zip) target=${name%.zip}; exe=imgsync.exe ;;
    *) die "$name: not a .tar.gz or .zip" ;;
  esac
  target=${target#imgsync-"$version"-}
  [[ $target =~ ^[A-Za-z0-9_.-]+$ ]] || die "$name: invalid target $target"

  # The binary's own checksum: the action checks its cached copy against it.
  rm -rf "$work/x" && mkdir "$work/x"
  case "$name" in
    *.tar.gz) tar -xzf "$archive" -C "$work/x" ;;
    *.zip)
      if command -v unzip >/dev/null 2>&1; then
        unzip -q "$archive" -d "$work/x"
      else
        python3 -m zipfile -e "$archive" "$work/x"
      fi
      ;;
  esac
  bin=$work/x/imgsync-$version-$target/$exe
  [ -f "$bin" ] || die "$name holds no imgsync-$version-$target/$exe"

  echo "archive $target $name $actual" >>"$stamp"
  echo "binary $target $(sha256 "$bin")" >>"$stamp"
  printf '%s  %s\n' "$actual" "$name" >>"$sums"
  count=$((count + 1))
done
[ "$count" -gt 0 ] || die "no imgsync-$version-*.sha256 in $dist"

# The installers: the block between the stamp markers is replaced.
stamp_script() { # SOURCE DEST LANG
  local src=$1 dest=$2 lang=$3 block
  if [ "$lang" = sh ]; then
    block="STAMP_REPO='$repo'
STAMP_VERSION='$version'
STAMP_SUMS='$(cat "$sums")'"
  else
    block="\$StampRepo = '$repo'
\$StampVersion = '$version'
\$StampSums = '$(cat "$sums")'"
  fi
  STAMP_BLOCK=$block awk '
    /^# --- stamp: begin/ { print; print ENVIRON["STAMP_BLOCK"]; skip = 1; found++; next }
    /^# --- stamp: end/ { skip = 0 }
    !skip { print }
    END { if (found != 1) exit 1 }
  ' "$src" >"$dest" || die "$src has no stamp block"
}
stamp_script scripts/install.sh "$work/install.sh" sh
stamp_script scripts/install.ps1 "$work/install.ps1" ps1
printf '%s\n' "$version" >"$work/latest"

for f in release-stamp.txt SHA256SUMS install.sh install.ps1 latest; do
  cp "$work/$f" "$dist/$f"
done
log "stamped $count archives of $repo $version"
cat "$dist/release-stamp.txt"
