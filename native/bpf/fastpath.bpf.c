// ngrelay's kernel fast path: a tc ingress program (tcx link, or clsact on old kernels) that forwards RTP of
// confirmed streams without waking the relay. The engine (native/src/kernel_path.cpp) puts one rule per
// stream into kp_rules, keyed by the relay socket a packet is addressed to; a packet that matches a rule and
// comes from the rule's expected source is rewritten (new source = the other leg's socket, new destination
// = the other party), its checksums are updated incrementally, and it is sent out with bpf_redirect_neigh.
// Everything else goes on unchanged (TC_ACT_UNSPEC: also to any further program on the hook): RTCP and
// muxed RTCP (second byte 192..223), STUN/DTLS (first byte < 128), fragments, IP options/extension headers,
// and packets from an unexpected source (counted as mismatches; the engine decides what they mean). Every
// relay socket has a rule, active or not, that counts what goes up to it (kp_sync): a packet is forwarded
// only when the engine has finished with all of those, so a hand-over never lets a packet overtake another.
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/udp.h>
#include <linux/in.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "fastpath_maps.h"

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, KP_MAX_RULES);
  __type(key, struct kp_key);
  __type(value, struct kp_rule);
} kp_rules SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(map_flags, BPF_F_MMAPABLE);
  __uint(max_entries, KP_MAX_SLOTS);
  __type(key, __u32);
  __type(value, struct kp_sync);
} kp_sync SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __uint(max_entries, KP_MAX_SLOTS);
  __type(key, __u32);
  __type(value, struct kp_counters);
} kp_counters SEC(".maps");

#define ETH_LEN 14
#define IP4_OFF ETH_LEN
#define UDP4_OFF (IP4_OFF + 20)
#define IP6_OFF ETH_LEN
#define UDP6_OFF (IP6_OFF + 40)
#define RTP_MIN 12

static __always_inline void count_forwarded(__u32 slot, __u64 bytes, __u64 rtp) {
  __u64 now = bpf_ktime_get_ns();
  struct kp_counters* c = bpf_map_lookup_elem(&kp_counters, &slot);
  if (c) {
    c->packets++;
    c->bytes += bytes;
    c->last_ns = now;
    c->last_rtp = rtp;
  }
  __u32 total = KP_TOTALS_SLOT;
  c = bpf_map_lookup_elem(&kp_counters, &total);
  if (c) {
    c->packets++;
    c->bytes += bytes;
    c->last_ns = now;
  }
}

static __always_inline void count_mismatch(__u32 slot) {
  struct kp_counters* c = bpf_map_lookup_elem(&kp_counters, &slot);
  if (c) c->mismatches++;
}

/** The packet goes up to the relay socket: counted, so the engine's reads can be matched against it. */
static __always_inline int pass_up(__u32 slot) {
  struct kp_sync* s = bpf_map_lookup_elem(&kp_sync, &slot);
  if (s) __sync_fetch_and_add(&s->up, 1);
  return TC_ACT_UNSPEC;
}

/** Active, and the engine has finished with everything that went up before: this one may overtake nothing. */
static __always_inline int may_forward(const struct kp_rule* rule) {
  if (!(rule->flags & KP_FLAG_ACTIVE)) return 0;
  __u32 slot = rule->slot;
  struct kp_sync* s = bpf_map_lookup_elem(&kp_sync, &slot);
  if (!s) return 0;
  return *(volatile __u64*)&s->up == *(volatile __u64*)&s->consumed;
}

/** The engine's encoding of "last seen SSRC and sequence number" (Stream::rtpState). */
static __always_inline __u64 rtp_state(const __u8* p) {
  __u64 seq = ((__u64)p[2] << 8) | p[3];
  __u64 ssrc = ((__u64)p[8] << 24) | ((__u64)p[9] << 16) | ((__u64)p[10] << 8) | p[11];
  return (1ull << 48) | (seq << 32) | ssrc;
}

/**
 * RTP version 2 for the kernel to forward: not RTCP (payload type byte 192..223 with the marker bit is RTCP
 * under rtcp-mux), not the payload type the engine wants to see (telephone-event).
 */
static __always_inline int is_rtp(__u8 b0, __u8 b1, const struct kp_rule* rule) {
  if ((b0 & 0xc0) != 0x80) return 0;
  if (b1 >= 192 && b1 <= 223) return 0;
  if ((b1 & 0x7f) == rule->pass_pt) return 0;
  return 1;
}

/** Makes the first `len` bytes direct-readable (software-GSO and paged skbs need the pull). */
static __always_inline int ensure_linear(struct __sk_buff* skb, __u32 len) {
  void* data = (void*)(long)skb->data;
  void* end = (void*)(long)skb->data_end;
  if (data + len <= end) return 0;
  if (skb->len < len) return -1;
  return bpf_skb_pull_data(skb, len);
}

