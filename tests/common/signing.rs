//! Signatures, attestations and referrers as cosign and the OCI distribution
//! spec put them into a registry (issue 23), built by hand through the
//! registry HTTP API, and the check `cosign verify --key` makes.
//!
//! - [`TestKey`]: an ECDSA P-256 key generated with `ring` at test time
//!   ([`test_key`] is one per test process).
//! - [`sign_image`]: a cosign signature manifest under `sha256-<hex>.sig`:
//!   one `application/vnd.dev.cosign.simplesigning.v1+json` layer (the
//!   simple-signing payload) whose `dev.cosignproject.cosign/signature`
//!   annotation is the base64 ASN.1 DER ECDSA-P256-SHA256 signature of the
//!   payload bytes, and a config like the one cosign writes (go-containerregistry's
//!   empty image plus that layer: empty architecture and os, the payload's
//!   sha256 as its diff_id).
//! - [`attest_image`]: `sha256-<hex>.att`, one in-toto DSSE envelope layer.
//! - [`attach_sbom`]: `sha256-<hex>.sbom`, one SPDX layer (`cosign attach sbom`).
//! - [`push_referrer`] + [`write_fallback_index`]: an OCI artifact with a
//!   `subject`, and the referrers tag schema's fallback tag `sha256-<hex>`
//!   (an OCI index of the referrers' descriptors, with artifactType and
//!   annotations), for a registry without the referrers API (distribution 2.8).
//! - [`verify_signature`]: fetch the `.sig` of an image's digest, its payload,
//!   verify the annotation's signature with the public key, and check that the
//!   payload names that very digest.

use std::sync::OnceLock;

use ring::rand::SystemRandom;
use ring::signature::{EcdsaKeyPair, KeyPair, UnparsedPublicKey, ECDSA_P256_SHA256_ASN1, ECDSA_P256_SHA256_ASN1_SIGNING};
use serde_json::{json, Value};

use super::{sha256_digest, Registry, OCI_CONFIG, OCI_INDEX, OCI_MANIFEST};

pub const SIMPLE_SIGNING: &str = "application/vnd.dev.cosign.simplesigning.v1+json";
pub const DSSE_ENVELOPE: &str = "application/vnd.dsse.envelope.v1+json";
pub const SPDX_JSON: &str = "text/spdx+json";
pub const OCI_EMPTY: &str = "application/vnd.oci.empty.v1+json";
pub const COSIGN_SIGNATURE_ANNOTATION: &str = "dev.cosignproject.cosign/signature";
/// The empty JSON object, the OCI spec's empty descriptor blob.
pub const EMPTY_JSON: &[u8] = b"{}";

/// An ECDSA P-256 key pair (PKCS#8 made by ring at test time).
pub struct TestKey {
    pair: EcdsaKeyPair,
    rng: SystemRandom,
}

impl TestKey {
    pub fn generate() -> TestKey {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng).expect("generate a P-256 key");
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8.as_ref(), &rng).expect("load the P-256 key");
        TestKey { pair, rng }
    }

    /// The public key: an uncompressed SEC1 point (what ring verifies with).
    pub fn public_key(&self) -> Vec<u8> {
        self.pair.public_key().as_ref().to_vec()
    }

    /// ASN.1 DER ECDSA-P256-SHA256 signature of `message`.
    pub fn sign(&self, message: &[u8]) -> Vec<u8> {
        self.pair.sign(&self.rng, message).expect("sign").as_ref().to_vec()
    }
}

/// The key the helpers sign with when none is given.
pub fn test_key() -> &'static TestKey {
    static KEY: OnceLock<TestKey> = OnceLock::new();
    KEY.get_or_init(TestKey::generate)
}

pub fn b64(data: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(data)
}

fn unb64(text: &str) -> Result<Vec<u8>, String> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.decode(text).map_err(|e| format!("bad base64 ({e}): {text:?}"))
}

/// `sha256:abc…` -> `sha256-abc…`: the referrers fallback tag, and the stem of cosign's tags.
pub fn fallback_tag(digest: &str) -> String {
    digest.replacen(':', "-", 1)
}

