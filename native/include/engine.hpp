// The forwarding engine: streams (one UDP socket each, or a share of one under rtcp-mux), I/O threads that
// own them, and the command protocol by which the JS thread changes rules without a per-packet lock.
// Rule changes are queued to the owner threads without waiting; Engine::sync() waits once for all of them
// (one fence per thread), so an ng command costs one round trip to the I/O threads, not one per stream.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "dtls.hpp"
#include "huge_pages.hpp"
#include "ice.hpp"
#include "kernel_path.hpp"
#include "learning.hpp"
#include "pcap_writer.hpp"
#include "sock_addr.hpp"
#include "srtp.hpp"
#include "start_latch.hpp"
#include "dtmf.hpp"
#include "dtmf_inject.hpp"
#include "stream_quality.hpp"
#include "thread_sched.hpp"

namespace ngrelay {

class IoThread;

/** Relaxed single-writer counter: only the owning thread writes, so no locked read-modify-write is needed. */
struct Counter {
  std::atomic<uint64_t> v{0};
  void add(uint64_t n) { v.store(v.load(std::memory_order_relaxed) + n, std::memory_order_relaxed); }
  uint64_t get() const { return v.load(std::memory_order_relaxed); }
};

/**
 * One direction's SDES keys as the control plane gave them (owned copies, JS thread only). `present` false =
 * plain RTP in that direction.
 */
struct SrtpKeySpec {
  bool present = false;
  /** DtlsSrtpKeys: the keys come from the DTLS-SRTP handshake of stream `dtlsOf` (-1 = not DTLS). */
  int32_t dtlsOf = -1;
  SrtpSuite suite = SrtpSuite::AesCm128HmacSha1_80;
  std::vector<uint8_t> key, salt;
  bool encryptRtp = true, encryptRtcp = true, authRtp = true;
  /** A restored stream's sequence state (used only when a new context is made; not part of the keys). */
  SrtpProgress resume;

