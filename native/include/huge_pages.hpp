// Memory the packet path touches on every packet, placed on 2 MB transparent huge pages where the kernel
// allows it. At 1000 calls the I/O thread reaches thousands of streams between two packets of one; on 4 KB
// pages nearly every first touch of a stream was a TLB miss, which under virtualization is a two-level page
// walk (a profile showed ~100 ns a packet stalled on it; prefetching does not help across a TLB miss).
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace ngrelay {

/** One anonymous mapping, 2 MB-aligned and advised for huge pages (4 KB pages if THP is off). */
class HugeBuffer {
 public:
  HugeBuffer() = default;
  /** Zero-filled; throws std::bad_alloc when the mapping fails. */
  explicit HugeBuffer(size_t bytes);
  ~HugeBuffer();
  HugeBuffer(HugeBuffer&& o) noexcept;
  HugeBuffer& operator=(HugeBuffer&& o) noexcept;
  HugeBuffer(const HugeBuffer&) = delete;
  HugeBuffer& operator=(const HugeBuffer&) = delete;

  uint8_t* data() const { return data_; }
  size_t size() const { return size_; }

 private:
  void unmap();
  void* base_ = nullptr;  // the whole mapping (alignment slack included)
  size_t mapped_ = 0;
  uint8_t* data_ = nullptr;
  size_t size_ = 0;
};

/**
 * Fixed-size slots carved from 2 MB huge-page chunks, reused after release. Not thread-safe: the engine
 * allocates and frees streams on the JS thread only.
 */
class SlotArena {
 public:
  SlotArena(size_t slotSize, size_t alignment);
  void* allocate();
  void release(void* slot);

 private:
  size_t slot_;
  std::vector<HugeBuffer> chunks_;
  std::vector<void*> free_;
  size_t usedInLast_ = 0;
};

}  // namespace ngrelay