/// `sha256-<hex>.sig`, `.att`, `.sbom` for `suffix` = "sig", "att", "sbom".
pub fn cosign_tag(digest: &str, suffix: &str) -> String {
    format!("{}.{suffix}", fallback_tag(digest))
}

/// Whether `tag` is one imgsync must treat as a signature or fallback tag.
pub fn is_signature_tag(tag: &str) -> bool {
    let Some(rest) = tag.strip_prefix("sha256-") else { return false };
    let hex = rest.split('.').next().unwrap();
    hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit())
}

/// A manifest pushed by these helpers.
#[derive(Clone, Debug)]
pub struct Pushed {
    pub repo: String,
    /// The tag it was pushed under (`None`: by digest only).
    pub tag: Option<String>,
    pub digest: String,
    pub media_type: String,
    pub bytes: Vec<u8>,
    pub json: Value,
}

impl Pushed {
    /// Its OCI descriptor (mediaType, digest, size; artifactType and annotations when it has them).
    pub fn descriptor(&self) -> Value {
        let mut d = json!({"mediaType": self.media_type, "digest": self.digest, "size": self.bytes.len()});
        if let Some(t) = self.json.get("artifactType") {
            d["artifactType"] = t.clone();
        }
        if let Some(a) = self.json.get("annotations") {
            d["annotations"] = a.clone();
        }
        d
    }
}

/// The descriptor of `repo:reference` as the registry serves it (mediaType, digest, size).
pub fn descriptor_of(reg: &Registry, repo: &str, reference: &str) -> Value {
    let m = reg.manifest(repo, reference).unwrap_or_else(|| panic!("{repo}:{reference} is not in {}", reg.host()));
    json!({"mediaType": m.media_type, "digest": m.digest, "size": m.bytes.len()})
}

/// The simple-signing payload cosign signs, byte for byte as cosign writes it
/// (Go's encoding/json: keys in struct order, no spaces).
pub fn simple_signing_payload(docker_reference: &str, image_digest: &str) -> Vec<u8> {
    format!(
        r#"{{"critical":{{"identity":{{"docker-reference":{}}},"image":{{"docker-manifest-digest":{}}},"type":"cosign container image signature"}},"optional":null}}"#,
        Value::from(docker_reference),
        Value::from(image_digest)
    )
    .into_bytes()
}

/// go-containerregistry's `empty.Image` with `layers` appended, as cosign
/// pushes it: empty architecture and os, zero created times, one history
/// entry per layer, the layers' (uncompressed = raw) sha256 as diff_ids.
fn cosign_config(layers: &[&[u8]]) -> Vec<u8> {
    let diff_ids: Vec<String> = layers.iter().map(|l| sha256_digest(l)).collect();
    let history: Vec<Value> = layers.iter().map(|_| json!({"created": "0001-01-01T00:00:00Z"})).collect();
    serde_json::to_vec(&json!({
        "architecture": "",
        "created": "0001-01-01T00:00:00Z",
        "history": history,
        "os": "",
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "config": {},
    }))
    .unwrap()
}

/// Pushes a cosign-style single-layer manifest under `tag`.
fn push_cosign_manifest(reg: &Registry, repo: &str, tag: &str, layer_type: &str, layer: &[u8], annotations: Value) -> Pushed {
    let layer_digest = reg.put_blob(repo, layer);
    let config = cosign_config(&[layer]);
    let config_digest = reg.put_blob(repo, &config);
    let mut layer_desc = json!({"mediaType": layer_type, "size": layer.len(), "digest": layer_digest});
    if annotations.as_object().is_some_and(|a| !a.is_empty()) {
        layer_desc["annotations"] = annotations;
    }
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "size": config.len(), "digest": config_digest},
        "layers": [layer_desc],
    });
    let bytes = serde_json::to_vec(&manifest).unwrap();
    let digest = reg.put_manifest(repo, tag, OCI_MANIFEST, &bytes);
    Pushed { repo: repo.to_string(), tag: Some(tag.to_string()), digest, media_type: OCI_MANIFEST.to_string(), bytes, json: manifest }
}

