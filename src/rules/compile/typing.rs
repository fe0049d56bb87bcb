//! Value typing: the literal a test compares a field with, read as that
//! field's type — addresses and prefixes, ports, protocols, TCP flags,
//! ICMP types, drop reasons (against the kernel's), return-value and
//! verdict names (against the probe's return kind).

use super::check::Scope;
use super::*;
use crate::catalogue::table::{group_probes, ChildProbes};
use crate::rules::ast::Spanned;
use crate::rules::diag::{did_you_mean, Code};

/// The names a reason field (`reason`, `rst_reason`) accepts, and how it
/// reports a name it does not know.
struct ReasonVocab<'k> {
    /// `drop reason`, `TCP reset reason`.
    what: &'static str,
    /// The names of the kernels nettrace is tested on.
    known: Vec<&'static str>,
    /// The checked kernel's names.
    kernel: Vec<(u32, &'k str)>,
    /// The name's value in the checked kernel.
    in_kernel: Option<u32>,
    unknown: Code,
    absent: Code,
    hint: &'static str,
    /// Whether a name the kernel lacks is worth a note.
    note_absent: bool,
}

impl Checker<'_> {
    /// A reason's name checked against `vocab`: its value in the kernel
    /// (None where the kernel lacks it), or None after an error for a name
    /// no kernel has.
    fn reason(&mut self, v: &Spanned<String>, vocab: ReasonVocab<'_>) -> Option<Option<u32>> {
        let s = v.value.as_str();
        let what = vocab.what;
        if vocab.in_kernel.is_none() && !vocab.known.contains(&s) {
            let mut candidates = vocab.known;
            candidates.extend(vocab.kernel.iter().map(|(_, n)| *n));
            let help = did_you_mean(s, candidates).or_else(|| Some(vocab.hint.into()));
            self.err(vocab.unknown, v.span, format!("unknown {what} `{s}`"), help);
            return None;
        }
        if vocab.in_kernel.is_none() && vocab.note_absent {
            self.err(
                vocab.absent,
                v.span,
                format!("this kernel does not define {what} `{s}`"),
                Some("the test is false here; fine for rules shared across kernels".into()),
            );
        }
        Some(vocab.in_kernel)
    }

    pub(super) fn value(
        &mut self,
        field: Field,
        v: &Spanned<String>,
        scope: &Scope,
    ) -> Option<Val> {
        let s = v.value.as_str();
        let bad = |this: &mut Self, what: &str| {
            this.err(Code::E0115, v.span, format!("`{s}` is not {what}"), None);
            None
        };
        match field {
            Field::Ret => {
                if let Ok(n) = s.parse::<i64>() {
                    return Some(Val::Range(n, n));
                }
                let probes = scope.as_deref().unwrap_or(&[]);
                for p in probes {
                    let kinds: Vec<RetKind> = p.signatures.iter().map(|sig| sig.ret).collect();
                    if !kinds.iter().any(|k| retnames::lookup(*k, s).is_some()) {
                        let names = retnames::all_names(p.ret);
                        let help =
                            did_you_mean(s, names.iter().map(String::as_str)).or_else(|| {
                                Some(if names.is_empty() {
                                    format!("`{}` returns a plain number", p.name)
                                } else {
                                    format!(
                                        "names for `{}`: {}",
                                        p.name,
                                        names
                                            .iter()
                                            .take(8)
                                            .cloned()
                                            .collect::<Vec<_>>()
                                            .join(", ")
                                    )
                                })
                            });
                        self.err(
                            Code::E0114,
                            v.span,
                            format!("`{s}` is not a return value of `{}`", p.name),
                            help,
                        );
                        return None;
                    }
                }
                Some(Val::RetName(
                    s.to_string(),
                    Box::new(RetKind::ALL.map(|k| retnames::lookup(k, s))),
                ))
            }
            Field::Reason => {
                let reasons = self.kernel.reasons;
                if s == crate::kernel::btf::NO_REASONS {
                    return Some(Val::Reason(s.to_string(), reasons.rule_value_of(s)));
                }
                let vocab = ReasonVocab {
                    what: "drop reason",
                    known: crate::vocab::drop_reasons::known().collect(),
                    kernel: reasons.names(),
                    in_kernel: reasons.value_of(s),
                    unknown: Code::E0113,
                    absent: Code::N0302,
                    hint: "drop reasons are the names of enum skb_drop_reason without SKB_DROP_REASON_",
                    note_absent: self.kernel.have_kernel,
                };
                let value = self.reason(v, vocab)?;
                Some(Val::Reason(s.to_string(), value))
            }
            Field::RstReason => {
                let reasons = self.kernel.reasons;
                let vocab = ReasonVocab {
                    what: "TCP reset reason",
                    known: crate::vocab::rst_reasons::known().collect(),
                    kernel: reasons.rst_names(),
                    in_kernel: reasons.rst_value_of(s),
                    unknown: Code::E0117,
                    absent: Code::N0303,
                    hint: "reset reasons are the names of enum sk_rst_reason without SK_RST_REASON_ (6.10 and later)",
                    // A kernel without reset reasons (before 6.10) has none
                    // to lack: the test is false there, as the rule's
                    // author knows.
                    note_absent: self.kernel.have_kernel && !reasons.rst_names().is_empty(),
                };
                let value = self.reason(v, vocab)?;
                Some(Val::RstReason(s.to_string(), value))
            }
            Field::Proto => match crate::vocab::proto::by_name(s).ok_or(()) {
                Ok(crate::vocab::proto::Proto::L3(p)) => Some(Val::L3(p)),
                Ok(crate::vocab::proto::Proto::L4(p)) => Some(Val::L4(p)),
                Err(_) => {
                    let help = did_you_mean(s, crate::vocab::proto::names());
                    self.err(
                        Code::E0114,
                        v.span,
                        format!("unknown protocol `{s}`"),
                        help.or_else(|| {
                            Some(format!("protocols: {}", crate::vocab::proto::names_line()))
                        }),
                    );
                    None
                }
            },
            Field::Saddr | Field::Daddr | Field::Addr => {
                let (addr, len) = match s.split_once('/') {
                    Some((a, l)) => (a, l.parse::<u8>().ok()),
                    None => (s, None),
                };
                let Ok(ip) = addr.parse::<IpAddr>() else {
                    return bad(self, "an IPv4/IPv6 address or prefix (10.0.0.0/8)");
                };
                let max = if ip.is_ipv4() { 32 } else { 128 };
                let len = match (s.contains('/'), len) {
                    (false, _) => max,
                    (true, Some(l)) if l <= max => l,
                    _ => return bad(self, "a valid prefix length"),
                };
                Some(Val::Net(ip, len))
            }
            Field::Sport | Field::Dport | Field::Port => match s.parse::<u16>() {
                Ok(n) => Some(Val::Range(n.into(), n.into())),
                Err(_) => bad(self, "a port number (0-65535)"),
            },
            Field::Len => match s.parse::<u32>() {
                Ok(n) => Some(Val::Range(n.into(), n.into())),
                Err(_) => bad(self, "a length in bytes"),
            },
            Field::TcpFlags => match crate::vocab::tcp::parse_tcp_flags(s) {
                Ok(bits) if bits != 0 => Some(Val::Flags(bits)),
                _ => bad(self, "TCP flags (letters SAPRFUEC, or names syn,ack)"),
            },
            Field::Ifname | Field::NfTable | Field::NfChain | Field::NfRule | Field::Location => {
                Some(Val::Str(s.to_string()))
            }
            Field::LocationGroup => {
                if !GROUPS.iter().any(|g| g.name == s) {
                    let help = did_you_mean(s, GROUPS.iter().map(|x| x.name))
                        .or_else(|| Some("`nettrace -t ?` lists the groups".into()));
                    self.err(Code::E0111, v.span, format!("unknown group `{s}`"), help);
                    return None;
                }
                let mut names: Vec<&'static str> = group_probes(s, ChildProbes::All)
                    .into_iter()
                    .filter(|p| !p.is_tracepoint())
                    .flat_map(|p| std::iter::once(p.name).chain(p.symbols.iter().copied()))
                    .collect();
                names.sort_unstable();
                names.dedup();
                Some(Val::Names(names))
            }
            Field::IcmpType => {
                if let Ok(n) = s.parse::<u8>() {
                    return Some(Val::Range(n.into(), n.into()));
                }
                match ICMP_TYPES.iter().find(|(n, _, _)| *n == s) {
                    Some((_, v4, v6)) => Some(Val::IcmpType(*v4, *v6)),
                    None => {
                        let names: Vec<&str> = ICMP_TYPES.iter().map(|(n, _, _)| *n).collect();
                        let help = did_you_mean(s, names.iter().copied())
                            .or_else(|| Some(format!("a number, or one of: {}", names.join(", "))));
                        self.err(
                            Code::E0114,
                            v.span,
                            format!("unknown ICMP type `{s}`"),
                            help,
                        );
                        None
                    }
                }
            }
            Field::IcmpCode => match s.parse::<u8>() {
                Ok(n) => Some(Val::Range(n.into(), n.into())),
                Err(_) => bad(self, "an ICMP code (0-255)"),
            },
            Field::NfFamily | Field::NfHook => {
                use crate::catalogue::nfnames::{family_by_name, hook_by_name, FAMILIES, HOOKS};
                let (found, names): (Option<u8>, Vec<&str>) = if field == Field::NfFamily {
                    (
                        family_by_name(s),
                        FAMILIES.iter().map(|(n, _)| *n).collect(),
                    )
                } else {
                    let mut names: Vec<&str> = HOOKS.iter().map(|(n, _)| *n).collect();
                    names.push("BROUTING");
                    (hook_by_name(s), names)
                };
                match found {
                    Some(n) => Some(Val::Range(n.into(), n.into())),
                    None => {
                        let help = did_you_mean(s, names.iter().copied())
                            .or_else(|| Some(format!("one of: {}", names.join(", "))));
                        self.err(Code::E0114, v.span, format!("unknown value `{s}`"), help);
                        None
                    }
                }
            }
            Field::NfVerdict => match retnames::lookup(RetKind::NfVerdict, s) {
                Some((lo, hi)) => Some(Val::Range(lo, hi)),
                None => {
                    let names = retnames::all_names(RetKind::NfVerdict);
                    let help = did_you_mean(s, names.iter().map(String::as_str))
                        .or_else(|| Some(format!("verdicts: {}", names.join(", "))));
                    self.err(Code::E0114, v.span, format!("unknown verdict `{s}`"), help);
                    None
                }
            },
        }
    }
}
