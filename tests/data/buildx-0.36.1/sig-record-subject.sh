#!/usr/bin/env bash
# Appended to sig-record.sh (same variables): copying the SUBJECT image v1 (and the index src/app:multi),
# whose referrers-tag-schema fallback tag sha256-<v1 hex> exists in SRC: does buildx bring the referrers along?
set -uo pipefail
# shellcheck disable=SC1090
. "$VARS"
cd "$OUT"
bx() { timeout 120 docker buildx "$@"; }
rec() { local f=$1; shift; printf '$ %s\n' "$*" >"$f"; "$@" >>"$f" 2>&1; echo "exit=$?" >>"$f"; }
ACC='application/vnd.oci.image.manifest.v1+json,application/vnd.oci.image.index.v1+json'
head_m() { printf '%s %s: ' "$1" "$2"; curl -sI -H "Accept: $ACC" "http://$DST/v2/$1/manifests/$2" | tr -d '\r' | awk '/^HTTP/{s=$2} /^Docker-Content-Digest/{d=$2} END{print s, d}'; }
mark() { sl=$(wc -l <"$SRC_LOG"); dl=$(wc -l <"$DST_LOG"); }
access() { { echo "# SRC $SRC"; tail -n +$((sl + 1)) "$SRC_LOG" | grep -E '^[0-9.]+ - - \['
    echo "# DST $DST"; tail -n +$((dl + 1)) "$DST_LOG" | grep -E '^[0-9.]+ - - \['; } | sed -E 's/_state=[^& ]*/_state=…/' >"$1"; }
mark
rec sig-create-subject-v1.txt bx imagetools create --prefer-index=false -t "$DST/dst/subject:v1" "$SRC/src/app@$V1"
access sig-access-subject-v1.txt
{ head_m dst/subject v1; head_m dst/subject "sha256-$HEXV1"; head_m dst/subject "$REF0"; head_m dst/subject "$REF1"
  head_m dst/subject "sha256-$HEXV1.sig"; head_m dst/subject "$SIG"; curl -s "http://$DST/v2/dst/subject/tags/list"; echo; } >sig-create-subject-v1-check.txt 2>&1
mark
rec sig-create-subject-multi.txt bx imagetools create -t "$DST/dst/subjectmulti:multi" "$SRC/src/app@$MULTI"
access sig-access-subject-multi.txt
{ head_m dst/subjectmulti multi; curl -s "http://$DST/v2/dst/subjectmulti/tags/list"; echo; } >sig-create-subject-multi-check.txt 2>&1
