// N-API binding of the engine. Converts JS rule objects to C++ rules, bind errors to JS errors carrying
// `code`, and delivers event batches from the I/O threads through one thread-safe function.
#include <napi.h>

#include <sched.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <memory>
#include <stdexcept>

#include "dtls_config.hpp"
#include "engine.hpp"
#include "ice.hpp"

using namespace ngrelay;

void InitSrtpBinding(Napi::Env env, Napi::Object exports);  // native/src/srtp_binding.cpp (test/bench only)
void InitStunBinding(Napi::Env env, Napi::Object exports);  // native/src/stun_binding.cpp (test only)
void InitSdNotify(Napi::Env env, Napi::Object exports);     // native/src/sd_notify.cpp (systemd Type=notify)
void InitRlimit(Napi::Env env, Napi::Object exports);       // native/src/rlimit.cpp
void InitQualityBinding(Napi::Env env, Napi::Object exports);           // native/src/rtcp_binding.cpp
void InitPublishedAddrBinding(Napi::Env env, Napi::Object exports);     // native/src/published_addr_binding.cpp (test only)
Napi::Object qualityToJs(Napi::Env env, const QualitySnapshot& q);     // native/src/rtcp_binding.cpp

namespace {

/**
 * Reads the fields of one JS object of the contract (src/dataplane/types.ts). A missing or mistyped field
 * throws a TypeError naming it ("rule.sink must be a number or null"): the TS types guarantee the shape, so
 * such an error is a programming error in the caller, and it must say where.
 */
class Fields {
 public:
  Fields(const Napi::Value& v, std::string name) : name_(std::move(name)) {
    if (!v.IsObject()) throw Napi::TypeError::New(v.Env(), name_ + " must be an object");
    o_ = v.As<Napi::Object>();
  }
  Napi::Env env() const { return o_.Env(); }
  Napi::Value get(const char* key) const { return o_.Get(key); }
  std::string path(const char* key) const { return name_ + "." + key; }
  [[noreturn]] void fail(const char* key, const char* what) const {
    throw Napi::TypeError::New(env(), path(key) + " must be " + what);
  }
  bool absent(const char* key) const { return get(key).IsUndefined(); }
  bool nullish(const char* key) const {
    Napi::Value v = get(key);
    return v.IsNull() || v.IsUndefined();
  }
  bool boolean(const char* key) const {
    Napi::Value v = get(key);
    if (!v.IsBoolean()) fail(key, "a boolean");
    return v.As<Napi::Boolean>().Value();
  }
  /** An optional (`key?: boolean`) field: absent = `dflt`. */
  bool optBoolean(const char* key, bool dflt) const {
    Napi::Value v = get(key);
    if (v.IsUndefined()) return dflt;
    if (!v.IsBoolean()) fail(key, "a boolean or absent");
    return v.As<Napi::Boolean>().Value();
  }
  double number(const char* key) const {
    Napi::Value v = get(key);
    if (!v.IsNumber()) fail(key, "a number");
    return v.As<Napi::Number>().DoubleValue();
  }
  std::string string(const char* key) const {
    Napi::Value v = get(key);
    if (!v.IsString()) fail(key, "a string");
    return v.As<Napi::String>().Utf8Value();
  }

 private:
  Napi::Object o_;
  std::string name_;
};

/** Endpoint | null (src/dataplane/types.ts); `name` names the field in errors. */
SockAddr endpointFromJs(const Napi::Value& v, const std::string& name) {
  if (v.IsNull()) return SockAddr();
  Fields o(v, name);
  std::string family = o.string("family");
  if (family != "IPv4" && family != "IPv6") o.fail("family", "'IPv4' or 'IPv6'");
  std::string address = o.string("address");
  double port = o.number("port");
  if (!(port >= 0 && port <= 65535) || port != double(uint16_t(port)))
    throw Napi::RangeError::New(v.Env(), o.path("port") + " out of range");
  SockAddr a;
  if (!SockAddr::parse(address, uint16_t(port), a))
    throw Napi::TypeError::New(v.Env(), o.path("address") + " is not an IP literal: " + address);
  return a;
}

/** ThreadScheduling (src/dataplane/types.ts) with its policy name kept for info(). */
struct SchedulingFromJs {
  SchedulingSpec spec;
  std::string policyName = "default";
};

/** The config layer has checked the ranges; a bad value here is a programming error. */
SchedulingFromJs schedulingFromJs(Napi::Env env, const Napi::Value& v) {
  SchedulingFromJs out;
  if (v.IsNull() || v.IsUndefined()) return out;
  if (!v.IsObject()) throw Napi::TypeError::New(env, "scheduling must be an object");
  Napi::Object o = v.As<Napi::Object>();
  Napi::Value policy = o.Get("policy");
  if (!policy.IsString()) throw Napi::TypeError::New(env, "scheduling.policy must be a string");
  out.policyName = policy.As<Napi::String>().Utf8Value();
  if (out.policyName == "default") out.spec.policy = -1;
  else if (out.policyName == "fifo") out.spec.policy = SCHED_FIFO;
  else if (out.policyName == "rr") out.spec.policy = SCHED_RR;
  else if (out.policyName == "other") out.spec.policy = SCHED_OTHER;
  else if (out.policyName == "batch") out.spec.policy = SCHED_BATCH;
  else if (out.policyName == "idle") out.spec.policy = SCHED_IDLE;
  else throw Napi::TypeError::New(env, "unknown scheduling policy: " + out.policyName);
  Napi::Value prio = o.Get("priority");
  if (prio.IsNumber()) {
    out.spec.hasPriority = true;
    out.spec.priority = prio.As<Napi::Number>().Int32Value();
  } else if (!prio.IsNull() && !prio.IsUndefined()) {
    throw Napi::TypeError::New(env, "scheduling.priority must be a number or null");
  }
  const bool realtime = out.spec.policy == SCHED_FIFO || out.spec.policy == SCHED_RR;
  if (realtime && (!out.spec.hasPriority || out.spec.priority < 1 || out.spec.priority > 99))
    throw Napi::RangeError::New(env, "a realtime scheduling policy needs a priority of 1..99");
  if (!realtime && out.spec.hasPriority && (out.spec.priority < -20 || out.spec.priority > 19))
    throw Napi::RangeError::New(env, "a nice value must be -20..19");
  return out;
}

/** DataPlaneInfo.scheduling / idleScheduling: what was asked for and the kernel's refusal (errno), if any. */
Napi::Object schedulingToJs(Napi::Env env, const SchedulingFromJs& s, int err) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("policy", s.policyName);
  o.Set("priority", s.spec.hasPriority ? Napi::Value(Napi::Number::New(env, s.spec.priority)) : env.Null());
  o.Set("error", err != 0 ? Napi::Value(Napi::String::New(env, std::strerror(err))) : env.Null());
  return o;
}

std::vector<uint8_t> bytesFromJs(const Fields& o, const char* key) {
  Napi::Value v = o.get(key);
  if (!v.IsBuffer()) o.fail(key, "a Buffer");
  Napi::Buffer<uint8_t> b = v.As<Napi::Buffer<uint8_t>>();
  return std::vector<uint8_t>(b.Data(), b.Data() + b.Length());
}

