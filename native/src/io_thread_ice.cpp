// The ICE-lite responder on an I/O thread (RFC 8445 lite side, RFC 7675 consent). STUN reaches it from
// IoThread::drain's slow path only (first byte 0..3 on a stream with rule.ice); decisions are in ice.cpp.
// The party's address moves only on an authenticated, nominating check, never on media.
#include <sys/socket.h>

#include <algorithm>

#include "engine.hpp"

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
}

void IoThread::onStun(Stream* x, const uint8_t* p, size_t len, const SockAddr& src, bool truncated) {
  const IceConfig* cfg = x->rule.ice.get();
  StunMessage m;
  if (!cfg || truncated || !src.valid() || parseStun(p, len, m) != StunError::None) {
    rejectStun(x);
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

void IoThread::checkIceConsent() {
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
