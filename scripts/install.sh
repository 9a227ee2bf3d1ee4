#!/bin/sh
# Installs a released imgsync binary, verified against its published SHA-256:
#
#   curl -fsSL https://raw.githubusercontent.com/OWNER/imgsync/main/scripts/install.sh | sh
#   sh install.sh [--to DIR]          (default DIR: ~/.local/bin)
#
# Environment:
#   IMGSYNC_VERSION        the version to install, e.g. 0.3.1 (default: the latest
#                          release; with IMGSYNC_DOWNLOAD_BASE, the base's `latest`
#                          file, and required when the base has none)
#   IMGSYNC_DOWNLOAD_BASE  where releases are downloaded from, laid out as
#                          <base>/v<version>/<archive> and <archive>.sha256
#                          (default: https://github.com/$IMGSYNC_REPO/releases/download;
#                          point it at your own mirror where GitHub is slow)
#   IMGSYNC_TARGET         the Rust target to install, instead of the one picked
#                          from uname (Linux: musl, static)
#   IMGSYNC_REPO           the GitHub repository of the releases (default below)
#
# Nothing is written to DIR before the archive's checksum matched and the
# binary ran; a failed download or a mismatch installs nothing.
# Exit status: 0 installed, 1 usage or other error, 3 download failed
# (no such release, network), 4 checksum mismatch.
set -eu

DEFAULT_REPO=OWNER/imgsync

say() { printf 'imgsync-install: %s\n' "$*" >&2; }
die() { code=$1; shift; say "$*"; say "nothing was installed"; exit "$code"; }

usage() {
  cat <<'USAGE'
usage: install.sh [--to DIR]
  --to DIR   install imgsync into DIR (default: ~/.local/bin)
Environment: IMGSYNC_VERSION, IMGSYNC_DOWNLOAD_BASE, IMGSYNC_TARGET, IMGSYNC_REPO
USAGE
}

