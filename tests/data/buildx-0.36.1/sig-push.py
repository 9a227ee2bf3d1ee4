#!/usr/bin/env python3
"""Push the probe's test content into REG/src/app via the registry HTTP API. Prints digests as shell vars."""
import hashlib, json, sys, urllib.request, base64
REG = sys.argv[1]  # e.g. 127.0.0.1:5411
REPO = "src/app"
def req(method, url, data=None, headers=None):
    r = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(r) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as e:
        raise SystemExit(f"{method} {url}: {e.code} {e.read()!r}")
def dig(b): return "sha256:" + hashlib.sha256(b).hexdigest()
def blob(b):
    d = dig(b)
    st, h, _ = req("POST", f"http://{REG}/v2/{REPO}/blobs/uploads/")
    loc = h["Location"]
    if loc.startswith("/"): loc = f"http://{REG}{loc}"
    sep = "&" if "?" in loc else "?"
    req("PUT", f"{loc}{sep}digest={d}", data=b, headers={"Content-Type": "application/octet-stream"})
    return d
def manifest(ref, obj, mt):
    b = json.dumps(obj, separators=(",", ":")).encode() if not isinstance(obj, bytes) else obj
    req("PUT", f"http://{REG}/v2/{REPO}/manifests/{ref}", data=b, headers={"Content-Type": mt})
    return {"mediaType": mt, "digest": dig(b), "size": len(b)}, b
OCI_M = "application/vnd.oci.image.manifest.v1+json"
OCI_I = "application/vnd.oci.image.index.v1+json"
out = {}
def image(arch, tag=None):
    layer = f"layer for {arch}\n".encode()
    ld = blob(layer)
    cfg = json.dumps({"architecture": arch, "os": "linux", "rootfs": {"type": "layers", "diff_ids": [ld]}, "config": {}}).encode()
    cd = blob(cfg)
    m = {"schemaVersion": 2, "mediaType": OCI_M,
         "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": len(cfg)},
         "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": ld, "size": len(layer)}]}
    b = json.dumps(m, separators=(",", ":")).encode()
    desc, _ = manifest(tag or dig(b), b, OCI_M)
    return desc
v1 = image("amd64", "v1"); out["V1"] = v1
a = image("amd64"); r = image("arm64")
idx = {"schemaVersion": 2, "mediaType": OCI_I, "manifests": [
    dict(a, platform={"architecture": "amd64", "os": "linux"}),
    dict(r, platform={"architecture": "arm64", "os": "linux"})]}
out["MULTI"], _ = manifest("multi", idx, OCI_I)
hexv1 = v1["digest"].split(":")[1]
# cosign-style signature
payload = json.dumps({"critical": {"identity": {"docker-reference": f"{REG}/{REPO}"},
                                   "image": {"docker-manifest-digest": v1["digest"]},
                                   "type": "cosign container image signature"}, "optional": None}).encode()
pd = blob(payload)
scfg = json.dumps({"architecture": "", "created": "0001-01-01T00:00:00Z", "history": [{"created": "0001-01-01T00:00:00Z"}],
                   "os": "", "rootfs": {"type": "layers", "diff_ids": [pd]}, "config": {}}).encode()
scd = blob(scfg)
sig = {"schemaVersion": 2, "mediaType": OCI_M,
       "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "size": len(scfg), "digest": scd},
       "layers": [{"mediaType": "application/vnd.dev.cosign.simplesigning.v1+json", "size": len(payload), "digest": pd,
                   "annotations": {"dev.cosignproject.cosign/signature": base64.b64encode(b"not-a-real-signature-" + hexv1[:8].encode()).decode()}}]}
out["SIG"], _ = manifest(f"sha256-{hexv1}.sig", sig, OCI_M)
# OCI 1.1 referrers
empty = b"{}"
ed = blob(empty)
refs = []
for n, at in enumerate(["application/vnd.example.sbom.v1", "application/vnd.dev.sigstore.bundle.v0.3+json"]):
    body = json.dumps({"probe": n, "artifactType": at}).encode()
    bd = blob(body)
    ann = {"org.opencontainers.image.created": "2026-12-04T00:00:00Z", "probe.example/kind": at}
    m = {"schemaVersion": 2, "mediaType": OCI_M, "artifactType": at,
         "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": ed, "size": 2},
         "layers": [{"mediaType": at if "bundle" in at else "application/spdx+json", "digest": bd, "size": len(body)}],
         "subject": v1, "annotations": ann}
    b = json.dumps(m, separators=(",", ":")).encode()
    desc, _ = manifest(dig(b), b, OCI_M)
    out[f"REF{n}"] = desc
    refs.append(dict(desc, artifactType=at, annotations=ann))
fb = {"schemaVersion": 2, "mediaType": OCI_I, "manifests": refs}
out["FALLBACK"], _ = manifest(f"sha256-{hexv1}", fb, OCI_I)
out["HEXV1"] = hexv1
for k, v in out.items():
    if isinstance(v, dict):
        print(f"{k}={v['digest']}"); print(f"{k}_DESC='{json.dumps(v, separators=(',', ':'))}'")
    else:
        print(f"{k}={v}")
print(f"REF0_FULL='{json.dumps(refs[0], separators=(',', ':'))}'")
print(f"REF1_FULL='{json.dumps(refs[1], separators=(',', ':'))}'")
