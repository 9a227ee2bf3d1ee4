#!/usr/bin/env bash
# The demo: mirror sample images from one local registry to another, run again
# to show every entry up-to-date (with the imagetools engine, the sample's
# cosign signature copied byte for byte), then pull the mirror back under the
# original names as a server behind a firewall would. Everything it starts (a private Docker
# engine, two registries on 127.0.0.1) is stopped at the end. With the pinned
# buildx beside the clone (../shared/tools, or IMGSYNC_BUILDX_XZ) or a buildx
# of your own, engine auto picks imagetools; otherwise daemon. It says which.
#   sudo scripts/demo.sh            (as root on Debian/Ubuntu)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
SCRIPT_NAME=demo.sh
# shellcheck source=scripts/lib.sh
. scripts/lib.sh
need_tools
engine_up

use_buildx
build_release
testbed_up "$tmp/state" --demo

work=$tmp/demo
mkdir -p "$work"
# The demo's own state file (remembered digest pairs), removed with $tmp: the
# user's ~/.cache/imgsync/state.json never learns the throwaway registries.
export STATE_FILE=$work/state.json
cat >"$work/images.txt" <<LIST
# Sample images seeded into the local source registry $SRC
$SRC/library/web:1.0
--platform=linux/arm64 $SRC/library/web:1.0
$SRC/team/cache:7 => cache
$SRC/team/tools:latest
LIST
cat >"$work/config.env" <<CONF
SYNC_MODE=custom
CUSTOM_REGISTRY=$DST
CUSTOM_NAMESPACE=mirror
CONF

echo
echo "== images.txt"
cat "$work/images.txt"
echo
echo "== first run: imgsync sync"
(cd "$work" && "$bin" sync --report first.json) || die "the first sync failed"
engine=$(grep -o '"engine": *"[a-z]*"' "$work/first.json" | sed 's/.*: *//' | tr -d '"')
echo
echo "== engine used: $engine (engine auto; $buildx_note)"
echo
echo "== second run: nothing changed, so everything is up-to-date"
(cd "$work" && "$bin" sync --report second.json) || die "the second sync failed"
if grep -q '"status": "synced"' "$work/second.json" || grep -q '"status": "failed"' "$work/second.json"; then
  die "the second run was expected to find every entry up-to-date"
fi
echo
echo "== what landed, read back with skopeo"
web=127-0-0-1-${SRC##*:}_library_web # library/web's flat mirror name
for ref in "$web:1.0" "linux_arm64_$web:1.0" cache:7; do
  raw=$(skopeo inspect --tls-verify=false --raw "docker://$DST/mirror/$ref")
  if grep -q '"manifests"' <<<"$raw"; then
    what="index of $(grep -o '"architecture": *"[a-z0-9]*"' <<<"$raw" | sed 's/.*: *//' | tr -d '"' | paste -sd, -)"
  else
    what="single image, $(skopeo inspect --tls-verify=false --config "docker://$DST/mirror/$ref" | grep -o '"architecture": *"[a-z0-9]*"' | sed 's/.*: *//' | tr -d '"')"
  fi
  printf '%s/mirror/%s: %s\n' "$DST" "$ref" "$what"
done
if [[ $engine == imagetools ]]; then
  echo
  echo "== the signature came along: cosign's tag for library/web:1.0, byte for byte"
  sig=$(skopeo inspect --tls-verify=false --raw "docker://$DST/mirror/$web:$WEB_SIGNATURE_TAG" | sha256sum | cut -d' ' -f1)
  [[ sha256:$sig == "$WEB_SIGNATURE_DIGEST" ]] || die "the mirror's $WEB_SIGNATURE_TAG is not the source's signature (sha256:$sig, expected $WEB_SIGNATURE_DIGEST)"
  printf '%s/mirror/%s:%s: %s, as at the source\n' "$DST" "$web" "$WEB_SIGNATURE_TAG" "$WEB_SIGNATURE_DIGEST"
fi
echo
echo "== the server side: imgsync pull brings the mirror back under the original names"
(cd "$work" && "$bin" pull --report pull.json) || die "imgsync pull failed"
docker images --format '{{.Repository}}:{{.Tag}}  {{.ID}}' | grep -F "$SRC/" || die "no image under its original name"
echo
echo "== pull again: every image is already present, nothing is pulled"
(cd "$work" && "$bin" pull --report pull-again.json) || die "the second pull failed"
if grep -q '"status": "pulled"' "$work/pull-again.json"; then
  die "the second pull was expected to find every image present"
fi
echo
signed=""
[[ $engine == imagetools ]] && signed=", the signature came along"
log "demo finished with the $engine engine: the second sync found every entry up-to-date$signed, and pull restored the original names"
