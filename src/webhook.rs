//! Where and how to notify after a run (`WEBHOOK_*`), read and checked with
//! the other settings; [`crate::notify`] sends the message.
//!
//! Settings (through the closure given to `Webhook::from_env`):
//! - `WEBHOOK_URL`: where to POST; unset or empty means no webhook. It usually
//!   embeds a token, so keep it in a secret; messages here name only its
//!   scheme and host. It must be `https://`, except to a loopback host.
//! - `WEBHOOK_FORMAT`: feishu | lark | dingtalk | wecom | slack | discord |
//!   generic; by default chosen from the URL's host (generic for unknown hosts).
//! - `WEBHOOK_ON`: always | change (default: something synced or failed) | failure.
//! - `WEBHOOK_TIMEOUT`: seconds for the whole request (default 10, at most 3600).
//! - `GITHUB_SERVER_URL`, `GITHUB_REPOSITORY`, `GITHUB_RUN_ID`: when all are
//!   set, the message links to the run.

use std::fmt;
use std::time::Duration;

use crate::secret::Secret;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// Feishu and its international edition Lark share one API.
    Feishu,
    DingTalk,
    WeCom,
    Slack,
    Discord,
    Generic,
}

impl Format {
    pub fn parse(s: &str) -> Result<Format, String> {
        Ok(match s.trim().to_ascii_lowercase().as_str() {
            "feishu" | "lark" => Format::Feishu,
            "dingtalk" => Format::DingTalk,
            "wecom" => Format::WeCom,
            "slack" => Format::Slack,
            "discord" => Format::Discord,
            "generic" => Format::Generic,
            other => {
                return Err(format!(
                    "WEBHOOK_FORMAT={other:?}: expected feishu, lark, dingtalk, wecom, slack, discord or generic"
                ))
            }
        })
    }

    /// The format a URL's host speaks; generic for hosts not known here.
    pub fn from_url(url: &str) -> Format {
        let host = host(url).unwrap_or_default();
        let is = |domain: &str| host == domain || host.ends_with(&format!(".{domain}"));
        if is("open.feishu.cn") || is("open.larksuite.com") {
            Format::Feishu
        } else if is("oapi.dingtalk.com") {
            Format::DingTalk
        } else if is("qyapi.weixin.qq.com") {
            Format::WeCom
        } else if is("hooks.slack.com") {
            Format::Slack
        } else if is("discord.com") || is("discordapp.com") {
            Format::Discord
        } else {
            Format::Generic
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Format::Feishu => "feishu",
            Format::DingTalk => "dingtalk",
            Format::WeCom => "wecom",
            Format::Slack => "slack",
            Format::Discord => "discord",
            Format::Generic => "generic",
        }
    }

    /// Longest text the service takes, in bytes (a safe bound for characters too).
    pub(crate) fn limit(self) -> usize {
        match self {
            Format::WeCom => 2048,
            Format::Discord => 2000,
            // Feishu takes request bodies of up to 20 KB.
            Format::Feishu => 16_000,
            Format::DingTalk => 18_000,
            Format::Slack => 38_000,
            Format::Generic => 64_000,
        }
    }
}

/// When a message is sent (`WEBHOOK_ON`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum On {
    Always,
    /// Something synced or failed.
    #[default]
    Change,
    Failure,
}

impl On {
    pub fn parse(s: &str) -> Result<On, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "always" => Ok(On::Always),
            "change" => Ok(On::Change),
            "failure" => Ok(On::Failure),
            other => Err(format!("WEBHOOK_ON={other:?}: expected always, change or failure")),
        }
    }
}

/// A configured webhook.
#[derive(Clone, Debug)]
pub struct Webhook {
    url: Secret,
    pub format: Format,
    pub on: On,
    pub timeout: Duration,
    /// Appended to the message, e.g. the Actions run page.
    pub link: Option<String>,
}

/// A bad webhook setting, by variable: the settings code reports
/// `WEBHOOK_TIMEOUT` itself (with its file and line), so it can tell that one apart.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SettingError {
    Url(String),
    Format(String),
    On(String),
    Timeout(String),
}

