/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The hand-written half of the BPF side: maps, event emission, tracking,
 * the entry/exit stash; packet parsing is in parse.bpf.h, the packet filter
 * in filter.bpf.h and the netfilter facts in netfilter.bpf.h. The generated half (nettrace.bpf.c.j2) only
 * declares one small program per probe and flavour and calls into here.
 *
 * Cost model: a packet that fails the filter costs one parse and returns
 * before anything is reserved or written to the ring buffer, and wakes no
 * one. Matching events are copied into the ring buffer without a wake-up
 * until `wake_bytes` are queued; user space also polls on a short timer.
 */
#ifndef NETTRACE_CORE_BPF_H
#define NETTRACE_CORE_BPF_H

#include "vmlinux.h"
#include "extra_types.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include "nettrace.h"
#include "read.bpf.h"

char LICENSE[] SEC("license") = "GPL";

/* Argument readers used by the generated programs. fentry arguments are
 * read with bpf_get_func_arg: typed context access would refuse
 * `struct sk_buff **` arguments and pointer arithmetic on 6.1. Kernels
 * before 5.17 lack the helper: there the trampoline's argument array is
 * read as memory (the branch the kernel cannot take is never verified). */
static __always_inline u64 nt_fentry_arg(void *ctx, u32 i)
{
	u64 v = 0;

	if (bpf_core_enum_value_exists(enum bpf_func_id, BPF_FUNC_get_func_arg))
		bpf_get_func_arg(ctx, i, &v);
	else
		bpf_probe_read_kernel(&v, sizeof(v), (u64 *)ctx + i);
	return v;
}
#define NT_FENTRY_ARG(i) nt_fentry_arg(ctx, i)
#define NT_KARG_0 PT_REGS_PARM1
#define NT_KARG_1 PT_REGS_PARM2
#define NT_KARG_2 PT_REGS_PARM3
#define NT_KARG_3 PT_REGS_PARM4
#define NT_KARG_4 PT_REGS_PARM5
#define NT_KARG_5 PT_REGS_PARM6
#define NT_KPROBE_ARG(i) NT_KARG_##i(ctx)

#include "settings.bpf.h"

/* fexit: the function's return value. Kernels before 5.17 lack
 * bpf_get_func_ret: there it follows the arguments in the trampoline's
 * array, and RET_ON holds 1 + their count (from BTF, src/run/kernel.rs).
 * Constant offsets, one per count: the verifier keeps the one branch the
 * .rodata value leaves (a variable offset from ctx would be refused). */
#define NT_RET_AT(n) \
	case (n) + 1: bpf_probe_read_kernel(&v, sizeof(v), (u64 *)ctx + (n)); break
static __always_inline u64 nt_fexit_ret(void *ctx, u32 probe)
{
	u64 v = 0;

	if (bpf_core_enum_value_exists(enum bpf_func_id, BPF_FUNC_get_func_ret)) {
		bpf_get_func_ret(ctx, &v);
		return v;
	}
	switch (ret_on(probe)) {
	NT_RET_AT(0); NT_RET_AT(1); NT_RET_AT(2); NT_RET_AT(3); NT_RET_AT(4); NT_RET_AT(5);
	NT_RET_AT(6); NT_RET_AT(7); NT_RET_AT(8); NT_RET_AT(9); NT_RET_AT(10); NT_RET_AT(11);
	}
	return v;
}

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4 * 1024 * 1024);
} events SEC(".maps");

/* Events the ring buffer had no room for, per CPU. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, u32);
	__type(value, u64);
} lost SEC(".maps");

/* --rate-kernel: per-CPU windows and what they suppressed. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, u32);
	__type(value, struct nt_limiter);
} limiter SEC(".maps");

struct stash_slot {
	/* In a stash slot of depth 0: how many calls of the probe, entered
	 * after the stashed one and not yet returned, run inside it. */
	u32 nest;
	u32 pad;
	struct nt_event e;
};

/* The event being built, inside a stash slot: a stashed event is
 * inserted as it is, without a copy. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, u32);
	__type(value, struct stash_slot);
} scratch SEC(".maps");

/* skbs that matched the filters: later events of theirs skip the filters.
 * The value is the skb's data buffer (skb->head): an sk_buff whose free no
 * probe saw (e.g. the napi cache path, or any free on a tracepoint-only
 * kernel) comes back for a new packet with a new buffer, and must not be
 * taken for the old one. Clones share the buffer; functions that replace
 * it are `rehead` probes, whose exit records the new one. */
struct nt_track {
	u64 head;
	/* --latency: the packet's key in `spans` (clones share it), and this
	 * skb's latest event: a hop costs two stores here, the packet's
	 * entry is read only when one of its skbs ends. */
	u64 packet;
	u64 last_ts;
	u32 last_probe;
	u32 _pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, u64);
	__type(value, struct nt_span_state);
} spans SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, u64);
	__type(value, struct nt_track);
} tracked SEC(".maps");

/* An upper bound on the entries of `tracked`: creating inserts add one,
 * deletes that found their key take one off; LRU evictions and overwrites
 * leave it high, never low. At zero the map is empty, so a hit needs no
 * lookup: with a filter that matches nothing, none ever does. */
