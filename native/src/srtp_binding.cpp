// Test- and bench-only N-API surface of the SRTP core (native/include/srtp.hpp). The forwarding engine never
// goes through here: it uses SrtpContext directly on its I/O threads. Exposed as `exports.srtpTest`.
#include <napi.h>

#include <chrono>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "srtp.hpp"

using namespace ngrelay;

namespace {

// Distinguishes our wrapped objects from any other ObjectWrap when one is passed back in (sameKeysAs).
const napi_type_tag kSrtpContextTag = {0x6e6772656c617953ULL, 0x5254504374785431ULL};

SrtpSuite suiteArg(const Napi::Value& v) {
  if (!v.IsString()) throw Napi::TypeError::New(v.Env(), "suite must be a string");
  SrtpSuite s;
  if (!srtpSuiteFromName(v.As<Napi::String>().Utf8Value(), &s))
    throw Napi::TypeError::New(v.Env(), "unknown SRTP suite: " + v.As<Napi::String>().Utf8Value());
  return s;
}

Napi::Buffer<uint8_t> bufferArg(const Napi::Value& v, const char* what) {
  if (!v.IsBuffer()) throw Napi::TypeError::New(v.Env(), std::string(what) + " must be a Buffer");
  return v.As<Napi::Buffer<uint8_t>>();
}

Napi::Buffer<uint8_t> copyOut(Napi::Env env, const uint8_t* p, size_t n) { return Napi::Buffer<uint8_t>::Copy(env, p, n); }

class SrtpTestContext : public Napi::ObjectWrap<SrtpTestContext> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "SrtpTestContext",
                       {
                           InstanceMethod("protectRtp", &SrtpTestContext::ProtectRtp),
                           InstanceMethod("unprotectRtp", &SrtpTestContext::UnprotectRtp),
                           InstanceMethod("protectRtcp", &SrtpTestContext::ProtectRtcp),
                           InstanceMethod("unprotectRtcp", &SrtpTestContext::UnprotectRtcp),
                           InstanceMethod("stats", &SrtpTestContext::Stats),
                           InstanceMethod("overhead", &SrtpTestContext::Overhead),
                           InstanceMethod("sameKeysAs", &SrtpTestContext::SameKeysAs),
                       });
  }

  // new SrtpTestContext(suite, masterKey, masterSalt, options?)
  explicit SrtpTestContext(const Napi::CallbackInfo& info) : Napi::ObjectWrap<SrtpTestContext>(info) {
    Napi::Env env = info.Env();
    SrtpParams p;
    p.suite = suiteArg(info[0]);
    Napi::Buffer<uint8_t> key = bufferArg(info[1], "masterKey");
    Napi::Buffer<uint8_t> salt = bufferArg(info[2], "masterSalt");
    p.masterKey = key.Data();
    p.masterKeyLen = key.Length();
    p.masterSalt = salt.Data();
    p.masterSaltLen = salt.Length();
    std::vector<uint8_t> mki;
    if (info.Length() > 3 && info[3].IsObject()) {
      Napi::Object o = info[3].As<Napi::Object>();
      if (o.Has("initialRoc")) p.initialRoc = o.Get("initialRoc").As<Napi::Number>().Uint32Value();
      if (o.Has("encryptRtp")) p.encryptRtp = o.Get("encryptRtp").ToBoolean().Value();
      if (o.Has("encryptRtcp")) p.encryptRtcp = o.Get("encryptRtcp").ToBoolean().Value();
      if (o.Has("authRtp")) p.authRtp = o.Get("authRtp").ToBoolean().Value();
      if (o.Has("initialSrtcpIndex"))
        p.initialSrtcpIndex = o.Get("initialSrtcpIndex").As<Napi::Number>().Uint32Value();
      if (o.Has("testUseAsSessionKeys")) p.testUseAsSessionKeys = o.Get("testUseAsSessionKeys").ToBoolean().Value();
      if (o.Has("mki")) {
        Napi::Buffer<uint8_t> m = bufferArg(o.Get("mki"), "mki");
        mki.assign(m.Data(), m.Data() + m.Length());
      }
    }
    p.mki = mki.data();
    p.mkiLen = mki.size();
    std::string error;
    ctx_ = SrtpContext::create(p, &error);
    if (!ctx_) throw Napi::Error::New(env, error);
    napi_type_tag_object(env, info.This(), &kSrtpContextTag);
  }

  SrtpContext* context() { return ctx_.get(); }

 private:
  enum class Op { ProtectRtp, UnprotectRtp, ProtectRtcp, UnprotectRtcp };

  // Works on a copy with room for the largest trailer; returns { result, packet } (packet null unless ok).
  Napi::Value Run(const Napi::CallbackInfo& info, Op op) {
    Napi::Env env = info.Env();
    Napi::Buffer<uint8_t> in = bufferArg(info[0], "packet");
    std::vector<uint8_t> buf(in.Length() + kSrtpMaxOverhead);
    std::memcpy(buf.data(), in.Data(), in.Length());
    size_t out = 0;
    SrtpResult r = SrtpResult::CryptoError;
    switch (op) {
      case Op::ProtectRtp: r = ctx_->protectRtp(buf.data(), in.Length(), buf.size(), &out); break;
      case Op::UnprotectRtp: r = ctx_->unprotectRtp(buf.data(), in.Length(), &out); break;
      case Op::ProtectRtcp: r = ctx_->protectRtcp(buf.data(), in.Length(), buf.size(), &out); break;
      case Op::UnprotectRtcp: r = ctx_->unprotectRtcp(buf.data(), in.Length(), &out); break;
    }
    Napi::Object o = Napi::Object::New(env);
    o.Set("result", srtpResultName(r));
    o.Set("packet", r == SrtpResult::Ok ? Napi::Value(copyOut(env, buf.data(), out)) : env.Null());
    return o;
  }

  Napi::Value ProtectRtp(const Napi::CallbackInfo& info) { return Run(info, Op::ProtectRtp); }
  Napi::Value UnprotectRtp(const Napi::CallbackInfo& info) { return Run(info, Op::UnprotectRtp); }
  Napi::Value ProtectRtcp(const Napi::CallbackInfo& info) { return Run(info, Op::ProtectRtcp); }
  Napi::Value UnprotectRtcp(const Napi::CallbackInfo& info) { return Run(info, Op::UnprotectRtcp); }

  Napi::Value Stats(const Napi::CallbackInfo& info) {
    const SrtpStats& s = ctx_->stats();
    Napi::Object o = Napi::Object::New(info.Env());
    o.Set("authFailed", double(s.authFailed));
    o.Set("replayed", double(s.replayed));
    o.Set("malformed", double(s.malformed));
    o.Set("otherErrors", double(s.otherErrors));
    return o;
  }

  Napi::Value Overhead(const Napi::CallbackInfo& info) {
    Napi::Object o = Napi::Object::New(info.Env());
    o.Set("rtp", double(ctx_->rtpOverhead()));
    o.Set("rtcp", double(ctx_->rtcpOverhead()));
    return o;
  }

  Napi::Value SameKeysAs(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    bool tagged = false;
    if (!info[0].IsObject() || napi_check_object_type_tag(env, info[0], &kSrtpContextTag, &tagged) != napi_ok ||
        !tagged)
      throw Napi::TypeError::New(env, "argument must be an SrtpTestContext");
    SrtpTestContext* other = Unwrap(info[0].As<Napi::Object>());
    return Napi::Boolean::New(env, ctx_->sameKeysAs(*other->context()));
  }

  std::unique_ptr<SrtpContext> ctx_;
};

