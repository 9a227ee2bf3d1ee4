//! images.txt: `[--platform=P[,P...]] SOURCE [=> NAME[:TAG]]`, one entry per line.


use crate::platform::Platform;
use crate::reference::ImageRef;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// 1-based line in the file, for messages and the report.
    pub line: usize,
    /// Empty means every platform of the source.
    pub platforms: Vec<Platform>,
    pub source: ImageRef,
    pub rename: Option<Rename>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rename {
    pub name: String,
    pub tag: Option<String>,
}

pub use crate::line_error::LineError;

/// Parses the whole file; every bad line is reported, not just the first.
pub fn parse(file: &str, text: &str) -> Result<Vec<Entry>, Vec<LineError>> {
    let mut entries = Vec::new();
    let mut errors = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        match parse_line(line, raw) {
            Ok(Some(entry)) => entries.push(entry),
            Ok(None) => {}
            Err(message) => errors.push(LineError { file: file.to_string(), line, message }),
        }
    }
    if errors.is_empty() {
        Ok(entries)
    } else {
        Err(errors)
    }
}

fn strip_comment(raw: &str) -> &str {
    let mut prev_space = true;
    for (i, c) in raw.char_indices() {
        if c == '#' && prev_space {
            return &raw[..i];
        }
        prev_space = c.is_whitespace();
    }
    raw
}

fn parse_line(line: usize, raw: &str) -> Result<Option<Entry>, String> {
    let text = strip_comment(raw.strip_suffix('\r').unwrap_or(raw)).trim();
    if text.is_empty() {
        return Ok(None);
    }
    let (left, rename) = match text.split_once("=>") {
        Some((l, r)) => (l, Some(parse_rename(r.trim())?)),
        None => (text, None),
    };
    let mut platforms: Vec<Platform> = Vec::new();
    let mut source = None;
    let mut tokens = left.split_whitespace();
    while let Some(tok) = tokens.next() {
        if let Some(flag) = tok.strip_prefix("--") {
            let value = match flag.split_once('=') {
                Some(("platform", v)) => v.to_string(),
                None if flag == "platform" => tokens
                    .next()
                    .ok_or("--platform needs a value, e.g. --platform=linux/arm64")?
                    .to_string(),
                _ => return Err(format!("unknown option {tok:?}: only --platform=os/arch[/variant] is allowed")),
            };
            for p in value.split(',') {
                let p: Platform = p.trim().parse()?;
                if !platforms.iter().any(|q| q.matches(&p)) {
                    platforms.push(p);
                }
            }
        } else if source.is_some() {
            return Err(format!("unexpected {tok:?}: one image per line; rename with `SOURCE => NAME[:TAG]`"));
        } else {
            source = Some(ImageRef::parse(tok)?);
        }
    }
    let source = source.ok_or("no image on this line")?;
    Ok(Some(Entry { line, platforms, source, rename }))
}

fn parse_rename(r: &str) -> Result<Rename, String> {
    if r.is_empty() {
        return Err("`=>` needs a target NAME[:TAG]".into());
    }
    if r.split_whitespace().count() > 1 {
        return Err(format!("unexpected text after `=> {}`", r.split_whitespace().next().unwrap_or("")));
    }
    let (name, tag) = match r.split_once(':') {
        Some((n, t)) => (n, Some(t.to_string())),
        None => (r, None),
    };
    let name = name.to_ascii_lowercase();
    crate::naming::check_name(&name)?;
    if let Some(t) = &tag {
        crate::naming::check_tag(t)?;
    }
    Ok(Rename { name, tag })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(line: &str) -> Entry {
        let mut v = parse("images.txt", line).unwrap();
        assert_eq!(v.len(), 1);
        v.remove(0)
    }

    fn err(text: &str) -> Vec<String> {
        parse("images.txt", text).unwrap_err().iter().map(|e| e.to_string()).collect()
    }

    #[test]
    fn plain_lines_comments_and_crlf() {
        let v = parse("images.txt", "# header\n\nnginx:alpine # web\r\n  bitnami/redis:latest\r\nbusybox").unwrap();
        let srcs: Vec<_> = v.iter().map(|e| (e.line, e.source.to_string())).collect();
        assert_eq!(
            srcs,
            [
                (3, "docker.io/library/nginx:alpine".to_string()),
                (4, "docker.io/bitnami/redis:latest".to_string()),
                (5, "docker.io/library/busybox:latest".to_string()),
            ]
        );
    }

    #[test]
    fn platforms_both_forms() {
        let e = one("--platform=linux/arm64 mysql:8.0");
        assert_eq!(e.platforms, vec!["linux/arm64".parse().unwrap()]);
        let e = one("--platform linux/amd64,linux/arm64 mysql:8.0");
        assert_eq!(e.platforms.len(), 2);
        let e = one("--platform=linux/arm64,linux/arm64/v8 x");
        assert_eq!(e.platforms.len(), 1, "duplicates fold");
    }

    #[test]
    fn rename_lowercases_name_keeps_tag() {
        let e = one("nginx:alpine => MyNginx:Stable");
        assert_eq!(e.rename, Some(Rename { name: "mynginx".into(), tag: Some("Stable".into()) }));
        let e = one("nginx:alpine=>web");
        assert_eq!(e.rename, Some(Rename { name: "web".into(), tag: None }));
    }

    #[test]
    fn all_errors_at_once_with_lines() {
        let errs = err("nginx\n--arch=arm64 nginx\nnginx;touch /tmp/x\n$(id)\n`id`\nnginx => \nnginx redis\n--platform=linux nginx\n--platform\nnginx => a/b");
        assert_eq!(errs.len(), 9, "{errs:#?}");
        assert!(errs[0].starts_with("images.txt:2: unknown option"), "{}", errs[0]);
        assert!(errs[1].starts_with("images.txt:3: invalid image reference"));
        assert!(errs[2].starts_with("images.txt:4: invalid image reference"));
        assert!(errs[3].starts_with("images.txt:5: invalid image reference"));
        assert!(errs[4].starts_with("images.txt:6: `=>` needs"));
        assert!(errs[5].starts_with("images.txt:7: unexpected"));
        assert!(errs[6].starts_with("images.txt:8: invalid platform"));
        assert!(errs[7].starts_with("images.txt:9: --platform needs a value"));
        assert!(errs[8].starts_with("images.txt:10: "), "{}", errs[8]);
    }

    #[test]
    fn hash_inside_a_token_is_not_a_comment() {
        // `#` only starts a comment at line start or after whitespace.
        assert!(parse("images.txt", "nginx#x").is_err());
    }
}
