//! `imgsync map --format text|json|markdown`: pure renderers. Output is
//! deterministic (no times, input order), so a committed MIRRORS.md changes
//! only when the mapping does.

use serde::Serialize;

use super::{Listing, Mapping, Origin};
use crate::platform::Platform;

/// `original -> mirror`, one per line, for scripts. Images without a mirror
/// ([`Listing::Taken`]) are left out; [`problems`] names them.
pub fn text(mappings: &[Mapping]) -> String {
    let mut out = String::new();
    for m in mappings {
        if let Some(mirror) = &m.mirror {
            out.push_str(&format!("{} -> {mirror}\n", m.original.text));
        }
    }
    out
}

#[derive(Serialize)]
struct JsonRow<'a> {
    /// As written (`nginx:alpine`).
    source: &'a str,
    /// Normalised (`docker.io/library/nginx:alpine`).
    reference: String,
    mirror: Option<&'a str>,
    /// The line's platforms; empty: every platform of the source.
    platforms: &'a [Platform],
    /// The platform asked for, if any.
    platform: Option<&'a Platform>,
    line: Option<usize>,
    listing: &'a Listing,
    origin: &'a Origin,
    pull: Option<String>,
    /// With several targets: which one (its kind).
    #[serde(skip_serializing_if = "Option::is_none")]
    target: Option<&'a str>,
}

/// A JSON array of objects: `source`, `mirror`, `platforms`, `line`, and more.
#[cfg(test)]
pub fn json(mappings: &[Mapping]) -> String {
    json_of(&[(None, mappings)])
}

/// One JSON array for several targets' mappings, each row naming its target when given.
pub fn json_of(parts: &[(Option<&str>, &[Mapping])]) -> String {
    let rows: Vec<JsonRow> = parts
        .iter()
        .flat_map(|(target, mappings)| {
            mappings.iter().map(move |m| JsonRow {
                source: &m.original.text,
                reference: m.original.reference.to_string(),
                mirror: m.mirror.as_deref(),
                platforms: &m.platforms,
                platform: m.original.platform.as_ref(),
                line: m.line(),
                listing: &m.listing,
                origin: &m.original.origin,
                pull: m.pull_command(),
                target: *target,
            })
        })
        .collect();
    let mut s = serde_json::to_string_pretty(&rows).expect("plain data serialises");
    s.push('\n');
    s
}

/// A table for people: original, mirror, platforms, and the `docker pull`
/// command to copy. Every cell is escaped. (`map` renders through
/// [`super::document::markdown`], which adds sections and kept rows.)
#[cfg(test)]
pub fn markdown(mappings: &[Mapping]) -> String {
    let rows: Vec<String> = mappings.iter().map(markdown_row).collect();
    markdown_table(&rows)
}

/// The table's header and `rows`.
pub fn markdown_table(rows: &[String]) -> String {
    let mut out = String::from("| Original | Mirror | Platforms | Pull |\n| --- | --- | --- | --- |\n");
    for r in rows {
        out.push_str(r);
        out.push('\n');
    }
    out
}

/// One row of the table (no newline).
pub fn markdown_row(m: &Mapping) -> String {
    let platforms = match (&m.original.platform, m.platforms.as_slice()) {
        (Some(p), _) => p.to_string(),
        (None, []) => "all".to_string(),
        (None, ps) => ps.iter().map(|p| p.to_string()).collect::<Vec<_>>().join(", "),
    };
    let (mirror, pull) = match (&m.mirror, &m.listing) {
        (Some(mirror), Listing::Listed { .. }) => (code(mirror), code(&m.pull_command().unwrap_or_default())),
        (Some(mirror), Listing::Unlisted { add }) => (
            code(mirror),
            format!("{} (not in images.txt: add {})", code(&m.pull_command().unwrap_or_default()), code(add)),
        ),
        (_, Listing::Taken { add, taken_by }) => (
            "not mirrored".to_string(),
            format!("add {} to images.txt (its plain name is line {taken_by}'s target)", code(add)),
        ),
        (None, Listing::Unlisted { add }) => ("not mirrored".to_string(), format!("add {} to images.txt", code(add))),
        (None, Listing::Listed { .. }) => ("not mirrored".to_string(), String::new()),
    };
    format!("| {} | {mirror} | {} | {pull} |", code(&m.original.text), cell(&platforms))
}

/// Messages for stderr: images no line syncs, with the line to add.
pub fn problems(mappings: &[Mapping]) -> Vec<String> {
    mappings
        .iter()
        .filter_map(|m| match &m.listing {
            Listing::Listed { .. } => None,
            Listing::Unlisted { add } => Some(format!(
                "{}: not in images.txt; its mirror would be {} once you add the line: {add}",
                m.original.text,
                m.mirror.as_deref().unwrap_or("?")
            )),
            Listing::Taken { add, taken_by } => Some(format!(
                "{}: not mirrored; its plain name is the target of images.txt line {taken_by} (another image); add the line: {add}",
                m.original.text
            )),
        })
        .collect()
}

