# Shared by tools/vm-test and tools/accuracy (sourced, not run): the Debian
# kernels the VM bench boots, and booting one to run a guest script.

declare -A VM_IMAGES=(
  [5.10]=/boot/vmlinuz-5.10.0-32-amd64
  [6.1]=/boot/vmlinuz-6.1.0-56-amd64
  [6.12]=/boot/vmlinuz-6.12.117+deb12-amd64
)

# Modules whose functions are probe targets only while they are loaded,
# and that the tests' scenarios use.
VM_MODULES="nf_tables nft_chain_nat ebtables ip_tables iptable_filter iptable_nat ip6_tables ip6table_filter nf_conntrack nf_nat nf_reject_ipv4 nf_reject_ipv6 br_netfilter bridge veth 8021q sch_netem sch_tbf cls_matchall act_gact"

# vm_boot KERNEL OUT SCRIPT: boots KERNEL under qemu emulation (virtme-ng,
# sharing the host's files read-only, OUT writable) and runs SCRIPT as
# root inside. SCRIPT must `touch OUT/started` first: a guest that never
# got there failed to boot (seen once in CI: vng exited after 15 s with no
# output) and is booted again, up to three times; a guest that started is
# never rerun. Returns vng's exit code; the log is OUT/vng.log.
vm_boot() {
  local k=$1 out=$2 script=$3 boot rc=0
  for boot in 1 2 3; do
    rc=0
    timeout "${VM_TIMEOUT:-1500}" vng --run "${VM_IMAGES[$k]}" --disable-kvm --memory 2G --cpus 2 \
      --user root --rwdir="$out" -- "$script" > "$out/vng.log" 2>&1 || rc=$?
    [ -f "$out/started" ] && return $rc
    echo "=== kernel $k: boot $boot did not reach the guest script (vng exit $rc)" >&2
    tail -20 "$out/vng.log" >&2
    cp "$out/vng.log" "$out/vng.boot$boot.log"
    sleep 5
  done
  return $rc
}
