// N-API surface of the call-quality code that is not per engine: the RTCP parser and the MOS formula for
// tests (`exports.rtcpTest`), and the process-wide MOS totals for `statistics` (`exports.qualityTotals`).
#include <napi.h>

#include "rtcp.hpp"
#include "stream_quality.hpp"

using namespace ngrelay;

namespace {

Napi::Value ParseRtcp(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsBuffer()) throw Napi::TypeError::New(env, "parse expects a Buffer");
  auto buf = info[0].As<Napi::Buffer<uint8_t>>();
  RtcpSummary s;
  RtcpError e = parseRtcp(buf.Data(), buf.Length(), s);
  Napi::Object o = Napi::Object::New(env);
  o.Set("error", e == RtcpError::None ? env.Null() : Napi::String::New(env, rtcpErrorName(e)));
  if (e != RtcpError::None) return o;
  o.Set("packets", s.packets);
  if (s.hasSr) {
    Napi::Object sr = Napi::Object::New(env);
    sr.Set("ssrc", double(s.srSsrc));
    sr.Set("ntpMiddle", double(s.ntpMiddle()));
    sr.Set("rtpTimestamp", double(s.srRtpTs));
    sr.Set("packets", double(s.srPackets));
    sr.Set("octets", double(s.srOctets));
    o.Set("sr", sr);
  } else {
    o.Set("sr", env.Null());
  }
  o.Set("reporterSsrc", s.hasRr ? Napi::Value(Napi::Number::New(env, double(s.reporterSsrc))) : env.Null());
  Napi::Array blocks = Napi::Array::New(env, size_t(s.blockCount));
  for (int i = 0; i < s.blockCount; ++i) {
    const RtcpReportBlock& b = s.blocks[i];
    Napi::Object bo = Napi::Object::New(env);
    bo.Set("ssrc", double(b.ssrc));
    bo.Set("fractionLost", double(b.fractionLost));
    bo.Set("cumulativeLost", double(b.cumulativeLost));
    bo.Set("extHighestSeq", double(b.extHighestSeq));
    bo.Set("jitter", double(b.jitter));
    bo.Set("lsr", double(b.lsr));
    bo.Set("dlsr", double(b.dlsr));
    blocks.Set(uint32_t(i), bo);
  }
  o.Set("blocks", blocks);
  o.Set("blocksSkipped", s.blocksSkipped);
  o.Set("sdes", s.sdes);
  o.Set("bye", s.bye);
  o.Set("app", s.app);
  o.Set("feedback", s.feedback);
  o.Set("xr", s.xr);
  if (s.hasXrVoip) {
    Napi::Object x = Napi::Object::New(env);
    x.Set("ssrc", double(s.xrVoip.ssrc));
    x.Set("lossRate", double(s.xrVoip.lossRate));
    x.Set("discardRate", double(s.xrVoip.discardRate));
    x.Set("roundTripDelayMs", double(s.xrVoip.roundTripDelayMs));
    x.Set("rFactor", double(s.xrVoip.rFactor));
    x.Set("mosLq", double(s.xrVoip.mosLq));
    x.Set("mosCq", double(s.xrVoip.mosCq));
    o.Set("xrVoip", x);
  } else {
    o.Set("xrVoip", env.Null());
  }
  return o;
}

// mos(rttUs, jitterMs, packetLossPct) -> MOS ×10
Napi::Value Mos(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  for (size_t i = 0; i < 3; ++i)
    if (!info[i].IsNumber()) throw Napi::TypeError::New(env, "mos expects three numbers");
  return Napi::Number::New(env, double(mosX10(uint64_t(info[0].As<Napi::Number>().Int64Value()),
                                              info[1].As<Napi::Number>().Uint32Value(),
                                              info[2].As<Napi::Number>().Uint32Value())));
}

Napi::Value QualityTotalsJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  QualityTotals& t = qualityTotals();
  Napi::Object o = Napi::Object::New(env);
  o.Set("samples", double(t.samples.load(std::memory_order_relaxed)));
  o.Set("mosX10Sum", double(t.mosX10Sum.load(std::memory_order_relaxed)));
  o.Set("mosX10SquareSum", double(t.mosX10SquareSum.load(std::memory_order_relaxed)));
  return o;
}

