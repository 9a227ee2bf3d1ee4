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
# come from the report. Every second no-op image is signed (a cosign `.sig`
# tag for its top digest), and the imagetools fill copies the signatures, so
# the target holds them too; `noop/imgsync-imagetools-signatures-off` is the
# same no-op with `--signatures off`, for the cost of looking for them. Then a
# no-op of K (default 1,000) two-platform entries at MS, half of them signed on
# both sides, with signatures on and off: wall time and max RSS.
# --noop-only skips the full copies.
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

# Registry requests per entry of a report, as text, and its signature counts.
requests_per_entry() {
  python3 -c 'import json, sys
r = json.load(open(sys.argv[1]))
n = max(len(r["entries"]), 1)
s = r["summary"]
q = s["requests"]
line = "%.2f HEAD, %.2f GET, %.2f token = %.2f requests" % (q["head"] / n, q["get"] / n, q["token"] / n, (q["head"] + q["get"] + q["token"]) / n)
line += "; docker calls %d" % sum(e.get("docker_calls", 0) for e in r["entries"])
sig = s.get("signatures")
line += "; signatures: " + (", ".join("%s %d" % kv for kv in sig.items()) if sig else "none looked for")
if s.get("signatures_not_copied"):
    line += " (" + s["signatures_not_copied"] + ")"
print(line)' "$1"
}

