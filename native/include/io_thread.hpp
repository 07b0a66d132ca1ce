// The I/O threads: each owns a set of streams (its own epoll and, where the kernel allows, its own descriptor
// table) and runs the commands the JS thread queues (attach, update, detach, fences, quality copies, play DTMF).
#pragma once

#include "event_relay.hpp"
#include "stream.hpp"

namespace ngrelay {

/** Waits on the JS thread until every addressed I/O thread has run its command. */
class Completion {
 public:
  explicit Completion(int count) : remaining_(count) {}
  void done() {
    std::lock_guard<std::mutex> g(m_);
    if (--remaining_ == 0) cv_.notify_all();
  }
  void wait() {
    std::unique_lock<std::mutex> g(m_);
    cv_.wait(g, [this] { return remaining_ == 0; });
  }

 private:
  std::mutex m_;
  std::condition_variable cv_;
  int remaining_;
};

/** Fence: does nothing; its acknowledgement says every command queued before it on that thread has run. */
class EventRelay;

/**
 * An asynchronous fence: queued on every I/O thread that got commands since the previous fence (waking only
 * those); the thread that acknowledges it last reports `id` to the event relay (and frees this), which
 * tells the JS thread. Per thread the command queue is FIFO, so fence N passing means every command queued
 * before it on those threads has run. Fences on different threads may pass out of order: "everything up to
 * N is in place" is when N and every earlier fence passed (the JS side keeps that watermark). What a batch
 * retired is referenced only by threads that batch addressed (Detach, SetSink of its referrers, Update),
 * so it is freed when that batch's own fence passed.
 */
struct AsyncFence {
  explicit AsyncFence(int threads, uint64_t fenceId, EventRelay* to) : remaining(threads), id(fenceId), relay(to) {}
  std::atomic<int> remaining;
  uint64_t id;
  EventRelay* relay;
};

// KernelRevoke: the stream's sink changed its rule; a rule of the stream in the kernel path may be stale.
// SetBundle: the transport stream's member table (bundle) changed.
// SetDtlsSources: the stream a DTLS key source pointed at is going (Stream::dtlsInSource/dtlsOutSource).
enum class CommandType : uint8_t { Attach, Update, SetSink, Detach, SetRecording, Fence, ReadQuality, KernelRevoke, PlayDtmf, SetBundle, SetDtlsSources };

/** What the owner thread made of a play DTMF command. */
enum class DtmfPlayResult : uint8_t { Queued, QueueFull, PassThrough, UnknownStream };

struct Command {
  CommandType type;
  Stream* stream;
  Rule rule;
  Stream* sink;
  Completion* done;
  Recording* rec;  // SetRecording: the new recording (nullptr = stop feeding one)
  // Attach/Update: the stream's SRTP contexts from now on (the Engine owns them and frees replaced ones only
  // after the owner thread has acknowledged this command).
  SrtpContext* srtpIn = nullptr;
  SrtpContext* srtpOut = nullptr;
  bool srtpPassThrough = false;
  AsyncFence* fence = nullptr;  // Fence: acknowledged through the event relay instead of `done`
  QualitySnapshot* qualityOut = nullptr;  // ReadQuality: where the owner thread copies the stream's figures
  // Attach/Update: the directions keyed by a DTLS-SRTP handshake (StreamCrypto {dtlsOf}); -1 = not DTLS.
  int32_t dtlsInOf = -1, dtlsOutOf = -1;
  SrtpProgress dtlsInResume{}, dtlsOutResume{};  // their restored sequence state (DtlsSrtpKeys.resume)
  // Attach/Update/SetDtlsSources: the streams those keys come from when not the usual ones (null = usual).
  const Stream* dtlsInSource = nullptr;
  const Stream* dtlsOutSource = nullptr;
  DtmfPlay play{};                        // PlayDtmf: the event to queue
  DtmfPlayResult* playOut = nullptr;      // PlayDtmf: the outcome
  std::shared_ptr<const BundleTable> bundle{};  // SetBundle: the transport's members (null = none)
  // Attach/Update: the stream's endpoint generation once this command is in (PublishedAddr::publish); the
  // owner's own stores of the endpoint before it ran the command do not undo what the JS thread published.
  uint32_t endpointGen = 0;
};

class IoThread {
 public:
  IoThread(int index, const EventSink& sink, const SchedulingSpec& scheduling);
  ~IoThread();
  IoThread(const IoThread&) = delete;
  IoThread& operator=(const IoThread&) = delete;

