//! Checks of the end-to-end harness itself (no imgsync involved): synthetic
//! images land in a real registry in the shape we claim, skopeo and the Docker
//! engine read them back, auth works.

use crate::common::*;

#[test]
fn multi_platform_docker_list_reads_back_via_http_skopeo_and_docker_pull() {
    let Some(docker) = Docker::get_or_skip() else { return };
    let reg = Registry::start();
    let seed = unique("harness-multi");
    let img = reg.push_image("lib/app:v1", &ImageSpec::new(&seed).platforms(&["linux/amd64", "linux/arm64/v8"]));
    let _cleanup = ImageCleanup { docker: docker.clone(), ids: img.config_digests() };

    assert_eq!(img.media_type, DOCKER_LIST);
    let top = reg.manifest("lib/app", "v1").expect("tag exists");
    assert_eq!(top.media_type, DOCKER_LIST);
    assert_eq!(top.digest, img.digest);
    assert_eq!(reg.platform_configs("lib/app:v1").unwrap(), img.configs());
    assert!(img.configs().contains_key("linux/arm64/v8"));
    assert_eq!(reg.catalog(), vec!["lib/app".to_string()]);
    assert_eq!(reg.tags("lib/app"), vec!["v1".to_string()]);

    // skopeo agrees.
    let raw = skopeo_raw(&reg, "lib/app:v1");
    assert_eq!(raw["mediaType"], DOCKER_LIST);
    assert_eq!(raw["manifests"].as_array().unwrap().len(), 2);
    for p in &img.platforms {
        assert_eq!(skopeo_config_digest(&reg, "lib/app:v1", &p.platform), p.config, "{}", p.platform);
    }

    // The engine can pull each platform by digest (also the foreign one) and the
    // image ID is the config digest.
    for p in &img.platforms {
        let by_digest = format!("{}/lib/app@{}", reg.host(), p.manifest);
        docker.pull(&by_digest);
        let inspected = docker.inspect(&by_digest).expect("pulled image is there");
        assert_eq!(inspected["Id"], p.config.as_str());
        assert_eq!(format!("{}/{}", inspected["Os"].as_str().unwrap(), inspected["Architecture"].as_str().unwrap()),
            p.platform.split('/').take(2).collect::<Vec<_>>().join("/"));
    }
    let local = docker.images_with_ids(&img.config_digests());
    assert_eq!(local.iter().map(|i| &i.id).collect::<std::collections::BTreeSet<_>>().len(), 2, "{local:?}");
    docker.remove_ids(&img.config_digests());
    assert!(docker.images_with_ids(&img.config_digests()).is_empty());
}

#[test]
fn oci_index_with_attestations_and_bigger_layers() {
    let reg = Registry::start();
    let seed = unique("harness-oci");
    let img = reg.push_image(
        "team/tool:2.0",
        &ImageSpec::new(&seed).platforms(&["linux/amd64", "linux/arm64/v8"]).attestations().layer_size(256 * 1024),
    );
    assert_eq!(img.media_type, OCI_INDEX);
    assert_eq!(img.attestations.len(), 2);
    let top = reg.manifest("team/tool", "2.0").unwrap();
    let entries = top.json["manifests"].as_array().unwrap();
    assert_eq!(entries.len(), 4);
    let att: Vec<_> = entries
        .iter()
        .filter(|e| e["annotations"]["vnd.docker.reference.type"] == "attestation-manifest")
        .collect();
    assert_eq!(att.len(), 2);
    for a in &att {
        assert_eq!(a["platform"]["os"], "unknown");
        let subject = a["annotations"]["vnd.docker.reference.digest"].as_str().unwrap();
        assert!(img.platforms.iter().any(|p| p.manifest == subject));
        let m = reg.manifest("team/tool", a["digest"].as_str().unwrap()).unwrap();
        assert_eq!(m.json["layers"][0]["mediaType"], IN_TOTO);
    }
    let configs = reg.platform_configs("team/tool:2.0").unwrap();
    assert_eq!(configs.len(), 4, "{configs:?}");
    assert!(configs.contains_key("unknown/unknown") && configs.contains_key("unknown/unknown#2"));
    // Layer content is big and derived from the seed and platform.
    let amd = img.platform("linux/amd64");
    let layer = reg.blob("team/tool", &amd.layers[0]);
    assert!(layer.len() > 200 * 1024, "random content does not compress: {}", layer.len());
    assert_ne!(amd.layers, img.platform("linux/arm64").layers);

    let raw = skopeo_raw(&reg, "team/tool:2.0");
    assert_eq!(raw["mediaType"], OCI_INDEX);
    assert_eq!(skopeo_config_digest(&reg, "team/tool:2.0", "linux/arm64/v8"), img.platform("linux/arm64/v8").config);
}

#[test]
fn single_platform_oci_and_same_created_changes_config() {
    let reg = Registry::start();
    let a = reg.push_image("x/y:1", &ImageSpec::new(&unique("harness-a")).oci());
    assert_eq!(a.media_type, OCI_MANIFEST);
    let fetched = reg.manifest("x/y", "1").unwrap();
    assert_eq!(fetched.media_type, OCI_MANIFEST);
    assert!(!fetched.is_index());
    assert_eq!(reg.platform_configs("x/y:1").unwrap(), a.configs());
    let b = reg.push_image("x/y:1", &ImageSpec::new(&unique("harness-b")).oci());
    assert_ne!(a.platforms[0].config, b.platforms[0].config);
    assert_eq!(reg.platform_configs("x/y:1").unwrap(), b.configs());
    let cfg: serde_json::Value = serde_json::from_slice(&reg.blob("x/y", &b.platforms[0].config)).unwrap();
    assert_eq!(cfg["created"], DEFAULT_CREATED);
    assert!(reg.manifest("x/y", "missing").is_none());
    assert!(reg.platform_configs("nope/nope:1").is_none());
}

#[test]
fn auth_registry_accepts_basic_and_rejects_anonymous() {
    let reg = Registry::start_with_auth("alice", "harness-secret");
    let img = reg.push_image("p/q:1", &ImageSpec::new(&unique("harness-auth")).platforms(&["linux/arm64/v8"]));
    assert_eq!(reg.platform_configs("p/q:1").unwrap(), img.configs());
    assert_eq!(skopeo_config_digest(&reg, "p/q:1", "linux/arm64/v8"), img.platforms[0].config);
    let anonymous = std::process::Command::new("skopeo")
        .args(["inspect", "--tls-verify=false", "--no-creds", "--raw", &format!("docker://{}/p/q:1", reg.host())])
        .output()
        .unwrap();
    assert!(!anonymous.status.success());
}

#[test]
fn registry_counts_blob_gets() {
    let reg = Registry::start();
    let img = reg.push_image("c/d:1", &ImageSpec::new(&unique("harness-count")));
    let before = reg.blob_gets();
    let log_before = reg.blob_get_log().len();
    reg.blob("c/d", &img.platforms[0].config);
    reg.blob("c/d", &img.platforms[0].layers[0]);
    assert_eq!(reg.blob_gets() - before, 2);
    assert_eq!(reg.blob_get_log()[log_before..], [img.platforms[0].config.clone(), img.platforms[0].layers[0].clone()]);
}
