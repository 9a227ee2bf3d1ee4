//! One signal handler for every command. The first INT, TERM, HUP or QUIT
//! (Ctrl-C, Ctrl-Break or a console close on Windows) asks for a clean stop:
//! steps see the cancel flag, the run reports what it did, and the private
//! docker config is removed as the session ends. A second one exits at once,
//! after deleting the private config (it holds the logins).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// What every signal does: cancel the first time, leave at once the second.
fn on_signal(cancel: &AtomicBool) {
    if cancel.swap(true, Ordering::SeqCst) {
        crate::credentials::remove_live_private_config();
        // Children run in their own process groups and no longer get the
        // terminal's signal: end them, or pushes would go on after we exit.
        crate::docker::kill_running_children();
        std::process::exit(130);
    }
}

/// Installs the handler; without one (an odd platform) signals keep their default.
#[cfg(unix)]
pub fn watch(cancel: Arc<AtomicBool>) {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGQUIT, SIGTERM};
    let Ok(mut signals) = signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP, SIGQUIT]) else {
        return;
    };
    std::thread::spawn(move || {
        for _ in signals.forever() {
            on_signal(&cancel);
        }
    });
}

/// Installs the handler; without one (an odd platform) signals keep their default.
/// `ctrlc`'s "termination" feature adds the console's close, logoff and shutdown events.
#[cfg(windows)]
pub fn watch(cancel: Arc<AtomicBool>) {
    let _ = ctrlc::set_handler(move || on_signal(&cancel));
}

#[cfg(not(any(unix, windows)))]
pub fn watch(_cancel: Arc<AtomicBool>) {}
