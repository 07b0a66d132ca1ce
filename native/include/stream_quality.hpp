// Call-quality state of one stream, kept by its owner I/O thread: what the relay measures itself from RTP
// (loss, duplicates, reordering, interarrival jitter, RFC 3550 A.1/A.8) and what the parties say in RTCP
// (SR, RR with LSR/DLSR round-trip times, XR VoIP metrics), turned into MOS samples as rtpengine 10.5
// does. All storage is fixed-size and lives inside the Stream: nothing is allocated per packet, and nothing
// crosses into JavaScript until the control plane asks (Engine::readQuality, run on the owner thread).
#pragma once

#include <atomic>
#include <cstdint>

#include "rtcp.hpp"

namespace ngrelay {

/** RTP receive statistics of the stream's current SSRC (a new SSRC starts them afresh, counted). */
struct RtpReceiveStats {
  bool started = false;
  uint32_t ssrc = 0;
  uint32_t ssrcChanges = 0;
  uint32_t baseSeq = 0;     // extended
  uint32_t cycles = 0;      // sequence wraps, ×65536
  uint16_t maxSeq = 0;
  uint64_t seenBits = 0;    // bit i set = (maxSeq - i) received, for duplicate detection 64 back
  uint64_t received = 0, duplicates = 0, reordered = 0;
  int64_t lastArrivalUs = 0;
  uint32_t lastTs = 0;
  double jitterUs = 0;      // RFC 3550 A.8 estimate, in microseconds
  uint32_t lastTimestamp = 0;
};

/** One MOS sample, as rtpengine's stats block: from one RR, at most one a second per reporter. */
struct MosSample {
  int64_t reportedAtMs;  // wall clock
  uint32_t mos;          // ×10; 0 = not computable (no round-trip time of both legs yet)
  uint32_t rttUs;        // end to end: both legs
  uint32_t rttLegUs;     // relay <-> this party
  uint32_t jitterMs;
  uint32_t packetLoss;   // percent
};

constexpr int kMosSeries = 64;   // the progression kept: the last 64 samples (a minute at one a second)
constexpr int kSrRing = 8;       // sender reports remembered for LSR matching

struct MosTally {
  uint64_t samples = 0;  // samples with a MOS
  uint64_t mos = 0, rttUs = 0, rttLegUs = 0, jitterMs = 0, packetLoss = 0;
};

/** What the RTCP of one stream said, and the MOS samples made from it (plain data: copied out whole). */
struct RtcpFigures {
  uint64_t parsed = 0, malformed = 0;
  uint64_t sr = 0, rr = 0, sdes = 0, bye = 0, xr = 0;
  uint32_t lastSrSsrc = 0, lastSrPackets = 0, lastSrOctets = 0;
  uint32_t reporterSsrc = 0;
  int32_t cumulativeLost = 0;
  uint8_t lastFractionLost = 0;
  uint32_t lastJitter = 0;   // RTP timestamp units, as reported
  uint32_t lastRttLegUs = 0;
  bool hasXrVoip = false;
  RtcpXrVoip xrVoip{};
  MosSample series[kMosSeries];
  uint32_t seriesCount = 0;  // samples ever added (the ring holds the last kMosSeries)
  int64_t lastSampleMs = 0;
  MosTally tally;
  MosSample lowest{}, highest{};
  bool hasLowest = false, hasHighest = false;
};

struct RtcpQuality {
  RtcpFigures f;
  // Read by the owner thread of the *opposite* stream (whose party's RR names these SRs): each entry is one
  // atomic word, NTP middle bits << 32 | arrival time in µs (monotonic, low 32 bits), so no read tears.
  std::atomic<uint64_t> srRing[kSrRing];
  uint32_t srNext = 0;
  // The relay <-> this party round-trip time of the last valid measurement, read by the opposite stream.
  std::atomic<uint32_t> legRttUs{0};

  RtcpQuality() {
    for (auto& s : srRing) s.store(0, std::memory_order_relaxed);
  }
};

struct StreamQuality {
  RtpReceiveStats rtp;
  RtcpQuality rtcp;
};

/** A copy of a stream's figures, taken on its owner thread for the control plane. */
struct QualitySnapshot {
  RtpReceiveStats rtp;
  RtcpFigures rtcp;
};

/** One RTP packet, arrived at `arrivalUs` (monotonic): sequence, duplicate, reordering and jitter figures. */
void qualityOnRtp(RtpReceiveStats& st, const uint8_t* p, int64_t arrivalUs, uint32_t clockRate);

/**
 * One sound RTCP compound received on stream `self`, whose opposite RTCP stream (where the other party's SRs
 * arrive) is `peer` (may be null). Returns the MOS samples computed (for the process totals).
 */
int qualityOnRtcp(RtcpQuality& self, const RtcpQuality* peer, const RtcpSummary& s, int64_t arrivalUs,
                  int64_t wallMs, uint32_t clockRate);

/** rtpengine 10.5's MOS (×10) for PCMU/PCMA-class codecs, from end-to-end RTT (µs), jitter (ms) and loss (%). */
uint32_t mosX10(uint64_t rttUs, uint32_t jitterMs, uint32_t packetLossPct);

/** Process-wide MOS sample totals (for `statistics`): every computed MOS, as rtpengine counts them. */
struct QualityTotals {
  std::atomic<uint64_t> samples{0}, mosX10Sum{0}, mosX10SquareSum{0};
};
QualityTotals& qualityTotals();

}  // namespace ngrelay
