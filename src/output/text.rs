//! Appending text pieces to one buffer without the `format!` machinery:
//! integers through `itoa`, hex, padded columns, IPv4 addresses. The event
//! line is printed for every event of every packet, and `format!` chains
//! cost most of user space's time per event (BENCHMARKS.md); these helpers
//! write the same bytes into a buffer the caller reuses.

use std::fmt::Write as _;
use std::net::IpAddr;

/// Appends an integer in decimal.
pub fn push_int(s: &mut String, n: impl itoa::Integer) {
    s.push_str(itoa::Buffer::new().format(n));
}

/// Appends `n` in lower-case hex, without a prefix (`{:x}`).
pub fn push_hex(s: &mut String, n: u64) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut buf = [0u8; 16];
    let mut i = buf.len();
    let mut n = n;
    loop {
        i -= 1;
        buf[i] = DIGITS[(n & 0xf) as usize];
        n >>= 4;
        if n == 0 {
            break;
        }
    }
    // One append: a push per digit checked the capacity sixteen times.
    s.push_str(std::str::from_utf8(&buf[i..]).unwrap_or_default());
}

const SPACES: &str = "                                ";

/// Appends `n` spaces, in slices rather than a push per character.
fn push_spaces(s: &mut String, n: usize) {
    let mut left = n;
    while left > 0 {
        let k = left.min(SPACES.len());
        s.push_str(&SPACES[..k]);
        left -= k;
    }
}

/// Appends `text` left-aligned in a column of `width` characters (`{:<w}`).
pub fn push_padded(s: &mut String, text: &str, width: usize) {
    s.push_str(text);
    let len = if text.is_ascii() {
        text.len()
    } else {
        text.chars().count()
    };
    push_spaces(s, width.saturating_sub(len));
}

/// Appends an integer left-aligned in a column of `width` (`{:<w}`).
pub fn push_int_padded(s: &mut String, n: impl itoa::Integer, width: usize) {
    push_padded(s, itoa::Buffer::new().format(n), width);
}

/// Appends an address as `Display` prints it.
pub fn push_ip(s: &mut String, addr: IpAddr) {
    match addr {
        IpAddr::V4(a) => {
            // Every event line prints two addresses: the dotted quad is
            // built on the stack and appended once (four integer pushes and
            // three char pushes cost ~4x as much).
            // `& 15`: n never passes 15 (four octets of up to three digits
            // and three dots), which the compiler cannot see.
            let mut buf = [0u8; 16];
            let mut n = 0usize;
            for (i, octet) in a.octets().into_iter().enumerate() {
                if i > 0 {
                    buf[n & 15] = b'.';
                    n += 1;
                }
                if octet >= 100 {
                    buf[n & 15] = b'0' + octet / 100;
                    n += 1;
                }
                if octet >= 10 {
                    buf[n & 15] = b'0' + octet / 10 % 10;
                    n += 1;
                }
                buf[n & 15] = b'0' + octet % 10;
                n += 1;
            }
            // SAFETY: only ASCII digits and dots were written.
            s.push_str(unsafe { std::str::from_utf8_unchecked(&buf[..n.min(15)]) });
        }
        IpAddr::V6(a) => {
            let _ = write!(s, "{a}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn helpers_print_what_format_prints(n: u64, w in 0usize..24, v4: u32, v6: u128, text in "\\PC{0,12}") {
            let mut s = String::new();
            push_int(&mut s, n);
            s.push('|');
            push_hex(&mut s, n);
            s.push('|');
            push_padded(&mut s, &text, w);
            s.push('|');
            push_int_padded(&mut s, n, w);
            s.push('|');
            push_ip(&mut s, IpAddr::V4(v4.into()));
            s.push('|');
            push_ip(&mut s, IpAddr::V6(v6.into()));
            let v4 = std::net::Ipv4Addr::from(v4);
            let v6 = std::net::Ipv6Addr::from(v6);
            let want = format!("{n}|{n:x}|{text:<w$}|{n:<w$}|{v4}|{v6}");
            prop_assert_eq!(s, want);
        }
    }
}
