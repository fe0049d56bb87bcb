// An XDP program that drops every packet: the matrix's XDP fault.
#include <linux/bpf.h>

__attribute__((section("xdp"), used)) int xdp_drop_all(struct xdp_md *ctx)
{
	return XDP_DROP;
}

char _license[] __attribute__((section("license"), used)) = "GPL";
