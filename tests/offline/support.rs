//! Helpers shared by the offline tests.

use std::cell::RefCell;
use std::rc::Rc;

/// A writer whose bytes the test reads back after the pipeline is done.
#[derive(Clone, Default)]
pub struct Capture(Rc<RefCell<Vec<u8>>>);

impl Capture {
    pub fn text(&self) -> String {
        String::from_utf8(self.0.borrow().clone()).expect("UTF-8 output")
    }

    pub fn bytes(&self) -> Vec<u8> {
        self.0.borrow().clone()
    }
}

impl std::io::Write for Capture {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.borrow_mut().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Runs the nettrace binary cargo built for these tests in the repository
/// root: (exit code, stdout, stderr). The one way offline tests run it.
pub fn nettrace(args: &[&str]) -> (i32, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_nettrace"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("run nettrace");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The formatter of a plain run: monotonic clock, no detail, no color.
pub fn plain_formatter<'a>(
    reasons: &'a nettrace::kernel::btf::DropReasons,
    kallsyms: &'a nettrace::kernel::kallsyms::Kallsyms,
) -> nettrace::output::lines::Formatter<'a> {
    nettrace::output::lines::Formatter {
        clock: nettrace::output::time::Clock::monotonic(),
        reasons,
        kallsyms,
        detail: false,
        show_ret: false,
        latency_show: false,
        tiny: false,
        color: false,
    }
}