uint32_t u32FromJs(const Napi::Value& v, const char* what, uint32_t max) {
  if (!v.IsNumber()) throw Napi::TypeError::New(v.Env(), std::string("SRTP resume.") + what + " must be a number");
  double d = v.As<Napi::Number>().DoubleValue();
  if (!(d >= 0 && d <= double(max)) || d != double(uint32_t(d)))
    throw Napi::RangeError::New(v.Env(), std::string("SRTP resume.") + what + " out of range");
  return uint32_t(d);
}

/** SrtpKeys.resume (src/dataplane/types.ts SrtpProgress); absent = a fresh context. */
SrtpProgress srtpProgressFromJs(const Napi::Value& v) {
  SrtpProgress p;
  if (v.IsNull() || v.IsUndefined()) return p;
  if (!v.IsObject()) throw Napi::TypeError::New(v.Env(), "SRTP resume must be an object");
  Napi::Object o = v.As<Napi::Object>();
  Napi::Value rtp = o.Get("rtp");
  if (rtp.IsObject()) {
    Napi::Object r = rtp.As<Napi::Object>();
    p.rtp = true;
    p.rtpSsrc = u32FromJs(r.Get("ssrc"), "rtp.ssrc", 0xffffffffu);
    p.roc = u32FromJs(r.Get("roc"), "rtp.roc", 0x7fffu);
    p.seq = uint16_t(u32FromJs(r.Get("seq"), "rtp.seq", 0xffffu));
  }
  Napi::Value rtcp = o.Get("rtcp");
  if (rtcp.IsObject()) {
    Napi::Object r = rtcp.As<Napi::Object>();
    p.rtcp = true;
    p.rtcpSsrc = u32FromJs(r.Get("ssrc"), "rtcp.ssrc", 0xffffffffu);
    p.srtcpIndex = u32FromJs(r.Get("index"), "rtcp.index", 0x7fffffffu);
  }
  return p;
}

Napi::Value srtpProgressToJs(Napi::Env env, const SrtpProgress& p) {
  if (!p.rtp && !p.rtcp) return env.Null();
  Napi::Object o = Napi::Object::New(env);
  if (p.rtp) {
    Napi::Object r = Napi::Object::New(env);
    r.Set("ssrc", double(p.rtpSsrc));
    r.Set("roc", double(p.roc));
    r.Set("seq", double(p.seq));
    o.Set("rtp", r);
  }
  if (p.rtcp) {
    Napi::Object r = Napi::Object::New(env);
    r.Set("ssrc", double(p.rtcpSsrc));
    r.Set("index", double(p.srtcpIndex));
    o.Set("rtcp", r);
  }
  return o;
}

/**
 * One direction of StreamCrypto: SrtpKeys (src/dataplane/types.ts), DtlsSrtpKeys ({dtlsOf}), or null = plain
 * RTP.
 */
SrtpKeySpec srtpKeysFromJs(const Fields& crypto, const char* key) {
  SrtpKeySpec k;
  Napi::Value v = crypto.get(key);
  if (v.IsNull()) return k;
  Fields o(v, crypto.path(key));
  if (!o.absent("dtlsOf")) {
    double of = o.number("dtlsOf");
    if (!(of >= 1 && of <= 0x7fffffff) || of != double(int32_t(of)))
      throw Napi::RangeError::New(v.Env(), o.path("dtlsOf") + " must be a stream id");
    k.dtlsOf = int32_t(of);
    k.resume = srtpProgressFromJs(o.get("resume"));
    return k;
  }
  std::string suite = o.string("suite");
  if (!srtpSuiteFromName(suite, &k.suite)) throw Napi::TypeError::New(v.Env(), o.path("suite") + ": unknown SRTP suite " + suite);
  k.key = bytesFromJs(o, "key");
  k.salt = bytesFromJs(o, "salt");
  k.encryptRtp = !o.boolean("unencryptedSrtp");
  k.encryptRtcp = !o.boolean("unencryptedSrtcp");
  k.authRtp = !o.boolean("unauthenticatedSrtp");
  k.resume = srtpProgressFromJs(o.get("resume"));
  k.present = true;
  return k;
}

StreamCryptoSpec cryptoFromJs(const Fields& rule) {
  StreamCryptoSpec c;
  if (rule.nullish("crypto")) return c;
  Fields o(rule.get("crypto"), rule.path("crypto"));
  c.inbound = srtpKeysFromJs(o, "inbound");
  c.outbound = srtpKeysFromJs(o, "outbound");
  c.recrypt = o.boolean("recrypt");
  return c;
}

/** A string field or null (`remoteUfrag: string | null`); false = null. */
bool stringOrNull(const Fields& o, const char* key, std::string& out) {
  Napi::Value v = o.get(key);
  if (v.IsNull()) return false;
  if (!v.IsString()) o.fail(key, "a string or null");
  out = v.As<Napi::String>().Utf8Value();
  return true;
}

/** StreamIce (src/dataplane/types.ts); absent/null = no ICE. */
std::shared_ptr<const IceConfig> iceFromJs(const Fields& rule) {
  if (rule.nullish("ice")) return nullptr;
  Fields o(rule.get("ice"), rule.path("ice"));
  auto c = std::make_shared<IceConfig>();
  c->localUfrag = o.string("localUfrag");
  c->localPwd = o.string("localPwd");
  if (c->localUfrag.empty() || c->localPwd.empty()) o.fail("localUfrag", "non-empty, and so must localPwd");
  const bool ru = stringOrNull(o, "remoteUfrag", c->remoteUfrag);
  const bool rp = stringOrNull(o, "remotePwd", c->remotePwd);
  c->hasRemote = ru && rp;
  c->controlling = o.boolean("controlling");
  c->lite = o.boolean("lite");
  if (!parseTieBreaker(o.string("tieBreaker"), c->tieBreaker)) o.fail("tieBreaker", "16 hex digits");
  Napi::Value cands = o.get("remoteCandidates");
  if (!cands.IsArray()) o.fail("remoteCandidates", "an array");
  Napi::Array arr = cands.As<Napi::Array>();
  for (uint32_t i = 0; i < arr.Length(); ++i) {
    Fields cf(arr.Get(i), o.path("remoteCandidates") + "[" + std::to_string(i) + "]");
    IceCandidateSpec cand;
    cand.foundation = cf.string("foundation");
    cand.component = uint32_t(cf.number("component"));
    cand.priority = uint32_t(cf.number("priority"));
    cand.type = cf.string("type");
    cand.endpoint = endpointFromJs(cf.get("endpoint"), cf.path("endpoint"));
    c->remoteCandidates.push_back(std::move(cand));
  }
  return c;
}

