// N-API binding of the engine. Converts JS rule objects to C++ rules, bind errors to JS errors carrying
// `code`, and delivers event batches from the I/O threads through one thread-safe function.
#include <napi.h>

#include <sched.h>

#include <cstring>
#include <memory>
#include <stdexcept>

#include "engine.hpp"

using namespace ngrelay;

void InitSrtpBinding(Napi::Env env, Napi::Object exports);  // native/src/srtp_binding.cpp (test/bench only)
void InitSdNotify(Napi::Env env, Napi::Object exports);     // native/src/sd_notify.cpp (systemd Type=notify)
void InitRlimit(Napi::Env env, Napi::Object exports);       // native/src/rlimit.cpp
void InitQualityBinding(Napi::Env env, Napi::Object exports);           // native/src/rtcp_binding.cpp
Napi::Object qualityToJs(Napi::Env env, const QualitySnapshot& q);     // native/src/rtcp_binding.cpp

namespace {

SockAddr endpointFromJs(const Napi::Value& v) {
  if (v.IsNull() || v.IsUndefined()) return SockAddr();
  if (!v.IsObject()) throw Napi::TypeError::New(v.Env(), "endpoint must be an object or null");
  Napi::Object o = v.As<Napi::Object>();
  std::string address = o.Get("address").As<Napi::String>().Utf8Value();
  double port = o.Get("port").As<Napi::Number>().DoubleValue();
  if (!(port >= 0 && port <= 65535)) throw Napi::RangeError::New(v.Env(), "endpoint port out of range");
  SockAddr a;
  if (!SockAddr::parse(address, uint16_t(port), a))
    throw Napi::TypeError::New(v.Env(), "endpoint address is not an IP literal: " + address);
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

Learning learningFromJs(Napi::Env env, const std::string& s) {
  if (s == "off") return Learning::Off;
  if (s == "immediate") return Learning::Immediate;
  if (s == "delayed") return Learning::Delayed;
  if (s == "heuristic") return Learning::Heuristic;
  throw Napi::TypeError::New(env, "unknown endpoint learning mode: " + s);
}

std::vector<uint8_t> bytesFromJs(const Napi::Value& v, const char* what) {
  if (!v.IsBuffer()) throw Napi::TypeError::New(v.Env(), std::string("SRTP ") + what + " must be a Buffer");
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

/** One direction of StreamCrypto (src/dataplane/types.ts SrtpKeys); null/undefined = plain RTP. */
SrtpKeySpec srtpKeysFromJs(const Napi::Value& v) {
  SrtpKeySpec k;
  if (v.IsNull() || v.IsUndefined()) return k;
  if (!v.IsObject()) throw Napi::TypeError::New(v.Env(), "SRTP keys must be an object or null");
  Napi::Object o = v.As<Napi::Object>();
  Napi::Value suite = o.Get("suite");
  if (!suite.IsString() || !srtpSuiteFromName(suite.As<Napi::String>().Utf8Value(), &k.suite))
    throw Napi::TypeError::New(v.Env(), "unknown SRTP suite");
  k.key = bytesFromJs(o.Get("key"), "key");
  k.salt = bytesFromJs(o.Get("salt"), "salt");
  k.encryptRtp = !o.Get("unencryptedSrtp").ToBoolean().Value();
  k.encryptRtcp = !o.Get("unencryptedSrtcp").ToBoolean().Value();
  k.authRtp = !o.Get("unauthenticatedSrtp").ToBoolean().Value();
  k.resume = srtpProgressFromJs(o.Get("resume"));
  k.present = true;
  return k;
}

StreamCryptoSpec cryptoFromJs(const Napi::Value& rule) {
  StreamCryptoSpec c;
  Napi::Value v = rule.As<Napi::Object>().Get("crypto");
  if (v.IsNull() || v.IsUndefined()) return c;
  if (!v.IsObject()) throw Napi::TypeError::New(v.Env(), "rule.crypto must be an object or null");
  Napi::Object o = v.As<Napi::Object>();
  c.inbound = srtpKeysFromJs(o.Get("inbound"));
  c.outbound = srtpKeysFromJs(o.Get("outbound"));
  c.recrypt = o.Get("recrypt").ToBoolean().Value();
  return c;
}

Rule ruleFromJs(const Napi::Value& v) {
  if (!v.IsObject()) throw Napi::TypeError::New(v.Env(), "rule must be an object");
  Napi::Object o = v.As<Napi::Object>();
  Rule r;
  r.expected = endpointFromJs(o.Get("expected"));
  r.learning = learningFromJs(v.Env(), o.Get("learning").As<Napi::String>().Utf8Value());
  r.strictSource = o.Get("strictSource").ToBoolean().Value();
  r.mediaHandover = o.Get("mediaHandover").ToBoolean().Value();
  r.asymmetric = o.Get("asymmetric").ToBoolean().Value();
  Napi::Value sink = o.Get("sink");
  r.sink = (sink.IsNull() || sink.IsUndefined()) ? -1 : int64_t(sink.As<Napi::Number>().Int64Value());
  Napi::Value gen = o.Get("signalGeneration");
  r.signalGeneration = gen.IsNumber() ? gen.As<Napi::Number>().DoubleValue() : 0;
  Napi::Value clock = o.Get("clockRate");
  if (clock.IsNumber() && clock.As<Napi::Number>().Uint32Value() > 0) r.clockRate = clock.As<Napi::Number>().Uint32Value();
  r.blockMedia = o.Get("blockMedia").ToBoolean().Value();
  r.silenceMedia = o.Get("silenceMedia").ToBoolean().Value();
  Napi::Value dtmfPt = o.Get("dtmfPayloadType");
  r.dtmfPt = dtmfPt.IsNumber() && dtmfPt.As<Napi::Number>().Int32Value() >= 0 && dtmfPt.As<Napi::Number>().Int32Value() < 128
                 ? int16_t(dtmfPt.As<Napi::Number>().Int32Value())
                 : int16_t(-1);
  r.blockDtmf = o.Get("blockDtmf").ToBoolean().Value();
  Napi::Value replace = o.Get("dtmfReplace");
  if (replace.IsString() && replace.As<Napi::String>().Utf8Value() == "random") r.dtmfReplace = kDtmfReplaceRandom;
  else if (replace.IsNumber() && replace.As<Napi::Number>().Int32Value() >= 0 && replace.As<Napi::Number>().Int32Value() < 16)
    r.dtmfReplace = int8_t(replace.As<Napi::Number>().Int32Value());
  return r;
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
    o.Set(fromSource ? "from" : "endpoint", endpointToJs(env, e.addr));
    if (e.type == EventType::Dtmf) {
      o.Set("event", double(e.dtmf.event));
      o.Set("volume", double(e.dtmf.volume));
      o.Set("durationMs", double(e.dtmf.durationMs));
      o.Set("rtpTimestamp", double(e.dtmf.rtpTimestamp));
    }
    o.Set("atMs", double(e.atMs));
    arr.Set(uint32_t(i), o);
  }
  listener.Call({arr});
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
                        InstanceMethod("readCounters", &NativeEngine::ReadCounters),
                        InstanceMethod("readQuality", &NativeEngine::ReadQuality),
                        InstanceMethod("playDtmf", &NativeEngine::PlayDtmf),
                        InstanceMethod("readSrtpProgress", &NativeEngine::ReadSrtpProgress),
                        InstanceMethod("lastPacketTimes", &NativeEngine::LastPacketTimes),
                        InstanceMethod("totals", &NativeEngine::Totals),
                        InstanceMethod("info", &NativeEngine::Info),
                        InstanceMethod("startRecording", &NativeEngine::StartRecording),
                        InstanceMethod("setRecordingStreams", &NativeEngine::SetRecordingStreams),
                        InstanceMethod("stopRecording", &NativeEngine::StopRecording),
                        InstanceMethod("readRecording", &NativeEngine::ReadRecording),
                        InstanceMethod("close", &NativeEngine::Close)});
  }

  // new NativeEngine(threads, receiveBufferBytes, onEvents, {policy, priority}, {policy, priority} for the idle threads,
  //                  onFence(id) | undefined)
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
    engine_ = std::make_unique<Engine>(
        threads, rcvbuf,
        [tsfn](std::vector<EngineEvent>&& events) {
          auto* batch = new EventBatch(std::move(events));
          if (tsfn->NonBlockingCall(batch) != napi_ok) delete batch;
        },
        scheduling_.spec, idleScheduling_.spec, std::move(fenceSink));
    napi_add_env_cleanup_hook(env, &NativeEngine::CleanupHook, this);
    hookInstalled_ = true;
    env_ = env;
  }

  ~NativeEngine() override { Shutdown(); }

  /** Fence `id` passed: free what it retired, then tell JS (after close only JS is told). */
  void FencePassed(Napi::Function listener, uint64_t id) {
    if (engine_) engine_->fencePassed(id);
    if (!listener.IsEmpty()) listener.Call({Napi::Number::New(listener.Env(), double(id))});
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

  // addStream(id, component, localAddress, localPort, muxedWith|null, rule)
  Napi::Value AddStream(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    StreamSpec spec;
    int64_t id = info[0].As<Napi::Number>().Int64Value();
    if (id < 1 || id > 0x7fffffff) throw Napi::RangeError::New(env, "stream id must be 1 .. 2^31-1");
    spec.id = int32_t(id);
    spec.isRtcp = info[1].As<Napi::String>().Utf8Value() == "rtcp";
    spec.localAddress = info[2].As<Napi::String>().Utf8Value();
    double port = info[3].As<Napi::Number>().DoubleValue();
    if (!(port >= 0 && port <= 65535)) throw Napi::RangeError::New(env, "localPort out of range");
    spec.localPort = uint16_t(port);
    spec.muxedWith = info[4].IsNumber() ? info[4].As<Napi::Number>().Int64Value() : -1;
    Rule rule = ruleFromJs(info[5]);
    StreamCryptoSpec crypto = cryptoFromJs(info[5]);
    callEngine(env, [&] { engine(env).addStream(spec, rule, crypto); });
    return env.Undefined();
  }

  Napi::Value UpdateStream(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    int32_t id = info[0].As<Napi::Number>().Int32Value();
    Rule rule = ruleFromJs(info[1]);
    StreamCryptoSpec crypto = cryptoFromJs(info[1]);
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
    return Napi::Number::New(env, double(engine(env).fence()));
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

  // readCounters(ids) -> array of counter objects or null (unknown id), in the order of ids.
  Napi::Value ReadCounters(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Engine& e = engine(env);
    Napi::Array ids = info[0].As<Napi::Array>();
    Napi::Array out = Napi::Array::New(env, ids.Length());
    for (uint32_t i = 0; i < ids.Length(); ++i) {
      StreamSnapshot s;
      Napi::Value idv = ids.Get(i);
      if (!idv.IsNumber() || !e.readCounters(idv.As<Napi::Number>().Int32Value(), s)) {
        out.Set(i, env.Null());
        continue;
      }
      Napi::Object o = Napi::Object::New(env);
      o.Set("packets", double(s.packets));
      o.Set("bytes", double(s.bytes));
      o.Set("errors", double(s.errors));
      if (s.hasSrtp) {
        o.Set("srtpAuthFailed", double(s.srtpAuthFailed));
        o.Set("srtpReplayed", double(s.srtpReplayed));
      }
      o.Set("lastPacketMs", double(s.lastPacketMs));
      o.Set("endpoint", endpointToJs(env, s.endpoint));
      o.Set("confirmed", s.confirmed);
      o.Set("ssrc", s.hasRtp ? Napi::Value(Napi::Number::New(env, double(s.ssrc))) : env.Null());
      o.Set("lastSeq", s.hasRtp ? Napi::Value(Napi::Number::New(env, double(s.seq))) : env.Null());
      out.Set(i, o);
    }
    return out;
  }

  // readQuality(id) -> the stream's call-quality figures, or null (unknown id).
  Napi::Value ReadQuality(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!info[0].IsNumber()) throw Napi::TypeError::New(env, "readQuality expects a stream id");
    auto q = std::make_unique<QualitySnapshot>();  // ~3 kB: not on the stack
    if (!engine(env).readQuality(info[0].As<Napi::Number>().Int32Value(), *q)) return env.Null();
    return qualityToJs(env, *q);
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
    EngineTotalsSnapshot t = engine_ ? engine_->totals() : EngineTotalsSnapshot{0, 0, 0, 0, 0};
    o.Set("packets", double(t.packets));
    o.Set("bytes", double(t.bytes));
    o.Set("errors", double(t.errors));
    o.Set("malformed", double(t.malformed));
    o.Set("dropped", double(t.dropped));
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
  InitSrtpBinding(env, exports);
  InitSdNotify(env, exports);
  InitRlimit(env, exports);
  InitQualityBinding(env, exports);
  return exports;
}

void deliverFence(Napi::Env env, Napi::Function listener, NativeEngine* self, void* data) {
  if (env == nullptr || self == nullptr) return;
  self->FencePassed(listener, uint64_t(reinterpret_cast<uintptr_t>(data)));
}

}  // namespace

NODE_API_MODULE(ngrelay_engine, Init)