  SrtpParams params() const {
    SrtpParams p;
    p.suite = suite;
    p.masterKey = key.data();
    p.masterKeyLen = key.size();
    p.masterSalt = salt.data();
    p.masterSaltLen = salt.size();
    p.encryptRtp = encryptRtp;
    p.encryptRtcp = encryptRtcp;
    p.authRtp = authRtp;
    p.resume = resume;
    return p;
  }
  bool operator==(const SrtpKeySpec& o) const {
    return present == o.present && dtlsOf == o.dtlsOf && (!present || (suite == o.suite && key == o.key && salt == o.salt &&
                                                 encryptRtp == o.encryptRtp && encryptRtcp == o.encryptRtcp &&
                                                 authRtp == o.authRtp));
  }
};

/**
 * SRTP of one stream (see StreamCrypto in src/dataplane/types.ts):
 * - inbound: the keys this stream's party sends with; decrypts what arrives on this stream.
 * - outbound: the keys the *sink's* party was given; encrypts what this stream forwards.
 * Both contexts therefore belong to the stream that receives the packet and are used only by its owner
 * thread, even though `outbound` protects traffic that leaves from the sink's socket (possibly owned by
 * another thread): no SRTP context is ever shared between threads.
 */
struct StreamCryptoSpec {
  SrtpKeySpec inbound, outbound;
  /** ng `recrypt`: decrypt and re-encrypt even when both sides share keys (checks authentication). */
  bool recrypt = false;
};

// Field order follows the packet path. A received packet reads and writes the first 128 bytes of its
// stream and of its sink's stream (the adjacent-line prefetcher fetches them as one pair); everything else is
// touched by commands, timers and the slow paths (learning, errors). At 1000 calls the thread cycles through
// a few thousand streams between two packets of one, and each line it needs then comes from beyond L2.
// Streams are allocated from the engine's huge-page arena (huge_pages.hpp), which spares the TLB misses.
constexpr uint8_t kCryptoKeys = 1, kCryptoDtlsIn = 2, kCryptoDtlsOut = 4;

struct alignas(128) Stream {
  // --- line 0: owner-thread state (changed only by commands run on the owner thread, or by its packets) ---
  int ioFd = -1;                 // the owner thread's descriptor of this stream's socket (-1: muxed RTCP)
  int sinkFd = -1;               // the owner thread's descriptor of the sink's socket (-1: no sink)
  bool isRtcp = false;           // fixed
  bool srtpPassThrough = false;  // both sides share keys: forward SRTP untouched
  bool seenFirst = false;
  bool inActive = false;         // in the owner thread's active list (received media since it was last idle)
  bool wentIdle = false;         // an idle event was sent; the next packet sends `resumed`
  bool inBacklog = false;        // in the owner thread's backlog (left with data when its round limit hit)
  // Learning can no longer change anything and accepts every source (confirmed without strict-source or
  // media-handover, or asymmetric/off): the packet path then skips learning and the source address.
  bool learnSettled = false;
  // srtpIn or srtpOut is set (kCryptoKeys), or a direction waits for DTLS-SRTP keys (kCryptoDtlsIn/Out): one
  // byte on the hot line, so plain streams test nothing else and SDES streams touch no DTLS state.
  uint8_t hasCrypto = 0;
  bool mediaBlocked = false;     // rule.blockMedia, here on the hot line
  bool mediaSilenced = false;    // rule.silenceMedia
  int8_t dtmfPt = -1;            // rule.dtmfPt (payload types are 0..127)
  bool dtmfBlocked = false;      // rule.blockDtmf
  bool demuxControl = false;     // rule.ice or rule.dtls: STUN/DTLS are taken out (source addresses needed)
  bool dtmfInjecting = false;    // play DTMF: an event is being sent, the party's RTP is suppressed
  int8_t dtmfReplace = -1;       // rule.dtmfReplace (block DTMF with DTMF-security zero/DTMF/random)
  // Any of mediaBlocked, mediaSilenced, dtmfInjecting, seqShift != 0: one test per RTP packet instead of four
  // (kept by refreshRtpAltered() wherever one of them changes).
  bool rtpAltered = false;
  uint32_t drainedRound = 0;     // the owner's loop round in which the backlog last drained it
  uint16_t seqShift = 0;         // play DTMF: added to the sequence number of every RTP packet forwarded
  Stream* sink = nullptr;        // resolved stream whose socket and endpoint packets go out of/to
  Stream* muxRtcp = nullptr;     // on an RTP stream: the attached rtcp-mux stream
  Recording* rec = nullptr;      // the recording this stream's received packets go to (null = none/paused)
  std::atomic<int64_t> lastPacketMs{0};  // published

  // --- line 1: published to other threads and to JS ---
  Counter packets, bytes;
  std::atomic<uint64_t> rtpState{0};  // bit 48 = valid, bits 32..47 = seq, 0..31 = ssrc
  PublishedAddr endpoint;             // where packets to this party go (read by senders on any thread)

  // --- line 2: written by every RTP packet this stream receives (owner thread only; read out by ReadQuality).
  // Prefetched for a receiving stream only (kReceiveHotBytes), not when the stream is just a sink.
  RtpReceiveStats rtpStats;