/// `cosign sign --key` of `repo@image_digest`, with the test key: the
/// signature manifest under `sha256-<hex>.sig`. `docker_reference` is what
/// cosign writes into the payload (the repository, e.g. `HOST/lib/app`).
pub fn sign_image(reg: &Registry, repo: &str, image_digest: &str, docker_reference: &str) -> Pushed {
    sign_image_with(test_key(), reg, repo, image_digest, docker_reference)
}

pub fn sign_image_with(key: &TestKey, reg: &Registry, repo: &str, image_digest: &str, docker_reference: &str) -> Pushed {
    let payload = simple_signing_payload(docker_reference, image_digest);
    let signature = b64(&key.sign(&payload));
    push_cosign_manifest(
        reg,
        repo,
        &cosign_tag(image_digest, "sig"),
        SIMPLE_SIGNING,
        &payload,
        json!({COSIGN_SIGNATURE_ANNOTATION: signature}),
    )
}

/// DSSE's pre-authentication encoding, what a DSSE signature signs.
fn dsse_pae(payload_type: &str, payload: &[u8]) -> Vec<u8> {
    let mut out = format!("DSSEv1 {} {} {} ", payload_type.len(), payload_type, payload.len()).into_bytes();
    out.extend_from_slice(payload);
    out
}

/// `cosign attest --key` of `repo@image_digest`: an in-toto statement in a
/// DSSE envelope (signed with the test key), under `sha256-<hex>.att`.
/// `predicate` makes the content unique.
pub fn attest_image(reg: &Registry, repo: &str, image_digest: &str, predicate: &str) -> Pushed {
    let statement = serde_json::to_vec(&json!({
        "_type": "https://in-toto.io/Statement/v0.1",
        "predicateType": "https://cosign.sigstore.dev/attestation/v1",
        "subject": [{"name": repo, "digest": {"sha256": image_digest.trim_start_matches("sha256:")}}],
        "predicate": {"Data": predicate, "Timestamp": "2024-01-02T03:04:05Z"},
    }))
    .unwrap();
    let payload_type = "application/vnd.in-toto+json";
    let sig = test_key().sign(&dsse_pae(payload_type, &statement));
    let envelope = serde_json::to_vec(&json!({
        "payloadType": payload_type,
        "payload": b64(&statement),
        "signatures": [{"keyid": "", "sig": b64(&sig)}],
    }))
    .unwrap();
    push_cosign_manifest(
        reg,
        repo,
        &cosign_tag(image_digest, "att"),
        DSSE_ENVELOPE,
        &envelope,
        json!({COSIGN_SIGNATURE_ANNOTATION: "", "predicateType": "https://cosign.sigstore.dev/attestation/v1"}),
    )
}

/// `cosign attach sbom`: an SPDX document under `sha256-<hex>.sbom`.
pub fn attach_sbom(reg: &Registry, repo: &str, image_digest: &str, name: &str) -> Pushed {
    let sbom = serde_json::to_vec(&json!({
        "spdxVersion": "SPDX-2.3",
        "dataLicense": "CC0-1.0",
        "SPDXID": "SPDXRef-DOCUMENT",
        "name": name,
        "documentNamespace": format!("https://imgsync.test/spdx/{name}"),
        "packages": [],
    }))
    .unwrap();
    push_cosign_manifest(reg, repo, &cosign_tag(image_digest, "sbom"), SPDX_JSON, &sbom, json!({}))
}

/// An OCI artifact manifest that refers to `subject` (a descriptor with
/// mediaType, digest, size): `artifactType`, the empty config, one layer,
/// the `subject`, an annotation. Pushed by digest (as `oras attach` does on a
/// registry without the referrers API); its descriptor is returned.
pub fn push_referrer(reg: &Registry, repo: &str, subject: &Value, artifact_type: &str) -> Value {
    push_referrer_manifest(reg, repo, subject, artifact_type).descriptor()
}