/** StreamDtls; absent/null = no DTLS. */
std::shared_ptr<const DtlsConfig> dtlsFromJs(const Fields& rule) {
  if (rule.nullish("dtls")) return nullptr;
  Fields o(rule.get("dtls"), rule.path("dtls"));
  auto c = std::make_shared<DtlsConfig>();
  std::string role = o.string("role");
  if (role != "active" && role != "passive") o.fail("role", "'active' or 'passive'");
  c->active = role == "active";
  if (!o.get("remoteFingerprint").IsNull()) {
    Fields f(o.get("remoteFingerprint"), o.path("remoteFingerprint"));
    c->fingerprintHash = f.string("hash");
    c->remoteFingerprint = bytesFromJs(f, "value");
    c->hasRemoteFingerprint = true;
  }
  c->generation = o.number("generation");
  if (!o.nullish("restored")) {
    // DtlsSessionKeys: lengths checked against the profile, so a damaged saved state cannot reach SRTP.
    Fields k(o.get("restored"), o.path("restored"));
    auto m = std::make_shared<DtlsSrtpMaterial>();
    m->profileName = k.string("profile");
    size_t keyLen = 0, saltLen = 0;
    if (!dtlsProfileSuite(m->profileName, &m->suite, &keyLen, &saltLen)) k.fail("profile", "a use_srtp profile ngrelay offers");
    m->clientKey = bytesFromJs(k, "clientKey");
    m->clientSalt = bytesFromJs(k, "clientSalt");
    m->serverKey = bytesFromJs(k, "serverKey");
    m->serverSalt = bytesFromJs(k, "serverSalt");
    if (m->clientKey.size() != keyLen || m->serverKey.size() != keyLen || m->clientSalt.size() != saltLen ||
        m->serverSalt.size() != saltLen)
      k.fail("clientKey", "keys and salts of the profile's lengths");
    m->relayIsClient = k.boolean("relayIsClient");
    m->restored = true;
    if (!k.nullish("peerFingerprint")) c->restoredPeerFingerprint = k.string("peerFingerprint");
    c->restored = std::move(m);
  }
  return c;
}

/** StreamBundle (src/dataplane/types.ts); absent/null = not bundled. */
std::shared_ptr<const BundleConfig> bundleFromJs(const Fields& rule) {
  if (rule.nullish("bundle")) return nullptr;
  Fields o(rule.get("bundle"), rule.path("bundle"));
  auto c = std::make_shared<BundleConfig>();
  double transport = o.number("transport");
  if (!(transport >= 1 && transport <= 0x7fffffff) || transport != double(int32_t(transport)))
    o.fail("transport", "a stream id");
  c->transport = int32_t(transport);
  if (!stringOrNull(o, "mid", c->mid)) c->mid.clear();
  if (c->mid.size() > 255) o.fail("mid", "at most 255 bytes");
  Napi::Value ext = o.get("midExtensionId");
  if (ext.IsNumber()) {
    double id = ext.As<Napi::Number>().DoubleValue();
    if (!(id >= 1 && id <= 255) || id != double(int32_t(id))) o.fail("midExtensionId", "1 .. 255 or null");
    c->midExtId = int16_t(id);
  } else if (!ext.IsNull()) {
    o.fail("midExtensionId", "a number or null");
  }
  Napi::Value pts = o.get("payloadTypes");
  if (!pts.IsArray()) o.fail("payloadTypes", "an array");
  Napi::Array arr = pts.As<Napi::Array>();
  for (uint32_t i = 0; i < arr.Length(); ++i) {
    Napi::Value v = arr.Get(i);
    double pt = v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : -1;
    if (!(pt >= 0 && pt <= 127) || pt != double(int32_t(pt))) o.fail("payloadTypes", "an array of 0 .. 127");
    c->payloadTypes[int(pt) >> 6] |= uint64_t(1) << (int(pt) & 63);
  }
  return c;
}

/**
 * The packed part of a StreamRule (src/dataplane/rule-packing.ts RULE_SLOTS, which is checked against
 * kRuleSlotNames when the addon is loaded): one Float64Array slot per scalar field, in this order. A rule
 * crosses into C++ as (slots, expected address, extras): reading ~15 fields one napi_get_named_property at a
 * time (each internalizing its key) was most of what an ng command spent in the addon.
 */
enum RuleSlot : uint32_t {
  kExpectedFamily,  // 0 = expected null, 4 = IPv4, 6 = IPv6
  kExpectedPort,
  kLearning,  // index into kLearningNames
  kStrictSource,
  kMediaHandover,
  kAsymmetric,
  kSink,  // -1 = null
  kSignalGeneration,
  kClockRate,  // 0 = absent
  kBlockMedia,
  kSilenceMedia,
  kDtmfPayloadType,  // -1 = null/absent
  kBlockDtmf,
  kDtmfReplace,  // -1 = null/absent, -2 = 'random', else 0..15
  kForwardIceDtls,
  kRuleSlotCount
};
/** The TS field each slot holds: the layout check, and the name in errors. */
const char* const kRuleSlotNames[kRuleSlotCount] = {
    "expected.family", "expected.port", "learning",        "strictSource", "mediaHandover",
    "asymmetric",      "sink",          "signalGeneration", "clockRate",    "blockMedia",
    "silenceMedia",    "dtmfPayloadType", "blockDtmf",     "dtmfReplace",  "forwardIceDtls"};
/** Learning modes by their code in kLearning. */
const char* const kLearningNames[] = {"off", "immediate", "delayed", "heuristic"};
const Learning kLearningModes[] = {Learning::Off, Learning::Immediate, Learning::Delayed, Learning::Heuristic};
constexpr double kLearningCount = double(sizeof(kLearningModes) / sizeof(kLearningModes[0]));

/** The slots of one packed rule, each range-checked (the TS packer checked the types). */
class RuleSlots {
 public:
  RuleSlots(Napi::Env env, const Napi::Value& v) : env_(env) {
    if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_float64_array ||
        v.As<Napi::TypedArray>().ElementLength() != kRuleSlotCount)
      throw Napi::TypeError::New(env, "rule slots must be a Float64Array of " + std::to_string(kRuleSlotCount));
    d_ = v.As<Napi::Float64Array>().Data();
  }
  double at(RuleSlot s) const { return d_[s]; }
  [[noreturn]] void fail(RuleSlot s, const char* what) const {
    throw Napi::TypeError::New(env_, std::string("rule.") + kRuleSlotNames[s] + " must be " + what);
  }
  bool flag(RuleSlot s) const {
    double v = d_[s];
    if (v != 0 && v != 1) fail(s, "a boolean");
    return v == 1;
  }
  /** An integer in [lo, hi]. */
  int64_t integer(RuleSlot s, double lo, double hi, const char* what) const {
    double v = d_[s];
    if (!(v >= lo && v <= hi) || v != double(int64_t(v))) fail(s, what);
    return int64_t(v);
  }

 private:
  Napi::Env env_;
  const double* d_ = nullptr;
};

/**
 * StreamRule and its crypto (src/dataplane/types.ts), packed by src/dataplane/rule-packing.ts: the scalar
 * slots, the expected address (a string, or null when expected is null) and `extras`, the rule object itself
 * when it has crypto, ice, dtls or bundle (read field by field and checked as Fields does), else null.
 */