s64 tracked_bound = 0;

static __always_inline void track(u64 *key, struct nt_track *t)
{
	if (!bpf_map_update_elem(&tracked, key, t, BPF_ANY))
		__sync_fetch_and_add(&tracked_bound, 1);
}

static __always_inline void untrack_key(u64 *key)
{
	if (!bpf_map_delete_elem(&tracked, key))
		__sync_fetch_and_add(&tracked_bound, -1);
}

struct stash_key {
	u64 task;
	u32 cpu;
	u16 probe;
	/* Calls of one function nest (a REJECT target sends its ICMP error
	 * through nf_hook_slow from inside nf_hook_slow; br_netfilter runs
	 * the IP hooks inside the bridge's): each level of nesting has a
	 * slot of its own, so an exit completes its own call's event. */
	u16 depth;
};

/* The deepest nesting followed; deeper calls are not reported. */
#define NT_STASH_DEPTH 4

/* Entry events waiting for their function to return, one slot per task
 * (and CPU, for thread 0), probe and nesting depth. A slot outlives its
 * call: the exit marks it done (ts = 0) instead of deleting it, and the
 * task's next call of the probe writes its event into the same slot in
 * place. Per call that is two lookups, where an insert and a delete cost
 * an element's allocation and a bucket lock each (BENCHMARKS.md, monitor
 * mode). LRU: slots of tasks that are gone make room for new ones. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 8192);
	__type(key, struct stash_key);
	__type(value, struct stash_slot);
} stash SEC(".maps");

/* Slots ever created in `stash`. At zero an exit program has nothing to
 * complete and returns before the lookup (and, for kprobe.multi, before
 * the cookie's search): with a filter that matches nothing, every exit. */
s64 stash_bound = 0;

/* Per probe, stashed events whose call has not returned yet (a hint, on
 * every CPU: a call that filtered its packet out looks for an enclosing
 * stashed call of the same task only while this is above zero). */
s32 stash_pending[NT_NR_PROBES];

/* `probe`'s pending count (NULL out of range), checked like
 * probe_setting(). */
static __always_inline s32 *stash_pending_of(u32 probe)
{
	asm volatile("" : "+r"(probe));
	if (probe >= NT_NR_PROBES)
		return NULL;
	return &stash_pending[probe];
}

/* --hooks: slot pf * NT_NF_HOOKS_PER_PF + hook holds that hook's functions, as last seen. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, NT_NF_HOOK_SLOTS);
	__type(key, u32);
	__type(value, struct nt_hooks);
} nf_hooks SEC(".maps");

/* --func-stats: hits per probe, per CPU. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, NT_NR_PROBES);
	__type(key, u32);
	__type(value, u64);
} func_hits SEC(".maps");

/* --latency-summary: the spans of every skb, per CPU. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, u32);
	__type(value, struct nt_hist);
} latency_hist SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_STACK_TRACE);
	__uint(max_entries, 4096);
	__uint(key_size, sizeof(u32));
	__uint(value_size, 127 * sizeof(u64));
} stacks SEC(".maps");

/* NETTRACE_BENCH_FLOOR=1: every program returns before it reads anything,
 * so a benchmark run measures what the attachments alone cost (the floor
 * under the programs' own work). CONFIG is read-only data: the verifier
 * removes whichever path is dead, and a normal run pays nothing. */
#define NT_BENCH_FLOOR()                 \
	do {                             \
		if (CONFIG.bench_floor) \
			return 0;        \
	} while (0)

/* --latency: skbs whose span could not end (their free went unseen), per CPU. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, u32);
	__type(value, u64);
} unended SEC(".maps");

static __always_inline void count_unended(void)
{
	u32 zero = 0;
	u64 *n = bpf_map_lookup_elem(&unended, &zero);

	if (n)
		*n += 1;
}

/* Skbs of non-IP sockets left out, per CPU and address family. */
#define NT_AF_SLOTS 64
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, NT_AF_SLOTS);
	__type(key, u32);
	__type(value, u64);
} non_ip SEC(".maps");

/* --bpf-debug: the programs' own account of what they decide, to the
 * kernel's trace_pipe (user space relays it). CONFIG is read-only data, so
 * with the flag off the verifier prunes these calls as dead code: they cost
 * nothing in a normal run. The formats live in their own section, not in
 * .rodata, whose layout user space checks against CONFIG's. At most three
 * arguments (bpf_trace_printk). */
#define NT_DEBUG(fmt, ...)                                                          \
	do {                                                                        \
		if (CONFIG.debug) {                                                 \
			static const char nt_fmt[] SEC(".rodata.debug") = "nettrace: " fmt; \
			bpf_trace_printk(nt_fmt, sizeof(nt_fmt), ##__VA_ARGS__);    \
		}                                                                   \
	} while (0)

static __always_inline void count_non_ip(u8 family)
{
	u32 key = family;
	u64 *n;

	if (key >= NT_AF_SLOTS)
		key = 0;
	n = bpf_map_lookup_elem(&non_ip, &key);
	if (n)
		*n += 1;
}

static __always_inline void count_lost(void)
{
	u32 zero = 0;
	u64 *n = bpf_map_lookup_elem(&lost, &zero);

	if (n)
		*n += 1;
}

static __always_inline u64 wake_flag(void)
{
	if (bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA) >= CONFIG.wake_bytes)
		return BPF_RB_FORCE_WAKEUP;
	return BPF_RB_NO_WAKEUP;
}

