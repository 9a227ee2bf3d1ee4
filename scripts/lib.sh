#!/usr/bin/env bash
# Shared by scripts/test.sh, scripts/demo.sh and scripts/bench.sh: install what
# is missing, start a private Docker engine unless one is given, and stop
# everything again on exit. Usage: source it, then `need_tools` and `engine_up`.
# Sets: tmp (the run's private dir), DOCKER_HOST, dockerd_pid, containerd_pid.

SCRIPT_NAME=${SCRIPT_NAME:-$(basename "$0")}

log() { printf '%s: %s\n' "$SCRIPT_NAME" "$*" >&2; }
die() { log "$*"; exit 1; }

need_tools() {
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
  command -v xz >/dev/null 2>&1 || missing+=(xz-utils) # unpacks the pinned buildx
  # The naming tests pull through real runtimes (tests/common/runtimes.rs).
  command -v podman >/dev/null 2>&1 || missing+=(podman)
  command -v containerd >/dev/null 2>&1 || missing+=(containerd)
  command -v ctr >/dev/null 2>&1 || missing+=(containerd)
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
}

tmp=""
main_pid=$BASHPID
dockerd_pid=""
containerd_pid=""
cleaned=0

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
  # Subshells (background jobs) may inherit the EXIT trap; only the script itself cleans up.
  [[ $BASHPID == "$main_pid" ]] || return 0
  ((cleaned)) && return 0
  cleaned=1
  # A script's own clean-up (e.g. its registries) runs first, while the engine still answers.
  if declare -F pre_cleanup >/dev/null; then pre_cleanup || true; fi
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

engine_answers() { timeout 20 docker info >/dev/null 2>&1; }

engine_up() {
  main_pid=$BASHPID
  trap cleanup EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
  # A short path: unix socket paths are limited to ~108 bytes. Test temp dirs
  # (registries, workspaces) live under it too (TMPDIR), so nothing is left in
  # /tmp and a leaked process is easy to attribute to this run.
  tmp=$(mktemp -d /tmp/imgsync-${SCRIPT_NAME%.sh}.XXXXXX)
  mkdir -p "$tmp/tmp"

  if [[ -n ${DOCKER_HOST:-} ]] && engine_answers; then
    log "using the Docker engine at DOCKER_HOST=$DOCKER_HOST"
  elif [[ ${IMGSYNC_TEST_USE_EXISTING_DOCKER:-} == 1 ]] && engine_answers; then
    log "using the existing Docker engine (IMGSYNC_TEST_USE_EXISTING_DOCKER=1)"
  else
    [[ $(id -u) -eq 0 ]] || die "starting a private Docker engine needs root: run sudo scripts/$SCRIPT_NAME (or set DOCKER_HOST to a running engine)"
    mkdir -p "$tmp/data" "$tmp/x"
    # 10.231.0.0/16: the tests' registries on a non-loopback address (tests/common/netns.rs),
    # reached over plain HTTP as an INSECURE_REGISTRIES entry is.
    echo '{"insecure-registries": ["10.231.0.0/16"]}' >"$tmp/daemon.json"
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
}

# Builds imgsync and the testbed example (release); sets bin.
build_release() {
  log "building imgsync (cargo build --release)"
  cargo build --release --quiet --bin imgsync --example testbed
  release_dir=${CARGO_TARGET_DIR:-$PWD/target}/release
  bin=$release_dir/imgsync
}

# Local registries with synthetic images (examples/testbed.rs), stopped by cleanup.
testbed_pids=()
testbed_up() { # state-file testbed-args...: starts it, waits for its state file, reads it
  local state=$1
  shift
  "${release_dir:-$PWD/target/release}/examples/testbed" "$@" --state "$state" &
  testbed_pids+=($!)
  for _ in $(seq 1 6000); do
    [[ -s $state ]] && break
    kill -0 "${testbed_pids[-1]}" 2>/dev/null || die "the local registries did not start"
    sleep 0.1
  done
  [[ -s $state ]] || die "the local registries did not start in time"
  # shellcheck disable=SC1090
  . "$state"
}

testbed_down() {
  local p
  for p in "${testbed_pids[@]}"; do
    kill -TERM "$p" 2>/dev/null || true
    wait "$p" 2>/dev/null || true
  done
  testbed_pids=()
}
pre_cleanup() { testbed_down; }

