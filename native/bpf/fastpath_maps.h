/*
 * The contract between the kernel fast path (native/bpf/fastpath.bpf.c) and the engine that fills its maps
 * (native/src/kernel_path.cpp): map layouts and flags, in one place. Plain C with fixed-size fields, no
 * padding the compilers could place differently; addresses and ports in network byte order, an IPv4
 * address in the first 4 bytes of its 16 (the rest zero).
 */
#ifndef NGRELAY_FASTPATH_MAPS_H
#define NGRELAY_FASTPATH_MAPS_H

#ifdef __bpf__
typedef __u8 kp_u8;
typedef __u16 kp_u16;
typedef __u32 kp_u32;
typedef __u64 kp_u64;
#else
#include <stdint.h>
typedef uint8_t kp_u8;
typedef uint16_t kp_u16;
typedef uint32_t kp_u32;
typedef uint64_t kp_u64;
#endif

/** Most streams in the kernel at once (one rule each) and counter slots (slot 0 = the program's totals). */
#define KP_MAX_RULES 65536
#define KP_MAX_SLOTS 65537
#define KP_TOTALS_SLOT 0

#define KP_FAMILY_V4 4
#define KP_FAMILY_V6 6

/** kp_rule.flags: decrement TTL / hop limit (the packet leaves through another interface than lo). */
#define KP_FLAG_DEC_TTL 1u
/**
 * kp_rule.flags: forward. Without it the rule only counts what goes up to the socket (kp_sync.up): every relay
 * socket has a rule from its first packet on, so that the hand-over can keep the order (see kp_sync).
 */
#define KP_FLAG_ACTIVE 2u

/** A relay socket: the packet's destination. */
struct kp_key {
  kp_u8 addr[16];
  kp_u16 port;
  kp_u8 family;  /* KP_FAMILY_V4 / KP_FAMILY_V6 */
  kp_u8 pad;
};

/**
 * What to do with RTP that arrives at the key from `expect`: send it from `src` to `dst` through ifindex
 * (except payload type `pass_pt`, which goes up to the engine like RTCP).
 */
struct kp_rule {
  kp_u8 expect_addr[16];
  kp_u8 src_addr[16];
  kp_u8 dst_addr[16];
  kp_u16 expect_port;
  kp_u16 src_port;
  kp_u16 dst_port;
  kp_u8 pass_pt; /* RTP payload type that goes up (telephone-event: the engine detects DTMF); 0xff = none */
  kp_u8 pad;
  kp_u32 ifindex;
  kp_u32 slot;
  kp_u32 flags;
  kp_u32 pad2;
};

/** Per-CPU counters of one slot. last_ns: bpf_ktime_get_ns (CLOCK_MONOTONIC) of the last forwarded packet. */
struct kp_counters {
  kp_u64 packets;
  kp_u64 bytes;
  kp_u64 last_ns;
  kp_u64 mismatches; /* matched the key, but from another source: handed up to the socket */
  kp_u64 last_rtp;   /* of the last forwarded packet: bit 48 = valid, bits 32..47 = seq, 0..31 = SSRC */
};

/**
 * Order across a hand-over, per slot (an mmap-able array: the engine writes `consumed` without a system call).
 * `up`: packets to the socket the program let go up the stack (the kernel adds); `consumed`: packets the
 * engine has read from the socket and finished with, plus the socket's drops (the engine writes). The program
 * forwards only while they are equal, i.e. when nothing older than this packet is still queued at or being
 * handled by the engine; otherwise the packet goes up behind the others.
 */
struct kp_sync {
  kp_u64 up;
  kp_u64 consumed;
};

#endif
