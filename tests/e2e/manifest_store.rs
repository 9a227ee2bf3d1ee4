//! End-to-end: `docker manifest inspect` reads `$DOCKER_CONFIG/manifests`
//! before the registry. A stale local list for the target (say, from a run
//! that created it but never pushed) must not make imgsync believe the target
//! is up-to-date.

use std::process::Command;

use crate::common::*;

#[test]
fn a_stale_local_manifest_list_does_not_shadow_the_registry() {
    let Some(_docker) = Docker::get_or_skip() else { return };
    let reg = Registry::start();
    let mut ws = Workspace::new();
    ws.custom_target(&reg, "mirror", None);
    let img = reg.push_image("lib/app:v1", &ImageSpec::new(&unique("stale")).platforms(&["linux/amd64", "linux/arm64/v8"]));
    let target = format!("{}/mirror/app:v1", reg.host());

    // The user's own docker config gets a local list for the target that
    // names exactly the source's platform images.
    let user_config = ws.home().join(".docker");
    std::fs::create_dir_all(&user_config).unwrap();
    let mut create = Command::new("docker");
    create.env("DOCKER_CONFIG", &user_config).args(["manifest", "create", "--insecure", &target]);
    for p in &img.platforms {
        create.arg(format!("{}/lib/app@{}", reg.host(), p.manifest));
    }
    let out = create.output().expect("docker manifest create");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(user_config.join("manifests").read_dir().unwrap().next().is_some(), "the local list exists");
    assert!(reg.manifest("mirror/app", "v1").is_none(), "and the registry has nothing");

    ws.images(&format!("{} => app\n", img.reference()));
    let run = ws.sync(&[]);
    run.expect_code(0);
    assert_eq!(run.status(1), "synced", "the registry, not the local list, decides\n{}", run.dump());
    assert_eq!(
        reg.platform_configs("mirror/app:v1").unwrap(),
        img.configs(),
        "the target holds the source's configs"
    );
    assert!(user_config.join("manifests").read_dir().unwrap().next().is_some(), "the user's local list is left alone");
}
