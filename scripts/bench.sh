#!/usr/bin/env bash
# Benchmark: imgsync against the usual alternatives, side by side in one run.
#
#   sudo scripts/bench.sh [--images N] [--size BYTES] [--noop-images M] [--latency MS] [--runs R]
#                         [--big-noop K] [--noop-only]
#
# Full copy: N synthetic two-platform images (each platform one layer of BYTES
# random bytes), every run into a fresh, empty target registry.
# No-op: M small two-platform images already at the target, checked again.
# Both registries are reached through a proxy that adds MS of round-trip time
# (real registries are 100-300 ms away; loopback is under 1 ms), and
# everything is measured at 0 ms too. Prints medians over R runs, ratios, and
# the peak disk used under docker's data root.
# The no-op is imgsync's registry read path (HEADs, no docker process) beside
# the sequential `docker manifest inspect` and `buildx imagetools inspect --raw`
# loops and `skopeo sync` of the same list; its registry requests per entry
# come from the report. Then a no-op of K (default 1,000) two-platform entries
# at MS: wall time and max RSS. --noop-only skips the full copies.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
SCRIPT_NAME=bench.sh

images=10 size=$((4 << 20)) noop_images=100 latency=50 runs=3 big_noop=1000 noop_only=0
while (($#)); do
  case $1 in
    --images) images=$2; shift 2 ;;
    --size) size=$2; shift 2 ;;
    --noop-images) noop_images=$2; shift 2 ;;
    --latency) latency=$2; shift 2 ;;
    --runs) runs=$2; shift 2 ;;
    --big-noop) big_noop=$2; shift 2 ;;
    --noop-only) noop_only=1; shift ;;
    *) echo "usage: $0 [--images N] [--size BYTES] [--noop-images M] [--latency MS] [--runs R] [--big-noop K] [--noop-only]" >&2; exit 2 ;;
  esac
done

# shellcheck source=scripts/lib.sh
. scripts/lib.sh
need_tools
engine_up
use_buildx
build_release
load_start=$(cut -d' ' -f1-3 /proc/loadavg)
data_root=$(docker info --format '{{.DockerRootDir}}')
buildx=0
docker buildx version >/dev/null 2>&1 && buildx=1
skopeo=0
command -v skopeo >/dev/null 2>&1 && skopeo=1

