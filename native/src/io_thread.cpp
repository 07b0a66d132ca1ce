// One I/O thread: its own epoll set, the sockets of the streams it owns, recvmmsg/sendmmsg batches.
// Rules change only through commands this thread runs between batches, so the hot path takes no lock.
#include <errno.h>
#include <linux/sock_diag.h>
#include <pthread.h>
#include <sched.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <string>
#include <system_error>

#include "io_thread.hpp"
#include "media_control.hpp"
#include "packet_check.hpp"

namespace ngrelay {

static_assert(offsetof(Stream, rtpStats) == Stream::kHotBytes && offsetof(Stream, rtpStats) + 48 <= Stream::kReceiveHotBytes,
              "the RTP statistics' packet-path fields must fill the third cache line only");
static_assert(offsetof(Stream, endpoint) + sizeof(PublishedAddr) <= Stream::kHotBytes &&
                  offsetof(Stream, lastPacketMs) + 8 <= 64 && offsetof(Stream, rtpAltered) < 64,
              "the packet path's fields must stay within the first two cache lines");

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef SYS_pidfd_getfd
#define SYS_pidfd_getfd 438
#endif
#ifndef SYS_close_range
#define SYS_close_range 436
#endif

namespace {

constexpr int kMaxRoundsPerWakeup = 4;  // batches per readable socket before giving others a turn
constexpr int kMaxEvents = 256;         // readiness reports taken per epoll_wait
constexpr int64_t kEventFlushMs = 50;

// The socket calls go straight to the kernel. glibc's wrappers are cancellation points: in a multi-threaded
// process (node always is) each call switches asynchronous cancellation on and off around the syscall, which
// cost ~1.3 % of the I/O thread at 300k pps. Nothing here is ever cancelled.
inline int sysRecvmmsg(int fd, mmsghdr* m, unsigned n) {
  return int(syscall(SYS_recvmmsg, fd, m, n, MSG_DONTWAIT, nullptr));
}
inline int sysSendmmsg(int fd, mmsghdr* m, unsigned n) { return int(syscall(SYS_sendmmsg, fd, m, n, MSG_DONTWAIT)); }
inline int sysEpollWait(int epfd, epoll_event* evs, int max, int timeoutMs) {
  return int(syscall(SYS_epoll_pwait, epfd, evs, max, timeoutMs, nullptr, 0));
}

// At 1000 calls a stream's lines are rarely still cached when its next packet comes: the kernel's socket
// work in between evicts them. Fetching the next sockets' streams while this one is in its syscalls hides
// part of that stall (streams sit on huge pages, see huge_pages.hpp: a prefetch is of no use across a TLB
// miss).
inline void prefetchStream(const Stream* s, size_t bytes = Stream::kReceiveHotBytes) {
  if (!s) return;
  const char* p = reinterpret_cast<const char*>(s);
  for (size_t off = 0; off < bytes; off += 64) __builtin_prefetch(p + off);
}
inline void prefetchSink(const Stream* s) {
  if (s && s->sink) prefetchStream(s->sink, Stream::kHotBytes);  // a sink's RTP statistics are not touched
}

int64_t clockMs(clockid_t clk) {
  timespec ts;
  clock_gettime(clk, &ts);
  return int64_t(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

}  // namespace

IoThread::IoThread(int index, const EventSink& sink, const SchedulingSpec& scheduling)
    : index_(index), events_(sink), scheduling_(scheduling) {
  epfd_ = epoll_create1(EPOLL_CLOEXEC);
  wakefd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (epfd_ < 0 || wakefd_ < 0) throw std::system_error(errno, std::generic_category(), "epoll/eventfd");
  // NGRELAY_SHARED_FD_TABLE=1 keeps the I/O threads on the process's descriptor table (troubleshooting, tests).
  const char* shared = std::getenv("NGRELAY_SHARED_FD_TABLE");
  if (!(shared && shared[0] == '1')) pidfd_ = int(syscall(SYS_pidfd_open, getpid(), 0));
  // NGRELAY_ICE_CONSENT_MS shortens RFC 7675's 30 s (tests only).
  if (const char* consent = std::getenv("NGRELAY_ICE_CONSENT_MS")) {
    long ms = std::strtol(consent, nullptr, 10);
    if (ms > 0) iceConsentMs_ = ms;
  }
  // NGRELAY_DTLS_TIMEOUT_MS shortens the 30 s DTLS handshake timeout (tests only).
  if (const char* dtlsTimeout = std::getenv("NGRELAY_DTLS_TIMEOUT_MS")) {
    long ms = std::strtol(dtlsTimeout, nullptr, 10);
    if (ms > 0) dtlsTimeoutMs_ = ms;
  }
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.ptr = nullptr;  // nullptr marks the wake-up eventfd
  if (epoll_ctl(epfd_, EPOLL_CTL_ADD, wakefd_, &ev) != 0)
    throw std::system_error(errno, std::generic_category(), "epoll_ctl");

  bufs_ = HugeBuffer(size_t(kBatch) * kSlotStride);
  rmsgs_.resize(kBatch);
  ranon_.resize(kBatch);
  riov_.resize(kBatch);
  rnames_.resize(kBatch);
  smsgs_.resize(kBatch);
  siov_.resize(kBatch);
  scratch_.resize(kBufSize);
  injectBuf_.resize(256);  // a 16-byte event packet plus any SRTP trailer
  injecting_.reserve(16);
  for (int i = 0; i < kBatch; ++i) {
    riov_[i].iov_base = bufs_.data() + size_t(i) * kSlotStride;
    riov_[i].iov_len = kBufSize;
    std::memset(&rmsgs_[i], 0, sizeof(mmsghdr));
    rmsgs_[i].msg_hdr.msg_iov = &riov_[i];
    rmsgs_[i].msg_hdr.msg_iovlen = 1;
    rmsgs_[i].msg_hdr.msg_name = &rnames_[i].u;
    ranon_[i] = rmsgs_[i];
    ranon_[i].msg_hdr.msg_name = nullptr;
    std::memset(&smsgs_[i], 0, sizeof(mmsghdr));
    smsgs_[i].msg_hdr.msg_iov = &siov_[i];
    smsgs_[i].msg_hdr.msg_iovlen = 1;
    smsgs_[i].msg_hdr.msg_name = &runDest_.u;  // a run has one destination (see drain)
  }
  resetReceiveHeaders(rmsgs_.data(), kBatch);
  resetReceiveHeaders(ranon_.data(), kBatch);
  windows_.reserve(64);
  backlog_.reserve(256);
  pendingEvents_.reserve(256);
}

IoThread::~IoThread() {
  stopAndJoin();
  // With a private table the process's copies of epfd_ and pidfd_ were closed in start() (the numbers may
  // name other descriptors by now); the thread's own copies went with its table.
  if (!privateFds_) {
    if (epfd_ >= 0) ::close(epfd_);
    if (pidfd_ >= 0) ::close(pidfd_);
  }
  if (wakefd_ >= 0) ::close(wakefd_);
}

void IoThread::start() {
  running_.store(true);
  thread_ = std::thread([this] { run(); });
  // Visible in top/perf as ngrelay-io-N, which helps when pinning and profiling.
  std::string name = "ngrelay-io-" + std::to_string(index_);
  pthread_setname_np(thread_.native_handle(), name.c_str());
  started_.wait();
  // The thread has its own table now, holding its own copies: the process's table needs only the wake-up
  // eventfd (submit() writes it from the JS thread). epoll and pidfd are used by the thread alone.
  if (privateFds_) {
    ::close(epfd_);
    if (pidfd_ >= 0) ::close(pidfd_);
  }
}

void IoThread::setUpDescriptorTable() {
  // A private copy of the table (unshare(CLONE_FILES) affects this thread only), emptied of everything but the
  // three descriptors the thread itself uses. Sockets are then taken one by one with pidfd_getfd from the
  // process's table, where the engine (JS thread) binds them. If the kernel or a seccomp filter refuses a
  // step, the thread keeps using the shared table, as every thread in node does.
  if (pidfd_ < 0) return;
  int probe = int(syscall(SYS_pidfd_getfd, pidfd_, wakefd_, 0));  // can we take descriptors at all?
  if (probe < 0) return;
  ::close(probe);
  // close_range (Linux 5.9) empties the copy; without it the copy would keep every socket and file of the
  // process open for this thread's lifetime. An empty range tells whether the call exists.
  if (syscall(SYS_close_range, ~0U, ~0U, 0) != 0) return;
  if (unshare(CLONE_FILES) != 0) return;
  int keep[3] = {epfd_, wakefd_, pidfd_};
  std::sort(keep, keep + 3);
  unsigned from = 0;
  for (int k : keep) {
    if (unsigned(k) > from) syscall(SYS_close_range, from, unsigned(k) - 1, 0);
    from = unsigned(k) + 1;
  }
  syscall(SYS_close_range, from, ~0U, 0);
  privateFds_ = true;
}

int IoThread::acquireFd(int sharedFd) {
  if (!privateFds_ || sharedFd < 0) return sharedFd;
  auto it = localFds_.find(sharedFd);
  if (it != localFds_.end()) {
    ++it->second.refs;
    return it->second.fd;
  }
  int fd = int(syscall(SYS_pidfd_getfd, pidfd_, sharedFd, 0));
  if (fd < 0) return -1;  // (EMFILE) the stream then neither receives nor sends; nothing else breaks
  localFds_.emplace(sharedFd, LocalFd{fd, 1});
  return fd;
}

void IoThread::releaseFd(int sharedFd) {
  if (!privateFds_ || sharedFd < 0) return;
  auto it = localFds_.find(sharedFd);
  if (it == localFds_.end()) return;
  if (--it->second.refs > 0) return;
  ::close(it->second.fd);
  localFds_.erase(it);
}

void IoThread::setSink(Stream* s, Stream* sink) {
  // Take the new descriptor before giving back the old one: the same socket is then not closed and re-taken.
  const int shared = sink ? sink->fd : -1;
  const int local = acquireFd(shared);
  releaseFd(s->sinkSharedFd);
  s->sink = sink;
  s->sinkFd = local;
  s->sinkSharedFd = shared;
}

void IoThread::setCrypto(Stream* s, SrtpContext* in, SrtpContext* out, bool passThrough) {
  s->srtpIn = in;
  s->srtpOut = out;
  s->srtpPassThrough = passThrough;
  s->hasCrypto = (in != nullptr || out != nullptr) ? kCryptoKeys : 0;
}

void IoThread::stopAndJoin() {
  if (!thread_.joinable()) return;
  running_.store(false);
  uint64_t one = 1;
  ssize_t w = write(wakefd_, &one, sizeof(one));
  (void)w;
  thread_.join();
}

void IoThread::enqueue(const Command& cmd) {
  std::lock_guard<std::mutex> g(cmdMutex_);
  commands_.push_back(cmd);
  cmdPending_.store(true, std::memory_order_release);
}

void IoThread::wake() {
  uint64_t one = 1;
  ssize_t w = write(wakefd_, &one, sizeof(one));
  (void)w;
}

void IoThread::submit(const Command& cmd) {
  enqueue(cmd);
  wake();
}

void IoThread::run() {
  schedError_ = applyThreadScheduling(scheduling_);
  setUpDescriptorTable();
  started_.open();
  epoll_event evs[kMaxEvents];
  nowMono_ = clockMs(CLOCK_MONOTONIC);
  nowWall_ = clockMs(CLOCK_REALTIME);
  lastEventFlushMs_ = nowMono_ - kEventFlushMs;
  std::vector<Stream*> again;  // streams of this round that may still hold data (the round limit cut them off)
  again.reserve(256);
  while (running_.load(std::memory_order_relaxed)) {
    // Sockets are edge-triggered: the kernel reports a socket once per arrival, and a socket the thread left
    // with data is on `backlog_` instead. With level-triggered epoll every drained socket was polled again on
    // the next epoll_wait (~7 % of the thread's CPU at 400k pps, all of it spent learning "nothing there").
    int timeout = !backlog_.empty()                                 ? 0
                  : (!pendingEvents_.empty() || !windows_.empty() || dtlsBusy_ > 0 || iceBusy_ > 0) ? int(kEventFlushMs)
                  : !active_.empty()                               ? int(kIdleScanMs)
                                                                   : 1000;
    if (!injecting_.empty()) timeout = std::min(timeout, injectionTimeoutMs());  // play DTMF packets falling due
    int n = sysEpollWait(epfd_, evs, kMaxEvents, timeout);
    // Once per round: the coarse clocks tick every few ms anyway, and a round is short (≤ 256 sockets × 4
    // batches). Timestamps feed idle detection and learning windows, which count in seconds.
    nowMono_ = clockMs(CLOCK_MONOTONIC_COARSE);
    nowWall_ = clockMs(CLOCK_REALTIME_COARSE);
    batchArrivalUs_ = 0;  // the thread may have slept: a new arrival reading for this round's packets
    batchClock_ = 0;
    packetsSinceClock_ = 0;
    bool wake = false;
    // Streams left with data last round go first, so a busy socket cannot starve them.
    again.clear();
    ++round_;
    for (size_t i = 0; i < backlog_.size(); ++i) {
      Stream* s = backlog_[i];
      if (i + 1 < backlog_.size()) prefetchStream(backlog_[i + 1]);
      s->inBacklog = false;
      s->drainedRound = round_;
      if (drain(s)) again.push_back(s);
    }
    backlog_.clear();
    if (n > 0) prefetchStream(static_cast<const Stream*>(evs[0].data.ptr));
    if (n > 1) prefetchStream(static_cast<const Stream*>(evs[1].data.ptr));
    for (int i = 0; i < n; ++i) {
      if (i + 2 < n) prefetchStream(static_cast<const Stream*>(evs[i + 2].data.ptr));
      if (i + 1 < n) prefetchSink(static_cast<const Stream*>(evs[i + 1].data.ptr));
      if (evs[i].data.ptr == nullptr) {
        wake = true;
        continue;
      }
      Stream* s = static_cast<Stream*>(evs[i].data.ptr);
      // Drained from the backlog after this report was made: it either emptied the queue (a later packet raises
      // a new edge) or is in `again` already.
      if (s->drainedRound == round_) continue;
      if (drain(s)) again.push_back(s);
    }
    for (Stream* s : again) {
      if (s->ioFd < 0) continue;  // detached by a command drain() ran within this round
      s->inBacklog = true;
      backlog_.push_back(s);
    }
    if (wake) {
      uint64_t v;
      ssize_t r = read(wakefd_, &v, sizeof(v));
      (void)r;
    }
    // Acknowledgements are given only after every event of this round, so nothing the JS thread frees once a
    // fence passed (a detached stream) is touched again: the next round's epoll set no longer has it.
    if (wake || hasCommands()) runCommands(false);
    releaseAcks();
    handleTimers();
  }
  // Anyone still waiting for an acknowledgement is released; the engine is going away.
  runCommands(false);
  releaseAcks();
  // Close this thread's copies now: the kernel would only do it after pthread_join has returned, and a port
  // must be free again once the engine is closed.
  if (privateFds_) {
    syscall(SYS_close_range, 0u, ~0U, 0);
    localFds_.clear();
  }
}

static void acknowledge(const Command& c) {
  if (c.done) c.done->done();
  if (c.fence && c.fence->remaining.fetch_sub(1, std::memory_order_acq_rel) == 1) {
    if (c.fence->relay) c.fence->relay->pushFence(c.fence->id);  // null: nobody needs telling (Engine::fence)
    delete c.fence;
  }
}

void IoThread::runCommands(bool inRound) {
  // The two vectors trade places, so neither side allocates once both have grown to the usual batch.
  runningCommands_.clear();
  {
    std::lock_guard<std::mutex> g(cmdMutex_);
    runningCommands_.swap(commands_);
    cmdPending_.store(false, std::memory_order_relaxed);
  }
  nowMono_ = clockMs(CLOCK_MONOTONIC_COARSE);
  for (const Command& c : runningCommands_) {
    apply(c);
    if (!c.done && !c.fence) continue;
    if (inRound) heldAcks_.push_back(c);
    else acknowledge(c);
  }
}

void IoThread::releaseAcks() {
  for (const Command& c : heldAcks_) acknowledge(c);
  heldAcks_.clear();
}

void IoThread::apply(const Command& c) {
  Stream* s = c.stream;
  // Any change to a stream in the kernel path brings it back first (it goes down again once eligible).
  if (s && s->inKernel && c.type != CommandType::ReadQuality) kernelTakeBack(s);
  switch (c.type) {
    case CommandType::Attach: {
      s->rule = c.rule;
      s->mediaBlocked = c.rule.blockMedia;
      s->mediaSilenced = c.rule.silenceMedia;
      s->dtmfPt = int8_t(c.rule.dtmfPt);
      s->dtmfBlocked = c.rule.blockDtmf;
      s->dtmfReplace = c.rule.dtmfReplace;
      s->refreshRtpAltered();
      setSink(s, c.sink);
      setCrypto(s, c.srtpIn, c.srtpOut, c.srtpPassThrough);
      s->learn.lastSignalMs = nowMono_;
      s->appliedEndpointGen = c.endpointGen;
      resetLearning(s->learn, s->rule);
      setDtlsCrypto(s, c.dtlsInOf, c.dtlsOutOf, c.dtlsInResume, c.dtlsOutResume);
      s->dtlsInSource = c.dtlsInSource;
      s->dtlsOutSource = c.dtlsOutSource;
      applyIce(s, Rule{}, true);
      s->publishEndpoint();
      if (s->muxParent) s->muxParent->muxRtcp = s;
      s->ioFd = acquireFd(s->fd);
      if (s->ioFd >= 0) {
        epoll_event ev{};
        ev.events = EPOLLIN | EPOLLET;  // edge-triggered: see run() for how a socket left with data is handled
        ev.data.ptr = s;
        epoll_ctl(epfd_, EPOLL_CTL_ADD, s->ioFd, &ev);
      }
      applyDtls(s, Rule{}, true);
      s->demuxControl = s->hasIce || s->dtlsSession != nullptr;
      break;
    }
    case CommandType::Update: {
      Rule old = s->rule;
      s->rule = c.rule;
      s->mediaBlocked = c.rule.blockMedia;
      s->mediaSilenced = c.rule.silenceMedia;
      s->dtmfPt = int8_t(c.rule.dtmfPt);
      s->dtmfBlocked = c.rule.blockDtmf;
      s->dtmfReplace = c.rule.dtmfReplace;
      s->refreshRtpAltered();
      setSink(s, c.sink);
      setCrypto(s, c.srtpIn, c.srtpOut, c.srtpPassThrough);
      if (old.signalGeneration != c.rule.signalGeneration) s->learn.lastSignalMs = nowMono_;
      s->appliedEndpointGen = c.endpointGen;
      if (updateResetsLearning(old, c.rule)) {
        resetLearning(s->learn, s->rule);
        windows_.erase(std::remove(windows_.begin(), windows_.end(), s), windows_.end());
      }
      setDtlsCrypto(s, c.dtlsInOf, c.dtlsOutOf, c.dtlsInResume, c.dtlsOutResume);
      s->dtlsInSource = c.dtlsInSource;
      s->dtlsOutSource = c.dtlsOutSource;
      applyIce(s, old, false);
      s->publishEndpoint();
      applyDtls(s, old, false);
      s->demuxControl = s->hasIce || s->dtlsSession != nullptr;  // also when only strict-source/media-handover changed: learnSettled depends on them
      if (s->bundledAway && !(c.rule.bundle && c.rule.bundle->transport != s->id) && s->ioFd >= 0) {
        // No longer bundled on another stream's transport: its own socket is read again.
        s->bundledAway = false;
        epoll_event ev{};
        ev.events = EPOLLIN | EPOLLET;
        ev.data.ptr = s;
        epoll_ctl(epfd_, EPOLL_CTL_ADD, s->ioFd, &ev);
      }
      s->appliedGen.fetch_add(1, std::memory_order_acq_rel);
      break;
    }
    case CommandType::SetSink:
      setSink(s, c.sink);
      break;
    case CommandType::SetDtlsSources:
      s->dtlsInSource = c.dtlsInSource;
      s->dtlsOutSource = c.dtlsOutSource;
      break;
    case CommandType::SetRecording:
      s->rec = c.rec;
      break;
    case CommandType::Fence:
    case CommandType::KernelRevoke:  // taken back above
      break;
    case CommandType::PlayDtmf:
      *c.playOut = queueDtmf(s, c.play);
      break;
    case CommandType::SetBundle:
      setBundle(s, c.bundle.get());
      break;
    case CommandType::ReadQuality:
      c.qualityOut->rtp = s->rtpStats;
      c.qualityOut->rtcp = s->quality.rtcp.f;
      break;
    case CommandType::Detach:
      if (kernel_ && s->kernelSlot > 0) kernel_->remove(kernelFds(), s->local);
      collectDrops(s);  // the last drops before the socket goes
      if (s->dtlsSession) {
        // close_notify to the party while the socket is still ours.
        s->dtlsSession->close();
        dtlsProgress(s);
        s->dtlsSession.reset();
      }
      if (s->inDtlsList) dtlsStreams_.erase(std::remove(dtlsStreams_.begin(), dtlsStreams_.end(), s), dtlsStreams_.end());
      s->inDtlsList = false;
      s->demuxControl = false;
      setBundle(s, nullptr);  // a transport going first: its members read their own sockets again
      if (s->ioFd >= 0) epoll_ctl(epfd_, EPOLL_CTL_DEL, s->ioFd, nullptr);
      releaseFd(s->fd);
      s->ioFd = -1;
      setSink(s, nullptr);
      if (s->muxParent && s->muxParent->muxRtcp == s) s->muxParent->muxRtcp = nullptr;
      if (s->muxRtcp) s->muxRtcp->muxParent = nullptr;
      s->muxRtcp = nullptr;
      s->muxParent = nullptr;
      s->rec = nullptr;
      setCrypto(s, nullptr, nullptr, false);
      setDtlsCrypto(s, -1, -1, SrtpProgress{}, SrtpProgress{});
      s->dtlsInSource = nullptr;
      s->dtlsOutSource = nullptr;
      if (s->inIceList) iceStreams_.erase(std::remove(iceStreams_.begin(), iceStreams_.end(), s), iceStreams_.end());
      s->inIceList = false;
      windows_.erase(std::remove(windows_.begin(), windows_.end(), s), windows_.end());
      if (s->inActive) active_.erase(std::remove(active_.begin(), active_.end(), s), active_.end());
      s->inActive = false;
      if (s->inBacklog) backlog_.erase(std::remove(backlog_.begin(), backlog_.end(), s), backlog_.end());
      s->inBacklog = false;
      injecting_.erase(std::remove(injecting_.begin(), injecting_.end(), s), injecting_.end());
      break;
  }
}

void IoThread::emit(EventType type, const Stream* s, const SockAddr& a) {
  pendingEvents_.push_back(EngineEvent{type, s->id, a, nowWall_});
}

void IoThread::observeDtmf(Stream* t, const uint8_t* p, size_t len, const SockAddr& from) {
  DtmfEvent ev;
  if (!dtmfOnPacket(t->dtmf, p, len, t->rule.clockRate, ev)) return;
  EngineEvent e{EventType::Dtmf, t->id, from, nowWall_};
  e.dtmf = ev;
  pendingEvents_.push_back(e);
}

void IoThread::flushEvents(bool force) {
  if (pendingEvents_.empty()) return;
  if (!force && nowMono_ - lastEventFlushMs_ < kEventFlushMs) return;
  lastEventFlushMs_ = nowMono_;
  std::vector<EngineEvent> batch;
  batch.swap(pendingEvents_);
  pendingEvents_.reserve(256);
  if (events_) events_(std::move(batch));
}

void IoThread::handleTimers() {
  for (size_t i = 0; i < windows_.size();) {
    Stream* s = windows_[i];
    LearnOutcome lo = learnOnTimer(s->learn, nowMono_);
    if (lo.event == LearnEvent::Learned) {
      s->publishEndpoint();
      emit(EventType::Learned, s, s->learn.current);
    }
    if (!s->learn.inWindow) {
      windows_[i] = windows_.back();
      windows_.pop_back();
    } else {
      ++i;
    }
  }
  if (!injecting_.empty()) runInjections();
  scanIdle();
  if (!iceStreams_.empty()) checkIceConsent();
  if (!dtlsStreams_.empty()) checkDtls();
  flushEvents(false);
}

void IoThread::collectDrops(Stream* s) {
  // The kernel's per-socket drop counter (receive queue full, bad checksum), read here rather than from an
  // SO_RXQ_OVFL control message on every receive: that cost ~25 ns a packet in __sock_recv_cmsgs.
  if (s->ioFd < 0) return;
  uint32_t mem[SK_MEMINFO_VARS];
  socklen_t len = sizeof(mem);
  if (getsockopt(s->ioFd, SOL_SOCKET, SO_MEMINFO, mem, &len) != 0 || len <= SK_MEMINFO_DROPS * sizeof(uint32_t))
    return;
  uint32_t drops = mem[SK_MEMINFO_DROPS];
  if (drops != s->lastDrops) {
    totals_.dropped.add(uint32_t(drops - s->lastDrops));
    s->lastDrops = drops;
  }
}

void IoThread::scanIdle() {
  // Each active stream is visited once per kIdleScanMs, a slice per loop round in proportion to the time
  // that passed. Visiting all of them at once cost ~1.5 ms at 1000 calls (a SO_MEMINFO call and a cache miss
  // each), and at full load a stall is never made up: it stays in every packet's latency.
  const int64_t elapsed = nowMono_ - lastIdleScanMs_;
  if (elapsed <= 0) return;
  lastIdleScanMs_ = nowMono_;
  size_t budget = size_t((int64_t(active_.size()) * std::min(elapsed, kIdleScanMs) + kIdleScanMs - 1) / kIdleScanMs);
  while (budget-- > 0 && !active_.empty()) {
    if (scanPos_ >= active_.size()) scanPos_ = 0;
    Stream* s = active_[scanPos_];
    collectDrops(s);
    if (s->inKernel) kernelRefresh(s);
    if (nowWall_ - s->lastPacketMs.load(std::memory_order_relaxed) < kStreamIdleMs) {
      ++scanPos_;
      continue;
    }
    if (s->inKernel) kernelTakeBack(s);  // media that resumes comes up first (the `resumed` event)
    emit(EventType::Idle, s, s->learn.current);
    s->inActive = false;
    s->wentIdle = true;
    active_[scanPos_] = active_.back();  // the stream moved here is visited next
    active_.pop_back();
  }
}

void IoThread::countSrtpFailure(Stream* t, SrtpResult r) {
  t->errors.add(1);
  totals_.errors.add(1);
  if (r == SrtpResult::AuthFailed) t->srtpAuthFailed.add(1);
  else if (r == SrtpResult::Replayed) t->srtpReplayed.add(1);
  else if (r == SrtpResult::Malformed) totals_.malformed.add(1);
}

void IoThread::record(Recording* rec, const SockAddr& src, const SockAddr& dst, const uint8_t* p, size_t len) {
  if (!ring_ || !src.valid() || !dst.valid() || src.family() != dst.family()) {
    rec->dropped.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  if (!recordTimeValid_) {
    // One precise clock read per receive batch, and only in batches that record something.
    gettimeofday(&recordTime_, nullptr);
    recordTimeValid_ = true;
  }
  const size_t size = pcapRecordSize(rec->link, src.family(), len);
  uint8_t* slot = ring_->reserve(size);
  if (!slot) {
    rec->dropped.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  buildPcapRecord(slot, rec->link, src, dst, p, len, recordTime_);
  ring_->commit(rec, size);
  rec->queued.fetch_add(1, std::memory_order_relaxed);
}

int64_t IoThread::batchArrival() {
  // One precise clock read per receive batch that needs it: packets of a batch arrived together, and the
  // coarse clock's 4 ms ticks are far too rough for jitter.
  if (batchArrivalUs_ == 0) {
    timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    batchArrivalUs_ = int64_t(ts.tv_sec) * 1000000 + ts.tv_nsec / 1000;
  }
  return batchArrivalUs_;
}

bool IoThread::parseRtcpOf(Stream* t, const uint8_t* p, size_t len, RtcpSummary& summary) {
  if (parseRtcp(p, len, summary) == RtcpError::None) return true;
  ++t->quality.rtcp.f.malformed;
  t->errors.add(1);
  totals_.errors.add(1);
  totals_.malformed.add(1);
  return false;
}

uint32_t IoThread::batchArrivalOnSlow(uint32_t clockRate) {
  batchClock_ = clockRate;
  batchArrivalTs_ = rtpClockAt(batchArrival(), clockRate);
  return batchArrivalTs_;
}

int64_t IoThread::nowWallPrecise() const {
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return int64_t(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

void IoThread::flushSendsRest(int fd, int count, int r) {
  // `r`: what sendmmsg returned for the whole run (not `count`: a partial send or an error).
  int off = 0;
  for (;;) {
    if (r > 0) {
      off += r;
    } else if (r < 0 && errno == EINTR) {
    } else if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOBUFS)) {
      // Send queue full: drop the rest of this run, count it, and carry on with the next batch.
      totals_.dropped.add(uint64_t(count - off));
      return;
    } else {
      // A per-destination failure (unreachable, wrong family): lose that packet only.
      totals_.dropped.add(1);
      ++off;
    }
    if (off >= count) return;
    r = sysSendmmsg(fd, &smsgs_[off], unsigned(count - off));
  }
}

inline void IoThread::flushSends(int fd, int count) {
  const int r = sysSendmmsg(fd, smsgs_.data(), unsigned(count));
  if (__builtin_expect(r != count, 0)) flushSendsRest(fd, count, r);
}

void IoThread::resetReceiveHeaders(mmsghdr* msgs, int used) {
  // The kernel wrote back the name length of the first `used` messages only, so only those need their room
  // restored (resetting all 64 per call showed up when most calls read one packet). Without a name buffer
  // (ranon_) it writes none, and msg_flags is output only (recvmsg never reads it): nothing to restore.
  if (msgs[0].msg_hdr.msg_name == nullptr) return;
  for (int i = 0; i < used; ++i) msgs[i].msg_hdr.msg_namelen = sizeof(rnames_[i].u);
}

/** The source address is needed while learning, for events that carry it and for recording. */
static bool needsSourceAddress(const Stream* x) {
  const Stream* m = x->muxRtcp;
  return !x->learnSettled || x->demuxControl || !x->seenFirst || x->rec || x->wentIdle ||
         (m && (!m->seenFirst || m->rec || m->wentIdle));
}

bool IoThread::drain(Stream* x) {
  for (int round = 0; round < kMaxRoundsPerWakeup; ++round) {
    // Commands queued without a wake-up (Engine::fence) take effect before any packet read after them: an ng
    // reply leaves once its commands are queued, so whatever the reply made a party send meets the new rule.
    // They may detach `x` (the stream stays allocated until this round's acknowledgements: see run()).
    if (hasCommands()) runCommands(true);
    if (x->ioFd < 0) return false;
    // A settled stream skips the source address (the kernel then copies none out: ~30 ns a packet at 1000 calls).
    const bool named = needsSourceAddress(x);
    mmsghdr* msgs = named ? rmsgs_.data() : ranon_.data();
    int n = sysRecvmmsg(x->ioFd, msgs, kBatch);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return false;  // drained
    // Any other error (a pending socket error, EINTR, ENOMEM) is consumed by this call; the queue may still
    // hold packets, and with edge-triggered epoll nobody would say so: try again next round.
    if (n <= 0) {
      resetReceiveHeaders(msgs, 1);
      return true;
    }
    // Queued while recvmmsg ran: such a packet may already answer the reply those commands preceded.
    if (hasCommands()) {
      runCommands(true);
      if (x->ioFd < 0) {  // detached: its packets go with it
        resetReceiveHeaders(msgs, n);
        return false;
      }
      if (!named && needsSourceAddress(x)) {
        // Now learning from packets that came without their source (a re-signalled stream in the microseconds
        // between the two looks): they cannot be judged, so they are counted and dropped.
        x->errors.add(uint64_t(n));
        totals_.errors.add(uint64_t(n));
        if (kernel_) x->socketReads += uint64_t(n);  // read from the socket all the same (kernel_handover.cpp)
        resetReceiveHeaders(msgs, n);
        continue;
      }
    }
    recordTimeValid_ = false;
    // The arrival clock is read again once kPacketsPerClock packets were handled with the last reading: with
    // one-packet batches (many calls) a reading per batch was one clock_gettime per packet.
    packetsSinceClock_ += n;
    if (packetsSinceClock_ > kPacketsPerClock) {
      batchArrivalUs_ = 0;
      batchClock_ = 0;
      packetsSinceClock_ = n;
    }

    int pending = 0;
    int pendingFd = -1;
    // The current run's destination, loaded once per run straight into the name every send slot points at:
    // no SockAddr is built or copied per batch or per packet.
    const SockAddr& dest = runDest_;
    RtcpSummary& rtcpSummary = rtcpSummary_;  // filled per RTCP packet (parseRtcp resets it)
    for (int i = 0; i < n; ++i) {
      msghdr& h = msgs[i].msg_hdr;
      uint8_t* p = bufs_.data() + size_t(i) * kSlotStride;
      size_t len = msgs[i].msg_len;

      SockAddr& src = rnames_[i];
      src.len = named ? h.msg_namelen : 0;
      Stream* t = x;
      bool isRtp = false;
      bool opaque = false;  // STUN/DTLS passed through to the sink as it came (rule.forwardIceDtls)
      bool bad = (h.msg_flags & MSG_TRUNC) != 0;
      if (!bad) {
        if (x->isRtcp) {
          bad = !validRtcp(p, len);
        } else if (looksLikeRtcp(p, len)) {
          if (x->muxRtcp) {
            t = x->muxRtcp;
            bad = !validRtcp(p, len);
          } else {
            // Stray RTCP on an RTP port without rtcp-mux: ignored, as rtpengine does; counted as an error.
            x->errors.add(1);
            totals_.errors.add(1);
            continue;
          }
        } else {
          isRtp = true;
          // Under SRTP the last byte is the tag, not the padding count: padding is checked after decryption.
          bad = !validRtp(p, len, !x->hasCrypto || x->srtpIn == nullptr);
        }
      }
      if (bad) {
        // RFC 7983: a first byte 0..3 is STUN. RTP/RTCP (128..191) never gets here, so plain streams pay nothing.
        if (x->demuxControl && len > 0 && p[0] < 64) {
          const bool truncated = (h.msg_flags & MSG_TRUNC) != 0;
          if (p[0] < 4 && x->hasIce) {
            onStun(x, p, len, src, truncated);
            continue;
          }
          if (p[0] >= 20 && x->dtlsSession) {
            onDtls(x, p, len, src, truncated);
            continue;
          }
        }
        // ICE/DTLS pass-through: the parties run ICE and DTLS with each other through the relay; their STUN
        // (0..3) and DTLS (20..63) are learned from and forwarded like media, never read.
        opaque = x->rule.forwardIceDtls && (h.msg_flags & MSG_TRUNC) == 0 && len > 0 && (p[0] < 4 || (p[0] >= 20 && p[0] < 64));
        if (!opaque) {
          t->errors.add(1);
          totals_.errors.add(1);
          totals_.malformed.add(1);
          continue;
        }
      }

      // SRTP/SRTCP from this party: authenticate and decrypt in place before anything else looks at the packet,
      // so a forged or replayed packet can neither move the learned endpoint nor reach the other party.
      const size_t wireLen = len;
      SrtpContext* in = nullptr;
      if (t->hasCrypto && !opaque) {
        // DTLS-SRTP: no keys before the handshake finished; nothing is decrypted (or passed on) until then.
        if ((t->hasCrypto & kCryptoDtlsIn) && !refreshDtlsIn(t)) {
          t->errors.add(1);
          totals_.errors.add(1);
          continue;
        }
        in = t->srtpIn;
      }
      if (in && !t->srtpPassThrough) {
        size_t plainLen = 0;
        SrtpResult r = isRtp ? in->unprotectRtp(p, len, &plainLen) : in->unprotectRtcp(p, len, &plainLen);
        if (r != SrtpResult::Ok) {
          countSrtpFailure(t, r);
          continue;
        }
        len = plainLen;
        if (isRtp && !validRtp(p, len, true)) {
          t->errors.add(1);
          totals_.errors.add(1);
          totals_.malformed.add(1);
          continue;
        }
      }

      // BUNDLE: the packet belongs to one of the transport's m= lines (its member stream from here on).
      if (x->bundleDemux) {
        Stream* member = bundleTarget(x, t, p, len, isRtp);
        if (!member) {
          x->bundleUnmatched.add(1);
          x->errors.add(1);
          totals_.errors.add(1);
          continue;
        }
        t = member;
      }

      // RTCP feeds the stream's call-quality figures; a compound that does not parse is counted and dropped
      // before it can move the learned endpoint. The figures are taken only once learning accepted the packet.
      bool readRtcp = false;
      // SRTCP passed through (both parties share the keys) leaves as it came; the figures are read from a
      // decrypted copy in scratch_, which recording below uses too (decrypting twice would be a replay).
      size_t passPlainLen = 0;
      bool passDecrypted = false;
      if (!isRtp && !opaque) {
        if (in && t->srtpPassThrough) {
          std::memcpy(scratch_.data(), p, len);
          passDecrypted = in->unprotectRtcp(scratch_.data(), len, &passPlainLen) == SrtpResult::Ok;
          readRtcp = passDecrypted;
          if (readRtcp && !parseRtcpOf(t, scratch_.data(), passPlainLen, rtcpSummary)) continue;
        } else {
          readRtcp = true;
          if (!parseRtcpOf(t, p, len, rtcpSummary)) continue;
        }
      }

      // Learning state belongs to the socket's party (for rtcp-mux that is the RTP stream).
      if (!x->learnSettled) {
        LearnOutcome lo = learnFromPacket(x->learn, x->rule, src, nowMono_);
        if (lo.endpointChanged || lo.event != LearnEvent::None) x->publishEndpoint();
        if (x->learn.inWindow && std::find(windows_.begin(), windows_.end(), x) == windows_.end())
          windows_.push_back(x);
        if (lo.event == LearnEvent::Learned) emit(EventType::Learned, x, x->learn.current);
        else if (lo.event == LearnEvent::SourceChanged) emit(EventType::SourceChanged, x, x->learn.current);
        if (!lo.accept) {
          t->errors.add(1);
          totals_.errors.add(1);
          continue;
        }
      }

      t->packets.add(1);
      t->bytes.add(wireLen);
      t->lastPacketMs.store(nowWall_, std::memory_order_relaxed);
      if (readRtcp) {
        // The other party's SRs arrive on the stream this one forwards to (its sink).
        const RtcpQuality* peer = t->sink ? &t->sink->quality.rtcp : nullptr;
        qualityOnRtcp(t->quality.rtcp, peer, rtcpSummary, batchArrival(), nowWallPrecise(), t->rule.clockRate);
      }
      if (isRtp) {
        uint32_t w[3];  // the header's first three words, read once for both uses
        std::memcpy(w, p, 12);
        const uint16_t seq = uint16_t(__builtin_bswap32(w[0]));
        const uint32_t ssrc = __builtin_bswap32(w[2]);
        t->rtpState.store((uint64_t(1) << 48) | (uint64_t(seq) << 32) | ssrc, std::memory_order_relaxed);
        const uint32_t clock = t->rule.clockRate;
        qualityOnRtp(t->rtpStats, seq, __builtin_bswap32(w[1]), ssrc, batchArrivalOn(clock), clock);
      }
      if (!t->seenFirst) {
        t->seenFirst = true;
        emit(EventType::FirstPacket, t, src);
      }
      if (!t->inActive) {
        t->inActive = true;
        active_.push_back(t);
        if (t->wentIdle) {
          t->wentIdle = false;
          emit(EventType::Resumed, t, src);
        }
      }
      totals_.packets.add(1);
      totals_.bytes.add(wireLen);
      // Recording sees each accepted packet as it arrived (party -> relay socket), decrypted. Under
      // pass-through the forwarded bytes stay encrypted, so a decrypted copy is made for the pcap only.
      Recording* rec = t->rec;
      const uint8_t* plain = p;
      size_t plainLen = len;
      if (rec && !opaque) {
        if (in && t->srtpPassThrough) {
          if (isRtp) {
            std::memcpy(scratch_.data(), p, len);
            plain = in->unprotectRtp(scratch_.data(), len, &plainLen) == SrtpResult::Ok ? scratch_.data() : nullptr;
          } else {
            // RTCP's copy was decrypted above, for its figures (once: a second attempt would be a replay).
            plain = passDecrypted ? scratch_.data() : nullptr;
            plainLen = passPlainLen;
          }
        }
        if (plain) record(rec, src, x->local, plain, plainLen);
      }

      // DTMF events are reported, then dropped under `block DTMF` (or, with DTMF-security zero/DTMF/random,
      // forwarded with another digit). block/silence media: received and counted as usual, then dropped or
      // muted before it leaves (under SRTP pass-through the payload is ciphertext and cannot be changed).
      if (isRtp) {
        if ((p[1] & 0x7f) == t->dtmfPt) {
          observeDtmf(t, p, len, x->learn.current);
          if (t->dtmfBlocked) {
            if (t->dtmfReplace < 0 || (in && t->srtpPassThrough)) continue;
            dtmfReplaceEvent(t->dtmf, p, len, t->dtmfReplace);
          }
        }
        if (t->rtpAltered) {
          if (t->mediaBlocked) continue;
          if (t->mediaSilenced && !(in && t->srtpPassThrough)) silenceRtpPayload(p, len);
          // play DTMF: the party's packets give way while an event plays, and afterwards follow the injected
          // packets' sequence numbers (before SRTP protection, so the outbound context sees the shifted ones).
          if (t->dtmfInjecting) {
            ++t->inject.suppressed;
            --t->seqShift;
            continue;
          }
          const uint16_t seq = uint16_t(((p[2] << 8) | p[3]) + t->seqShift);
          p[2] = uint8_t(seq >> 8);
          p[3] = uint8_t(seq);
        }
      }

      Stream* out = t->sink;
      const int outFd = t->sinkFd;  // this thread's descriptor of out's socket
      if (!out || outFd < 0) continue;
      if (outFd != pendingFd) {
        if (pending > 0) flushSends(pendingFd, pending);
        pending = 0;
        pendingFd = outFd;
        out->endpoint.loadInto(runDest_);
      }
      if (!dest.valid()) continue;  // the receiving party's address is not known yet
      if (rec && rec->egress && plain && !opaque) record(rec, out->local, dest, plain, plainLen);  // --record-egress
      // Towards an SRTP party: encrypt in place with its keys (the receive slot has room for the trailer).
      SrtpContext* eg = nullptr;
      if (t->hasCrypto && !opaque) {
        if ((t->hasCrypto & kCryptoDtlsOut) && !refreshDtlsOut(t, out)) {
          t->errors.add(1);
          totals_.errors.add(1);
          continue;
        }
        eg = t->srtpOut;
      }
      if (eg && !t->srtpPassThrough) {
        size_t protLen = 0;
        SrtpResult r = isRtp ? eg->protectRtp(p, len, kBufSize, &protLen) : eg->protectRtcp(p, len, kBufSize, &protLen);
        if (r != SrtpResult::Ok) {
          countSrtpFailure(t, r);
          continue;
        }
        len = protLen;
      }
      smsgs_[pending].msg_hdr.msg_namelen = dest.len;
      siov_[pending].iov_base = const_cast<uint8_t*>(p);
      siov_[pending].iov_len = len;
      ++pending;
    }
    if (pending > 0) flushSends(pendingFd, pending);
    resetReceiveHeaders(msgs, n);
    // Settled and nothing here needs its packets: the kernel forwards from the next one on; what queued before
    // is read and sent first (the next round), so the order stays.
    if (kernel_) {
      x->socketReads += uint64_t(n);  // only the kernel path's hand-over compares it (kernel_handover.cpp)
      if (x->inKernel) kernelConsumed(x);
      else if (kernelHandOver(x)) continue;
    }
    // A short batch means recvmmsg met an empty queue (MSG_DONTWAIT stops at the first EAGAIN); a packet that
    // arrives after that raises a new edge.
    if (n < kBatch) return false;
  }
  return true;  // the round limit cut it off: it may still hold data
}

}  // namespace ngrelay