Napi::Value Suites(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Array a = Napi::Array::New(env, kSrtpSuiteCount);
  for (size_t i = 0; i < kSrtpSuiteCount; i++) {
    const SrtpSuiteInfo& s = srtpSuiteInfo(SrtpSuite(i));
    Napi::Object o = Napi::Object::New(env);
    o.Set("name", s.name);
    o.Set("masterKeyLength", double(s.masterKeyLen));
    o.Set("masterSaltLength", double(s.masterSaltLen));
    o.Set("srtpTagLength", double(s.srtpTagLen));
    o.Set("srtcpTagLength", double(s.srtcpTagLen));
    o.Set("aead", s.aead);
    a.Set(uint32_t(i), o);
  }
  return a;
}

// deriveKeys(suite, masterKey, masterSalt) → session keys, for the RFC 3711 B.3 vector.
Napi::Value DeriveKeys(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  SrtpSuite suite = suiteArg(info[0]);
  const SrtpSuiteInfo& si = srtpSuiteInfo(suite);
  Napi::Buffer<uint8_t> key = bufferArg(info[1], "masterKey");
  Napi::Buffer<uint8_t> salt = bufferArg(info[2], "masterSalt");
  if (key.Length() != si.masterKeyLen || salt.Length() != si.masterSaltLen)
    throw Napi::RangeError::New(env, "master key/salt length does not match the suite");
  SrtpSessionKeys k;
  if (!SrtpContext::deriveSessionKeys(suite, key.Data(), salt.Data(), &k))
    throw Napi::Error::New(env, "key derivation failed");
  Napi::Object o = Napi::Object::New(env);
  o.Set("rtpKey", copyOut(env, k.rtpKey, k.keyLen));
  o.Set("rtpAuth", copyOut(env, k.rtpAuth, k.authLen));
  o.Set("rtpSalt", copyOut(env, k.rtpSalt, k.saltLen));
  o.Set("rtcpKey", copyOut(env, k.rtcpKey, k.keyLen));
  o.Set("rtcpAuth", copyOut(env, k.rtcpAuth, k.authLen));
  o.Set("rtcpSalt", copyOut(env, k.rtcpSalt, k.saltLen));
  return o;
}

