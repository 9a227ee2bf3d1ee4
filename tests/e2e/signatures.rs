//! End-to-end: signatures, SBOMs and attestations travel with the image
//! (issue 23). The source holds what cosign and the OCI referrers tag schema
//! leave in a registry without the referrers API (distribution 2.8): the
//! cosign tags `sha256-<hex>.sig|.att|.sbom` and the fallback tag
//! `sha256-<hex>` (an OCI index of referrers), built by `common::signing`.
//! After a sync the target holds the same tags with the same digests, and the
//! signature verifies against the mirror as `cosign verify --key` would.
//!
//! The imagetools tests need the buildx plugin (see tests/e2e/imagetools.rs);
//! the daemon test needs a Docker engine.


use std::io::Write;

use serde_json::Value;

use crate::common::docker_wrapper::RecordingDocker;
use crate::common::referrers_api::ReferrersApi;
use crate::common::signing::*;
use crate::common::*;

/// A source and a target registry, the workspace mirroring into `<dst>/mirror`.
fn registries(ws: &mut Workspace) -> (Registry, Registry) {
    let (src, dst) = (Registry::start(), Registry::start());
    ws.custom_target(&dst, "mirror", None);
    (src, dst)
}

/// Appends a line to the workspace's config.env.
fn add_config(ws: &Workspace, line: &str) {
    let text = ws.read("config.env").unwrap_or_default();
    ws.config(&format!("{text}{line}\n"));
}

fn imagetools_sync(ws: &Workspace, extra: &[&str]) -> Run {
    let mut args = vec!["sync", "--engine", "imagetools", "--report", "report.json"];
    args.extend_from_slice(extra);
    ws.run(&args)
}

#[track_caller]
fn digest_of(reg: &Registry, repo: &str, reference: &str, run: &Run) -> String {
    reg.manifest(repo, reference).unwrap_or_else(|| panic!("{repo}:{reference} is not in {}\n{}", reg.host(), run.dump())).digest
}

/// Tags of the signature family (`sha256-<hex>` and `sha256-<hex>.sig|.att|.sbom`).
fn signature_tags(reg: &Registry, repo: &str) -> Vec<String> {
    reg.tags(repo).into_iter().filter(|t| is_signature_tag(t)).collect()
}

/// (found, copied, up_to_date, failed) of a `signatures` object.
#[track_caller]
fn counts(v: &Value, what: &str, run: &Run) -> (u64, u64, u64, u64) {
    let n = |k: &str| v[k].as_u64().unwrap_or_else(|| panic!("{what}.{k} missing or not a number: {v}\n{}", run.dump()));
    (n("found"), n("copied"), n("up_to_date"), n("failed"))
}

/// The signature counts of the only target of the entry at `line`.
#[track_caller]
fn target_counts(run: &Run, line: u64) -> (u64, u64, u64, u64) {
    let t = &run.entry(line)["targets"][0];
    assert!(t["signatures"].is_object(), "the target has no signatures object\n{}", run.dump());
    counts(&t["signatures"], "targets[0].signatures", run)
}

#[track_caller]
fn summary_counts(run: &Run) -> (u64, u64, u64, u64) {
    let s = &run.report()["summary"]["signatures"];
    assert!(s.is_object(), "the summary has no signatures object\n{}", run.dump());
    counts(s, "summary.signatures", run)
}

/// A two-platform OCI index at `lib/app:v1`, its `.sig` and one referrer
/// listed in its fallback tag.
struct SignedIndex {
    img: PushedImage,
    sig: Pushed,
    referrer: Value,
    fallback: Pushed,
}

fn signed_index(src: &Registry, seed: &str) -> SignedIndex {
    let img = src.push_image("lib/app:v1", &ImageSpec::new(&unique(seed)).platforms(&["linux/amd64", "linux/arm64/v8"]).oci());
    let sig = sign_image(src, "lib/app", &img.digest, &format!("{}/lib/app", src.host()));
    let subject = descriptor_of(src, "lib/app", &img.digest);
    let referrer = push_referrer(src, "lib/app", &subject, "application/vnd.example.sbom.v1+json");
    let fallback = write_fallback_index(src, "lib/app", &img.digest, std::slice::from_ref(&referrer));
    verify_signature(src, "lib/app", "v1", &test_key().public_key()).expect("the source's signature verifies");
    SignedIndex { img, sig, referrer, fallback }
}

// ---------------------------------------------------------------------------
// The helpers themselves
// ---------------------------------------------------------------------------

