//! Timestamps: seconds since boot as the kernel counts them
//! (`[1272349.614564]`), or wall-clock date and time with `--date`.

use chrono::{DateTime, Local};
use std::fmt::Write as _;

/// Converts BPF timestamps (CLOCK_MONOTONIC ns) to printable strings.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    /// realtime - monotonic, in ns, measured at start.
    offset_ns: Option<i128>,
    /// Print wall-clock times in UTC rather than the local zone.
    utc: bool,
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

/// The current CLOCK_MONOTONIC time in ns: the clock of event timestamps.
pub fn monotonic_now() -> u64 {
    clock_ns(libc::CLOCK_MONOTONIC) as u64
}

impl Clock {
    pub fn new(date: bool) -> Clock {
        Clock {
            offset_ns: date
                .then(|| clock_ns(libc::CLOCK_REALTIME) - clock_ns(libc::CLOCK_MONOTONIC)),
            utc: false,
        }
    }

    /// Wall-clock times in the local zone from a known offset (the one a
    /// recording keeps).
    pub fn local(offset_ns: i128) -> Clock {
        Clock {
            offset_ns: Some(offset_ns),
            utc: false,
        }
    }

    /// Wall-clock times in UTC from a known realtime - monotonic offset,
    /// as recorded with events replayed elsewhere (and for fixed output).
    pub fn wall_utc(offset_ns: i128) -> Clock {
        Clock {
            offset_ns: Some(offset_ns),
            utc: true,
        }
    }

    /// Seconds since boot only, whatever `--date` says.
    pub fn monotonic() -> Clock {
        Clock {
            offset_ns: None,
            utc: false,
        }
    }

    /// realtime - monotonic in ns, when printing wall-clock times.
    pub fn offset_ns(&self) -> Option<i128> {
        self.offset_ns
    }

    pub fn format(&self, ts_ns: u64) -> String {
        let mut s = String::new();
        self.push(&mut s, ts_ns);
        s
    }

    /// Appends the printed time to `s`.
    pub fn push(&self, s: &mut String, ts_ns: u64) {
        match self.offset_ns {
            None => {
                // Printed on every event line, so no formatting machinery:
                // 1,000,000 + the microseconds has seven digits, and its
                // last six are the zero-padded fraction.
                let mut secs = itoa::Buffer::new();
                let mut frac = itoa::Buffer::new();
                s.push_str(secs.format(ts_ns / 1_000_000_000));
                s.push('.');
                s.push_str(&frac.format(1_000_000 + ts_ns % 1_000_000_000 / 1000)[1..]);
            }
            Some(off) => {
                let wall = ts_ns as i128 + off;
                let secs = (wall / 1_000_000_000) as i64;
                let nanos = (wall % 1_000_000_000) as u32;
                const SHAPE: &str = "%Y-%m-%d %H:%M:%S%.6f";
                let _ = match DateTime::from_timestamp(secs, nanos) {
                    Some(t) if self.utc => write!(s, "{}", t.format(SHAPE)),
                    Some(t) => write!(s, "{}", t.with_timezone(&Local).format(SHAPE)),
                    None => write!(s, "{secs}"),
                };
            }
        }
    }
}
