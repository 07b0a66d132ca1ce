// The kernel fast path (`--table`): loads native/bpf/fastpath.bpf.c (built into the addon when clang and
// libbpf were found at build time), attaches it to tc ingress of the interfaces that carry the media
// addresses (lo always), and manages its rule and counter maps. Which stream goes down and when it comes
// back is the I/O threads' decision (native/src/kernel_handover.cpp); this class only talks to the kernel.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "sock_addr.hpp"

namespace ngrelay {

struct KernelPathSpec {
  /** The --interface addresses (IP literals): the program is attached to the interfaces that carry them. */
  std::vector<std::string> addresses;
};

/** One counter slot summed over CPUs. lastWallMs: epoch ms of the last packet forwarded, 0 = none. */
struct KernelSlotCounters {
  uint64_t packets = 0, bytes = 0, mismatches = 0;
  int64_t lastWallMs = 0;
  uint64_t lastRtp = 0;  // of the last forwarded packet, encoded as Stream::rtpState (0 = none)
};

/**
 * The map descriptors to use. An I/O thread on a private descriptor table has its own copies (taken with
 * pidfd_getfd, see IoThread::acquireFd); the JS thread uses the process's (KernelPath::fds()).
 */
struct KernelFds {
  int rules = -1, counters = -1;
};

class KernelPath {
 public:
  /** Loads and attaches; null with `why` set when the kernel or the build cannot do it. Never throws. */
  static std::unique_ptr<KernelPath> open(const KernelPathSpec& spec, std::string& why);
  /** Detaches (closes the bpf_links / removes the tc filters) and frees the maps. */
  ~KernelPath();
  KernelPath(const KernelPath&) = delete;
  KernelPath& operator=(const KernelPath&) = delete;

  /** "tcx" (bpf_link: nothing survives the process) or "tc" (clsact filter, removed at close/next start). */
  const std::string& attachMode() const { return mode_; }
  const std::vector<std::string>& interfaces() const { return ifnames_; }

  /** JS thread: a zeroed counter slot for a new stream, -1 when all are taken. */
  int32_t allocSlot();
  /** JS thread: back to the free list (only once no rule can count into it any more). */
  void freeSlot(int32_t slot);

  /** The process's descriptors of the maps. */
  KernelFds fds() const;
  /**
   * A new relay socket at `local` (right after bind, before anyone knows the port): an inactive rule that
   * counts what goes up to it, from its first packet on (see kp_sync in native/bpf/fastpath_maps.h).
   */
  bool registerSocket(const KernelFds& fds, const SockAddr& local, int32_t slot);
  /**
   * Any thread (the map is the kernel's): RTP arriving at `local` from `expect` leaves from `from` to `to`,
   * once everything that went up to the socket is `consumed` (socket reads + drops so far); RTP of payload
   * type `passPt` (0..127; -1 = none) goes up. False when the kernel refused (an address on no interface we
   * are attached to, a map error).
   */
  bool install(const KernelFds& fds, const SockAddr& local, const SockAddr& expect, const SockAddr& from,
               const SockAddr& to, int32_t slot, uint64_t consumed, int passPt);
  /** Any thread: the engine has finished with `consumed` packets of the slot's socket (a store, no syscall). */
  void publishConsumed(int32_t slot, uint64_t consumed);
  /** Any thread: packets to `local` go up the stack again from the next one on (the rule stays, inactive). */
  void release(const KernelFds& fds, const SockAddr& local, int32_t slot);
  /** Any thread: the socket is going away; its rule goes. */
  void remove(const KernelFds& fds, const SockAddr& local);
  /** Any thread: the slot's counters summed over CPUs; false when the map could not be read. */
  bool read(const KernelFds& fds, int32_t slot, KernelSlotCounters& out) const;
  /** JS thread (the process's descriptors). */
  bool read(int32_t slot, KernelSlotCounters& out) const { return read(fds(), slot, out); }
  /** The program's totals (every packet it forwarded, streams removed since included). */
  bool readTotals(KernelSlotCounters& out) const { return read(0, out); }

 private:
  KernelPath() = default;
  struct Impl;
  std::unique_ptr<Impl> impl_;
  std::string mode_;
  std::vector<std::string> ifnames_;
  std::mutex slotMutex_;  // JS thread only today; cheap insurance
  std::vector<int32_t> freeSlots_;
  int32_t nextSlot_ = 1;  // slot 0 holds the totals
};

}  // namespace ngrelay
