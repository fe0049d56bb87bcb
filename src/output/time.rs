//! Timestamps: seconds since boot as the kernel counts them
//! (`[1272349.614564]`), or wall-clock date and time with `--date`.

use chrono::{DateTime, Local};

/// Converts BPF timestamps (CLOCK_MONOTONIC ns) to printable strings.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    /// realtime - monotonic, in ns, measured at start.
    offset_ns: Option<i128>,
}

fn clock_ns(id: libc::clockid_t) -> i128 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: ts is a valid timespec to write into.
    unsafe { libc::clock_gettime(id, &mut ts) };
    ts.tv_sec as i128 * 1_000_000_000 + ts.tv_nsec as i128
}

impl Clock {
    pub fn new(date: bool) -> Clock {
        Clock {
            offset_ns: date
                .then(|| clock_ns(libc::CLOCK_REALTIME) - clock_ns(libc::CLOCK_MONOTONIC)),
        }
    }

    /// Seconds since boot only, whatever `--date` says.
    pub fn monotonic() -> Clock {
        Clock { offset_ns: None }
    }

    pub fn format(&self, ts_ns: u64) -> String {
        match self.offset_ns {
            None => format!(
                "{}.{:06}",
                ts_ns / 1_000_000_000,
                (ts_ns % 1_000_000_000) / 1000
            ),
            Some(off) => {
                let wall = ts_ns as i128 + off;
                let secs = (wall / 1_000_000_000) as i64;
                let nanos = (wall % 1_000_000_000) as u32;
                match DateTime::from_timestamp(secs, nanos) {
                    Some(t) => t
                        .with_timezone(&Local)
                        .format("%Y-%m-%d %H:%M:%S%.6f")
                        .to_string(),
                    None => format!("{secs}"),
                }
            }
        }
    }
}