# Checks a no-op report: nothing synced or failed, every entry up to date, and
# the signatures as expected: "on N" (N found, all up to date at the target,
# none copied or failed) or "off" (none looked for).
check_noop() { # report entries on N | off
  python3 -c 'import json, sys
r = json.load(open(sys.argv[1]))
s = r["summary"]
n = int(sys.argv[2])
problems = []
if s["synced"] or s["failed"] or s["up_to_date"] != n:
    problems.append("synced %d, failed %d, up to date %d of %d" % (s["synced"], s["failed"], s["up_to_date"], n))
sig = s.get("signatures")
if sys.argv[3] == "on":
    want = {"found": int(sys.argv[4]), "copied": 0, "up_to_date": int(sys.argv[4]), "failed": 0}
    if sig != want:
        problems.append("signatures %s, expected %s" % (sig, want))
elif sig and sig.get("found"):
    problems.append("signatures %s, expected none looked for" % sig)
if problems:
    sys.exit(sys.argv[1] + ": not the expected no-op: " + "; ".join(problems))' "$@"
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

signed=$(((noop_images + 1) / 2)) # app0, app2, …: the testbed's --sign-small
sig_args() { [[ $1 == *-signatures-off ]] && echo --signatures off; true; }

results=$tmp/results # lines: latency variant seconds [peak-bytes]
: >"$results"
requests=$tmp/requests # lines: latency variant head get token total (per entry)
: >"$requests"

for lat in 0 "$latency"; do
  testbed_up "$tmp/state-$lat" --images "$images" --size "$size" --small "$noop_images" --sign-small --latency "$lat" --targets "$targets"
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
  # The imagetools engine fills first when there is buildx (the source's
  # bytes, and the signatures of every second image; a daemon-engine copy
  # would count as up to date under its new digests, with no signatures),
  # then the others find it up to date: what every measured run finds there.
  engines=(daemon)
  ((buildx)) && engines+=(imagetools imagetools-signatures-off)
  for e in $( ((buildx)) && echo imagetools) "${engines[@]}"; do
    dir=$tmp/noop-$lat-$e
    write_config "$dir" "$noop_dst" "${e%-signatures-off}" "" small "$noop_images"
    # shellcheck disable=SC2046
    imgsync_sync "$dir" $(sig_args "$e") || die "imgsync failed in $dir" # fills the target (not timed)
  done
  if ((buildx)); then
    # The fill copied the signatures: a no-op finds them all up to date.
    imgsync_sync "$tmp/noop-$lat-imagetools" || die "imgsync failed in $tmp/noop-$lat-imagetools"
    check_noop "$tmp/noop-$lat-imagetools/report.json" "$noop_images" on "$signed" || die "the target does not hold the signatures"
  fi
  if ((skopeo)); then
    write_skopeo_yaml "$tmp/skopeo-$lat.yaml"
    again skopeo_sync_list "$noop_dst" "$tmp/skopeo-$lat.yaml" # fills its copy (not timed)
  fi
  for ((r = 1; r <= runs; r++)); do
    for e in "${engines[@]}"; do
      dir=$tmp/noop-$lat-$e
      # shellcheck disable=SC2046
      start=$(now); imgsync_sync "$dir" $(sig_args "$e") || die "imgsync failed in $dir"; end=$(now)
      case $e in
        imagetools) check_noop "$dir/report.json" "$noop_images" on "$signed" || die "not a no-op: $dir" ;;
        *) check_noop "$dir/report.json" "$noop_images" off || die "not a no-op: $dir" ;;
      esac
      echo "$lat noop/imgsync-$e $(echo "$end - $start" | bc)" >>"$results"
      echo "$lat imgsync-$e $(requests_per_entry "$dir/report.json")" >>"$requests"
      [[ $e == *-signatures-off ]] && continue
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
# pushed to the target by the testbed, and every second image's signature on
# both sides), imgsync's default read path: the imagetools engine (what auto
# picks when buildx answers) with signatures on, and off beside it; the daemon
# engine (which looks for none) without buildx.
big_variants=()
if ((big_noop > 0)); then
  testbed_up "$tmp/state-big" --small "$big_noop" --mirror-small --sign-small --latency "$latency"
  big_signed=$(((big_noop + 1) / 2))
  if ((buildx)); then big_variants=(imagetools imagetools-signatures-off); else big_variants=(daemon); fi
  for e in "${big_variants[@]}"; do
    dir=$tmp/noop-big-$e
    write_config "$dir" "$DST" "${e%-signatures-off}" "" small "$big_noop"
    # shellcheck disable=SC2046
    imgsync_sync "$dir" $(sig_args "$e") || die "imgsync failed in $dir" # warms the page cache, not timed
  done
  for ((r = 1; r <= runs; r++)); do
    for e in "${big_variants[@]}"; do
      dir=$tmp/noop-big-$e
      # shellcheck disable=SC2046
      out=$(cd "$dir" && time_rss "$bin" sync --report report.json --state state.json $(sig_args "$e")) || die "the $big_noop-entry no-op failed ($e)"
      echo "$e $out" >>"$tmp/big"
      if [[ $e == imagetools ]]; then
        check_noop "$dir/report.json" "$big_noop" on "$big_signed" || die "the big no-op is not all up to date"
      else
        check_noop "$dir/report.json" "$big_noop" off || die "the big no-op is not all up to date"
      fi
    done
  done
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
  printf '%-40s %10s %10s %14s\n' "what" "median s" "ratio" "peak disk MiB"
  base_full=$(awk -v l="$lat" '$1 == l && $2 == "full/shell-loop" { print $3 }' "$results" | median)
  base_noop=$(awk -v l="$lat" '$1 == l && $2 == "noop/inspect-loop" { print $3 }' "$results" | median)
  for v in $(awk -v l="$lat" '$1 == l { print $2 }' "$results" | awk '!s[$0]++'); do
    m=$(awk -v l="$lat" -v v="$v" '$1 == l && $2 == v { print $3 }' "$results" | median)
    peak=$(awk -v l="$lat" -v v="$v" '$1 == l && $2 == v && NF > 3 { print $4 }' "$results" | sort -n | tail -1)
    case $v in full/*) base=$base_full ;; *) base=$base_noop ;; esac
    ratio=$(echo "scale=2; $base / $m" | bc)
    printf '%-40s %10.2f %9sx %14s\n' "$v" "$m" "$ratio" "${peak:+$((peak >> 20))}"
  done
done
echo
for lat in 0 "$latency"; do
  it=$(awk -v l="$lat" '$1 == l && $2 == "noop/imagetools-raw-loop" { print $3 }' "$results" | median)
  sk=$(awk -v l="$lat" '$1 == l && $2 == "noop/skopeo-sync" { print $3 }' "$results" | median)
  for e in daemon imagetools imagetools-signatures-off; do
    m=$(awk -v l="$lat" -v v="noop/imgsync-$e" '$1 == l && $2 == v { print $3 }' "$results" | median)
    [[ -n $m && $m != 0 ]] || continue
    line="no-op +${lat} ms, imgsync ($e engine, registry read path): ${m}s"
    [[ -n $it && $it != 0 ]] && line+="; $(echo "scale=1; $it / $m" | bc)x faster than the imagetools --raw loop (${it}s)"
    [[ -n $sk && $sk != 0 ]] && line+="; $(echo "scale=1; $sk / $m" | bc)x faster than skopeo sync (${sk}s)"
    echo "$line"
    q=$(awk -v l="$lat" -v v="imgsync-$e" '$1 == l && $2 == v { $1 = ""; $2 = ""; sub(/^ +/, ""); print }' "$requests" | tail -1)
    [[ -n $q ]] && echo "  registry requests per entry: $q"
  done
  on=$(awk -v l="$lat" '$1 == l && $2 == "noop/imgsync-imagetools" { print $3 }' "$results" | median)
  off=$(awk -v l="$lat" '$1 == l && $2 == "noop/imgsync-imagetools-signatures-off" { print $3 }' "$results" | median)
  [[ -n $on && -n $off && $off != 0 ]] &&
    echo "  signatures on ($signed of $noop_images images signed) take $(echo "scale=2; $on / $off" | bc)x the time of --signatures off at +${lat} ms (${on}s against ${off}s)"
done
for e in "${big_variants[@]}"; do
  bs=$(awk -v e="$e" '$1 == e { print $2 }' "$tmp/big" | median)
  brss=$(awk -v e="$e" '$1 == e { print $3 }' "$tmp/big" | sort -n | tail -1)
  echo "no-op of $big_noop two-platform entries at +${latency} ms, imgsync-$e: ${bs}s median of $runs, max RSS $((brss / 1024)) MiB; per entry $(requests_per_entry "$tmp/noop-big-$e/report.json")"
done
echo "$token_line"
echo
echo "ratio = baseline time / this time (full/*: vs full/shell-loop, noop/*: vs noop/inspect-loop); higher is faster."
echo "full/shell-loop copies one platform per image (docker pull/tag/push/rmi, as the popular workflow scripts do),"
echo "as does full/imgsync-daemon-amd64 (--platform=linux/amd64); the others copy both platforms and the index."
echo "Largest entry: $((largest >> 20)) MiB of compressed layers."
