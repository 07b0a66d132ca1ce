// One I/O thread: its own epoll set, the sockets of the streams it owns, recvmmsg/sendmmsg batches.
// Rules change only through commands this thread runs between batches, so the hot path takes no lock.
#include <errno.h>
#include <pthread.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <string>
#include <system_error>

#include "engine.hpp"
#include "packet_check.hpp"

namespace ngrelay {

namespace {

constexpr size_t kCtlSize = 64;  // room for the SO_RXQ_OVFL control message
constexpr int kMaxRoundsPerWakeup = 4;  // batches per readable socket before giving others a turn
constexpr int64_t kEventFlushMs = 50;

int64_t clockMs(clockid_t clk) {
  timespec ts;
  clock_gettime(clk, &ts);
  return int64_t(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

}  // namespace

IoThread::IoThread(int index, const EventSink& sink) : index_(index), events_(sink) {
  epfd_ = epoll_create1(EPOLL_CLOEXEC);
  wakefd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (epfd_ < 0 || wakefd_ < 0) throw std::system_error(errno, std::generic_category(), "epoll/eventfd");
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.ptr = nullptr;  // nullptr marks the wake-up eventfd
  if (epoll_ctl(epfd_, EPOLL_CTL_ADD, wakefd_, &ev) != 0)
    throw std::system_error(errno, std::generic_category(), "epoll_ctl");

  bufs_.resize(size_t(kBatch) * kBufSize);
  rmsgs_.resize(kBatch);
  riov_.resize(kBatch);
  rnames_.resize(kBatch);
  rctl_.resize(size_t(kBatch) * kCtlSize);
  smsgs_.resize(kBatch);
  siov_.resize(kBatch);
  snames_.resize(kBatch);
  scratch_.resize(kBufSize);
  for (int i = 0; i < kBatch; ++i) {
    riov_[i].iov_base = &bufs_[size_t(i) * kBufSize];
    riov_[i].iov_len = kBufSize;
    std::memset(&rmsgs_[i], 0, sizeof(mmsghdr));
    rmsgs_[i].msg_hdr.msg_iov = &riov_[i];
    rmsgs_[i].msg_hdr.msg_iovlen = 1;
    rmsgs_[i].msg_hdr.msg_name = &rnames_[i].u;
    rmsgs_[i].msg_hdr.msg_control = &rctl_[size_t(i) * kCtlSize];
    std::memset(&smsgs_[i], 0, sizeof(mmsghdr));
    smsgs_[i].msg_hdr.msg_iov = &siov_[i];
    smsgs_[i].msg_hdr.msg_iovlen = 1;
    smsgs_[i].msg_hdr.msg_name = &snames_[i].u;
  }
  windows_.reserve(64);
  pendingEvents_.reserve(256);
}

IoThread::~IoThread() {
  stopAndJoin();
  if (epfd_ >= 0) ::close(epfd_);
  if (wakefd_ >= 0) ::close(wakefd_);
}

void IoThread::start() {
  running_.store(true);
  thread_ = std::thread([this] { run(); });
  // Visible in top/perf as ngrelay-io-N, which helps when pinning and profiling.
  std::string name = "ngrelay-io-" + std::to_string(index_);
  pthread_setname_np(thread_.native_handle(), name.c_str());
}

void IoThread::stopAndJoin() {
  if (!thread_.joinable()) return;
  running_.store(false);
  uint64_t one = 1;
  ssize_t w = write(wakefd_, &one, sizeof(one));
  (void)w;
  thread_.join();
}

void IoThread::submit(const Command& cmd) {
  {
    std::lock_guard<std::mutex> g(cmdMutex_);
    commands_.push_back(cmd);
  }
  uint64_t one = 1;
  ssize_t w = write(wakefd_, &one, sizeof(one));
  (void)w;
}

void IoThread::run() {
  epoll_event evs[kBatch];
  nowMono_ = clockMs(CLOCK_MONOTONIC);
  nowWall_ = clockMs(CLOCK_REALTIME);
  lastEventFlushMs_ = nowMono_ - kEventFlushMs;
  while (running_.load(std::memory_order_relaxed)) {
    int timeout = (pendingEvents_.empty() && windows_.empty()) ? 1000 : int(kEventFlushMs);
    int n = epoll_wait(epfd_, evs, kBatch, timeout);
    nowMono_ = clockMs(CLOCK_MONOTONIC_COARSE);
    nowWall_ = clockMs(CLOCK_REALTIME_COARSE);
    bool wake = false;
    for (int i = 0; i < n; ++i) {
      if (evs[i].data.ptr == nullptr) {
        wake = true;
        continue;
      }
      drain(static_cast<Stream*>(evs[i].data.ptr));
    }
    // Commands run only after every event of this round, so a detached stream is never touched again.
    if (wake) {
      uint64_t v;
      ssize_t r = read(wakefd_, &v, sizeof(v));
      (void)r;
      runCommands();
    }
    handleTimers();
  }
  // Anyone still waiting for an acknowledgement is released; the engine is going away.
  runCommands();
}

void IoThread::runCommands() {
  std::vector<Command> todo;
  {
    std::lock_guard<std::mutex> g(cmdMutex_);
    todo.swap(commands_);
  }
  nowMono_ = clockMs(CLOCK_MONOTONIC_COARSE);
  for (const Command& c : todo) {
    apply(c);
    if (c.done) c.done->done();
  }
}

static bool expectedChanged(const Rule& a, const Rule& b) {
  if (a.expected.valid() != b.expected.valid()) return true;
  return a.expected.valid() && !a.expected.sameEndpoint(b.expected);
}

void IoThread::apply(const Command& c) {
  Stream* s = c.stream;
  switch (c.type) {
    case CommandType::Attach: {
      s->rule = c.rule;
      s->sink = c.sink;
      s->srtpIn = c.srtpIn;
      s->srtpOut = c.srtpOut;
      s->srtpPassThrough = c.srtpPassThrough;
      s->learn.lastSignalMs = nowMono_;
      resetLearning(s->learn, s->rule);
      s->publishEndpoint();
      if (s->muxParent) s->muxParent->muxRtcp = s;
      if (s->fd >= 0) {
        epoll_event ev{};
        ev.events = EPOLLIN;  // level-triggered: a socket left with data is simply reported again
        ev.data.ptr = s;
        epoll_ctl(epfd_, EPOLL_CTL_ADD, s->fd, &ev);
      }
      break;
    }
    case CommandType::Update: {
      Rule old = s->rule;
      s->rule = c.rule;
      s->sink = c.sink;
      s->srtpIn = c.srtpIn;
      s->srtpOut = c.srtpOut;
      s->srtpPassThrough = c.srtpPassThrough;
      if (old.signalGeneration != c.rule.signalGeneration) s->learn.lastSignalMs = nowMono_;
      bool reset = expectedChanged(old, c.rule) || (c.rule.asymmetric && !old.asymmetric) ||
                   (c.rule.learning == Learning::Off && old.learning != Learning::Off);
      if (reset) {
        resetLearning(s->learn, s->rule);
        s->publishEndpoint();
        windows_.erase(std::remove(windows_.begin(), windows_.end(), s), windows_.end());
      }
      break;
    }
    case CommandType::SetSink:
      s->sink = c.sink;
      break;
    case CommandType::SetRecording:
      s->rec = c.rec;
      break;
    case CommandType::Detach:
      if (s->fd >= 0) epoll_ctl(epfd_, EPOLL_CTL_DEL, s->fd, nullptr);
      if (s->muxParent && s->muxParent->muxRtcp == s) s->muxParent->muxRtcp = nullptr;
      if (s->muxRtcp) s->muxRtcp->muxParent = nullptr;
      s->muxRtcp = nullptr;
      s->muxParent = nullptr;
      s->sink = nullptr;
      s->rec = nullptr;
      s->srtpIn = nullptr;
      s->srtpOut = nullptr;
      windows_.erase(std::remove(windows_.begin(), windows_.end(), s), windows_.end());
      if (s->inActive) active_.erase(std::remove(active_.begin(), active_.end(), s), active_.end());
      s->inActive = false;
      break;
  }
}

void IoThread::emit(EventType type, const Stream* s, const SockAddr& a) {
  pendingEvents_.push_back(EngineEvent{type, s->id, a, nowWall_});
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
  if (nowMono_ - lastIdleScanMs_ >= kIdleScanMs) {
    lastIdleScanMs_ = nowMono_;
    scanIdle();
  }
  flushEvents(false);
}

void IoThread::scanIdle() {
  for (size_t i = 0; i < active_.size();) {
    Stream* s = active_[i];
    if (nowWall_ - s->lastPacketMs.load(std::memory_order_relaxed) < kStreamIdleMs) {
      ++i;
      continue;
    }
    emit(EventType::Idle, s, s->learn.current);
    s->inActive = false;
    s->wentIdle = true;
    active_[i] = active_.back();
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

void IoThread::flushSends(int fd, int count) {
  int off = 0;
  while (off < count) {
    int r = sendmmsg(fd, &smsgs_[off], unsigned(count - off), MSG_DONTWAIT);
    if (r > 0) {
      off += r;
      continue;
    }
    if (r < 0 && errno == EINTR) continue;
    if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOBUFS)) {
      // Send queue full: drop the rest of this run, count it, and carry on with the next batch.
      totals_.dropped.add(uint64_t(count - off));
      return;
    }
    // A per-destination failure (unreachable, wrong family): lose that packet only.
    totals_.dropped.add(1);
    ++off;
  }
}

void IoThread::drain(Stream* x) {
  for (int round = 0; round < kMaxRoundsPerWakeup; ++round) {
    // Only the first message gets room for SO_RXQ_OVFL: the counter is cumulative per socket, so one reading
    // per batch counts every drop, and the kernel builds no control message for the other 63 (it showed as
    // ~2 % of the relay's CPU in a profile at 400k pps).
    for (int i = 0; i < kBatch; ++i) {
      rmsgs_[i].msg_hdr.msg_namelen = sizeof(rnames_[i].u);
      rmsgs_[i].msg_hdr.msg_controllen = i == 0 ? kCtlSize : 0;
      rmsgs_[i].msg_hdr.msg_flags = 0;
    }
    int n = recvmmsg(x->fd, rmsgs_.data(), kBatch, MSG_DONTWAIT, nullptr);
    if (n <= 0) return;  // EAGAIN (drained) or a transient error; epoll reports the socket again if needed
    nowWall_ = clockMs(CLOCK_REALTIME_COARSE);
    nowMono_ = clockMs(CLOCK_MONOTONIC_COARSE);
    recordTimeValid_ = false;

    int pending = 0;
    int pendingFd = -1;
    SockAddr dest;
    for (int i = 0; i < n; ++i) {
      msghdr& h = rmsgs_[i].msg_hdr;
      uint8_t* p = &bufs_[size_t(i) * kBufSize];
      size_t len = rmsgs_[i].msg_len;

      // Kernel receive-queue overflow counter (cumulative per socket).
      for (cmsghdr* cm = CMSG_FIRSTHDR(&h); cm; cm = CMSG_NXTHDR(&h, cm)) {
        if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SO_RXQ_OVFL) {
          uint32_t ovfl;
          std::memcpy(&ovfl, CMSG_DATA(cm), sizeof(ovfl));
          if (ovfl != x->lastOverflow) {
            totals_.dropped.add(uint32_t(ovfl - x->lastOverflow));
            x->lastOverflow = ovfl;
          }
        }
      }

      SockAddr& src = rnames_[i];
      src.len = h.msg_namelen;
      Stream* t = x;
      bool isRtp = false;
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
          bad = !validRtp(p, len, x->srtpIn == nullptr);
        }
      }
      if (bad) {
        t->errors.add(1);
        totals_.errors.add(1);
        totals_.malformed.add(1);
        continue;
      }

      // SRTP/SRTCP from this party: authenticate and decrypt in place before anything else looks at the packet,
      // so a forged or replayed packet can neither move the learned endpoint nor reach the other party.
      const size_t wireLen = len;
      SrtpContext* in = t->srtpIn;
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

      // Learning state belongs to the socket's party (for rtcp-mux that is the RTP stream).
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

      t->packets.add(1);
      t->bytes.add(wireLen);
      t->lastPacketMs.store(nowWall_, std::memory_order_relaxed);
      if (isRtp) {
        uint32_t ssrc = (uint32_t(p[8]) << 24) | (uint32_t(p[9]) << 16) | (uint32_t(p[10]) << 8) | p[11];
        uint64_t seq = (uint64_t(p[2]) << 8) | p[3];
        t->rtpState.store((uint64_t(1) << 48) | (seq << 32) | ssrc, std::memory_order_relaxed);
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
      if (rec && in && t->srtpPassThrough) {
        std::memcpy(scratch_.data(), p, len);
        SrtpResult r = isRtp ? in->unprotectRtp(scratch_.data(), len, &plainLen)
                             : in->unprotectRtcp(scratch_.data(), len, &plainLen);
        plain = r == SrtpResult::Ok ? scratch_.data() : nullptr;
      }
      if (rec && plain) record(rec, src, x->local, plain, plainLen);

      Stream* out = t->sink;
      if (!out || out->fd < 0) continue;
      if (out->fd != pendingFd) {
        flushSends(pendingFd, pending);
        pending = 0;
        pendingFd = out->fd;
        dest = out->endpoint.load();
      }
      if (!dest.valid()) continue;  // the receiving party's address is not known yet
      if (rec && rec->egress && plain) record(rec, out->local, dest, plain, plainLen);  // --record-egress
      // Towards an SRTP party: encrypt in place with its keys (the receive slot has room for the trailer).
      SrtpContext* eg = t->srtpOut;
      if (eg && !t->srtpPassThrough) {
        size_t protLen = 0;
        SrtpResult r = isRtp ? eg->protectRtp(p, len, kBufSize, &protLen) : eg->protectRtcp(p, len, kBufSize, &protLen);
        if (r != SrtpResult::Ok) {
          countSrtpFailure(t, r);
          continue;
        }
        len = protLen;
      }
      snames_[pending] = dest;
      smsgs_[pending].msg_hdr.msg_namelen = dest.len;
      siov_[pending].iov_base = const_cast<uint8_t*>(p);
      siov_[pending].iov_len = len;
      ++pending;
    }
    flushSends(pendingFd, pending);
    if (n < kBatch) return;
  }
}

}  // namespace ngrelay