# Full-copy variants, each needing a fresh target per run.
full=(imgsync-daemon imgsync-daemon-amd64 shell-loop)
((buildx)) && full+=(imgsync-imagetools)
((skopeo)) && full+=(skopeo-copy-all)
((noop_only)) && full=()
targets=$((${#full[@]} * runs + 1))

now() { date +%s.%N; }
median() { sort -g | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }

# Peak bytes under docker's data root while a command runs, above the start.
peak_file=$tmp/peak
# Files appear and vanish while du walks the tree (it then exits 1): take its total anyway.
disk_used() { { du -sbx "$data_root" 2>/dev/null || true; } | awk 'END { print $1 + 0 }'; }
with_disk_peak() {
  local base peak=0 cur pid
  base=$(disk_used)
  "$@" &
  pid=$!
  while kill -0 "$pid" 2>/dev/null; do
    cur=$(disk_used)
    ((cur - base > peak)) && peak=$((cur - base))
    sleep 0.2
  done
  echo "$peak" >"$peak_file"
  wait "$pid" || die "$* failed"
}

write_config() { # dir target-registry engine [platform] [repo count]
  local repo=${5:-bench} count=${6:-$images}
  mkdir -p "$1"
  printf 'SYNC_MODE=custom\nCUSTOM_REGISTRY=%s\nCUSTOM_NAMESPACE=mirror\nENGINE=%s\n' "$2" "$3" >"$1/config.env"
  for ((i = 0; i < count; i++)); do echo "${4:+--platform=$4 }$SRC/$repo/app$i:v1 => app$i"; done >"$1/images.txt"
}

imgsync_sync() { # dir [args...]: a sync there (its own state file); on failure, what it said
  local d=$1
  shift
  if ! (cd "$d" && "$bin" sync --report report.json --state state.json "$@" >/dev/null 2>stderr); then
    cat "$d/stderr" >&2 2>/dev/null || true
    return 1
  fi
}

# Wall seconds and max RSS (KiB) of a command: "seconds kib".
time_rss() {
  python3 -c 'import resource, subprocess, sys, time
t = time.monotonic()
rc = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL).returncode
print("%.3f %d" % (time.monotonic() - t, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss))
sys.exit(rc)' "$@"
}

# Registry requests per entry of a report, as text.
requests_per_entry() {
  python3 -c 'import json, sys
r = json.load(open(sys.argv[1]))
n = max(len(r["entries"]), 1)
q = r["summary"]["requests"]
print("%.2f HEAD, %.2f GET, %.2f token = %.2f requests" % (q["head"] / n, q["get"] / n, q["token"] / n, (q["head"] + q["get"] + q["token"]) / n))' "$1"
}

# One retry, so a transient registry error does not end the benchmark
# (imgsync retries on its own; the scripts it is compared with do not).
again() { "$@" || { log "retrying: $*"; "$@"; }; }

shell_loop() { # target: what the popular workflow scripts do, one platform each
  for ((i = 0; i < images; i++)); do
    again docker pull -q "$SRC/bench/app$i:v1" >/dev/null
    docker tag "$SRC/bench/app$i:v1" "$1/loop/app$i:v1"
    again docker push -q "$1/loop/app$i:v1" >/dev/null
    docker rmi -f "$SRC/bench/app$i:v1" "$1/loop/app$i:v1" >/dev/null
  done
}

inspect_loop() { # target: a sequential up-to-date check, one image after another
  for ((i = 0; i < noop_images; i++)); do
    again docker manifest inspect --insecure -v "$SRC/small/app$i:v1" >/dev/null
    again docker manifest inspect --insecure -v "$1/mirror/app$i:v1" >/dev/null
  done
}

imagetools_loop() { # target: the same check with buildx, exact registry bytes (the issue's baseline)
  for ((i = 0; i < noop_images; i++)); do
    again docker buildx imagetools inspect --raw "$SRC/small/app$i:v1" >/dev/null
    again docker buildx imagetools inspect --raw "$1/mirror/app$i:v1" >/dev/null
  done
}

skopeo_sync_list() { # target yaml: `skopeo sync` of the same list (it copies what differs)
  skopeo sync --src yaml --dest docker --dest-tls-verify=false --all "$2" "$1/skopeo" >/dev/null
}

write_skopeo_yaml() { # file
  { printf '%s:
  tls-verify: false
  images:
' "$SRC"
    for ((i = 0; i < noop_images; i++)); do printf '    small/app%d: ["v1"]
' "$i"; done; } >"$1"
}

skopeo_copy() {
  for ((i = 0; i < images; i++)); do
    again skopeo copy -q --all --src-tls-verify=false --dest-tls-verify=false \
      "docker://$SRC/bench/app$i:v1" "docker://$1/skopeo/app$i:v1" >/dev/null
  done
}

results=$tmp/results # lines: latency variant seconds [peak-bytes]
: >"$results"
requests=$tmp/requests # lines: latency variant head get token total (per entry)
: >"$requests"

for lat in 0 "$latency"; do
  testbed_up "$tmp/state-$lat" --images "$images" --size "$size" --small "$noop_images" --latency "$lat" --targets "$targets"
  log "round trip +${lat} ms: full copies ($images images x $runs runs), then no-op checks ($noop_images images x $runs runs)"
  t=0
  for ((r = 1; r <= runs; r++)); do
    for v in "${full[@]}"; do
      t=$((t + 1))
      dst_var=DST_$t
      dst=${!dst_var}
      dir=$tmp/w-$lat-$r-$v
      start=$(now)
      case $v in
        imgsync-daemon) write_config "$dir" "$dst" daemon; with_disk_peak imgsync_sync "$dir" ;;
        imgsync-daemon-amd64) write_config "$dir" "$dst" daemon linux/amd64; with_disk_peak imgsync_sync "$dir" ;;
        imgsync-imagetools) write_config "$dir" "$dst" imagetools; with_disk_peak imgsync_sync "$dir" ;;
        shell-loop) with_disk_peak shell_loop "$dst" ;;
        skopeo-copy-all) with_disk_peak skopeo_copy "$dst" ;;
      esac
      end=$(now)
      echo "$lat full/$v $(echo "$end - $start" | bc) $(cat "$peak_file")" >>"$results"
    done
  done
  # No-op: M small images already at the target, checked again.
  noop_dst_var=DST_$targets
  noop_dst=${!noop_dst_var}
  engines=(daemon)
  ((buildx)) && engines+=(imagetools)
  for e in "${engines[@]}"; do
    dir=$tmp/noop-$lat-$e
    write_config "$dir" "$noop_dst" "$e" "" small "$noop_images"
    imgsync_sync "$dir" || die "imgsync failed in $dir" # fills the target (not timed)
  done
  if ((skopeo)); then
    write_skopeo_yaml "$tmp/skopeo-$lat.yaml"
    again skopeo_sync_list "$noop_dst" "$tmp/skopeo-$lat.yaml" # fills its copy (not timed)
  fi
  for ((r = 1; r <= runs; r++)); do
    for e in "${engines[@]}"; do
      dir=$tmp/noop-$lat-$e
      start=$(now); imgsync_sync "$dir" || die "imgsync failed in $dir"; end=$(now)
      grep -q '"synced": 0' "$dir/report.json" || die "the no-op run copied something"
      grep -q '"failed": 0' "$dir/report.json" || die "the no-op run failed somewhere"
      echo "$lat noop/imgsync-$e $(echo "$end - $start" | bc)" >>"$results"
      echo "$lat imgsync-$e $(requests_per_entry "$dir/report.json")" >>"$requests"
      # The docker read path of before, for reference.
      start=$(now); imgsync_sync "$dir" --inspect docker || die "imgsync --inspect docker failed in $dir"; end=$(now)
      echo "$lat noop/imgsync-$e-inspect-docker $(echo "$end - $start" | bc)" >>"$results"
    done
    start=$(now); inspect_loop "$noop_dst"; end=$(now)
    echo "$lat noop/inspect-loop $(echo "$end - $start" | bc)" >>"$results"
    if ((buildx)); then
      start=$(now); imagetools_loop "$noop_dst"; end=$(now)
      echo "$lat noop/imagetools-raw-loop $(echo "$end - $start" | bc)" >>"$results"
    fi
    if ((skopeo)); then
      start=$(now); again skopeo_sync_list "$noop_dst" "$tmp/skopeo-$lat.yaml"; end=$(now)
      echo "$lat noop/skopeo-sync $(echo "$end - $start" | bc)" >>"$results"
    fi
  done
  testbed_down
