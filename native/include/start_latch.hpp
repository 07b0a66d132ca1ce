// A one-shot signal from a thread that is starting to the thread that created it.
#pragma once

#include <condition_variable>
#include <mutex>

namespace ngrelay {

/**
 * The new thread opens it once its own set-up is done (scheduling, descriptor table); the creator waits, so
 * what that set-up produced (an error code, a mode) is visible to it after wait() returns.
 */
class StartLatch {
 public:
  void open() {
    {
      std::lock_guard<std::mutex> g(m_);
      open_ = true;
    }
    cv_.notify_all();
  }
  void wait() {
    std::unique_lock<std::mutex> g(m_);
    cv_.wait(g, [this] { return open_; });
  }

 private:
  std::mutex m_;
  std::condition_variable cv_;
  bool open_ = false;
};

}  // namespace ngrelay