# --- the buildx plugin for tests ------------------------------------------------
# A pinned docker buildx (see ../shared/tools/README.md beside the clone: built from
# the upstream tag, never stored in the repository). IMGSYNC_BUILDX_XZ names the
# file, or IMGSYNC_SHARED_TOOLS the folder holding it; the default is the folder
# beside the clone, as CI has it.
BUILDX_VERSION=v0.36.1
BUILDX_XZ_SHA256=9c15581f4394404bedbccbd13ae04a7ee2c139c4ed966c54dfccf62a0c9efa85
BUILDX_BIN_SHA256=bbe0102750efdc8234fd5f8720e7218f36061df598413af22c0424aadc23502c

buildx_xz_path() {
  if [[ -n ${IMGSYNC_BUILDX_XZ:-} ]]; then
    printf '%s\n' "$IMGSYNC_BUILDX_XZ"
  else
    printf '%s\n' "${IMGSYNC_SHARED_TOOLS:-$PWD/../shared/tools}/docker-buildx-$BUILDX_VERSION-linux-amd64.xz"
  fi
}

# Installs the pinned plugin into $tmp/plugins/cli-plugins (the run's own dir: never
# ~/.docker, never the repository) after checking both checksums. Sets
# buildx_plugin on success; says why and returns 1 otherwise.
install_buildx() {
  local xz dir sum
  buildx_plugin=""
  xz=$(buildx_xz_path)
  [[ -f $xz ]] || { buildx_problem="$xz does not exist (set IMGSYNC_BUILDX_XZ or IMGSYNC_SHARED_TOOLS)"; return 1; }
  command -v xz >/dev/null 2>&1 || { buildx_problem="xz is not installed (apt-get install xz-utils)"; return 1; }
  sum=$(sha256sum "$xz" | awk '{print $1}')
  [[ $sum == "$BUILDX_XZ_SHA256" ]] || { buildx_problem="$xz has sha256 $sum, expected $BUILDX_XZ_SHA256"; return 1; }
  dir=$tmp/plugins/cli-plugins
  mkdir -p "$dir"
  xz -dc "$xz" >"$dir/docker-buildx.part" || { buildx_problem="could not decompress $xz"; return 1; }
  sum=$(sha256sum "$dir/docker-buildx.part" | awk '{print $1}')
  [[ $sum == "$BUILDX_BIN_SHA256" ]] || { rm -f "$dir/docker-buildx.part"; buildx_problem="the decompressed plugin has sha256 $sum, expected $BUILDX_BIN_SHA256"; return 1; }
  chmod 0755 "$dir/docker-buildx.part"
  mv "$dir/docker-buildx.part" "$dir/docker-buildx"
  if ! DOCKER_CONFIG=$tmp/plugins timeout 20 docker buildx version >/dev/null 2>&1; then
    buildx_problem="the installed plugin does not answer \`docker buildx version\`"
    return 1
  fi
  buildx_plugin=$dir/docker-buildx
}

# A buildx the user already has, found where the docker CLI looks for plugins.
existing_buildx() {
  local d
  timeout 20 docker buildx version >/dev/null 2>&1 || return 1
  for d in "${DOCKER_CONFIG:-$HOME/.docker}/cli-plugins" /usr/local/lib/docker/cli-plugins \
    /usr/local/libexec/docker/cli-plugins /usr/lib/docker/cli-plugins /usr/libexec/docker/cli-plugins; do
    if [[ -x $d/docker-buildx ]]; then
      printf '%s\n' "$d/docker-buildx"
      return 0
    fi
  done
  return 1
}

# For demo.sh and bench.sh: the pinned buildx when its file is there (as the
# run's own DOCKER_CONFIG, which imgsync links plugins from), else the user's
# own buildx, else none. Sets buildx_note (what was used, for the output).
use_buildx() {
  local plugin
  if install_buildx; then
    export DOCKER_CONFIG=$tmp/plugins
    buildx_note="docker buildx $BUILDX_VERSION, the pinned test plugin, sha256 verified"
  elif plugin=$(existing_buildx); then
    buildx_note="docker buildx $(docker buildx version 2>/dev/null | awk '{print $2}'), installed at $plugin"
  else
    buildx_note="no docker buildx: $buildx_problem"
  fi
  log "buildx: $buildx_note"
}
