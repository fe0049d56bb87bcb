/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Types and constants shared by the BPF programs and user space. The Rust
 * side does not re-declare them: libbpf-cargo generates them into the
 * skeleton's `types` module from this header's BTF (the `_nt_*_type`
 * globals in settings.bpf.h make each visible), and src/abi re-exports
 * them. Constants user space needs are enum members, which BTF keeps;
 * #defines are for the BPF side only.
 */
#ifndef NETTRACE_H
#define NETTRACE_H

#define NT_ADDR_LEN 16
#define NT_NAME_LEN 16

/* Where the packet summary in nt_pkt came from. */
enum nt_pkt_source {
	NT_SRC_NONE = 0,   /* no usable header and no socket */
	NT_SRC_HEADER = 1, /* parsed from the skb's network header */
	NT_SRC_MAC = 2,    /* parsed after the MAC header (network header unset) */
	NT_SRC_SOCK = 3,   /* taken from the socket (headers not built yet) */
};

/* nt_event.flags */
enum nt_event_flags {
	NT_EV_RET = 1 << 0,      /* ret holds the function's return value */
	NT_EV_DROP = 1 << 1,     /* a drop: reason and location are set */
	NT_EV_CLONE = 1 << 2,    /* aux holds the new skb of a clone/copy */
	NT_EV_FREE = 1 << 3,     /* the skb's life ends with this event */
	NT_EV_TRACKED = 1 << 4,  /* passed the filters earlier; filters skipped */
	NT_EV_STACK = 1 << 5,    /* stack_id is valid */
	NT_EV_REUSED = 1 << 6,   /* the skb was tracked for an earlier packet whose free no probe saw */
	NT_EV_SPAN = 1 << 7,     /* --latency: `span` holds the skb's timed life */
	NT_EV_SOCK = 1 << 8,     /* `sock` holds the socket's state (--sock, --rtt-detail) */
	NT_EV_RST = 1 << 9,      /* `reason` is an enum sk_rst_reason value (tcp_send_reset, 6.10+) */
};

/* --latency: one skb's life from its first matched event to its end
 * (the last event before the free, the free itself with --latency-free,
 * or a --trace-free probe). A clone's span starts where its packet's did. */
struct nt_span {
	unsigned long long first_ts;
	unsigned long long end_ts;
	unsigned int first_probe;
	unsigned int end_probe;
};

/* --sock and --rtt-detail: the state of the socket an event saw. The TCP
 * fields are 0 for other protocols. */
struct nt_sock {
	unsigned int srtt_us;       /* smoothed RTT (tcp_sock.srtt_us >> 3) */
	unsigned int minrtt_us;     /* windowed minimum RTT (tcp_sock.rtt_min) */
	unsigned int rtt_us;        /* --rtt-detail: this ACK's RTT sample */
	unsigned int snd_cwnd;
	unsigned int ssthresh;
	unsigned int packets_out;   /* segments in flight */
	unsigned int retrans_out;   /* retransmitted segments in flight */
	unsigned int total_retrans; /* retransmissions over the socket's life */
	int wmem_queued;            /* bytes queued to send */
	int rmem_alloc;             /* bytes in the receive queue */
	int sndbuf;
	int rcvbuf;
	unsigned char state;        /* TCP_ESTABLISHED... (sk_state) */
	unsigned char ca_state;     /* TCP_CA_Open... (icsk_ca_state) */
	unsigned char retransmits;  /* unanswered retransmissions of the head (icsk_retransmits) */
	unsigned char pending;      /* ICSK_TIME_* timer armed, 0 for none */
	unsigned char protocol;     /* IPPROTO_* (sk_protocol) */
	unsigned char new_state;    /* inet_sock_set_state: the state `state` changes to, else 0 */
	unsigned char _pad[2];
};

struct nt_pkt {
	unsigned char saddr[NT_ADDR_LEN]; /* IPv4 uses the first 4 bytes */
	unsigned char daddr[NT_ADDR_LEN];
	unsigned int seq;                 /* TCP sequence number */
	unsigned int ack;                 /* TCP acknowledgement number */
	unsigned int len;                 /* skb->len */
	unsigned short l3_proto;          /* ETH_P_*, host byte order */
	unsigned short sport;             /* host byte order */
	unsigned short dport;
	unsigned short icmp_id;
	unsigned short icmp_seq;
	unsigned short arp_op;
	unsigned char l4_proto;           /* IPPROTO_* */
	unsigned char family;             /* 4, 6, or 0 */
	unsigned char tcp_flags;
	unsigned char icmp_type;
	unsigned char icmp_code;
	unsigned char source;             /* enum nt_pkt_source */
	unsigned short ip_id;             /* IPv4 identification, host order */
	unsigned char sk_family;          /* from a socket of another family than IPv4/IPv6: its AF_* (vsock, netlink, unix...); else 0 */
	unsigned char _pad[3];
};

#define NT_NF_NAME_LEN 32

