#include "sock_addr.hpp"

#include <arpa/inet.h>
#include <net/if.h>

namespace ngrelay {

bool SockAddr::parse(const std::string& address, uint16_t port, SockAddr& out) {
  SockAddr a;
  std::string host = address;
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  if (inet_pton(AF_INET, host.c_str(), &a.u.v4.sin_addr) == 1) {
    a.u.v4.sin_family = AF_INET;
    a.u.v4.sin_port = htons(port);
    a.len = sizeof(sockaddr_in);
    out = a;
    return true;
  }
  // Link-local IPv6 may carry a zone ("fe80::1%eth0").
  std::string zone;
  size_t pct = host.find('%');
  if (pct != std::string::npos) {
    zone = host.substr(pct + 1);
    host = host.substr(0, pct);
  }
  if (inet_pton(AF_INET6, host.c_str(), &a.u.v6.sin6_addr) == 1) {
    a.u.v6.sin6_family = AF_INET6;
    a.u.v6.sin6_port = htons(port);
    if (!zone.empty()) a.u.v6.sin6_scope_id = if_nametoindex(zone.c_str());
    a.len = sizeof(sockaddr_in6);
    out = a;
    return true;
  }
  return false;
}

std::string SockAddr::addressString() const {
  char buf[INET6_ADDRSTRLEN] = {0};
  if (family() == AF_INET) inet_ntop(AF_INET, &u.v4.sin_addr, buf, sizeof(buf));
  else if (family() == AF_INET6) inet_ntop(AF_INET6, &u.v6.sin6_addr, buf, sizeof(buf));
  return buf;
}

}  // namespace ngrelay
