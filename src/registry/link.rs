//! Paging of tag lists: `Link: </v2/name/tags/list?last=x&n=100>; rel="next"`
//! (distribution, Docker Hub, GHCR, Quay). The URL may be absolute or relative
//! to the page that carried it.

/// The `rel="next"` target among the `Link` header values.
pub fn next(values: &[&str]) -> Option<String> {
    for value in values {
        let mut rest = *value;
        while let Some(start) = rest.find('<') {
            let after = &rest[start + 1..];
            let end = after.find('>')?;
            let target = &after[..end];
            // Parameters run to the next '<' (commas may separate links).
            let params_end = after[end..].find('<').map_or(after.len(), |i| end + i);
            let params = &after[end + 1..params_end];
            let is_next = params.split(';').any(|p| {
                p.split_once('=').is_some_and(|(k, v)| {
                    k.trim().eq_ignore_ascii_case("rel")
                        && v.trim().trim_matches('"').split_ascii_whitespace().any(|r| r.eq_ignore_ascii_case("next"))
                })
            });
            if is_next {
                return Some(target.trim().to_string());
            }
            rest = &after[params_end..];
        }
    }
    None
}

/// Resolves `target` against the absolute URL `base` (RFC 3986, by the
/// `url` crate: absolute, `//host/...`, `/path?q`, `path?q`, `?q`).
pub fn resolve(base: &str, target: &str) -> Option<url::Url> {
    url::Url::parse(base).ok()?.join(target).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distribution_next_link() {
        // Recorded from docker-registry 2.8 with ?n=2.
        let v = r#"</v2/lib/app/tags/list?last=b&n=2>; rel="next""#;
        assert_eq!(next(&[v]).as_deref(), Some("/v2/lib/app/tags/list?last=b&n=2"));
        assert_eq!(next(&[]), None);
        assert_eq!(next(&[r#"</x>; rel="prev""#]), None);
    }

    #[test]
    fn several_links_and_unquoted_rel() {
        let v = r#"<https://a.example/v2/x/tags/list?last=1>; rel="prev", <https://a.example/v2/x/tags/list?last=9>; rel=next"#;
        assert_eq!(next(&[v]).as_deref(), Some("https://a.example/v2/x/tags/list?last=9"));
        assert_eq!(next(&["garbage", r#"<p2>; title="x"; rel="first next""#]).as_deref(), Some("p2"));
    }

    #[test]
    fn relative_urls() {
        let base = "https://quay.io/v2/coreos/etcd/tags/list?n=50";
        let r = |t: &str| resolve(base, t).unwrap().to_string();
        assert_eq!(r("/v2/coreos/etcd/tags/list?next_page=abc"), "https://quay.io/v2/coreos/etcd/tags/list?next_page=abc");
        assert_eq!(r("list?last=z"), "https://quay.io/v2/coreos/etcd/tags/list?last=z");
        assert_eq!(r("?last=z"), "https://quay.io/v2/coreos/etcd/tags/list?last=z");
        assert_eq!(r("//other.example/v2/x"), "https://other.example/v2/x");
        assert_eq!(r("http://h:5000/v2/x"), "http://h:5000/v2/x");
        assert_eq!(resolve("http://127.0.0.1:5000", "v2/x").unwrap().to_string(), "http://127.0.0.1:5000/v2/x");
        // `#@` is a fragment, not user info: the host stays the page's.
        let u = resolve("http://127.0.0.1:7048/v2/x/tags/list", "http://127.0.0.1:7048#@127.0.0.1:7049/v2/x").unwrap();
        assert_eq!(u.port(), Some(7048));
    }
}
