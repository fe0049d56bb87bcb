//! Documented exit codes and the error type that carries one: every way a
//! run can fail is a `Fatal` whose code the command line exits with.

use std::fmt;

/// Exit codes (also listed in `--help` and the README).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitCode {
    Ok = 0,
    Runtime = 1,
    Usage = 2,
    Privileges = 3,
    KernelLacks = 4,
    LoadRefused = 5,
}

/// An error that ends the run with a specific exit code and one line.
#[derive(Debug)]
pub struct Fatal {
    pub code: ExitCode,
    pub message: String,
}

impl Fatal {
    pub fn new(code: ExitCode, message: impl Into<String>) -> Fatal {
        Fatal {
            code,
            message: message.into(),
        }
    }
    pub fn usage(message: impl Into<String>) -> Fatal {
        Fatal::new(ExitCode::Usage, message)
    }
}

impl fmt::Display for Fatal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Fatal {}
