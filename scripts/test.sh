#!/usr/bin/env bash
# The project's one test command: `sudo scripts/test.sh [cargo test args...]`.
#
# - On Debian/Ubuntu as root, installs what the tests need and is missing:
#   docker.io (dockerd + containerd), docker-registry (CNCF distribution), skopeo.
# - Uses the engine in DOCKER_HOST when it answers (or the default one, with
#   IMGSYNC_TEST_USE_EXISTING_DOCKER=1); otherwise starts a private dockerd under
#   a temp dir, and always stops it (and its containerd) again.
# - Runs `cargo test --all-targets "$@"` against that engine, then checks that
#   no dockerd / docker-registry process it started is left behind.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

log() { printf 'test.sh: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

# --- what the tests need ------------------------------------------------------

if ! command -v cargo >/dev/null 2>&1; then
  log "cargo (the Rust toolchain) is not installed."
  log "Install it with rustup: curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh"
  log "or on Debian/Ubuntu: apt-get install cargo (must be Rust >= 1.85)."
  exit 1
fi

missing=()
command -v dockerd >/dev/null 2>&1 || missing+=(docker.io)
command -v docker >/dev/null 2>&1 || missing+=(docker.io)
command -v docker-registry >/dev/null 2>&1 || missing+=(docker-registry)
command -v skopeo >/dev/null 2>&1 || missing+=(skopeo)
if ((${#missing[@]})); then
  # unique, in order
  pkgs=$(printf '%s\n' "${missing[@]}" | awk '!seen[$0]++' | tr '\n' ' ')
  if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
    log "installing: $pkgs"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null || die "apt-get update failed"
    # shellcheck disable=SC2086
    apt-get install -y -qq --no-install-recommends $pkgs >/dev/null || die "apt-get install $pkgs failed"
  else
    die "missing: $pkgs. Install them (Debian/Ubuntu: sudo apt-get install $pkgs) or run this script as root."
  fi
fi

# --- the Docker engine --------------------------------------------------------

tmp=""
dockerd_pid=""
containerd_pid=""
cleaned=0
before_registries=""

registry_pids() {
  # docker-registry processes, as "pid" lines
  ps -eo pid=,comm= | awk '$2 == "docker-registry" { print $1 }' | sort -n
}

stop_pid() { # pid name timeout-seconds
  local pid=$1 name=$2 limit=$3 i
  kill -0 "$pid" 2>/dev/null || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < limit * 10; i++)); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.1
  done
  log "$name (pid $pid) did not stop within ${limit}s: killing it"
  kill -KILL "$pid" 2>/dev/null || true
  for ((i = 0; i < 50; i++)); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.1
  done
}

cleanup() {
  ((cleaned)) && return 0
  cleaned=1
  if [[ -n $dockerd_pid ]]; then
    # dockerd's own containerd, if it started one (its pid file, else its child).
    if [[ -z $containerd_pid ]]; then
      if [[ -s $tmp/x/containerd/containerd.pid ]]; then
        containerd_pid=$(cat "$tmp/x/containerd/containerd.pid" 2>/dev/null || true)
      else
        containerd_pid=$(ps -eo pid=,ppid=,comm= | awk -v p="$dockerd_pid" '$2 == p && $3 == "containerd" { print $1 }' | head -n1)
      fi
    fi
    stop_pid "$dockerd_pid" dockerd 30
    wait "$dockerd_pid" 2>/dev/null || true
    [[ -n $containerd_pid ]] && stop_pid "$containerd_pid" containerd 15
  fi
  if [[ -n $tmp && -d $tmp ]]; then
    # Anything dockerd left mounted under the temp dir, deepest first.
    awk -v t="$tmp" 'index($2, t) == 1 { print $2 }' /proc/self/mounts | sort -r | while read -r m; do
      umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || log "could not unmount $m"
    done
    rm -rf "$tmp" 2>/dev/null || log "could not remove $tmp entirely"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

engine_answers() { timeout 20 docker info >/dev/null 2>&1; }

# A short path: unix socket paths are limited to ~108 bytes. Test temp dirs
# (registries, workspaces) live under it too (TMPDIR), so nothing is left in
# /tmp and a leaked process is easy to attribute to this run.
tmp=$(mktemp -d /tmp/imgsync-test.XXXXXX)
mkdir -p "$tmp/tmp"

if [[ -n ${DOCKER_HOST:-} ]] && engine_answers; then
  log "using the Docker engine at DOCKER_HOST=$DOCKER_HOST"
elif [[ ${IMGSYNC_TEST_USE_EXISTING_DOCKER:-} == 1 ]] && engine_answers; then
  log "using the existing Docker engine (IMGSYNC_TEST_USE_EXISTING_DOCKER=1)"
else
  [[ $(id -u) -eq 0 ]] || die "starting a private Docker engine needs root: run sudo scripts/test.sh (or set DOCKER_HOST to a running engine)"
  mkdir -p "$tmp/data" "$tmp/x"
  echo '{}' >"$tmp/daemon.json"
  dockerd \
    --config-file "$tmp/daemon.json" \
    --data-root "$tmp/data" \
    --exec-root "$tmp/x" \
    --pidfile "$tmp/dockerd.pid" \
    -H "unix://$tmp/d.sock" \
    --iptables=false --ip6tables=false --bridge=none \
    >"$tmp/dockerd.log" 2>&1 </dev/null &
  dockerd_pid=$!
  export DOCKER_HOST="unix://$tmp/d.sock"
  deadline=$((SECONDS + 60))
  until engine_answers; do
    if ! kill -0 "$dockerd_pid" 2>/dev/null || ((SECONDS > deadline)); then
      log "the private Docker engine did not come up; its log:"
      cat "$tmp/dockerd.log" >&2 || true
      exit 1
    fi
    sleep 0.5
  done
  if [[ -s $tmp/x/containerd/containerd.pid ]]; then
    containerd_pid=$(cat "$tmp/x/containerd/containerd.pid")
  else
    containerd_pid=$(ps -eo pid=,ppid=,comm= | awk -v p="$dockerd_pid" '$2 == p && $3 == "containerd" { print $1 }' | head -n1)
  fi
  log "private Docker engine $(docker version --format '{{.Server.Version}}') at $DOCKER_HOST (dockerd pid $dockerd_pid${containerd_pid:+, containerd pid $containerd_pid})"
fi
export TMPDIR="$tmp/tmp"

if timeout 20 docker buildx version >/dev/null 2>&1; then
  export IMGSYNC_TEST_BUILDX=1
  echo "imagetools end-to-end tests: RUN (docker buildx $(docker buildx version 2>/dev/null | awk '{print $2}'))"
else
  unset IMGSYNC_TEST_BUILDX
  echo "imagetools end-to-end tests: SKIPPED (docker buildx plugin not installed)"
fi

# --- the tests ------------------------------------------------------------------

before_registries=$(registry_pids)
set +e
cargo test --all-targets "$@"
rc=$?
set -e

# --- nothing left behind ----------------------------------------------------------

leaked=0
after_registries=$(registry_pids)
for pid in $after_registries; do
  if ! grep -qx "$pid" <<<"$before_registries"; then
    args=$(ps -o args= -p "$pid" 2>/dev/null || true)
    # Only registries this run started: their config lives under our TMPDIR.
    if [[ $args == *"$tmp"* ]]; then
      log "a docker-registry started by the tests is still running: pid $pid: $args"
      leaked=1
      kill -KILL "$pid" 2>/dev/null || true
    fi
  fi
done

cleanup
for pid in $dockerd_pid $containerd_pid; do
  if kill -0 "$pid" 2>/dev/null; then
    log "process $pid ($(ps -o comm= -p "$pid" 2>/dev/null || true)) started by this run is still running"
    leaked=1
  fi
done

if ((rc == 0 && leaked)); then
  log "tests passed but left processes behind"
  exit 1
fi
exit "$rc"
