// A tc classifier (cls_bpf, direct action) that drops every packet: the
// matrix's tc ingress and egress faults.
#include <linux/bpf.h>
#include <linux/pkt_cls.h>

__attribute__((section("tc"), used)) int tc_drop_all(struct __sk_buff *skb)
{
	return TC_ACT_SHOT;
}

char _license[] __attribute__((section("license"), used)) = "GPL";
