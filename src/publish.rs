//! What happens once the report is in: the JSON file, the results table, the
//! GitHub outputs and summary, the webhook and the README badge. All of it is
//! reported; none of it can fail the sync.

use std::path::Path;

use anyhow::Context;

use crate::config::Settings;
use crate::report::Report;
use crate::ui::Ui;

pub struct After<'a> {
    /// `--report FILE`.
    pub report_file: Option<&'a Path>,
    /// `--badge README`, with the settings' time zone.
    pub badge: Option<&'a Path>,
}

pub fn publish(ui: &Ui, label: &str, report: &Report, settings: &Settings, after: &After) {
    // `--report -`: the JSON is stdout's, the table goes to stderr.
    let to_stdout = after.report_file.is_some_and(|p| p == Path::new("-"));
    match after.report_file {
        Some(_) if to_stdout => println!("{}", report.to_json()),
        Some(path) => {
            if let Err(e) = std::fs::write(path, report.to_json()).with_context(|| format!("writing the report to {}", path.display())) {
                ui.fatal(&e);
            }
        }
        None => {}
    }
    ui.report(report, label, to_stdout);
    if let Err(e) = crate::github::GithubEnv::from_env(&crate::inputs::env).publish(report) {
        ui.warn(&e);
    }
    if let Some(w) = &settings.webhook {
        match w.notify(report) {
            o @ crate::notify::Outcome::Failed(_) => ui.warn(&o.to_string()),
            o => ui.info(&o.to_string()),
        }
    }
    if let Some(path) = after.badge {
        if report.summary.synced > 0 {
            match crate::badge::rewrite_file(path, crate::badge::unix_now(), &settings.badge_tz) {
                Ok(true) => ui.info(&format!("badge: updated the last-sync time in {}", path.display())),
                Ok(false) => ui.warn(&format!(
                    "badge: {} has no last-sync badge line; add one starting with {}",
                    path.display(),
                    crate::badge::MARKER
                )),
                Err(e) => ui.warn(&format!("badge: {}: {e}", path.display())),
            }
        }
    }
}
