/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The filters on packet fields (all but --pid and --netns), on a parsed
 * struct nt_pkt and the FILTER settings. Kept apart from core.bpf.h so
 * that it needs nothing of the kernel's: the offline tests compile it
 * natively and hold it against the Rust filter that replays use
 * (pipeline::admission::matches) on the same inputs.
 */
#ifndef NETTRACE_FILTER_BPF_H
#define NETTRACE_FILTER_BPF_H

#include "nettrace.h"

static __always_inline bool addr_eq(const volatile unsigned char *want, u8 want_family,
				    struct nt_pkt *p, unsigned char *have)
{
	if (p->family != want_family)
		return false;
	if (want_family == 4)
		return *(u32 *)have == *(const volatile u32 *)want;
	return ((u64 *)have)[0] == ((const volatile u64 *)want)[0] &&
	       ((u64 *)have)[1] == ((const volatile u64 *)want)[1];
}

/* The filters on packet fields (all but --pid and --netns). */
static __always_inline bool filter_pkt(struct nt_pkt *p)
{
	u32 f = FILTER.flags;

	if (!f)
		return true;
	if ((f & NT_F_L3) && p->l3_proto != FILTER.l3_proto)
		return false;
	if ((f & NT_F_L4) && (p->family == 0 || p->l4_proto != FILTER.l4_proto))
		return false;
	if ((f & NT_F_SADDR) && !addr_eq(FILTER.saddr, FILTER.saddr_family, p, p->saddr))
		return false;
	if ((f & NT_F_DADDR) && !addr_eq(FILTER.daddr, FILTER.daddr_family, p, p->daddr))
		return false;
	if ((f & NT_F_ADDR) && !addr_eq(FILTER.addr, FILTER.addr_family, p, p->saddr) &&
	    !addr_eq(FILTER.addr, FILTER.addr_family, p, p->daddr))
		return false;
	if (f & (NT_F_SPORT | NT_F_DPORT | NT_F_PORT | NT_F_TCP_FLAGS)) {
		if (p->l4_proto != IPPROTO_TCP && p->l4_proto != IPPROTO_UDP)
			return false;
		if ((f & NT_F_SPORT) && p->sport != FILTER.sport)
			return false;
		if ((f & NT_F_DPORT) && p->dport != FILTER.dport)
			return false;
		if ((f & NT_F_PORT) && p->sport != FILTER.port && p->dport != FILTER.port)
			return false;
		if ((f & NT_F_TCP_FLAGS) &&
		    (p->l4_proto != IPPROTO_TCP ||
		     (p->tcp_flags & FILTER.tcp_flags) != FILTER.tcp_flags))
			return false;
	}
	if ((f & NT_F_LEN) && (p->len < FILTER.len_min || p->len > FILTER.len_max))
		return false;
	return true;
}

#endif
