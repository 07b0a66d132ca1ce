// The event relay's thread: moves event batches and fence acknowledgements from the I/O threads to the sinks
// the N-API layer gave (see event_relay.hpp for why this hop exists).
#include "event_relay.hpp"

#include <pthread.h>
#include <unistd.h>

#include <utility>

namespace ngrelay {

EventRelay::EventRelay(EventSink sink, FenceSink fenceSink, const SchedulingSpec& scheduling)
    : sink_(std::move(sink)), fenceSink_(std::move(fenceSink)), scheduling_(scheduling) {
  thread_ = std::thread([this] { run(); });
  pthread_setname_np(thread_.native_handle(), "ngrelay-events");
  started_.wait();
}

EventRelay::~EventRelay() { stop(); }

void EventRelay::push(std::vector<EngineEvent>&& batch) {
  {
    std::lock_guard<std::mutex> g(m_);
    queue_.push_back(std::move(batch));
  }
  cv_.notify_one();
}

void EventRelay::pushFence(uint64_t id) {
  {
    std::lock_guard<std::mutex> g(m_);
    fences_.push_back(id);
  }
  cv_.notify_one();
}

void EventRelay::closeLater(std::vector<int>&& fds) {
  if (fds.empty()) return;
  bool queued = false, wake = false;
  {
    std::lock_guard<std::mutex> g(m_);
    if (!stopping_) {
      toClose_.insert(toClose_.end(), fds.begin(), fds.end());
      queued = true;
      wake = startTicking();
    }
  }
  if (wake) cv_.notify_one();
  if (!queued) {
    for (int fd : fds) ::close(fd);  // the thread is ending (or gone): closed here
  }
  fds.clear();
}

void EventRelay::closeNow() {
  std::vector<int> mine;
  {
    std::unique_lock<std::mutex> g(m_);
    mine.swap(toClose_);
    closed_.wait(g, [this] { return !closing_; });
  }
  for (int fd : mine) ::close(fd);
}

void EventRelay::wakeChore() {
  bool wake;
  {
    std::lock_guard<std::mutex> g(m_);
    choreWanted_ = true;
    wake = startTicking();
  }
  if (wake) cv_.notify_one();
}

bool EventRelay::startTicking() {
  if (ticking_) return false;  // the next tick does it
  ticking_ = true;
  kick_ = true;
  return true;
}

bool EventRelay::closesPending() {
  std::lock_guard<std::mutex> g(m_);
  return closing_ || !toClose_.empty();
}

void EventRelay::stop() {
  {
    std::lock_guard<std::mutex> g(m_);
    if (stopping_ && !thread_.joinable()) return;
    stopping_ = true;
  }
  cv_.notify_one();
  if (thread_.joinable()) thread_.join();
}

void EventRelay::run() {
  schedError_ = applyThreadScheduling(scheduling_);
  started_.open();
  std::unique_lock<std::mutex> g(m_);
  auto lastBusy = std::chrono::steady_clock::now();
  const auto due = [this] { return stopping_ || kick_ || !queue_.empty() || !fences_.empty(); };
  for (;;) {
    // Events and fences wake this thread; closes and the chore wait for the next tick (see ticking_).
    if (ticking_)
      cv_.wait_for(g, std::chrono::milliseconds(kTickMs), due);
    else
      cv_.wait(g, due);
    kick_ = false;
    std::vector<std::vector<EngineEvent>> todo;
    todo.swap(queue_);
    std::vector<uint64_t> fences;
    fences.swap(fences_);
    std::vector<int> fds;
    fds.swap(toClose_);
    closing_ = !fds.empty();
    const bool chore = choreWanted_ && !stopping_;
    choreWanted_ = false;
    if (ticking_) {
      const auto now = std::chrono::steady_clock::now();
      if (!fds.empty() || chore) lastBusy = now;
      else if (now - lastBusy > std::chrono::milliseconds(kQuietMs)) ticking_ = false;
    }
    const bool last = stopping_;
    g.unlock();
    if (sink_)
      for (auto& batch : todo) sink_(std::move(batch));
    if (fenceSink_)
      for (uint64_t id : fences) fenceSink_(id);
    for (int fd : fds) ::close(fd);
    if (chore && chore_) chore_();
    g.lock();
    if (closing_) {
      closing_ = false;
      closed_.notify_all();
    }
    if (last && queue_.empty() && fences_.empty() && toClose_.empty()) return;
  }
}

}  // namespace ngrelay
