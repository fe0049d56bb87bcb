/* SPDX-License-Identifier: GPL-2.0 */
/*
 * What every BPF header reads kernel memory with: packet constants and
 * NT_READ, plain loads or probe reads by object (NT_DIRECT_LOADS).
 */
#ifndef NETTRACE_READ_BPF_H
#define NETTRACE_READ_BPF_H

#define ETH_HLEN 14
#define NT_IPPROTO_ICMPV6 58
#define ETH_P_IP 0x0800
#define ETH_P_ARP 0x0806
#define ETH_P_IPV6 0x86DD
#define NT_HDR_UNSET ((u16)~0U)

/*
 * Kernel memory is read with plain loads through a typed pointer in the
 * objects built with NT_DIRECT_LOADS=1 (build.rs), which the loader picks
 * where the kernel has bpf_rdonly_cast (6.2+): the verifier turns the cast
 * into a move and the JIT makes each load fault-safe, so a field costs a
 * few instructions. bpf_probe_read_kernel costs a helper call, a
 * fault-safe copy loop and a memset on error: on the host a filtered-out
 * tracepoint hit costs 30-45% less with loads (BENCHMARKS.md). The
 * choice is made per object, not per read at load time: both readers in
 * one object made every load slower (the kernel removes the dead branch of
 * each read, libbpf relocates both).
 */
#ifndef NT_DIRECT_LOADS
#define NT_DIRECT_LOADS 0
#endif

/* `((type *)src)->field` from kernel memory, 0 where it cannot be read.
 * Only for vmlinux types: a module type (extra_types.h) can have several
 * BTF ids once modules are loaded, and libbpf refuses the ambiguous type-id
 * relocation bpf_core_cast needs; those are read with BPF_CORE_READ.
 * `src` is evaluated first: inside BPF_CORE_READ an expression such as
 * `h->head + off` would get a CO-RE relocation against our own struct. */
#define NT_READ(type, src, field) ({                                            \
	const void *__nt_src = (const void *)(src);                             \
	NT_DIRECT_LOADS ? bpf_core_cast(__nt_src, type)->field                  \
			: BPF_CORE_READ((type *)__nt_src, field);               \
})

/* Module types are read through these: without module BTF (before 5.11)
 * CO-RE cannot relocate them. The skb is nft_pktinfo's first member on
 * every kernel; the hook state moved (5.10: pkt->xt.state), so such a
 * kernel's nft events carry no hook. */
#define NT_NFT_PKT_SKB(pkt)                                                      \
	(bpf_core_type_exists(struct nft_pktinfo) ?                              \
		 BPF_CORE_READ((struct nft_pktinfo *)(pkt), skb) :               \
		 (struct sk_buff *)nt_read_ptr((const void *)(pkt)))
#define NT_NFT_PKT_STATE(pkt)                                                    \
	(bpf_core_type_exists(struct nft_pktinfo) ?                              \
		 BPF_CORE_READ((struct nft_pktinfo *)(pkt), state) :             \
		 (const struct nf_hook_state *)0)

static __always_inline u64 nt_read_ptr(const void *at)
{
	u64 v = 0;

	bpf_probe_read_kernel(&v, sizeof(v), at);
	return v;
}

#endif
