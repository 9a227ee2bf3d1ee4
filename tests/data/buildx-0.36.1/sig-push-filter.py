#!/usr/bin/env python3
"""Which referrers does buildx bring along? Two more referrers of the arm64 child of src/app:multi, each
with only ONE of (artifactType, layer mediaType) being the sigstore bundle type, plus the fallback tag."""
import hashlib, json, sys, urllib.request
REG, SUBJ, SUBJ_SIZE = sys.argv[1], sys.argv[2], int(sys.argv[3])
REPO = "src/app"
def req(m, u, d=None, h=None):
    with urllib.request.urlopen(urllib.request.Request(u, data=d, method=m, headers=h or {})) as r:
        return dict(r.headers)
def dig(b): return "sha256:" + hashlib.sha256(b).hexdigest()
def blob(b):
    loc = req("POST", f"http://{REG}/v2/{REPO}/blobs/uploads/")["Location"]
    if loc.startswith("/"): loc = f"http://{REG}{loc}"
    req("PUT", f"{loc}{'&' if '?' in loc else '?'}digest={dig(b)}", b, {"Content-Type": "application/octet-stream"})
    return dig(b)
OCI_M = "application/vnd.oci.image.manifest.v1+json"
BUNDLE = "application/vnd.dev.sigstore.bundle.v0.3+json"
subject = {"mediaType": OCI_M, "digest": SUBJ, "size": SUBJ_SIZE}
ed = blob(b"{}")
refs = []
for name, at, lmt in [("at-bundle", BUNDLE, "application/octet-stream"), ("layer-bundle", "application/vnd.example.other.v1", BUNDLE)]:
    body = json.dumps({"probe": name}).encode()
    m = {"schemaVersion": 2, "mediaType": OCI_M, "artifactType": at,
         "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": ed, "size": 2},
         "layers": [{"mediaType": lmt, "digest": blob(body), "size": len(body)}],
         "subject": subject, "annotations": {"probe.example/kind": name}}
    b = json.dumps(m, separators=(",", ":")).encode()
    req("PUT", f"http://{REG}/v2/{REPO}/manifests/{dig(b)}", b, {"Content-Type": OCI_M})
    refs.append({"mediaType": OCI_M, "digest": dig(b), "size": len(b), "artifactType": at, "annotations": m["annotations"]})
    print(f"{name}={dig(b)}")
fb = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": refs}, separators=(",", ":")).encode()
req("PUT", f"http://{REG}/v2/{REPO}/manifests/sha256-{SUBJ.split(':')[1]}", fb, {"Content-Type": "application/vnd.oci.image.index.v1+json"})
print(f"fallback={dig(fb)}")
