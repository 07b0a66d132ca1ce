// The ICE-lite responder's decisions (native/include/ice.hpp): which binding requests are valid checks, role
// conflicts (RFC 8445 §7.3.1.1), and the answers.
#include "ice.hpp"

#include <cstring>

namespace ngrelay {

const char* iceStateName(IceState s) {
  switch (s) {
    case IceState::Waiting: return "waiting";
    case IceState::Checking: return "checking";
    case IceState::Connected: return "connected";
    case IceState::Failed: return "failed";
  }
  return "waiting";
}

bool parseTieBreaker(const std::string& hex, uint64_t& out) {
  if (hex.size() != 16) return false;
  uint64_t v = 0;
  for (char c : hex) {
    int d = (c >= '0' && c <= '9') ? c - '0' : (c >= 'a' && c <= 'f') ? c - 'a' + 10 : (c >= 'A' && c <= 'F') ? c - 'A' + 10 : -1;
    if (d < 0) return false;
    v = (v << 4) | uint64_t(d);
  }
  out = v;
  return true;
}

IceDecision iceOnRequest(const IceConfig& cfg, bool controlling, const uint8_t* p, size_t /*len*/,
                         const StunMessage& msg) {
  IceDecision d;
  // RFC 8445 §7.2.2: USERNAME is "<our ufrag>:<their ufrag>" (their part is checked when known).
  const std::string& lu = cfg.localUfrag;
  if (!msg.username || msg.usernameLen < lu.size() + 1 || std::memcmp(msg.username, lu.data(), lu.size()) != 0 ||
      msg.username[lu.size()] != ':')
    return d;
  if (cfg.hasRemote) {
    const size_t rest = msg.usernameLen - lu.size() - 1;
    if (rest != cfg.remoteUfrag.size() || std::memcmp(msg.username + lu.size() + 1, cfg.remoteUfrag.data(), rest) != 0)
      return d;
  }
  if (!stunIntegrityOk(p, msg, reinterpret_cast<const uint8_t*>(cfg.localPwd.data()), cfg.localPwd.size())) return d;
  // §7.3.1.1 role conflicts.
  if (controlling && msg.controlling) {
    if (cfg.tieBreaker >= msg.tieBreaker) {
      d.verdict = IceVerdict::RoleConflict;
      return d;
    }
    d.switchRole = true;  // we become controlled
  } else if (!controlling && msg.controlled) {
    if (cfg.tieBreaker >= msg.tieBreaker) d.switchRole = true;  // we become controlling
    else {
      d.verdict = IceVerdict::RoleConflict;
      return d;
    }
  }
  const bool nowControlling = d.switchRole ? !controlling : controlling;
  d.verdict = IceVerdict::Answer;
  // A controlling peer nominates with USE-CANDIDATE; a controlled peer cannot. A lite relay is always the
  // nominated side (RFC 8445 §6.1.1), whatever role it was told.
  d.nominate = msg.useCandidate && (cfg.lite || !nowControlling);
  return d;
}

size_t iceBuildAnswer(const IceConfig& cfg, const StunMessage& req, const SockAddr& from, bool roleConflict,
                      uint8_t* out, size_t cap) {
  StunWriter w(out, cap);
  w.begin(roleConflict ? kStunBindingError : kStunBindingSuccess, req.transactionId);
  if (roleConflict) w.addErrorCode(487, "Role Conflict");
  else w.addXorMappedAddress(from);
  w.addIntegrity(reinterpret_cast<const uint8_t*>(cfg.localPwd.data()), cfg.localPwd.size());
  w.addFingerprint();
  return w.length();
}

size_t iceBuildCheck(const IceConfig& cfg, bool controlling, bool nominate, uint32_t priority,
                     const uint8_t transactionId[12], uint8_t* out, size_t cap) {
  StunWriter w(out, cap);
  w.begin(kStunBindingRequest, transactionId);
  const std::string user = cfg.remoteUfrag + ":" + cfg.localUfrag;
  w.addBytes(kStunAttrUsername, reinterpret_cast<const uint8_t*>(user.data()), user.size());
  w.addU32(kStunAttrPriority, priority);
  if (controlling) {
    w.addU64(kStunAttrIceControlling, cfg.tieBreaker);
    if (nominate) w.addFlag(kStunAttrUseCandidate);
  } else {
    w.addU64(kStunAttrIceControlled, cfg.tieBreaker);
  }
  w.addIntegrity(reinterpret_cast<const uint8_t*>(cfg.remotePwd.data()), cfg.remotePwd.size());
  w.addFingerprint();
  return w.length();
}

bool iceResponseOk(const IceConfig& cfg, const uint8_t* p, const StunMessage& msg) {
  return cfg.hasRemote &&
         stunIntegrityOk(p, msg, reinterpret_cast<const uint8_t*>(cfg.remotePwd.data()), cfg.remotePwd.size());
}

}  // namespace ngrelay
