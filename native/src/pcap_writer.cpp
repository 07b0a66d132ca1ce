// pcap record building, the record ring and the writer thread (see pcap_writer.hpp for why).
#include "pcap_writer.hpp"

#include <errno.h>
#include <pthread.h>
#include <unistd.h>

#include <chrono>
#include <cstring>

namespace ngrelay {

namespace {

void put16be(uint8_t* p, uint16_t v) {
  p[0] = uint8_t(v >> 8);
  p[1] = uint8_t(v);
}

void put32host(uint8_t* p, uint32_t v) { std::memcpy(p, &v, 4); }

uint32_t sum16(const uint8_t* p, size_t len, uint32_t acc) {
  for (size_t i = 0; i + 1 < len; i += 2) acc += (uint32_t(p[i]) << 8) | p[i + 1];
  if (len & 1) acc += uint32_t(p[len - 1]) << 8;
  return acc;
}

uint16_t fold(uint32_t acc) {
  while (acc >> 16) acc = (acc & 0xffff) + (acc >> 16);
  return uint16_t(~acc);
}

/** rtpproxy's fake MAC: 00:00 followed by the IPv4 address (IPv6: the last four bytes). */
void fakeMac(uint8_t* mac, const SockAddr& a) {
  mac[0] = 0;
  mac[1] = 0;
  if (a.family() == AF_INET) std::memcpy(mac + 2, &a.u.v4.sin_addr, 4);
  else std::memcpy(mac + 2, reinterpret_cast<const uint8_t*>(&a.u.v6.sin6_addr) + 12, 4);
}

size_t ipHeaderSize(int family) { return family == AF_INET ? 20 : 40; }

}  // namespace

void buildPcapGlobalHeader(uint8_t* out, LinkType link) {
  put32host(out, 0xa1b2c3d4u);
  uint16_t major = 2, minor = 4;
  std::memcpy(out + 4, &major, 2);
  std::memcpy(out + 6, &minor, 2);
  put32host(out + 8, 0);   // thiszone
  put32host(out + 12, 0);  // sigfigs
  put32host(out + 16, kPcapSnaplen);
  put32host(out + 20, uint32_t(link));
}

size_t pcapRecordSize(LinkType link, int family, size_t len) {
  return kPcapRecordHeaderSize + (link == LinkType::Ethernet ? 14 : 0) + ipHeaderSize(family) + 8 + len;
}

size_t buildPcapRecord(uint8_t* out, LinkType link, const SockAddr& src, const SockAddr& dst, const uint8_t* payload,
                       size_t len, const timeval& ts) {
  const int family = src.family();
  const size_t total = pcapRecordSize(link, family, len);
  const size_t frame = total - kPcapRecordHeaderSize;
  const size_t udpLen = 8 + len;

  uint8_t* p = out;
  put32host(p, uint32_t(ts.tv_sec));
  put32host(p + 4, uint32_t(ts.tv_usec));
  put32host(p + 8, uint32_t(frame));
  put32host(p + 12, uint32_t(frame));
  p += kPcapRecordHeaderSize;

  if (link == LinkType::Ethernet) {
    fakeMac(p, dst);
    fakeMac(p + 6, src);
    put16be(p + 12, family == AF_INET ? 0x0800 : 0x86dd);
    p += 14;
  }

  uint8_t* udp;
  uint32_t pseudo = 0;
  if (family == AF_INET) {
    std::memset(p, 0, 20);
    p[0] = 0x45;
    put16be(p + 2, uint16_t(20 + udpLen));
    put16be(p + 6, 0x4000);  // don't fragment
    p[8] = 64;
    p[9] = 17;
    std::memcpy(p + 12, &src.u.v4.sin_addr, 4);
    std::memcpy(p + 16, &dst.u.v4.sin_addr, 4);
    put16be(p + 10, fold(sum16(p, 20, 0)));
    udp = p + 20;
  } else {
    std::memset(p, 0, 40);
    p[0] = 0x60;
    put16be(p + 4, uint16_t(udpLen));
    p[6] = 17;
    p[7] = 64;
    std::memcpy(p + 8, &src.u.v6.sin6_addr, 16);
    std::memcpy(p + 24, &dst.u.v6.sin6_addr, 16);
    // The UDP checksum is mandatory over IPv6; its pseudo-header is the addresses, length and protocol.
    pseudo = sum16(p + 8, 32, 0) + uint32_t(udpLen) + 17;
    udp = p + 40;
  }
  put16be(udp, src.port());
  put16be(udp + 2, dst.port());
  put16be(udp + 4, uint16_t(udpLen));
  put16be(udp + 6, 0);  // IPv4: 0 = no checksum
  std::memcpy(udp + 8, payload, len);
  if (family != AF_INET) {
    uint16_t c = fold(sum16(udp, udpLen, pseudo));
    put16be(udp + 6, c == 0 ? 0xffff : c);
  }
  return total;
}

// ------------------------------------------------------------------------------------------------ ring

RecordRing::RecordRing(size_t capacityPow2) : storage_(capacityPow2 + kAlign) {
  // Align the storage so entry headers (which hold a pointer) are naturally aligned.
  uintptr_t base = reinterpret_cast<uintptr_t>(storage_.data());
  buf_ = storage_.data() + ((kAlign - (base % kAlign)) % kAlign);
  cap_ = capacityPow2;
  mask_ = capacityPow2 - 1;
}

uint8_t* RecordRing::reserve(size_t recordLen) {
  const size_t need = (sizeof(EntryHeader) + recordLen + kAlign - 1) & ~(kAlign - 1);
  if (need > cap_ / 2) return nullptr;
  uint64_t head = head_.load(std::memory_order_relaxed);
  const uint64_t tail = tail_.load(std::memory_order_acquire);
  const size_t off = size_t(head & mask_);
  const size_t toEnd = cap_ - off;
  const size_t skip = toEnd < need ? toEnd : 0;
  if (head + skip + need - tail > cap_) return nullptr;
  if (skip) {
    // Not yet published: commit() moves head past the skip marker and the entry together.
    auto* h = reinterpret_cast<EntryHeader*>(&buf_[off]);
    h->rec = nullptr;
    h->size = uint32_t(skip);
    h->recordLen = 0;
    head += skip;
  }
  reserved_ = head;
  return &buf_[head & mask_] + sizeof(EntryHeader);
}

void RecordRing::commit(Recording* rec, size_t recordLen) {
  const size_t need = (sizeof(EntryHeader) + recordLen + kAlign - 1) & ~(kAlign - 1);
  auto* h = reinterpret_cast<EntryHeader*>(&buf_[reserved_ & mask_]);
  h->rec = rec;
  h->size = uint32_t(need);
  h->recordLen = uint32_t(recordLen);
  head_.store(reserved_ + need, std::memory_order_release);
}

// ---------------------------------------------------------------------------------------------- writer

PcapWriter::PcapWriter(std::vector<RecordRing*> rings, const SchedulingSpec& scheduling)
    : rings_(std::move(rings)), scheduling_(scheduling) {
  thread_ = std::thread([this] { run(); });
  pthread_setname_np(thread_.native_handle(), "ngrelay-pcap");
  started_.wait();  // scheduling applied before the first recording starts
}

PcapWriter::~PcapWriter() { stop(); }

void PcapWriter::stop() {
  if (!thread_.joinable()) return;
  {
    std::lock_guard<std::mutex> g(m_);
    running_ = false;
  }
  cv_.notify_all();
  thread_.join();
}

void PcapWriter::closeRecording(Recording* rec) {
  CloseRequest req;
  req.rec = rec;
  {
    std::lock_guard<std::mutex> g(m_);
    if (!running_) {
      // Shut down already: everything was drained; just close.
      if (rec->fd >= 0) ::close(rec->fd);
      rec->fd = -1;
      return;
    }
    closes_.push_back(&req);
  }
  cv_.notify_all();
  std::unique_lock<std::mutex> g(req.m);
  req.cv.wait(g, [&] { return req.done; });
}

void PcapWriter::drainAll() {
  for (RecordRing* ring : rings_) {
    ring->drain([](Recording* rec, const uint8_t* data, size_t len) {
      if (rec->fd < 0) {
        rec->dropped.fetch_add(1, std::memory_order_relaxed);
        return;
      }
      // One write per record: a crash can lose records, never leave half of one behind.
      ssize_t w;
      do {
        w = ::write(rec->fd, data, len);
      } while (w < 0 && errno == EINTR);
      if (w == ssize_t(len)) {
        rec->written.store(rec->written.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
        rec->bytesWritten.store(rec->bytesWritten.load(std::memory_order_relaxed) + len, std::memory_order_relaxed);
        return;
      }
      if (w >= 0) {
        // A short write (disk full mid-record) would leave a torn record: cut the file back to whole records.
        off_t end = lseek(rec->fd, 0, SEEK_END);
        if (end >= w && ftruncate(rec->fd, end - w) != 0) rec->lastErrno.store(errno);
        rec->lastErrno.store(ENOSPC);
      } else {
        rec->lastErrno.store(errno);
      }
      rec->dropped.fetch_add(1, std::memory_order_relaxed);
    });
  }
}

void PcapWriter::run() {
  applyThreadScheduling(scheduling_);
  started_.open();
  for (;;) {
    std::vector<CloseRequest*> closes;
    bool running;
    {
      std::unique_lock<std::mutex> g(m_);
      cv_.wait_for(g, std::chrono::milliseconds(kPollMs), [this] { return !closes_.empty() || !running_; });
      closes.swap(closes_);
      running = running_;
    }
    // Entries queued before a close was requested are in the rings now, so they are written before it closes.
    drainAll();
    for (CloseRequest* req : closes) {
      if (req->rec->fd >= 0) ::close(req->rec->fd);
      req->rec->fd = -1;
      {
        std::lock_guard<std::mutex> g(req->m);
        req->done = true;
      }
      req->cv.notify_all();
    }
    if (!running) return;
  }
}

}  // namespace ngrelay
