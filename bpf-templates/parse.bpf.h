/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Packet parsing: the skb's headers (or its socket, before they are built)
 * into a struct nt_pkt, with plain loads where the kernel allows them
 * (NT_DIRECT_LOADS) and batched probe reads elsewhere.
 */
#ifndef NETTRACE_PARSE_BPF_H
#define NETTRACE_PARSE_BPF_H

#include "read.bpf.h"

/* Header bytes read at once: IPv6's 40 plus a TCP header's 20, so one read
 * usually covers L3 and L4. Under emulation a probe read costs as much as the
 * rest of a filtered-out hit, so the hot path counts them. */
#define NT_HDR_READ 60

/* Fills the L4 fields from `h`, the first bytes of the L4 header (at least
 * 20 readable). */
static __always_inline void parse_l4_bytes(struct nt_pkt *p, const u8 *h)
{
	switch (p->l4_proto) {
	case IPPROTO_TCP:
		p->sport = ((u16)h[0] << 8) | h[1];
		p->dport = ((u16)h[2] << 8) | h[3];
		p->seq = bpf_ntohl(*(u32 *)&h[4]);
		p->ack = bpf_ntohl(*(u32 *)&h[8]);
		p->tcp_flags = h[13];
		break;
	case IPPROTO_UDP:
		p->sport = ((u16)h[0] << 8) | h[1];
		p->dport = ((u16)h[2] << 8) | h[3];
		break;
	case IPPROTO_ICMP:
	case NT_IPPROTO_ICMPV6:
		p->icmp_type = h[0];
		p->icmp_code = h[1];
		p->icmp_id = ((u16)h[4] << 8) | h[5];
		p->icmp_seq = ((u16)h[6] << 8) | h[7];
		break;
	default:
		break;
	}
}

/* The L4 header at `l4`, when it was not in the bytes read with L3. */
static __always_inline void parse_l4(struct nt_pkt *p, void *l4)
{
	u8 h[20];

	if (p->l4_proto != IPPROTO_TCP && p->l4_proto != IPPROTO_UDP &&
	    p->l4_proto != IPPROTO_ICMP && p->l4_proto != NT_IPPROTO_ICMPV6)
		return;
	/* 8 bytes is all UDP and ICMP need; a 20-byte read may run past a
	 * short packet's buffer. */
	if (p->l4_proto != IPPROTO_TCP) {
		__builtin_memset(h, 0, sizeof(h));
		if (bpf_probe_read_kernel(h, 8, l4))
			return;
	} else if (bpf_probe_read_kernel(h, sizeof(h), l4)) {
		return;
	}
	parse_l4_bytes(p, h);
}

/* The L4 fields through direct loads (NT_DIRECT_LOADS). */
static __always_inline void parse_l4_direct(struct nt_pkt *p, void *l4)
{
	switch (p->l4_proto) {
	case IPPROTO_TCP: {
		struct tcphdr *t = bpf_core_cast(l4, struct tcphdr);

		p->sport = bpf_ntohs(t->source);
		p->dport = bpf_ntohs(t->dest);
		p->seq = bpf_ntohl(t->seq);
		p->ack = bpf_ntohl(t->ack_seq);
		/* The flag bits are bitfields: their byte, as in parse_l4_bytes. */
		p->tcp_flags = *((u8 *)t + 13);
		break;
	}
	case IPPROTO_UDP: {
		struct udphdr *u = bpf_core_cast(l4, struct udphdr);

		p->sport = bpf_ntohs(u->source);
		p->dport = bpf_ntohs(u->dest);
		break;
	}
	case IPPROTO_ICMP:
	case NT_IPPROTO_ICMPV6: {
		/* ICMPv6 has the same first 8 bytes. */
		struct icmphdr *c = bpf_core_cast(l4, struct icmphdr);

		p->icmp_type = c->type;
		p->icmp_code = c->code;
		p->icmp_id = bpf_ntohs(c->un.echo.id);
		p->icmp_seq = bpf_ntohs(c->un.echo.sequence);
		break;
	}
	default:
		break;
	}
}

