#!/usr/bin/env bash
# How the sig-* files here were recorded (issue 23: copying cosign signatures and OCI 1.1 referrers).
# Needs: two plain-HTTP docker-registry (distribution 2.8, no referrers API) on SRC and DST with
# their logs in SRC_LOG/DST_LOG (accesslog on), src/app pushed by sig-push.py into SRC
# (`python3 sig-push.py $SRC > VARS`), a reachable docker engine (DOCKER_HOST) and
# DOCKER_CONFIG (or HOME) whose cli-plugins holds the buildx to record.
#   SRC=127.0.0.1:5411 DST=127.0.0.1:5412 VARS=vars.sh SRC_LOG=reg1.log DST_LOG=reg2.log OUT=fx bash sig-record.sh
set -uo pipefail
# shellcheck disable=SC1090
. "$VARS"
out=$OUT; mkdir -p "$out"; cd "$out"
bx() { timeout 120 docker buildx "$@"; }
rec() { # file cmd...: the command line, stdout+stderr and exit status
  local f=$1; shift
  printf '$ %s\n' "$*" >"$f"
  "$@" >>"$f" 2>&1; echo "exit=$?" >>"$f"
}
ACC='application/vnd.oci.image.manifest.v1+json,application/vnd.oci.image.index.v1+json,application/vnd.docker.distribution.manifest.v2+json,application/vnd.docker.distribution.manifest.list.v2+json'
head_m() { # repo ref on DST: status and digest
  printf '%s %s: ' "$1" "$2"
  curl -sI -H "Accept: $ACC" "http://$DST/v2/$1/manifests/$2" | tr -d '\r' | awk '/^HTTP/{s=$2} /^Docker-Content-Digest/{d=$2} END{print s, d}'
}
head_b() { printf 'blob %s %s: ' "$1" "$2"; curl -sI "http://$DST/v2/$1/blobs/$2" | head -1 | tr -d '\r'; }
get_m() { curl -s -H "Accept: $ACC" "http://$DST/v2/$1/manifests/$2"; }
blobs_of() { python3 -c 'import json,sys; m=json.load(sys.stdin); print(m["config"]["digest"]); [print(l["digest"]) for l in m.get("layers",[])]'; }
srcraw() { curl -s -H "Accept: $ACC" "http://$SRC/v2/src/app/manifests/$1"; }
mark() { sl=$(wc -l <"$SRC_LOG"); dl=$(wc -l <"$DST_LOG"); }
access() { # file: the access-log lines of both registries since mark
  { echo "# SRC $SRC"; tail -n +$((sl + 1)) "$SRC_LOG" | grep -E '^[0-9.]+ - - \['
    echo "# DST $DST"; tail -n +$((dl + 1)) "$DST_LOG" | grep -E '^[0-9.]+ - - \['; } | sed -E 's/_state=[^& ]*/_state=…/' >"$1"
}
{ echo "SRC=$SRC DST=$DST"; cat "$VARS"; } >sig-src-digests.txt
srcraw "$SIG" >sig-src-raw-cosign-sig.json
srcraw "$REF0" >sig-src-raw-referrer-sbom.json
srcraw "$REF1" >sig-src-raw-referrer-bundle.json
srcraw "$FALLBACK" >sig-src-raw-fallback-index.json

# (a) cosign signature manifest, carbon copy to a tag
mark
rec sig-create-carbon-copy.txt bx imagetools create --prefer-index=false -t "$DST/dst/app:sha256-$HEXV1.sig" "$SRC/src/app@$SIG"
access sig-access-carbon-copy.txt
get_m dst/app "sha256-$HEXV1.sig" >sig-after-carbon-copy-raw.json
{ echo "src digest: $SIG"; echo "dst bytes sha256: sha256:$(sha256sum <sig-after-carbon-copy-raw.json | cut -d' ' -f1)"
  head_m dst/app "sha256-$HEXV1.sig"
  for b in $(blobs_of <sig-src-raw-cosign-sig.json); do head_b dst/app "$b"; done
  echo "skopeo inspect --raw --tls-verify=false docker://$DST/dst/app:sha256-$HEXV1.sig | sha256sum:"
  skopeo inspect --raw --tls-verify=false "docker://$DST/dst/app:sha256-$HEXV1.sig" | sha256sum
} >sig-after-carbon-copy-check.txt 2>&1
mark
rec sig-create-carbon-copy-metadata.txt bx imagetools create --prefer-index=false --metadata-file "$PWD/sig-create-carbon-copy-metadata.json" -t "$DST/dst/app:sha256-$HEXV1.sig" "$SRC/src/app@$SIG"
access sig-access-carbon-copy-metadata.txt
# the signature without --prefer-index=false: wrapped in a new index (platform from its empty config)
rec sig-create-dry-run-sig-wrapped.txt bx imagetools create --dry-run -t "$DST/dst/app:sha256-$HEXV1.sig" "$SRC/src/app@$SIG"

