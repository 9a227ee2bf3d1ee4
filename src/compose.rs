//! Compose files, read natively: each service's `image:` and `platform:`,
//! interpolated as `docker compose` does, so `imgsync pull --compose` and
//! `imgsync map --compose` see the same references the engine will run.
//!
//! Pure: [`parse_dotenv`], [`interpolate`] and [`project`] take text and a
//! variable lookup; [`load`] is the thin file reader around them.
//!
//! What follows compose: `${VAR}`, `$VAR`, `${VAR:-default}`, `${VAR-default}`,
//! `${VAR:?message}`, `${VAR?message}`, `${VAR:+other}`, `${VAR+other}` and
//! `$$`, nested in defaults; the environment wins over the project's `.env`
//! (in the directory of the first file); later files override a service's
//! `image`, `platform` and `build`, with `!reset` and `!override`; YAML
//! anchors, aliases and `<<` merge keys in a service; `pull_policy: always`
//! is warned about (compose would go to the original registry); `extends:`
//! within the project's files. Not followed (yet): `extends:` with `file:`,
//! top-level `include:`, `--env-file`, `--project-directory`.

use std::fmt;
use std::path::{Path, PathBuf};

use saphyr::{LoadableYamlNode, Yaml};

use crate::platform::Platform;
use crate::reference::ImageRef;

/// One service that runs an image.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Service {
    pub name: String,
    /// `image:` after interpolation, as written (`nginx:alpine`): the name to tag locally.
    pub image: String,
    /// The same, parsed and normalised (`docker.io/library/nginx:alpine`).
    pub reference: ImageRef,
    pub platform: Option<Platform>,
    /// The file whose `image:` won the merge.
    pub file: String,
    /// It also has `build:`: compose builds it (`pull --ignore-buildable` skips it).
    pub build: bool,
    /// `profiles:`: the service runs only when one of them is active; none: always.
    pub profiles: Vec<String>,
}

impl Service {
    /// Whether compose starts this service with `active` profiles (`*`: all).
    pub fn active(&self, active: &[String]) -> bool {
        self.profiles.is_empty() || active.iter().any(|a| a == "*" || self.profiles.contains(a))
    }
}

/// The images of a compose project, services in order of first appearance.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Project {
    pub services: Vec<Service>,
    /// Services with `build:` and no `image:`: built locally, nothing to pull.
    pub build_only: Vec<String>,
    /// What compose would warn about too (unset variables that left a valid image).
    pub warnings: Vec<String>,
    /// COMPOSE_PROFILES as compose reads it (the environment, then `.env`), split at commas.
    pub env_profiles: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ComposeError {
    pub file: String,
    /// 1-based line, for `.env` errors.
    pub line: Option<usize>,
    pub service: Option<String>,
    pub message: String,
}

impl fmt::Display for ComposeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file)?;
        if let Some(l) = self.line {
            write!(f, ":{l}")?;
        }
        if let Some(s) = &self.service {
            write!(f, ": service {s:?}")?;
        }
        write!(f, ": {}", self.message)
    }
}

fn error(file: &str, service: Option<&str>, message: String) -> ComposeError {
    ComposeError { file: file.to_string(), line: None, service: service.map(str::to_string), message }
}

// ---------------------------------------------------------------------------
// Interpolation

/// The result of interpolating one value.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Interpolated {
    pub value: String,
    /// Variables that were unset and had no default, replaced by "" (compose warns).
    pub unset: Vec<String>,
}

fn is_name_start(c: char) -> bool {
    c == '_' || c.is_ascii_alphabetic()
}

fn is_name_char(c: char) -> bool {
    c == '_' || c.is_ascii_alphanumeric()
}

/// Interpolates `text` as compose does. `lookup` gives a variable's value
/// (`Some("")` is set but empty). Errors, as in compose: `${` without a
/// valid name or closing brace, and `${VAR?message}` / `${VAR:?message}`
/// when required; a `$` that starts no variable stays, as compose keeps it.
pub fn interpolate(text: &str, lookup: &dyn Fn(&str) -> Option<String>) -> Result<Interpolated, String> {
    let mut out = Interpolated::default();
    interpolate_into(text, lookup, &mut out, 0)?;
    Ok(out)
}

/// Deepest nesting of `${…}` inside defaults: far past any real file, and
/// short of the stack (50,000 levels overflowed it).
const MAX_INTERPOLATION_DEPTH: usize = 32;

fn interpolate_into(text: &str, lookup: &dyn Fn(&str) -> Option<String>, out: &mut Interpolated, depth: usize) -> Result<(), String> {
    if depth > MAX_INTERPOLATION_DEPTH {
        return Err(format!("invalid interpolation: `${{…}}` nested more than {MAX_INTERPOLATION_DEPTH} levels deep"));
    }
    let mut rest = text;
    while let Some(i) = rest.find('$') {
        out.value.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        let mut chars = after.chars();
        match chars.next() {
            Some('$') => {
                out.value.push('$');
                rest = &after[1..];
            }
            Some('{') => {
                let body_and_more = &after[1..];
                let end = closing_brace(body_and_more)
                    .ok_or_else(|| format!("invalid interpolation format in {text:?}: `${{` without a closing `}}`"))?;
                braced(&body_and_more[..end], text, lookup, out, depth)?;
                rest = &body_and_more[end + 1..];
            }
            Some(c) if is_name_start(c) => {
                let len = after.find(|c: char| !is_name_char(c)).unwrap_or(after.len());
                let name = &after[..len];
                substitute(name, lookup, out);
                rest = &after[len..];
            }
            // compose keeps a `$` that starts no variable (only `${` must be valid).
            _ => {
                out.value.push('$');
                rest = after;
            }
        }
    }
    out.value.push_str(rest);
    Ok(())
}

/// Index in `s` (the text after a `${`) of the `}` that closes it, as
/// compose-go finds it: every `{` opens a level (`${JSON:-{"json":1}}`), the
/// character after a `{` is skipped; failing that, the last `}` (compose's
/// pattern is greedy up to it).
fn closing_brace(s: &str) -> Option<usize> {
    let bytes = s.as_bytes();
    let mut depth = 1usize;
    let mut i = 1; // the `{` of `${` skipped the first character
    while i < bytes.len() {
        match bytes[i] {
            b'}' => {
                depth -= 1;
                if depth == 0 {
                    return Some(i);
                }
            }
            b'{' => {
                depth += 1;
                i += 1;
            }
            _ => {}
        }
        i += 1;
    }
    if bytes.first() == Some(&b'}') {
        return Some(0);
    }
    s.rfind('}')
}

fn substitute(name: &str, lookup: &dyn Fn(&str) -> Option<String>, out: &mut Interpolated) {
    match lookup(name) {
        Some(v) => out.value.push_str(&v),
        None => {
            if !out.unset.iter().any(|u| u == name) {
                out.unset.push(name.to_string());
            }
        }
    }
}

