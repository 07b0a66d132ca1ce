// Media sockets made ahead of need (see socket_pool.hpp).
#include "socket_pool.hpp"

#include <netinet/in.h>
#include <sys/resource.h>
#include <unistd.h>

namespace ngrelay {

int makeMediaSocket(int family, int receiveBufferBytes) {
  int fd = socket(family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  int one = 1;
  if (family == AF_INET6) setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
  if (receiveBufferBytes > 0) {
    // SO_RCVBUFFORCE passes rmem_max when we are privileged; otherwise the kernel caps SO_RCVBUF.
    if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &receiveBufferBytes, sizeof(int)) != 0)
      setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &receiveBufferBytes, sizeof(int));
  }
  return fd;
}

int SocketPool::take(int family, bool& refill) {
  std::lock_guard<std::mutex> g(m_);
  Family& f = of(family);
  f.wanted = true;
  int fd = -1;
  if (!f.fds.empty()) {
    fd = f.fds.back();
    f.fds.pop_back();
  }
  refill = f.fds.size() < kTarget;  // cheap: the event relay tops it up on its next tick (EventRelay::ticking_)
  return fd;
}

void SocketPool::fill() {
  // Never one of the last kSpareDescriptors: the kernel hands out the lowest free number, so a socket numbered
  // that high means descriptors are short, and the JS thread's own streams need them (its EMFILE error names
  // the limit; a pool holding the last ones would turn a freed descriptor into a refused call).
  rlimit limit{};
  const bool bounded = getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur != RLIM_INFINITY;
  const long ceiling = bounded ? long(limit.rlim_cur) - long(kSpareDescriptors) : 0;
  for (int family : {AF_INET, AF_INET6}) {
    for (;;) {
      {
        std::lock_guard<std::mutex> g(m_);
        Family& f = of(family);
        if (!f.wanted || f.fds.size() >= kTarget) break;
      }
      // Made outside the lock: the JS thread's take() never waits for a socket() call.
      int fd = makeMediaSocket(family, receiveBufferBytes_);
      if (fd < 0) return;  // out of descriptors (or memory): the JS thread makes its own and reports it
      if (bounded && fd >= ceiling) {
        ::close(fd);
        return;
      }
      std::lock_guard<std::mutex> g(m_);
      of(family).fds.push_back(fd);
    }
  }
}

void SocketPool::clear() {
  std::lock_guard<std::mutex> g(m_);
  for (Family* f : {&v4_, &v6_}) {
    for (int fd : f->fds) ::close(fd);
    f->fds.clear();
  }
}

}  // namespace ngrelay
