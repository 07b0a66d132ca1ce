// Endpoint learning (far-end NAT traversal) with rtpengine's semantics: which source a stream's party is
// really at, and what to do with packets from anyone else. Pure logic, owned by one I/O thread per stream.
#pragma once

#include <cstdint>
#include <memory>

#include "sock_addr.hpp"

namespace ngrelay {

struct IceConfig;   // ice.hpp
struct DtlsConfig;  // dtls_config.hpp
struct BundleConfig;  // bundle.hpp

enum class Learning : uint8_t { Off, Immediate, Delayed, Heuristic };

/** The control plane's rule for one stream (see StreamRule in src/dataplane/types.ts). */
struct Rule {
  // The flags first: every packet reads them, `expected` only matters while learning.
  Learning learning = Learning::Heuristic;
  bool strictSource = false;
  bool mediaHandover = false;
  bool asymmetric = false;
  int64_t sink = -1;  // -1 = forward nothing
  double signalGeneration = 0;
  SockAddr expected;  // !valid() = unknown
  uint32_t clockRate = 8000;  // the RTP clock of the stream's codec, for jitter in time units
  bool blockMedia = false;    // ng `block media`: RTP counted, not forwarded
  bool silenceMedia = false;  // ng `silence media`: G.711 payloads replaced with silence
  int16_t dtmfPt = -1;        // telephone-event payload type (-1 = none): events are detected and reported
  bool blockDtmf = false;     // ng `block DTMF`: those packets are counted, not forwarded
  std::shared_ptr<const IceConfig> ice;    // rule.ice (null = none): STUN answered, media follows ICE only
  std::shared_ptr<const DtlsConfig> dtls;  // rule.dtls (null = none)
  bool forwardIceDtls = false; // ICE/DTLS pass-through (ICE=optional/force-relay): STUN and DTLS forwarded as they came
  bool userspaceOnly = false; // ICE/DTLS: the engine must see every packet (never handed to the kernel path)
  int8_t dtmfReplace = -1;    // with blockDtmf: forward with this event instead (0-15; 16 = random), -1 = drop
  std::shared_ptr<const BundleConfig> bundle;  // rule.bundle (null = not bundled): see bundle.hpp
};

constexpr int64_t kLearningWindowMs = 3000;

struct LearnState {
  bool confirmed = false;
  SockAddr current;  // where packets to this party go now
  bool inWindow = false;  // heuristic: collecting candidates
  int bestRank = -1;
  int64_t windowStartMs = 0;
  int64_t lastSignalMs = 0;  // monotonic ms of the last signalGeneration change (delayed learning)
};

enum class LearnEvent : uint8_t { None, Learned, SourceChanged };

struct LearnOutcome {
  bool accept = true;            // false: drop the packet and count an error (strict-source)
  bool endpointChanged = false;  // LearnState::current changed: republish it
  LearnEvent event = LearnEvent::None;
};

/** Back to "nothing learned": the destination is the expected endpoint again. */
void resetLearning(LearnState& st, const Rule& rule);

/**
 * An Update from `old` to `now` starts learning again (resetLearning): the expected endpoint moved, or the
 * stream became asymmetric or stopped learning. The owner thread applies it; the JS thread publishes the new
 * destination ahead of it (Engine::updateStream), so both must agree.
 */
bool updateResetsLearning(const Rule& old, const Rule& now);

/** A packet from `src` arrived; decide whether it is accepted and whether the destination moves. */
LearnOutcome learnFromPacket(LearnState& st, const Rule& rule, const SockAddr& src, int64_t nowMs);

/** Heuristic window expired without more packets: confirm the best candidate. */
LearnOutcome learnOnTimer(LearnState& st, int64_t nowMs);

}  // namespace ngrelay
