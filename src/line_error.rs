//! An error tied to a line of an input file (images.txt, config.env).

use std::fmt;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LineError {
    pub file: String,
    /// 0: about the whole file.
    pub line: usize,
    pub message: String,
}

impl fmt::Display for LineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}: {}", self.file, self.message)
        } else {
            write!(f, "{}:{}: {}", self.file, self.line, self.message)
        }
    }
}