fn braced(body: &str, whole: &str, lookup: &dyn Fn(&str) -> Option<String>, out: &mut Interpolated, depth: usize) -> Result<(), String> {
    let invalid = || format!("invalid interpolation format in {whole:?}: `${{{body}}}`");
    if !body.starts_with(is_name_start) {
        return Err(invalid());
    }
    let len = body.find(|c: char| !is_name_char(c)).unwrap_or(body.len());
    let (name, op) = body.split_at(len);
    if op.is_empty() {
        substitute(name, lookup, out);
        return Ok(());
    }
    let (colon, op) = match op.strip_prefix(':') {
        Some(o) => (true, o),
        None => (false, op),
    };
    let mut chars = op.chars();
    let kind = chars.next().ok_or_else(invalid)?;
    let arg = chars.as_str();
    let value = lookup(name);
    // With `:`, set-but-empty counts as unset.
    let set = match &value {
        Some(v) => !(colon && v.is_empty()),
        None => false,
    };
    match kind {
        '-' => {
            if set {
                out.value.push_str(value.as_deref().unwrap_or_default());
            } else {
                interpolate_into(arg, lookup, out, depth + 1)?;
            }
        }
        '+' => {
            if set {
                interpolate_into(arg, lookup, out, depth + 1)?;
            }
        }
        '?' => {
            if set {
                out.value.push_str(value.as_deref().unwrap_or_default());
            } else {
                let mut msg = Interpolated::default();
                interpolate_into(arg, lookup, &mut msg, depth + 1)?;
                let what = if colon { "is unset or empty" } else { "is unset" };
                return Err(if msg.value.is_empty() {
                    format!("required variable {name} {what}")
                } else {
                    format!("required variable {name} {what}: {}", msg.value)
                });
            }
        }
        _ => return Err(invalid()),
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// .env

/// Parses a compose `.env` file: `KEY=VALUE` (or `KEY: VALUE`) lines, `export `
/// and `#` comments allowed; single quotes are literal, double quotes take `\n`,
/// `\t`, `\\`, `\"` and interpolation, quoted values may span lines;
/// unquoted values end at ` #` and are interpolated. References inside the
/// file see `env` first, then the keys defined above them; a `$` that starts
/// no variable stays (compose's `.env` reader is lenient there).
pub fn parse_dotenv(
    file: &str,
    text: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<(String, String)>, Vec<ComposeError>> {
    let mut values: Vec<(String, String)> = Vec::new();
    let mut errors = Vec::new();
    // compose-go skips a UTF-8 BOM.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let lines: Vec<&str> = text.lines().map(|l| l.strip_suffix('\r').unwrap_or(l)).collect();
    let mut i = 0;
    while i < lines.len() {
        let line_no = i + 1;
        let t = lines[i].trim();
        i += 1;
        if t.is_empty() || t.starts_with('#') {
            continue;
        }
        let err = |message: String| ComposeError { file: file.to_string(), line: Some(line_no), service: None, message };
        // `export` and any blank (compose-go: `^export\s+`).
        let t = match t.strip_prefix("export") {
            Some(rest) if rest.starts_with([' ', '\t']) => rest.trim_start(),
            _ => t,
        };
        // `KEY=VALUE`, or `KEY: VALUE` as compose also reads; a bare `KEY`
        // only passes the environment's value through, which wins anyway.
        let split = match (t.find('='), t.find(':')) {
            (Some(e), Some(c)) => Some(e.min(c)),
            (e, c) => e.or(c),
        };
        let Some((key, raw)) = split.map(|i| (&t[..i], &t[i + 1..])) else {
            if !t.is_empty() && t.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')) {
                continue;
            }
            // The line is not shown: a misplaced token would be printed.
            errors.push(err("expected KEY=VALUE (the line is not shown: it may hold a secret)".into()));
            continue;
        };
        let key = key.trim();
        if key.is_empty() || !key.chars().all(|c| c.is_alphanumeric() || matches!(c, '_' | '.' | '-' | '[' | ']')) {
            errors.push(err("invalid variable name: use letters, digits, '_', '.' and '-' before the '=' (the line is not shown)".into()));
            continue;
        }
        let raw = raw.trim_start();
        let lookup = |name: &str| env(name).or_else(|| values.iter().rev().find(|(k, _)| k == name).map(|(_, v)| v.clone()));
        let value = match raw.chars().next() {
            Some(q @ ('\'' | '"')) => {
                // Gather lines until the closing quote.
                let mut body = raw[1..].to_string();
                let close = loop {
                    if let Some(found) = scan_quoted(&body, q) {
                        break Some(found);
                    }
                    if i >= lines.len() {
                        break None;
                    }
                    body.push('\n');
                    body.push_str(lines[i]);
                    i += 1;
                };
                let Some((inner, end)) = close else {
                    errors.push(err(format!("missing closing {q}")));
                    continue;
                };
                let tail = body[end + 1..].trim();
                if !(tail.is_empty() || tail.starts_with('#')) {
                    errors.push(err(format!("unexpected text after the closing {q} (the line is not shown)")));
                    continue;
                }
                if q == '\'' {
                    Ok(inner)
                } else {
                    interpolate(&expand_escapes(&inner), &lookup).map(|r| r.value)
                }
            }
            _ => {
                let v = match raw.find(" #") {
                    Some(j) => &raw[..j],
                    None => raw,
                };
                interpolate(v.trim(), &lookup).map(|r| r.value)
            }
        };
        match value {
            Ok(v) => values.push((key.to_string(), v)),
            // The interpolation error quotes the value: say what, not the text.
            Err(m) if m.starts_with("invalid interpolation") => {
                errors.push(err("invalid interpolation in the value: a `${` without a valid name or closing `}` (the line is not shown)".into()))
            }
            Err(m) => errors.push(err(m)),
        }
    }
    if errors.is_empty() {
        Ok(values)
    } else {
        Err(errors)
    }
}

/// The text up to the closing quote `q` and the quote's index, as compose-go
/// scans it: a backslash before the quote makes it part of the text (in
/// single quotes too: `'Let\'s go!'`); before anything else it stays.
fn scan_quoted(body: &str, q: char) -> Option<(String, usize)> {
    let mut out = String::new();
    let mut escaped = false;
    for (i, c) in body.char_indices() {
        if c == q && !escaped {
            return Some((out, i));
        }
        if c == q {
            escaped = false;
            out.push(c);
        } else if !escaped && c == '\\' {
            escaped = true;
        } else {
            if escaped {
                escaped = false;
                out.push('\\');
            }
            out.push(c);
        }
    }
    None
}

/// Escapes in double quotes, as compose-go expands them: Go's `\a \b \f \n
/// \r \t \v \\ \"`, `\0` plus three octal digits, and `\$` for a literal `$`
/// (written `$$` here, for the interpolation that follows). Others stay as written.
fn expand_escapes(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('\\') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        let mut chars = after.chars();
        let (text, used): (String, usize) = match chars.next() {
            Some('a') => ("\u{7}".into(), 1),
            Some('b') => ("\u{8}".into(), 1),
            Some('f') => ("\u{c}".into(), 1),
            Some('n') => ("\n".into(), 1),
            Some('r') => ("\r".into(), 1),
            Some('t') => ("\t".into(), 1),
            Some('v') => ("\u{b}".into(), 1),
            Some('$') => ("$$".into(), 1),
            Some(c @ ('"' | '\\')) => (c.to_string(), 1),
            Some('0') => {
                let digits: String = after[1..].chars().take(3).take_while(char::is_ascii_digit).collect();
                let octal = (digits.len() == 3).then(|| u32::from_str_radix(&digits, 8).ok()).flatten().filter(|v| *v <= 255);
                match octal.and_then(char::from_u32) {
                    Some(c) => (c.to_string(), 1 + digits.len()),
                    None => (format!("\\0{digits}"), 1 + digits.len()),
                }
            }
            Some(c) => (format!("\\{c}"), c.len_utf8()),
            None => ("\\".into(), 0),
        };
        out.push_str(&text);
        rest = &after[used..];
    }
    out.push_str(rest);
    out
}

// ---------------------------------------------------------------------------
// Services

/// A value in one file: set, or reset to nothing by `!reset`.
#[derive(Clone, Debug)]
enum Field {
    Set(String),
    Reset,
}

#[derive(Clone, Debug, Default)]
struct Merged {
    name: String,
    /// (raw text before interpolation, file that set it)
    image: Option<(String, String)>,
    platform: Option<(String, String)>,
    pull_policy: Option<(String, String)>,
    build: bool,
    /// `profiles:`, appended across files as compose merges sequences.
    profiles: Vec<String>,
    /// `extends:`: the base service, and whether it lives in another file.
    extends: Option<(String, bool)>,
    /// A key was malformed (already reported): no further errors about it.
    broken: bool,
    /// Last file that mentioned the service, for errors about it as a whole.
    file: String,
}

fn key_str<'a>(k: &'a Yaml<'a>) -> Option<String> {
    match k {
        Yaml::Value(s) => match s.as_str() {
            Some(v) => Some(v.to_string()),
            None => s.as_integer().map(|i| i.to_string()),
        },
        _ => None,
    }
}