  /** Starts the thread and waits until it has set up its descriptor table (see privateFds()). */
  void start();
  /**
   * True when this thread works on a private copy of the descriptor table (its own descriptors of the
   * sockets, taken with pidfd_getfd), false when it shares the process's table (the fallback).
   */
  bool privateFds() const { return privateFds_; }
  /** 0, or the errno with which the kernel refused the thread's scheduling (set before start() returns). */
  int schedulingError() const { return schedError_; }
  void stopAndJoin();
  /** Queues a command and wakes the thread. */
  void submit(const Command& cmd);
  /**
   * Queues a command without waking the thread. It still takes effect before any packet the thread reads
   * afterwards (see drain()): the thread looks for queued commands before and after every receive. What
   * else it does (acknowledging a fence, timers) waits for the next wake-up, submit() or wake().
   */
  void enqueue(const Command& cmd);
  /** Wakes the thread, so that it runs what enqueue() queued. */
  void wake();
  /** Commands are queued that the thread has not taken yet. */
  bool hasCommands() const { return cmdPending_.load(std::memory_order_acquire); }
  const ThreadTotals& totals() const { return totals_; }
  /** Set once, on the JS thread, before any stream of this thread gets a recording. */
  void setRing(RecordRing* ring) { ring_ = ring; }
  /** Set once, on the JS thread, before any stream is added (Engine::enableKernelPath). */
  void setKernel(KernelPath* kernel) { kernel_ = kernel; }

  static constexpr int kBatch = 64;
  static constexpr size_t kBufSize = 4096;
  // Receive slots are kBufSize apart plus three cache lines: with a power-of-two stride the first lines of all
  // 64 slots (the only ones a 172-byte packet fills) fall into the same L1 set and evict each other.
  static constexpr size_t kSlotStride = kBufSize + 192;

 private:
  void run();
  /**
   * Runs the queued commands. Within a round (`inRound`, from drain()) their acknowledgements wait for the
   * round's end (releaseAcks): what a fence lets the JS thread free may still be in this round's hands.
   */
  void runCommands(bool inRound);
  void releaseAcks();
  void apply(const Command& cmd);
  /** Reads and forwards what `s` holds, up to the round limit; true when it may still hold data. */
  bool drain(Stream* s);
  /** Restores the receive headers' name room recvmmsg wrote back (named headers only) for the next call. */
  void resetReceiveHeaders(mmsghdr* msgs, int used);
  /** Sends the run of `count` packets queued in smsgs_ out of `fd` (the whole run at once is the inline path). */
  inline void flushSends(int fd, int count);  // defined in io_thread.cpp, its only user
  /** The rest after a partial send or an error (`r`: sendmmsg's result for the whole run). */
  void flushSendsRest(int fd, int count, int r);
  void handleTimers();
  void emit(EventType type, const Stream* s, const SockAddr& a);
  /** A telephone-event packet on `t` (party at `from`): reports each event once, when it ends. */
  void observeDtmf(Stream* t, const uint8_t* p, size_t len, const SockAddr& from);
  /** PlayDtmf on the owner thread: queues the event on `s` (native/src/dtmf_inject.cpp). */
  DtmfPlayResult queueDtmf(Stream* s, const DtmfPlay& play);
  /** Sends the event packets that are due and starts queued events (from handleTimers). */
  void runInjections();
  /** epoll timeout cap while events play: ms until the next packet is due. */
  int injectionTimeoutMs() const;
  /** Sends one injected packet of `s` towards its sink's party (SRTP-protected when that leg is). */
  void sendInjected(Stream* s, uint8_t* p, size_t len);
  void flushEvents(bool force);
  /** Counts an SRTP/SRTCP failure on stream `t` (errors + per-reason counter); the packet is then dropped. */
  void countSrtpFailure(Stream* t, SrtpResult r);
  /** Parses RTCP arriving on `t`; false (counted as malformed, to be dropped) when it does not parse. */
  bool parseRtcpOf(Stream* t, const uint8_t* p, size_t len, RtcpSummary& summary);
  /** Monotonic µs of the current receive batch, read when first needed (see kPacketsPerClock). */
  int64_t batchArrival();
  /** batchArrival() on an RTP clock of `clockRate` Hz (computed once per batch and rate). */
  uint32_t batchArrivalOn(uint32_t clockRate) {
    return clockRate == batchClock_ ? batchArrivalTs_ : batchArrivalOnSlow(clockRate);
  }
  uint32_t batchArrivalOnSlow(uint32_t clockRate);
  int64_t nowWallPrecise() const;
  /** Queue one pcap record for `rec`; never blocks: a full ring drops the record and counts it. */
  void record(Recording* rec, const SockAddr& src, const SockAddr& dst, const uint8_t* p, size_t len);