/* nt_nf.valid: which netfilter facts an event carries */
enum nt_nf_valid {
	NT_NF_HOOK = 1 << 0,   /* pf and hook */
	NT_NF_TABLE = 1 << 1,
	NT_NF_CHAIN = 1 << 2,
	NT_NF_NFT = 1 << 3,    /* table and chain are nftables' (else iptables') */
	NT_NF_DEVS = 1 << 4,   /* in_dev and out_dev (either may be empty) */
	NT_NF_SKB = 1 << 5,    /* mark and nfct */
};

/* nt_nf.nfct: the packet's conntrack attachment (skb->_nfct) */
enum nt_nfct {
	NT_NFCT_INFO = 7,       /* enum ip_conntrack_info (NFCT_INFOMASK) */
	NT_NFCT_ENTRY = 1 << 3, /* a conntrack entry is attached */
};

/* What a netfilter function saw: family, hook, table and chain, and the
 * packet's devices, mark and conntrack state there. */
struct nt_nf {
	unsigned char valid;
	unsigned char pf;      /* NFPROTO_* */
	unsigned char hook;    /* NF_INET_* (NF_NETDEV_* for netdev) */
	unsigned char nfct;    /* enum nt_nfct */
	char table[NT_NF_NAME_LEN];
	char chain[NT_NF_NAME_LEN];
	/* What a firewall rule can match on besides the headers: the hook's
	 * devices, skb->mark and the conntrack state, as the chain saw them. */
	char in_dev[NT_NAME_LEN];
	char out_dev[NT_NAME_LEN];
	unsigned int mark;
};

struct nt_event {
	unsigned long long ts;     /* ns since boot (bpf_ktime_get_ns) */
	unsigned long long skb;
	unsigned long long aux;    /* drop location, or the clone's new skb */
	long long ret;
	unsigned int probe;        /* index into the generated probe table */
	unsigned int flags;        /* enum nt_event_flags */
	unsigned int reason;       /* enum skb_drop_reason value */
	int stack_id;
	unsigned int pid;
	unsigned int cpu;
	unsigned int ifindex;
	unsigned int netns;
	struct nt_pkt pkt;
	/* The record in the ring buffer ends before `nf` when no netfilter
	 * probe filled it, and before `comm` without --detail (emit() in
	 * core.bpf.h): most records are 128 bytes of the 232. */
	struct nt_nf nf;
	char comm[NT_NAME_LEN];   /* --detail only */
	char ifname[NT_NAME_LEN]; /* --detail only */
	struct nt_span span;      /* NT_EV_SPAN only */
	struct nt_sock sock;      /* NT_EV_SOCK only */
};

/* --pcap: where captured bytes start (enum, not #defines: BTF carries
 * the values to the Rust side). */
enum nt_link {
	NT_LINK_RAW = 1, /* the network header: IPv4 or IPv6 (LINKTYPE_RAW) */
	NT_LINK_ETH = 2, /* the MAC header of an Ethernet frame (LINKTYPE_ETHERNET) */
};

enum nt_snap {
	NT_SNAP_MAX = 1536, /* bytes captured per packet at most (--snaplen) */
	NT_SNAP_BUF = 2048, /* room for them: a power of two, so a mask bounds a length */
};

/* --pcap: a packet's bytes at one event, sent just before that event (the
 * event of an entry that waits for its exit comes later) and paired with
 * it by ts and skb. A record is one when its first 8 bytes are 0: no
 * event's ts is. Only the header and `caplen` bytes of `data` are sent. */
struct nt_bytes {
	unsigned long long marker; /* 0 */
	unsigned long long ts;
	unsigned long long skb;
	unsigned int orig_len;     /* the packet's length from the first byte on */
	unsigned short caplen;     /* bytes of data sent: the linear part, at most --snaplen */
	unsigned char link;        /* enum nt_link */
	unsigned char _pad;
	unsigned char data[NT_SNAP_BUF];
};

/* nt_filter.flags: which filters are active */
enum nt_filter_flags {
	NT_F_SADDR = 1 << 0,
	NT_F_DADDR = 1 << 1,
	NT_F_ADDR = 1 << 2,
	NT_F_SPORT = 1 << 3,
	NT_F_DPORT = 1 << 4,
	NT_F_PORT = 1 << 5,
	NT_F_L3 = 1 << 6,
	NT_F_L4 = 1 << 7,
	NT_F_PID = 1 << 8,
	NT_F_NETNS = 1 << 9,
	NT_F_LEN = 1 << 10,
	NT_F_TCP_FLAGS = 1 << 11,
	NT_F_NON_IP = 1 << 12,   /* --non-ip: report skbs of non-IP sockets (else counted in `non_ip`) */
};

