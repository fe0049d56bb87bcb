// SPDX-License-Identifier: GPL-2.0
/*
 * Capability probes for `nettrace --check` and the loader: does this kernel
 * load and attach an fentry program, a tp_btf program and a raw tracepoint,
 * and does it have the BPF ring buffer (the tracepoint programs write to
 * one)? Targets are set by the loader.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "GPL";

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4096);
} caps_ring SEC(".maps");

SEC("fentry")
int caps_fentry(void *ctx)
{
	return 0;
}

SEC("tp_btf")
int caps_tp_btf(void *ctx)
{
	bpf_ringbuf_output(&caps_ring, &ctx, sizeof(ctx), 0);
	return 0;
}

SEC("raw_tp")
int caps_raw_tp(void *ctx)
{
	bpf_ringbuf_output(&caps_ring, &ctx, sizeof(ctx), 0);
	return 0;
}
