#!/usr/bin/env bash
# After sig-push-filter.py: copy the arm64 child (the subject) and see which of its two referrers come along.
set -uo pipefail
cd "$OUT"
ARM=sha256:72da9f0730a8da552f11398bfc7e6090621e8aebd55b75b49ba83190d39f4336
AT_BUNDLE=$1 LAYER_BUNDLE=$2
ACC='application/vnd.oci.image.manifest.v1+json,application/vnd.oci.image.index.v1+json'
head_m() { printf '%s %s: ' "$1" "$2"; curl -sI -H "Accept: $ACC" "http://$DST/v2/$1/manifests/$2" | tr -d '\r' | awk '/^HTTP/{s=$2} /^Docker-Content-Digest/{d=$2} END{print s, d}'; }
sl=$(wc -l <"$SRC_LOG"); dl=$(wc -l <"$DST_LOG")
f=sig-create-subject-filter.txt
printf '$ %s\n' "docker buildx imagetools create --prefer-index=false -t $DST/dst/subject2:arm64 $SRC/src/app@$ARM" >$f
timeout 120 docker buildx imagetools create --prefer-index=false -t "$DST/dst/subject2:arm64" "$SRC/src/app@$ARM" >>$f 2>&1; echo "exit=$?" >>$f
{ echo "# SRC $SRC"; tail -n +$((sl + 1)) "$SRC_LOG" | grep -E '^[0-9.]+ - - \['
  echo "# DST $DST"; tail -n +$((dl + 1)) "$DST_LOG" | grep -E '^[0-9.]+ - - \['; } | sed -E 's/_state=[^& ]*/_state=…/' >sig-access-subject-filter.txt
{ echo "artifactType=bundle, layer=octet-stream:"; head_m dst/subject2 "$AT_BUNDLE"
  echo "artifactType=example.other, layer=bundle:"; head_m dst/subject2 "$LAYER_BUNDLE"
  echo "fallback tag:"; head_m dst/subject2 "sha256-${ARM#sha256:}"
  curl -s "http://$DST/v2/dst/subject2/tags/list"; echo; } >sig-create-subject-filter-check.txt
