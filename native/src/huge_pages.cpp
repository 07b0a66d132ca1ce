#include "huge_pages.hpp"

#include <sys/mman.h>

#include <new>
#include <utility>

namespace ngrelay {

namespace {
constexpr size_t kHuge = size_t(2) << 20;
size_t roundUp(size_t n, size_t to) { return (n + to - 1) / to * to; }
}  // namespace

HugeBuffer::HugeBuffer(size_t bytes) {
  size_ = bytes;
  const size_t span = roundUp(bytes == 0 ? 1 : bytes, kHuge);
  mapped_ = span + kHuge;  // slack to align the start to 2 MB
  base_ = mmap(nullptr, mapped_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (base_ == MAP_FAILED) {
    base_ = nullptr;
    throw std::bad_alloc();
  }
  const uintptr_t start = roundUp(reinterpret_cast<uintptr_t>(base_), kHuge);
  data_ = reinterpret_cast<uint8_t*>(start);
  // Advice only: without THP the mapping simply stays on 4 KB pages.
  madvise(data_, span, MADV_HUGEPAGE);
}

HugeBuffer::~HugeBuffer() { unmap(); }

void HugeBuffer::unmap() {
  if (base_) munmap(base_, mapped_);
  base_ = nullptr;
  data_ = nullptr;
  mapped_ = size_ = 0;
}

HugeBuffer::HugeBuffer(HugeBuffer&& o) noexcept { *this = std::move(o); }

HugeBuffer& HugeBuffer::operator=(HugeBuffer&& o) noexcept {
  if (this != &o) {
    unmap();
    std::swap(base_, o.base_);
    std::swap(mapped_, o.mapped_);
    std::swap(data_, o.data_);
    std::swap(size_, o.size_);
  }
  return *this;
}

SlotArena::SlotArena(size_t slotSize, size_t alignment) : slot_(roundUp(slotSize, alignment)) {}

void* SlotArena::allocate() {
  if (!free_.empty()) {
    void* p = free_.back();
    free_.pop_back();
    return p;
  }
  if (chunks_.empty() || usedInLast_ + slot_ > chunks_.back().size()) {
    chunks_.emplace_back(kHuge);
    usedInLast_ = 0;
  }
  void* p = chunks_.back().data() + usedInLast_;
  usedInLast_ += slot_;
  return p;
}

void SlotArena::release(void* slot) {
  if (slot) free_.push_back(slot);
}

}  // namespace ngrelay
