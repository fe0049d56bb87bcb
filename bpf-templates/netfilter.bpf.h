/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Netfilter functions: which family, hook, table and chain an event's
 * packet went through, and with --hooks the hook functions registered
 * there (nf_hooks map). Included by core.bpf.h after the event builders
 * and the stash it uses.
 */
#ifndef NETTRACE_NETFILTER_BPF_H
#define NETTRACE_NETFILTER_BPF_H

/* Where a netfilter function's facts are (NULL: not given). */
struct nt_nf_args {
	const struct nf_hook_state *state;
	const void *xt_table;
	const void *ebt_table;
	const struct nft_chain *nft_chain;
	const struct nf_hook_entries *entries;
};

static __always_inline void record_hooks(u8 pf, u8 hook, const struct nf_hook_entries *entries)
{
	u32 slot = (u32)pf * NT_NF_HOOKS_PER_PF + hook;
	struct nt_hooks *h = bpf_map_lookup_elem(&nf_hooks, &slot);
	u16 n;

	if (!h)
		return;
	n = BPF_CORE_READ(entries, num_hook_entries);
	if (n > NT_MAX_HOOKS)
		n = NT_MAX_HOOKS;
	for (int i = 0; i < NT_MAX_HOOKS; i++) {
		if (i >= n)
			break;
		h->fns[i] = (u64)BPF_CORE_READ(entries, hooks[i].hook);
	}
	h->count = n;
}

/* The pointers are copied out of `a` before BPF_CORE_READ: the macro would
 * otherwise emit a CO-RE relocation for `a->...`, and struct nt_nf_args is
 * ours, not the kernel's (the load then fails). */
static __always_inline void fill_nf(struct nt_event *e, struct sk_buff *skb,
				    struct nt_nf_args *a)
{
	const struct nf_hook_state *state = a->state;
	const struct nft_chain *nft_chain = a->nft_chain;

	if (state) {
		const struct net_device *in = BPF_CORE_READ(state, in);
		const struct net_device *out = BPF_CORE_READ(state, out);

		e->nf.pf = BPF_CORE_READ(state, pf);
		e->nf.hook = BPF_CORE_READ(state, hook);
		e->nf.valid |= NT_NF_HOOK;
		if (in)
			BPF_CORE_READ_STR_INTO(&e->nf.in_dev, in, name);
		if (out)
			BPF_CORE_READ_STR_INTO(&e->nf.out_dev, out, name);
		e->nf.valid |= NT_NF_DEVS;
		if (CONFIG.hooks && a->entries)
			record_hooks(e->nf.pf, e->nf.hook, a->entries);
	}
	/* What `-m mark`/`meta mark` and `--ctstate`/`ct state` test: no
	 * entry with info IP_CT_UNTRACKED is untracked, no entry otherwise
	 * invalid (nf_ct_get). */
	if (skb) {
		e->nf.mark = BPF_CORE_READ(skb, mark);
		if (bpf_core_field_exists(skb->_nfct)) {
			unsigned long nfct = BPF_CORE_READ(skb, _nfct);

			e->nf.nfct = (nfct & NT_NFCT_INFO) | ((nfct & ~7UL) ? NT_NFCT_ENTRY : 0);
		}
		e->nf.valid |= NT_NF_SKB;
	}
	/* The table and chain types live in modules: before 5.11 there is no
	 * module BTF to relocate them against, and their layouts differ
	 * between versions, so such a kernel's events name no table. */
	if (a->xt_table && bpf_core_type_exists(struct xt_table___nt)) {
		const struct xt_table___nt *t = a->xt_table;

		BPF_CORE_READ_STR_INTO(&e->nf.table, t, name);
		e->nf.valid |= NT_NF_TABLE;
	}
	if (a->ebt_table && bpf_core_type_exists(struct ebt_table___nt)) {
		const struct ebt_table___nt *t = a->ebt_table;

		BPF_CORE_READ_STR_INTO(&e->nf.table, t, name);
		e->nf.valid |= NT_NF_TABLE;
	}
	if (nft_chain && bpf_core_type_exists(struct nft_chain)) {
		const char *chain = BPF_CORE_READ(nft_chain, name);
		const char *table = BPF_CORE_READ(nft_chain, table, name);

		bpf_probe_read_kernel_str(e->nf.chain, sizeof(e->nf.chain), chain);
		bpf_probe_read_kernel_str(e->nf.table, sizeof(e->nf.table), table);
		e->nf.valid |= NT_NF_TABLE | NT_NF_CHAIN | NT_NF_NFT;
	}
}

/* Entry of a netfilter function probe: the event also says which hook,
 * table and chain. */
static __always_inline int on_entry_nf(void *ctx, u32 probe, struct sk_buff *skb,
				       struct nt_nf_args *a)
{
	struct nt_event *e = build_event(ctx, probe, skb, NULL, true);

	if (e)
		fill_nf(e, skb, a);
	return stash_or_emit(probe, e);
}

#endif