  // --- cold ---
  SrtpContext* srtpIn = nullptr;   // decrypts what arrives (owned by the Engine's record, used here only)
  SrtpContext* srtpOut = nullptr;  // encrypts what is forwarded to the sink's party
  int sinkSharedFd = -1;         // the process-wide descriptor sinkFd was taken from (to give it back)
  Rule rule;
  LearnState learn;
  uint32_t lastDrops = 0;        // the socket's kernel drop counter (SO_MEMINFO) seen last
  Counter errors;
  Counter srtpAuthFailed, srtpReplayed;  // also counted in `errors`
  std::atomic<bool> confirmed{false};
  // Fixed for the stream's life (set on the JS thread before the owner thread first sees it).
  int fd = -1;                   // the socket in the process's descriptor table (-1 for a muxed RTCP stream)
  int32_t id = 0;
  int64_t muxedWith = -1;        // id of the RTP stream whose socket is shared
  IoThread* owner = nullptr;
  SockAddr local;                // the bound address (a muxed RTCP stream: its RTP stream's)
  Stream* muxParent = nullptr;   // on a muxed RTCP stream: the RTP stream (learning state lives there)
  StreamQuality quality;         // owner thread only (see stream_quality.hpp); read out by a ReadQuality command
  DtmfState dtmf;                // owner thread only: the RFC 4733 event in progress
  // ICE (rule.ice; native/src/io_thread_ice.cpp). Owner thread only, but for the published ones below.
  bool hasIce = false;           // no learning: the party's address comes from ICE only
  std::unique_ptr<IceAgent> iceAgent;  // full agent (rule.ice.lite false, party's credentials known)
  bool iceControlling = false;   // our role now (rule.ice->controlling, until a role conflict switched it)
  bool iceConsentLost = false;   // RFC 7675: nothing is sent to iceSelected until a check nominates again
  bool inIceList = false;        // in the owner thread's list of ICE streams (consent timer)
  SockAddr iceSelected;          // the nominated party address (invalid = none yet)
  int64_t iceConsentMono = 0;    // monotonic ms of the last valid check from iceSelected
  // Published (IceStatus).
  std::atomic<uint8_t> iceState{0};  // IceState
  PublishedAddr iceSelectedPub;
  std::atomic<int64_t> iceLastConsentMs{0};
  Counter iceChecksReceived, iceChecksSent, iceStunRejected, iceConsentExpired;
  // DTLS-SRTP (rule.dtls, crypto {dtlsOf}; native/src/io_thread_dtls.cpp). Owner thread only, except dtlsKeys
  // (read by the owner threads of the streams that send to this one) and the status under dtlsStatusMutex.
  bool dtlsInWanted = false;     // crypto.inbound = {dtlsOf}: decrypt with the party's DTLS keys (none yet: drop)
  bool dtlsOutWanted = false;    // crypto.outbound = {dtlsOf}: encrypt with the relay's keys towards the sink
  bool inDtlsList = false;
  int8_t dtlsReported = -1;      // the DtlsSessionState last reported by a 'dtls' event
  std::unique_ptr<DtlsSession> dtlsSession;
  SockAddr dtlsPeer;             // without ICE: where the party's DTLS came from (answers go there)
  std::atomic<const DtlsSrtpMaterial*> dtlsKeys{nullptr};
  std::vector<std::unique_ptr<DtlsSrtpMaterial>> dtlsHistory;  // every published key set, freed with the stream
  const DtlsSrtpMaterial* dtlsInFrom = nullptr;   // the key set dtlsInCtx was made from
  const DtlsSrtpMaterial* dtlsOutFrom = nullptr;
  std::unique_ptr<SrtpContext> dtlsInCtx, dtlsOutCtx;
  std::mutex dtlsStatusMutex;
  DtlsSessionState dtlsState = DtlsSessionState::New;
  bool dtlsActive = false;
  std::string dtlsProfile, dtlsPeerFingerprint, dtlsError;
  Counter dtlsFailures;
  // Kernel fast path (native/src/kernel_handover.cpp). kernelSlot: fixed (-1 = none); inKernel and
  // kernelRetryMs: owner thread; the rest published to the JS thread and to streams that send to this one.
  int32_t kernelSlot = -1;
  bool inKernel = false;
  uint64_t socketReads = 0;      // datagrams read from this socket (matched against the program's count)
  int64_t kernelRetryMs = 0;     // monotonic ms before which no new hand-over is tried (after a refusal)
  std::atomic<bool> inKernelPub{false};
  std::atomic<bool> settledPub{false};  // learnSettled: the endpoint changes only by a command
  // Rule changes queued by the JS thread / applied by the owner thread: equal = no Update in flight.
  std::atomic<uint32_t> ruleGen{0}, appliedGen{0};
  DtmfInjector inject;           // owner thread only: play DTMF (see dtmf_inject.hpp)

