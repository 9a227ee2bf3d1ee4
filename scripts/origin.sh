#!/usr/bin/env bash
# Where imgsync comes from: the upstream repository and the release checksums
# that a checkout of imgsync knows about. Sourced by action.yml and the
# project's own workflows; unit-tested offline by tests/e2e/action_origin.rs.
#
# release-stamp.txt is written by .github/workflows/release.yml (scripts/stamp.sh)
# into the release commit that the tags vX.Y.Z and v<major> point at. Lines:
#   repository OWNER/NAME
#   version X.Y.Z
#   archive TARGET ARCHIVE-NAME SHA256     (one per released archive)
#   binary TARGET SHA256                   (the imgsync binary inside it)
# `main` has no such file: it cannot know which repository it will be
# released from.
#
# Functions (each prints its answer on stdout, nothing when unknown):
#   stamp_field FILE KEY                 repository | version
#   stamp_archive FILE TARGET            "ARCHIVE-NAME SHA256"
#   stamp_binary FILE TARGET             SHA256 of the binary
#   upstream_of DIR                      the stamp's repository, else Cargo.toml's
#                                        `repository` when it is a GitHub URL
#   imgsync_origin                       the action's decision (below)
#   origin_api PATH [ACCEPT]             a GitHub API GET (tests replace it)
#
# Both ends of the file are data from a checkout or the API: nothing read here
# is evaluated, and every value is checked against a strict pattern.

# owner/name as GitHub allows them.
origin_valid_repo() {
  [[ ${1:-} =~ ^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$ ]]
}

stamp_field() { # FILE KEY
  [ -f "$1" ] || return 0
  awk -v k="$2" '$1 == k && NF == 2 { print $2; exit }' "$1" | tr -d '\r'
}

stamp_archive() { # FILE TARGET
  [ -f "$1" ] || return 0
  awk -v t="$2" '$1 == "archive" && $2 == t && NF == 4 { print $3, tolower($4); exit }' "$1" | tr -d '\r'
}

stamp_binary() { # FILE TARGET
  [ -f "$1" ] || return 0
  awk -v t="$2" '$1 == "binary" && $2 == t && NF == 3 { print tolower($3); exit }' "$1" | tr -d '\r'
}

# The stamp's repository, else Cargo.toml's [package] repository when it names
# a GitHub repository (https://github.com/OWNER/NAME, with or without .git).
upstream_of() { # DIR
  local dir=$1 repo=""
  repo=$(stamp_field "$dir/release-stamp.txt" repository)
  if [ -z "$repo" ] && [ -f "$dir/Cargo.toml" ]; then
    repo=$(awk '/^\[/{p=($0=="[package]")} p && /^repository *=/{gsub(/.*= *"|".*/,""); print; exit}' "$dir/Cargo.toml" |
      sed -n 's#^https://github\.com/\([^/]*/[^/]*\)$#\1#p' | sed 's#\.git$##; s#/$##')
  fi
  if origin_valid_repo "$repo"; then
    printf '%s\n' "$repo"
  fi
}

# A GET of the GitHub REST API: PATH relative to the API root; ACCEPT defaults
# to JSON. Uses GH_TOKEN when set. The tests define their own origin_api.
origin_api() { # PATH [ACCEPT]
  local accept=${2:-application/vnd.github+json}
  local auth=()
  if [ -n "${GH_TOKEN:-}" ]; then
    auth=(-H "Authorization: Bearer $GH_TOKEN")
  fi
  curl --fail --silent --show-error --location --retry 3 --connect-timeout 20 --max-time 60 \
    --proto '=https' -H "Accept: $accept" -H "X-GitHub-Api-Version: 2022-11-28" "${auth[@]}" \
    "${GITHUB_API_URL:-https://api.github.com}/$1"
}