// aesCmKeystream(key, iv16, length) → keystream bytes, for the RFC 3711 B.2 vector.
Napi::Value AesCmKeystream(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Buffer<uint8_t> key = bufferArg(info[0], "key");
  Napi::Buffer<uint8_t> iv = bufferArg(info[1], "iv");
  double n = info[2].As<Napi::Number>().DoubleValue();
  if (iv.Length() != 16) throw Napi::RangeError::New(env, "iv must be 16 bytes");
  if (!(n >= 0 && n <= 1 << 20)) throw Napi::RangeError::New(env, "length out of range");
  std::vector<uint8_t> out(size_t(n) + 1);
  if (!SrtpContext::aesCmKeystream(key.Data(), key.Length(), iv.Data(), out.data(), size_t(n)))
    throw Napi::Error::New(env, "keystream failed (key must be 16 or 32 bytes)");
  return copyOut(env, out.data(), size_t(n));
}

// bench(suite, packets, payloadBytes) → { protectNs, unprotectNs } per packet, measured natively in one
// context pair (bench/ only; no test asserts on time).
Napi::Value Bench(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  SrtpSuite suite = suiteArg(info[0]);
  uint32_t packets = info[1].As<Napi::Number>().Uint32Value();
  uint32_t payload = info[2].As<Napi::Number>().Uint32Value();
  if (packets == 0 || packets > 10000000 || payload > 1400) throw Napi::RangeError::New(env, "bench arguments out of range");
  const SrtpSuiteInfo& si = srtpSuiteInfo(suite);
  uint8_t key[32], salt[14];
  for (size_t i = 0; i < sizeof key; i++) key[i] = uint8_t(i * 7 + 1);
  for (size_t i = 0; i < sizeof salt; i++) salt[i] = uint8_t(i * 13 + 5);
  SrtpParams p;
  p.suite = suite;
  p.masterKey = key;
  p.masterKeyLen = si.masterKeyLen;
  p.masterSalt = salt;
  p.masterSaltLen = si.masterSaltLen;
  std::string err;
  auto tx = SrtpContext::create(p, &err), rx = SrtpContext::create(p, &err);
  if (!tx || !rx) throw Napi::Error::New(env, err);
  std::vector<uint8_t> buf(12 + payload + kSrtpMaxOverhead);
  double protectNs = 0, unprotectNs = 0;
  for (uint32_t i = 0; i < packets; i++) {
    std::memset(buf.data(), 0x5a, buf.size());
    buf[0] = 0x80;
    buf[1] = 0;
    buf[2] = uint8_t(i >> 8);
    buf[3] = uint8_t(i);
    buf[8] = 0x12;
    size_t len = 12 + payload, out = 0, plain = 0;
    auto t0 = std::chrono::steady_clock::now();
    if (tx->protectRtp(buf.data(), len, buf.size(), &out) != SrtpResult::Ok) throw Napi::Error::New(env, "protect failed");
    auto t1 = std::chrono::steady_clock::now();
    if (rx->unprotectRtp(buf.data(), out, &plain) != SrtpResult::Ok) throw Napi::Error::New(env, "unprotect failed");
    auto t2 = std::chrono::steady_clock::now();
    protectNs += std::chrono::duration<double, std::nano>(t1 - t0).count();
    unprotectNs += std::chrono::duration<double, std::nano>(t2 - t1).count();
  }
  Napi::Object o = Napi::Object::New(env);
  o.Set("protectNs", protectNs / packets);
  o.Set("unprotectNs", unprotectNs / packets);
  return o;
}

}  // namespace

void InitSrtpBinding(Napi::Env env, Napi::Object exports) {
  Napi::Object t = Napi::Object::New(env);
  t.Set("SrtpTestContext", SrtpTestContext::Define(env));
  t.Set("suites", Napi::Function::New(env, Suites, "suites"));
  t.Set("deriveKeys", Napi::Function::New(env, DeriveKeys, "deriveKeys"));
  t.Set("aesCmKeystream", Napi::Function::New(env, AesCmKeystream, "aesCmKeystream"));
  t.Set("bench", Napi::Function::New(env, Bench, "bench"));
  exports.Set("srtpTest", t);
}