  /** Bytes from the start that the packet path reads or writes (the I/O thread prefetches them). */
  static constexpr size_t kHotBytes = 128;
  /** The same plus the line of rtpStats that every RTP packet writes (for the stream receiving the packet). */
  static constexpr size_t kReceiveHotBytes = 192;

  void refreshRtpAltered() { rtpAltered = mediaBlocked || mediaSilenced || dtmfInjecting || seqShift != 0; }

  /** After any change of `rule` or `learn`: republish the destination and recompute learnSettled. */
  void publishEndpoint() {
    endpoint.store(learn.current);
    confirmed.store(learn.confirmed, std::memory_order_relaxed);
    learnSettled = hasIce || rule.asymmetric || rule.learning == Learning::Off ||
                   (learn.confirmed && !rule.strictSource && !rule.mediaHandover);
    settledPub.store(learnSettled, std::memory_order_release);
  }
};

struct alignas(64) ThreadTotals {
  Counter packets, bytes, errors, malformed, dropped;
};

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
  /** Delivers what is queued, then ends the thread. */
  void stop();
  /** 0, or the errno with which the kernel refused the thread's scheduling. */
  int schedulingError() const { return schedError_; }

 private:
  void run();
  EventSink sink_;
  FenceSink fenceSink_;
  SchedulingSpec scheduling_;
  int schedError_ = 0;
  StartLatch started_;
  std::mutex m_;
  std::condition_variable cv_;
  std::vector<std::vector<EngineEvent>> queue_;
  std::vector<uint64_t> fences_;
  bool stopping_ = false;
  std::thread thread_;
};

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
enum class CommandType : uint8_t { Attach, Update, SetSink, Detach, SetRecording, Fence, ReadQuality, KernelRevoke, PlayDtmf };

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
  DtmfPlay play{};                        // PlayDtmf: the event to queue
  DtmfPlayResult* playOut = nullptr;      // PlayDtmf: the outcome
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
  /** Queues a command without waking the thread (a later submit() wakes it; see Engine::sync()). */
  void enqueue(const Command& cmd);
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
  void runCommands();
  void apply(const Command& cmd);
  /** Reads and forwards what `s` holds, up to the round limit; true when it may still hold data. */
  bool drain(Stream* s);
  /** Restores the receive headers recvmmsg wrote back (name/control room, flags) for the next call. */
  void resetReceiveHeaders(mmsghdr* msgs, int used);
  void flushSends(int fd, int count);
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
  ThreadTotals totals_;

  // Hot-path buffers, allocated once.
  HugeBuffer bufs_;  // kBatch receive slots, kSlotStride apart
  std::vector<struct mmsghdr> rmsgs_;  // receive headers that ask for the source address
  std::vector<struct mmsghdr> ranon_;  // the same buffers, no source address (settled streams)
  std::vector<struct iovec> riov_;
  std::vector<SockAddr> rnames_;
  std::vector<struct mmsghdr> smsgs_;
  std::vector<struct iovec> siov_;
  std::vector<SockAddr> snames_;
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
  /** Retransmissions, handshake timeouts, and active sessions whose party's address became known. */
  void checkDtls();
  /** An active session sends its ClientHello once the party's address is known. */
  void startDtlsIfReady(Stream* s);
  /** The DTLS-keyed SRTP contexts are current (made from the latest published keys); false = none yet. */
  bool refreshDtlsIn(Stream* t);
  bool refreshDtlsOut(Stream* t, const Stream* sink);
  void setDtlsCrypto(Stream* s, int32_t inOf, int32_t outOf);
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

struct EngineTotalsSnapshot {
  uint64_t packets, bytes, errors, malformed, dropped;
  uint64_t kernelPackets, kernelBytes;  // of packets/bytes: forwarded by the kernel path
};

