// RLIMIT_NOFILE for the relay: Node has no setrlimit, and every media socket is a descriptor, so a soft
// limit left at its default (often 1024) refuses calls long before the port range is used up.
//
// Exports (see src/dataplane/rlimit.ts):
//   raiseNofileLimit() -> { soft, hard, previous, error }   soft := hard; error = strerror text or null
//   nofileLimit()      -> { soft, hard }
// "unlimited" is reported as -1.
#include <napi.h>

#include <sys/resource.h>

#include <cerrno>
#include <cstring>

namespace {

double asNumber(rlim_t v) { return v == RLIM_INFINITY ? -1.0 : static_cast<double>(v); }

Napi::Value NofileLimit(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  struct rlimit rl {};
  Napi::Object o = Napi::Object::New(env);
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0) {
    o.Set("soft", env.Null());
    o.Set("hard", env.Null());
    return o;
  }
  o.Set("soft", asNumber(rl.rlim_cur));
  o.Set("hard", asNumber(rl.rlim_max));
  return o;
}

Napi::Value RaiseNofileLimit(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = Napi::Object::New(env);
  struct rlimit rl {};
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0) {
    o.Set("error", std::strerror(errno));
    return o;
  }
  const rlim_t previous = rl.rlim_cur;
  int err = 0;
  if (rl.rlim_cur != rl.rlim_max) {
    struct rlimit raised = rl;
    raised.rlim_cur = rl.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &raised) != 0) err = errno;
    getrlimit(RLIMIT_NOFILE, &rl);
  }
  o.Set("soft", asNumber(rl.rlim_cur));
  o.Set("hard", asNumber(rl.rlim_max));
  o.Set("previous", asNumber(previous));
  o.Set("error", err != 0 ? Napi::Value(Napi::String::New(env, std::strerror(err))) : env.Null());
  return o;
}

}  // namespace

void InitRlimit(Napi::Env env, Napi::Object exports) {
  exports.Set("raiseNofileLimit", Napi::Function::New(env, RaiseNofileLimit, "raiseNofileLimit"));
  exports.Set("nofileLimit", Napi::Function::New(env, NofileLimit, "nofileLimit"));
}
