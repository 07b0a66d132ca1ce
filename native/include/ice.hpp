// ICE (RFC 8445) as the engine terminates it on a stream's socket: the configuration the control plane gives
// (StreamIce in src/dataplane/types.ts) and the ICE-lite responder's decisions on one binding request.
// Pure logic; the I/O thread that owns the stream runs it (native/src/ice.cpp).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "sock_addr.hpp"
#include "stun.hpp"

namespace ngrelay {

/** One a=candidate of the party (IceCandidate in src/dataplane/types.ts). */
struct IceCandidateSpec {
  std::string foundation;
  uint32_t component = 1;
  uint32_t priority = 0;
  std::string type;
  SockAddr endpoint;
};

/** StreamIce: immutable once made (shared by the rule copies on the JS and I/O threads). */
struct IceConfig {
  std::string localUfrag, localPwd;
  bool hasRemote = false;  // remoteUfrag/remotePwd known
  std::string remoteUfrag, remotePwd;
  bool controlling = false;
  bool lite = true;
  uint64_t tieBreaker = 0;
  std::vector<IceCandidateSpec> remoteCandidates;
};

/** ICE state names of IceStatus.state. */
enum class IceState : uint8_t { Waiting, Checking, Connected, Failed };
const char* iceStateName(IceState s);

/** RFC 7675: without a valid check from the selected address for this long, consent is lost. */
constexpr int64_t kIceConsentMs = 30000;

/** What the responder does with one STUN message that arrived on an ICE stream. */
enum class IceVerdict : uint8_t {
  Reject,        // malformed, bad integrity/fingerprint, wrong ufrag: counted in stunRejected, dropped
  Ignore,        // a well-formed message that needs nothing (indication, response to nobody): dropped
  Answer,        // a valid check: send a success response
  RoleConflict,  // a valid check whose role conflicts and we keep ours: send a 487 error response
};

struct IceDecision {
  IceVerdict verdict = IceVerdict::Reject;
  bool nominate = false;     // Answer: the check nominates this source (USE-CANDIDATE from a controlling peer)
  bool switchRole = false;   // Answer: RFC 8445 §7.3.1.1 says to switch our role first
};

/**
 * Decides about a binding request `msg` (parsed from `p`/`len`) for a stream whose current role is
 * `controlling`: USERNAME must start with "localUfrag:", MESSAGE-INTEGRITY must verify with localPwd (a
 * FINGERPRINT, when present, was verified by the parser), and role conflicts are resolved with the
 * tie-breaker (§7.3.1.1).
 */
IceDecision iceOnRequest(const IceConfig& cfg, bool controlling, const uint8_t* p, size_t len, const StunMessage& msg);

/**
 * Builds the answer to binding request `req` into `out` (room `cap`): a success response with
 * XOR-MAPPED-ADDRESS of `from`, or (roleConflict) a 487 error; both with MESSAGE-INTEGRITY (key = localPwd)
 * and FINGERPRINT. Returns the length, 0 when it does not fit.
 */
size_t iceBuildAnswer(const IceConfig& cfg, const StunMessage& req, const SockAddr& from, bool roleConflict,
                      uint8_t* out, size_t cap);

/** One candidate pair of the full agent (lite false): our socket and one of the party's candidates. */
struct IceCheckPair {
  enum class State : uint8_t { Waiting, InProgress, Succeeded, Failed };
  SockAddr remote;
  uint32_t remotePriority = 0;
  State state = State::Waiting;
  uint8_t transactionId[12] = {};
  int64_t sentMs = 0;  // monotonic ms of the last (re)transmission
  int sends = 0;
  bool nominating = false;  // the check in progress carries USE-CANDIDATE
};

/** RFC 8445 §14: checks are paced (Ta) and retransmitted (RTO doubling from 250 ms, Rc = 7 sends). */
constexpr int64_t kIcePaceMs = 50;
constexpr int64_t kIceFirstRtoMs = 250;
constexpr int kIceMaxSends = 7;
/** A nominated pair gets a consent check this often (RFC 7675 §5.1: 4..6 s). */
constexpr int64_t kIceConsentCheckMs = 5000;

/** The full agent's checks (owner thread only); rebuilt when the configuration changes. */
struct IceAgent {
  const IceConfig* config = nullptr;  // the rule's config these pairs were made from
  std::vector<IceCheckPair> pairs;    // highest remote priority first
  int64_t lastPaceMs = 0;
  int64_t lastConsentCheckMs = 0;
};

/**
 * Builds a binding request into `out`: USERNAME "remoteUfrag:localUfrag", PRIORITY, ICE-CONTROLLING (with
 * USE-CANDIDATE when `nominate`) or ICE-CONTROLLED, MESSAGE-INTEGRITY with remotePwd, FINGERPRINT.
 */
size_t iceBuildCheck(const IceConfig& cfg, bool controlling, bool nominate, uint32_t priority,
                     const uint8_t transactionId[12], uint8_t* out, size_t cap);

/** A response to one of our checks verifies with the party's password (remotePwd). */
bool iceResponseOk(const IceConfig& cfg, const uint8_t* p, const StunMessage& msg);

/** Parses StreamIce.tieBreaker (16 hex digits); false when it is not that. */
bool parseTieBreaker(const std::string& hex, uint64_t& out);

}  // namespace ngrelay