/* --rate-kernel: whether this CPU has sent its events for this second.
 * A flood then costs a counter increment per event, not a ring-buffer
 * copy and a user-space wake-up. */
static __always_inline bool rate_limited(void)
{
	u32 zero = 0;
	struct nt_limiter *l;
	u64 now;

	if (!CONFIG.rate_limit)
		return false;
	l = bpf_map_lookup_elem(&limiter, &zero);
	if (!l)
		return false;
	now = bpf_ktime_get_ns();
	if (now - l->window >= 1000000000ULL) {
		l->window = now;
		l->count = 0;
	}
	if (l->count >= CONFIG.rate_limit) {
		l->suppressed++;
		return true;
	}
	l->count++;
	return false;
}

/* The bytes of `e` the record carries: the sections after `pkt` only when
 * they hold something (struct nt_event). */
static __always_inline u32 record_size(struct nt_event *e)
{
	if (e->flags & NT_EV_SOCK)
		return sizeof(*e);
	if (CONFIG.detail || (e->flags & NT_EV_SPAN))
		return __builtin_offsetof(struct nt_event, sock);
	if (e->nf.valid)
		return __builtin_offsetof(struct nt_event, comm);
	return __builtin_offsetof(struct nt_event, nf);
}

static __always_inline void emit(struct nt_event *e)
{
	/* Modes that aggregate in the kernel send no per-hit events. */
	if (CONFIG.latency || CONFIG.func_stats)
		return;
	if (rate_limited())
		return;
	if (bpf_ringbuf_output(&events, e, record_size(e), wake_flag())) {
		count_lost();
		NT_DEBUG("probe %u skb %llx: ring buffer full, event lost", e->probe, e->skb);
		return;
	}
	NT_DEBUG("probe %u skb %llx: event sent", e->probe, e->skb);
}

#include "parse.bpf.h"
#include "filter.bpf.h"

/* --pcap: the record being filled (too large for the stack). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, u32);
	__type(value, struct nt_bytes);
} bytes_scratch SEC(".maps");

/* --pcap: sends the bytes of `e`'s packet as `skb` holds them now, ahead
 * of the event. Only bytes that are the packet's: from the network header
 * of an IP packet (or the MAC header of what was parsed behind one), and
 * only the linear part (up to skb->tail; paged data is not read). A packet
 * whose headers are not built yet (its summary came from the socket) gets
 * none. */
static __always_inline void capture_bytes(struct sk_buff *skb, struct nt_event *e)
{
	u32 zero = 0, start, tail, data_off, cap;
	unsigned char *head, *data;
	struct nt_bytes *b;
	u16 nh, mh;
	s64 orig;
	u8 link;

	if (!CONFIG.snaplen || !skb)
		return;
	nh = NT_READ(struct sk_buff, skb, network_header);
	mh = NT_READ(struct sk_buff, skb, mac_header);
	if (e->pkt.source == NT_SRC_HEADER &&
	    (e->pkt.l3_proto == ETH_P_IP || e->pkt.l3_proto == ETH_P_IPV6)) {
		start = nh;
		link = NT_LINK_RAW;
	} else if ((e->pkt.source == NT_SRC_MAC || e->pkt.source == NT_SRC_HEADER) &&
		   mh != NT_HDR_UNSET && (e->pkt.source == NT_SRC_MAC || nh == mh + ETH_HLEN)) {
		start = mh;
		link = NT_LINK_ETH;
	} else {
		return;
	}
	head = NT_READ(struct sk_buff, skb, head);
	data = NT_READ(struct sk_buff, skb, data);
	tail = NT_READ(struct sk_buff, skb, tail);
	if (!head || data < head || tail <= start)
		return;
	data_off = (u32)(data - head);
	/* skb->len counts from skb->data. */
	orig = (s64)NT_READ(struct sk_buff, skb, len) + data_off - start;
	cap = tail - start;
	if (cap > CONFIG.snaplen)
		cap = CONFIG.snaplen;
	if (orig < cap)
		orig = cap;
	b = bpf_map_lookup_elem(&bytes_scratch, &zero);
	if (!b)
		return;
	/* A mask bounds `cap` for the verifier where a comparison would not
	 * (clang rewrites it into a range check the verifier cannot follow);
	 * `cap` is already at most CONFIG.snaplen <= NT_SNAP_MAX. */
	cap &= NT_SNAP_BUF - 1;
	if (bpf_probe_read_kernel(b->data, cap, head + start))
		return;
	b->marker = 0;
	b->ts = e->ts;
	b->skb = e->skb;
	b->orig_len = (u32)orig;
	b->caplen = (u16)cap;
	b->link = link;
	cap &= NT_SNAP_BUF - 1;
	if (bpf_ringbuf_output(&events, b, __builtin_offsetof(struct nt_bytes, data) + cap,
			       wake_flag()))
		count_lost();
}