# The action's decision: where the imgsync binary comes from and what it must
# hash to. Reads:
#   ACTION_PATH        the action's own checkout
#   INPUT_REPOSITORY   input `repository` (a download place; the checksums still
#                      come from a stamp)
#   INPUT_VERSION      input `version`
#   GITHUB_REPOSITORY, GITHUB_WORKSPACE
#   ORIGIN_STAMP_OUT   where to write a stamp fetched from the API
# Prints lines: how=release|source, repository=, version=, stamp=FILE, why=TEXT.
imgsync_origin() {
  local stamp="$ACTION_PATH/release-stamp.txt"
  local cargo_version version repo source_repo why answer
  cargo_version=$(awk '/^\[/{p=($0=="[package]")} p && /^version *=/{gsub(/.*= *"|".*/,""); print; exit}' "$ACTION_PATH/Cargo.toml" 2>/dev/null)

  if [ -f "$stamp" ]; then
    repo=$(stamp_field "$stamp" repository)
    version=$(stamp_field "$stamp" version)
    if ! origin_valid_repo "$repo" || [ -z "$version" ]; then
      origin_print source "" "$cargo_version" "" "release-stamp.txt names no repository or version: building from source"
      return 0
    fi
    if [ -n "${INPUT_VERSION:-}" ] && [ "${INPUT_VERSION#v}" != "$version" ]; then
      origin_print source "$repo" "${INPUT_VERSION#v}" "" "version ${INPUT_VERSION#v} is not the stamped release $version, so no checksum is pinned for it: building from source"
      return 0
    fi
    if [ -n "${INPUT_REPOSITORY:-}" ]; then
      repo=$INPUT_REPOSITORY
    fi
    origin_print release "$repo" "$version" "$stamp" ""
    return 0
  fi

  version=${INPUT_VERSION:-$cargo_version}
  version=${version#v}
  why="this checkout of the action has no release-stamp.txt (a copy of main, not of a release)"

  # Where a stamp could come from: the repository named by input, else, for
  # `uses: ./` in a fork, the repository it was forked from (the API's `source`).
  source_repo=${INPUT_REPOSITORY:-}
  if [ -z "$source_repo" ] && origin_is_self; then
    if answer=$(origin_api "repos/$GITHUB_REPOSITORY" 2>/dev/null) &&
      [ "$(printf '%s' "$answer" | jq -r '.fork // false' 2>/dev/null)" = true ]; then
      source_repo=$(printf '%s' "$answer" | jq -r '.source.full_name // empty' 2>/dev/null)
      origin_valid_repo "$source_repo" || source_repo=""
      why="$GITHUB_REPOSITORY is a fork of ${source_repo:-an unknown repository}"
    fi
  fi
  if [ -z "$source_repo" ]; then
    origin_print source "" "$version" "" "$why: building imgsync from source"
    return 0
  fi
  if ! origin_valid_repo "$source_repo"; then
    origin_print source "" "$version" "" "invalid repository '$source_repo': building imgsync from source"
    return 0
  fi
  # The stamp of release v$version in that repository: from its git tree (the
  # release commit), not from the release assets that serve the archives.
  local out=${ORIGIN_STAMP_OUT:-${RUNNER_TEMP:-/tmp}/imgsync-release-stamp.txt}
  if origin_api "repos/$source_repo/contents/release-stamp.txt?ref=v$version" application/vnd.github.raw >"$out" 2>/dev/null &&
    [ "$(stamp_field "$out" repository)" = "$source_repo" ] && [ "$(stamp_field "$out" version)" = "$version" ]; then
    origin_print release "$source_repo" "$version" "$out" ""
    return 0
  fi
  rm -f "$out"
  origin_print source "$source_repo" "$version" "" "$why, which has no stamped release v$version: building imgsync from source"
}

# `uses: ./`: the action is the workflow's own checkout, not one GitHub fetched
# into _actions/OWNER/NAME/REF.
origin_is_self() {
  local p="${ACTION_PATH//\\//}"
  case "$p" in
    */_actions/*/*/*) return 1 ;;
  esac
  [ -n "${GITHUB_REPOSITORY:-}" ] && origin_valid_repo "$GITHUB_REPOSITORY"
}

# One line per field, whatever the inputs held: a line break in a version
# input or an API answer must not add a field (the action reads them by name).
origin_print() { # HOW REPOSITORY VERSION STAMP WHY
  local nl=$'\n' cr=$'\r' f out=()
  for f in "$@"; do
    f=${f//$nl/ }
    out+=("${f//$cr/ }")
  done
  printf 'how=%s\nrepository=%s\nversion=%s\nstamp=%s\nwhy=%s\n' "${out[@]}"
}

# Run as a script: `bash scripts/origin.sh upstream [DIR]` prints the upstream.
if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  case "${1:-}" in
    upstream) upstream_of "${2:-.}" ;;
    *) echo "usage: scripts/origin.sh upstream [DIR]" >&2; exit 1 ;;
  esac
fi