struct StreamSnapshot {
  uint64_t packets, bytes, errors;
  uint64_t srtpAuthFailed, srtpReplayed;
  bool hasSrtp;
  int64_t lastPacketMs;
  SockAddr endpoint;
  bool confirmed;
  bool hasRtp;
  uint32_t ssrc;
  uint16_t seq;
  // IceStatus (hasIce: the rule has ICE).
  bool hasIce;
  IceState iceState;
  SockAddr iceSelected;
  uint64_t iceChecksReceived, iceChecksSent, iceStunRejected, iceConsentExpired;
  int64_t iceLastConsentMs;
  // DtlsStatus (hasDtls: the rule has DTLS).
  bool hasDtls;
  DtlsSessionState dtlsState;
  bool dtlsActive;
  std::string dtlsProfile, dtlsPeerFingerprint, dtlsError;
  bool kernelPath;         // the engine has the kernel path on (the two fields below mean something)
  bool inKernel;           // the kernel forwards this stream's RTP now
  uint64_t kernelPackets;  // of `packets`: forwarded by the kernel path
};

/** Error from binding a socket: errno name ("EADDRINUSE") and text. */
struct BindFailure {
  std::string code;
  std::string message;
};

struct StreamSpec {
  int32_t id;
  bool isRtcp;
  std::string localAddress;
  uint16_t localPort;
  int64_t muxedWith;  // -1 = own socket
};

/** Record ring per I/O thread: about 20 000 packets of 200 bytes; a slower disk than that drops and counts. */
constexpr size_t kRecordRingBytes = size_t(4) << 20;

struct RecordingSpec {
  int32_t id;
  std::string path;
  LinkType link;
  bool egress;
  /** Continue an existing pcap (a call restored after a restart): no O_EXCL, no new global header. */
  bool append = false;
};

/** Error from opening a recording file: errno name and text. */
struct RecordingFailure {
  std::string code;
  std::string message;
};

/** Everything the JS thread calls. Not thread-safe: one JS thread drives it. */
class Engine {
 public:
  /** `scheduling`: the I/O threads; `idleScheduling`: the event relay and pcap writer threads. */
  Engine(int threads, int receiveBufferBytes, EventSink sink, const SchedulingSpec& scheduling = SchedulingSpec{},
         const SchedulingSpec& idleScheduling = SchedulingSpec{}, FenceSink fenceSink = nullptr,
         const DtlsCertificateSpec& dtls = DtlsCertificateSpec{});
  /** The relay's DTLS certificate fingerprint with `hash` (a=fingerprint); false for an unknown hash. */
  bool dtlsFingerprint(const std::string& hash, std::vector<uint8_t>& out) const { return dtls_->fingerprint(hash, out); }
  ~Engine();

