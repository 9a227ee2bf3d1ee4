#!/bin/sh
# Installs a released imgsync binary, verified against a pinned SHA-256.
#
# Take this script from a release's assets: the release stamps into it the
# repository it was made in, its version and the checksum of each of its
# archives (the block below). The release notes give the exact lines, e.g.
#
#   curl -fsSLO <release download address>/install.sh && sh install.sh
#   sh install.sh [--to DIR]          (default DIR: ~/.local/bin)
#
# Environment:
#   IMGSYNC_VERSION        the version to install, e.g. 0.3.1 (default: the
#                          stamped one; else the base's `latest` file)
#   IMGSYNC_DOWNLOAD_BASE  where releases are downloaded from, laid out as
#                          <base>/v<version>/<archive> (+ <archive>.sha256,
#                          SHA256SUMS) and <base>/latest (default:
#                          https://github.com/$IMGSYNC_REPO/releases/download;
#                          point it at your own mirror where GitHub is slow).
#                          https only; plain http only to a loopback host.
#   IMGSYNC_TARGET         the Rust target to install, instead of the one picked
#                          from uname (Linux: musl, static)
#   IMGSYNC_REPO           the GitHub repository of the releases (default: the
#                          stamped one)
#   IMGSYNC_SHA256         the archive's SHA-256, for a version this script
#                          does not pin
#
# The checksum trusted is the one pinned here for the stamped version, else
# IMGSYNC_SHA256, else (said so on stderr) the .sha256 file beside the archive.
# Nothing is written to DIR before the archive's checksum matched and the
# binary ran; a failed download or a mismatch installs nothing.
# Exit status: 0 installed, 1 usage or other error, 3 download failed
# (no such release or archive, network), 4 checksum mismatch.
set -eu

# --- stamp: begin (scripts/stamp.sh fills this in for a release; empty on main)
STAMP_REPO=''
STAMP_VERSION=''
STAMP_SUMS=''
# --- stamp: end

say() { printf 'imgsync-install: %s\n' "$*" >&2; }
die() { code=$1; shift; say "$*"; say "nothing was installed"; exit "$code"; }