  int index_;
  EventSink events_;
  SchedulingSpec scheduling_;
  int schedError_ = 0;
  // Descriptor table. A process-wide table is shared by all of node's threads, and the kernel then takes and
  // drops a reference on the socket's file in every socket call (40–75 ns per recvmmsg+sendmmsg pair at
  // 1000 calls, see bench/README.md "Findings"). On a private table it does not.
  bool privateFds_ = false;
  int pidfd_ = -1;  // this process, for pidfd_getfd
  struct LocalFd {
    int fd;
    int refs;
  };
  std::unordered_map<int, LocalFd> localFds_;  // process-wide descriptor -> this thread's copy
  StartLatch started_;
  int epfd_ = -1;
  int wakefd_ = -1;
  std::thread thread_;
  std::atomic<bool> running_{false};
  std::mutex cmdMutex_;
  std::vector<Command> commands_;
  std::vector<Command> runningCommands_;  // swapped with commands_ by runCommands (keeps both capacities)
  std::vector<Command> heldAcks_;         // fences and completions run within this round (see runCommands)
  // Set with every enqueue, cleared when the thread takes the queue: read before and after every receive, so on a
  // line of its own (the JS thread writes it per command, the I/O thread reads it per batch).
  alignas(64) std::atomic<bool> cmdPending_{false};
  ThreadTotals totals_;

  // Hot-path buffers, allocated once.
  HugeBuffer bufs_;  // kBatch receive slots, kSlotStride apart
  std::vector<struct mmsghdr> rmsgs_;  // receive headers that ask for the source address
  std::vector<struct mmsghdr> ranon_;  // the same buffers, no source address (settled streams)
  std::vector<struct iovec> riov_;
  std::vector<SockAddr> rnames_;
  std::vector<struct mmsghdr> smsgs_;
  std::vector<struct iovec> siov_;
  SockAddr runDest_;  // the destination of the run of packets being queued (every send slot's msg_name)
  std::vector<uint8_t> scratch_;  // pass-through + recording: a decrypted copy for the pcap
  std::vector<uint8_t> injectBuf_;   // play DTMF: one event packet (+ SRTP trailer), allocated once
  std::vector<Stream*> injecting_;   // streams with events playing or queued