/// The cosign check of `common::signing` rejects what cosign rejects: a
/// payload changed by one byte, another key, a payload naming another digest.
#[test]
fn verify_signature_rejects_a_changed_payload_and_another_key() {
    let reg = Registry::start();
    let img = reg.push_image("lib/app:v1", &ImageSpec::new(&unique("sig-self")));
    let sig = sign_image(&reg, "lib/app", &img.digest, &format!("{}/lib/app", reg.host()));
    let key = test_key().public_key();
    verify_signature(&reg, "lib/app", "v1", &key).expect("a fresh signature verifies");
    verify_signature(&reg, "lib/app", &img.digest, &key).expect("by digest too");
    let other = TestKey::generate().public_key();
    assert!(verify_signature(&reg, "lib/app", "v1", &other).is_err(), "another key must not verify");

    // The payload layer and its signature as pushed.
    let layer = &sig.json["layers"][0];
    assert_eq!(layer["mediaType"], SIMPLE_SIGNING);
    let annotation = layer["annotations"][COSIGN_SIGNATURE_ANNOTATION].as_str().unwrap().to_string();
    let payload = reg.blob("lib/app", layer["digest"].as_str().unwrap());
    let parsed: Value = serde_json::from_slice(&payload).unwrap();
    assert_eq!(parsed["critical"]["image"]["docker-manifest-digest"], img.digest.as_str());
    assert_eq!(parsed["critical"]["identity"]["docker-reference"], format!("{}/lib/app", reg.host()));
    assert!(parsed["optional"].is_null());
    let config: Value = serde_json::from_slice(&reg.blob("lib/app", sig.json["config"]["digest"].as_str().unwrap())).unwrap();
    assert_eq!((config["architecture"].as_str(), config["os"].as_str()), (Some(""), Some("")));
    assert_eq!(config["rootfs"]["diff_ids"][0], sha256_digest(&payload).as_str());
    check_payload(&payload, &annotation, &key, &img.digest).expect("the pushed payload verifies");

    // One byte changed, the annotation kept.
    let mut changed = payload.clone();
    let at = changed.iter().position(|b| *b == b'c').unwrap();
    changed[at] = b'C';
    assert!(check_payload(&changed, &annotation, &key, &img.digest).is_err(), "a changed payload must fail");
    // The same through the registry: the .sig now carries the changed payload.
    let changed_digest = reg.put_blob("lib/app", &changed);
    let mut forged = sig.json.clone();
    forged["layers"][0]["digest"] = changed_digest.into();
    forged["layers"][0]["size"] = changed.len().into();
    reg.put_manifest("lib/app", &cosign_tag(&img.digest, "sig"), OCI_MANIFEST, &serde_json::to_vec(&forged).unwrap());
    let err = verify_signature(&reg, "lib/app", "v1", &key).expect_err("a changed payload must not verify");
    assert!(err.contains("does not verify"), "{err}");

    // A valid signature over a payload naming another digest.
    let elsewhere = reg.push_image("lib/app:v2", &ImageSpec::new(&unique("sig-self-2")));
    let moved = reg.manifest("lib/app", &cosign_tag(&img.digest, "sig")).unwrap();
    sign_image(&reg, "lib/app", &img.digest, "x");
    let good = reg.manifest("lib/app", &cosign_tag(&img.digest, "sig")).unwrap();
    assert_ne!(moved.digest, good.digest);
    reg.put_manifest("lib/app", &cosign_tag(&elsewhere.digest, "sig"), OCI_MANIFEST, &good.bytes);
    let err = verify_signature(&reg, "lib/app", "v2", &key).expect_err("a signature of another digest must not verify");
    assert!(err.contains("signs"), "{err}");

    assert!(is_signature_tag(&cosign_tag(&img.digest, "att")) && is_signature_tag(&fallback_tag(&img.digest)));
    assert!(!is_signature_tag("v1") && !is_signature_tag("sha256-abc.sig"));
}

// ---------------------------------------------------------------------------
// imagetools engine
// ---------------------------------------------------------------------------

/// (a) A signed multi-arch OCI index with a referrer kept through the
/// fallback tag: the target gets the same `.sig`, the referrer by digest and
/// the same fallback index; the signature verifies against the mirror.
#[test]
fn a_signed_index_brings_its_signature_and_referrers() {
    let Some(mut ws) = buildx_workspace("a_signed_index_brings_its_signature_and_referrers") else { return };
    let (src, dst) = registries(&mut ws);
    let s = signed_index(&src, "sig-a");
    ws.images(&format!("{} => app\n", s.img.reference()));

    let run = imagetools_sync(&ws, &[]);
    run.expect_code(0);
    assert_eq!(run.status(1), "synced", "{}", run.dump());
    assert_eq!(digest_of(&dst, "mirror/app", "v1", &run), s.img.digest, "the index keeps its digest\n{}", run.dump());
    let sig_tag = s.sig.tag.clone().unwrap();
    assert_eq!(digest_of(&dst, "mirror/app", &sig_tag, &run), s.sig.digest, "the .sig byte for byte\n{}", run.dump());
    let referrer = s.referrer["digest"].as_str().unwrap();
    assert_eq!(digest_of(&dst, "mirror/app", referrer, &run), referrer, "the referrer by digest\n{}", run.dump());
    let fb_tag = fallback_tag(&s.img.digest);
    let fb = dst.manifest("mirror/app", &fb_tag).unwrap_or_else(|| panic!("no fallback tag {fb_tag} on the target\n{}", run.dump()));
    assert_eq!(fb.digest, s.fallback.digest, "the fallback index byte for byte\n{}", run.dump());
    let listed: Vec<&str> = fb.json["manifests"].as_array().unwrap().iter().map(|d| d["digest"].as_str().unwrap()).collect();
    assert_eq!(listed, [referrer], "{}", run.dump());
    verify_signature(&dst, "mirror/app", "v1", &test_key().public_key())
        .unwrap_or_else(|e| panic!("cosign's check fails against the mirror: {e}\n{}", run.dump()));
    assert_eq!(target_counts(&run, 1), (2, 2, 0, 0), "{}", run.dump());
    assert_eq!(summary_counts(&run), (2, 2, 0, 0), "{}", run.dump());
    assert_eq!(signature_tags(&dst, "mirror/app"), {
        let mut want = vec![fb_tag, sig_tag];
        want.sort();
        want
    });
}

