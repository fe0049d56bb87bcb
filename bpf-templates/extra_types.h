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
} __attribute__((preserve_access_index));

#endif