  /** Throws BindFailure for socket errors, std::invalid_argument for contract violations. */
  void addStream(const StreamSpec& spec, const Rule& rule, const StreamCryptoSpec& crypto = StreamCryptoSpec{});
  /** `crypto` replaces the stream's SRTP keys; a direction whose keys did not change keeps its context (ROC). */
  void updateStream(int32_t id, const Rule& rule, const StreamCryptoSpec& crypto = StreamCryptoSpec{});
  void removeStream(int32_t id);
  /**
   * Waits until every I/O thread has run every command queued so far, then frees what those commands
   * retired (streams, SRTP contexts) and closes removed sockets. Until then add/update/remove are queued
   * only: the caller syncs once per batch (an ng command) before it tells anyone the change is in place.
   */
  void sync();
  /**
   * The asynchronous sync: queues a fence on every I/O thread and returns its id at once; the FenceSink is
   * told when it has passed, and the JS thread then calls fencePassed(id). Ids grow by one per fence.
   * A batch nobody needs to wait for is fenced silently and its id returned negated: it only attached new
   * streams (and set up those new streams), and retired nothing. A new stream's socket is bound already and
   * joins the thread's epoll with the Attach, so no packet of it can meet an older rule, and what arrives
   * before is read then (epoll reports data queued before EPOLL_CTL_ADD). Its threads are still woken, but
   * the acknowledgement (a hop to the event relay, another to the JS thread) is spared: an offer's reply
   * does not wait for it.
   */
  int64_t fence();
  /** On the JS thread, once fence `id` passed: frees what the batch it closed retired. */
  void fencePassed(uint64_t id);
  /** True when changes are queued that sync() has not waited for. */
  bool pending() const { return pendingThreads_ != 0; }
  bool readCounters(int32_t id, StreamSnapshot& out) const;
  /** Call-quality figures of a stream, copied on its owner thread (native/src/engine_quality.cpp). */
  bool readQuality(int32_t id, QualitySnapshot& out) const;
  /**
   * Queues a copy of each stream's call-quality figures on its owner thread, without waiting or waking it,
   * and returns a token. takeQuality(token) hands the copies out once a fence or sync() issued after this
   * call has passed. Per thread the queue is FIFO: a removeStream after this runs after the copy.
   */
  uint64_t requestQuality(const std::vector<int32_t>& ids);
  /** The copies of requestQuality(token), in its order (null = unknown id); forgotten afterwards. */
  std::vector<std::unique_ptr<QualitySnapshot>> takeQuality(uint64_t token);
  /**
   * play DTMF: queues the event on the stream that receives from the party named as its sender (the packets go
   * out towards that stream's sink). Waits for the owner thread's answer.
   */
  DtmfPlayResult playDtmf(int32_t id, const DtmfPlay& play);
  /** SRTP sequence state of a stream's contexts (a missing context reads as unknown); false for an unknown id. */
  bool readSrtpProgress(int32_t id, SrtpProgress& inbound, SrtpProgress& outbound) const;
  /** Last packet time (wall ms) of a stream; 0 when it never received one or is unknown. */
  int64_t lastPacketMs(int32_t id) const;
  EngineTotalsSnapshot totals() const;
  /**
   * Loads and attaches the kernel fast path (before any stream is added); "" when it is on, otherwise why
   * not (the engine then forwards in userspace as always).
   */
  std::string enableKernelPath(const KernelPathSpec& spec);
  const KernelPath* kernelPath() const { return kernel_.get(); }
  int threadCount() const { return int(threads_.size()); }
  /** True when every I/O thread runs on a private descriptor table (see IoThread::privateFds). */
  bool privateDescriptorTables() const;
  /** 0, or the first errno with which an I/O thread's scheduling was refused. */
  int schedulingError() const;
  /** 0, or the errno with which the background threads' scheduling was refused. */
  int idleSchedulingError() const { return relay_->schedulingError(); }

  /** Creates the pcap file (O_EXCL) and writes its header. Throws RecordingFailure, std::invalid_argument. */
  void startRecording(const RecordingSpec& spec);
  /** The streams whose received packets feed the recording (replaces the previous set; empty = paused). */
  void setRecordingStreams(int32_t recordingId, const std::vector<int32_t>& streamIds);
  /** Detaches the recording from its streams, writes what is queued, closes the file. */
  bool stopRecording(int32_t recordingId, RecordingSnapshot& out);
  bool readRecording(int32_t recordingId, RecordingSnapshot& out) const;
  void close();
  bool closed() const { return closed_; }