struct nt_filter {
	unsigned int flags;
	unsigned char saddr[NT_ADDR_LEN];
	unsigned char daddr[NT_ADDR_LEN];
	unsigned char addr[NT_ADDR_LEN];
	unsigned char saddr_family;
	unsigned char daddr_family;
	unsigned char addr_family;
	unsigned char l4_proto;
	unsigned short l3_proto;
	unsigned short sport;
	unsigned short dport;
	unsigned short port;
	unsigned int pid;
	unsigned int netns;
	unsigned int len_min;
	unsigned int len_max;
	unsigned char tcp_flags;
	unsigned char _pad[3];
};

/* --hooks: family pf's hook h is slot pf * NT_NF_HOOKS_PER_PF + h of the
 * nf_hooks map. An enum, not #defines, so that BTF carries the values to
 * the Rust side. */
enum nt_hook_slots {
	NT_MAX_HOOKS = 16,       /* hook functions kept per hook */
	NT_NF_HOOKS_PER_PF = 8,
	NT_NF_HOOK_SLOTS = 16 * 8, /* NFPROTO_NUMPROTO x hooks */
};

/* --hooks: the hook functions registered on one family's hook. */
struct nt_hooks {
	unsigned int count;
	unsigned int _pad;
	unsigned long long fns[NT_MAX_HOOKS];
};

/* Run-wide settings, fixed before load (they live in .rodata, so the
 * verifier prunes the branches they switch off). */
struct nt_config {
	unsigned char track;       /* lifecycle: remember skbs that matched */
	unsigned char detail;      /* fill comm/ifname/ifindex/netns */
	unsigned char drop_stack;  /* collect a stack id on drops */
	unsigned char hooks;       /* --hooks: record the hook functions at nf_hook_slow */
	unsigned char bench_floor; /* NETTRACE_BENCH_FLOOR: every program returns at once */
	unsigned char latency;     /* enum nt_latency_mode */
	unsigned char latency_free; /* --latency-free: a span ends at the free itself */
	unsigned char func_stats;  /* --func-stats: count hits per probe, send nothing */
	unsigned char noclone;     /* --trace-noclone: clones do not join the packet */
	unsigned char matcher;     /* --trace-matcher: only NT_PROBE_MATCHER probes start a packet */
	unsigned char rtt;         /* enum nt_rtt_mode */
	unsigned char sock;        /* fill nt_event.sock where the probe has a socket */
	unsigned char debug;       /* --bpf-debug: bpf_printk what each program decides */
	unsigned int wake_bytes;   /* wake user space once this much is queued */
	unsigned int rate_limit;   /* --rate-kernel: events per second per CPU, 0 = no limit */
	unsigned long long min_latency_ns; /* --min-latency: shorter spans are not sent */
	unsigned int min_srtt_us;   /* --filter-srtt: updates with a smaller srtt are skipped */
	unsigned int min_minrtt_us; /* --filter-minrtt: updates with a smaller minrtt are skipped */
	unsigned int snaplen;      /* --pcap: bytes captured per packet (0: none) */
};

/* nt_config.rtt */
enum nt_rtt_mode {
	NT_RTT_OFF = 0,
	NT_RTT_HISTOGRAM = 1, /* --rtt: count srtt updates in `rtt_hist` */
	NT_RTT_DETAIL = 2,    /* --rtt-detail: one NT_EV_SOCK event per update */
};

/* --latency: one packet's span so far, the value of the `spans` map. Its
 * skbs (the first and its clones) count in `live`; the free of the last
 * one ends the span. User space reads `ended` at exit (open spans). */
struct nt_span_state {
	unsigned long long first_ts;
	unsigned long long last_ts;
	unsigned int first_probe;
	unsigned int last_probe;
	int live;
	unsigned int ended; /* reported (or a --trace-free probe ended it); only the skbs remain */
};

/* nt_config.latency */
enum nt_latency_mode {
	NT_LATENCY_OFF = 0,
	NT_LATENCY_SPANS = 1,     /* --latency: one NT_EV_SPAN event per skb */
	NT_LATENCY_HISTOGRAM = 2, /* --latency-summary: count spans in `latency_hist` */
};

/* PROBE_FLAGS[probe]: per-probe roles set before load. */
enum nt_probe_flags {
	NT_PROBE_MATCHER = 1 << 0, /* --trace-matcher: may start a packet's context */
	NT_PROBE_STACK = 1 << 1,   /* --trace-stack: collect the kernel stack */
	NT_PROBE_END = 1 << 2,     /* --trace-free: ends the skb's timed span */
};

/* Slots of a log2 histogram: slot k counts values in [2^k, 2^(k+1)) us,
 * slot 0 also counts 0. */
enum nt_hist_size {
	NT_HIST_SLOTS = 32,
};

/* A log2 histogram (per CPU; user space adds the CPUs up). */
struct nt_hist {
	unsigned long long slots[NT_HIST_SLOTS];
	unsigned long long count;
	unsigned long long sum_ns;
	unsigned long long max_ns;
};

/* --rate-kernel: one CPU's window of one second. */
struct nt_limiter {
	unsigned long long window;     /* start of the window, ns */
	unsigned long long count;      /* events sent in it */
	unsigned long long suppressed; /* events not sent, in all */
};

#endif
