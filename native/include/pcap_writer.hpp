// Call recording to pcap: the record layout (pcap record header, optional Ethernet header, synthesised
// IPv4/IPv6 + UDP header, payload), the per-I/O-thread ring the forwarding threads append records to, and
// the writer thread that drains the rings into the files.
//
// Why this shape: the forwarding threads must never block or allocate for recording, so they only build the
// record into a bounded single-producer/single-consumer ring (full ring = drop and count). One writer thread
// owns every file and writes each record with exactly one write(2) on an O_APPEND descriptor, without any
// user-space buffer, so after kill -9 the file holds whole records only (what sits in the ring is lost).
#pragma once

#include <sys/time.h>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "sock_addr.hpp"
#include "start_latch.hpp"
#include "thread_sched.hpp"

namespace ngrelay {

enum class LinkType : uint32_t { Raw = 101, Ethernet = 1 };

constexpr uint32_t kPcapSnaplen = 65535;
constexpr size_t kPcapGlobalHeaderSize = 24;
constexpr size_t kPcapRecordHeaderSize = 16;
/** Largest header a record puts before the UDP payload: pcap record + Ethernet + IPv6 + UDP. */
constexpr size_t kMaxRecordOverhead = kPcapRecordHeaderSize + 14 + 40 + 8;

/** The 24-byte libpcap file header (magic 0xa1b2c3d4 in host order, v2.4, microsecond timestamps). */
void buildPcapGlobalHeader(uint8_t* out, LinkType link);

/**
 * Writes one complete pcap record (header + link + IP + UDP + payload) for a datagram from `src` to `dst`
 * into `out`, which must hold recordSize(...) bytes. src and dst must be valid and of the same family.
 */
size_t buildPcapRecord(uint8_t* out, LinkType link, const SockAddr& src, const SockAddr& dst, const uint8_t* payload,
                       size_t len, const timeval& ts);
size_t pcapRecordSize(LinkType link, int family, size_t len);

/** One recording (one pcap file). Lives in the Engine's registry; streams point at it while they feed it. */
struct Recording {
  int32_t id = 0;
  int fd = -1;
  LinkType link = LinkType::Raw;
  bool egress = false;
  std::string path;

  // Written by the I/O threads (several may feed one recording), read anywhere.
  std::atomic<uint64_t> queued{0};
  std::atomic<uint64_t> dropped{0};
  // Written by the writer thread only.
  std::atomic<uint64_t> written{0};
  std::atomic<uint64_t> bytesWritten{0};
  std::atomic<int> lastErrno{0};
};

struct RecordingSnapshot {
  uint64_t queued, written, dropped, bytes;
  int lastErrno;
};

/**
 * Bounded SPSC byte ring of records. Positions grow forever (uint64); entries are 16-byte aligned so the
 * space left before the wrap point is either 0 or fits an entry header (then a skip marker is written).
 */
class RecordRing {
 public:
  explicit RecordRing(size_t capacityPow2);
  RecordRing(const RecordRing&) = delete;
  RecordRing& operator=(const RecordRing&) = delete;

  struct EntryHeader {
    Recording* rec;     // nullptr = skip to the wrap point
    uint32_t size;      // whole entry, header included, aligned
    uint32_t recordLen; // bytes of the pcap record after the header
  };
  static constexpr size_t kAlign = 16;
  static_assert(sizeof(EntryHeader) == kAlign, "entry header must be one alignment unit");

  /** Producer: room for a record of `recordLen` bytes, or nullptr when the ring is full. */
  uint8_t* reserve(size_t recordLen);
  /** Producer: publish the entry reserved last. */
  void commit(Recording* rec, size_t recordLen);

  /** Consumer: calls fn(rec, data, len) for every published entry, then frees them. Returns entries seen. */
  template <typename Fn>
  size_t drain(Fn&& fn) {
    uint64_t head = head_.load(std::memory_order_acquire);
    uint64_t tail = tail_.load(std::memory_order_relaxed);
    size_t n = 0;
    while (tail != head) {
      const EntryHeader* h = reinterpret_cast<const EntryHeader*>(&buf_[tail & mask_]);
      if (h->rec) fn(h->rec, reinterpret_cast<const uint8_t*>(h + 1), size_t(h->recordLen));
      tail += h->size;
      ++n;
    }
    tail_.store(tail, std::memory_order_release);
    return n;
  }

 private:
  std::vector<uint8_t> storage_;
  uint8_t* buf_;
  size_t cap_;
  uint64_t mask_;
  alignas(64) std::atomic<uint64_t> head_{0};  // producer
  uint64_t reserved_ = 0;                      // producer: where the reserved entry starts
  alignas(64) std::atomic<uint64_t> tail_{0};  // consumer
};

/** Waits on the JS thread until the writer has written and closed a recording. */
struct CloseRequest {
  Recording* rec;
  std::mutex m;
  std::condition_variable cv;
  bool done = false;
};

/** The writer thread: drains every ring into the recordings' files; closes recordings on request. */
class PcapWriter {
 public:
  /** `scheduling`: --idle-scheduling/--idle-priority, applied by the thread itself (a refusal is ignored: the
   * event relay thread gets the same settings and reports it). */
  PcapWriter(std::vector<RecordRing*> rings, const SchedulingSpec& scheduling);
  ~PcapWriter();
  PcapWriter(const PcapWriter&) = delete;
  PcapWriter& operator=(const PcapWriter&) = delete;

  /** Writes everything queued so far for `rec`, then closes its file. Blocks until done. */
  void closeRecording(Recording* rec);
  /** Drains what is left and stops the thread (engine shutdown). */
  void stop();

  /** How long the writer sleeps when there is nothing to do; bounds how stale the file can be. */
  static constexpr int kPollMs = 2;

 private:
  void run();
  void drainAll();

  std::vector<RecordRing*> rings_;
  SchedulingSpec scheduling_;
  StartLatch started_;  // opened once the thread applied its scheduling
  std::thread thread_;
  std::mutex m_;
  std::condition_variable cv_;
  std::vector<CloseRequest*> closes_;
  bool running_ = true;
};

}  // namespace ngrelay
