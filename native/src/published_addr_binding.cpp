// Test-only N-API surface of PublishedAddr's writer rules (native/include/sock_addr.hpp), exposed as
// `exports.publishedAddrTest`. The race it guards (an owner thread storing an older command's address after
// the JS thread published a newer one) needs a thread preempted at the wrong instant; here each step is
// played in order instead, so the rule itself is tested.
#include <napi.h>

#include <string>

#include "sock_addr.hpp"

using namespace ngrelay;

namespace {

/**
 * play([[op, port, gen], ...]): op is "publish" (the JS thread, command `gen`), "applied" (the owner, having
 * run commands up to `gen`) or "store" (unconditional); each address is 127.0.0.1:port. Returns, per step,
 * the port a reader then loads and whether the step stored.
 */
Napi::Value play(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsArray()) throw Napi::TypeError::New(env, "steps must be an array");
  Napi::Array steps = info[0].As<Napi::Array>();
  PublishedAddr addr;
  Napi::Array out = Napi::Array::New(env, steps.Length());
  for (uint32_t i = 0; i < steps.Length(); ++i) {
    Napi::Value v = steps.Get(i);
    if (!v.IsArray() || v.As<Napi::Array>().Length() != 3) throw Napi::TypeError::New(env, "a step is [op, port, gen]");
    Napi::Array step = v.As<Napi::Array>();
    if (!step.Get(0u).IsString() || !step.Get(1u).IsNumber() || !step.Get(2u).IsNumber())
      throw Napi::TypeError::New(env, "a step is [string, number, number]");
    const std::string op = step.Get(0u).As<Napi::String>().Utf8Value();
    SockAddr a;
    SockAddr::parse("127.0.0.1", uint16_t(step.Get(1u).As<Napi::Number>().Uint32Value()), a);
    const uint32_t gen = step.Get(2u).As<Napi::Number>().Uint32Value();
    bool stored = true;
    if (op == "publish") addr.publish(a, gen);
    else if (op == "applied") stored = addr.storeApplied(a, gen);
    else if (op == "store") addr.store(a);
    else throw Napi::TypeError::New(env, "op must be publish, applied or store");
    Napi::Object r = Napi::Object::New(env);
    r.Set("port", double(addr.load().port()));
    r.Set("stored", stored);
    out.Set(i, r);
  }
  return out;
}

}  // namespace

void InitPublishedAddrBinding(Napi::Env env, Napi::Object exports) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("play", Napi::Function::New(env, play, "play"));
  exports.Set("publishedAddrTest", o);
}
