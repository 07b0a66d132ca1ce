// The forwarding engine: streams (one UDP socket each, or a share of one under rtcp-mux), I/O threads that
// own them, and the command protocol by which the JS thread changes rules without a per-packet lock.
// Rule changes are queued to the owner threads without waiting; Engine::sync() waits once for all of them
// (one fence per thread), so an ng command costs one round trip to the I/O threads, not one per stream.
// The stream, the I/O thread and the event relay each have a header of their own (stream.hpp, io_thread.hpp,
// event_relay.hpp); this one holds what the JS thread calls.
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

#include "io_thread.hpp"
#include "socket_pool.hpp"

namespace ngrelay {

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
  // Of lastPacketMs: the newest packet userspace received / the kernel path forwarded (statistics' media_*).
  int64_t userspaceLastPacketMs, kernelLastPacketMs;
  bool bundleTransport;    // the stream demultiplexes a BUNDLE group (bundleUnmatched means something)
  uint64_t bundleUnmatched;
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
  int64_t threadOf = -1;  // own socket: on the I/O thread of this stream (BUNDLE members share their transport's); -1 = any
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
  /** The certificate and key (PEM), for a restart to present the same a=fingerprint. */
  std::string dtlsCertificatePem() const { return dtls_->certificatePem(); }
  std::string dtlsPrivateKeyPem() const { return dtls_->privateKeyPem(); }
  /** The keys stream `id`'s DTLS handshake negotiated (and the party's sha-256 fingerprint); false = none yet. */
  bool readDtlsKeys(int32_t id, DtlsSrtpMaterial& keys, std::string& peerFingerprint) const;
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
   * The asynchronous sync: queues a fence on every I/O thread that got commands since the last one and
   * returns its id at once; ids grow by one per fence. Two kinds:
   * - Acknowledged (positive id): the batch holds something the JS thread must see done before it replies
   *   (see queueOn). The threads are woken; the FenceSink is told when the fence has passed, and the JS
   *   thread then calls fencePassed(id).
   * - Queued (id returned negated): nobody waits. Fence and commands are queued without waking anyone: an
   *   I/O thread runs queued commands before it reads another packet (IoThread::drain), so a reply sent now
   *   already describes what any packet it prompts will meet. New streams' sockets join their thread's
   *   epoll only with their Attach, and epoll reports data queued before that. What the batch retired is
   *   freed once the fence passed: when the threads next wake, at the latest at wakeQueued().
   */
  int64_t fence();
  /** Wakes the I/O threads that hold queued commands (the JS side calls it shortly after a queued fence). */
  void wakeQueued();
  /** On the JS thread, once fence `id` passed: frees what the batch it closed retired. */
  void fencePassed(uint64_t id);
  /** True when changes are queued that sync() has not waited for. */
  bool pending() const { return pendingThreads_ != 0; }
  bool readCounters(int32_t id, StreamSnapshot& out) const;
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
    // crypto {dtlsOf} naming a stream other than the usual one (Stream::dtlsInSource/dtlsOutSource); -1 = none.
    int32_t dtlsInSource = -1, dtlsOutSource = -1;
    uint32_t endpointGen = 0;  // bumped whenever the JS thread publishes the stream's endpoint (Command::endpointGen)
  };
  /** Resolves the record's explicit DTLS key sources for `crypto` into `cmd` (and the reverse index). */
  void setDtlsSources(int32_t id, Record& rec, const StreamCryptoSpec& crypto, Command& cmd);
  void dropDtlsSources(int32_t id, Record& rec);
  /** Stream `id` is going: the streams taking DTLS keys from it take the usual ones again. */
  void unlinkDtlsSources(int32_t id);
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
  /** Sends transport `transportId`'s owner thread its current member table (BUNDLE); no-op when it is gone. */
  void refreshBundle(int32_t transportId);
  /** Takes stream `id` out of `transportId`'s member set (the set goes with its last member). */
  void leaveBundle(int32_t transportId, int32_t id);
  static int32_t bundleTransportOf(const Rule& r);
  void addReferrer(int64_t sinkId, int32_t id);
  void dropReferrer(int64_t sinkId, int32_t id);
  /** Queues the commands on their owner threads (no wait; see sync()). */
  void runOnOwners(const std::vector<Command>& cmds);
  /** `webrtc`: the stream has (or had, before this command) ICE or DTLS. */
  void queueOn(const Command& cmd, bool webrtc = false);
  int openSocket(const StreamSpec& spec, SockAddr& local);
  void ensureWriter();

  int receiveBufferBytes_;
  std::unique_ptr<KernelPath> kernel_;  // null = userspace only; reset in close(), after the I/O threads
  SchedulingSpec idleScheduling_;  // for the pcap writer, started on the first recording
  SocketPool socketPool_;  // declared before relay_: the relay's thread fills it until relay_ is gone
  std::unique_ptr<EventRelay> relay_;  // declared before threads_: the I/O threads push into it
  std::unique_ptr<DtlsIdentity> dtls_;  // before threads_: their sessions use its SSL_CTX
  std::vector<std::unique_ptr<IoThread>> threads_;
  SlotArena streamArena_{sizeof(Stream), alignof(Stream)};  // declared before streams_, which return slots to it
  std::unordered_map<int32_t, Record> streams_;
  // Reverse indexes, so adding or removing a stream touches only the streams that point at it.
  std::unordered_map<int32_t, std::unordered_set<int32_t>> referrers_;  // sink id -> ids whose rule.sink is it
  std::unordered_map<int32_t, int32_t> muxChild_;                         // RTP stream id -> muxed RTCP id
  std::unordered_map<int32_t, std::unordered_set<int32_t>> dtlsReferrers_;  // id -> ids whose explicit DTLS key source it is
  std::unordered_map<int32_t, std::unordered_set<int32_t>> bundleMembers_;  // transport id -> ids whose rule.bundle names it
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
  /** bury(), with the sockets closed on the event relay's thread (a fence passed: nobody waits for them). */
  void buryLater(Graveyard& g);
  Graveyard graveyard_;  // retired since the last fence
  std::vector<std::pair<uint64_t, Graveyard>> retiredByFence_;  // retired in the batch fence `first` closed
  uint64_t lastFence_ = 0;
  // Since the last fence: streams attached (new, on no thread's epoll yet), and whether any command needs the
  // fence acknowledged (see queueOn()).
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
