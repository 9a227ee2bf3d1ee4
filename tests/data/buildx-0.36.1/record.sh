#!/usr/bin/env bash
# How the files here were recorded (kept for re-recording with another buildx).
# Needs: the testbed's demo registries (`testbed --demo --state STATE`: SRC holds
# library/web:1.0, team/cache:7, team/tools:latest; DST is empty), an htpasswd
# docker-registry at AUTH, and DOCKER_CONFIG pointing at a config dir whose
# cli-plugins holds the buildx to record. Writes into OUT; afterwards the ports
# were rewritten: SRC -> 5101, DST -> 5103, AUTH -> 5102.
#   STATE=/tmp/x/state AUTH=127.0.0.1:5932 OUT=/tmp/x/fx DOCKER_CONFIG=/tmp/x/cfg bash record.sh
set -uo pipefail
# shellcheck disable=SC1090
. "$STATE"
out=$OUT
rm -rf "$out"; mkdir -p "$out"; cd "$out"
bx() { timeout 120 docker buildx "$@"; }
rec() { # file cmd...: stdout+stderr and exit status
  local f=$1; shift
  "$@" >"$f" 2>&1; echo "exit=$?" >>"$f"
}
raw() { # file ref: exact bytes
  bx imagetools inspect --raw "$2" >"$1" || echo "FAILED raw $2" >&2
}
docker buildx version >version.txt
bx imagetools create --help >create-help.txt 2>&1
bx imagetools inspect --help >inspect-help.txt 2>&1
for pair in multi:library/web:1.0 single:team/cache:7 oci-attest:team/tools:latest; do
  n=${pair%%:*}; r=$SRC/${pair#*:}
  raw inspect-raw-$n.json "$r"
  bx imagetools inspect --format '{{json .}}' "$r" >inspect-json-$n.json
  bx imagetools inspect "$r" >inspect-text-$n.txt
done
arm=$(python3 -c 'import json,sys; m=json.load(open("inspect-raw-multi.json")); print([d["digest"] for d in m["manifests"] if d["platform"]["architecture"]=="arm64"][0])')
raw inspect-raw-multi-arm64-child.json "$SRC/library/web@$arm"
bx imagetools inspect --format '{{json .}}' "$SRC/library/web@$arm" >inspect-json-multi-arm64-child.json
# dry runs
rec create-dry-run-subset.json bx imagetools create --dry-run -t "$DST/fx/sub:v1" "$SRC/library/web@$arm"
rec create-dry-run-subset-prefer-index-false.json bx imagetools create --dry-run --prefer-index=false -t "$DST/fx/sub:v1" "$SRC/library/web@$arm"
multi=$(sha256sum inspect-raw-multi.json | cut -d' ' -f1)
rec create-dry-run-multi.json bx imagetools create --dry-run -t "$DST/fx/copy:v1" "$SRC/library/web@sha256:$multi"
# real creates, with --metadata-file
rec create-ok-multi.txt bx imagetools create --metadata-file "$out/create-metadata-multi.json" -t "$DST/fx/copy:v1" "$SRC/library/web@sha256:$multi"
oci=$(sha256sum inspect-raw-oci-attest.json | cut -d' ' -f1)
rec create-ok-oci-attest.txt bx imagetools create --metadata-file "$out/create-metadata-oci-attest.json" -t "$DST/fx/tools:v1" "$SRC/team/tools@sha256:$oci"
single=$(sha256sum inspect-raw-single.json | cut -d' ' -f1)
rec create-ok-single-carbon-copy.txt bx imagetools create --prefer-index=false --metadata-file "$out/create-metadata-single-carbon-copy.json" -t "$DST/fx/single:v1" "$SRC/team/cache@sha256:$single"
raw inspect-raw-after-create-single-carbon-copy.json "$DST/fx/single:v1"
rec create-ok-single-wraps-index.txt bx imagetools create --metadata-file "$out/create-metadata-single-wraps-index.json" -t "$DST/fx/wrapped:v1" "$SRC/team/cache@sha256:$single"
raw inspect-raw-after-create-single-wraps-index.json "$DST/fx/wrapped:v1"
rec create-ok-subset-arm64.txt bx imagetools create --prefer-index=false --metadata-file "$out/create-metadata-subset-arm64.json" -t "$DST/fx/arm:v1" "$SRC/library/web@$arm"
# errors
rec err-inspect-missing-tag.txt bx imagetools inspect --raw "$SRC/library/web:missing"
rec err-inspect-missing-repo.txt bx imagetools inspect --raw "$SRC/nothere/app:v1"
rec err-inspect-unauthorized.txt bx imagetools inspect --raw "$AUTH/fx/multi:v1"
rec err-create-unauthorized-target.txt bx imagetools create --metadata-file "$out/err-create-unauthorized-metadata.json" -t "$AUTH/fx/copy:v1" "$SRC/library/web@sha256:$multi"
rec err-create-missing-source.txt bx imagetools create -t "$DST/fx/copy:v2" "$SRC/library/web:missing"
rec err-create-unknown-flag.txt bx imagetools create --no-such-flag -t "$DST/fx/copy:v2" "$SRC/library/web:1.0"
ls -la