static __always_inline void copy_in6(unsigned char *dst, const struct in6_addr *a)
{
	u32 *d = (u32 *)dst;

	d[0] = a->in6_u.u6_addr32[0];
	d[1] = a->in6_u.u6_addr32[1];
	d[2] = a->in6_u.u6_addr32[2];
	d[3] = a->in6_u.u6_addr32[3];
}

/* IPv4 and IPv6 through direct loads: what parse_l3 does with probe reads
 * of the header bytes. */
static __always_inline int parse_l3_direct(struct nt_pkt *p, void *l3)
{
	if (p->l3_proto == ETH_P_IP) {
		struct iphdr *ip = bpf_core_cast(l3, struct iphdr);
		/* version and ihl are bitfields: their byte. */
		u8 vihl = *(u8 *)ip;

		if ((vihl >> 4) != 4 || (vihl & 0xf) < 5)
			return -1;
		p->family = 4;
		p->l4_proto = ip->protocol;
		p->ip_id = bpf_ntohs(ip->id);
		*(u32 *)p->saddr = ip->saddr;
		*(u32 *)p->daddr = ip->daddr;
		if (!(bpf_ntohs(ip->frag_off) & 0x1fff))
			parse_l4_direct(p, l3 + (vihl & 0xf) * 4);
		return 0;
	}
	{
		struct ipv6hdr *ip6 = bpf_core_cast(l3, struct ipv6hdr);
		void *l4 = l3 + 40;
		u8 nexthdr;

		if ((*(u8 *)ip6 >> 4) != 6)
			return -1;
		p->family = 6;
		copy_in6(p->saddr, &ip6->saddr);
		copy_in6(p->daddr, &ip6->daddr);
		nexthdr = ip6->nexthdr;
#pragma unroll
		for (int i = 0; i < 2; i++) {
			struct ipv6_opt_hdr *ext = bpf_core_cast(l4, struct ipv6_opt_hdr);

			if (nexthdr != 0 && nexthdr != 43 && nexthdr != 60)
				break;
			nexthdr = ext->nexthdr;
			l4 += (ext->hdrlen + 1) * 8;
		}
		p->l4_proto = nexthdr;
		parse_l4_direct(p, l4);
		return 0;
	}
}

/* Parses the headers at `l3` according to `p->l3_proto`. Returns 0 when the
 * bytes there are a plausible header of that protocol. */