/// Text in a table cell: markdown, HTML and table syntax neutralised.
pub fn cell(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' | '`' | '*' | '_' | '[' | ']' | '#' | '!' | '~' | '|' => {
                out.push('\\');
                out.push(c);
            }
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '\r' => {}
            '\n' => out.push_str("<br>"),
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// A code span in a table cell: a fence longer than any backtick run inside,
/// `|` escaped (GFM splits cells before code spans), newlines as spaces.
pub fn code(s: &str) -> String {
    if s.is_empty() {
        return String::new();
    }
    let body: String = s
        .chars()
        .map(|c| if c == '\n' || c == '\r' || c.is_control() { ' ' } else { c })
        .collect::<String>()
        .replace('|', "\\|");
    let longest = body.split(|c| c != '`').map(str::len).max().unwrap_or(0);
    let fence = "`".repeat(longest + 1);
    let pad = if body.starts_with('`') || body.ends_with('`') || (body.starts_with(' ') && body.ends_with(' ')) { " " } else { "" };
    format!("{fence}{pad}{body}{pad}{fence}")
}

#[cfg(test)]
mod tests {
    use super::super::tests::{entries, target};
    use super::super::{map, Original};
    use super::*;

    const R: &str = "registry.cn-hangzhou.aliyuncs.com/ns";

    fn sample() -> Vec<Mapping> {
        let es = entries("nginx:alpine\n--platform=linux/arm64 mysql:8.0\nredis:7 => cache\nx:16 => postgres");
        let origs = [
            Original::parse("nginx:alpine", None).unwrap(),
            Original::parse("mysql:8.0", None).unwrap(),
            Original::parse("redis:7", Some("linux/amd64".parse().unwrap())).unwrap(),
            Original::parse("ghcr.io/o/app:2", None).unwrap(),
            Original::parse("postgres:16", None).unwrap(),
        ];
        map("images.txt", &es, &target(), &origs).unwrap()
    }

    #[test]
    fn text_lines() {
        assert_eq!(
            text(&sample()),
            format!("nginx:alpine -> {R}/nginx:alpine\nmysql:8.0 -> {R}/linux_arm64_mysql:8.0\nredis:7 -> {R}/cache:7\nghcr.io/o/app:2 -> {R}/ghcr-io_o_app:2\n")
        );
    }

    #[test]
    fn json_rows() {
        let v: serde_json::Value = serde_json::from_str(&json(&sample())).unwrap();
        let a = v.as_array().unwrap();
        assert_eq!(a.len(), 5);
        assert_eq!(a[0]["source"], "nginx:alpine");
        assert_eq!(a[0]["reference"], "docker.io/library/nginx:alpine");
        assert_eq!(a[0]["mirror"], format!("{R}/nginx:alpine"));
        assert_eq!(a[0]["line"], 1);
        assert_eq!(a[0]["platforms"], serde_json::json!([]));
        assert_eq!(a[0]["listing"]["status"], "listed");
        assert_eq!(a[0]["origin"]["kind"], "command_line");
        assert_eq!(a[1]["platforms"], serde_json::json!(["linux/arm64"]));
        assert_eq!(a[1]["pull"], format!("docker pull --platform linux/arm64 {R}/linux_arm64_mysql:8.0"));
        assert_eq!(a[2]["platform"], "linux/amd64");
        assert_eq!(a[3]["line"], serde_json::Value::Null);
        assert_eq!(a[3]["listing"], serde_json::json!({"status": "unlisted", "add": "ghcr.io/o/app:2"}));
        assert_eq!(a[4]["mirror"], serde_json::Value::Null);
        assert_eq!(a[4]["listing"]["taken_by"], 4);
    }

    #[test]
    fn markdown_table() {
        let md = markdown(&sample());
        let lines: Vec<&str> = md.lines().collect();
        assert_eq!(lines[0], "| Original | Mirror | Platforms | Pull |");
        assert_eq!(lines[2], format!("| `nginx:alpine` | `{R}/nginx:alpine` | all | `docker pull {R}/nginx:alpine` |"));
        assert_eq!(lines[3], format!("| `mysql:8.0` | `{R}/linux_arm64_mysql:8.0` | linux/arm64 | `docker pull --platform linux/arm64 {R}/linux_arm64_mysql:8.0` |"));
        assert!(lines[5].contains("(not in images.txt: add `ghcr.io/o/app:2`)"), "{}", lines[5]);
        assert!(lines[6].starts_with("| `postgres:16` | not mirrored | all | add `postgres:16 => postgres-2` to images.txt"), "{}", lines[6]);
        assert_eq!(lines.len(), 7);
    }

    #[test]
    fn markdown_escapes_external_text() {
        assert_eq!(cell("a|b\nc`d*e<f>&"), "a\\|b<br>c\\`d\\*e&lt;f&gt;&amp;");
        assert_eq!(code("a|b"), "`a\\|b`");
        assert_eq!(code("x`y"), "``x`y``");
        assert_eq!(code("`x"), "`` `x ``");
        assert_eq!(code("l1\nl2"), "`l1 l2`");
        assert_eq!(code(""), "");
        // Nothing in a cell can end the row or open a new cell.
        for s in ["a|b", "a\nb", "a\r\nb|c`d"] {
            assert!(!cell(s).contains('\n') && !code(s).contains('\n'));
            assert_eq!(cell(s).matches('|').count(), cell(s).matches("\\|").count());
            assert_eq!(code(s).matches('|').count(), code(s).matches("\\|").count());
        }
    }

    #[test]
    fn problems_name_the_line_to_add() {
        let p = problems(&sample());
        assert_eq!(p.len(), 2);
        assert!(p[0].starts_with("ghcr.io/o/app:2: not in images.txt") && p[0].ends_with("add the line: ghcr.io/o/app:2"), "{}", p[0]);
        assert!(p[1].contains("line 4") && p[1].ends_with("postgres:16 => postgres-2"), "{}", p[1]);
    }
}
