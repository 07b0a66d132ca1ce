// Call-quality state of one stream, kept by its owner I/O thread: what the relay measures itself from RTP
// (loss, duplicates, reordering, interarrival jitter, RFC 3550 A.1/A.8) and what the parties say in RTCP
// (SR, RR with LSR/DLSR round-trip times, XR VoIP metrics), turned into MOS samples as rtpengine 10.5
// does. All storage is fixed-size and lives inside the Stream: nothing is allocated per packet, and nothing
// crosses into JavaScript until the control plane asks (Engine::requestQuality, run on the owner thread).
#pragma once

#include <atomic>
#include <cstdint>
#include <cstring>

#include "rtcp.hpp"

namespace ngrelay {

/**
 * RTP receive statistics of the stream's current SSRC (a new SSRC starts them afresh, counted). Every RTP
 * packet writes the first 48 bytes (the in-sequence path), so they share one cache line, which the I/O
 * thread prefetches with the stream's packet-path lines (Stream::rtpStats).
 */
struct RtpReceiveStats {
  uint32_t ssrc = 0;
  uint16_t maxSeq = 0;
  bool started = false;
  uint64_t seenBits = 0;    // bit i set = (maxSeq - i) received, for duplicate detection 64 back
  uint64_t received = 0;
  // RFC 3550 A.8 in its integer form: transit times in RTP timestamp units, the estimate ×16 (no division or
  // floating point per packet; converted to time when read, see jitterUs()). The last transit also tells
  // where the party's media clock stands now: arrival time on the RTP clock minus lastTransit (play DTMF).
  uint32_t lastTransit = 0;
  uint32_t jitterQ4 = 0;
  uint32_t lastTimestamp = 0;
  uint32_t cycles = 0;      // sequence wraps, ×65536
  // --- the rest only on the out-of-sequence and new-SSRC paths ---
  uint64_t duplicates = 0, reordered = 0;
  uint32_t baseSeq = 0;     // extended
  uint32_t ssrcChanges = 0;
  uint32_t clockRate = 8000;  // of the stream when it started, for jitterUs()

  double jitterUs() const { return double(jitterQ4) / 16.0 * 1e6 / double(clockRate ? clockRate : 8000); }
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

/** The RTCP part of a stream's quality (the RTP part is Stream::rtpStats, on the packet path's lines). */
struct StreamQuality {
  RtcpQuality rtcp;
};

/** A copy of a stream's figures, taken on its owner thread for the control plane. */
struct QualitySnapshot {
  RtpReceiveStats rtp;
  RtcpFigures rtcp;
};

/** The first packet of a stream or of a new SSRC: the figures start afresh (the SSRC change counted). */
void qualityRestart(RtpReceiveStats& st, uint16_t seq, uint32_t ts, uint32_t ssrc, uint32_t arrivalTs, uint32_t clockRate);

/** A monotonic time in µs on an RTP clock of `clockRate` Hz (no overflow for 290 000 years at 48 kHz). */
inline uint32_t rtpClockAt(int64_t monotonicUs, uint32_t clockRate) {
  return uint32_t(uint64_t(monotonicUs) * clockRate / 1000000);
}
/** A packet other than the next in sequence; false for a duplicate (which changes nothing else). */
bool qualityOutOfOrder(RtpReceiveStats& st, uint16_t seq, uint32_t ts, int16_t delta);

/**
 * One RTP packet (its header fields), arrived at `arrivalTs` (rtpClockAt of the arrival): sequence,
 * duplicate, reordering and jitter figures. Inline, and the next-in-sequence packet of a known SSRC is the
 * straight path: the packet path runs this for every RTP packet (the rest is out of line).
 */
inline void qualityOnRtp(RtpReceiveStats& st, uint16_t seq, uint32_t ts, uint32_t ssrc, uint32_t arrivalTs,
                         uint32_t clockRate) {
  if (__builtin_expect(!st.started || ssrc != st.ssrc, 0)) {
    qualityRestart(st, seq, ts, ssrc, arrivalTs, clockRate);
    return;
  }
  const int16_t delta = int16_t(uint16_t(seq - st.maxSeq));
  if (__builtin_expect(delta == 1, 1)) {
    if (seq == 0) st.cycles += 0x10000;
    st.seenBits = (st.seenBits << 1) | 1;
    st.maxSeq = seq;
    st.lastTimestamp = ts;
  } else if (!qualityOutOfOrder(st, seq, ts, delta)) {
    return;
  }
  ++st.received;
  // D = (Rj - Ri) - (Sj - Si) as the difference of transit times; J += (|D| - J) / 16, J kept ×16.
  const uint32_t transit = arrivalTs - ts;
  const int32_t d = int32_t(transit - st.lastTransit);
  st.lastTransit = transit;
  st.jitterQ4 += uint32_t(d < 0 ? -d : d) - ((st.jitterQ4 + 8) >> 4);
}

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