fn is_reset(v: &Yaml) -> bool {
    matches!(v, Yaml::Tagged(tag, _) if tag.handle == "!" && tag.suffix == "reset")
}

/// `!override x` is `x` for our keys (we replace scalars anyway).
fn untag<'a, 'b>(v: &'b Yaml<'a>) -> &'b Yaml<'a> {
    match v {
        Yaml::Tagged(tag, inner) if tag.handle == "!" && tag.suffix == "override" => inner,
        _ => v,
    }
}

/// A key of a service, explicit keys first, then `<<` merge keys (a mapping
/// or a list of mappings, earlier ones winning), as YAML 1.1 merge keys work.
fn service_get<'a, 'b>(service: &'b Yaml<'a>, key: &str) -> Option<&'b Yaml<'a>> {
    let map = service.as_mapping()?;
    let mut merge = None;
    for (k, v) in map {
        match key_str(k).as_deref() {
            Some(k) if k == key => return Some(v),
            Some("<<") => merge = Some(v),
            _ => {}
        }
    }
    match merge? {
        m @ Yaml::Mapping(_) => service_get(m, key),
        Yaml::Sequence(seq) => seq.iter().find_map(|m| service_get(m, key)),
        _ => None,
    }
}

fn scalar_field(file: &str, service: &str, key: &str, v: &Yaml) -> Result<Option<Field>, ComposeError> {
    if is_reset(v) {
        return Ok(Some(Field::Reset));
    }
    match untag(v) {
        Yaml::Value(s) if s.is_null() => Ok(None),
        Yaml::Value(s) => match s.as_str() {
            Some(text) => Ok(Some(Field::Set(text.to_string()))),
            None => Err(error(file, Some(service), format!("`{key}:` must be a string; quote it"))),
        },
        _ => Err(error(file, Some(service), format!("`{key}:` must be a string"))),
    }
}

/// Reads the services of several compose files (in `-f` order, later files
/// overriding a service's `image`, `platform` and `build`) and interpolates
/// their `image:` and `platform:` with `lookup` (see [`lookup_chain`]).
/// Every error is reported, not just the first.
pub fn project(files: &[(&str, &str)], lookup: &dyn Fn(&str) -> Option<String>) -> Result<Project, Vec<ComposeError>> {
    let mut merged: Vec<Merged> = Vec::new();
    let mut errors = Vec::new();
    for (file, text) in files {
        if let Err(e) = check_expansion(text) {
            errors.push(error(file, None, e));
            continue;
        }
        let docs = match Yaml::load_from_str(text) {
            Ok(d) => d,
            Err(e) => {
                errors.push(error(file, None, format!("not valid YAML: {e}")));
                continue;
            }
        };
        let Some(doc) = docs.first() else { continue };
        if doc.is_null() {
            continue;
        }
        let Some(top) = doc.as_mapping() else {
            errors.push(error(file, None, "expected a mapping with `services:` at the top".into()));
            continue;
        };
        let Some(services) = top.iter().find(|(k, _)| key_str(k).as_deref() == Some("services")).map(|(_, v)| v)
        else {
            continue;
        };
        if services.is_null() {
            continue;
        }
        let Some(services) = services.as_mapping() else {
            errors.push(error(file, None, "`services:` must be a mapping of service names".into()));
            continue;
        };
        for (k, svc) in services {
            let Some(name) = key_str(k) else {
                errors.push(error(file, None, "a service name must be a string".into()));
                continue;
            };
            let idx = match merged.iter().position(|m| m.name == name) {
                Some(i) => i,
                None => {
                    merged.push(Merged { name: name.clone(), ..Default::default() });
                    merged.len() - 1
                }
            };
            let m = &mut merged[idx];
            m.file = file.to_string();
            if svc.is_null() {
                continue;
            }
            if svc.as_mapping().is_none() {
                errors.push(error(file, Some(&name), "a service must be a mapping".into()));
                m.broken = true;
                continue;
            }
            for (key, slot) in [("image", &mut m.image), ("platform", &mut m.platform), ("pull_policy", &mut m.pull_policy)] {
                match service_get(svc, key).map(|v| scalar_field(file, &name, key, v)) {
                    None | Some(Ok(None)) => {}
                    Some(Ok(Some(Field::Set(t)))) => *slot = Some((t, file.to_string())),
                    Some(Ok(Some(Field::Reset))) => *slot = None,
                    Some(Err(e)) => {
                        errors.push(e);
                        m.broken = true;
                    }
                }
            }
            match service_get(svc, "build") {
                None => {}
                Some(v) if is_reset(v) => m.build = false,
                Some(v) if v.is_null() => {}
                Some(_) => m.build = true,
            }
            match service_get(svc, "profiles") {
                None => {}
                Some(v) if is_reset(v) => m.profiles.clear(),
                Some(v) => match untag(v).as_sequence().map(|s| s.iter().map(key_str).collect::<Option<Vec<String>>>()) {
                    Some(Some(list)) => {
                        // `!override` replaces the list; otherwise sequences append.
                        if !std::ptr::eq(untag(v), v) {
                            m.profiles.clear();
                        }
                        for p in list {
                            if !m.profiles.contains(&p) {
                                m.profiles.push(p);
                            }
                        }
                    }
                    _ => {
                        errors.push(error(file, Some(&name), "`profiles:` must be a list of names".into()));
                        m.broken = true;
                    }
                },
            }
            match service_get(svc, "extends").map(untag) {
                None => {}
                Some(v @ Yaml::Value(_)) => m.extends = Some((key_str(v).unwrap_or_default(), false)),
                Some(e @ Yaml::Mapping(_)) => {
                    let base = service_get(e, "service").and_then(|v| key_str(v)).unwrap_or_default();
                    m.extends = Some((base, service_get(e, "file").is_some()));
                }
                Some(_) => m.extends = Some((String::new(), false)),
            }
        }
    }
    let merged = apply_extends(&merged);
    let mut out = Project::default();
    for m in merged.iter().filter(|m| !m.broken) {
        match resolve(m, lookup, &mut out.warnings) {
            Ok(Some(s)) => out.services.push(s),
            Ok(None) => out.build_only.push(m.name.clone()),
            Err(e) => errors.push(e),
        }
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors)
    }
}