/// (b) The no-op: up to date, no docker process, the signatures up to date,
/// at most 4 HEADs more on the source and 2 on the target than with
/// `--signatures off`; then a new `.att` on the source is copied alone.
#[test]
fn a_noop_checks_signatures_with_heads_and_a_new_attestation_is_copied_alone() {
    let Some(mut ws) = buildx_workspace("a_noop_checks_signatures_with_heads_and_a_new_attestation_is_copied_alone") else { return };
    let (src, dst) = registries(&mut ws);
    let s = signed_index(&src, "sig-b");
    ws.images(&format!("{} => app\n", s.img.reference()));
    imagetools_sync(&ws, &[]).expect_code(0);

    let wrapper = RecordingDocker::new();
    ws.set_env("PATH", &wrapper.path_with(&[]));
    let heads = || (src.request_count("manifest", "head"), dst.request_count("manifest", "head"));
    let h0 = heads();
    let on = imagetools_sync(&ws, &[]);
    let h1 = heads();
    on.expect_code(0);
    assert_eq!(on.status(1), "up-to-date", "{}", on.dump());
    assert_eq!(wrapper.calls(), Vec::<String>::new(), "no docker process on a no-op\n{}", on.dump());
    assert_eq!(target_counts(&on, 1), (2, 0, 2, 0), "{}", on.dump());
    assert_eq!(summary_counts(&on), (2, 0, 2, 0), "{}", on.dump());

    let off = imagetools_sync(&ws, &["--signatures", "off"]);
    let h2 = heads();
    off.expect_code(0);
    assert_eq!(off.status(1), "up-to-date", "{}", off.dump());
    assert_eq!(wrapper.calls(), Vec::<String>::new(), "{}", off.dump());
    assert!(off.entry(1)["targets"][0].get("signatures").is_none(), "no signatures field when off\n{}", off.dump());
    assert!(off.report()["summary"].get("signatures").is_none(), "no summary.signatures when off\n{}", off.dump());
    let (on_src, on_dst) = (h1.0 - h0.0, h1.1 - h0.1);
    let (off_src, off_dst) = (h2.0 - h1.0, h2.1 - h1.1);
    let detail = format!("manifest HEADs with signatures: source {on_src}, target {on_dst}; off: source {off_src}, target {off_dst}");
    assert!(on_src >= off_src && on_dst >= off_dst, "{detail}\n{}\n{}", on.dump(), off.dump());
    assert!(on_src - off_src <= 4, "at most the 3 cosign tags + the fallback tag on the source: {detail}\n{}", on.dump());
    assert!(on_dst - off_dst <= 2, "one target HEAD per tag the source has (2): {detail}\n{}", on.dump());
    assert!((on_src + on_dst) - (off_src + off_dst) <= 4 + 2, "{detail}");
    eprintln!("{detail}");

    // An attestation appears on the source: only it is copied.
    let att = attest_image(&src, "lib/app", &s.img.digest, "provenance");
    let run = imagetools_sync(&ws, &[]);
    run.expect_code(0);
    assert_eq!(run.status(1), "up-to-date", "the image itself did not change\n{}", run.dump());
    assert_eq!(target_counts(&run, 1), (3, 1, 2, 0), "{}", run.dump());
    assert_eq!(summary_counts(&run), (3, 1, 2, 0), "{}", run.dump());
    assert_eq!(digest_of(&dst, "mirror/app", att.tag.as_deref().unwrap(), &run), att.digest, "the .att byte for byte\n{}", run.dump());
}

/// (c) `SIGNATURES=off` in config.env: the image, no signature tag, no field.
#[test]
fn signatures_off_in_config_copies_the_image_only() {
    let Some(mut ws) = buildx_workspace("signatures_off_in_config_copies_the_image_only") else { return };
    let (src, dst) = registries(&mut ws);
    add_config(&ws, "SIGNATURES=off");
    let s = signed_index(&src, "sig-c");
    attest_image(&src, "lib/app", &s.img.digest, "off");
    ws.images(&format!("{} => app\n", s.img.reference()));

    let run = imagetools_sync(&ws, &[]);
    run.expect_code(0);
    assert_eq!(run.status(1), "synced", "{}", run.dump());
    assert_eq!(digest_of(&dst, "mirror/app", "v1", &run), s.img.digest, "{}", run.dump());
    assert_eq!(dst.tags("mirror/app"), ["v1"], "no sha256-* tag on the target\n{}", run.dump());
    assert!(run.entry(1)["targets"][0].get("signatures").is_none(), "no signatures field when off\n{}", run.dump());
    assert!(run.report()["summary"].get("signatures").is_none(), "no summary.signatures when off\n{}", run.dump());
}

