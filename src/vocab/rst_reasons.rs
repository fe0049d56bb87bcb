//! TCP reset-reason names (`enum sk_rst_reason` without `SK_RST_REASON_`,
//! 6.10 and later) of the newest kernel nettrace is tested on (the 6.18
//! host). Lint accepts these on any kernel, as it does the drop reasons in
//! `drop_reasons`; a kernel's own names come from its BTF.

const KNOWN: &[&str] = &[
    "NOT_SPECIFIED",
    "NO_SOCKET",
    "TCP_INVALID_ACK_SEQUENCE",
    "TCP_RFC7323_PAWS",
    "TCP_TOO_OLD_ACK",
    "TCP_ACK_UNSENT_DATA",
    "TCP_FLAGS",
    "TCP_OLD_ACK",
    "TCP_ABORT_ON_DATA",
    "TCP_TIMEWAIT_SOCKET",
    "INVALID_SYN",
    "TCP_ABORT_ON_CLOSE",
    "TCP_ABORT_ON_LINGER",
    "TCP_ABORT_ON_MEMORY",
    "TCP_STATE",
    "TCP_KEEPALIVE_TIMEOUT",
    "TCP_DISCONNECT_WITH_DATA",
    "MPTCP_RST_EUNSPEC",
    "MPTCP_RST_EMPTCP",
    "MPTCP_RST_ERESOURCE",
    "MPTCP_RST_EPROHIBIT",
    "MPTCP_RST_EWQ2BIG",
    "MPTCP_RST_EBADPERF",
    "MPTCP_RST_EMIDDLEBOX",
    "ERROR",
];

/// Every known name.
pub fn known() -> impl Iterator<Item = &'static str> {
    KNOWN.iter().copied()
}
