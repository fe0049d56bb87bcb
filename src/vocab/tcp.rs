//! TCP flags: header bit, the letter the original prints, and the name
//! filters and rules accept.

/// In the order they are printed.
pub const TCP_FLAGS: [(u8, char, &str); 8] = [
    (0x02, 'S', "syn"),
    (0x10, 'A', "ack"),
    (0x08, 'P', "psh"),
    (0x04, 'R', "rst"),
    (0x01, 'F', "fin"),
    (0x20, 'U', "urg"),
    (0x40, 'E', "ece"),
    (0x80, 'C', "cwr"),
];

/// The letters of the set flags, e.g. `SA`.
pub fn tcp_flags(flags: u8) -> String {
    TCP_FLAGS
        .iter()
        .filter(|(bit, _, _)| flags & bit != 0)
        .map(|(_, c, _)| *c)
        .collect()
}

/// A TCP flag no letter or name stands for: the first one found.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown TCP flag `{0}`")]
pub struct UnknownFlag(pub String);

/// Parses TCP flags back into bits: letters as printed (`SA`, `r`) or
/// comma-separated names (`syn,ack`).
pub fn parse_tcp_flags(s: &str) -> Result<u8, UnknownFlag> {
    let by_name = |n: &str| {
        TCP_FLAGS
            .iter()
            .find(|(_, _, name)| n.trim().eq_ignore_ascii_case(name))
            .map(|f| f.0)
    };
    if s.contains(',') || by_name(s).is_some() {
        return s.split(',').try_fold(0, |bits, n| {
            Ok(bits | by_name(n).ok_or_else(|| UnknownFlag(n.trim().to_string()))?)
        });
    }
    s.chars().try_fold(0, |bits, ch| {
        let up = ch.to_ascii_uppercase();
        TCP_FLAGS
            .iter()
            .find(|(_, c, _)| *c == up)
            .map(|f| bits | f.0)
            .ok_or_else(|| UnknownFlag(ch.to_string()))
    })
}

/// `sk_state` names (`TCP_ESTABLISHED` = 1 ...), as `ss` prints them.
pub fn state_name(state: u8) -> std::borrow::Cow<'static, str> {
    const NAMES: [&str; 13] = [
        "",
        "ESTABLISHED",
        "SYN-SENT",
        "SYN-RECV",
        "FIN-WAIT-1",
        "FIN-WAIT-2",
        "TIME-WAIT",
        "CLOSE",
        "CLOSE-WAIT",
        "LAST-ACK",
        "LISTEN",
        "CLOSING",
        "NEW-SYN-RECV",
    ];
    match NAMES.get(state as usize) {
        Some(n) if !n.is_empty() => (*n).into(),
        _ => format!("state-{state}").into(),
    }
}

/// `icsk_ca_state` names (`TCP_CA_Open` = 0 ...).
pub fn ca_state_name(state: u8) -> std::borrow::Cow<'static, str> {
    const NAMES: [&str; 5] = ["open", "disorder", "cwr", "recovery", "loss"];
    match NAMES.get(state as usize) {
        Some(n) => (*n).into(),
        _ => format!("ca-{state}").into(),
    }
}

/// `icsk_pending` names (`ICSK_TIME_RETRANS` = 1 ...); None for no timer.
pub fn timer_name(pending: u8) -> Option<std::borrow::Cow<'static, str>> {
    const NAMES: [&str; 7] = [
        "",
        "retrans",
        "delack",
        "probe0",
        "early-retrans",
        "loss-probe",
        "reo-timeout",
    ];
    match NAMES.get(pending as usize) {
        Some(&"") => None,
        Some(n) => Some((*n).into()),
        None => Some(format!("timer-{pending}").into()),
    }
}