/// (e) `--tags='.*'` on a repository that holds signature and fallback tags
/// selects the image tags only.
#[test]
fn tag_selection_never_selects_signature_or_fallback_tags() {
    let Some(mut ws) = buildx_workspace("tag_selection_never_selects_signature_or_fallback_tags") else { return };
    let (src, dst) = registries(&mut ws);
    let v1 = src.push_image("lib/app:v1", &ImageSpec::new(&unique("sig-e1")));
    let v2 = src.push_image("lib/app:v2", &ImageSpec::new(&unique("sig-e2")).platforms(&["linux/amd64", "linux/arm64/v8"]).oci());
    let docker_ref = format!("{}/lib/app", src.host());
    sign_image(&src, "lib/app", &v1.digest, &docker_ref);
    attach_sbom(&src, "lib/app", &v1.digest, "v1");
    sign_image(&src, "lib/app", &v2.digest, &docker_ref);
    attest_image(&src, "lib/app", &v2.digest, "v2");
    let referrer = push_referrer(&src, "lib/app", &descriptor_of(&src, "lib/app", &v2.digest), "application/vnd.example.sbom.v1+json");
    write_fallback_index(&src, "lib/app", &v2.digest, &[referrer]);
    assert_eq!(signature_tags(&src, "lib/app").len(), 5, "{:?}", src.tags("lib/app"));
    ws.images(&format!("{}/lib/app --tags='.*' => app\n", src.host()));

    let run = imagetools_sync(&ws, &[]);
    let mut selected: Vec<String> = run.report()["entries"]
        .as_array()
        .unwrap_or_else(|| panic!("no entries\n{}", run.dump()))
        .iter()
        .map(|e| e["source"].as_str().unwrap_or("").rsplit_once(':').map(|(_, t)| t.to_string()).unwrap_or_default())
        .collect();
    selected.sort();
    assert_eq!(selected, ["v1", "v2"], "only the image tags are selected\n{}", run.dump());
    run.expect_code(0);
    let image_tags: Vec<String> = dst.tags("mirror/app").into_iter().filter(|t| !is_signature_tag(t)).collect();
    assert_eq!(image_tags, ["v1", "v2"], "{}", run.dump());
    assert_eq!(summary_counts(&run), (5, 5, 0, 0), "{}", run.dump());
}

/// (f) A platform line: the mirror is the arm64 child itself, and the child's
/// own `.sig` comes with it; the index's `.sig` (a digest the target does not
/// hold) does not.
#[test]
fn a_platform_line_brings_the_childs_signature() {
    let Some(mut ws) = buildx_workspace("a_platform_line_brings_the_childs_signature") else { return };
    let (src, dst) = registries(&mut ws);
    let img = src.push_image("lib/app:v1", &ImageSpec::new(&unique("sig-f")).platforms(&["linux/amd64", "linux/arm64/v8"]).oci());
    let docker_ref = format!("{}/lib/app", src.host());
    let arm = img.platform("linux/arm64/v8").manifest.clone();
    let child_sig = sign_image(&src, "lib/app", &arm, &docker_ref);
    let top_sig = sign_image(&src, "lib/app", &img.digest, &docker_ref);
    ws.images(&format!("--platform=linux/arm64 {} => arm\n", img.reference()));

    let run = imagetools_sync(&ws, &[]);
    run.expect_code(0);
    assert_eq!(run.status(1), "synced", "{}", run.dump());
    let child_tag = child_sig.tag.clone().unwrap();
    let got = dst.manifest("mirror/arm", &child_tag).unwrap_or_else(|| panic!("the child's {child_tag} is not on the target\n{}", run.dump()));
    assert_eq!(got.digest, child_sig.digest, "{}", run.dump());
    assert!(
        dst.manifest("mirror/arm", top_sig.tag.as_deref().unwrap()).is_none(),
        "the index's .sig names a digest the target does not hold\n{}",
        run.dump()
    );
    let key = test_key().public_key();
    if buildx_has_prefer_index(&ws) {
        assert_eq!(digest_of(&dst, "mirror/arm", "v1", &run), arm, "a carbon copy of the child\n{}", run.dump());
        verify_signature(&dst, "mirror/arm", "v1", &key).unwrap_or_else(|e| panic!("{e}\n{}", run.dump()));
    } else {
        verify_signature(&dst, "mirror/arm", &arm, &key).unwrap_or_else(|e| panic!("{e}\n{}", run.dump()));
    }
    assert_eq!(target_counts(&run, 1), (1, 1, 0, 0), "{}", run.dump());
}