usage() {
  cat <<'USAGE'
usage: install.sh [--to DIR]
  --to DIR   install imgsync into DIR (default: ~/.local/bin)
Environment: IMGSYNC_VERSION, IMGSYNC_DOWNLOAD_BASE, IMGSYNC_TARGET, IMGSYNC_REPO,
IMGSYNC_SHA256
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

  repo=${IMGSYNC_REPO:-$STAMP_REPO}
  case "$repo" in
    "") ;;
    */*/* | */ | /* | *[!A-Za-z0-9_./-]*) die 1 "invalid IMGSYNC_REPO: $repo (expected owner/name)" ;;
    */*) ;;
    *) die 1 "invalid IMGSYNC_REPO: $repo (expected owner/name)" ;;
  esac
  base=${IMGSYNC_DOWNLOAD_BASE:-}
  custom_base=1
  if [ -z "$base" ]; then
    [ -n "$repo" ] || die 1 "this install.sh is not from a release, so it knows no repository: take install.sh from a release's assets, or set IMGSYNC_REPO=owner/name or IMGSYNC_DOWNLOAD_BASE"
    base="https://github.com/$repo/releases/download"
    custom_base=0
  fi
  base=${base%/}
  # https only: a plain-http answer could be anything. Loopback is for tests.
  case "$base" in
    https://*) proto='=https' ;;
    http://localhost | http://localhost[:/]* | http://127.0.0.1 | http://127.0.0.1[:/]* | http://\[::1\] | http://\[::1\][:/]*) proto='=http' ;;
    *) die 1 "IMGSYNC_DOWNLOAD_BASE must be https:// (plain http only to localhost, 127.0.0.1 or [::1]): $base" ;;
  esac

  # --- downloads ------------------------------------------------------------------

  # Redirects keep the scheme rule: with curl (preferred) an https base never
  # follows a redirect to http. wget has no such switch for redirects
  # (--https-only covers recursive links); the pinned checksum still decides.
  if command -v curl >/dev/null 2>&1; then
    fetch() { # URL FILE
      curl --fail --silent --show-error --location --proto "$proto" --proto-redir "$proto" --retry 3 \
        --connect-timeout 20 --max-time 600 --output "$2" "$1"
    }
  elif command -v wget >/dev/null 2>&1; then
    if [ "$proto" = '=https' ]; then
      fetch() { wget --quiet --https-only --tries=3 --timeout=60 --output-document="$2" "$1"; }
    else
      fetch() { wget --quiet --tries=3 --timeout=60 --output-document="$2" "$1"; }
    fi
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

  # The stamped version, unless another is asked for, then the `latest` file a
  # release publishes (GitHub: the newest release's asset; a mirror: <base>/latest).
  version=${IMGSYNC_VERSION:-$STAMP_VERSION}
  if [ -z "$version" ]; then
    if [ "$custom_base" = 1 ]; then
      latest_url=$base/latest
    else
      latest_url=https://github.com/$repo/releases/latest/download/latest
    fi
    fetch "$latest_url" "$tmp/latest" 2>/dev/null ||
      die 3 "$latest_url could not be read: set IMGSYNC_VERSION (e.g. IMGSYNC_VERSION=0.1.0)"
    version=$(tr -d ' \r\n\t' <"$tmp/latest")
  fi
  version=${version#v}
  case "$version" in
    "" | *[!A-Za-z0-9.+-]*) die 1 "invalid version: '$version'" ;;
  esac

  # --- download and verify --------------------------------------------------------

  name=imgsync-$version-$target
  archive=$name.tar.gz
  url=$base/v$version/$archive

  # Which checksum to trust, decided before anything is downloaded.
  expected=""
  if [ -n "$STAMP_VERSION" ] && [ "$version" = "$STAMP_VERSION" ]; then
    expected=$(printf '%s\n' "$STAMP_SUMS" | awk -v n="$archive" '$2 == n { print tolower($1); exit }')
    [ -n "$expected" ] || die 3 "release $version has no $archive; it has: $(printf '%s\n' "$STAMP_SUMS" | awk '{ printf "%s%s", sep, $2; sep = ", " }'). Set IMGSYNC_TARGET to the target of one of them"
    source_of_sum="pinned in this install.sh"
  elif [ -n "${IMGSYNC_SHA256:-}" ]; then
    expected=$(printf '%s' "$IMGSYNC_SHA256" | tr 'A-F' 'a-f')
    source_of_sum="IMGSYNC_SHA256"
  fi

  say "downloading $url"
  if ! fetch "$url" "$tmp/$archive"; then
    # What does the base have? A release lists its archives in SHA256SUMS.
    if fetch "$base/v$version/SHA256SUMS" "$tmp/SHA256SUMS" 2>/dev/null; then
      offered=$(awk '{ sub(/^\*/, "", $2); printf "%s%s", sep, $2; sep = ", " }' "$tmp/SHA256SUMS")
      example=$(awk -v p="imgsync-$version-" 'NR == 1 { n = $2; sub(/^\*/, "", n); sub("^" p, "", n); sub(/\.(tar\.gz|zip)$/, "", n); print n }' "$tmp/SHA256SUMS")
      die 3 "$base/v$version has no $archive; it has: ${offered:-nothing}. Set IMGSYNC_TARGET to the target of one of them${example:+ (e.g. IMGSYNC_TARGET=$example)}"
    fi
    die 3 "download failed: $url (no such release or archive? IMGSYNC_VERSION and IMGSYNC_TARGET choose another)"
  fi
  if [ -z "$expected" ]; then
    fetch "$url.sha256" "$tmp/$archive.sha256" || die 3 "download failed: $url.sha256"
    expected=$(awk 'NR == 1 { print tolower($1) }' "$tmp/$archive.sha256")
    source_of_sum="$url.sha256, from the same place as the archive: it proves an intact download, not its origin (take install.sh from the release, or set IMGSYNC_SHA256)"
  fi
  case "$expected" in
    *[!0-9a-f]* | "") die 4 "no SHA-256 to check against ($source_of_sum)" ;;
  esac
  [ ${#expected} -eq 64 ] || die 4 "no SHA-256 to check against ($source_of_sum)"
  say "expected checksum: $source_of_sum"
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