static __always_inline u32 log2_u64(u64 v)
{
	u32 r = 0, shift;

	shift = (v > 0xFFFFFFFFULL) << 5; v >>= shift; r |= shift;
	shift = (v > 0xFFFF) << 4; v >>= shift; r |= shift;
	shift = (v > 0xFF) << 3; v >>= shift; r |= shift;
	shift = (v > 0xF) << 2; v >>= shift; r |= shift;
	shift = (v > 0x3) << 1; v >>= shift; r |= shift;
	r |= (v >> 1);
	return r;
}

/* Counts `ns` in `h`, in slots of log2 microseconds. */
static __always_inline void hist_add(struct nt_hist *h, u64 ns)
{
	u64 us = ns / 1000;
	u64 slot = us ? log2_u64(us) : 0;

	if (slot >= NT_HIST_SLOTS)
		slot = NT_HIST_SLOTS - 1;
	/* The mask after a barrier: clang would otherwise fold it into the
	 * clamp, and the verifier then sees an unbounded index. */
	asm volatile("" : "+r"(slot));
	slot &= NT_HIST_SLOTS - 1;
	h->slots[slot]++;
	h->count++;
	h->sum_ns += ns;
	if (ns > h->max_ns)
		h->max_ns = ns;
}

/* --latency: one skb of the packet is gone; whether others remain. (The
 * decrement is atomic, its reading not: the fetching atomics need BPF
 * ISA v3, which these objects are not built for. Two last skbs freed at
 * once on two CPUs could both end the span.) */
static __always_inline bool span_release(struct nt_span_state *st)
{
	__sync_fetch_and_add(&st->live, -1);
	return *(volatile s32 *)&st->live > 0;
}

/* --latency: a tracked skb came back for another packet, its free unseen:
 * if it was the packet's last, the packet's span can never end. */
static __always_inline void span_skb_lost(u64 packet)
{
	struct nt_span_state *st = bpf_map_lookup_elem(&spans, &packet);

	if (!st)
		return;
	if (span_release(st))
		return;
	if (!st->ended)
		count_unended();
	bpf_map_delete_elem(&spans, &packet);
}

/* --latency: whether a hit of `probe` is only a hop of its packet, and
 * needs no event: an event is needed only where a span can end (a free,
 * a --trace-free probe) or an exit must see it (a clone). */
static __always_inline bool latency_hop_only(u32 probe, bool hop)
{
	return CONFIG.latency && hop && !ret_on(probe) &&
	       !(probe_flags(probe) & NT_PROBE_END);
}

/* --func-stats: one more hit of `probe`. */
static __always_inline void count_hit(u32 probe)
{
	u64 *n = bpf_map_lookup_elem(&func_hits, &probe);

	if (n)
		*n += 1;
}

static __always_inline u32 skb_netns(struct sk_buff *skb, struct sock *sk)
{
	struct net_device *dev = skb ? NT_READ(struct sk_buff, skb, dev) : NULL;
	struct net *net = NULL;

	if (dev)
		net = NT_READ(struct net_device, dev, nd_net.net);
	else if (!sk && skb)
		sk = NT_READ(struct sk_buff, skb, sk);
	if (!dev && sk)
		net = NT_READ(struct sock, sk, __sk_common.skc_net.net);
	return net ? NT_READ(struct net, net, ns.inum) : 0;
}

/* --sock, --rtt-detail: the socket's state. */
static __always_inline void read_sock(struct sock *sk, struct nt_sock *s)
{
	struct inet_connection_sock *icsk = (struct inet_connection_sock *)sk;

	__builtin_memset(s, 0, sizeof(*s));
	s->state = NT_READ(struct sock, sk, __sk_common.skc_state);
	s->protocol = (u8)NT_READ(struct sock, sk, sk_protocol);
	s->wmem_queued = NT_READ(struct sock, sk, sk_wmem_queued);
	s->rmem_alloc = NT_READ(struct sock, sk, sk_backlog.rmem_alloc.counter);
	s->sndbuf = NT_READ(struct sock, sk, sk_sndbuf);
	s->rcvbuf = NT_READ(struct sock, sk, sk_rcvbuf);
	if (s->protocol != IPPROTO_TCP)
		return;
	s->srtt_us = NT_READ(struct tcp_sock, sk, srtt_us) >> 3;
	s->minrtt_us = NT_READ(struct tcp_sock, sk, rtt_min.s[0].v);
	s->snd_cwnd = NT_READ(struct tcp_sock, sk, snd_cwnd);
	s->ssthresh = NT_READ(struct tcp_sock, sk, snd_ssthresh);
	s->packets_out = NT_READ(struct tcp_sock, sk, packets_out);
	s->retrans_out = NT_READ(struct tcp_sock, sk, retrans_out);
	s->total_retrans = NT_READ(struct tcp_sock, sk, total_retrans);
	s->ca_state = BPF_CORE_READ_BITFIELD_PROBED(icsk, icsk_ca_state);
	s->retransmits = NT_READ(struct inet_connection_sock, sk, icsk_retransmits);
	s->pending = NT_READ(struct inet_connection_sock, sk, icsk_pending);
}

/* Builds the event for one probe hit into the per-CPU scratch buffer.
 * Returns NULL when the packet is neither tracked nor matching. */
