//! One line of `imgsync doctor`: ✓ or ✗, what was checked, and the detail or fix.

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Check {
    pub ok: bool,
    /// A failed optional check informs; only required ones fail the doctor.
    pub required: bool,
    pub what: String,
    pub detail: String,
}

impl Check {
    pub fn pass(what: impl Into<String>, detail: impl Into<String>) -> Self {
        Check { ok: true, required: true, what: what.into(), detail: detail.into() }
    }
    pub fn fail(what: impl Into<String>, detail: impl Into<String>) -> Self {
        Check { ok: false, required: true, what: what.into(), detail: detail.into() }
    }
    pub fn optional(mut self) -> Self {
        self.required = false;
        self
    }
}