# (b) OCI 1.1 referrers (artifactType, subject, empty config), carbon copy to a tag in a fresh repo
for n in 0 1; do
  name=$([[ $n == 0 ]] && echo sbom || echo bundle); d=REF$n; d=${!d}
  mark
  rec sig-create-referrer-$name.txt bx imagetools create --prefer-index=false --metadata-file "$PWD/sig-create-referrer-$name-metadata.json" -t "$DST/dst/refcopy:$name" "$SRC/src/app@$d"
  access sig-access-referrer-$name.txt
  get_m dst/refcopy "$name" >sig-after-referrer-$name-raw.json
  { echo "src digest: $d"; echo "dst bytes sha256: sha256:$(sha256sum <sig-after-referrer-$name-raw.json | cut -d' ' -f1)"
    head_m dst/refcopy "$name"; head_m dst/refcopy "$d"
    for b in $(blobs_of <sig-src-raw-referrer-$name.json); do head_b dst/refcopy "$b"; done
  } >sig-after-referrer-$name-check.txt 2>&1
  rec sig-create-dry-run-referrer-$name-wrapped.txt bx imagetools create --dry-run -t "$DST/dst/refcopy:$name" "$SRC/src/app@$d"
done

# (c) the referrers-tag-schema fallback index, one index source
mark
rec sig-create-fallback-index.txt bx imagetools create --metadata-file "$PWD/sig-create-fallback-index-metadata.json" -t "$DST/dst/app:sha256-$HEXV1" "$SRC/src/app@$FALLBACK"
access sig-access-fallback-index.txt
get_m dst/app "sha256-$HEXV1" >sig-after-fallback-index-raw.json
{ echo "src digest: $FALLBACK"; echo "dst bytes sha256: sha256:$(sha256sum <sig-after-fallback-index-raw.json | cut -d' ' -f1)"
  head_m dst/app "sha256-$HEXV1"
  echo "children by digest in dst/app:"
  head_m dst/app "$REF0"; head_m dst/app "$REF1"
  for b in $(blobs_of <sig-src-raw-referrer-sbom.json) $(blobs_of <sig-src-raw-referrer-bundle.json); do head_b dst/app "$b"; done
  echo "subject $V1 in dst/app:"; head_m dst/app "$V1"
} >sig-after-fallback-index-check.txt 2>&1

# (d) a new fallback index from full JSON descriptors of referrers in the target repo
mark
rec sig-dry-run-merge.txt bx imagetools create --dry-run -t "$DST/dst/app:sha256-$HEXV1" "$REF0_FULL" "$REF1_FULL"
access sig-access-dry-run-merge.txt
sed -e '1d' -e '/^exit=/d' sig-dry-run-merge.txt >sig-dry-run-merge.json
rec sig-dry-run-merge-one.txt bx imagetools create --dry-run -t "$DST/dst/app:sha256-$HEXV1" "$REF0_FULL"
mark
rec sig-create-merge.txt bx imagetools create --metadata-file "$PWD/sig-create-merge-metadata.json" -t "$DST/dst/app:sha256-$HEXV1" "$REF0_FULL" "$REF1_FULL"
access sig-access-merge.txt
get_m dst/app "sha256-$HEXV1" >sig-after-merge-raw.json
{ echo "dry-run bytes sha256: sha256:$(sha256sum <sig-dry-run-merge.json | cut -d' ' -f1)"
  echo "dst bytes sha256: sha256:$(sha256sum <sig-after-merge-raw.json | cut -d' ' -f1)"
  echo "src fallback: $FALLBACK"; head_m dst/app "sha256-$HEXV1"; } >sig-after-merge-check.txt 2>&1

# (e) a digest as the target
mark
rec sig-push-by-digest.txt bx imagetools create --prefer-index=false -t "$DST/dst/bydigest@$REF0" "$SRC/src/app@$REF0"
access sig-access-push-by-digest.txt
{ head_m dst/bydigest "$REF0"; curl -s "http://$DST/v2/dst/bydigest/tags/list"; echo; } >sig-push-by-digest-check.txt 2>&1
rec sig-push-by-digest-existing.txt bx imagetools create --prefer-index=false -t "$DST/dst/app@$REF0" "$SRC/src/app@$REF0"
ls -la