pub fn push_referrer_manifest(reg: &Registry, repo: &str, subject: &Value, artifact_type: &str) -> Pushed {
    let empty = reg.put_blob(repo, EMPTY_JSON);
    let content = serde_json::to_vec(&json!({
        "artifact": artifact_type,
        "subject": subject["digest"],
        "nonce": super::unique("referrer"),
    }))
    .unwrap();
    let layer = reg.put_blob(repo, &content);
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": artifact_type,
        "config": {"mediaType": OCI_EMPTY, "digest": empty, "size": EMPTY_JSON.len()},
        "layers": [{"mediaType": "application/json", "digest": layer, "size": content.len()}],
        "subject": {"mediaType": subject["mediaType"], "digest": subject["digest"], "size": subject["size"]},
        "annotations": {"org.opencontainers.image.created": "2024-01-02T03:04:05Z", "org.example.test": "imgsync"},
    });
    let bytes = serde_json::to_vec(&manifest).unwrap();
    let digest = reg.put_manifest(repo, &sha256_digest(&bytes), OCI_MANIFEST, &bytes);
    Pushed { repo: repo.to_string(), tag: None, digest, media_type: OCI_MANIFEST.to_string(), bytes, json: manifest }
}

/// The referrers tag schema's fallback: an OCI index of `referrers`
/// (descriptors with artifactType and annotations) under `sha256-<hex>` of
/// `subject_digest`.
pub fn write_fallback_index(reg: &Registry, repo: &str, subject_digest: &str, referrers: &[Value]) -> Pushed {
    let index = json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": referrers});
    let bytes = serde_json::to_vec(&index).unwrap();
    let tag = fallback_tag(subject_digest);
    let digest = reg.put_manifest(repo, &tag, OCI_INDEX, &bytes);
    Pushed { repo: repo.to_string(), tag: Some(tag), digest, media_type: OCI_INDEX.to_string(), bytes, json: index }
}

/// What `cosign verify --key` checks, against `reg`: the image's digest is
/// what `repo:tag_or_digest` resolves to on that registry; its
/// `sha256-<hex>.sig` holds a simple-signing layer whose payload blob
/// (fetched from `reg`, its sha256 checked) carries a signature annotation
/// that verifies with `public_key` over the payload bytes, and whose
/// `docker-manifest-digest` is that digest. Ok when one layer passes.
pub fn verify_signature(reg: &Registry, repo: &str, tag_or_digest: &str, public_key: &[u8]) -> Result<(), String> {
    let image = reg.manifest(repo, tag_or_digest).ok_or_else(|| format!("{repo}:{tag_or_digest} is not in {}", reg.host()))?;
    let sig_tag = cosign_tag(&image.digest, "sig");
    let sig = reg.manifest(repo, &sig_tag).ok_or_else(|| format!("no signature: {repo}:{sig_tag} is not in {}", reg.host()))?;
    let layers = sig.json["layers"].as_array().ok_or_else(|| format!("{repo}:{sig_tag} has no layers"))?;
    let mut problems = Vec::new();
    for layer in layers {
        if layer["mediaType"] != SIMPLE_SIGNING {
            problems.push(format!("layer of type {}", layer["mediaType"]));
            continue;
        }
        let Some(annotation) = layer["annotations"][COSIGN_SIGNATURE_ANNOTATION].as_str() else {
            problems.push("a layer without a signature annotation".to_string());
            continue;
        };
        let payload = reg.blob(repo, layer["digest"].as_str().unwrap_or_default());
        match check_payload(&payload, annotation, public_key, &image.digest) {
            Ok(()) => return Ok(()),
            Err(e) => problems.push(e),
        }
    }
    Err(format!("no valid signature for {repo}@{} in {sig_tag}: {}", image.digest, problems.join("; ")))
}

/// The signature check on one payload (exposed for the self-test).
pub fn check_payload(payload: &[u8], signature_b64: &str, public_key: &[u8], image_digest: &str) -> Result<(), String> {
    let signature = unb64(signature_b64)?;
    UnparsedPublicKey::new(&ECDSA_P256_SHA256_ASN1, public_key)
        .verify(payload, &signature)
        .map_err(|_| "the signature does not verify with the public key over the payload".to_string())?;
    let v: Value = serde_json::from_slice(payload).map_err(|e| format!("the payload is not JSON: {e}"))?;
    if v["critical"]["type"] != "cosign container image signature" {
        return Err(format!("payload type {}", v["critical"]["type"]));
    }
    let named = v["critical"]["image"]["docker-manifest-digest"].as_str().unwrap_or("");
    if named != image_digest {
        return Err(format!("the payload signs {named}, the image is {image_digest}"));
    }
    Ok(())
}
