// Test-only N-API surface of the STUN codec and the ICE-lite decisions (native/include/stun.hpp, ice.hpp),
// exposed as `exports.stunTest`. The engine itself calls them directly on its I/O threads.
#include <napi.h>

#include <cstdio>
#include <string>

#include "ice.hpp"
#include "stun.hpp"

using namespace ngrelay;

namespace {

Napi::Buffer<uint8_t> bufferArg(const Napi::Value& v, const char* what) {
  if (!v.IsBuffer()) throw Napi::TypeError::New(v.Env(), std::string(what) + " must be a Buffer");
  return v.As<Napi::Buffer<uint8_t>>();
}

std::string stringArg(const Napi::Value& v, const char* what) {
  if (!v.IsString()) throw Napi::TypeError::New(v.Env(), std::string(what) + " must be a string");
  return v.As<Napi::String>().Utf8Value();
}

Napi::Value endpointToJs(Napi::Env env, const SockAddr& a) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("family", a.family() == AF_INET ? "IPv4" : "IPv6");
  o.Set("address", a.addressString());
  o.Set("port", double(a.port()));
  return o;
}

SockAddr endpointArg(const Napi::Value& v) {
  if (!v.IsObject()) throw Napi::TypeError::New(v.Env(), "endpoint must be an object");
  Napi::Object o = v.As<Napi::Object>();
  SockAddr a;
  if (!SockAddr::parse(stringArg(o.Get("address"), "endpoint.address"), uint16_t(o.Get("port").ToNumber().Uint32Value()), a))
    throw Napi::TypeError::New(v.Env(), "endpoint.address is not an IP literal");
  return a;
}

std::string hex64(uint64_t v) {
  char b[17];
  std::snprintf(b, sizeof(b), "%016llx", static_cast<unsigned long long>(v));
  return b;
}

// parse(datagram) -> {error, type, transactionId, username, priority, useCandidate, controlling, controlled,
//                     tieBreaker, xorMapped, errorCode, hasIntegrity, hasFingerprint}
Napi::Value Parse(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Buffer<uint8_t> b = bufferArg(info[0], "datagram");
  StunMessage m;
  StunError e = parseStun(b.Data(), b.Length(), m);
  Napi::Object o = Napi::Object::New(env);
  o.Set("error", e == StunError::None ? env.Null() : Napi::Value(Napi::String::New(env, stunErrorName(e))));
  if (e != StunError::None) return o;
  o.Set("type", double(m.type));
  o.Set("transactionId", Napi::Buffer<uint8_t>::Copy(env, m.transactionId, 12));
  o.Set("username", m.username ? Napi::Value(Napi::String::New(env, reinterpret_cast<const char*>(m.username), m.usernameLen))
                               : env.Null());
  o.Set("priority", m.hasPriority ? Napi::Value(Napi::Number::New(env, double(m.priority))) : env.Null());
  o.Set("useCandidate", m.useCandidate);
  o.Set("controlling", m.controlling);
  o.Set("controlled", m.controlled);
  o.Set("tieBreaker", m.controlling || m.controlled ? Napi::Value(Napi::String::New(env, hex64(m.tieBreaker))) : env.Null());
  o.Set("xorMapped", m.hasXorMapped ? endpointToJs(env, m.xorMapped) : env.Null());
  o.Set("errorCode", m.hasErrorCode ? Napi::Value(Napi::Number::New(env, double(m.errorCode))) : env.Null());
  o.Set("hasIntegrity", m.integrityAt != 0);
  o.Set("hasFingerprint", m.hasFingerprint);
  return o;
}

// integrityOk(datagram, key: string) -> boolean (false also when it does not parse)
Napi::Value IntegrityOk(const Napi::CallbackInfo& info) {
  Napi::Buffer<uint8_t> b = bufferArg(info[0], "datagram");
  std::string key = stringArg(info[1], "key");
  StunMessage m;
  if (parseStun(b.Data(), b.Length(), m) != StunError::None) return Napi::Boolean::New(info.Env(), false);
  return Napi::Boolean::New(info.Env(), stunIntegrityOk(b.Data(), m, reinterpret_cast<const uint8_t*>(key.data()), key.size()));
}

Napi::Value Crc32(const Napi::CallbackInfo& info) {
  Napi::Buffer<uint8_t> b = bufferArg(info[0], "data");
  return Napi::Number::New(info.Env(), double(stunCrc32(b.Data(), b.Length())));
}

IceConfig configArg(const Napi::Value& v) {
  if (!v.IsObject()) throw Napi::TypeError::New(v.Env(), "config must be an object");
  Napi::Object o = v.As<Napi::Object>();
  IceConfig c;
  c.localUfrag = stringArg(o.Get("localUfrag"), "localUfrag");
  c.localPwd = stringArg(o.Get("localPwd"), "localPwd");
  if (o.Get("remoteUfrag").IsString()) {
    c.hasRemote = true;
    c.remoteUfrag = o.Get("remoteUfrag").As<Napi::String>().Utf8Value();
  }
  c.controlling = o.Get("controlling").ToBoolean().Value();
  c.lite = o.Get("lite").ToBoolean().Value();
  if (!parseTieBreaker(stringArg(o.Get("tieBreaker"), "tieBreaker"), c.tieBreaker))
    throw Napi::TypeError::New(v.Env(), "tieBreaker must be 16 hex digits");
  return c;
}

// decide(request, config, controllingNow) -> {verdict: 'reject'|'ignore'|'answer'|'role-conflict', nominate, switchRole}
Napi::Value Decide(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Buffer<uint8_t> b = bufferArg(info[0], "request");
  IceConfig c = configArg(info[1]);
  StunMessage m;
  IceDecision d;
  if (parseStun(b.Data(), b.Length(), m) == StunError::None && m.type == kStunBindingRequest)
    d = iceOnRequest(c, info[2].ToBoolean().Value(), b.Data(), b.Length(), m);
  const char* names[] = {"reject", "ignore", "answer", "role-conflict"};
  Napi::Object o = Napi::Object::New(env);
  o.Set("verdict", names[int(d.verdict)]);
  o.Set("nominate", d.nominate);
  o.Set("switchRole", d.switchRole);
  return o;
}

// answer(request, config, from: Endpoint, roleConflict) -> Buffer (the response the engine sends)
Napi::Value Answer(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Buffer<uint8_t> b = bufferArg(info[0], "request");
  IceConfig c = configArg(info[1]);
  StunMessage m;
  if (parseStun(b.Data(), b.Length(), m) != StunError::None) throw Napi::Error::New(env, "request does not parse");
  uint8_t out[kStunMaxBytes];
  size_t n = iceBuildAnswer(c, m, endpointArg(info[2]), info[3].ToBoolean().Value(), out, sizeof(out));
  return Napi::Buffer<uint8_t>::Copy(env, out, n);
}

}  // namespace

void InitStunBinding(Napi::Env env, Napi::Object exports) {
  Napi::Object t = Napi::Object::New(env);
  t.Set("parse", Napi::Function::New(env, Parse, "parse"));
  t.Set("integrityOk", Napi::Function::New(env, IntegrityOk, "integrityOk"));
  t.Set("crc32", Napi::Function::New(env, Crc32, "crc32"));
  t.Set("decide", Napi::Function::New(env, Decide, "decide"));
  t.Set("answer", Napi::Function::New(env, Answer, "answer"));
  exports.Set("stunTest", t);
}