// The five figures a MOS sample has and a tally sums (MosSample, MosTally: same names in both).
template <typename Figures>
void setMosFigures(Napi::Object o, const Figures& f) {
  o.Set("mos", double(f.mos));
  o.Set("rttUs", double(f.rttUs));
  o.Set("rttLegUs", double(f.rttLegUs));
  o.Set("jitterMs", double(f.jitterMs));
  o.Set("packetLoss", double(f.packetLoss));
}

Napi::Object sampleToJs(Napi::Env env, const MosSample& m) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("reportedAtMs", double(m.reportedAtMs));
  setMosFigures(o, m);
  return o;
}

}  // namespace

/** The StreamQuality shape of src/dataplane/types.ts. */
Napi::Object qualityToJs(Napi::Env env, const QualitySnapshot& q) {
  Napi::Object o = Napi::Object::New(env);
  const RtpReceiveStats& r = q.rtp;
  if (r.started) {
    Napi::Object rtp = Napi::Object::New(env);
    const uint64_t extMax = uint64_t(r.cycles) + r.maxSeq;
    const uint64_t expected = extMax + 1 - r.baseSeq;
    rtp.Set("ssrc", double(r.ssrc));
    rtp.Set("received", double(r.received));
    rtp.Set("expected", double(expected));
    rtp.Set("lost", double(expected > r.received ? expected - r.received : 0));
    rtp.Set("duplicates", double(r.duplicates));
    rtp.Set("reordered", double(r.reordered));
    rtp.Set("jitterMs", r.jitterUs() / 1000.0);
    rtp.Set("ssrcChanges", double(r.ssrcChanges));
    rtp.Set("lastSeq", double(r.maxSeq));
    rtp.Set("lastTimestamp", double(r.lastTimestamp));
    o.Set("rtp", rtp);
  } else {
    o.Set("rtp", env.Null());
  }
  const RtcpFigures& f = q.rtcp;
  Napi::Object c = Napi::Object::New(env);
  c.Set("parsed", double(f.parsed));
  c.Set("malformed", double(f.malformed));
  c.Set("senderReports", double(f.sr));
  c.Set("receiverReports", double(f.rr));
  c.Set("sdes", double(f.sdes));
  c.Set("bye", double(f.bye));
  c.Set("xr", double(f.xr));
  c.Set("reporterSsrc", f.rr ? Napi::Value(Napi::Number::New(env, double(f.reporterSsrc))) : env.Null());
  c.Set("cumulativeLost", double(f.cumulativeLost));
  c.Set("fractionLost", double(f.lastFractionLost));
  c.Set("jitter", double(f.lastJitter));
  c.Set("rttLegUs", double(f.lastRttLegUs));
  c.Set("xrRoundTripMs", f.hasXrVoip ? Napi::Value(Napi::Number::New(env, double(f.xrVoip.roundTripDelayMs))) : env.Null());
  Napi::Object tally = Napi::Object::New(env);
  tally.Set("samples", double(f.tally.samples));
  setMosFigures(tally, f.tally);
  c.Set("sums", tally);
  c.Set("lowest", f.hasLowest ? Napi::Value(sampleToJs(env, f.lowest)) : env.Null());
  c.Set("highest", f.hasHighest ? Napi::Value(sampleToJs(env, f.highest)) : env.Null());
  // The progression, oldest first (the ring holds the last kMosSeries).
  const uint32_t n = f.seriesCount < uint32_t(kMosSeries) ? f.seriesCount : uint32_t(kMosSeries);
  Napi::Array series = Napi::Array::New(env, n);
  for (uint32_t i = 0; i < n; ++i) series.Set(i, sampleToJs(env, f.series[(f.seriesCount - n + i) % kMosSeries]));
  c.Set("samples", series);
  c.Set("samplesTotal", double(f.seriesCount));
  o.Set("rtcp", c);
  return o;
}

void InitQualityBinding(Napi::Env env, Napi::Object exports) {
  Napi::Object test = Napi::Object::New(env);
  test.Set("parse", Napi::Function::New(env, ParseRtcp, "parse"));
  test.Set("mos", Napi::Function::New(env, Mos, "mos"));
  exports.Set("rtcpTest", test);
  exports.Set("qualityTotals", Napi::Function::New(env, QualityTotalsJs, "qualityTotals"));
}
