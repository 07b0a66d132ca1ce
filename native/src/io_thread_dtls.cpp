// DTLS-SRTP on an I/O thread: each stream with rule.dtls runs its handshake here, on its owner thread
// (datagrams from IoThread::drain's slow path, retransmissions from the loop's timer), and publishes the
// negotiated keys as an immutable DtlsSrtpMaterial. Streams that need them (its own inbound, its muxed RTCP
// stream, and streams on any thread that forward to it) make their own SRTP contexts from the published
// keys when they see a new set: no context is shared between threads.
#include <sys/socket.h>

#include <algorithm>
#include <cstring>
#include <stdexcept>

#include "io_thread.hpp"

namespace ngrelay {

namespace {

/** The status JS reads (readCounters), copied under the stream's mutex. */
void publishStatus(Stream* s) {
  std::lock_guard<std::mutex> g(s->dtlsStatusMutex);
  const DtlsSession* d = s->dtlsSession.get();
  s->dtlsActive = s->rule.dtls && s->rule.dtls->active;
  if (!d) return;
  // Restored keys stand for a finished handshake until the party starts a new one.
  s->dtlsState = s->dtlsRestored && d->state() == DtlsSessionState::New ? DtlsSessionState::Connected : d->state();
  if (s->dtlsRestored && d->state() == DtlsSessionState::New) return;
  if (!d->profile().empty()) s->dtlsProfile = d->profile();
  s->dtlsPeerFingerprint = d->peerFingerprint();
  s->dtlsError = d->error();
}

}  // namespace

void IoThread::setDtlsCrypto(Stream* s, int32_t inOf, int32_t outOf, const SrtpProgress& inResume,
                             const SrtpProgress& outResume) {
  s->dtlsInWanted = inOf >= 0;
  s->dtlsOutWanted = outOf >= 0;
  s->dtlsInResume = inResume;
  s->dtlsOutResume = outResume;
  // Contexts made from published keys survive a rule update; the packet path re-checks them against the keys.
  if (s->dtlsInWanted) s->srtpIn = s->dtlsInCtx.get();
  else {
    replaceDtlsCtx(s, true, nullptr);
    s->dtlsInFrom = nullptr;
  }
  if (s->dtlsOutWanted) s->srtpOut = s->dtlsOutCtx.get();
  else {
    replaceDtlsCtx(s, false, nullptr);
    s->dtlsOutFrom = nullptr;
  }
  if (s->dtlsInWanted || s->dtlsOutWanted) s->srtpPassThrough = false;
  s->hasCrypto = uint8_t((s->srtpIn || s->srtpOut ? kCryptoKeys : 0) | (s->dtlsInWanted ? kCryptoDtlsIn : 0) |
                         (s->dtlsOutWanted ? kCryptoDtlsOut : 0));
}

void IoThread::replaceDtlsCtx(Stream* t, bool inbound, const DtlsSrtpMaterial* keys) {
  std::unique_ptr<SrtpContext>& ctx = inbound ? t->dtlsInCtx : t->dtlsOutCtx;
  std::atomic<const SrtpContext*>& pub = inbound ? t->dtlsInPub : t->dtlsOutPub;
  pub.store(nullptr, std::memory_order_release);
  // The JS thread may still read the old one's progress: it lives on with the stream (a new handshake is rare).
  if (ctx) t->dtlsRetired.push_back(std::move(ctx));
  if (!keys) return;
  SrtpParams p = keys->params(!inbound);  // inbound: the party's write keys; outbound: the relay's
  if (keys->restored) p.resume = inbound ? t->dtlsInResume : t->dtlsOutResume;
  ctx = SrtpContext::create(p, nullptr);
  pub.store(ctx.get(), std::memory_order_release);
}

bool IoThread::refreshDtlsIn(Stream* t) {
  // A muxed RTCP stream's handshake is its RTP stream's; with a socket per address, the media's (dtlsInSource).
  const Stream* source = t->dtlsInSource ? t->dtlsInSource : t->muxParent ? t->muxParent : t;
  const DtlsSrtpMaterial* keys = source->dtlsKeys.load(std::memory_order_acquire);
  if (!keys) return false;
  if (keys != t->dtlsInFrom) {
    replaceDtlsCtx(t, true, keys);
    t->dtlsInFrom = keys;
  }
  t->srtpIn = t->dtlsInCtx.get();
  return t->srtpIn != nullptr;
}

bool IoThread::refreshDtlsOut(Stream* t, const Stream* sink) {
  const Stream* source = t->dtlsOutSource ? t->dtlsOutSource : sink;
  const DtlsSrtpMaterial* keys = source ? source->dtlsKeys.load(std::memory_order_acquire) : nullptr;
  if (!keys) return false;
  if (keys != t->dtlsOutFrom) {
    replaceDtlsCtx(t, false, keys);
    t->dtlsOutFrom = keys;
  }
  t->srtpOut = t->dtlsOutCtx.get();
  return t->srtpOut != nullptr;
}

void IoThread::applyDtls(Stream* s, const Rule& old, bool attached) {
  const DtlsConfig* now = s->rule.dtls.get();
  const DtlsConfig* before = attached ? nullptr : old.dtls.get();
  if (!now || s->ioFd < 0 || !dtlsIdentity_) {
    // No DTLS (or a muxed RTCP stream: its RTP stream's socket runs the handshake).
    if (s->dtlsSession) {
      s->dtlsSession->close();
      dtlsProgress(s);
      s->dtlsSession.reset();
    }
    if (s->inDtlsList) dtlsStreams_.erase(std::remove(dtlsStreams_.begin(), dtlsStreams_.end(), s), dtlsStreams_.end());
    s->inDtlsList = false;
    return;
  }
  const bool same = s->dtlsSession && before && before->generation == now->generation && before->active == now->active;
  if (same) return;
  // A new generation (or role) starts a new handshake; the keys published so far stay in use until it ends.
  try {
    s->dtlsSession = std::make_unique<DtlsSession>(*dtlsIdentity_, *now);
  } catch (const std::exception& e) {
    s->dtlsSession.reset();
    std::lock_guard<std::mutex> g(s->dtlsStatusMutex);
    s->dtlsState = DtlsSessionState::Failed;
    s->dtlsError = e.what();
    return;
  }
  s->dtlsReported = -1;
  s->dtlsPeer = SockAddr();
  s->dtlsRestored = false;
  if (now->restored) {
    // A restart: this generation's handshake was done before it. Its keys are the stream's at once, and the
    // party, which never noticed the restart, sees no new handshake.
    auto keys = std::make_unique<DtlsSrtpMaterial>(*now->restored);
    keys->restored = true;
    s->dtlsKeys.store(keys.get(), std::memory_order_release);
    s->dtlsHistory.push_back(std::move(keys));
    s->dtlsRestored = true;
    s->dtlsReported = int8_t(DtlsSessionState::New);  // no 'dtls' event: nothing was negotiated now
  }
  if (!s->inDtlsList) {
    dtlsStreams_.push_back(s);
    s->inDtlsList = true;
  }
  {
    std::lock_guard<std::mutex> g(s->dtlsStatusMutex);
    s->dtlsProfile = now->restored ? now->restored->profileName : std::string();
    s->dtlsError.clear();
    s->dtlsPeerFingerprint = now->restored ? now->restoredPeerFingerprint : std::string();
  }
  publishStatus(s);
  startDtlsIfReady(s);
}

void IoThread::onDtls(Stream* x, const uint8_t* p, size_t len, const SockAddr& src, bool truncated) {
  DtlsSession* d = x->dtlsSession.get();
  if (truncated || !src.valid()) {
    x->errors.add(1);
    totals_.errors.add(1);
    totals_.malformed.add(1);
    return;
  }
  // With ICE, DTLS is taken only from the selected pair (a stranger cannot start or spoil the handshake), and
  // the answers go there; without ICE, they go to where the party's DTLS comes from.
  if (x->hasIce && (!x->iceSelected.valid() || !src.sameEndpoint(x->iceSelected))) {
    x->errors.add(1);
    totals_.errors.add(1);
    return;
  }
  if (!x->hasIce && !d->active() && !d->started()) {
    listenDtls(x, p, len, src);
    return;
  }
  // Passive without ICE: the cookie exchange proved the party's address; DTLS from anywhere else is not let
  // into its handshake (a stranger can neither restart nor spoil it).
  if (!x->hasIce && !d->active() && x->dtlsPeer.valid() && !src.sameEndpoint(x->dtlsPeer)) {
    x->errors.add(1);
    totals_.errors.add(1);
    return;
  }
  if (!x->hasIce) x->dtlsPeer = src;
  d->onDatagram(p, len, nowMono_);
  dtlsProgress(x);
}

void IoThread::listenDtls(Stream* x, const uint8_t* p, size_t len, const SockAddr& src) {
  // The cookie is made for the source's family, port and address (RFC 6347 §4.2.1).
  uint8_t subject[2 + 2 + 16];
  size_t n = 4;
  subject[0] = uint8_t(src.family() >> 8);
  subject[1] = uint8_t(src.family());
  subject[2] = uint8_t(src.port() >> 8);
  subject[3] = uint8_t(src.port());
  if (src.family() == AF_INET) {
    std::memcpy(subject + n, &src.u.v4.sin_addr, 4);
    n += 4;
  } else {
    std::memcpy(subject + n, &src.u.v6.sin6_addr, 16);
    n += 16;
  }
  DtlsSession* d = x->dtlsSession.get();
  const bool verified = d->listen(p, len, subject, n, nowMono_) == DtlsSession::Listen::Verified;
  if (!verified) {
    // A HelloVerifyRequest goes back to the sender only; nothing about the stream changes.
    uint8_t out[kBufSize];
    for (size_t m; (m = d->takeOutput(out, sizeof(out))) > 0;)
      if (x->ioFd < 0 || ::sendto(x->ioFd, out, m, MSG_DONTWAIT, &src.u.sa, src.len) < 0) totals_.dropped.add(1);
    return;
  }
  x->dtlsPeer = src;
  dtlsProgress(x);
}

void IoThread::dtlsProgress(Stream* x) {
  DtlsSession* d = x->dtlsSession.get();
  if (!d) return;
  const SockAddr to = x->dtlsPeer.valid() ? x->dtlsPeer : x->learn.current;
  uint8_t out[kBufSize];
  for (;;) {
    size_t n = d->takeOutput(out, sizeof(out));
    if (n == 0) break;
    if (!to.valid() || x->ioFd < 0 || ::sendto(x->ioFd, out, n, MSG_DONTWAIT, &to.u.sa, to.len) < 0)
      totals_.dropped.add(1);
  }
  const DtlsSessionState st = d->state();
  if (int8_t(st) == x->dtlsReported) return;
  const bool finished = st == DtlsSessionState::Connected || st == DtlsSessionState::Failed;
  if (st == DtlsSessionState::Connected) {
    std::unique_ptr<DtlsSrtpMaterial> keys = d->takeMaterial();
    if (keys) {
      x->dtlsKeys.store(keys.get(), std::memory_order_release);
      x->dtlsHistory.push_back(std::move(keys));
    }
  }
  if (st == DtlsSessionState::Failed) {
    x->dtlsFailures.add(1);
    x->errors.add(1);
    totals_.errors.add(1);
  }
  publishStatus(x);
  if (finished) {
    EngineEvent e{EventType::Dtls, x->id, x->learn.current, nowWall_};
    e.dtlsOk = st == DtlsSessionState::Connected;
    e.dtlsProfile = d->profile();
    e.dtlsError = d->error();
    pendingEvents_.push_back(std::move(e));
  }
  x->dtlsReported = int8_t(st);
}

void IoThread::startDtlsIfReady(Stream* s) {
  DtlsSession* d = s->dtlsSession.get();
  if (!d || !d->active() || d->started() || s->dtlsRestored) return;
  // The ClientHello goes out once the party's address is known: ICE's selected pair, or else the current one.
  const bool known = s->hasIce ? s->iceSelected.valid() : s->learn.current.valid();
  if (!known) return;
  d->start(nowMono_);
  dtlsProgress(s);
}

void IoThread::checkDtls() {
  // Every 20 ms at most (under load a loop round is a few µs, and this visits every DTLS stream); the count of
  // handshakes in progress decides whether the loop's next wait is short.
  if (nowMono_ - lastDtlsTimerMs_ < 20) return;
  lastDtlsTimerMs_ = nowMono_;
  int busy = 0;
  for (Stream* s : dtlsStreams_) {
    DtlsSession* d = s->dtlsSession.get();
    if (!d) continue;
    if (d->active() && !d->started()) {
      startDtlsIfReady(s);
    } else if (d->state() == DtlsSessionState::Connecting) {
      d->onTimer(nowMono_, dtlsTimeoutMs_);
      dtlsProgress(s);
    }
    if (d->state() == DtlsSessionState::Connecting) ++busy;
  }
  dtlsBusy_ = busy;
}

}  // namespace ngrelay