static __always_inline struct nt_event *build_event(void *ctx, u32 probe, struct sk_buff *skb,
						    struct sock *sk, bool hop)
{
	u32 zero = 0;
	struct stash_slot *slot;
	struct nt_event *e;
	bool was_tracked = false, reused = false, have_netns = false;
	u64 key = (u64)skb, head = 0, now;
	struct nt_pkt pkt;
	u32 netns = 0;
	struct nt_track *known = NULL;

	/* --func-stats without a filter: a hit is all there is to count. */
	if (CONFIG.func_stats && !(FILTER.flags & ~NT_F_NON_IP)) {
		count_hit(probe);
		return NULL;
	}

	/* No `!skb && !sk` test here: clang merges it into an OR of two
	 * pointers, which the 6.1 verifier refuses for typed (tp_btf) args. */
	if (CONFIG.track && skb && tracked_bound > 0)
		known = bpf_map_lookup_elem(&tracked, &key);
	/* --latency: a hop of a packet already followed needs no parse, only
	 * skb->head to tell it from a new packet in the same sk_buff. */
	if (known && latency_hop_only(probe, hop) &&
	    (u64)NT_READ(struct sk_buff, skb, head) == known->head) {
		known->last_ts = bpf_ktime_get_ns();
		known->last_probe = probe;
		return NULL;
	}
	/* Parse and filter on the stack: a hit the filters refuse returns
	 * before the event buffer is touched. The parse also reads skb->head,
	 * which tells a tracked skb from a reused one. */
	__builtin_memset(&pkt, 0, sizeof(pkt));
	/* Keep `pkt` in one piece on the stack. Otherwise clang splits it
	 * into a score of scalars, and every branch of the parser that
	 * rejoins another stores all of them again: about 400 instructions a
	 * hit, most of them stores of zero (bpftool prog dump xlated). */
	asm volatile("" : : "r"(&pkt) : "memory");
	parse_packet(&pkt, skb, sk, &head);
	if (known) {
		if (known->head == head) {
			was_tracked = true;
		} else {
			reused = true;
			if (CONFIG.latency)
				span_skb_lost(known->packet);
			untrack_key(&key);
		}
	}
	if (!skb && pkt.source != NT_SRC_SOCK)
		return NULL;
	/* An skb of a non-IP socket (vsock, netlink...): left out and counted
	 * per family, unless --non-ip asks for them. */
	if (pkt.sk_family && !(FILTER.flags & NT_F_NON_IP)) {
		count_non_ip(pkt.sk_family);
		NT_DEBUG("probe %u skb %llx: non-IP socket family %u, left out", probe, key,
			 pkt.sk_family);
		return NULL;
	}
	if (!was_tracked) {
		if (!filter_pkt(&pkt)) {
			NT_DEBUG("probe %u skb %llx: refused by the packet filter", probe, key);
			return NULL;
		}
		if ((FILTER.flags & NT_F_PID) &&
		    bpf_get_current_pid_tgid() >> 32 != FILTER.pid)
			return NULL;
		if (FILTER.flags & NT_F_NETNS) {
			netns = skb_netns(skb, sk);
			have_netns = true;
			if (netns != FILTER.netns)
				return NULL;
		}
		if (CONFIG.func_stats) {
			count_hit(probe);
			return NULL;
		}
		/* --trace-matcher: other probes follow packets, never start one. */
		if (CONFIG.matcher && CONFIG.track &&
		    !(probe_flags(probe) & NT_PROBE_MATCHER))
			return NULL;
	}
	now = bpf_ktime_get_ns();
	/* A packet first seen at its free is not tracked: the free ends it. */
	if (CONFIG.track && skb && !was_tracked && hop) {
		struct nt_track t = { .head = head, .last_ts = now, .last_probe = probe };

		if (CONFIG.latency) {
			struct nt_span_state st = {
				.first_ts = now,
				.last_ts = now,
				.first_probe = probe,
				.last_probe = probe,
				.live = 1,
			};

			/* Unique: one packet per CPU per nanosecond at most. */
			t.packet = now ^ ((u64)bpf_get_smp_processor_id() << 54);
			bpf_map_update_elem(&spans, &t.packet, &st, BPF_ANY);
		}
		track(&key, &t);
		NT_DEBUG("probe %u skb %llx: matched, followed from here", probe, key);
	} else if (CONFIG.latency && was_tracked && hop) {
		known->last_ts = now;
		known->last_probe = probe;
	}
	if (latency_hop_only(probe, hop))
		return NULL;
	slot = bpf_map_lookup_elem(&scratch, &zero);
	if (!slot)
		return NULL;
	e = &slot->e;
	/* `sock` is written whole where NT_EV_SOCK is set, and sent only then. */
	__builtin_memset(e, 0, __builtin_offsetof(struct nt_event, sock));
	e->pkt = pkt;
	e->pid = bpf_get_current_pid_tgid() >> 32;
	/* The lifecycle reads the namespace to tell a new packet from an old
	 * one reusing the skb (lifecycle/identity.rs). */
	if (have_netns)
		e->netns = netns;
	else if (CONFIG.detail || CONFIG.track)
		e->netns = skb_netns(skb, sk);
	e->ts = now;
	e->skb = (u64)skb;
	e->probe = probe;
	e->cpu = bpf_get_smp_processor_id();
	e->stack_id = -1;
	if (probe_flags(probe) & NT_PROBE_STACK) {
		e->stack_id = bpf_get_stackid(ctx, &stacks, 0);
		if (e->stack_id >= 0)
			e->flags |= NT_EV_STACK;
	}
	if (was_tracked)
		e->flags |= NT_EV_TRACKED;
	else
		capture_bytes(skb, e);
	if (reused)
		e->flags |= NT_EV_REUSED;
	if (CONFIG.sock) {
		if (!sk && skb)
			sk = NT_READ(struct sk_buff, skb, sk);
		if (sk) {
			read_sock(sk, &e->sock);
			e->flags |= NT_EV_SOCK;
		}
	}
	if (CONFIG.detail) {
		struct net_device *dev = skb ? NT_READ(struct sk_buff, skb, dev) : NULL;

		bpf_get_current_comm(e->comm, sizeof(e->comm));
		if (dev) {
			e->ifindex = NT_READ(struct net_device, dev, ifindex);
			BPF_CORE_READ_STR_INTO(&e->ifname, dev, name);
		}
	}
	return e;
}