static __always_inline int handle_v4(struct __sk_buff* skb) {
  if (ensure_linear(skb, UDP4_OFF + 8)) return TC_ACT_UNSPEC;
  void* data = (void*)(long)skb->data;
  void* end = (void*)(long)skb->data_end;
  struct iphdr* ip = data + IP4_OFF;
  struct udphdr* udp = data + UDP4_OFF;
  if ((void*)(udp + 1) > end) return TC_ACT_UNSPEC;
  if (ip->version != 4 || ip->ihl != 5 || ip->protocol != IPPROTO_UDP) return TC_ACT_UNSPEC;
  if (ip->frag_off & bpf_htons(0x3fff)) return TC_ACT_UNSPEC;  // a fragment (MF or an offset)

  struct kp_key key = {};
  __builtin_memcpy(key.addr, &ip->daddr, 4);
  key.port = udp->dest;
  key.family = KP_FAMILY_V4;
  struct kp_rule* rule = bpf_map_lookup_elem(&kp_rules, &key);
  if (!rule) return TC_ACT_UNSPEC;
  // From here on the packet is for a relay socket: whatever goes up is counted (pass_up).
  if (bpf_ntohs(udp->len) < 8 + RTP_MIN || ensure_linear(skb, UDP4_OFF + 8 + RTP_MIN)) return pass_up(rule->slot);
  data = (void*)(long)skb->data;
  end = (void*)(long)skb->data_end;
  ip = data + IP4_OFF;
  udp = data + UDP4_OFF;
  __u8* payload = data + UDP4_OFF + 8;
  if ((void*)(payload + RTP_MIN) > end) return pass_up(rule->slot);

  __u16 udp_len = bpf_ntohs(udp->len);
  if (!is_rtp(payload[0], payload[1], rule) || !may_forward(rule)) return pass_up(rule->slot);
  const __u64 rtp = rtp_state(payload);
  __be32 old_src = ip->saddr, old_dst = ip->daddr;
  __be32 expect;
  __builtin_memcpy(&expect, rule->expect_addr, 4);
  if (old_src != expect || udp->source != rule->expect_port) {
    count_mismatch(rule->slot);
    return pass_up(rule->slot);
  }
  const int dec_ttl = (rule->flags & KP_FLAG_DEC_TTL) != 0;
  if (dec_ttl && ip->ttl <= 1) return pass_up(rule->slot);  // the stack answers with ICMP time exceeded

  // Everything the rewrite needs, read before the first helper call invalidates the packet pointers.
  __be32 new_src, new_dst;
  __builtin_memcpy(&new_src, rule->src_addr, 4);
  __builtin_memcpy(&new_dst, rule->dst_addr, 4);
  __u32 old_ports, new_ports;
  __builtin_memcpy(&old_ports, &udp->source, 4);
  __u16 ports[2] = {rule->src_port, rule->dst_port};
  __builtin_memcpy(&new_ports, ports, 4);
  __u16 old_ttl_word, new_ttl_word;
  __builtin_memcpy(&old_ttl_word, &ip->ttl, 2);  // ttl and protocol: one 16-bit word of the header sum
  __u8 ttl_proto[2] = {(__u8)(ip->ttl - 1), ip->protocol};
  __builtin_memcpy(&new_ttl_word, ttl_proto, 2);
  const __u32 slot = rule->slot, ifindex = rule->ifindex;

  // UDP: a zero checksum (none sent) stays zero (BPF_F_MARK_MANGLED_0).
  const __u64 l4 = BPF_F_MARK_MANGLED_0;
  const int csum4 = UDP4_OFF + offsetof(struct udphdr, check);
  const int csum3 = IP4_OFF + offsetof(struct iphdr, check);
  if (bpf_l4_csum_replace(skb, csum4, old_src, new_src, l4 | BPF_F_PSEUDO_HDR | 4) ||
      bpf_l4_csum_replace(skb, csum4, old_dst, new_dst, l4 | BPF_F_PSEUDO_HDR | 4) ||
      bpf_l4_csum_replace(skb, csum4, old_ports, new_ports, l4 | 4) ||
      bpf_l3_csum_replace(skb, csum3, old_src, new_src, 4) || bpf_l3_csum_replace(skb, csum3, old_dst, new_dst, 4))
    return TC_ACT_SHOT;  // half-rewritten: must not go anywhere
  if (bpf_skb_store_bytes(skb, IP4_OFF + offsetof(struct iphdr, saddr), &new_src, 4, 0) ||
      bpf_skb_store_bytes(skb, IP4_OFF + offsetof(struct iphdr, daddr), &new_dst, 4, 0) ||
      bpf_skb_store_bytes(skb, UDP4_OFF, &new_ports, 4, 0))
    return TC_ACT_SHOT;
  if (dec_ttl) {
    if (bpf_l3_csum_replace(skb, csum3, old_ttl_word, new_ttl_word, 2) ||
        bpf_skb_store_bytes(skb, IP4_OFF + offsetof(struct iphdr, ttl), &new_ttl_word, 2, 0))
      return TC_ACT_SHOT;
  }
  count_forwarded(slot, udp_len - 8, rtp);
  return bpf_redirect_neigh(ifindex, NULL, 0, 0);
}