/// Most nodes a compose file may expand to through YAML aliases: real
/// files have hundreds; a "billion laughs" has billions.
const MAX_YAML_NODES: u64 = 100_000;

/// Counts the nodes the file expands to, each alias as the size of what it
/// names, in keys as well as values (saphyr's own budget counts a key as one
/// node), from the parser's events: nothing is built. A file that does not
/// parse is left to the loader, which says why.
fn check_expansion(text: &str) -> Result<(), String> {
    use saphyr_parser::{Event, Parser};
    let mut sizes: std::collections::HashMap<usize, u64> = std::collections::HashMap::new();
    // (anchor id, nodes so far) of each open sequence or mapping.
    let mut open: Vec<(usize, u64)> = Vec::new();
    let mut total = 0u64;
    for ev in Parser::new_from_str(text) {
        let Ok((ev, _)) = ev else { return Ok(()) };
        let added = match ev {
            Event::Scalar(_, _, anchor, _) => {
                if anchor > 0 {
                    sizes.insert(anchor, 1);
                }
                1
            }
            Event::Alias(id) => sizes.get(&id).copied().unwrap_or(1),
            Event::SequenceStart(anchor, _) | Event::MappingStart(anchor, _) => {
                open.push((anchor, 1));
                total += 1;
                continue;
            }
            Event::SequenceEnd | Event::MappingEnd => {
                let Some((anchor, n)) = open.pop() else { continue };
                if anchor > 0 {
                    sizes.insert(anchor, n);
                }
                if let Some(parent) = open.last_mut() {
                    parent.1 = parent.1.saturating_add(n);
                }
                continue;
            }
            _ => continue,
        };
        total = total.saturating_add(added);
        if let Some(parent) = open.last_mut() {
            parent.1 = parent.1.saturating_add(added);
        }
        if total > MAX_YAML_NODES {
            return Err(format!("YAML aliases expand this file past {MAX_YAML_NODES} nodes: refusing it"));
        }
    }
    Ok(())
}

fn unset_note(unset: &[String]) -> String {
    match unset {
        [] => String::new(),
        [one] => format!(" (variable {one} is not set)"),
        many => format!(" (variables {} are not set)", many.join(", ")),
    }
}

/// Same-file `extends:`: a service takes its base's `image`, `platform`,
/// `pull_policy` and `build` where it has none of its own (chains followed,
/// cycles stop). A base in another file (`extends: {file: …}`) is not read.
fn apply_extends(merged: &[Merged]) -> Vec<Merged> {
    let mut out = merged.to_vec();
    for m in out.iter_mut() {
        let mut seen = vec![m.name.clone()];
        let mut next = m.extends.clone();
        while let Some((base, false)) = next {
            if seen.contains(&base) {
                break;
            }
            let Some(b) = merged.iter().find(|x| x.name == base) else { break };
            if m.image.is_none() {
                m.image = b.image.clone();
            }
            if m.platform.is_none() {
                m.platform = b.platform.clone();
            }
            if m.pull_policy.is_none() {
                m.pull_policy = b.pull_policy.clone();
            }
            m.build |= b.build;
            for p in &b.profiles {
                if !m.profiles.contains(p) {
                    m.profiles.push(p.clone());
                }
            }
            seen.push(base);
            next = b.extends.clone();
        }
    }
    out
}

/// File text for a message: as is, or quoted and escaped if it holds control characters.
fn shown(raw: &str) -> String {
    if raw.chars().any(char::is_control) {
        format!("{raw:?}")
    } else {
        raw.to_string()
    }
}

/// Does a variable's name say it holds a secret (`CUSTOM_PASSWORD`,
/// `GITHUB_TOKEN`, `API_KEY`, `DB_SECRET`, ...)? Its value is then never
/// printed, and never becomes part of an image name.
pub fn looks_secret(name: &str) -> bool {
    let n = name.to_ascii_uppercase();
    crate::secret::is_secret_key(&n)
        || ["PASSWORD", "PASSWD", "TOKEN", "SECRET", "CREDENTIAL", "API_KEY", "APIKEY", "PRIVATE_KEY", "ACCESS_KEY"].iter().any(|w| n.contains(w))
}

/// The service's image and platform, or None for a build-only service.
/// Values of secret-looking variables are masked in every message, and an
/// image that uses one is refused.
fn resolve(m: &Merged, lookup: &dyn Fn(&str) -> Option<String>, warnings: &mut Vec<String>) -> Result<Option<Service>, ComposeError> {
    let used: std::cell::RefCell<Vec<(String, String)>> = Default::default();
    let recording = |name: &str| {
        let v = lookup(name);
        if let Some(v) = v.as_ref().filter(|v| looks_secret(name) && !v.trim().is_empty()) {
            used.borrow_mut().push((name.to_string(), v.clone()));
        }
        v
    };
    let result = resolve_with(m, &recording, warnings);
    let secrets = used.into_inner();
    let mask = |text: String| secrets.iter().fold(text, |t, (_, v)| t.replace(v.as_str(), "***"));
    let image_file = m.image.as_ref().map_or(m.file.as_str(), |(_, f)| f.as_str());
    match result {
        Err(_) | Ok(Some(_)) if !secrets.is_empty() => {
            let names: Vec<&str> = secrets.iter().map(|(n, _)| n.as_str()).collect();
            let raw = m.image.as_ref().map(|(r, _)| shown(r)).unwrap_or_default();
            Err(error(
                image_file,
                Some(&m.name),
                format!(
                    "`image: {raw}` uses {}, which looks secret: refusing it (the value would be printed and sent to registries as a name)",
                    names.join(", ")
                ),
            ))
        }
        Err(mut e) => {
            e.message = mask(e.message);
            Err(e)
        }
        Ok(other) => {
            for w in warnings.iter_mut() {
                *w = mask(std::mem::take(w));
            }
            Ok(other)
        }
    }
}