/// (g) A target whose fallback tag holds an image (not an index of
/// referrers): it is never overwritten; that target fails with a hint, the
/// image and its `.sig` are still copied, the run exits 1.
#[test]
fn a_target_fallback_tag_holding_an_image_is_never_overwritten() {
    let Some(mut ws) = buildx_workspace("a_target_fallback_tag_holding_an_image_is_never_overwritten") else { return };
    let (src, dst) = registries(&mut ws);
    let s = signed_index(&src, "sig-g");
    let fb_tag = fallback_tag(&s.img.digest);
    let squatter = dst.push_image(&format!("mirror/app:{fb_tag}"), &ImageSpec::new(&unique("sig-g-squat")));
    ws.images(&format!("{} => app\n", s.img.reference()));

    let run = imagetools_sync(&ws, &[]);
    run.expect_code(1);
    assert_eq!(digest_of(&dst, "mirror/app", &fb_tag, &run), squatter.digest, "the image under {fb_tag} is untouched\n{}", run.dump());
    assert_eq!(digest_of(&dst, "mirror/app", "v1", &run), s.img.digest, "the image itself is copied\n{}", run.dump());
    assert_eq!(digest_of(&dst, "mirror/app", s.sig.tag.as_deref().unwrap(), &run), s.sig.digest, "{}", run.dump());
    let t = &run.entry(1)["targets"][0];
    assert_eq!(t["status"], "synced", "the image's status stays\n{}", run.dump());
    assert!(t["error"].as_str().is_some_and(|e| !e.is_empty()), "the target has an error\n{}", run.dump());
    assert!(t["hint"].as_str().is_some_and(|h| !h.is_empty()), "the target has a hint\n{}", run.dump());
    assert_eq!(target_counts(&run, 1), (2, 1, 0, 1), "{}", run.dump());
    assert_eq!(summary_counts(&run), (2, 1, 0, 1), "{}", run.dump());
}

/// The `joined` count of the only target of the entry at `line` (0 when the
/// report leaves the field out, as it does for 0).
#[track_caller]
fn target_joined(run: &Run, line: u64) -> u64 {
    let s = &run.entry(line)["targets"][0]["signatures"];
    assert!(s.is_object(), "the target has no signatures object\n{}", run.dump());
    s.get("joined").map_or(0, |j| j.as_u64().unwrap_or_else(|| panic!("signatures.joined is not a number: {s}\n{}", run.dump())))
}

/// The `docker_calls` of the entry at `line`.
#[track_caller]
fn docker_calls(run: &Run, line: u64) -> u64 {
    run.entry(line)["docker_calls"].as_u64().unwrap_or_else(|| panic!("entry {line} has no docker_calls\n{}", run.dump()))
}

/// The entry of a referrers index listing `digest`.
#[track_caller]
fn listed_entry<'a>(index: &'a Value, digest: &str, run: &Run) -> &'a Value {
    index["manifests"]
        .as_array()
        .unwrap_or_else(|| panic!("not an index: {index}\n{}", run.dump()))
        .iter()
        .find(|d| d["digest"] == digest)
        .unwrap_or_else(|| panic!("{digest} is not listed in {index}\n{}", run.dump()))
}

/// The digests a referrers index lists, sorted.
fn listed_digests(index: &Value) -> Vec<String> {
    let mut v: Vec<String> = index["manifests"].as_array().into_iter().flatten().filter_map(|d| d["digest"].as_str().map(String::from)).collect();
    v.sort();
    v
}

/// An entry buildx wrote keeps the descriptor's fields and gains the
/// platform `{"architecture":"","os":"linux"}` (SIGNATURES.md, d).
#[track_caller]
fn assert_joined_entry(entry: &Value, referrer: &Pushed, run: &Run) {
    let d = referrer.descriptor();
    for key in ["mediaType", "digest", "size", "artifactType", "annotations"] {
        assert_eq!(entry[key], d[key], "{key} of the listed {} is kept: {entry}\n{}", referrer.digest, run.dump());
    }
    assert_eq!(
        entry["platform"],
        serde_json::json!({"architecture": "", "os": "linux"}),
        "buildx adds an empty-architecture linux platform to each entry it joins: {entry}\n{}",
        run.dump()
    );
}

