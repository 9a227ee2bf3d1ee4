#!/usr/bin/env bash
# Builds imgsync for one target and packs it for a release:
#
#   scripts/package.sh [TARGET]        (default: the host's CPU and OS, from
#                                       `rustc -vV`; on Linux the static musl
#                                       build, which install.sh installs there)
#
# 1. cargo build --release --locked --target TARGET
# 2. dist/imgsync-<version>-<target>.tar.gz (.zip for Windows targets) holding
#    imgsync-<version>-<target>/{imgsync[.exe],README.md,LICENSE}
# 3. dist/<archive>.sha256 in `sha256sum` format ("<hex>  <archive>"), and
#    dist/SHA256SUMS listing every archive of this version in dist (install.sh
#    reads it to say which archives a release has)
#
# <version> is the [package] version in Cargo.toml. Prints the archive's path.
#
# Environment:
#   IMGSYNC_PACKAGE_BINARY  pack this prebuilt binary instead of building (tests)
#   IMGSYNC_DIST_DIR        output directory (default: dist)
#   CARGO_TARGET_DIR        where cargo builds (default: target)
#   CARGO                   cargo command (default: cargo; e.g. `cross`)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

log() { printf 'package: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

[ $# -le 1 ] || die "usage: scripts/package.sh [TARGET]"
target="${1:-}"
if [ -z "$target" ]; then
  target="$(rustc -vV 2>/dev/null | sed -n 's/^host: //p')"
  [ -n "$target" ] || die "no TARGET given and rustc -vV names no host"
  # install.sh asks for the static musl build on Linux: build what it installs.
  case "$target" in
    *-unknown-linux-gnu)
      target="${target%-gnu}-musl"
      log "no TARGET given: building $target, the build install.sh installs on Linux (give a TARGET for another)"
      if [ -z "${IMGSYNC_PACKAGE_BINARY:-}" ] && command -v rustup >/dev/null 2>&1 &&
        ! rustup target list --installed 2>/dev/null | grep -qx "$target"; then
        die "the Rust target $target is not installed: rustup target add $target (and apt-get install musl-tools), or give TARGET"
      fi
      ;;
  esac
fi
case "$target" in
  *[!A-Za-z0-9_.-]*) die "invalid target: $target" ;;
esac

# The first `version = "..."` after [package].
version="$(awk '/^\[/{in_pkg=($0=="[package]")} in_pkg && /^version *=/{gsub(/.*= *"|".*/,""); print; exit}' Cargo.toml)"
[ -n "$version" ] || die "no [package] version in Cargo.toml"

exe=imgsync
archive_ext=tar.gz
case "$target" in
  *windows*) exe=imgsync.exe; archive_ext=zip ;;
esac

if [ -n "${IMGSYNC_PACKAGE_BINARY:-}" ]; then
  binary="$IMGSYNC_PACKAGE_BINARY"
  [ -f "$binary" ] || die "IMGSYNC_PACKAGE_BINARY=$binary: no such file"
  log "packing the prebuilt $binary as $target"
else
  log "cargo build --release --locked --target $target"
  "${CARGO:-cargo}" build --release --locked --target "$target"
  binary="${CARGO_TARGET_DIR:-target}/$target/release/$exe"
  [ -f "$binary" ] || die "cargo built no $binary"
fi

dist="${IMGSYNC_DIST_DIR:-dist}"
name="imgsync-$version-$target"
archive="$name.$archive_ext"
mkdir -p "$dist"
dist="$(cd "$dist" && pwd)"

stage="$(mktemp -d)"
trap 'rm -rf "$stage"' EXIT
mkdir "$stage/$name"
cp "$binary" "$stage/$name/$exe"
chmod 755 "$stage/$name/$exe"
cp README.md LICENSE "$stage/$name/"

rm -f "$dist/$archive" "$dist/$archive.sha256"
if [ "$archive_ext" = zip ]; then
  if command -v 7z >/dev/null 2>&1; then
    (cd "$stage" && 7z a -tzip -bd -bso0 "$dist/$archive" "$name" >/dev/null)
  elif command -v zip >/dev/null 2>&1; then
    (cd "$stage" && zip -qr "$dist/$archive" "$name")
  else
    die "neither 7z nor zip is installed"
  fi
else
  # Owner and order fixed where GNU tar allows it, so the listing says nothing
  # about the build machine.
  if tar --version 2>/dev/null | grep -q 'GNU tar'; then
    (cd "$stage" && tar --owner=0 --group=0 --numeric-owner --sort=name -czf "$dist/$archive" "$name")
  else
    (cd "$stage" && tar -czf "$dist/$archive" "$name")
  fi
fi

if command -v sha256sum >/dev/null 2>&1; then
  (cd "$dist" && sha256sum "$archive" >"$archive.sha256")
elif command -v shasum >/dev/null 2>&1; then
  (cd "$dist" && shasum -a 256 "$archive" >"$archive.sha256")
else
  die "neither sha256sum nor shasum is installed"
fi
# Windows' sha256sum may mark the file as binary ("<hex> *<archive>"): one format everywhere.
sed -i.bak 's/ \*/  /' "$dist/$archive.sha256" && rm -f "$dist/$archive.sha256.bak"

(cd "$dist" && cat -- imgsync-"$version"-*.sha256 >SHA256SUMS)

log "$(cat "$dist/$archive.sha256")"
printf '%s\n' "$dist/$archive"
