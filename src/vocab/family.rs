//! Socket address families (`AF_*`) by number, as the kernel numbers them
//! (include/linux/socket.h), for the skbs of sockets that are not IP.

/// The lower-case name of an address family (`vsock`, `netlink`), or
/// `family N` for one without a name here.
pub fn name(family: u8) -> std::borrow::Cow<'static, str> {
    let known = match family {
        1 => "unix",
        2 => "ipv4",
        4 => "ipx",
        5 => "appletalk",
        10 => "ipv6",
        16 => "netlink",
        17 => "packet",
        21 => "rds",
        24 => "pppox",
        29 => "can",
        30 => "tipc",
        31 => "bluetooth",
        36 => "ieee802154",
        38 => "alg",
        40 => "vsock",
        41 => "kcm",
        42 => "qipcrtr",
        43 => "smc",
        44 => "xdp",
        45 => "mctp",
        _ => return format!("family {family}").into(),
    };
    known.into()
}
