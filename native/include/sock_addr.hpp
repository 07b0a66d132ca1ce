// A remote or local UDP endpoint (IPv4 or IPv6) as the kernel sees it, plus a seqlock so one I/O thread can
// publish a stream's current destination while other threads (senders, the JS thread) read it lock-free.
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>

#include <atomic>
#include <cstdint>
#include <cstring>
#include <string>

namespace ngrelay {

struct SockAddr {
  union {
    sockaddr sa;
    sockaddr_in v4;
    sockaddr_in6 v6;
  } u;
  uint32_t len = 0;  // 0 = no address

  SockAddr() { std::memset(&u, 0, sizeof(u)); }
  bool valid() const { return len != 0; }
  int family() const { return u.sa.sa_family; }
  uint16_t port() const { return ntohs(family() == AF_INET ? u.v4.sin_port : u.v6.sin6_port); }

  bool sameIp(const SockAddr& o) const {
    if (!valid() || !o.valid() || family() != o.family()) return false;
    if (family() == AF_INET) return u.v4.sin_addr.s_addr == o.u.v4.sin_addr.s_addr;
    return std::memcmp(&u.v6.sin6_addr, &o.u.v6.sin6_addr, sizeof(in6_addr)) == 0;
  }
  bool samePort(const SockAddr& o) const { return valid() && o.valid() && port() == o.port(); }
  bool sameEndpoint(const SockAddr& o) const { return sameIp(o) && samePort(o); }

  /** Parses a literal IPv4/IPv6 address (no host names); false when it is not one. */
  static bool parse(const std::string& address, uint16_t port, SockAddr& out);
  /** "1.2.3.4" / "::1" and the family name used by the TS contract ("IPv4" / "IPv6"). */
  std::string addressString() const;
};

/** Fixed-size image of a SockAddr, so it can live in atomic words. */
constexpr size_t kAddrWords = 4;
static_assert(sizeof(SockAddr) <= kAddrWords * sizeof(uint64_t), "SockAddr must fit the seqlock words");

/**
 * A seqlock: writers (see store()), many readers. Readers retry while a write is in progress; the payload
 * words are atomics so there is no data race in the C++ memory model.
 */
class PublishedAddr {
 public:
  /** An unconditional store (a value one thread alone writes, e.g. the ICE-selected pair). */
  void store(const SockAddr& a) { write(a, 0, Writer::Any); }
  /**
   * The JS thread's store of command `gen`'s expected address (Engine::addStream/updateStream), ahead of the
   * owner thread's Attach/Update: packets from streams on other threads go there at once.
   */
  void publish(const SockAddr& a, uint32_t gen) { write(a, gen, Writer::Command); }
  /**
   * The owner thread's store of what it applied (commands up to `applied`) or learned since. Skipped when the
   * JS thread already published a newer command's address: the owner has not run that command yet, and
   * storing would put an older party back (a packet sent after settled() would go there). Returns whether
   * it stored.
   */
  bool storeApplied(const SockAddr& a, uint32_t applied) { return write(a, applied, Writer::Owner); }
  SockAddr load() const {
    SockAddr a;
    loadInto(a);
    return a;
  }
  /** load() into `a` (the packet path: no SockAddr is built, zeroed and copied per batch). */
  void loadInto(SockAddr& a) const {
    uint64_t w[kAddrWords];
    for (;;) {
      uint32_t s1 = seq_.load(std::memory_order_acquire);
      if (s1 & 1u) continue;
      // Written out: the compiler keeps a loop over atomics as a loop (20 instructions instead of 4 loads).
      static_assert(kAddrWords == 4, "one load per word below");
      w[0] = words_[0].load(std::memory_order_relaxed);
      w[1] = words_[1].load(std::memory_order_relaxed);
      w[2] = words_[2].load(std::memory_order_relaxed);
      w[3] = words_[3].load(std::memory_order_relaxed);
      std::atomic_thread_fence(std::memory_order_acquire);
      if (seq_.load(std::memory_order_relaxed) == s1) break;
    }
    std::memcpy(&a, w, sizeof(SockAddr));
  }

 private:
  enum class Writer { Any, Command, Owner };
  /**
   * Safe from several threads at once (the owner thread and the JS thread): a writer takes the odd sequence
   * number with a CAS, so two writers never interleave their words, and the owner's check of the published
   * generation and its write are one step.
   */
  bool write(const SockAddr& a, uint32_t gen, Writer who) {
    uint64_t w[kAddrWords] = {};
    std::memcpy(w, &a, sizeof(SockAddr));
    uint32_t s = seq_.load(std::memory_order_relaxed);
    for (;;) {
      if (s & 1u) {
        s = seq_.load(std::memory_order_relaxed);
        continue;
      }
      if (seq_.compare_exchange_weak(s, s + 1, std::memory_order_acquire, std::memory_order_relaxed)) break;
    }
    const uint32_t published = published_.load(std::memory_order_relaxed);
    if (who == Writer::Owner && int32_t(published - gen) > 0) {
      seq_.store(s + 2, std::memory_order_release);  // nothing written: readers just read the same words again
      return false;
    }
    if (who == Writer::Command) published_.store(gen, std::memory_order_relaxed);
    std::atomic_thread_fence(std::memory_order_release);
    for (size_t i = 0; i < kAddrWords; ++i) words_[i].store(w[i], std::memory_order_relaxed);
    seq_.store(s + 2, std::memory_order_release);
    return true;
  }

  std::atomic<uint32_t> seq_{0};
  std::atomic<uint32_t> published_{0};  // the newest command generation the JS thread published (writers only)
  std::atomic<uint64_t> words_[kAddrWords] = {};
};

}  // namespace ngrelay
