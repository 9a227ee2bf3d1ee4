//! `imgsync map --emit podman|containerd|k3s|docker`: the configuration that
//! makes a container runtime pull the *original* names from the mirror, so a
//! server needs no imgsync at all. Pure: the mappings and the target in, the
//! files (in the runtime's own layout, relative to `--out DIR`) and the
//! warnings out.
//!
//! - podman/CRI-O ([`super::podman`]): a `registries.conf.d` drop-in, one
//!   `[[registry]]` per source registry in path mode, one per image in flat mode;
//! - containerd ([`super::containerd`]): `certs.d/<registry>/hosts.toml` with
//!   `override_path`, path mode only;
//! - k3s ([`super::k3s`]): `registries.yaml` with `mirrors` and `rewrite`;
//! - docker: why `registry-mirrors` cannot serve a namespaced mirror, and the
//!   `imgsync pull` line that does.

use super::runtime_config::{Emitted, Mirror, Pair, Runtime};
use crate::naming::Naming;
use crate::reference::familiar;

/// The runtime's configuration for these pairs; Err: the runtime cannot use
/// this mirror as configured (the message says why and what to do).
pub fn emit(runtime: Runtime, mirror: &Mirror, pairs: &[Pair]) -> Result<Emitted, String> {
    match runtime {
        Runtime::Podman => Ok(super::podman::emit(mirror, pairs)),
        Runtime::Containerd => super::containerd::emit(mirror, pairs),
        Runtime::K3s => Ok(super::k3s::emit(mirror, pairs)),
        Runtime::Docker => Ok(docker(mirror, pairs)),
    }
}

/// The Docker daemon: text, nothing to write.
fn docker(mirror: &Mirror, pairs: &[Pair]) -> Emitted {
    let t = mirror.target;
    let naming = match t.naming {
        Naming::Flat => String::new(),
        Naming::Path => " --naming path".to_string(),
    };
    let mut originals: Vec<String> = Vec::new();
    for p in pairs.iter().filter(|p| !p.any_tag) {
        let f = familiar(&p.source);
        if !originals.contains(&f) {
            originals.push(f);
        }
    }
    let mut out = String::new();
    out.push_str("# The Docker daemon cannot pull the original names from this mirror by configuration:\n");
    out.push_str("# its registry-mirrors (daemon.json) serve Docker Hub images only, and expect them at the\n");
    out.push_str(&format!(
        "# mirror's root under their own names (library/nginx); this mirror keeps them under {}/{}/.\n",
        t.registry, t.namespace
    ));
    out.push_str("# imgsync pull does it instead: it pulls each image from the mirror and tags it with its\n");
    out.push_str("# original name (docker login to the mirror first if it is private):\n");
    if pairs.iter().any(|p| !p.same_tag() || (t.naming == Naming::Path && !mirror.follows_path_rule(p))) {
        out.push_str("# Some lines rename their image: run it where the sync's images.txt is (or pass --images FILE).
");
    }
    out.push_str(&format!("imgsync pull --mirror {}/{}{naming}", t.registry, t.namespace));
    for o in &originals {
        out.push(' ');
        out.push_str(o);
    }
    out.push('\n');
    Emitted { files: vec![("imgsync-pull.txt".into(), out)], warnings: Vec::new() }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mirror_map::runtime_config::tests::{pairs, target};
    use crate::naming::Naming;

    #[test]
    fn docker_says_why_and_gives_the_pull_line() {
        let t = target("r.example:5000", "team/mirror", Naming::Path);
        let m = Mirror { target: &t, plain_http: false, insecure_sources: &[] };
        let e = emit(Runtime::Docker, &m, &pairs(&t, "nginx:1.27\nbitnami/redis:7")).unwrap();
        let text = e.to_text();
        assert!(text.contains("registry-mirrors"), "{text}");
        assert!(text.ends_with("imgsync pull --mirror r.example:5000/team/mirror --naming path nginx:1.27 bitnami/redis:7\n"), "{text}");
    }
}
