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

/* ebtables is a module too; its table's name is not where xt_table's is. */
struct ebt_table___nt {
	char name[32];
} __attribute__((preserve_access_index));

/* 6.10 and later: the reason of a reset the stack sends (tcp_send_reset's
 * third argument). Declared here for bpf_core_type_exists: the program
 * reads the argument only on kernels whose BTF has the enum. */
enum sk_rst_reason {
	NT_SK_RST_REASON_NOT_SPECIFIED = 0,
};

#endif