done

# No-op of K entries at the latency: an up-to-date mirror (the same bytes
# pushed to the target by the testbed), imgsync's default read path.
big=""
if ((big_noop > 0)); then
  testbed_up "$tmp/state-big" --small "$big_noop" --mirror-small --latency "$latency"
  dir=$tmp/noop-big
  write_config "$dir" "$DST" daemon "" small "$big_noop"
  imgsync_sync "$dir" || die "imgsync failed in $dir" # warms the page cache, not timed
  big_runs=()
  for ((r = 1; r <= runs; r++)); do
    big_runs+=("$(cd "$dir" && time_rss "$bin" sync --report report.json --state state.json)") || die "the $big_noop-entry no-op failed"
    grep -q '"synced": 0' "$dir/report.json" || die "the big no-op copied something"
    grep -q "\"up_to_date\": $big_noop" "$dir/report.json" || die "the big no-op is not all up to date"
  done
  big_s=$(printf '%s\n' "${big_runs[@]}" | awk '{ print $1 }' | median)
  big_rss=$(printf '%s\n' "${big_runs[@]}" | awk '{ print $2 }' | sort -n | tail -1)
  big_requests=$(requests_per_entry "$dir/report.json")
  big="$big_s $big_rss"
  testbed_down
fi

# Requests per entry against a token-auth registry (anonymous pull tokens, as
# Docker Hub and GHCR give): the e2e harness's token server, 100 entries in 100
# repositories (a measurement kept with the tests, run here).
token_line=$(ENTRIES=$noop_images cargo test --quiet --test e2e read_path::measure_noop_requests_per_entry_over_token_auth -- --ignored --nocapture 2>&1 |
  grep 'token-auth no-op' || echo "token-auth measurement failed")