 private:
  /** Streams live in streamArena_ (huge pages); this returns them there. */
  struct StreamDeleter {
    SlotArena* arena;
    void operator()(Stream* s) const {
      s->~Stream();
      arena->release(s);
    }
  };
  using StreamPtr = std::unique_ptr<Stream, StreamDeleter>;
  struct Record {
    StreamPtr stream{nullptr, StreamDeleter{nullptr}};
    Rule rule;           // JS-thread copy, for sink resolution
    Stream* resolvedSink = nullptr;
    StreamCryptoSpec crypto;  // the keys the contexts below were made from
    std::unique_ptr<SrtpContext> srtpIn, srtpOut;
  };
  /**
   * New contexts for `crypto` where its keys differ from `rec.crypto` (others are kept); the replaced ones
   * are moved into `retired`, to be freed after the owner thread acknowledged the switch. Throws
   * std::invalid_argument when a key is unusable.
   */
  void prepareCrypto(Record& rec, const StreamCryptoSpec& crypto, std::vector<std::unique_ptr<SrtpContext>>& retired);
  static bool passThrough(const Record& rec);
  Stream* resolveSink(int64_t sinkId) const;
  /** After stream `changedId` appeared or vanished, re-point every stream whose sink resolution changed. */
  void relinkSinks(int32_t changedId);
  void addReferrer(int64_t sinkId, int32_t id);
  void dropReferrer(int64_t sinkId, int32_t id);
  /** Queues the commands on their owner threads (no wait; see sync()). */
  void runOnOwners(const std::vector<Command>& cmds);
  void queueOn(const Command& cmd);
  int openSocket(const StreamSpec& spec, SockAddr& local);
  void ensureWriter();

  int receiveBufferBytes_;
  std::unique_ptr<KernelPath> kernel_;  // null = userspace only; reset in close(), after the I/O threads
  SchedulingSpec idleScheduling_;  // for the pcap writer, started on the first recording
  std::unique_ptr<EventRelay> relay_;  // declared before threads_: the I/O threads push into it
  std::unique_ptr<DtlsIdentity> dtls_;  // before threads_: their sessions use its SSL_CTX
  std::vector<std::unique_ptr<IoThread>> threads_;
  SlotArena streamArena_{sizeof(Stream), alignof(Stream)};  // declared before streams_, which return slots to it
  std::unordered_map<int32_t, Record> streams_;
  // Reverse indexes, so adding or removing a stream touches only the streams that point at it.
  std::unordered_map<int32_t, std::unordered_set<int32_t>> referrers_;  // sink id -> ids whose rule.sink is it
  std::unordered_map<int32_t, int32_t> muxChild_;                         // RTP stream id -> muxed RTCP id
  uint32_t nextThread_ = 0;
  bool closed_ = false;
  // Batching: which threads got commands since the last sync() (bit per thread index, and the indexes), and
  // what may be freed only once they ran them.
  std::vector<char> dirty_;
  int pendingThreads_ = 0;
  std::unordered_map<const IoThread*, size_t> threadIndex_;
  struct Graveyard {
    std::vector<StreamPtr> streams;
    std::vector<std::unique_ptr<SrtpContext>> contexts;
    std::vector<int> fds;
    bool empty() const { return streams.empty() && contexts.empty() && fds.empty(); }
    void clear();
  };
  /** Frees what `g` holds, the retired streams' kernel counter slots included. */
  void bury(Graveyard& g);
  Graveyard graveyard_;  // retired since the last fence
  std::vector<std::pair<uint64_t, Graveyard>> retiredByFence_;  // retired in the batch fence `first` closed
  uint64_t lastFence_ = 0;
  // Since the last fence: streams attached (new, on no thread's epoll yet), and whether any command touched
  // a stream that was live before (then the fence must be acknowledged; see fence()).
  std::unordered_set<const Stream*> attachedUnfenced_;
  bool unfencedNeedsAck_ = false;
  // requestQuality's copies, written by the owner threads, by token (kept until takeQuality).
  std::unordered_map<uint64_t, std::vector<std::unique_ptr<QualitySnapshot>>> qualityBatches_;
  uint64_t lastQualityToken_ = 0;

  // Recording: one ring per I/O thread and the writer, created with the first recording.
  std::vector<std::unique_ptr<RecordRing>> rings_;
  std::unique_ptr<PcapWriter> writer_;
  struct RecordingEntry {
    std::unique_ptr<Recording> rec;
    std::unordered_set<int32_t> streams;
  };
  std::unordered_map<int32_t, RecordingEntry> recordings_;
  std::unordered_map<int32_t, int32_t> streamRecording_;  // stream id -> recording id it feeds
};

}  // namespace ngrelay