static __always_inline void untrack(struct sk_buff *skb)
{
	u64 key = (u64)skb;

	if (CONFIG.track)
		untrack_key(&key);
}

/* A function's entry and exit run in one task, but not always on one CPU:
 * a function that sleeps can return on another. So the CPU is part of the
 * key only for thread id 0, the idle tasks, one per CPU, in whose context
 * softirqs also run. */
static __always_inline struct stash_key stash_key_of(u32 probe, u32 depth)
{
	u64 task = bpf_get_current_pid_tgid();
	struct stash_key k = {
		.task = task,
		.cpu = (u32)task ? 0 : bpf_get_smp_processor_id(),
		.probe = probe,
		.depth = depth,
	};
	return k;
}

/* Writes `e` into the slot of `k`, in place when the slot exists. */
static __always_inline void stash_put(struct stash_key *k, struct nt_event *e, u32 probe)
{
	struct stash_slot *slot = bpf_map_lookup_elem(&stash, k);
	s32 *pending;

	if (slot) {
		__builtin_memcpy(&slot->e, e, sizeof(*e));
		slot->nest = 0;
	} else {
		u32 zero = 0;
		/* `e` is the scratch slot's event (build_event). */
		struct stash_slot *fresh = bpf_map_lookup_elem(&scratch, &zero);

		if (!fresh)
			return;
		fresh->nest = 0;
		if (bpf_map_update_elem(&stash, k, fresh, BPF_ANY)) {
			count_lost();
			return;
		}
		__sync_fetch_and_add(&stash_bound, 1);
	}
	pending = stash_pending_of(probe);
	if (pending)
		__sync_fetch_and_add(pending, 1);
}

/* Entry of a probe with an exit program; `e` is NULL when the filter
 * refused the packet. The event waits in the task's slot for the exit.
 * A call made while an earlier call of the probe by the same task is
 * still waiting is nested in it: it is counted there, and its own event
 * (if any) waits one level deeper. Only the innermost waiting call can
 * return next. */
static __always_inline int stash_entry(u32 probe, struct nt_event *e)
{
	struct stash_key k = stash_key_of(probe, 0);
	struct stash_slot *outer;
	s32 *pending = stash_pending_of(probe);
	u32 depth;

	if (!e && (stash_bound <= 0 || !pending || *pending <= 0))
		return 0;
	outer = bpf_map_lookup_elem(&stash, &k);
	if (!outer || !outer->e.ts) {
		if (e)
			stash_put(&k, e, probe);
		return 0;
	}
	if (outer->nest >= NT_STASH_DEPTH)
		return 0;
	depth = ++outer->nest;
	k.depth = depth;
	if (e) {
		stash_put(&k, e, probe);
	} else {
		/* No event at this depth: mark a slot left from earlier calls
		 * done, so that this call's exit completes nothing. */
		struct stash_slot *stale = bpf_map_lookup_elem(&stash, &k);

		if (stale)
			stale->e.ts = 0;
	}
	return 0;
}

/* Emit an entry event now, or stash it for the exit program. */
static __always_inline int stash_or_emit(u32 probe, struct nt_event *e)
{
	if (ret_on(probe))
		return stash_entry(probe, e);
	if (e)
		emit(e);
	return 0;
}

/* --latency: the end of the span of `e`'s skb, at `e` (the free with
 * --latency-free, or a --trace-free probe) or at the skb's last event
 * before `e`. The span is sent (--latency, when at least --min-latency)
 * or counted (--latency-summary), then closed: later events of the skb
 * start no new one. */