largest=$((2 * size))
echo
echo "imgsync benchmark, median of $runs runs: full copy of $images two-platform images ($((size >> 20)) MiB layer per platform); no-op check of $noop_images two-platform images"
echo "(docker $(docker version --format '{{.Server.Version}}'), buildx: $( ((buildx)) && echo "$buildx_note" || echo none), skopeo $(skopeo --version | awk '{print $3}'), $(nproc) cores)"
echo "(load average 1/5/15 min: $load_start at the start, $(cut -d' ' -f1-3 /proc/loadavg) at the end: other work on the machine slows every variant)"
for lat in 0 "$latency"; do
  echo
  echo "round trip +${lat} ms"
  printf '%-28s %10s %10s %14s\n' "what" "median s" "ratio" "peak disk MiB"
  base_full=$(awk -v l="$lat" '$1 == l && $2 == "full/shell-loop" { print $3 }' "$results" | median)
  base_noop=$(awk -v l="$lat" '$1 == l && $2 == "noop/inspect-loop" { print $3 }' "$results" | median)
  for v in $(awk -v l="$lat" '$1 == l { print $2 }' "$results" | awk '!s[$0]++'); do
    m=$(awk -v l="$lat" -v v="$v" '$1 == l && $2 == v { print $3 }' "$results" | median)
    peak=$(awk -v l="$lat" -v v="$v" '$1 == l && $2 == v && NF > 3 { print $4 }' "$results" | sort -n | tail -1)
    case $v in full/*) base=$base_full ;; *) base=$base_noop ;; esac
    ratio=$(echo "scale=2; $base / $m" | bc)
    printf '%-28s %10.2f %9sx %14s\n' "$v" "$m" "$ratio" "${peak:+$((peak >> 20))}"
  done
done
echo
for lat in 0 "$latency"; do
  it=$(awk -v l="$lat" '$1 == l && $2 == "noop/imagetools-raw-loop" { print $3 }' "$results" | median)
  sk=$(awk -v l="$lat" '$1 == l && $2 == "noop/skopeo-sync" { print $3 }' "$results" | median)
  for e in daemon imagetools; do
    m=$(awk -v l="$lat" -v v="noop/imgsync-$e" '$1 == l && $2 == v { print $3 }' "$results" | median)
    [[ -n $m && $m != 0 ]] || continue
    line="no-op +${lat} ms, imgsync ($e engine, registry read path): ${m}s"
    [[ -n $it && $it != 0 ]] && line+="; $(echo "scale=1; $it / $m" | bc)x faster than the imagetools --raw loop (${it}s)"
    [[ -n $sk && $sk != 0 ]] && line+="; $(echo "scale=1; $sk / $m" | bc)x faster than skopeo sync (${sk}s)"
    echo "$line"
    q=$(awk -v l="$lat" -v v="imgsync-$e" '$1 == l && $2 == v { $1 = ""; $2 = ""; sub(/^ +/, ""); print }' "$requests" | tail -1)
    [[ -n $q ]] && echo "  registry requests per entry: $q"
  done
done
if [[ -n $big ]]; then
  read -r bs brss <<<"$big"
  echo "no-op of $big_noop two-platform entries at +${latency} ms: ${bs}s median, max RSS $((brss / 1024)) MiB; per entry $big_requests"
fi
echo "$token_line"
echo
echo "ratio = baseline time / this time (full/*: vs full/shell-loop, noop/*: vs noop/inspect-loop); higher is faster."
echo "full/shell-loop copies one platform per image (docker pull/tag/push/rmi, as the popular workflow scripts do),"
echo "as does full/imgsync-daemon-amd64 (--platform=linux/amd64); the others copy both platforms and the index."
echo "Largest entry: $((largest >> 20)) MiB of compressed layers."