# All the work is in main, called on the last line: a download cut short (curl | sh)
# runs nothing.
main() {
  to=""
  while [ $# -gt 0 ]; do
    case "$1" in
      --to) [ $# -ge 2 ] || { usage >&2; exit 1; }; to=$2; shift 2 ;;
      --to=*) to=${1#--to=}; shift ;;
      -h | --help) usage; exit 0 ;;
      *) usage >&2; die 1 "unknown argument: $1" ;;
    esac
  done
  if [ -z "$to" ]; then
    [ -n "${HOME:-}" ] || die 1 "HOME is not set: give --to DIR"
    to="$HOME/.local/bin"
  fi

  repo=${IMGSYNC_REPO:-$DEFAULT_REPO}
  base=${IMGSYNC_DOWNLOAD_BASE:-}
  custom_base=1
  if [ -z "$base" ]; then
    base="https://github.com/$repo/releases/download"
    custom_base=0
  fi
  base=${base%/}

  # --- downloads ------------------------------------------------------------------

  if command -v curl >/dev/null 2>&1; then
    fetch() { # URL FILE
      curl --fail --silent --show-error --location --retry 3 --connect-timeout 20 --max-time 600 \
        --output "$2" "$1"
    }
  elif command -v wget >/dev/null 2>&1; then
    fetch() { wget --quiet --tries=3 --timeout=60 --output-document="$2" "$1"; }
  else
    die 1 "neither curl nor wget is installed"
  fi

  tmp=$(mktemp -d 2>/dev/null || mktemp -d -t imgsync-install)
  trap 'rm -rf "$tmp"' EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM

  # --- which target ---------------------------------------------------------------

  target=${IMGSYNC_TARGET:-}
  if [ -z "$target" ]; then
    os=$(uname -s)
    arch=$(uname -m)
    case "$arch" in
      x86_64 | amd64) arch=x86_64 ;;
      aarch64 | arm64 | armv8*) arch=aarch64 ;;
      *) die 1 "no release for the CPU $arch: build from source (cargo install --locked --git https://github.com/$repo)" ;;
    esac
    case "$os" in
      Linux) target=$arch-unknown-linux-musl ;;
      Darwin)
        # An x86_64 shell under Rosetta on Apple silicon: take the native build.
        if [ "$arch" = x86_64 ] && [ "$(sysctl -n hw.optional.arm64 2>/dev/null || true)" = 1 ]; then
          arch=aarch64
        fi
        target=$arch-apple-darwin
        ;;
      MINGW* | MSYS* | CYGWIN*) die 1 "on Windows use install.ps1 (PowerShell)" ;;
      *) die 1 "no release for $os: build from source (cargo install --locked --git https://github.com/$repo)" ;;
    esac
  fi
  case "$target" in
    *[!A-Za-z0-9_.-]* | "") die 1 "invalid IMGSYNC_TARGET: $target" ;;
    *windows*) die 1 "$target: on Windows use install.ps1 (PowerShell)" ;;
  esac

  # --- which version --------------------------------------------------------------

  version=${IMGSYNC_VERSION:-}
  if [ -z "$version" ]; then
    if [ "$custom_base" = 1 ]; then
      fetch "$base/latest" "$tmp/latest" 2>/dev/null ||
        die 1 "$base/latest could not be read: set IMGSYNC_VERSION (e.g. IMGSYNC_VERSION=0.1.0)"
      version=$(tr -d ' \r\n\t' <"$tmp/latest")
    else
      fetch "https://api.github.com/repos/$repo/releases/latest" "$tmp/latest.json" ||
        die 3 "could not ask GitHub for the latest release of $repo: set IMGSYNC_VERSION"
      version=$(sed -n 's/.*"tag_name"[^"]*"\([^"]*\)".*/\1/p' "$tmp/latest.json" | head -n 1)
    fi
  fi
  version=${version#v}
  case "$version" in
    "" | *[!A-Za-z0-9.+-]*) die 1 "invalid version: '$version'" ;;
  esac

  # --- download and verify --------------------------------------------------------

  name=imgsync-$version-$target
  archive=$name.tar.gz
  url=$base/v$version/$archive

  say "downloading $url"
  fetch "$url" "$tmp/$archive" || die 3 "download failed: $url"
  fetch "$url.sha256" "$tmp/$archive.sha256" || die 3 "download failed: $url.sha256"

  expected=$(awk 'NR == 1 { print tolower($1) }' "$tmp/$archive.sha256")
  case "$expected" in
    *[!0-9a-f]* | "") die 4 "$url.sha256 holds no SHA-256" ;;
  esac
  [ ${#expected} -eq 64 ] || die 4 "$url.sha256 holds no SHA-256"
  if command -v sha256sum >/dev/null 2>&1; then
    actual=$(sha256sum "$tmp/$archive" | awk '{ print $1 }')
  elif command -v shasum >/dev/null 2>&1; then
    actual=$(shasum -a 256 "$tmp/$archive" | awk '{ print $1 }')
  elif command -v openssl >/dev/null 2>&1; then
    actual=$(openssl dgst -sha256 -r "$tmp/$archive" | awk '{ print $1 }')
  else
    die 1 "no sha256sum, shasum or openssl to verify the download with"
  fi
  if [ "$actual" != "$expected" ]; then
    die 4 "checksum mismatch for $archive: expected $expected, got $actual (a corrupted or tampered download)"
  fi
  say "checksum ok ($actual)"

  mkdir "$tmp/x"
  (cd "$tmp/x" && tar -xzf "../$archive") || die 1 "could not unpack $archive"
  bin=$tmp/x/$name/imgsync
  [ -f "$bin" ] || die 1 "$archive holds no $name/imgsync"
  chmod 755 "$bin"
  "$bin" --version </dev/null >/dev/null 2>&1 || die 1 "the downloaded imgsync does not run here (target $target; set IMGSYNC_TARGET?)"

  # --- install: a temp file in DIR, then one rename ---------------------------------

  mkdir -p "$to" || die 1 "could not create $to"
  partial=$to/.imgsync.partial.$$
  cp "$bin" "$partial" || { rm -f "$partial"; die 1 "could not write to $to"; }
  chmod 755 "$partial"
  mv -f "$partial" "$to/imgsync" || { rm -f "$partial"; die 1 "could not write $to/imgsync"; }

  installed=$("$to/imgsync" --version </dev/null)
  say "installed $to/imgsync"
  printf '%s\n' "$installed"
  case ":${PATH:-}:" in
    *":$to:"*) ;;
    *) say "$to is not on PATH: add it, e.g. export PATH=\"$to:\$PATH\"" ;;
  esac
}

main "$@"