static __always_inline void report_span(struct nt_event *e, struct nt_span_state *st,
					u64 end_ts, u32 end_probe)
{
	u64 ns = end_ts > st->first_ts ? end_ts - st->first_ts : 0;
	u32 zero = 0;

	if (CONFIG.latency == NT_LATENCY_HISTOGRAM) {
		struct nt_hist *h = bpf_map_lookup_elem(&latency_hist, &zero);

		if (h)
			hist_add(h, ns);
	} else if (ns >= CONFIG.min_latency_ns && !rate_limited()) {
		e->span.first_ts = st->first_ts;
		e->span.end_ts = end_ts;
		e->span.first_probe = st->first_probe;
		e->span.end_probe = end_probe;
		e->flags |= NT_EV_SPAN;
		if (bpf_ringbuf_output(&events, e, __builtin_offsetof(struct nt_event, sock),
				       wake_flag()))
			count_lost();
	}
	st->ended = 1;
}

/* --latency: `e` is a free (`freed`) or a --trace-free probe of a tracked
 * skb. A --trace-free probe ends the packet's span at once. A free ends
 * it when the skb is the packet's last: at `e` with --latency-free, else
 * at the packet's last event before it; the free of an earlier skb (a
 * clone's original) is one of the packet's events. */
static __always_inline void end_span(struct nt_event *e, u32 probe, bool freed)
{
	u64 key = e->skb, packet;
	struct nt_track *t = bpf_map_lookup_elem(&tracked, &key);
	struct nt_span_state *st;
	bool at_e = !freed || CONFIG.latency_free ||
		    (probe_flags(probe) & NT_PROBE_END);

	if (!t)
		return;
	packet = t->packet;
	st = bpf_map_lookup_elem(&spans, &packet);
	if (!st)
		return;
	if (!freed) {
		if (!st->ended)
			report_span(e, st, e->ts, probe);
		return;
	}
	if (span_release(st)) {
		if (!st->ended) {
			st->last_ts = e->ts;
			st->last_probe = probe;
		}
		return;
	}
	if (!st->ended) {
		if (at_e)
			report_span(e, st, e->ts, probe);
		else if (t->last_ts > st->last_ts)
			report_span(e, st, t->last_ts, t->last_probe);
		else
			report_span(e, st, st->last_ts, st->last_probe);
	}
	bpf_map_delete_elem(&spans, &packet);
}

/* An entry event built: end its span (a --trace-free probe), then emit
 * it now or stash it for the exit program. */
static __always_inline int entry_built(u32 probe, struct sk_buff *skb, struct nt_event *e)
{
	if (CONFIG.latency && e && skb && (probe_flags(probe) & NT_PROBE_END))
		end_span(e, probe, false);
	return stash_or_emit(probe, e);
}

/* Entry of a function probe or a tracepoint. */
static __always_inline int on_entry(void *ctx, u32 probe, struct sk_buff *skb, struct sock *sk)
{
	return entry_built(probe, skb, build_event(ctx, probe, skb, sk, true));
}

/* The tcp_send_reset tracepoint (extra: rst_reason): on 6.10 and later
 * its third argument is the reset's enum sk_rst_reason. */
static __always_inline int on_reset(void *ctx, u32 probe, struct sk_buff *skb, struct sock *sk,
				    u32 reason)
{
	struct nt_event *e = build_event(ctx, probe, skb, sk, true);

	if (e && bpf_core_type_exists(enum sk_rst_reason)) {
		e->reason = reason;
		e->flags |= NT_EV_RST;
	}
	return entry_built(probe, skb, e);
}

/* The inet_sock_set_state tracepoint (extra: state_change): the socket's
 * state is about to change to `new_state`. */
static __always_inline int on_state_change(void *ctx, u32 probe, struct sock *sk, int new_state)
{
	struct nt_event *e = build_event(ctx, probe, NULL, sk, true);

	if (e && (e->flags & NT_EV_SOCK))
		e->sock.new_state = (u8)new_state;
	return entry_built(probe, NULL, e);
}

/* --rtt: the srtt of every update, per CPU. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, u32);
	__type(value, struct nt_hist);
} rtt_hist SEC(".maps");

/* tcp_ack_update_rtt(sk, flag, seq_rtt_us, sack_rtt_us, ca_rtt_us, rs)
 * (extra: rtt): in the RTT modes, one update of the socket's estimate.
 * The entry sees the estimate before the update; the new one follows
 * from the sample by tcp_rtt_estimator's own arithmetic (srtt += sample -
 * srtt/8, or 8 * sample for the first), and the windowed minimum can only
 * fall to the sample (tcp_update_rtt_min). A negative sample updates
 * nothing. In the other modes it is an ordinary probe. */
static __always_inline int on_rtt(void *ctx, u32 probe, struct sock *sk, long seq_rtt_us,
				  long ca_rtt_us)
{
	struct nt_event *e;
	u32 old, srtt, minrtt, zero = 0;

	if (!CONFIG.rtt)
		return on_entry(ctx, probe, NULL, sk);
	if (seq_rtt_us < 0 || !sk)
		return 0;
	old = NT_READ(struct tcp_sock, sk, srtt_us);
	srtt = (old ? old - (old >> 3) + (u32)seq_rtt_us : (u32)seq_rtt_us << 3) >> 3;
	minrtt = NT_READ(struct tcp_sock, sk, rtt_min.s[0].v);
	if (ca_rtt_us >= 0 && (u32)ca_rtt_us < minrtt)
		minrtt = (u32)ca_rtt_us;
	if (srtt < CONFIG.min_srtt_us || minrtt < CONFIG.min_minrtt_us)
		return 0;
	e = build_event(ctx, probe, NULL, sk, false);
	if (!e)
		return 0;
	if (CONFIG.rtt == NT_RTT_HISTOGRAM) {
		struct nt_hist *h = bpf_map_lookup_elem(&rtt_hist, &zero);

		if (h)
			hist_add(h, (u64)srtt * 1000);
		return 0;
	}
	if (!(e->flags & NT_EV_SOCK))
		read_sock(sk, &e->sock);
	e->sock.srtt_us = srtt;
	e->sock.minrtt_us = minrtt;
	e->sock.rtt_us = (u32)seq_rtt_us;
	e->flags |= NT_EV_SOCK;
	emit(e);
	return 0;
}

