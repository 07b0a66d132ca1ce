// sdNotify(socketPath, message): one datagram to systemd's $NOTIFY_SOCKET (sd_notify(3) protocol), which
// Node cannot send itself (node:dgram has no AF_UNIX). A path starting with '@' is in the abstract namespace.
// Throws an Error carrying `code` (errno name) when the socket cannot be reached.
#include <napi.h>

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

namespace {

Napi::Error errnoError(Napi::Env env, const char* what, int err) {
  Napi::Error e = Napi::Error::New(env, std::string(what) + ": " + std::strerror(err));
  const char* code = err == ENOENT         ? "ENOENT"
                     : err == ECONNREFUSED ? "ECONNREFUSED"
                     : err == EACCES       ? "EACCES"
                     : err == EPERM        ? "EPERM"
                     : err == EAGAIN       ? "EAGAIN"
                     : err == EMSGSIZE     ? "EMSGSIZE"
                                           : nullptr;
  e.Set("code", Napi::String::New(env, code != nullptr ? std::string(code) : "ERRNO_" + std::to_string(err)));
  return e;
}

Napi::Value SdNotify(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 2 || !info[0].IsString() || !info[1].IsString())
    throw Napi::TypeError::New(env, "sdNotify(socketPath: string, message: string)");
  const std::string path = info[0].As<Napi::String>().Utf8Value();
  const std::string message = info[1].As<Napi::String>().Utf8Value();

  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  // Bounds: the path must fit sun_path (abstract names are not NUL-terminated, so they may use all of it).
  if (path.size() < 2 || path.size() > sizeof(addr.sun_path) - (path[0] == '@' ? 0 : 1) || (path[0] != '/' && path[0] != '@'))
    throw Napi::RangeError::New(env, "NOTIFY_SOCKET must be an absolute path or @abstract name that fits sun_path");
  std::memcpy(addr.sun_path, path.data(), path.size());
  if (path[0] == '@') addr.sun_path[0] = '\0';
  const socklen_t len = socklen_t(offsetof(sockaddr_un, sun_path) + path.size() + (path[0] == '@' ? 0 : 1));

  int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw errnoError(env, "socket(AF_UNIX)", errno);
  ssize_t sent = ::sendto(fd, message.data(), message.size(), MSG_NOSIGNAL, reinterpret_cast<sockaddr*>(&addr), len);
  int err = errno;
  ::close(fd);
  if (sent < 0) throw errnoError(env, ("sendto " + path).c_str(), err);
  return env.Undefined();
}

}  // namespace

void InitSdNotify(Napi::Env env, Napi::Object exports) {
  exports.Set("sdNotify", Napi::Function::New(env, SdNotify, "sdNotify"));
}
