// See stream_quality.hpp.
#include "stream_quality.hpp"

#include <cstdlib>

namespace ngrelay {

namespace {
inline uint32_t be32(const uint8_t* p) {
  return (uint32_t(p[0]) << 24) | (uint32_t(p[1]) << 16) | (uint32_t(p[2]) << 8) | p[3];
}
}  // namespace

void qualityRestart(RtpReceiveStats& st, uint16_t seq, uint32_t ts, uint32_t ssrc, uint32_t arrivalTs, uint32_t clockRate) {
  const uint32_t changes = st.started ? st.ssrcChanges + 1 : 0;
  st = RtpReceiveStats{};
  st.started = true;
  st.ssrc = ssrc;
  st.ssrcChanges = changes;
  st.baseSeq = seq;
  st.maxSeq = seq;
  st.seenBits = 1;
  st.received = 1;
  st.lastTransit = arrivalTs - ts;
  st.clockRate = clockRate ? clockRate : 8000;
  st.lastTimestamp = ts;
}

bool qualityOutOfOrder(RtpReceiveStats& st, uint16_t seq, uint32_t ts, int16_t delta) {
  if (delta > 0) {  // a jump forward: the packets in between are missing (so far)
    if (seq < st.maxSeq) st.cycles += 0x10000;
    st.seenBits = delta >= 64 ? 1 : ((st.seenBits << delta) | 1);
    st.maxSeq = seq;
    st.lastTimestamp = ts;
    return true;
  }
  if (delta == 0) {
    ++st.duplicates;
    return false;
  }
  const int back = -delta;
  if (back < 64) {
    const uint64_t bit = uint64_t(1) << back;
    if (st.seenBits & bit) {
      ++st.duplicates;
      return false;
    }
    st.seenBits |= bit;
  }
  ++st.reordered;
  return true;
}

uint32_t mosX10(uint64_t rttUs, uint32_t jitterMs, uint32_t packetLossPct) {
  // rtpengine's "legacy" E-model shortcut (the one 10.5 applies to G.711), ITU-T G.107's R to MOS mapping:
  // effective latency = RTT + 2 × jitter + 10 ms; R = 93.2 - latency/40 (or -(latency-120)/10 from 160 ms on)
  // - 2.5 × loss %; MOS = 1 + 0.035 R + 7e-6 R (R - 60)(100 - R), reported ×10, truncated.
  const double eff = double(rttUs / 1000) + 2.0 * jitterMs + 10.0;
  double r = eff < 160 ? 93.2 - eff / 40.0 : 93.2 - (eff - 120.0) / 10.0;
  r -= 2.5 * packetLossPct;
  if (r < 0) return 10;
  if (r > 100) return 45;
  const double mos = 1.0 + 0.035 * r + 0.000007 * r * (r - 60.0) * (100.0 - r);
  uint32_t x10 = uint32_t(mos * 10.0 + 1e-9);
  return x10 < 10 ? 10 : x10;
}

QualityTotals& qualityTotals() {
  static QualityTotals totals;
  return totals;
}

namespace {

/** The relay <-> reporter round trip: now - arrival of the SR named by LSR - DLSR; 0 when unknown or absurd. */
uint32_t legRtt(const RtcpQuality* peer, uint32_t lsr, uint32_t dlsr, int64_t arrivalUs) {
  if (!peer || lsr == 0 || dlsr == 0) return 0;
  for (const auto& slot : peer->srRing) {
    const uint64_t v = slot.load(std::memory_order_relaxed);
    if (v == 0 || uint32_t(v >> 32) != lsr) continue;
    const int64_t sinceSr = int64_t(uint32_t(uint32_t(arrivalUs) - uint32_t(v)));
    const int64_t rtt = sinceSr - int64_t(dlsr) * 1000000 / 65536;
    if (rtt <= 0 || rtt > 10000000) return 0;  // as rtpengine: outside (0, 10 s] is discarded
    return uint32_t(rtt);
  }
  return 0;
}

void addSample(RtcpFigures& q, const MosSample& s) {
  // One sample a second at most, as rtpengine keeps its stats blocks.
  if (q.seriesCount > 0 && s.reportedAtMs - q.lastSampleMs < 1000) return;
  q.lastSampleMs = s.reportedAtMs;
  q.series[q.seriesCount % kMosSeries] = s;
  ++q.seriesCount;
  if (s.mos && (!q.hasLowest || s.mos < q.lowest.mos)) {
    q.lowest = s;
    q.hasLowest = true;
  }
  if (!q.hasHighest || s.mos > q.highest.mos) {
    q.highest = s;
    q.hasHighest = true;
  }
  if (s.mos) {
    ++q.tally.samples;
    q.tally.mos += s.mos;
    q.tally.rttUs += s.rttUs;
    q.tally.rttLegUs += s.rttLegUs;
    q.tally.jitterMs += s.jitterMs;
    q.tally.packetLoss += s.packetLoss;
  }
}

}  // namespace

int qualityOnRtcp(RtcpQuality& q, const RtcpQuality* peer, const RtcpSummary& s, int64_t arrivalUs, int64_t wallMs,
                  uint32_t clockRate) {
  ++q.f.parsed;
  q.f.sdes += uint64_t(s.sdes);
  q.f.bye += uint64_t(s.bye);
  if (s.xr) ++q.f.xr;
  if (s.hasXrVoip) {
    q.f.hasXrVoip = true;
    q.f.xrVoip = s.xrVoip;
  }
  if (s.hasSr) {
    ++q.f.sr;
    q.f.lastSrSsrc = s.srSsrc;
    q.f.lastSrPackets = s.srPackets;
    q.f.lastSrOctets = s.srOctets;
    const uint64_t entry = (uint64_t(s.ntpMiddle()) << 32) | uint32_t(arrivalUs);
    q.srRing[q.srNext % kSrRing].store(entry, std::memory_order_relaxed);
    ++q.srNext;
  }
  if (!s.hasRr) return 0;
  ++q.f.rr;
  q.f.reporterSsrc = s.reporterSsrc;
  int computed = 0;
  for (int i = 0; i < s.blockCount; ++i) {
    const RtcpReportBlock& b = s.blocks[i];
    q.f.cumulativeLost = b.cumulativeLost;
    q.f.lastFractionLost = b.fractionLost;
    q.f.lastJitter = b.jitter;
    const uint32_t leg = legRtt(peer, b.lsr, b.dlsr, arrivalUs);
    if (leg) {
      q.f.lastRttLegUs = leg;
      q.legRttUs.store(leg, std::memory_order_relaxed);
    }
    // End to end = this leg + the other party's leg (measured from its RRs on the opposite stream); an XR
    // round-trip delay, where the party sends one, replaces it (ms), as in rtpengine.
    const uint32_t otherLeg = peer ? peer->legRttUs.load(std::memory_order_relaxed) : 0;
    uint64_t e2e = otherLeg ? uint64_t(leg) + otherLeg : 0;
    if (q.f.hasXrVoip && q.f.xrVoip.roundTripDelayMs) e2e = uint64_t(q.f.xrVoip.roundTripDelayMs) * 1000;
    MosSample sample{};
    sample.reportedAtMs = wallMs;
    sample.rttUs = uint32_t(e2e);
    sample.rttLegUs = leg;
    sample.jitterMs = uint32_t(uint64_t(b.jitter) * 1000 / (clockRate ? clockRate : 8000));
    sample.packetLoss = uint32_t(b.fractionLost) * 100 / 256;
    // rtpengine's default MOS-CQ needs a round-trip time; without one there is no MOS for this report.
    sample.mos = e2e ? mosX10(e2e, sample.jitterMs, sample.packetLoss) : 0;
    if (sample.mos) {
      QualityTotals& t = qualityTotals();
      t.samples.fetch_add(1, std::memory_order_relaxed);
      t.mosX10Sum.fetch_add(sample.mos, std::memory_order_relaxed);
      t.mosX10SquareSum.fetch_add(uint64_t(sample.mos) * sample.mos, std::memory_order_relaxed);
      ++computed;
    }
    addSample(q.f, sample);
  }
  return computed;
}

}  // namespace ngrelay