/* A tracepoint that can fire after its skb was freed (extra: followed in
 * probes.yaml): the skb's bytes may be stale, so in lifecycle mode it
 * reports only a packet already followed. */
static __always_inline int on_followed(void *ctx, u32 probe, struct sk_buff *skb)
{
	if (CONFIG.track) {
		u64 key = (u64)skb;

		if (tracked_bound <= 0 || !bpf_map_lookup_elem(&tracked, &key))
			return 0;
	}
	return on_entry(ctx, probe, skb, NULL);
}

/* What an exit program does besides reporting the return value. */
enum nt_exit_kind {
	NT_EXIT_PLAIN,
	NT_EXIT_CLONE,   /* the return value is a new skb of the packet */
	NT_EXIT_REHEAD,  /* the skb may have a new data buffer now */
};

/* Exit of a function probe: complete the stashed entry event. */
static __always_inline int on_exit(u32 probe, long long ret, enum nt_exit_kind kind)
{
	struct stash_key k;
	struct stash_slot *slot;
	struct nt_event *e;
	s32 *pending;

	if (stash_bound <= 0)
		return 0;
	k = stash_key_of(probe, 0);
	slot = bpf_map_lookup_elem(&stash, &k);
	if (!slot)
		return 0;
	/* A nested call returns first: its event waits one level deeper. */
	if (slot->nest) {
		k.depth = slot->nest;
		slot->nest--;
		slot = bpf_map_lookup_elem(&stash, &k);
		if (!slot)
			return 0;
	}
	e = &slot->e;
	/* ts 0: a slot whose call is done (this call's entry stashed nothing). */
	if (!e->ts)
		return 0;
	pending = stash_pending_of(probe);
	if (pending)
		__sync_fetch_and_add(pending, -1);
	e->ret = ret;
	e->flags |= NT_EV_RET;
	if (kind == NT_EXIT_CLONE && ret) {
		u64 child = (u64)ret;

		if (!CONFIG.noclone) {
			e->aux = child;
			e->flags |= NT_EV_CLONE;
		}
		if (CONFIG.track && !CONFIG.noclone) {
			u64 parent_key = e->skb;
			struct nt_track *parent = bpf_map_lookup_elem(&tracked, &parent_key);
			struct nt_track t = { .last_ts = e->ts, .last_probe = probe };

			/* The clone is one more skb of its packet's span. */
			if (parent && CONFIG.latency) {
				u64 packet = parent->packet;
				struct nt_span_state *st = bpf_map_lookup_elem(&spans, &packet);

				if (st) {
					__sync_fetch_and_add(&st->live, 1);
					t.packet = packet;
				}
			}
			t.head = (u64)NT_READ(struct sk_buff, (void *)child, head);
			track(&child, &t);
		}
	}
	if (kind == NT_EXIT_REHEAD && CONFIG.track && e->skb) {
		u64 key = e->skb;
		struct nt_track *t = bpf_map_lookup_elem(&tracked, &key);

		if (t)
			t->head = (u64)NT_READ(struct sk_buff, (void *)key, head);
	}
	if (!(probe < NT_NR_PROBES && ret >= 0 && ret < 64 && ((QUIET_RET[probe] >> ret) & 1)))
		emit(e);
	e->ts = 0;
	return 0;
}

#include "netfilter.bpf.h"

/* A tracepoint or entry-only probe whose skb's life ends here. */
static __always_inline int on_free(void *ctx, u32 probe, struct sk_buff *skb, bool drop,
				   u64 location, u32 reason)
{
	struct nt_event *e = build_event(ctx, probe, skb, NULL, false);

	if (!e)
		return 0;
	e->flags |= NT_EV_FREE;
	if (drop) {
		e->flags |= NT_EV_DROP;
		e->aux = location;
		e->reason = reason;
		if (CONFIG.drop_stack) {
			e->stack_id = bpf_get_stackid(ctx, &stacks, 0);
			if (e->stack_id >= 0)
				e->flags |= NT_EV_STACK;
		}
	}
	/* Its bytes were sent when it was first seen; a drop's again. */
	if (drop && (e->flags & NT_EV_TRACKED))
		capture_bytes(skb, e);
	/* A packet first seen at its free has no span. */
	if (CONFIG.latency && (e->flags & NT_EV_TRACKED))
		end_span(e, probe, true);
	untrack(skb);
	emit(e);
	return 0;
}

#endif
