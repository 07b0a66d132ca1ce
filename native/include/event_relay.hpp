// Engine events (first packet, learning, idle, DTMF, ICE, DTLS) and the thread that hands their batches, and
// the asynchronous fences' acknowledgements, from the I/O threads to the N-API layer.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include "dtmf.hpp"
#include "sock_addr.hpp"
#include "start_latch.hpp"
#include "thread_sched.hpp"

namespace ngrelay {

enum class EventType : uint8_t { FirstPacket, Learned, SourceChanged, Idle, Resumed, Dtmf, IceSelected, Dtls };

/** A stream that received media and then nothing for this long is reported idle (once, until media resumes). */
constexpr int64_t kStreamIdleMs = 5000;
/** How often an I/O thread looks for idle streams (the scan is O(active streams), so not per wake-up). */
constexpr int64_t kIdleScanMs = 500;

struct EngineEvent {
  EventType type;
  int32_t id;
  SockAddr addr;
  int64_t atMs;
  DtmfEvent dtmf{};  // EventType::Dtmf only
  // EventType::Dtls only.
  bool dtlsOk = false;
  std::string dtlsProfile{}, dtlsError{};
};

/** Receives event batches on an I/O thread; must not block (the N-API layer hands them to a TSFN). */
using EventSink = std::function<void(std::vector<EngineEvent>&&)>;
/** Told, on the event relay's thread, that asynchronous fence `id` has passed (see AsyncFence). */
using FenceSink = std::function<void(uint64_t)>;

/**
 * Hands event batches from the I/O threads to the engine's sink on a thread of its own. The sink (napi's
 * threadsafe function) writes to libuv's wake-up descriptor in the process's descriptor table, which an I/O
 * thread on a private table cannot see. Events are slow-path data (batched every 50 ms), so one hop more
 * costs nothing that matters.
 */
class EventRelay {
 public:
  /** Starts the thread and waits until it has applied `scheduling` (see schedulingError()). */
  EventRelay(EventSink sink, FenceSink fenceSink, const SchedulingSpec& scheduling);
  ~EventRelay();
  EventRelay(const EventRelay&) = delete;
  EventRelay& operator=(const EventRelay&) = delete;
  /** Called on an I/O thread; never blocks for long (a mutex held only to move a vector). */
  void push(std::vector<EngineEvent>&& batch);
  /** Called on an I/O thread when it acknowledged fence `id` last; never blocks for long. */
  void pushFence(uint64_t id);
  /**
   * Called on the JS thread: closes `fds` on this thread, soon. A removed stream's socket is closed once its
   * fence passed, and that last close frees the socket in the kernel (its owner thread closed its own copy at
   * Detach): 3-6 us each on a VM, which fencePassed would otherwise spend on the JS thread for every socket a
   * batch retired, in one block.
   */
  void closeLater(std::vector<int>&& fds);
  /** Called on the JS thread: returns once every descriptor given to closeLater is closed (its port free). */
  void closeNow();
  /** Whether descriptors given to closeLater may still be open. */
  bool closesPending();
  /** Work this thread does when asked (wakeChore), after what is queued: the socket pool's fill. Set once, first. */
  void setChore(std::function<void()> chore) { chore_ = std::move(chore); }
  /** Any thread: run the chore soon (once, however often asked meanwhile). */
  void wakeChore();
  /** Housekeeping period while busy (see `ticking_`). */
  static constexpr int kTickMs = 2;
  /** How long without a chore or a close before the thread stops ticking. */
  static constexpr int kQuietMs = 1000;
  /** Delivers what is queued, then ends the thread. */
  void stop();
  /** 0, or the errno with which the kernel refused the thread's scheduling. */
  int schedulingError() const { return schedError_; }

 private:
  void run();
  /** With m_ held: start ticking; true when the caller must wake the thread (it was not ticking). */
  bool startTicking();
  EventSink sink_;
  FenceSink fenceSink_;
  SchedulingSpec scheduling_;
  int schedError_ = 0;
  StartLatch started_;
  std::mutex m_;
  std::condition_variable cv_;
  std::vector<std::vector<EngineEvent>> queue_;
  std::vector<uint64_t> fences_;
  std::vector<int> toClose_;
  std::function<void()> chore_;
  bool choreWanted_ = false;
  /**
   * Housekeeping (closes, the chore) without a wake-up from the JS thread: while it has some (and for
   * kQuietMs after), this thread wakes by itself every kTickMs and does what closeLater and wakeChore
   * queued meanwhile. Waking it costs the waker a futex call and, in a VM, an inter-processor interrupt: 25 us
   * on average on the JS thread, for every refill and every batch of closes (a stream's addStream averaged 11 us
   * with those wake-ups at 500 cycles/s, 5 without). Only the first request after a quiet spell wakes it
   * (`kick_`); an idle relay's thread sleeps.
   */
  bool ticking_ = false;
  bool kick_ = false;
  /** The thread is closing a batch it took from toClose_ (closeNow waits for it on `closed_`). */
  bool closing_ = false;
  std::condition_variable closed_;
  bool stopping_ = false;
  std::thread thread_;
};


}  // namespace ngrelay