  std::vector<Stream*> windows_;  // streams in a heuristic learning window
  std::vector<Stream*> active_;   // streams that received media and are not idle yet
  std::vector<Stream*> backlog_;  // readable streams not drained last round (edge-triggered epoll won't repeat)
  uint32_t round_ = 0;            // loop rounds, for Stream::drainedRound
  int64_t lastIdleScanMs_ = 0;
  size_t scanPos_ = 0;  // where in active_ the idle scan goes on
  /** This thread's descriptor of a socket given by its process-wide descriptor; counted, see releaseFd. */
  int acquireFd(int sharedFd);
  void releaseFd(int sharedFd);
  /** Points `s` at `sink` and its socket (taking this thread's descriptor of it, giving back the old one). */
  void setSink(Stream* s, Stream* sink);
  void setCrypto(Stream* s, SrtpContext* in, SrtpContext* out, bool passThrough);
  /** At thread start: a private descriptor table when the kernel allows it. */
  void setUpDescriptorTable();
  /** Visits a slice of the active streams (all of them every kIdleScanMs): idle detection and drops. */
  void scanIdle();
  /** After a rule change: ICE switched on, off or reconfigured (role, selected pair kept over a restart). */
  void applyIce(Stream* s, const Rule& old, bool attached);
  /** A datagram with a first byte 0..3 (RFC 7983: STUN) on ICE stream `x`, from `src`. */
  void onStun(Stream* x, const uint8_t* p, size_t len, const SockAddr& src, bool truncated);
  /** Counts a refused STUN datagram (stunRejected, errors); it is dropped. */
  void rejectStun(Stream* x);
  /** Media to the party goes to `to` now (ICE nominated it). */
  void iceSelect(Stream* x, const SockAddr& to);
  /** After a rule change: start, restart (new generation) or end the stream's DTLS session. */
  void applyDtls(Stream* s, const Rule& old, bool attached);
  /** A datagram with a first byte 20..63 (RFC 7983: DTLS) on a stream with a DTLS session. */
  void onDtls(Stream* x, const uint8_t* p, size_t len, const SockAddr& src, bool truncated);
  /** Sends what the session has queued, then publishes keys/status and reports a finished handshake. */
  void dtlsProgress(Stream* x);
  /** Passive without ICE, before the handshake: the cookie exchange (HelloVerifyRequest) with the sender. */
  void listenDtls(Stream* x, const uint8_t* p, size_t len, const SockAddr& src);
  /** Retransmissions, handshake timeouts, and active sessions whose party's address became known. */
  void checkDtls();
  /** An active session sends its ClientHello once the party's address is known. */
  void startDtlsIfReady(Stream* s);
  /** The DTLS-keyed SRTP contexts are current (made from the latest published keys); false = none yet. */
  bool refreshDtlsIn(Stream* t);
  bool refreshDtlsOut(Stream* t, const Stream* sink);
  void setDtlsCrypto(Stream* s, int32_t inOf, int32_t outOf, const SrtpProgress& inResume, const SrtpProgress& outResume);
  /** A DTLS-keyed context made from `keys` (resuming when they are restored ones), the previous one retired. */
  void replaceDtlsCtx(Stream* t, bool inbound, const DtlsSrtpMaterial* keys);
  /** SetBundle on the transport `s` (native/src/io_thread_bundle.cpp): new member table; null = none. */
  void setBundle(Stream* s, const BundleTable* table);
  /** The member stream a packet on bundle transport `x` belongs to (RTCP: its RTCP stream); null = none. */
  Stream* bundleTarget(Stream* x, Stream* t, const uint8_t* p, size_t len, bool isRtp);
  std::vector<Stream*> dtlsStreams_;
  int dtlsBusy_ = 0;
  int64_t lastDtlsTimerMs_ = 0;  // sessions in their handshake (the loop then wakes every 50 ms for retransmissions)
  int64_t dtlsTimeoutMs_ = 30000;  // NGRELAY_DTLS_TIMEOUT_MS (tests) may shorten it
  const DtlsIdentity* dtlsIdentity_ = nullptr;
 public:
  /** Set once before start(): the engine's certificate (null = DTLS unavailable). */
  void setDtlsIdentity(const DtlsIdentity* id) { dtlsIdentity_ = id; }
 private:
  /** Consent freshness of the selected pairs (RFC 7675), about once a second. */
  void checkIceConsent();
  /** The full agent's checks of one stream: pacing, retransmission, nomination (controlling side). */
  void runIceAgent(Stream* s);
  void sendIceCheck(Stream* s, IceCheckPair& pair, bool nominate);
  /** A response to one of the full agent's checks. */
  void onIceResponse(Stream* x, const uint8_t* p, const StunMessage& m, const SockAddr& src);
  int iceBusy_ = 0;
  int64_t lastIceAgentMs_ = 0;  // agents with checks to send or answers to wait for (the loop then wakes every 50 ms)
  std::vector<Stream*> iceStreams_;
  int64_t lastIceScanMs_ = 0;
  int64_t iceConsentMs_ = kIceConsentMs;  // NGRELAY_ICE_CONSENT_MS (tests) may shorten it
  /** Adds the socket's new kernel drops to `dropped` (from scanIdle, and at detach). */
  void collectDrops(Stream* s);
  std::vector<EngineEvent> pendingEvents_;
  int64_t lastEventFlushMs_ = 0;
  int64_t nowMono_ = 0;
  int64_t nowWall_ = 0;
  RecordRing* ring_ = nullptr;
  // Kernel fast path (native/src/kernel_handover.cpp): hand a settled stream over / take it back.
  KernelPath* kernel_ = nullptr;
  KernelFds kernelFds_;  // this thread's descriptors of the maps (taken when first needed)
  const KernelFds& kernelFds();
  /** True when `x` went to the kernel path just now (the caller then drains what queued meanwhile). */
  bool kernelHandOver(Stream* x);
  void kernelTakeBack(Stream* s);
  /** After a batch of a stream in the kernel path: everything read is handled; the kernel may forward again. */
  void kernelConsumed(Stream* x);
  /** The stream's last-packet time from the kernel's counters (so idle detection sees kernel traffic). */
  void kernelRefresh(Stream* s);
  int64_t batchArrivalUs_ = 0;  // precise monotonic arrival time of the current receive batch (0 = not taken)
  uint32_t batchClock_ = 0;     // the clock rate batchArrivalTs_ is on (0 = none yet this batch)
  uint32_t batchArrivalTs_ = 0;
  // Packets handled since batchArrivalUs_ was read: one reading serves up to this many (≈100 µs of work, well
  // below the millisecond in which jitter and round-trip times are reported).
  static constexpr int kPacketsPerClock = 64;
  int packetsSinceClock_ = 0;
  RtcpSummary rtcpSummary_;     // parse target for RTCP, reused (300 bytes: not rebuilt per batch)
  timeval recordTime_{0, 0};  // capture time of the current receive batch (taken when first needed)
  bool recordTimeValid_ = false;
};


}  // namespace ngrelay
