// A stream (one UDP socket, or a share of one under rtcp-mux): its hot packet-path state laid out by cache
// line, its rule and learning state, SRTP/DTLS/ICE state and counters. Owned by one I/O thread; see
// io_thread.hpp for how the JS thread changes it (commands) and engine.hpp for who creates it.
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

#include "bundle.hpp"
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
  bool bundleDemux = false;      // a bundle transport: what arrives is handed to its members (bundleRoutes)
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
  // Where crypto {dtlsOf} takes its keys when that is not the usual stream (inbound: this socket's own
  // handshake; outbound: the sink's): a media with a socket per address shares one handshake's keys
  // (src/call/ice-sockets.ts). Owner thread only (Attach/Update/SetDtlsSources); null = the usual one.
  const Stream* dtlsInSource = nullptr;
  const Stream* dtlsOutSource = nullptr;
  std::vector<std::unique_ptr<DtlsSrtpMaterial>> dtlsHistory;  // every published key set, freed with the stream
  const DtlsSrtpMaterial* dtlsInFrom = nullptr;   // the key set dtlsInCtx was made from
  const DtlsSrtpMaterial* dtlsOutFrom = nullptr;
  std::unique_ptr<SrtpContext> dtlsInCtx, dtlsOutCtx;
  // A restored stream (src/state/): contexts made from restored keys start from this sequence state.
  SrtpProgress dtlsInResume, dtlsOutResume;
  // dtlsInCtx/dtlsOutCtx as the JS thread may read them (readSrtpProgress): a replaced context is retired
  // here, never freed before the stream, so a published pointer stays valid.
  std::atomic<const SrtpContext*> dtlsInPub{nullptr}, dtlsOutPub{nullptr};
  std::vector<std::unique_ptr<SrtpContext>> dtlsRetired;
  bool dtlsRestored = false;     // keys published from a saved handshake: no handshake of our own is started
  std::mutex dtlsStatusMutex;
  DtlsSessionState dtlsState = DtlsSessionState::New;
  bool dtlsActive = false;
  std::string dtlsProfile, dtlsPeerFingerprint, dtlsError;
  Counter dtlsFailures;
  // BUNDLE (rule.bundle; native/src/io_thread_bundle.cpp). Owner thread only, but for bundleUnmatched.
  std::vector<BundleRoute> bundleRoutes;  // on a transport: its members (itself included), from SetBundle
  int16_t midExtId = -1;         // on a transport: the MID header extension id its members use
  bool bundledAway = false;      // on a member of another transport: its own socket is not read
  Counter bundleUnmatched;       // on a transport: packets that matched no member (dropped; also in errors)
  // Kernel fast path (native/src/kernel_handover.cpp). kernelSlot: fixed (-1 = none); inKernel and
  // kernelRetryMs: owner thread; the rest published to the JS thread and to streams that send to this one.
  int32_t kernelSlot = -1;
  bool inKernel = false;
  uint64_t socketReads = 0;      // datagrams read from this socket (matched against the program's count)
  int64_t kernelRetryMs = 0;     // monotonic ms before which no new hand-over is tried (after a refusal)
  std::atomic<bool> inKernelPub{false};
  std::atomic<bool> settledPub{false};  // learnSettled: the endpoint changes only by a command
  // lastPacketMs also follows the kernel's forwarding (kernelRefresh): what it stored there last, and what
  // userspace had stored before it (statistics' userspace/kernel/mixed streams; see userspaceLastPacketMs()).
  std::atomic<int64_t> kernelRefreshedMs{0}, userspaceSeenMs{0};
  /** The newest packet userspace itself received (epoch ms, 0 = none). */
  int64_t userspaceLastPacketMs() const {
    int64_t last = lastPacketMs.load(std::memory_order_relaxed);
    return last != kernelRefreshedMs.load(std::memory_order_relaxed) ? last : userspaceSeenMs.load(std::memory_order_relaxed);
  }
  // Rule changes queued by the JS thread / applied by the owner thread: equal = no Update in flight.
  std::atomic<uint32_t> ruleGen{0}, appliedGen{0};
  uint32_t appliedEndpointGen = 0;  // owner thread: Command::endpointGen of the newest Attach/Update it ran
  DtmfInjector inject;           // owner thread only: play DTMF (see dtmf_inject.hpp)

  /** Bytes from the start that the packet path reads or writes (the I/O thread prefetches them). */
  static constexpr size_t kHotBytes = 128;
  /** The same plus the line of rtpStats that every RTP packet writes (for the stream receiving the packet). */
  static constexpr size_t kReceiveHotBytes = 192;

  void refreshRtpAltered() { rtpAltered = mediaBlocked || mediaSilenced || dtmfInjecting || seqShift != 0; }

  /** After any change of `rule` or `learn`: republish the destination and recompute learnSettled. */
  void publishEndpoint() {
    if (endpoint.storeApplied(learn.current, appliedEndpointGen)) confirmed.store(learn.confirmed, std::memory_order_relaxed);
    learnSettled = hasIce || rule.asymmetric || rule.learning == Learning::Off ||
                   (learn.confirmed && !rule.strictSource && !rule.mediaHandover);
    settledPub.store(learnSettled, std::memory_order_release);
  }
};

struct alignas(64) ThreadTotals {
  Counter packets, bytes, errors, malformed, dropped;
};

}  // namespace ngrelay
