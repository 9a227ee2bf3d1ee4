//! One sanitiser for text that comes from outside imgsync (docker's stderr,
//! registry answers, manifest fields, tags) before it reaches any output.
//!
//! - Control characters (C0 including `\r` and `\n`, DEL, C1 including NEL),
//!   ESC, the Unicode line and paragraph separators and the bidirectional
//!   controls (which can make a line read differently from what it holds)
//!   are shown as visible escapes: `\r`, `\n`, `\t`, `\e`, `\u{202e}`. A
//!   terminal never sees an escape sequence from a registry, and a log reader
//!   that splits lines on `\r` or `\n` (the GitHub Actions runner does both)
//!   never sees a new line start inside external text.
//! - Nothing external may start a line with a workflow command: a line that
//!   would start (after blanks) with `::` gets a backslash first, and the
//!   runner's older `##[command]` form is broken up wherever it appears.
//! - For the data of a workflow command (`::warning::DATA`), [`command_data`]
//!   adds the runner's own escaping (`%25`, `%0D`, `%0A`) on top, keeping
//!   line breaks of imgsync's own messages as `%0A`.

use std::fmt::Write as _;

/// A character shown as an escape: controls, separators and bidi controls.
pub fn is_unsafe(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{2028}' | '\u{2029}' // line and paragraph separators
                | '\u{061c}' | '\u{200e}' | '\u{200f}' // bidi marks
                | '\u{202a}'..='\u{202e}' // bidi embeddings and overrides
                | '\u{2066}'..='\u{2069}' // bidi isolates
                | '\u{feff}' // zero-width no-break space (BOM)
        )
}

fn push_escaped(out: &mut String, c: char) {
    match c {
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        '\u{1b}' => out.push_str("\\e"),
        c => {
            let _ = write!(out, "\\u{{{:x}}}", c as u32);
        }
    }
}

/// External text as part of one line: every unsafe character escaped, so
/// the result never holds a line break of any kind.
pub fn line(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if is_unsafe(c) {
            push_escaped(&mut out, c);
        } else {
            out.push(c);
        }
    }
    guard(out)
}

/// As [`line`], but `\n` stays a line break (imgsync's own messages may have
/// several lines); `\r\n` becomes `\n`, a lone `\r` is escaped, and every
/// resulting line is guarded against starting with a workflow command.
pub fn lines(s: &str) -> String {
    let s = s.replace("\r\n", "\n");
    s.split('\n').map(line).collect::<Vec<_>>().join("\n")
}

/// A whole line made safe to print: `::` at its start (after blanks) gets a
/// backslash, and `##[` anywhere becomes `#\#[`.
fn guard(mut s: String) -> String {
    if s.contains("##[") {
        s = s.replace("##[", "#\\#[");
    }
    if s.trim_start().starts_with("::") {
        let blanks = s.len() - s.trim_start().len();
        s.insert(blanks, '\\');
    }
    s
}

/// The data part of a workflow command (`::warning::DATA`): unsafe
/// characters escaped, then the runner's escaping, so one command stays one
/// line and line breaks of imgsync's own text show as breaks in the annotation.
pub fn command_data(s: &str) -> String {
    let s = lines(s);
    s.replace('%', "%25").replace('\r', "%0D").replace('\n', "%0A")
}

/// `s` without its surrounding blanks, cut to `max_chars` characters with
/// "…" when it was longer: the one clipper for docker's, registries' and
/// the run's texts in lines, table cells and webhook messages.
pub fn clip(s: &str, max_chars: usize) -> String {
    let s = s.trim();
    match s.char_indices().nth(max_chars) {
        Some((cut, _)) => format!("{}…", &s[..cut]),
        None => s.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOSTILE: &str = "denied: nope\r::error title=INJ::x\r::add-mask::synced";

    #[test]
    fn clip_trims_and_cuts_by_characters() {
        assert_eq!(clip("  short  ", 10), "short");
        assert_eq!(clip("abcdef", 6), "abcdef");
        assert_eq!(clip("abcdefg", 6), "abcdef…");
        // Characters, not bytes: a cut never splits one.
        assert_eq!(clip("ääää", 2), "ää…");
    }

    #[test]
    fn controls_become_visible() {
        assert_eq!(line("a\r\nb\tc\u{1b}[31md\u{7f}\u{85}"), "a\\r\\nb\\tc\\e[31md\\u{7f}\\u{85}");
        assert_eq!(line(HOSTILE), "denied: nope\\r::error title=INJ::x\\r::add-mask::synced");
        assert_eq!(line("evil\u{202e}txt.exe\u{2028}x"), "evil\\u{202e}txt.exe\\u{2028}x");
        assert_eq!(line("plain text: café → ok"), "plain text: café → ok");
    }

    #[test]
    fn no_line_starts_with_a_command() {
        assert_eq!(line("::error::x"), "\\::error::x");
        assert_eq!(line("  ::warning::x"), "  \\::warning::x");
        assert_eq!(line("a ::notice::b"), "a ::notice::b");
        assert_eq!(line("x ##[error]y"), "x #\\#[error]y");
        assert_eq!(lines("ok\n::add-mask::s\r\n  ::stop-commands::t\rz"), "ok\n\\::add-mask::s\n  \\::stop-commands::t\\rz");
        for out in [line(HOSTILE), lines(HOSTILE)] {
            for l in out.split(['\n', '\r', '\u{2028}', '\u{2029}', '\u{85}']) {
                assert!(!l.trim_start().starts_with("::"), "{l:?}");
            }
        }
    }

    #[test]
    fn command_data_is_one_line() {
        assert_eq!(command_data("100% sure\nnext"), "100%25 sure%0Anext");
        let d = command_data(HOSTILE);
        assert_eq!(d, "denied: nope\\r::error title=INJ::x\\r::add-mask::synced");
        assert!(!d.contains(['\r', '\n']));
        assert_eq!(command_data("a\r\n::b"), "a%0A\\::b");
    }
}