Rule ruleFromJs(const Napi::Value& slotsValue, const Napi::Value& address, const Napi::Value& extras, StreamCryptoSpec& crypto) {
  Napi::Env env = slotsValue.Env();
  RuleSlots f(env, slotsValue);
  Rule r;
  const int64_t family = f.integer(kExpectedFamily, 0, 6, "0, 4 or 6");
  if (family != 0) {
    if (family != 4 && family != 6) f.fail(kExpectedFamily, "'IPv4' or 'IPv6'");
    const uint16_t port = uint16_t(f.integer(kExpectedPort, 0, 65535, "a port number 0 .. 65535"));
    if (!address.IsString()) throw Napi::TypeError::New(env, "rule.expected.address must be a string");
    const std::string text = address.As<Napi::String>().Utf8Value();
    if (!SockAddr::parse(text, port, r.expected) || (r.expected.family() == AF_INET) != (family == 4))
      throw Napi::TypeError::New(env, "rule.expected.address is not an IP" + std::to_string(family) + " literal: " + text);
  }
  r.learning = kLearningModes[f.integer(kLearning, 0, kLearningCount - 1, "a learning mode")];
  r.strictSource = f.flag(kStrictSource);
  r.mediaHandover = f.flag(kMediaHandover);
  r.asymmetric = f.flag(kAsymmetric);
  r.sink = f.integer(kSink, -1, 0x7fffffff, "a stream id or null");
  r.signalGeneration = f.at(kSignalGeneration);
  if (!std::isfinite(r.signalGeneration)) f.fail(kSignalGeneration, "a number");
  const int64_t clock = f.integer(kClockRate, 0, 4294967295.0, "a clock rate or absent");
  if (clock > 0) r.clockRate = uint32_t(clock);
  r.blockMedia = f.flag(kBlockMedia);
  r.silenceMedia = f.flag(kSilenceMedia);
  const int64_t pt = f.integer(kDtmfPayloadType, -1, 127, "a payload type, null or absent");
  r.dtmfPt = int16_t(pt);
  r.blockDtmf = f.flag(kBlockDtmf);
  const int64_t replace = f.integer(kDtmfReplace, -2, 15, "0..15, 'random', null or absent");
  if (replace == -2) r.dtmfReplace = kDtmfReplaceRandom;
  else if (replace >= 0) r.dtmfReplace = int8_t(replace);
  r.forwardIceDtls = f.flag(kForwardIceDtls);
  if (!extras.IsNull() && !extras.IsUndefined()) {
    Fields o(extras, "rule");
    r.ice = iceFromJs(o);
    r.dtls = dtlsFromJs(o);
    r.bundle = bundleFromJs(o);
    crypto = cryptoFromJs(o);
  }
  // ICE and DTLS are answered by the engine, BUNDLE demultiplexed by it: such a stream is never handed to the
  // kernel path.
  r.userspaceOnly = r.ice != nullptr || r.dtls != nullptr || r.forwardIceDtls || r.bundle != nullptr;
  return r;
}

/**
 * One stream's counters as readCounters writes them (src/dataplane/counter-unpacking.ts COUNTER_SLOTS, checked
 * against kCounterSlotNames at load): booleans as 0/1, `has*` saying whether the optional fields exist.
 */
enum CounterSlot : uint32_t {
  kCountPresent,  // 0 = no such stream
  kCountPackets,
  kCountBytes,
  kCountErrors,
  kCountHasSrtp,
  kCountSrtpAuthFailed,
  kCountSrtpReplayed,
  kCountLastPacketMs,
  kCountEndpointFamily,  // 0 = no endpoint, 4, 6
  kCountEndpointPort,
  kCountConfirmed,
  kCountHasRtp,
  kCountSsrc,
  kCountLastSeq,
  kCountBundleTransport,
  kCountBundleUnmatched,
  kCountKernelPath,
  kCountInKernel,
  kCountKernelPackets,
  kCountUserspaceLastPacketMs,
  kCountKernelLastPacketMs,
  kCounterSlotCount
};
const char* const kCounterSlotNames[kCounterSlotCount] = {
    "present",         "packets",      "bytes",         "errors",          "hasSrtp",       "srtpAuthFailed",
    "srtpReplayed",    "lastPacketMs", "endpoint.family", "endpoint.port", "confirmed",     "hasRtp",
    "ssrc",            "lastSeq",      "hasBundle",     "bundleUnmatched", "kernelPath",    "inKernel",
    "kernelPackets",   "userspaceLastPacketMs", "kernelLastPacketMs"};

/** The packed-rule layout, exported as `ruleLayout` so the TS packer can check it agrees. */
Napi::Object ruleLayoutToJs(Napi::Env env) {
  Napi::Object o = Napi::Object::New(env);
  Napi::Array slots = Napi::Array::New(env, kRuleSlotCount);
  for (uint32_t i = 0; i < kRuleSlotCount; ++i) slots.Set(i, kRuleSlotNames[i]);
  Napi::Array learning = Napi::Array::New(env, size_t(kLearningCount));
  for (uint32_t i = 0; i < uint32_t(kLearningCount); ++i) learning.Set(i, kLearningNames[i]);
  o.Set("slots", slots);
  o.Set("learning", learning);
  return o;
}

/** The counter layout, exported as `counterLayout` (see CounterSlot). */
Napi::Array counterLayoutToJs(Napi::Env env) {
  Napi::Array slots = Napi::Array::New(env, kCounterSlotCount);
  for (uint32_t i = 0; i < kCounterSlotCount; ++i) slots.Set(i, kCounterSlotNames[i]);
  return slots;
}

Napi::Value endpointToJs(Napi::Env env, const SockAddr& a) {
  if (!a.valid()) return env.Null();
  Napi::Object o = Napi::Object::New(env);
  o.Set("family", a.family() == AF_INET ? "IPv4" : "IPv6");
  o.Set("address", a.addressString());
  o.Set("port", double(a.port()));
  return o;
}

const char* eventName(EventType t) {
  switch (t) {
    case EventType::FirstPacket: return "first-packet";
    case EventType::Learned: return "learned";
    case EventType::SourceChanged: return "source-changed";
    case EventType::Idle: return "idle";
    case EventType::Resumed: return "resumed";
    case EventType::Dtmf: return "dtmf";
    case EventType::IceSelected: return "ice-selected";
    case EventType::Dtls: return "dtls";
  }
  return "unknown";
}

/** An Error carrying the failure's `code` (EADDRINUSE, ENOENT, ...), which the TS loader maps to typed errors. */
Napi::Error codedError(Napi::Env env, const std::string& message, const std::string& code) {
  Napi::Error err = Napi::Error::New(env, message);
  err.Set("code", code);
  return err;
}

/** Runs an engine call and turns the engine's failures into JS errors. */
template <typename Call>
void callEngine(Napi::Env env, Call&& call) {
  try {
    call();
  } catch (const BindFailure& f) {
    throw codedError(env, f.message, f.code);
  } catch (const RecordingFailure& f) {
    throw codedError(env, f.message, f.code);
  } catch (const std::invalid_argument& e) {
    throw Napi::Error::New(env, e.what());
  }
}

using EventBatch = std::vector<EngineEvent>;

/**
 * Calls a thread-safe function's JS listener through the C API, not Napi::Function::Call: that throws a C++
 * exception out of the callback (std::terminate) both when the listener throws and when Node, tearing the
 * environment down, delivers a queued call JS can no longer run. This way a listener's exception stays
 * pending and Node raises it as uncaught, as for any callback, and a call at teardown does nothing.
 */
void callListener(Napi::Env env, Napi::Function listener, napi_value arg) {
  napi_value undefined;
  if (napi_get_undefined(env, &undefined) != napi_ok) return;
  napi_call_function(env, undefined, listener, 1, &arg, nullptr);
}

