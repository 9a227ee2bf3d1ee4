//! The exit policy, in one place: 0 ok, 1 some entries failed, 2 bad input,
//! 130 interrupted. Every command ends in an [`Exit`]; `main` turns it into the code.

use crate::report::Report;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    Ok,
    /// Some entries failed; the others were processed.
    Failed,
    /// Bad input or configuration; nothing was done.
    BadInput,
    Interrupted,
}

impl Exit {
    pub fn code(self) -> i32 {
        match self {
            Exit::Ok => 0,
            Exit::Failed => 1,
            Exit::BadInput => 2,
            Exit::Interrupted => 130,
        }
    }

    /// How a run that produced a report ends: interrupted first, then any failure.
    pub fn after_run(report: &Report, interrupted: bool) -> Exit {
        if interrupted {
            Exit::Interrupted
        } else if report.failed() {
            Exit::Failed
        } else {
            Exit::Ok
        }
    }
}
