#!/usr/bin/env bash
# The project's one test command: `sudo scripts/test.sh [cargo test args...]`.
#
# - On Debian/Ubuntu as root, installs what the tests need and is missing:
#   docker.io (dockerd + containerd), docker-registry (CNCF distribution), skopeo.
# - Uses the engine in DOCKER_HOST when it answers (or the default one, with
#   IMGSYNC_TEST_USE_EXISTING_DOCKER=1); otherwise starts a private dockerd under
#   a temp dir, and always stops it (and its containerd) again.
# - Runs `cargo test --all-targets` (or `cargo test ARGS...` when given, e.g.
#   `--test e2e daemon::`) against that engine, then checks that
#   no dockerd / docker-registry process it started is left behind.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

# shellcheck source=scripts/lib.sh
. scripts/lib.sh
need_tools
engine_up

# --- buildx, for the imagetools engine's tests ----------------------------------
# The pinned plugin (scripts/lib.sh install_buildx) goes into this run's own
# plugins dir; the tests link it into each workspace's ~/.docker/cli-plugins.
# Under CI=true the imagetools tests must run: no plugin is a failure.
if install_buildx; then
  export IMGSYNC_TEST_BUILDX=1 IMGSYNC_TEST_BUILDX_PLUGIN=$buildx_plugin
  echo "imagetools end-to-end tests: RUN (docker buildx $BUILDX_VERSION, sha256 verified, from $(buildx_xz_path))"
elif [[ ${CI:-} != true ]] && plugin=$(existing_buildx); then
  export IMGSYNC_TEST_BUILDX=1 IMGSYNC_TEST_BUILDX_PLUGIN=$plugin
  echo "imagetools end-to-end tests: RUN (installed docker buildx $(docker buildx version 2>/dev/null | awk '{print $2}') at $plugin; the pinned one: $buildx_problem)"
elif [[ ${CI:-} == true ]]; then
  die "CI=true: the imagetools end-to-end tests must run, but the pinned buildx $BUILDX_VERSION could not be installed: $buildx_problem"
else
  unset IMGSYNC_TEST_BUILDX IMGSYNC_TEST_BUILDX_PLUGIN
  echo "imagetools end-to-end tests: SKIPPED (no docker buildx: $buildx_problem)"
fi
# The tests fail instead of skipping when this is set.
if [[ ${CI:-} == true ]]; then export IMGSYNC_TEST_REQUIRE_BUILDX=1; fi

# --- the tests ------------------------------------------------------------------

before_registries=$(registry_pids)
set +e
# Arguments select what to run (e.g. `--test e2e daemon::`: one binary, tests by path); none runs everything.
if (($#)); then
  cargo test "$@"
else
  cargo test --all-targets
fi
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