void deliverEvents(Napi::Env env, Napi::Function listener, void* /*context*/, EventBatch* batch) {
  std::unique_ptr<EventBatch> owned(batch);
  if (env == nullptr || listener.IsEmpty()) return;
  Napi::Array arr = Napi::Array::New(env, owned->size());
  for (size_t i = 0; i < owned->size(); ++i) {
    const EngineEvent& e = (*owned)[i];
    Napi::Object o = Napi::Object::New(env);
    o.Set("type", eventName(e.type));
    o.Set("id", double(e.id));
    bool fromSource = e.type == EventType::FirstPacket || e.type == EventType::Resumed || e.type == EventType::Dtmf;
    if (e.type == EventType::Dtls) {
      o.Set("ok", e.dtlsOk);
      o.Set("profile", e.dtlsProfile.empty() ? env.Null() : Napi::Value(Napi::String::New(env, e.dtlsProfile)));
      o.Set("error", e.dtlsError.empty() ? env.Null() : Napi::Value(Napi::String::New(env, e.dtlsError)));
    } else {
      o.Set(fromSource ? "from" : "endpoint", endpointToJs(env, e.addr));
    }
    if (e.type == EventType::Dtmf) {
      o.Set("event", double(e.dtmf.event));
      o.Set("volume", double(e.dtmf.volume));
      o.Set("durationMs", double(e.dtmf.durationMs));
      o.Set("rtpTimestamp", double(e.dtmf.rtpTimestamp));
    }
    o.Set("atMs", double(e.atMs));
    arr.Set(uint32_t(i), o);
  }
  callListener(env, listener, arr);
}

using EventTsfn = Napi::TypedThreadSafeFunction<void, EventBatch, deliverEvents>;

class NativeEngine;
/** On the JS thread: fence `data` (the id, carried in the pointer) has passed. */
void deliverFence(Napi::Env env, Napi::Function listener, NativeEngine* self, void* data);
using FenceTsfn = Napi::TypedThreadSafeFunction<NativeEngine, void, deliverFence>;