/// (h) A source whose referrer is listed only by its referrers API (no
/// fallback tag): the source is read through `common::referrers_api`, a
/// front that answers the API for a distribution 2.8 registry. The copy
/// brings the referrer by digest, and the target (no API) lists it in a
/// fallback index buildx writes. The second run is a no-op that does not
/// even ask the API (it is asked only when the image is copied).
#[test]
fn referrers_behind_the_source_api_reach_a_target_without_it() {
    let Some(mut ws) = buildx_workspace("referrers_behind_the_source_api_reach_a_target_without_it") else { return };
    let (src, dst) = registries(&mut ws);
    let api = ReferrersApi::start(&src);
    let img = src.push_image("lib/app:v1", &ImageSpec::new(&unique("sig-h")).platforms(&["linux/amd64", "linux/arm64/v8"]).oci());
    let subject = descriptor_of(&src, "lib/app", &img.digest);
    let referrer = push_referrer_manifest(&src, "lib/app", &subject, "application/vnd.example.sbom.v1");
    api.register("lib/app", &img.digest, referrer.descriptor());
    assert_eq!(src.tags("lib/app"), ["v1"], "the referrer is on the source by digest only, no fallback tag");
    // The front itself: the API for the image, an empty index for any other digest, the rest forwarded.
    let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).proxy(None).build().into();
    let front = |path: &str| -> (u16, String, String) {
        let mut resp = agent.get(&format!("http://{}{path}", api.host())).header("Accept", ALL_MANIFEST_TYPES).call().expect("GET through the front");
        let ct = resp.headers().get("Content-Type").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
        (resp.status().as_u16(), ct, resp.body_mut().read_to_string().unwrap())
    };
    let (code, ct, body) = front(&format!("/v2/lib/app/referrers/{}", img.digest));
    let listed: Value = serde_json::from_str(&body).unwrap();
    assert_eq!((code, ct.as_str()), (200, OCI_INDEX), "{body}");
    assert_eq!(listed["manifests"], serde_json::json!([referrer.descriptor()]), "{body}");
    let other = &img.platforms[0].manifest;
    let (code, _, body) = front(&format!("/v2/lib/app/referrers/{other}"));
    assert_eq!((code, body.as_str()), (200, r#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}"#));
    let (code, _, _) = front(&format!("/v2/lib/app/manifests/{}", img.digest));
    assert_eq!(code, 200, "other requests reach the registry");
    let asked_before = api.asked().len();
    ws.images(&format!("{} => app\n", api.reference("lib/app:v1")));

    let run = imagetools_sync(&ws, &["--state", "state.json"]);
    run.expect_code(0);
    assert_eq!(run.status(1), "synced", "{}", run.dump());
    let asked = api.asked()[asked_before..].to_vec();
    assert!(
        asked.iter().any(|a| a == &format!("/v2/lib/app/referrers/{}", img.digest)),
        "imgsync asked the source's referrers API for the image: {asked:?}\n{}",
        run.dump()
    );
    assert_eq!(digest_of(&dst, "mirror/app", "v1", &run), img.digest, "the index keeps its digest\n{}", run.dump());
    assert_eq!(
        digest_of(&dst, "mirror/app", &referrer.digest, &run),
        referrer.digest,
        "the referrer manifest by digest, byte for byte\n{}",
        run.dump()
    );
    let fb_tag = fallback_tag(&img.digest);
    let fb = dst.manifest("mirror/app", &fb_tag).unwrap_or_else(|| panic!("no fallback tag {fb_tag} on the target\n{}", run.dump()));
    assert_eq!(fb.json["mediaType"], OCI_INDEX, "the fallback tag holds an OCI index: {}\n{}", fb.json, run.dump());
    assert_eq!(listed_digests(&fb.json), [referrer.digest.as_str()], "the fallback index lists the referrer: {}\n{}", fb.json, run.dump());
    assert_joined_entry(listed_entry(&fb.json, &referrer.digest, &run), &referrer, &run);
    assert_eq!(target_counts(&run, 1), (1, 1, 0, 0), "{}", run.dump());
    assert_eq!(target_joined(&run, 1), 1, "the fallback index was written by joining\n{}", run.dump());
    assert_eq!(summary_counts(&run), (1, 1, 0, 0), "{}", run.dump());
    assert_eq!(dst.tags("mirror/app"), {
        let mut want = vec![fb_tag.clone(), "v1".to_string()];
        want.sort();
        want
    }, "only v1 and the fallback tag on the target\n{}", run.dump());

    // The no-op: nothing written, and the API not even asked.
    let wrapper = RecordingDocker::new();
    ws.set_env("PATH", &wrapper.path_with(&[]));
    let asked_before = api.asked().len();
    let again = imagetools_sync(&ws, &["--state", "state.json"]);
    again.expect_code(0);
    assert_eq!(again.status(1), "up-to-date", "{}", again.dump());
    assert_eq!(wrapper.calls(), Vec::<String>::new(), "no docker process on a no-op\n{}", again.dump());
    assert_eq!(docker_calls(&again, 1), 0, "{}", again.dump());
    assert_eq!(api.asked()[asked_before..].to_vec(), Vec::<String>::new(), "a no-op does not ask the referrers API\n{}", again.dump());
    assert_eq!(digest_of(&dst, "mirror/app", &fb_tag, &again), fb.digest, "the fallback index is not rewritten\n{}", again.dump());
    // The documented limit: the source has no fallback tag, so the no-op finds nothing to check.
    assert_eq!(target_counts(&again, 1), (0, 0, 0, 0), "{}", again.dump());
    assert_eq!(target_joined(&again, 1), 0, "{}", again.dump());
    assert_eq!(dst.tags("mirror/app").len(), 2, "{}", again.dump());
}

/// (i) The target already holds the image, a referrer R2 of its own and a
/// fallback index listing only R2; the source's fallback index lists R1.
/// The image is up to date, so no copy and no `--force`: the signatures of
/// an up-to-date target are planned on the no-op path, which joins the two
/// lists. The next run remembers the joined index (same state file) and
/// writes nothing.
#[test]
fn a_target_fallback_index_keeps_its_own_referrers() {
    let Some(mut ws) = buildx_workspace("a_target_fallback_index_keeps_its_own_referrers") else { return };
    let (src, dst) = registries(&mut ws);
    let spec = ImageSpec::new(&unique("sig-i")).platforms(&["linux/amd64", "linux/arm64/v8"]).oci();
    let img = src.push_image("lib/app:v1", &spec);
    let there = dst.push_image("mirror/app:v1", &spec);
    assert_eq!(there.digest, img.digest, "the same image on both sides");
    let r1 = push_referrer_manifest(&src, "lib/app", &descriptor_of(&src, "lib/app", &img.digest), "application/vnd.example.sbom.v1");
    let src_fb = write_fallback_index(&src, "lib/app", &img.digest, &[r1.descriptor()]);
    let r2 = push_referrer_manifest(&dst, "mirror/app", &descriptor_of(&dst, "mirror/app", &img.digest), "application/vnd.example.vex.v1");
    let dst_fb = write_fallback_index(&dst, "mirror/app", &img.digest, &[r2.descriptor()]);
    let fb_tag = fallback_tag(&img.digest);
    ws.images(&format!("{} => app\n", img.reference()));

    let run = imagetools_sync(&ws, &["--state", "state.json"]);
    run.expect_code(0);
    assert_eq!(run.status(1), "up-to-date", "the image itself is up to date\n{}", run.dump());
    let fb = dst.manifest("mirror/app", &fb_tag).unwrap_or_else(|| panic!("no fallback tag {fb_tag} on the target\n{}", run.dump()));
    assert_ne!(fb.digest, dst_fb.digest, "the target's fallback index was rewritten\n{}", run.dump());
    assert_ne!(fb.digest, src_fb.digest, "not the source's index alone: R2 would be lost\n{}", run.dump());
    let mut both = vec![r1.digest.clone(), r2.digest.clone()];
    both.sort();
    assert_eq!(listed_digests(&fb.json), both, "the joined index lists R1 and R2: {}\n{}", fb.json, run.dump());
    assert_joined_entry(listed_entry(&fb.json, &r1.digest, &run), &r1, &run);
    assert_joined_entry(listed_entry(&fb.json, &r2.digest, &run), &r2, &run);
    assert_eq!(digest_of(&dst, "mirror/app", &r1.digest, &run), r1.digest, "R1 on the target by digest\n{}", run.dump());
    assert_eq!(digest_of(&dst, "mirror/app", &r2.digest, &run), r2.digest, "R2 kept\n{}", run.dump());
    assert_eq!(target_counts(&run, 1), (1, 1, 0, 0), "{}", run.dump());
    assert_eq!(target_joined(&run, 1), 1, "{}", run.dump());
    assert_eq!(summary_counts(&run), (1, 1, 0, 0), "{}", run.dump());
    assert_eq!(dst.tags("mirror/app"), {
        let mut want = vec![fb_tag.clone(), "v1".to_string()];
        want.sort();
        want
    }, "{}", run.dump());

    // The state file remembers the joined index: up to date, no write.
    let wrapper = RecordingDocker::new();
    ws.set_env("PATH", &wrapper.path_with(&[]));
    let again = imagetools_sync(&ws, &["--state", "state.json"]);
    again.expect_code(0);
    assert_eq!(again.status(1), "up-to-date", "{}", again.dump());
    assert_eq!(wrapper.calls(), Vec::<String>::new(), "no `imagetools create` (no docker process at all)\n{}", again.dump());
    assert_eq!(docker_calls(&again, 1), 0, "{}", again.dump());
    assert_eq!(digest_of(&dst, "mirror/app", &fb_tag, &again), fb.digest, "the joined index stays\n{}", again.dump());
    assert_eq!(target_counts(&again, 1), (1, 0, 1, 0), "{}", again.dump());
    assert_eq!(target_joined(&again, 1), 0, "{}", again.dump());
}

/// (j) A whole index (no `--platform`): the index's `.sig` and its arm64
/// child's `.sig` both come, with the source's digests.
#[test]
fn a_whole_index_copy_brings_each_platforms_signature() {
    let Some(mut ws) = buildx_workspace("a_whole_index_copy_brings_each_platforms_signature") else { return };
    let (src, dst) = registries(&mut ws);
    let img = src.push_image("lib/app:v1", &ImageSpec::new(&unique("sig-j")).platforms(&["linux/amd64", "linux/arm64/v8"]).oci());
    let docker_ref = format!("{}/lib/app", src.host());
    let arm = img.platform("linux/arm64/v8").manifest.clone();
    let top_sig = sign_image(&src, "lib/app", &img.digest, &docker_ref);
    let child_sig = sign_image(&src, "lib/app", &arm, &docker_ref);
    ws.images(&format!("{} => app\n", img.reference()));

    let run = imagetools_sync(&ws, &[]);
    run.expect_code(0);
    assert_eq!(run.status(1), "synced", "{}", run.dump());
    assert_eq!(digest_of(&dst, "mirror/app", "v1", &run), img.digest, "the index keeps its digest\n{}", run.dump());
    for (what, sig) in [("the index's", &top_sig), ("the arm64 child's", &child_sig)] {
        let tag = sig.tag.clone().unwrap();
        let got = dst.manifest("mirror/app", &tag).unwrap_or_else(|| panic!("{what} {tag} is not on the target\n{}", run.dump()));
        assert_eq!(got.digest, sig.digest, "{what} .sig byte for byte\n{}", run.dump());
    }
    let key = test_key().public_key();
    verify_signature(&dst, "mirror/app", "v1", &key).unwrap_or_else(|e| panic!("the index: {e}\n{}", run.dump()));
    verify_signature(&dst, "mirror/app", &arm, &key).unwrap_or_else(|e| panic!("the arm64 child: {e}\n{}", run.dump()));
    assert_eq!(target_counts(&run, 1), (2, 2, 0, 0), "{}", run.dump());
    assert_eq!(summary_counts(&run), (2, 2, 0, 0), "{}", run.dump());
    let mut want = vec![top_sig.tag.clone().unwrap(), child_sig.tag.clone().unwrap()];
    want.sort();
    assert_eq!(signature_tags(&dst, "mirror/app"), want, "{}", run.dump());
}

// ---------------------------------------------------------------------------
// daemon engine
// ---------------------------------------------------------------------------

/// For the daemon engine's tests: a signed single-platform image listed as
/// `=> app`; the registries serve while this is held, and the engine's
/// copies of the image are removed when it is dropped (bind every field:
/// `..` would drop the rest at the end of the `let`).
struct SignedForDaemon {
    ws: Workspace,
    dst: Registry,
    _src: Registry,
    _cleanup: ImageCleanup,
}

fn signed_for_daemon(seed: &str) -> Option<SignedForDaemon> {
    let docker = Docker::get_or_skip()?;
    let mut ws = Workspace::new();
    let (src, dst) = registries(&mut ws);
    let img = src.push_image("lib/app:v1", &ImageSpec::new(&unique(seed)));
    let cleanup = ImageCleanup { docker, ids: img.config_digests() };
    sign_image(&src, "lib/app", &img.digest, &format!("{}/lib/app", src.host()));
    ws.images(&format!("{} => app\n", img.reference()));
    Some(SignedForDaemon { ws, dst, _src: src, _cleanup: cleanup })
}

/// (d) The daemon engine re-pushes images, so it copies no signature and
/// says why; asking it to copy them is a configuration error.
#[test]
fn the_daemon_engine_copies_no_signatures_and_refuses_an_explicit_copy() {
    let Some(SignedForDaemon { ws, dst, _src, _cleanup }) = signed_for_daemon("sig-d") else { return };

    let run = ws.sync(&[]);
    run.expect_code(0);
    assert_eq!(run.status(1), "synced", "{}", run.dump());
    let why = run.report()["summary"]["signatures_not_copied"].as_str().unwrap_or_else(|| panic!("no summary.signatures_not_copied\n{}", run.dump()));
    assert!(why.contains("daemon"), "{why}\n{}", run.dump());
    assert_eq!(signature_tags(&dst, "mirror/app"), Vec::<String>::new(), "{}", run.dump());

    let flag = ws.run(&["sync", "--engine", "daemon", "--signatures", "copy", "--report", "report.json"]);
    flag.expect_code(2);
    let out = flag.all_output();
    assert!(out.contains("SIGNATURES") && out.contains("daemon"), "{}", flag.dump());

    add_config(&ws, "SIGNATURES=copy");
    let config = ws.run(&["sync", "--engine", "daemon", "--report", "report.json"]);
    config.expect_code(2);
    let out = config.all_output();
    assert!(out.contains("SIGNATURES") && out.contains("daemon"), "{}", config.dump());
    assert_eq!(signature_tags(&dst, "mirror/app"), Vec::<String>::new());
}

/// (d) `--engine auto` without buildx picks the daemon engine once something
/// must be copied: no signature is copied and the summary says the daemon
/// engine is why, on the copy and on the no-op after it (whose engine is not
/// known: it starts no docker process).
#[test]
fn auto_without_buildx_copies_no_signatures_and_says_why() {
    if system_buildx() {
        let _ = writeln!(std::io::stderr(), "SKIPPED auto_without_buildx_copies_no_signatures_and_says_why: a system-wide buildx plugin is installed");
        return;
    }
    let Some(SignedForDaemon { ws, dst, _src, _cleanup }) = signed_for_daemon("sig-auto") else { return };

    for (round, status) in [(1, "synced"), (2, "up-to-date")] {
        let run = ws.run(&["sync", "--engine", "auto", "--report", "report.json"]);
        run.expect_code(0);
        assert_eq!(run.status(1), status, "round {round}\n{}", run.dump());
        let why = run.report()["summary"]["signatures_not_copied"].as_str().unwrap_or_else(|| panic!("round {round}: no summary.signatures_not_copied\n{}", run.dump()));
        assert!(why.contains("daemon engine"), "round {round}: {why}\n{}", run.dump());
        assert!(run.all_output().contains(why), "round {round}: the reason is shown\n{}", run.dump());
        assert_eq!(signature_tags(&dst, "mirror/app"), Vec::<String>::new(), "round {round}\n{}", run.dump());
    }
}