fn resolve_with(m: &Merged, lookup: &dyn Fn(&str) -> Option<String>, warnings: &mut Vec<String>) -> Result<Option<Service>, ComposeError> {
    let Some((raw_image, file)) = &m.image else {
        if m.build {
            return Ok(None);
        }
        let why = match &m.extends {
            Some((_, true)) => "has no `image:` of its own, and `extends:` from another file is not followed yet: add `image:` to it".to_string(),
            Some((base, false)) => format!("has no `image:` nor `build:`, nor does the service it extends ({base:?})"),
            None => "has neither `image:` nor `build:`".to_string(),
        };
        return Err(error(&m.file, Some(&m.name), why));
    };
    let raw = shown(raw_image);
    let img = interpolate(raw_image, lookup).map_err(|e| error(file, Some(&m.name), format!("image: {e}")))?;
    // Compose only warns about an unset variable and then fails later (or
    // pulls something unintended). imgsync would pull and tag a wrong or
    // empty name on a server, so an image that comes out empty or invalid is
    // an error here, naming the service, the file and the variable.
    if img.value.trim().is_empty() {
        return Err(error(file, Some(&m.name), format!("`image: {raw}` is empty after interpolation{}", unset_note(&img.unset))));
    }
    let reference = ImageRef::parse(&img.value).map_err(|e| {
        error(file, Some(&m.name), format!("`image: {raw}` gives {:?}{}: {e}", img.value, unset_note(&img.unset)))
    })?;
    for u in &img.unset {
        warnings.push(format!("{file}: service {:?}: variable {u} is not set; it was replaced by an empty string in `image: {raw}`", m.name));
    }
    let platform = match &m.platform {
        None => None,
        Some((raw_platform, pfile)) => {
            let raw_p = shown(raw_platform);
            let p = interpolate(raw_platform, lookup).map_err(|e| error(pfile, Some(&m.name), format!("platform: {e}")))?;
            if p.value.trim().is_empty() && !p.unset.is_empty() {
                // An unset platform means "this host's", as in compose.
                warnings.push(format!("{pfile}: service {:?}: `platform: {raw_p}` is empty{}; using this host's platform", m.name, unset_note(&p.unset)));
                None
            } else {
                Some(p.value.trim().parse::<Platform>().map_err(|e| {
                    error(pfile, Some(&m.name), format!("`platform: {raw_p}`{}: {e}", unset_note(&p.unset)))
                })?)
            }
        }
    };
    if let Some((raw_policy, pfile)) = &m.pull_policy {
        let policy = interpolate(raw_policy, lookup).map(|p| p.value).unwrap_or_else(|_| raw_policy.clone());
        if policy.trim() == "always" {
            warnings.push(format!(
                "{pfile}: service {:?} has `pull_policy: always`: `docker compose up` will pull {} from its own registry again; where only the mirror is reachable, use `pull_policy: missing` (the default)",
                m.name, img.value
            ));
        }
    }
    Ok(Some(Service { name: m.name.clone(), image: img.value, reference, platform, file: file.clone(), build: m.build, profiles: m.profiles.clone() }))
}

/// The lookup compose uses: the environment first, then `.env`.
pub fn lookup_chain<'a>(
    env: &'a dyn Fn(&str) -> Option<String>,
    dotenv: &'a [(String, String)],
) -> impl Fn(&str) -> Option<String> + 'a {
    move |name| env(name).or_else(|| dotenv.iter().rev().find(|(k, _)| k == name).map(|(_, v)| v.clone()))
}