class NativeEngine : public Napi::ObjectWrap<NativeEngine> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "NativeEngine",
                       {InstanceMethod("addStream", &NativeEngine::AddStream),
                        InstanceMethod("updateStream", &NativeEngine::UpdateStream),
                        InstanceMethod("removeStream", &NativeEngine::RemoveStream),
                        InstanceMethod("sync", &NativeEngine::Sync),
                        InstanceMethod("fence", &NativeEngine::Fence),
                        InstanceMethod("wakeQueued", &NativeEngine::WakeQueued),
                        InstanceMethod("readCounters", &NativeEngine::ReadCounters),
                        InstanceMethod("requestQuality", &NativeEngine::RequestQuality),
                        InstanceMethod("takeQuality", &NativeEngine::TakeQuality),
                        InstanceMethod("playDtmf", &NativeEngine::PlayDtmf),
                        InstanceMethod("readSrtpProgress", &NativeEngine::ReadSrtpProgress),
                        InstanceMethod("lastPacketTimes", &NativeEngine::LastPacketTimes),
                        InstanceMethod("totals", &NativeEngine::Totals),
                        InstanceMethod("info", &NativeEngine::Info),
                        InstanceMethod("enableKernelPath", &NativeEngine::EnableKernelPath),
                        InstanceMethod("startRecording", &NativeEngine::StartRecording),
                        InstanceMethod("setRecordingStreams", &NativeEngine::SetRecordingStreams),
                        InstanceMethod("stopRecording", &NativeEngine::StopRecording),
                        InstanceMethod("readRecording", &NativeEngine::ReadRecording),
                        InstanceMethod("dtlsFingerprint", &NativeEngine::DtlsFingerprint),
                        InstanceMethod("dtlsCertificate", &NativeEngine::DtlsCertificate),
                        InstanceMethod("readDtlsKeys", &NativeEngine::ReadDtlsKeys),
                        InstanceMethod("close", &NativeEngine::Close)});
  }

  // new NativeEngine(threads, receiveBufferBytes, onEvents, {policy, priority}, {policy, priority} for the idle threads,
  //                  onFence(id) | undefined, DtlsCertificateOptions | undefined)
  explicit NativeEngine(const Napi::CallbackInfo& info) : Napi::ObjectWrap<NativeEngine>(info) {
    Napi::Env env = info.Env();
    int threads = info[0].IsNumber() ? info[0].As<Napi::Number>().Int32Value() : 0;
    int rcvbuf = info[1].IsNumber() ? info[1].As<Napi::Number>().Int32Value() : 0;
    if (!info[2].IsFunction()) throw Napi::TypeError::New(env, "onEvents callback required");
    tsfn_ = EventTsfn::New(env, info[2].As<Napi::Function>(), "ngrelay-engine-events", 0, 1);
    // Event delivery must never keep the process alive on its own.
    tsfn_.Unref(env);
    EventTsfn* tsfn = &tsfn_;
    scheduling_ = schedulingFromJs(env, info[3]);
    idleScheduling_ = schedulingFromJs(env, info[4]);
    FenceSink fenceSink;
    if (info.Length() > 5 && info[5].IsFunction()) {
      fenceTsfn_ = FenceTsfn::New(env, info[5].As<Napi::Function>(), "ngrelay-engine-fences", 0, 1, this);
      fenceTsfn_.Unref(env);
      hasFenceTsfn_ = true;
      FenceTsfn* fences = &fenceTsfn_;
      fenceSink = [fences](uint64_t id) {
        fences->NonBlockingCall(reinterpret_cast<void*>(uintptr_t(id)));
      };
    }
    DtlsCertificateSpec dtls;
    if (info.Length() > 6 && !info[6].IsUndefined() && !info[6].IsNull()) {
      Fields d(info[6], "options.dtls");
      std::string cipher = d.string("cipher");
      if (cipher != "prime256v1" && cipher != "rsa") d.fail("cipher", "'prime256v1' or 'rsa'");
      dtls.rsa = cipher == "rsa";
      dtls.rsaKeyBits = int(d.number("rsaKeyBits"));
      std::string sig = d.string("signature");
      if (sig != "sha-256" && sig != "sha-1") d.fail("signature", "'sha-256' or 'sha-1'");
      dtls.sha1 = sig == "sha-1";
      if (!d.nullish("certificatePem")) {
        dtls.certificatePem = d.string("certificatePem");
        dtls.privateKeyPem = d.string("privateKeyPem");
      }
    }
    try {
    engine_ = std::make_unique<Engine>(
        threads, rcvbuf,
        [tsfn](std::vector<EngineEvent>&& events) {
          auto* batch = new EventBatch(std::move(events));
          if (tsfn->NonBlockingCall(batch) != napi_ok) delete batch;
        },
        scheduling_.spec, idleScheduling_.spec, std::move(fenceSink), dtls);
    } catch (const std::runtime_error& e) {
      throw Napi::Error::New(env, e.what());  // the DTLS certificate could not be made
    }
    napi_add_env_cleanup_hook(env, &NativeEngine::CleanupHook, this);
    hookInstalled_ = true;
    env_ = env;
  }

  ~NativeEngine() override { Shutdown(); }

  /** Fence `id` passed: free what it retired, then tell JS (after close only JS is told). */
  void FencePassed(Napi::Function listener, uint64_t id) {
    // After close() the JS side has resolved every waiter itself; a fence still queued on the released
    // function may be delivered while Node tears the environment down (FreeEnvironment runs pending calls).
    if (!engine_) return;
    engine_->fencePassed(id);
    if (!listener.IsEmpty()) callListener(listener.Env(), listener, Napi::Number::New(listener.Env(), double(id)));
  }

 private:
  static void CleanupHook(void* self) {
    auto* e = static_cast<NativeEngine*>(self);
    e->hookInstalled_ = false;
    e->Shutdown();
  }

  void Shutdown() {
    if (!engine_) return;
    engine_->close();  // joins the I/O threads: no event call can follow
    engine_.reset();
    tsfn_.Release();
    if (hasFenceTsfn_) fenceTsfn_.Release();
    if (hookInstalled_) {
      napi_remove_env_cleanup_hook(env_, &NativeEngine::CleanupHook, this);
      hookInstalled_ = false;
    }
  }

  Engine& engine(Napi::Env env) {
    if (!engine_) throw Napi::Error::New(env, "engine is closed");
    return *engine_;
  }

  // addStream(spec: StreamSocketSpec, ruleSlots, expectedAddress, ruleExtras): the rule as packed by
  // src/dataplane/rule-packing.ts.
  Napi::Value AddStream(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Fields o(info[0], "spec");
    StreamSpec spec;
    double id = o.number("id");
    if (!(id >= 1 && id <= 0x7fffffff) || id != double(int32_t(id)))
      throw Napi::RangeError::New(env, "spec.id must be 1 .. 2^31-1");
    spec.id = int32_t(id);
    std::string component = o.string("component");
    if (component != "rtp" && component != "rtcp") o.fail("component", "'rtp' or 'rtcp'");
    spec.isRtcp = component == "rtcp";
    spec.localAddress = o.string("localAddress");
    double port = o.number("localPort");
    if (!(port >= 0 && port <= 65535)) throw Napi::RangeError::New(env, "spec.localPort out of range");
    spec.localPort = uint16_t(port);
    Napi::Value muxed = o.get("muxedWith");
    if (muxed.IsNumber()) spec.muxedWith = muxed.As<Napi::Number>().Int64Value();
    else if (muxed.IsUndefined() || muxed.IsNull()) spec.muxedWith = -1;
    else o.fail("muxedWith", "a number or absent");
    Napi::Value threadOf = o.get("threadOf");
    if (threadOf.IsNumber()) spec.threadOf = threadOf.As<Napi::Number>().Int64Value();
    else if (!threadOf.IsUndefined() && !threadOf.IsNull()) o.fail("threadOf", "a stream id or absent");
    StreamCryptoSpec crypto;
    Rule rule = ruleFromJs(info[1], info[2], info[3], crypto);
    callEngine(env, [&] { engine(env).addStream(spec, rule, crypto); });
    return env.Undefined();
  }

  Napi::Value UpdateStream(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!info[0].IsNumber()) throw Napi::TypeError::New(env, "updateStream: id must be a number");
    int32_t id = info[0].As<Napi::Number>().Int32Value();
    StreamCryptoSpec crypto;
    Rule rule = ruleFromJs(info[1], info[2], info[3], crypto);
    callEngine(env, [&] { engine(env).updateStream(id, rule, crypto); });
    return env.Undefined();
  }

  Napi::Value RemoveStream(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    engine(env).removeStream(info[0].As<Napi::Number>().Int32Value());
    return env.Undefined();
  }

  // lastPacketTimes(Int32Array ids) -> Float64Array: one crossing and no objects for any number of streams.
  // sync(): waits until the I/O threads have applied every queued change (see Engine::sync).
  Napi::Value Sync(const Napi::CallbackInfo& info) {
    if (engine_) engine_->sync();
    return info.Env().Undefined();
  }

  // fence(): queues an asynchronous fence and returns its id; onFence(id) follows once it passed.
  Napi::Value Fence(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!hasFenceTsfn_) throw Napi::Error::New(env, "fence() needs the onFence callback");
    return Napi::Number::New(env, double(engine(env).fence()));  // negative: nobody waits (Engine::fence)
  }

  // wakeQueued(): wakes the I/O threads holding commands a queued fence left without a wake-up.
  Napi::Value WakeQueued(const Napi::CallbackInfo& info) {
    if (engine_) engine_->wakeQueued();
    return info.Env().Undefined();
  }

  Napi::Value LastPacketTimes(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Engine& e = engine(env);
    if (!info[0].IsTypedArray() || info[0].As<Napi::TypedArray>().TypedArrayType() != napi_int32_array)
      throw Napi::TypeError::New(env, "lastPacketTimes expects an Int32Array of stream ids");
    Napi::Int32Array ids = info[0].As<Napi::Int32Array>();
    Napi::Float64Array out = Napi::Float64Array::New(env, ids.ElementLength());
    for (size_t i = 0; i < ids.ElementLength(); ++i) out[i] = double(e.lastPacketMs(ids[i]));
    return out;
  }

  // readSrtpProgress(ids) -> per id {inbound, outbound} (each SrtpProgress or null), or null for an unknown id.
  Napi::Value ReadSrtpProgress(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Engine& e = engine(env);
    Napi::Array ids = info[0].As<Napi::Array>();
    Napi::Array out = Napi::Array::New(env, ids.Length());
    for (uint32_t i = 0; i < ids.Length(); ++i) {
      SrtpProgress in, outb;
      Napi::Value idv = ids.Get(i);
      if (!idv.IsNumber() || !e.readSrtpProgress(idv.As<Napi::Number>().Int32Value(), in, outb)) {
        out.Set(i, env.Null());
        continue;
      }
      Napi::Object o = Napi::Object::New(env);
      o.Set("inbound", srtpProgressToJs(env, in));
      o.Set("outbound", srtpProgressToJs(env, outb));
      out.Set(i, o);
    }
    return out;
  }

  // readCounters(ids, slots: Float64Array) -> per id: the endpoint address (string or null), or for a stream
  // with ICE or DTLS an object { address, ice?, dtls? }. The numbers go into `slots`, kCounterSlotCount per id
  // in the order of ids (src/dataplane/counter-unpacking.ts builds the StreamCounters objects from both):
  // a dozen napi_set_named_property calls per stream were most of a delete's time in the addon.
  Napi::Value ReadCounters(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Engine& e = engine(env);
    if (!info[0].IsArray()) throw Napi::TypeError::New(env, "readCounters: ids must be an array");
    Napi::Array ids = info[0].As<Napi::Array>();
    const uint32_t n = ids.Length();
    if (!info[1].IsTypedArray() || info[1].As<Napi::TypedArray>().TypedArrayType() != napi_float64_array ||
        info[1].As<Napi::TypedArray>().ElementLength() < size_t(n) * kCounterSlotCount)
      throw Napi::TypeError::New(env, "readCounters: slots must be a Float64Array of " + std::to_string(kCounterSlotCount) + " per id");
    double* slots = info[1].As<Napi::Float64Array>().Data();
    Napi::Array out = Napi::Array::New(env, n);
    for (uint32_t i = 0; i < n; ++i) {
      double* c = slots + size_t(i) * kCounterSlotCount;
      std::fill(c, c + kCounterSlotCount, 0.0);
      StreamSnapshot s;
      Napi::Value idv = ids.Get(i);
      if (!idv.IsNumber() || !e.readCounters(idv.As<Napi::Number>().Int32Value(), s)) {
        out.Set(i, env.Null());
        continue;
      }
      c[kCountPresent] = 1;
      c[kCountPackets] = double(s.packets);
      c[kCountBytes] = double(s.bytes);
      c[kCountErrors] = double(s.errors);
      c[kCountHasSrtp] = s.hasSrtp ? 1 : 0;
      c[kCountSrtpAuthFailed] = double(s.srtpAuthFailed);
      c[kCountSrtpReplayed] = double(s.srtpReplayed);
      c[kCountLastPacketMs] = double(s.lastPacketMs);
      c[kCountEndpointFamily] = !s.endpoint.valid() ? 0 : s.endpoint.family() == AF_INET ? 4 : 6;
      c[kCountEndpointPort] = s.endpoint.valid() ? double(s.endpoint.port()) : 0;
      c[kCountConfirmed] = s.confirmed ? 1 : 0;
      c[kCountHasRtp] = s.hasRtp ? 1 : 0;
      c[kCountSsrc] = double(s.ssrc);
      c[kCountLastSeq] = double(s.seq);
      c[kCountBundleTransport] = s.bundleTransport ? 1 : 0;
      c[kCountBundleUnmatched] = double(s.bundleUnmatched);
      c[kCountKernelPath] = s.kernelPath ? 1 : 0;
      c[kCountInKernel] = s.inKernel ? 1 : 0;
      c[kCountKernelPackets] = double(s.kernelPackets);
      c[kCountUserspaceLastPacketMs] = double(s.userspaceLastPacketMs);
      c[kCountKernelLastPacketMs] = double(s.kernelLastPacketMs);
      Napi::Value address = s.endpoint.valid() ? Napi::Value(Napi::String::New(env, s.endpoint.addressString())) : env.Null();
      if (!s.hasIce && !s.hasDtls) {
        out.Set(i, address);
        continue;
      }
      Napi::Object o = Napi::Object::New(env);
      o.Set("address", address);
      if (s.hasIce) {
        Napi::Object ice = Napi::Object::New(env);
        ice.Set("state", iceStateName(s.iceState));
        ice.Set("selected", endpointToJs(env, s.iceSelected));
        ice.Set("checksReceived", double(s.iceChecksReceived));
        ice.Set("checksSent", double(s.iceChecksSent));
        ice.Set("stunRejected", double(s.iceStunRejected));
        ice.Set("consentExpired", double(s.iceConsentExpired));
        ice.Set("lastConsentMs", double(s.iceLastConsentMs));
        o.Set("ice", ice);
      }
      if (s.hasDtls) {
        Napi::Object d = Napi::Object::New(env);
        auto orNull = [&](const std::string& v) { return v.empty() ? env.Null() : Napi::Value(Napi::String::New(env, v)); };
        d.Set("state", dtlsStateName(s.dtlsState));
        d.Set("role", s.dtlsActive ? "active" : "passive");
        d.Set("profile", orNull(s.dtlsProfile));
        d.Set("peerFingerprint", orNull(s.dtlsPeerFingerprint));
        d.Set("error", orNull(s.dtlsError));
        o.Set("dtls", d);
      }
      out.Set(i, o);
    }
    return out;
  }

  // requestQuality(ids) -> token: the copies are queued on the owner threads (see Engine::requestQuality).
  Napi::Value RequestQuality(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!info[0].IsArray()) throw Napi::TypeError::New(env, "requestQuality expects an array of stream ids");
    Napi::Array arr = info[0].As<Napi::Array>();
    std::vector<int32_t> ids(arr.Length());
    for (uint32_t i = 0; i < arr.Length(); ++i) {
      Napi::Value v = arr.Get(i);
      if (!v.IsNumber()) throw Napi::TypeError::New(env, "requestQuality: stream ids must be numbers");
      ids[i] = v.As<Napi::Number>().Int32Value();
    }
    return Napi::Number::New(env, double(engine(env).requestQuality(ids)));
  }

  // takeQuality(token) -> [quality | null], in the order requested; only after a fence issued later passed.
  Napi::Value TakeQuality(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!info[0].IsNumber()) throw Napi::TypeError::New(env, "takeQuality expects a token");
    auto batch = engine(env).takeQuality(uint64_t(info[0].As<Napi::Number>().Int64Value()));
    Napi::Array out = Napi::Array::New(env, batch.size());
    for (size_t i = 0; i < batch.size(); ++i) out.Set(uint32_t(i), batch[i] ? Napi::Value(qualityToJs(env, *batch[i])) : env.Null());
    return out;
  }

  // playDtmf(id, {event, volume, payloadType, durationMs, pauseMs}) -> 'queued' | 'queue-full' | 'pass-through' |
  // 'unknown-stream' (the values are clamped by the control plane; here only kept within their fields).
  Napi::Value PlayDtmf(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!info[0].IsNumber() || !info[1].IsObject()) throw Napi::TypeError::New(env, "playDtmf expects (id, event)");
    Napi::Object o = info[1].As<Napi::Object>();
    auto field = [&](const char* name, uint32_t max) {
      Napi::Value v = o.Get(name);
      uint32_t n = v.IsNumber() ? v.As<Napi::Number>().Uint32Value() : 0;
      return n > max ? max : n;
    };
    DtmfPlay play;
    play.event = uint8_t(field("event", 15));
    play.volume = uint8_t(field("volume", 63));
    play.payloadType = uint8_t(field("payloadType", 127));
    play.durationMs = uint16_t(field("durationMs", 60000));
    play.pauseMs = uint16_t(field("pauseMs", 60000));
    switch (engine(env).playDtmf(info[0].As<Napi::Number>().Int32Value(), play)) {
      case DtmfPlayResult::Queued: return Napi::String::New(env, "queued");
      case DtmfPlayResult::QueueFull: return Napi::String::New(env, "queue-full");
      case DtmfPlayResult::PassThrough: return Napi::String::New(env, "pass-through");
      case DtmfPlayResult::UnknownStream: break;
    }
    return Napi::String::New(env, "unknown-stream");
  }

  Napi::Value Totals(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Napi::Object o = Napi::Object::New(env);
    EngineTotalsSnapshot t = engine_ ? engine_->totals() : EngineTotalsSnapshot{};
    o.Set("packets", double(t.packets));
    o.Set("bytes", double(t.bytes));
    o.Set("errors", double(t.errors));
    o.Set("malformed", double(t.malformed));
    o.Set("dropped", double(t.dropped));
    if (engine_ && engine_->kernelPath()) {
      o.Set("kernelPackets", double(t.kernelPackets));
      o.Set("kernelBytes", double(t.kernelBytes));
    }
    return o;
  }

  // enableKernelPath(addresses: string[]) -> {active, reason, attach, interfaces}: see Engine::enableKernelPath.
  Napi::Value EnableKernelPath(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!info[0].IsArray()) throw Napi::TypeError::New(env, "enableKernelPath expects an array of addresses");
    Napi::Array list = info[0].As<Napi::Array>();
    KernelPathSpec spec;
    for (uint32_t i = 0; i < list.Length(); ++i) spec.addresses.push_back(list.Get(i).ToString().Utf8Value());
    std::string why = engine(env).enableKernelPath(spec);
    return kernelPathToJs(env, why);
  }

  Napi::Object kernelPathToJs(Napi::Env env, const std::string& why) {
    Napi::Object o = Napi::Object::New(env);
    const KernelPath* k = engine_ ? engine_->kernelPath() : nullptr;
    o.Set("active", k != nullptr);
    o.Set("reason", why);
    o.Set("attach", k ? k->attachMode() : std::string());
    Napi::Array names = Napi::Array::New(env);
    if (k)
      for (size_t i = 0; i < k->interfaces().size(); ++i) names.Set(uint32_t(i), k->interfaces()[i]);
    o.Set("interfaces", names);
    return o;
  }

  Napi::Value Info(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Napi::Object o = Napi::Object::New(env);
    o.Set("threads", double(engine_ ? engine_->threadCount() : 0));
    o.Set("descriptorTables", engine_ && engine_->privateDescriptorTables() ? "private" : "shared");
    o.Set("scheduling", schedulingToJs(env, scheduling_, engine_ ? engine_->schedulingError() : 0));
    o.Set("idleScheduling", schedulingToJs(env, idleScheduling_, engine_ ? engine_->idleSchedulingError() : 0));
    return o;
  }

  // startRecording(id, path, 'raw'|'eth', egress)
  Napi::Value StartRecording(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    RecordingSpec spec;
    int64_t id = info[0].As<Napi::Number>().Int64Value();
    if (id < 1 || id > 0x7fffffff) throw Napi::RangeError::New(env, "recording id must be 1 .. 2^31-1");
    spec.id = int32_t(id);
    spec.path = info[1].As<Napi::String>().Utf8Value();
    std::string format = info[2].As<Napi::String>().Utf8Value();
    if (format != "raw" && format != "eth") throw Napi::TypeError::New(env, "recording format must be raw or eth");
    spec.link = format == "eth" ? LinkType::Ethernet : LinkType::Raw;
    spec.egress = info[3].ToBoolean().Value();
    spec.append = info[4].ToBoolean().Value();
    callEngine(env, [&] { engine(env).startRecording(spec); });
    return env.Undefined();
  }

  // setRecordingStreams(id, streamIds)
  Napi::Value SetRecordingStreams(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    int32_t id = info[0].As<Napi::Number>().Int32Value();
    Napi::Array arr = info[1].As<Napi::Array>();
    std::vector<int32_t> ids;
    ids.reserve(arr.Length());
    for (uint32_t i = 0; i < arr.Length(); ++i) ids.push_back(arr.Get(i).As<Napi::Number>().Int32Value());
    callEngine(env, [&] { engine(env).setRecordingStreams(id, ids); });
    return env.Undefined();
  }

  static Napi::Value RecordingToJs(Napi::Env env, const RecordingSnapshot& r) {
    Napi::Object o = Napi::Object::New(env);
    o.Set("queued", double(r.queued));
    o.Set("written", double(r.written));
    o.Set("dropped", double(r.dropped));
    o.Set("bytes", double(r.bytes));
    o.Set("error", r.lastErrno ? Napi::Value(Napi::String::New(env, std::strerror(r.lastErrno))) : env.Null());
    return o;
  }

  Napi::Value StopRecording(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!engine_) return env.Null();
    RecordingSnapshot r;
    if (!engine_->stopRecording(info[0].As<Napi::Number>().Int32Value(), r)) return env.Null();
    return RecordingToJs(env, r);
  }

  Napi::Value ReadRecording(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!engine_) return env.Null();
    RecordingSnapshot r;
    if (!engine_->readRecording(info[0].As<Napi::Number>().Int32Value(), r)) return env.Null();
    return RecordingToJs(env, r);
  }

  // dtlsFingerprint(hash) -> Buffer: the relay's certificate digest (a=fingerprint).
  Napi::Value DtlsFingerprint(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!info[0].IsString()) throw Napi::TypeError::New(env, "dtlsFingerprint: hash must be a string");
    std::vector<uint8_t> fp;
    if (!engine(env).dtlsFingerprint(info[0].As<Napi::String>().Utf8Value(), fp))
      throw Napi::TypeError::New(env, "dtlsFingerprint: unknown hash " + info[0].As<Napi::String>().Utf8Value());
    return Napi::Buffer<uint8_t>::Copy(env, fp.data(), fp.size());
  }

  // dtlsCertificate() -> {certificatePem, privateKeyPem}: the relay's certificate, to be saved for a restart.
  Napi::Value DtlsCertificate(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Napi::Object o = Napi::Object::New(env);
    o.Set("certificatePem", engine(env).dtlsCertificatePem());
    o.Set("privateKeyPem", engine(env).dtlsPrivateKeyPem());
    return o;
  }

  // readDtlsKeys(ids) -> per id DtlsSessionKeys, or null (unknown id, no handshake finished yet).
  Napi::Value ReadDtlsKeys(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Engine& e = engine(env);
    if (!info[0].IsArray()) throw Napi::TypeError::New(env, "readDtlsKeys: ids must be an array");
    Napi::Array ids = info[0].As<Napi::Array>();
    Napi::Array out = Napi::Array::New(env, ids.Length());
    for (uint32_t i = 0; i < ids.Length(); ++i) {
      DtlsSrtpMaterial k;
      std::string peer;
      Napi::Value idv = ids.Get(i);
      if (!idv.IsNumber() || !e.readDtlsKeys(idv.As<Napi::Number>().Int32Value(), k, peer)) {
        out.Set(i, env.Null());
        continue;
      }
      Napi::Object o = Napi::Object::New(env);
      auto buf = [&](const std::vector<uint8_t>& v) { return Napi::Buffer<uint8_t>::Copy(env, v.data(), v.size()); };
      o.Set("profile", k.profileName);
      o.Set("clientKey", buf(k.clientKey));
      o.Set("clientSalt", buf(k.clientSalt));
      o.Set("serverKey", buf(k.serverKey));
      o.Set("serverSalt", buf(k.serverSalt));
      o.Set("relayIsClient", k.relayIsClient);
      o.Set("peerFingerprint", peer.empty() ? env.Null() : Napi::Value(Napi::String::New(env, peer)));
      out.Set(i, o);
    }
    return out;
  }

  Napi::Value Close(const Napi::CallbackInfo& info) {
    Shutdown();
    return info.Env().Undefined();
  }

  std::unique_ptr<Engine> engine_;
  EventTsfn tsfn_;
  FenceTsfn fenceTsfn_;
  bool hasFenceTsfn_ = false;
  SchedulingFromJs scheduling_, idleScheduling_;
  napi_env env_ = nullptr;
  bool hookInstalled_ = false;
};

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("version", Napi::String::New(env, "0.1.0"));
  exports.Set("NativeEngine", NativeEngine::Define(env));
  exports.Set("ruleLayout", ruleLayoutToJs(env));
  exports.Set("counterLayout", counterLayoutToJs(env));
  InitSrtpBinding(env, exports);
  InitStunBinding(env, exports);
  InitSdNotify(env, exports);
  InitRlimit(env, exports);
  InitQualityBinding(env, exports);
  InitPublishedAddrBinding(env, exports);
  return exports;
}

void deliverFence(Napi::Env env, Napi::Function listener, NativeEngine* self, void* data) {
  if (env == nullptr || self == nullptr) return;
  self->FencePassed(listener, uint64_t(reinterpret_cast<uintptr_t>(data)));
}

}  // namespace

NODE_API_MODULE(ngrelay_engine, Init)