static __always_inline int parse_l3(struct nt_pkt *p, void *l3)
{
	u8 h[NT_HDR_READ];
	bool whole;

	if (p->l3_proto != ETH_P_IP && p->l3_proto != ETH_P_IPV6 && p->l3_proto != ETH_P_ARP)
		return 0;
	if (NT_DIRECT_LOADS && p->l3_proto != ETH_P_ARP)
		return parse_l3_direct(p, l3);
	/* One read for L3 and L4; near the end of a buffer it may fail, and
	 * then L3 alone is read. */
	whole = bpf_probe_read_kernel(h, sizeof(h), l3) == 0;

	if (p->l3_proto == ETH_P_IP) {
		u8 vihl;

		if (!whole && bpf_probe_read_kernel(h, 20, l3))
			return -1;
		vihl = h[0];
		if ((vihl >> 4) != 4 || (vihl & 0xf) < 5)
			return -1;
		p->family = 4;
		p->l4_proto = h[9];
		p->ip_id = ((u16)h[4] << 8) | h[5];
		__builtin_memcpy(p->saddr, &h[12], 4);
		__builtin_memcpy(p->daddr, &h[16], 4);
		/* Only the first fragment carries the L4 header. */
		if (((((u16)h[6] << 8) | h[7]) & 0x1fff))
			return 0;
		if (whole && (vihl & 0xf) == 5)
			parse_l4_bytes(p, &h[20]);
		else
			parse_l4(p, l3 + (vihl & 0xf) * 4);
		return 0;
	}
	if (p->l3_proto == ETH_P_IPV6) {
		u8 nexthdr;
		void *l4 = l3 + 40;

		if (!whole && bpf_probe_read_kernel(h, 40, l3))
			return -1;
		if ((h[0] >> 4) != 6)
			return -1;
		p->family = 6;
		__builtin_memcpy(p->saddr, &h[8], 16);
		__builtin_memcpy(p->daddr, &h[24], 16);
		nexthdr = h[6];
		if (whole && nexthdr != 0 && nexthdr != 43 && nexthdr != 60) {
			p->l4_proto = nexthdr;
			parse_l4_bytes(p, &h[40]);
			return 0;
		}
		/* Step over up to two extension headers (hop-by-hop, routing,
		 * destination options), enough for ordinary traffic. */
#pragma unroll
		for (int i = 0; i < 2; i++) {
			u8 ext[2];

			if (nexthdr != 0 && nexthdr != 43 && nexthdr != 60)
				break;
			if (bpf_probe_read_kernel(&ext, sizeof(ext), l4))
				return 0;
			nexthdr = ext[0];
			l4 += (ext[1] + 1) * 8;
		}
		p->l4_proto = nexthdr;
		parse_l4(p, l4);
		return 0;
	}
	if (p->l3_proto == ETH_P_ARP) {
		if (!whole && bpf_probe_read_kernel(h, 28, l3))
			return -1;
		p->arp_op = ((u16)h[6] << 8) | h[7];
		/* Ethernet/IPv4 ARP: sender and target protocol addresses. */
		if (h[4] == 6 && h[5] == 4) {
			p->family = 4;
			__builtin_memcpy(p->saddr, &h[14], 4);
			__builtin_memcpy(p->daddr, &h[24], 4);
		}
		return 0;
	}
	return 0;
}

static __always_inline void parse_sock(struct nt_pkt *p, struct sock *sk)
{
	u16 family = NT_READ(struct sock, sk, __sk_common.skc_family);

	p->l4_proto = NT_READ(struct sock, sk, sk_protocol);
	p->sport = NT_READ(struct sock, sk, __sk_common.skc_num);
	p->dport = bpf_ntohs(NT_READ(struct sock, sk, __sk_common.skc_dport));
	if (family == 2 /* AF_INET */) {
		u32 s = NT_READ(struct sock, sk, __sk_common.skc_rcv_saddr);
		u32 d = NT_READ(struct sock, sk, __sk_common.skc_daddr);

		p->family = 4;
		p->l3_proto = ETH_P_IP;
		__builtin_memcpy(p->saddr, &s, 4);
		__builtin_memcpy(p->daddr, &d, 4);
	} else if (family == 10 /* AF_INET6 */) {
		p->family = 6;
		p->l3_proto = ETH_P_IPV6;
		if (NT_DIRECT_LOADS) {
			struct sock *s = bpf_core_cast(sk, struct sock);

			copy_in6(p->saddr, &s->__sk_common.skc_v6_rcv_saddr);
			copy_in6(p->daddr, &s->__sk_common.skc_v6_daddr);
		} else {
			BPF_CORE_READ_INTO(&p->saddr, sk, __sk_common.skc_v6_rcv_saddr);
			BPF_CORE_READ_INTO(&p->daddr, sk, __sk_common.skc_v6_daddr);
		}
	} else {
		/* vsock, netlink, unix...: no addresses or ports to show. */
		p->sk_family = (u8)family;
		p->l4_proto = 0;
		p->sport = 0;
		p->dport = 0;
	}
	p->source = NT_SRC_SOCK;
}

/* The sk_buff fields the parser needs. */
struct nt_skb_hdrs {
	unsigned char *head;
	u32 len;
	u16 protocol;
	u16 network_header;
	u16 mac_header;
};

#define NT_SKB_OFF(f) bpf_core_field_offset(struct sk_buff, f)
#define NT_SKB_SPAN 128