impl fmt::Display for SettingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SettingError::Url(m) | SettingError::Format(m) | SettingError::On(m) | SettingError::Timeout(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for SettingError {}

pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// The longest `WEBHOOK_TIMEOUT`: an hour (a huge value overflowed the HTTP client's clock).
pub const MAX_TIMEOUT_SECS: u64 = 3600;

/// Parses `WEBHOOK_TIMEOUT`: whole seconds, 1 to 3600. For the settings
/// code to call up front; the error names the key.
pub fn parse_timeout(value: &str) -> Result<Duration, String> {
    match value.trim().parse::<u64>() {
        Ok(s) if (1..=MAX_TIMEOUT_SECS).contains(&s) => Ok(Duration::from_secs(s)),
        _ => Err(format!(
            "WEBHOOK_TIMEOUT={}: expected a whole number of seconds from 1 to {MAX_TIMEOUT_SECS}",
            crate::sanitize::line(&format!("{value:?}"))
        )),
    }
}

impl Webhook {
    pub fn new(url: &str) -> Result<Webhook, String> {
        let url = url.trim();
        check_url(url)?;
        Ok(Webhook { url: Secret::new(url), format: Format::from_url(url), on: On::default(), timeout: DEFAULT_TIMEOUT, link: None })
    }

    /// `None` when `WEBHOOK_URL` is unset or empty; an error names a bad setting.
    pub fn from_env(env: &dyn Fn(&str) -> Option<String>) -> Result<Option<Webhook>, SettingError> {
        let get = |k: &str| env(k).map(|v| v.trim().to_string()).filter(|v| !v.is_empty());
        // Every key is read before any is judged: the settings resolver learns
        // from these reads which config.env keys exist.
        let (url, format, on, timeout) = (get("WEBHOOK_URL"), get("WEBHOOK_FORMAT"), get("WEBHOOK_ON"), get("WEBHOOK_TIMEOUT"));
        let Some(url) = url else { return Ok(None) };
        let mut w = Webhook::new(&url).map_err(SettingError::Url)?;
        if let Some(f) = format {
            w.format = Format::parse(&f).map_err(SettingError::Format)?;
        }
        if let Some(on) = on {
            w.on = On::parse(&on).map_err(SettingError::On)?;
        }
        if let Some(t) = timeout {
            w.timeout = parse_timeout(&t).map_err(SettingError::Timeout)?;
        }
        if let (Some(server), Some(repo), Some(run)) = (get("GITHUB_SERVER_URL"), get("GITHUB_REPOSITORY"), get("GITHUB_RUN_ID")) {
            w.link = Some(format!("{}/{repo}/actions/runs/{run}", server.trim_end_matches('/')));
        }
        Ok(Some(w))
    }

    /// The URL, for masking and redaction; it usually embeds a token.
    pub fn secret(&self) -> &Secret {
        &self.url
    }

    /// Where messages go, as may be shown: scheme and host.
    pub fn origin(&self) -> String {
        origin(self.url.expose())
    }
}

/// `scheme://host[:port]`: all of the URL that may be shown. The port is
/// shown only when the URL spells one other than the scheme's default.
pub fn origin(url: &str) -> String {
    match (url::Url::parse(url.trim()), host(url)) {
        (Ok(u), Some(h)) => match u.port() {
            Some(p) => format!("{}://{h}:{p}", u.scheme()),
            None => format!("{}://{h}", u.scheme()),
        },
        _ => "the webhook URL".to_string(),
    }
}

/// A loopback host: `localhost`, 127.0.0.0/8 or `::1`, where plain http is allowed.
fn is_loopback(u: &url::Url) -> bool {
    match u.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(a)) => a.is_loopback(),
        Some(url::Host::Ipv6(a)) => a.is_loopback(),
        None => false,
    }
}

/// Checks a webhook URL: `https://HOST/...`, or `http://` to a loopback
/// host only (a token sent in clear text could be read on the way).
pub fn check_url(url: &str) -> Result<(), String> {
    let bad = || {
        format!(
            "WEBHOOK_URL ({}) is not an https URL: set it to the webhook address your chat service gave you \
             (plain http is allowed only to localhost)",
            origin(url)
        )
    };
    let u = url::Url::parse(url.trim()).map_err(|_| bad())?;
    match u.scheme() {
        "https" if host(url).is_some() => Ok(()),
        "http" if is_loopback(&u) => Ok(()),
        _ => Err(bad()),
    }
}

