// The ICE-lite responder on an I/O thread (RFC 8445 lite side, RFC 7675 consent). STUN reaches it from
// IoThread::drain's slow path only (first byte 0..3 on a stream with rule.ice); decisions are in ice.cpp.
// The party's address moves only on an authenticated, nominating check, never on media.
#include <openssl/rand.h>
#include <sys/socket.h>

#include <algorithm>
#include <cstring>

#include "io_thread.hpp"

namespace ngrelay {

void IoThread::applyIce(Stream* s, const Rule& old, bool attached) {
  const IceConfig* now = s->rule.ice.get();
  if (!now) {
    if (!s->hasIce) return;
    // ICE switched off: back to learning from the expected endpoint.
    s->hasIce = false;
    s->iceSelected = SockAddr();
    s->iceSelectedPub.store(SockAddr());
    s->iceConsentLost = false;
    s->iceState.store(uint8_t(IceState::Waiting), std::memory_order_relaxed);
    s->iceAgent.reset();
    if (s->inIceList) iceStreams_.erase(std::remove(iceStreams_.begin(), iceStreams_.end(), s), iceStreams_.end());
    s->inIceList = false;
    resetLearning(s->learn, s->rule);
    return;
  }
  // Our role is the configured one unless a role conflict switched it; a changed configured role (new offer)
  // takes over. An ICE restart (new ufrag/pwd) keeps the selected pair until a new one is nominated.
  const IceConfig* before = attached ? nullptr : old.ice.get();
  if (!s->hasIce || !before || before->controlling != now->controlling) s->iceControlling = now->controlling;
  s->hasIce = true;
  if (!s->inIceList) {
    iceStreams_.push_back(s);
    s->inIceList = true;
  }
  // Full agent: pairs from the party's candidates of this component and address family, best first. A new
  // configuration (restart, new candidates) starts the checks over; the selected pair stays meanwhile.
  const bool full = !now->lite && now->hasRemote && s->fd >= 0;  // a muxed RTCP stream checks nothing itself
  if (!full) {
    s->iceAgent.reset();
  } else if (!s->iceAgent || s->iceAgent->config != now) {
    auto agent = std::make_unique<IceAgent>();
    agent->config = now;
    const uint32_t component = s->isRtcp ? 2 : 1;
    for (const IceCandidateSpec& c : now->remoteCandidates) {
      if (c.component != component || !c.endpoint.valid() || c.endpoint.family() != s->local.family()) continue;
      IceCheckPair pair;
      pair.remote = c.endpoint;
      pair.remotePriority = c.priority;
      agent->pairs.push_back(pair);
    }
    std::stable_sort(agent->pairs.begin(), agent->pairs.end(),
                     [](const IceCheckPair& a, const IceCheckPair& b) { return a.remotePriority > b.remotePriority; });
    s->iceAgent = std::move(agent);
  }
  // With ICE the destination is the nominated address, else (none yet) the expected one; never a learned one.
  if (s->iceSelected.valid()) s->learn.current = s->iceConsentLost ? SockAddr() : s->iceSelected;
  else s->learn.current = s->rule.expected;
  s->learn.confirmed = s->iceSelected.valid() && !s->iceConsentLost;
  s->learn.inWindow = false;
}

void IoThread::rejectStun(Stream* x) {
  x->iceStunRejected.add(1);
  x->errors.add(1);
  totals_.errors.add(1);
}

void IoThread::iceSelect(Stream* x, const SockAddr& to) {
  x->iceSelected = to;
  x->iceSelectedPub.store(to);
  x->iceConsentLost = false;
  x->learn.current = to;
  x->learn.confirmed = true;
  x->publishEndpoint();
  x->iceState.store(uint8_t(IceState::Connected), std::memory_order_relaxed);
  emit(EventType::IceSelected, x, to);
  startDtlsIfReady(x);  // DTLS over ICE starts on the selected pair
}

void IoThread::onStun(Stream* x, const uint8_t* p, size_t len, const SockAddr& src, bool truncated) {
  const IceConfig* cfg = x->rule.ice.get();
  StunMessage m;
  if (!cfg || truncated || !src.valid() || parseStun(p, len, m) != StunError::None) {
    rejectStun(x);
    return;
  }
  if ((m.type == kStunBindingSuccess || m.type == kStunBindingError) && x->iceAgent) {
    onIceResponse(x, p, m, src);
    return;
  }
  if (m.type != kStunBindingRequest) {
    // Indications (keep-alives) need nothing; a lite agent sends no requests, so a response answers nobody.
    // Anything else (another method or class) is not ICE.
    if (m.type != kStunBindingIndication && m.type != kStunBindingSuccess && m.type != kStunBindingError) rejectStun(x);
    return;
  }
  IceDecision d = iceOnRequest(*cfg, x->iceControlling, p, len, m);
  if (d.verdict == IceVerdict::Reject) {
    rejectStun(x);
    return;
  }
  uint8_t out[kStunMaxBytes];
  const bool conflict = d.verdict == IceVerdict::RoleConflict;
  const size_t n = iceBuildAnswer(*cfg, m, src, conflict, out, sizeof(out));
  if (n > 0 && ::sendto(x->ioFd, out, n, MSG_DONTWAIT, &src.u.sa, src.len) < 0) totals_.dropped.add(1);
  if (conflict) return;
  if (d.switchRole) x->iceControlling = !x->iceControlling;
  x->iceChecksReceived.add(1);
  if (d.nominate && (!x->iceSelected.sameEndpoint(src) || x->iceConsentLost)) iceSelect(x, src);
  if (x->iceSelected.sameEndpoint(src)) {
    x->iceConsentMono = nowMono_;
    x->iceLastConsentMs.store(nowWall_, std::memory_order_relaxed);
  }
  if (IceState(x->iceState.load(std::memory_order_relaxed)) == IceState::Waiting)
    x->iceState.store(uint8_t(IceState::Checking), std::memory_order_relaxed);
}

void IoThread::sendIceCheck(Stream* s, IceCheckPair& pair, bool nominate) {
  const IceConfig& cfg = *s->iceAgent->config;
  if (pair.sends == 0) RAND_bytes(pair.transactionId, sizeof(pair.transactionId));
  // RFC 8445 §7.1.1: PRIORITY as a peer-reflexive candidate of ours (type preference 110).
  const uint32_t priority = (uint32_t(110) << 24) | (uint32_t(65535) << 8) | (256 - (s->isRtcp ? 2 : 1));
  uint8_t out[kStunMaxBytes];
  const size_t n = iceBuildCheck(cfg, s->iceControlling, nominate, priority, pair.transactionId, out, sizeof(out));
  pair.state = IceCheckPair::State::InProgress;
  pair.nominating = nominate;
  pair.sentMs = nowMono_;
  ++pair.sends;
  if (n == 0 || s->ioFd < 0 || ::sendto(s->ioFd, out, n, MSG_DONTWAIT, &pair.remote.u.sa, pair.remote.len) < 0) {
    totals_.dropped.add(1);
    return;
  }
  s->iceChecksSent.add(1);
  if (IceState(s->iceState.load(std::memory_order_relaxed)) == IceState::Waiting)
    s->iceState.store(uint8_t(IceState::Checking), std::memory_order_relaxed);
}

void IoThread::runIceAgent(Stream* s) {
  IceAgent& a = *s->iceAgent;
  bool nominationUnderway = false;
  bool anyOpen = false;
  for (IceCheckPair& p : a.pairs) {
    if (p.state != IceCheckPair::State::InProgress) {
      anyOpen |= p.state == IceCheckPair::State::Waiting;
      continue;
    }
    anyOpen = true;
    nominationUnderway |= p.nominating;
    const int64_t rto = kIceFirstRtoMs << std::min(p.sends - 1, 4);
    if (nowMono_ - p.sentMs < rto) continue;
    if (p.sends >= kIceMaxSends) {
      p.state = IceCheckPair::State::Failed;
      p.nominating = false;
      continue;
    }
    sendIceCheck(s, p, p.nominating);
  }
  // One new check per Ta, best pair first.
  if (nowMono_ - a.lastPaceMs >= kIcePaceMs) {
    for (IceCheckPair& p : a.pairs) {
      if (p.state != IceCheckPair::State::Waiting) continue;
      sendIceCheck(s, p, false);
      a.lastPaceMs = nowMono_;
      break;
    }
  }
  // Controlling: nominate the best pair that succeeded (regular nomination, RFC 8445 §8.1.1).
  if (s->iceControlling && !nominationUnderway && (!s->iceSelected.valid() || s->iceConsentLost)) {
    for (IceCheckPair& p : a.pairs) {
      if (p.state != IceCheckPair::State::Succeeded) continue;
      p.sends = 0;
      sendIceCheck(s, p, true);
      anyOpen = true;
      break;
    }
  }
  // A selected pair gets consent checks of ours too (their answers renew consent).
  if (s->iceSelected.valid() && !s->iceConsentLost && nowMono_ - a.lastConsentCheckMs >= kIceConsentCheckMs) {
    a.lastConsentCheckMs = nowMono_;
    for (IceCheckPair& p : a.pairs) {
      if (!p.remote.sameEndpoint(s->iceSelected) || p.state == IceCheckPair::State::InProgress) continue;
      p.sends = 0;
      sendIceCheck(s, p, false);
      break;
    }
  }
  if (anyOpen) ++iceBusy_;
  else if (!s->iceSelected.valid() && !a.pairs.empty() &&
           std::all_of(a.pairs.begin(), a.pairs.end(), [](const IceCheckPair& p) { return p.state == IceCheckPair::State::Failed; }))
    s->iceState.store(uint8_t(IceState::Failed), std::memory_order_relaxed);
}

void IoThread::onIceResponse(Stream* x, const uint8_t* p, const StunMessage& m, const SockAddr& src) {
  IceAgent& a = *x->iceAgent;
  IceCheckPair* pair = nullptr;
  for (IceCheckPair& c : a.pairs)
    if (c.state == IceCheckPair::State::InProgress && std::memcmp(c.transactionId, m.transactionId, 12) == 0) pair = &c;
  if (!pair) return;  // a late answer to a retransmitted or finished check
  if (!iceResponseOk(*a.config, p, m)) {
    rejectStun(x);
    return;
  }
  // RFC 8445 §7.2.5.2.1: the answer must come from where the check went.
  if (!src.sameEndpoint(pair->remote)) {
    pair->state = IceCheckPair::State::Failed;
    return;
  }
  if (m.type == kStunBindingError) {
    if (m.hasErrorCode && m.errorCode == 487) {
      // §7.2.5.1: switch role and check this pair again.
      x->iceControlling = !x->iceControlling;
      pair->state = IceCheckPair::State::Waiting;
      pair->sends = 0;
      pair->nominating = false;
    } else {
      pair->state = IceCheckPair::State::Failed;
    }
    return;
  }
  pair->state = IceCheckPair::State::Succeeded;
  const bool nominated = pair->nominating;
  pair->nominating = false;
  if (nominated && x->iceControlling && (!x->iceSelected.sameEndpoint(src) || x->iceConsentLost)) iceSelect(x, src);
  if (x->iceSelected.sameEndpoint(src)) {
    x->iceConsentMono = nowMono_;
    x->iceLastConsentMs.store(nowWall_, std::memory_order_relaxed);
  }
}

void IoThread::checkIceConsent() {
  // Not every loop round: under load a round is a few µs, and this visits every ICE stream.
  if (nowMono_ - lastIceAgentMs_ >= kIcePaceMs) {
    lastIceAgentMs_ = nowMono_;
    iceBusy_ = 0;
    for (Stream* s : iceStreams_)
      if (s->iceAgent) runIceAgent(s);
  }
  if (nowMono_ - lastIceScanMs_ < 250) return;
  lastIceScanMs_ = nowMono_;
  for (Stream* s : iceStreams_) {
    if (!s->iceSelected.valid() || s->iceConsentLost || nowMono_ - s->iceConsentMono < iceConsentMs_) continue;
    // RFC 7675 §5.1: consent expired; stop sending to the pair until the party nominates again.
    s->iceConsentLost = true;
    s->iceConsentExpired.add(1);
    s->learn.current = SockAddr();
    s->learn.confirmed = false;
    s->publishEndpoint();
    s->iceState.store(uint8_t(IceState::Failed), std::memory_order_relaxed);
  }
}

}  // namespace ngrelay