/// Reads the files (in `--compose` order) and the `.env` beside the first
/// one, if there is one, and returns [`project`] of them.
pub fn load(paths: &[PathBuf], env: &dyn Fn(&str) -> Option<String>) -> Result<Project, Vec<ComposeError>> {
    let mut texts = Vec::new();
    let mut errors = Vec::new();
    for p in paths {
        match read_capped(p) {
            Ok(t) => texts.push((p.display().to_string(), t)),
            Err(e) => errors.push(error(&p.display().to_string(), None, e)),
        }
    }
    let dir = paths.first().and_then(|p| p.parent()).map(|d| if d.as_os_str().is_empty() { Path::new(".") } else { d });
    let mut dotenv = Vec::new();
    if let Some(dir) = dir {
        let path = dir.join(".env");
        if path.exists() {
            match read_capped(&path) {
                Ok(text) => match parse_dotenv(&path.display().to_string(), &text, env) {
                    Ok(v) => dotenv = v,
                    Err(e) => errors.extend(e),
                },
                Err(e) => errors.push(error(&path.display().to_string(), None, e)),
            }
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    let lookup = lookup_chain(env, &dotenv);
    let files: Vec<(&str, &str)> = texts.iter().map(|(n, t)| (n.as_str(), t.as_str())).collect();
    let mut p = project(&files, &lookup)?;
    p.env_profiles = lookup("COMPOSE_PROFILES").map(|v| split_profiles(&v)).unwrap_or_default();
    Ok(p)
}

/// `a, b,,c` -> `[a, b, c]`: COMPOSE_PROFILES as compose splits it.
pub fn split_profiles(v: &str) -> Vec<String> {
    v.split(',').map(str::trim).filter(|p| !p.is_empty()).map(str::to_string).collect()
}

/// Largest compose or `.env` file read: real ones are a few KiB.
const MAX_FILE_BYTES: u64 = 1 << 20;

/// A file's text, refused past [`MAX_FILE_BYTES`] without reading the rest.
fn read_capped(path: &Path) -> Result<String, String> {
    use std::io::Read;
    let f = std::fs::File::open(path).map_err(|e| format!("cannot read: {e}"))?;
    let mut bytes = Vec::new();
    f.take(MAX_FILE_BYTES + 1).read_to_end(&mut bytes).map_err(|e| format!("cannot read: {e}"))?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err("larger than 1 MiB: refusing it (compose files are a few KiB)".into());
    }
    String::from_utf8(bytes).map_err(|_| "cannot read: not UTF-8 text".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    /// Variables held in a map.
    fn map_lookup(m: &HashMap<String, String>) -> impl Fn(&str) -> Option<String> + '_ {
        move |k| m.get(k).cloned()
    }

    fn vars(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    fn interp(text: &str, pairs: &[(&str, &str)]) -> Result<Interpolated, String> {
        let m = vars(pairs);
        let lookup = map_lookup(&m);
        interpolate(text, &lookup)
    }

    fn val(text: &str, pairs: &[(&str, &str)]) -> String {
        interp(text, pairs).unwrap().value
    }

    fn proj(files: &[(&str, &str)], pairs: &[(&str, &str)]) -> Result<Project, Vec<String>> {
        let m = vars(pairs);
        let lookup = map_lookup(&m);
        project(files, &lookup).map_err(|e| e.iter().map(|e| e.to_string()).collect())
    }

    fn images(p: &Project) -> Vec<(String, String, Option<String>)> {
        p.services.iter().map(|s| (s.name.clone(), s.image.clone(), s.platform.as_ref().map(|p| p.to_string()))).collect()
    }

    #[test]
    fn braced_and_plain_variables() {
        assert_eq!(val("${REG}/app:${TAG}", &[("REG", "r.io"), ("TAG", "1")]), "r.io/app:1");
        assert_eq!(val("$REG/app:$TAG-x", &[("REG", "r.io"), ("TAG", "1")]), "r.io/app:1-x");
        let r = interp("nginx:${TAG}", &[]).unwrap();
        assert_eq!((r.value.as_str(), r.unset.as_slice()), ("nginx:", &["TAG".to_string()][..]));
    }

    #[test]
    fn colon_dash_default_for_unset_or_empty() {
        assert_eq!(val("nginx:${TAG:-alpine}", &[]), "nginx:alpine");
        assert_eq!(val("nginx:${TAG:-alpine}", &[("TAG", "")]), "nginx:alpine");
        assert_eq!(val("nginx:${TAG:-alpine}", &[("TAG", "1.27")]), "nginx:1.27");
        assert!(interp("nginx:${TAG:-alpine}", &[]).unwrap().unset.is_empty(), "a default is not an unset warning");
    }

    #[test]
    fn dash_default_only_for_unset() {
        assert_eq!(val("nginx:${TAG-alpine}", &[]), "nginx:alpine");
        assert_eq!(val("nginx:${TAG-alpine}", &[("TAG", "")]), "nginx:");
        assert_eq!(val("nginx:${TAG-alpine}", &[("TAG", "x")]), "nginx:x");
    }

    #[test]
    fn nested_defaults_and_plus_forms() {
        assert_eq!(val("${A:-${B:-deep}}", &[]), "deep");
        assert_eq!(val("${A:-${B}}", &[("B", "b")]), "b");
        assert_eq!(val("x${A:+-set}", &[("A", "1")]), "x-set");
        assert_eq!(val("x${A:+-set}", &[("A", "")]), "x");
        assert_eq!(val("x${A+-set}", &[("A", "")]), "x-set");
        assert_eq!(val("x${A+-set}", &[]), "x");
    }

    #[test]
    fn required_variables() {
        assert_eq!(interp("${TAG:?set TAG}", &[]).unwrap_err(), "required variable TAG is unset or empty: set TAG");
        assert_eq!(interp("${TAG?}", &[]).unwrap_err(), "required variable TAG is unset");
        assert_eq!(val("${TAG?x}", &[("TAG", "")]), "");
        assert_eq!(val("${TAG:?x}", &[("TAG", "1")]), "1");
    }

    #[test]
    fn dollar_dollar_and_lone_dollars() {
        assert_eq!(val("a$$b", &[("b", "no")]), "a$b");
        assert_eq!(val("$${X}", &[("X", "no")]), "${X}");
        // As compose: a `$` that starts no variable stays (issue 19; it was an error).
        for lone in ["a$", "a$1", "$-x", "a $ b"] {
            assert_eq!(val(lone, &[]), lone);
        }
    }

    #[test]
    fn invalid_braces() {
        for bad in ["${", "${TAG", "${}", "${1X}", "${A B}", "${A:}", "${A*x}"] {
            assert!(interp(bad, &[]).is_err(), "{bad}");
        }
    }

    #[test]
    fn dotenv_forms() {
        let env = vars(&[("HOME_REG", "env.io")]);
        let text = "# c\nexport A=1\nB = two words # note\nC='lit ${A}'\nD=\"x\\ny ${A}\"\nE=${HOME_REG}/${A}\nM=\"line1\nline2\"\nF=\r\n";
        let v = parse_dotenv(".env", text, &map_lookup(&env)).unwrap();
        let m: HashMap<_, _> = v.into_iter().collect();
        assert_eq!(m["A"], "1");
        assert_eq!(m["B"], "two words");
        assert_eq!(m["C"], "lit ${A}");
        assert_eq!(m["D"], "x\ny 1");
        assert_eq!(m["E"], "env.io/1");
        assert_eq!(m["M"], "line1\nline2");
        assert_eq!(m["F"], "");
        let v = parse_dotenv(".env", "PW=a$1$\nY: yaml-style\nBARE\n", &map_lookup(&env)).unwrap();
        assert_eq!(v, [("PW".to_string(), "a$1$".to_string()), ("Y".to_string(), "yaml-style".to_string())]);
        let e = parse_dotenv(".env", "OK=1\nnon sense\nX=\"open\n", &map_lookup(&env)).unwrap_err();
        assert_eq!(e.iter().map(|e| e.line).collect::<Vec<_>>(), [Some(2), Some(3)]);
        assert!(e[0].to_string().starts_with(".env:2: "), "{}", e[0]);
    }

    #[test]
    fn env_wins_over_dotenv() {
        let env = vars(&[("TAG", "from-env")]);
        let envf = |k: &str| env.get(k).cloned();
        let dotenv = parse_dotenv(".env", "TAG=from-file\nREG=file.io", &envf).unwrap();
        let lookup = lookup_chain(&envf, &dotenv);
        let p = project(&[("compose.yml", "services:\n  web:\n    image: ${REG}/web:${TAG}\n")], &lookup).unwrap();
        assert_eq!(p.services[0].image, "file.io/web:from-env");
    }

    #[test]
    fn profiles_and_build_as_compose_reads_them() {
        let base = "services:\n  web:\n    image: nginx\n  debug:\n    image: busybox\n    profiles: [debug]\n  app:\n    image: me/app:1\n    build: .\n  kid:\n    extends: debug\n    image: alpine\n    profiles: [tools]\n";
        let p = proj(&[("a.yml", base), ("b.yml", "services:\n  debug:\n    profiles: [extra]\n")], &[]).unwrap();
        let get = |n: &str| p.services.iter().find(|s| s.name == n).unwrap().clone();
        assert_eq!(get("debug").profiles, ["debug", "extra"], "sequences append across files");
        assert_eq!(get("kid").profiles, ["tools", "debug", "extra"], "and from the extended service");
        assert!(get("app").build && !get("web").build);
        let none: Vec<String> = vec![];
        assert!(get("web").active(&none) && !get("debug").active(&none));
        assert!(get("debug").active(&["extra".to_string()]) && get("debug").active(&["*".to_string()]));
        let p = proj(&[("a.yml", base), ("b.yml", "services:\n  debug:\n    profiles: !reset []\n")], &[]).unwrap();
        assert!(p.services.iter().find(|s| s.name == "debug").unwrap().profiles.is_empty());
        assert!(proj(&[("a.yml", "services:\n  x:\n    image: a\n    profiles: debug\n")], &[]).is_err(), "a list, as compose wants");
        assert_eq!(split_profiles(" a, b,,c "), ["a", "b", "c"]);
    }

    #[test]
    fn services_images_platforms_and_build_only() {
        let y = r#"
services:
  web:
    image: "nginx:${TAG:-alpine}"
    platform: linux/arm64
  app:
    build: .
  built-and-pushed:
    build: { context: . }
    image: ghcr.io/me/app:1
  db:
    image: postgres:16
volumes:
  data:
"#;
        let p = proj(&[("compose.yml", y)], &[]).unwrap();
        assert_eq!(
            images(&p),
            [
                ("web".into(), "nginx:alpine".into(), Some("linux/arm64".into())),
                ("built-and-pushed".into(), "ghcr.io/me/app:1".into(), None),
                ("db".into(), "postgres:16".into(), None),
            ]
        );
        assert_eq!(p.build_only, ["app"]);
        assert_eq!(p.services[0].reference.to_string(), "docker.io/library/nginx:alpine");
        assert_eq!(p.services[0].file, "compose.yml");
        assert!(p.warnings.is_empty());
    }

    #[test]
    fn later_files_override_image_and_platform() {
        let base = "services:\n  web:\n    image: nginx:1\n    platform: linux/amd64\n  db:\n    image: postgres:15\n";
        let over = "services:\n  web:\n    image: nginx:2\n  cache:\n    image: redis:7\n";
        let reset = "services:\n  web:\n    platform: !reset null\n  db:\n    image: !override postgres:16\n";
        let p = proj(&[("a.yml", base), ("b.yml", over), ("c.yml", reset)], &[]).unwrap();
        assert_eq!(
            images(&p),
            [
                ("web".into(), "nginx:2".into(), None),
                ("db".into(), "postgres:16".into(), None),
                ("cache".into(), "redis:7".into(), None),
            ]
        );
        assert_eq!(p.services[0].file, "b.yml");
        assert_eq!(p.services[1].file, "c.yml");
        // An override that adds build: to an image service keeps the image.
        let p = proj(&[("a.yml", base), ("b.yml", "services:\n  web:\n    build: .\n")], &[]).unwrap();
        assert_eq!(p.services[0].image, "nginx:1");
        // Resetting the image of a service with build: makes it build-only.
        let p = proj(&[("a.yml", "services:\n  x:\n    image: a\n    build: .\n"), ("b.yml", "services:\n  x:\n    image: !reset\n")], &[]).unwrap();
        assert_eq!(p.build_only, ["x"]);
    }

    #[test]
    fn anchors_and_merge_keys() {
        let y = r#"
x-base: &base
  image: ${IMG:-busybox:1.36}
  platform: linux/amd64
services:
  a:
    <<: *base
  b:
    <<: *base
    image: alpine:3
"#;
        let p = proj(&[("compose.yml", y)], &[]).unwrap();
        assert_eq!(
            images(&p),
            [("a".into(), "busybox:1.36".into(), Some("linux/amd64".into())), ("b".into(), "alpine:3".into(), Some("linux/amd64".into()))]
        );
    }

    #[test]
    fn unset_variable_leaving_image_empty_or_invalid_is_an_error() {
        let y = "services:\n  web:\n    image: ${IMAGE}\n  api:\n    image: app:${TAG}\n  ok:\n    image: ${REG}nginx\n";
        let errs = proj(&[("prod.yml", y)], &[]).unwrap_err();
        assert_eq!(errs.len(), 2, "{errs:#?}");
        assert!(errs[0].starts_with("prod.yml: service \"web\": `image: ${IMAGE}` is empty"), "{}", errs[0]);
        assert!(errs[0].contains("variable IMAGE is not set"), "{}", errs[0]);
        assert!(errs[1].starts_with("prod.yml: service \"api\": `image: app:${TAG}` gives \"app:\""), "{}", errs[1]);
        assert!(errs[1].contains("TAG is not set"));
        // Valid despite an unset variable: kept, with compose's warning.
        let p = proj(&[("prod.yml", "services:\n  ok:\n    image: ${REG}nginx\n")], &[]).unwrap();
        assert_eq!(p.services[0].image, "nginx");
        assert!(p.warnings[0].contains("REG is not set"), "{:?}", p.warnings);
    }

    #[test]
    fn other_errors_name_file_and_service() {
        let errs = proj(&[("a.yml", "services:\n  x: {}\n  y:\n    image: [1]\n  z:\n    image: nginx\n    platform: linux\n  w:\n    image: ${A:?need A}\n")], &[]).unwrap_err();
        assert_eq!(errs.len(), 4, "{errs:#?}");
        assert!(errs[0].contains("\"y\"") && errs[0].contains("must be a string"));
        assert!(errs[1].starts_with("a.yml: service \"x\": has neither"), "{}", errs[1]);
        assert!(errs[2].contains("\"z\"") && errs[2].contains("invalid platform"));
        assert!(errs[3].contains("\"w\"") && errs[3].contains("required variable A"), "{}", errs[3]);
        let errs = proj(&[("bad.yml", "services: [\n")], &[]).unwrap_err();
        assert!(errs[0].starts_with("bad.yml: not valid YAML"), "{}", errs[0]);
        let errs = proj(&[("u.yml", "services:\n  x:\n    image: Nginx\n")], &[]).unwrap_err();
        assert!(errs[0].contains("lowercase"), "{}", errs[0]);
        let errs = proj(&[("e.yml", "services:\n  x:\n    extends: y\n")], &[]).unwrap_err();
        assert!(errs[0].contains("nor does the service it extends (\"y\")"), "{}", errs[0]);
        let errs = proj(&[("e.yml", "services:\n  x:\n    extends:\n      file: base.yml\n      service: y\n")], &[]).unwrap_err();
        assert!(errs[0].contains("another file is not followed"), "{}", errs[0]);
    }

    #[test]
    fn control_characters_in_messages_are_escaped() {
        let errs = proj(&[("a.yml", "services:\n  x:\n    image: \"nginx\\n\\u001b[31m\"\n")], &[]).unwrap_err();
        assert!(!errs[0].contains('\n') && !errs[0].contains('\u{1b}'), "{}", errs[0]);
    }

    #[test]
    fn extends_in_the_same_project() {
        let y = "services:\n  base:\n    image: nginx:${T:-1}\n    platform: linux/arm64\n  mid:\n    extends: base\n    platform: linux/amd64\n  top:\n    extends: { service: mid }\n  own:\n    extends: base\n    image: redis:7\n  loop1:\n    extends: loop2\n    build: .\n  loop2:\n    extends: loop1\n";
        let p = proj(&[("a.yml", y)], &[]).unwrap();
        assert_eq!(
            images(&p),
            [
                ("base".into(), "nginx:1".into(), Some("linux/arm64".into())),
                ("mid".into(), "nginx:1".into(), Some("linux/amd64".into())),
                ("top".into(), "nginx:1".into(), Some("linux/amd64".into())),
                ("own".into(), "redis:7".into(), Some("linux/arm64".into())),
            ]
        );
        assert_eq!(p.build_only, ["loop1", "loop2"]);
    }

    #[test]
    fn pull_policy_always_warns() {
        let p = proj(&[("a.yml", "services:\n  x:\n    image: nginx\n    pull_policy: always\n  y:\n    image: redis\n    pull_policy: missing\n")], &[]).unwrap();
        assert_eq!(p.warnings.len(), 1, "{:?}", p.warnings);
        assert!(p.warnings[0].starts_with("a.yml: service \"x\" has `pull_policy: always`"), "{}", p.warnings[0]);
    }

    #[test]
    fn empty_and_serviceless_files() {
        assert_eq!(proj(&[("a.yml", ""), ("b.yml", "name: x\nvolumes: {}\n")], &[]).unwrap(), Project::default());
    }

    #[test]
    fn unset_platform_means_host() {
        let p = proj(&[("a.yml", "services:\n  x:\n    image: nginx\n    platform: ${PLAT}\n")], &[]).unwrap();
        assert_eq!(p.services[0].platform, None);
        assert_eq!(p.warnings.len(), 1);
        let p = proj(&[("a.yml", "services:\n  x:\n    image: nginx\n    platform: ${PLAT:-linux/arm/v7}\n")], &[]).unwrap();
        assert_eq!(p.services[0].platform, Some("linux/arm/v7".parse().unwrap()));
    }

    #[test]
    fn load_reads_dotenv_beside_the_first_file() {
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("sub");
        std::fs::create_dir(&sub).unwrap();
        std::fs::write(dir.path().join("compose.yml"), "services:\n  web:\n    image: ${IMG}\n").unwrap();
        std::fs::write(sub.join("override.yml"), "services:\n  api:\n    image: ${IMG}-api\n").unwrap();
        std::fs::write(dir.path().join(".env"), "IMG=nginx:alpine\n").unwrap();
        std::fs::write(sub.join(".env"), "IMG=wrong\n").unwrap();
        let env = |_: &str| None;
        let p = load(&[dir.path().join("compose.yml"), sub.join("override.yml")], &env).unwrap();
        assert_eq!(p.services.iter().map(|s| s.image.as_str()).collect::<Vec<_>>(), ["nginx:alpine", "nginx:alpine-api"]);
        let errs = load(&[dir.path().join("missing.yml")], &env).unwrap_err();
        assert!(errs[0].to_string().contains("cannot read"));
    }

    fn alias_bomb(levels: usize) -> String {
        let mut out = vec!["services:".to_string(), "  web:".into(), "    image: nginx:alpine".into(), "x-l0: &l0 [a, a, a, a, a, a, a, a, a, a]".into()];
        for k in 1..=levels {
            let items: Vec<String> = (0..10).map(|i| format!("{{? *l{} : {i}}}", k - 1)).collect();
            out.push(format!("x-l{k}: &l{k} [{}]", items.join(", ")));
        }
        out.join("\n") + "\n"
    }

    #[test]
    fn an_alias_bomb_in_mapping_keys_is_refused() {
        // Audit 2 #6: saphyr's alias budget counts a key as one node; 928 bytes grew past 3 GB.
        for levels in [4, 6] {
            let errs = proj(&[("bomb.yml", &alias_bomb(levels))], &[]).unwrap_err();
            assert!(errs[0].contains("aliases"), "{errs:?}");
        }
        // Ordinary anchors still work (see anchors_and_merge_keys).
        assert!(proj(&[("ok.yml", &alias_bomb(1))], &[]).is_ok());
    }

    #[test]
    fn deep_interpolation_is_an_error_not_a_crash() {
        // Audit 2 #6: 50,000 nested defaults overflowed the stack (SIGABRT).
        let deep = "${a:-".repeat(50_000) + "nginx" + &"}".repeat(50_000);
        let e = interp(&deep, &[]).unwrap_err();
        assert!(e.contains("nested"), "{e}");
        let ok = "${a:-".repeat(10) + "nginx" + &"}".repeat(10);
        assert_eq!(val(&ok, &[]), "nginx");
    }

    #[test]
    fn an_oversized_compose_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("compose.yml");
        let mut text = "services:\n  web:\n    image: nginx\n".to_string();
        text.push_str(&format!("x-pad: \"{}\"\n", "a".repeat(2 << 20)));
        std::fs::write(&f, text).unwrap();
        let errs = load(&[f], &|_| None).unwrap_err();
        assert!(errs[0].to_string().contains("larger than 1 MiB"), "{}", errs[0]);
    }

    #[test]
    fn dotenv_errors_never_quote_the_line() {
        // Audit 2 #10: a token on a malformed line was printed.
        for text in ["OK=1\nmy api key ghp_DOTENVSECRET123\n", "bad key ghp_DOTENVSECRET123=1\n", "A='x' ghp_DOTENVSECRET123\n"] {
            let e = parse_dotenv(".env", text, &|_| None).unwrap_err();
            assert!(!e[0].to_string().contains("DOTENVSECRET"), "{}", e[0]);
        }
    }

    #[test]
    fn an_image_made_of_a_secret_is_refused_without_printing_it() {
        // Audit 2 #10: `${CUSTOM_PASSWORD}` reached map output and the mirror's request path.
        let y = "services:\n  web:\n    image: \"registry.example.com/app:${CUSTOM_PASSWORD}\"\n  api:\n    image: \"r.io/${DEPLOY_TOKEN}\"\n";
        let errs = proj(&[("c.yml", y)], &[("CUSTOM_PASSWORD", "Secr3tPassw0rd"), ("DEPLOY_TOKEN", "Bad Token!")]).unwrap_err();
        assert_eq!(errs.len(), 2, "{errs:?}");
        for e in &errs {
            assert!(!e.contains("Secr3tPassw0rd") && !e.contains("Bad Token!"), "{e}");
            assert!(e.contains("secret"), "{e}");
        }
        // An ordinary variable is fine.
        assert!(proj(&[("c.yml", "services:\n  web:\n    image: nginx:${TAG}\n")], &[("TAG", "1")]).is_ok());
    }

    fn dotenv1(line: &str) -> Result<String, String> {
        let v = parse_dotenv(".env", line, &|k| (k == "OTHER").then(|| "other".to_string())).map_err(|e| e[0].message.clone())?;
        Ok(v.into_iter().next().map(|(_, v)| v).unwrap_or_default())
    }

    #[test]
    fn dotenv_follows_the_compose_documentation() {
        // https://docs.docker.com/compose/how-tos/environment-variables/variable-interpolation/#env-file-syntax
        for (line, want) in [
            ("VAR=VAL", "VAL"),
            ("VAR=\"VAL\"", "VAL"),
            ("VAR='VAL'", "VAL"),
            ("VAR=VAL # comment", "VAL"),
            ("VAR=VAL# not a comment", "VAL# not a comment"),
            ("VAR=\"VAL # not a comment\"", "VAL # not a comment"),
            ("VAR=\"VAL\" # comment", "VAL"),
            ("VAR='$OTHER'", "$OTHER"),
            ("VAR='${OTHER}'", "${OTHER}"),
            ("VAR=$OTHER", "other"),
            ("VAR='Let\\'s go!'", "Let's go!"),
            ("VAR=\"{\\\"hello\\\": \\\"json\\\"}\"", "{\"hello\": \"json\"}"),
            ("VAR=\"some\\tvalue\"", "some\tvalue"),
            ("VAR='some\\tvalue'", "some\\tvalue"),
            ("VAR=some\\tvalue", "some\\tvalue"),
        ] {
            assert_eq!(dotenv1(line).as_deref(), Ok(want), "{line}");
        }
    }

    #[test]
    fn dotenv_follows_compose_go_on_escapes_bom_and_export() {
        // compose-go's dotenv reader: escapes in double quotes are Go's
        // (\a \b \f \n \r \t \v \\ \" and \0 plus three octal digits), `\$` is
        // a literal `$`; `\'` in single quotes is a quote; a BOM is skipped;
        // `export` may be followed by any blank.
        for (line, want) in [
            ("VAR=\"foo\\$BAR\"", "foo$BAR"),
            ("VAR=\"\\a\\b\\f\\v\"", "\u{7}\u{8}\u{c}\u{b}"),
            ("VAR=\"\\0123\\0101x\"", "SAx"),
            ("VAR=\"\\012\"", "\\012"),
            ("VAR=\"a\\\\b\"", "a\\b"),
            ("VAR=\"\\q\"", "\\q"),
            ("\u{feff}VAR=bom", "bom"),
            ("export\tVAR=tab", "tab"),
            ("VAR='a\\'b'", "a'b"),
        ] {
            assert_eq!(dotenv1(line).as_deref(), Ok(want), "{line:?}");
        }
        // Unterminated as compose says: the `\'` does not close the string.
        assert!(dotenv1("KEY='value\\'").is_err());
    }

    #[test]
    fn braces_in_defaults_and_lone_dollars_as_compose() {
        // compose-go counts every `{` to find the closing brace, and keeps a
        // `$` that starts nothing (only `${` without a valid name is an error).
        assert_eq!(val(r#"${JSON:-{"json":1}}"#, &[("JSON", "set")]), "set", "no stray closing brace");
        assert_eq!(val(r#"${JSON:-{"json":1}}"#, &[]), r#"{"json":1}"#);
        assert_eq!(val("${A:-{x}}-${B:-y}", &[]), "{x}-y");
        for lone in ["a$", "a$1", "$-x", "a $ b"] {
            assert_eq!(val(lone, &[]), lone, "{lone}");
        }
        assert!(interp("${1X}", &[]).is_err());
    }
}