/// The host of `scheme://[user@]host[:port]/...`, lowercased (`[::1]` for IPv6).
fn host(url: &str) -> Option<String> {
    let u = url::Url::parse(url.trim()).ok()?;
    let h = match u.host()? {
        url::Host::Domain(d) => d.to_ascii_lowercase(),
        url::Host::Ipv4(a) => a.to_string(),
        url::Host::Ipv6(a) => format!("[{a}]"),
    };
    (!h.is_empty()).then_some(h)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_from_hosts_and_names() {
        for (url, f) in [
            ("https://open.feishu.cn/open-apis/bot/v2/hook/x", Format::Feishu),
            ("https://open.larksuite.com/open-apis/bot/v2/hook/x", Format::Feishu),
            ("https://oapi.dingtalk.com/robot/send?access_token=x", Format::DingTalk),
            ("https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=x", Format::WeCom),
            ("https://hooks.slack.com/services/T/B/x", Format::Slack),
            ("https://discord.com/api/webhooks/1/x", Format::Discord),
            ("https://ptb.discordapp.com/api/webhooks/1/x", Format::Discord),
            ("HTTPS://Hooks.Slack.com:443/services/x", Format::Slack),
            ("https://hooks.slack.com.evil.example/x", Format::Generic),
            ("https://notdiscord.com/x", Format::Generic),
            ("http://127.0.0.1:8080/hook", Format::Generic),
            ("nonsense", Format::Generic),
        ] {
            assert_eq!(Format::from_url(url), f, "{url}");
        }
        assert_eq!(Format::parse("LARK").unwrap(), Format::Feishu);
        assert_eq!(Format::parse("wecom").unwrap().as_str(), "wecom");
        assert!(Format::parse("teams").unwrap_err().contains("WEBHOOK_FORMAT"));
    }

    fn env_owned(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let pairs: Vec<(String, String)> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        move |k: &str| pairs.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone())
    }

    #[test]
    fn https_required_except_on_loopback() {
        for ok in ["https://hooks.slack.com/x", "http://127.0.0.1:8080/hook", "http://localhost/x", "http://[::1]:9/x", "http://127.1.2.3/x"] {
            assert!(Webhook::new(ok).is_ok(), "{ok}");
        }
        for bad in ["http://hooks.slack.com/services/T/B/SECRETTOKEN", "http://10.0.0.1/x", "http://localhost.evil.example/x", "ftp://h/x", "https://", "nonsense"] {
            let e = Webhook::new(bad).unwrap_err();
            assert!(e.contains("not an https URL") && !e.contains("SECRETTOKEN"), "{bad}: {e}");
        }
    }

    #[test]
    fn settings_from_env() {
        let env = |pairs: &'static [(&'static str, &'static str)]| move |k: &str| pairs.iter().find(|(n, _)| *n == k).map(|(_, v)| v.to_string());
        assert!(Webhook::from_env(&env(&[])).unwrap().is_none());
        assert!(Webhook::from_env(&env(&[("WEBHOOK_URL", " ")])).unwrap().is_none());
        let w = Webhook::from_env(&env(&[
            ("WEBHOOK_URL", "https://hooks.slack.com/services/T0/B0/SECRETTOKEN"),
            ("WEBHOOK_ON", "always"),
            ("WEBHOOK_TIMEOUT", "3"),
            ("GITHUB_SERVER_URL", "https://github.com"),
            ("GITHUB_REPOSITORY", "o/r"),
            ("GITHUB_RUN_ID", "42"),
        ]))
        .unwrap()
        .unwrap();
        assert_eq!((w.format, w.on, w.timeout), (Format::Slack, On::Always, Duration::from_secs(3)));
        assert_eq!(w.link.as_deref(), Some("https://github.com/o/r/actions/runs/42"));
        assert_eq!(w.origin(), "https://hooks.slack.com");
        assert!(!format!("{w:?}").contains("SECRETTOKEN"));
        let w = Webhook::from_env(&env(&[("WEBHOOK_URL", "https://open.feishu.cn/x"), ("WEBHOOK_FORMAT", "generic")])).unwrap().unwrap();
        assert_eq!(w.format, Format::Generic);
        for huge in ["18446744073709551615", "3601", "-1", "1.5", "10s"] {
            let e = Webhook::from_env(&env_owned(&[("WEBHOOK_URL", "https://x/"), ("WEBHOOK_TIMEOUT", huge)])).unwrap_err();
            assert!(matches!(e, SettingError::Timeout(_)), "{e:?}");
            let e = e.to_string();
            assert!(e.contains("WEBHOOK_TIMEOUT") && e.contains("3600"), "{e}");
        }
        assert_eq!(parse_timeout("3600"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_timeout(" 1 "), Ok(Duration::from_secs(1)));
        let e = Webhook::from_env(&env(&[("WEBHOOK_URL", "ftp://u:pw@host/SECRETTOKEN")])).unwrap_err().to_string();
        assert!(e.contains("ftp://host") && !e.contains("SECRETTOKEN") && !e.contains("pw"), "{e}");
        assert!(Webhook::from_env(&env(&[("WEBHOOK_URL", "https://x/"), ("WEBHOOK_TIMEOUT", "0")])).is_err());
        assert!(Webhook::from_env(&env(&[("WEBHOOK_URL", "https://x/"), ("WEBHOOK_ON", "never")])).is_err());
    }

    #[test]
    fn origins() {
        assert_eq!(origin("https://user:pw@Example.com:8443/a/b?key=1"), "https://example.com:8443");
        assert_eq!(origin("http://[::1]:9/x"), "http://[::1]:9");
        assert_eq!(origin("https://oapi.dingtalk.com/robot/send?access_token=abc"), "https://oapi.dingtalk.com");
        assert_eq!(origin("garbage"), "the webhook URL");
    }
}
