//! The previous MIRRORS.md (`map --previous FILE`): its table rows, by target
//! section, so that a tag-selecting line whose listing failed in this run
//! keeps the rows an earlier run wrote for it instead of losing them.

use crate::reference::ImageRef;

/// Rows of a previous MIRRORS.md. A section starts at a `### ` heading (one
/// per target when several are configured); rows before any heading belong
/// to the unnamed section (one target).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Previous {
    sections: Vec<(Option<String>, Vec<String>)>,
}

impl Previous {
    pub fn parse(text: &str) -> Previous {
        let mut sections: Vec<(Option<String>, Vec<String>)> = vec![(None, Vec::new())];
        for line in text.lines() {
            if let Some(h) = line.strip_prefix("### ") {
                sections.push((Some(h.trim().to_string()), Vec::new()));
            } else if line.starts_with("| `") {
                if let Some(last) = sections.last_mut() {
                    last.1.push(line.to_string());
                }
            }
        }
        Previous { sections }
    }

    /// The rows of section `heading` (None: the unnamed one) whose original
    /// is an image of repository `name` (`docker.io/library/nginx`).
    pub fn rows_of(&self, heading: Option<&str>, name: &str) -> Vec<String> {
        self.sections
            .iter()
            .filter(|(h, _)| h.as_deref() == heading)
            .flat_map(|(_, rows)| rows.iter())
            .filter(|row| original_of(row).is_some_and(|r| r.name() == name))
            .cloned()
            .collect()
    }
}

/// The Original cell of a row: `` | `nginx:1.27.3` | … `` (references hold
/// no backtick or `|`, so the code span is the plain text).
fn original_of(row: &str) -> Option<ImageRef> {
    let rest = row.strip_prefix("| `")?;
    let end = rest.find("` |")?;
    ImageRef::parse(&rest[..end]).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_by_section_and_repository() {
        let text = "# Mirrors\n\nintro\n\n### aliyun: `r1/ns`\n\n| Original | Mirror | Platforms | Pull |\n| --- | --- | --- | --- |\n\
                    | `nginx:1.27.1` | `r1/ns/nginx:1.27.1` | all | `docker pull r1/ns/nginx:1.27.1` |\n| `redis:7` | `r1/ns/redis:7` | all | x |\n\n\
                    ### ghcr: `ghcr.io/o`\n\n| `nginx:1.27.1` | `ghcr.io/o/nginx:1.27.1` | all | y |\n";
        let p = Previous::parse(text);
        let rows = p.rows_of(Some("aliyun: `r1/ns`"), "docker.io/library/nginx");
        assert_eq!(rows, ["| `nginx:1.27.1` | `r1/ns/nginx:1.27.1` | all | `docker pull r1/ns/nginx:1.27.1` |"]);
        assert_eq!(p.rows_of(Some("ghcr: `ghcr.io/o`"), "docker.io/library/nginx").len(), 1);
        assert!(p.rows_of(None, "docker.io/library/nginx").is_empty());
        let one = Previous::parse("| Original | Mirror |\n| --- | --- |\n| `quay.io/a/b:2` | `r/ns/quay-io_a_b:2` | all | z |\n");
        assert_eq!(one.rows_of(None, "quay.io/a/b").len(), 1);
    }
}