static __always_inline int handle_v6(struct __sk_buff* skb) {
  if (ensure_linear(skb, UDP6_OFF + 8)) return TC_ACT_UNSPEC;
  void* data = (void*)(long)skb->data;
  void* end = (void*)(long)skb->data_end;
  struct ipv6hdr* ip = data + IP6_OFF;
  struct udphdr* udp = data + UDP6_OFF;
  if ((void*)(udp + 1) > end) return TC_ACT_UNSPEC;
  if (ip->version != 6 || ip->nexthdr != IPPROTO_UDP) return TC_ACT_UNSPEC;  // extension headers: go up

  struct kp_key key = {};
  __builtin_memcpy(key.addr, &ip->daddr, 16);
  key.port = udp->dest;
  key.family = KP_FAMILY_V6;
  struct kp_rule* rule = bpf_map_lookup_elem(&kp_rules, &key);
  if (!rule) return TC_ACT_UNSPEC;
  if (bpf_ntohs(udp->len) < 8 + RTP_MIN || ensure_linear(skb, UDP6_OFF + 8 + RTP_MIN)) return pass_up(rule->slot);
  data = (void*)(long)skb->data;
  end = (void*)(long)skb->data_end;
  ip = data + IP6_OFF;
  udp = data + UDP6_OFF;
  __u8* payload = data + UDP6_OFF + 8;
  if ((void*)(payload + RTP_MIN) > end) return pass_up(rule->slot);

  __u16 udp_len = bpf_ntohs(udp->len);
  if (!is_rtp(payload[0], payload[1], rule) || !may_forward(rule)) return pass_up(rule->slot);
  const __u64 rtp = rtp_state(payload);
  // old and new source + destination address, as the checksum difference is taken over them
  __u32 old_addrs[8], new_addrs[8];
  __builtin_memcpy(old_addrs, &ip->saddr, 32);
  __u32 expect[4];
  __builtin_memcpy(expect, rule->expect_addr, 16);
  if (old_addrs[0] != expect[0] || old_addrs[1] != expect[1] || old_addrs[2] != expect[2] ||
      old_addrs[3] != expect[3] || udp->source != rule->expect_port) {
    count_mismatch(rule->slot);
    return pass_up(rule->slot);
  }
  const int dec_hop = (rule->flags & KP_FLAG_DEC_TTL) != 0;
  if (dec_hop && ip->hop_limit <= 1) return pass_up(rule->slot);
  __u8 new_hop = ip->hop_limit - 1;
  __builtin_memcpy(new_addrs, rule->src_addr, 16);
  __builtin_memcpy(new_addrs + 4, rule->dst_addr, 16);
  __u32 old_ports, new_ports;
  __builtin_memcpy(&old_ports, &udp->source, 4);
  __u16 ports[2] = {rule->src_port, rule->dst_port};
  __builtin_memcpy(&new_ports, ports, 4);
  const __u32 slot = rule->slot, ifindex = rule->ifindex;

  const int csum4 = UDP6_OFF + offsetof(struct udphdr, check);
  __s64 diff = bpf_csum_diff(old_addrs, sizeof(old_addrs), new_addrs, sizeof(new_addrs), 0);
  if (diff < 0) return pass_up(slot);  // nothing written yet: the stack can still have it
  if (bpf_l4_csum_replace(skb, csum4, 0, (__u32)diff, BPF_F_PSEUDO_HDR) ||
      bpf_l4_csum_replace(skb, csum4, old_ports, new_ports, 4))
    return TC_ACT_SHOT;
  if (bpf_skb_store_bytes(skb, IP6_OFF + offsetof(struct ipv6hdr, saddr), new_addrs, 32, 0) ||
      bpf_skb_store_bytes(skb, UDP6_OFF, &new_ports, 4, 0))
    return TC_ACT_SHOT;
  if (dec_hop && bpf_skb_store_bytes(skb, IP6_OFF + offsetof(struct ipv6hdr, hop_limit), &new_hop, 1, 0))
    return TC_ACT_SHOT;
  count_forwarded(slot, udp_len - 8, rtp);
  return bpf_redirect_neigh(ifindex, NULL, 0, 0);
}

SEC("tc")
int ngrelay_fastpath(struct __sk_buff* skb) {
  if (skb->protocol == bpf_htons(ETH_P_IP)) return handle_v4(skb);
  if (skb->protocol == bpf_htons(ETH_P_IPV6)) return handle_v6(skb);
  return TC_ACT_UNSPEC;
}

char LICENSE[] SEC("license") = "GPL";
