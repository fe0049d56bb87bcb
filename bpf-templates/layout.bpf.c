// SPDX-License-Identifier: GPL-2.0
/* Compiled only for its skeleton's types: see settings.bpf.h. build.rs
 * passes -DNT_NR_PROBES with the catalogue's probe count. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include "settings.bpf.h"

char LICENSE[] SEC("license") = "GPL";
