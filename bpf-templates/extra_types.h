/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Kernel types that live in modules, so vmlinux.h lacks them. Only the
 * fields nettrace reads are declared; CO-RE relocates them against the
 * module's BTF at load time.
 */
#ifndef NETTRACE_EXTRA_TYPES_H
#define NETTRACE_EXTRA_TYPES_H

struct nft_pktinfo {
	struct sk_buff *skb;
	const struct nf_hook_state *state;
} __attribute__((preserve_access_index));

struct nft_table {
	char *name;
} __attribute__((preserve_access_index));

struct nft_chain {
	struct nft_table *table;
	char *name;
} __attribute__((preserve_access_index));

/* x_tables is a module on Debian kernels. */
struct xt_table___nt {
	char name[32];
} __attribute__((preserve_access_index));

#endif
