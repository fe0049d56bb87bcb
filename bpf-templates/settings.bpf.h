/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The run-wide settings in .rodata, and type anchors. Included by the main
 * object (core.bpf.h) and by layout.bpf.c, a tiny object compiled only for
 * its skeleton: the skeleton's `types::rodata` therefore has exactly the
 * main object's .rodata layout, and user space writes the settings into
 * the main object's .rodata through it. (The main object has no skeleton:
 * one with ~700 programs is slow to compile.)
 */
#ifndef NETTRACE_SETTINGS_BPF_H
#define NETTRACE_SETTINGS_BPF_H

#include "nettrace.h"

const volatile struct nt_filter FILTER = {};
const volatile struct nt_config CONFIG = {};
/* Per probe: 1 when its exit program is loaded, so that the entry program
 * stashes the event for the exit to complete instead of emitting it.
 * Rounded up to 4 bytes: the section then has the size of the skeleton's
 * Rust struct, whose alignment pads it so. */
#define NT_RET_ON_LEN ((NT_NR_PROBES + 3) & ~3)
const volatile unsigned char RET_ON[NT_RET_ON_LEN] = {};
/* Per probe: enum nt_probe_flags (--trace-matcher, --trace-stack, --trace-free). */
const volatile unsigned char PROBE_FLAGS[NT_RET_ON_LEN] = {};
/* --monitor: per probe, bit v set when no monitored rule can report on a
 * return value of v (0..63): that exit is dropped here instead of sent. */
const volatile unsigned long long QUIET_RET[NT_NR_PROBES] = {};

/* A per-probe setting, its bound checked on the very register that
 * indexes: clang reuses a check made earlier on a copy of `probe`, and
 * verifiers before 6.3 do not carry a check to a copy spilled to the
 * stack (6.1 refused the generic kprobe program so). */
static __always_inline unsigned char probe_setting(const volatile unsigned char *table, __u32 probe)
{
	asm volatile("" : "+r"(probe));
	if (probe >= NT_NR_PROBES)
		return 0;
	return table[probe];
}
#define probe_flags(probe) probe_setting(PROBE_FLAGS, probe)
#define ret_on(probe) probe_setting(RET_ON, probe)

/* Make the shared types and enums visible in BTF so the skeleton
 * generates them (src/abi). */
struct nt_event _nt_event_type = {};
enum nt_event_flags _nt_event_flags_type = 0;
enum nt_filter_flags _nt_filter_flags_type = 0;
enum nt_nf_valid _nt_nf_valid_type = 0;
enum nt_nfct _nt_nfct_type = 0;
enum nt_pkt_source _nt_pkt_source_type = 0;
enum nt_hook_slots _nt_hook_slots_type = 0;
enum nt_latency_mode _nt_latency_mode_type = 0;
enum nt_probe_flags _nt_probe_flags_type = 0;
enum nt_hist_size _nt_hist_size_type = 0;
enum nt_rtt_mode _nt_rtt_mode_type = 0;
struct nt_hist _nt_hist_type = {};
struct nt_span_state _nt_span_state_type = {};
struct nt_bytes _nt_bytes_type = {};
enum nt_link _nt_link_type = 0;
enum nt_snap _nt_snap_type = 0;

#endif