/* Reads the parser's sk_buff fields with probe reads. They lie within a
 * few dozen bytes of each other (len ... protocol, headers, head), so one
 * probe read of that span replaces five; the offsets come from the running
 * kernel's BTF (CO-RE), and a layout where they are further apart reads
 * them one by one. */
static __always_inline void read_skb_hdrs_probed(struct sk_buff *skb, struct nt_skb_hdrs *h)
{
	u32 o_len = NT_SKB_OFF(len), base = o_len & ~7U;
	u32 o_proto = NT_SKB_OFF(protocol), o_nh = NT_SKB_OFF(network_header);
	u32 o_mh = NT_SKB_OFF(mac_header), o_head = NT_SKB_OFF(head);
	u32 size = o_head + 8 - base;
	u8 b[NT_SKB_SPAN];

	if (o_proto > base && o_nh > base && o_mh > base && o_head > base &&
	    o_proto < o_head && o_nh < o_head && o_mh < o_head && size <= NT_SKB_SPAN &&
	    bpf_probe_read_kernel(b, size, (void *)skb + base) == 0) {
		h->len = *(u32 *)&b[(o_len - base) & (NT_SKB_SPAN - 4)];
		h->protocol = *(u16 *)&b[(o_proto - base) & (NT_SKB_SPAN - 2)];
		h->network_header = *(u16 *)&b[(o_nh - base) & (NT_SKB_SPAN - 2)];
		h->mac_header = *(u16 *)&b[(o_mh - base) & (NT_SKB_SPAN - 2)];
		h->head = *(unsigned char **)&b[(o_head - base) & (NT_SKB_SPAN - 8)];
		return;
	}
	h->head = BPF_CORE_READ(skb, head);
	h->len = BPF_CORE_READ(skb, len);
	h->protocol = BPF_CORE_READ(skb, protocol);
	h->network_header = BPF_CORE_READ(skb, network_header);
	h->mac_header = BPF_CORE_READ(skb, mac_header);
}

static __always_inline void read_skb_hdrs(struct sk_buff *skb, struct nt_skb_hdrs *h)
{
	if (NT_DIRECT_LOADS) {
		struct sk_buff *s = bpf_core_cast(skb, struct sk_buff);

		h->head = s->head;
		h->len = s->len;
		h->protocol = s->protocol;
		h->network_header = s->network_header;
		h->mac_header = s->mac_header;
		return;
	}
	read_skb_hdrs_probed(skb, h);
}

/* Fills the packet summary from the skb's headers, falling back to the
 * socket when the headers are not built yet (transmit path above IP). */
static __always_inline void parse_packet(struct nt_pkt *p, struct sk_buff *skb,
					 struct sock *sk, u64 *head)
{
	if (skb) {
		struct nt_skb_hdrs s;
		u16 nh, mh;

		read_skb_hdrs(skb, &s);
		*head = (u64)s.head;
		nh = s.network_header;
		mh = s.mac_header;
		p->len = s.len;
		p->l3_proto = bpf_ntohs(s.protocol);
		if (nh != NT_HDR_UNSET && nh != 0 && (mh == NT_HDR_UNSET || nh > mh) &&
		    parse_l3(p, s.head + nh) == 0) {
			p->source = NT_SRC_HEADER;
			return;
		}
		if (mh != NT_HDR_UNSET) {
			/* 0 where the read failed: no EtherType is 0. */
			u16 proto = NT_READ(struct ethhdr, s.head + mh, h_proto);

			if (proto) {
				p->l3_proto = bpf_ntohs(proto);
				if (parse_l3(p, s.head + mh + ETH_HLEN) == 0) {
					p->source = NT_SRC_MAC;
					return;
				}
			}
		}
		if (!sk)
			sk = NT_READ(struct sk_buff, skb, sk);
	}
	p->family = 0;
	if (sk)
		parse_sock(p, sk);
}

#endif
