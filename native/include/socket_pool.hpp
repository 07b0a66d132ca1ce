// UDP sockets made ahead of need, so that a new stream's socket costs the JS thread a bind() only.
#pragma once

#include <sys/socket.h>

#include <cstddef>
#include <mutex>
#include <vector>

namespace ngrelay {

/**
 * A new UDP socket with the options every media socket gets (non-blocking, close-on-exec, IPv6 only for
 * AF_INET6, the receive buffer); -1 with errno set when the kernel refuses one.
 */
int makeMediaSocket(int family, int receiveBufferBytes);

/**
 * Unbound media sockets per address family, made on another thread (the event relay's, see
 * EventRelay::setChore). socket() and its setsockopt calls are ~4 of the ~5 us a stream's socket costs in a VM,
 * on the JS thread of every offer; an unbound socket receives nothing, so one made early is the same as one
 * made now. A family is filled only once a stream asked for it (no descriptors are held at start), to
 * `kTarget` sockets, topped up on the relay thread's next tick after a take (EventRelay::ticking_: no wake-up per
 * refill), and never with the last kSpareDescriptors.
 */
class SocketPool {
 public:
  static constexpr size_t kTarget = 16;
  /** Descriptors below the soft RLIMIT_NOFILE the pool leaves to the JS thread (see fill()). */
  static constexpr size_t kSpareDescriptors = 256;

  explicit SocketPool(int receiveBufferBytes) : receiveBufferBytes_(receiveBufferBytes) {}
  ~SocketPool() { clear(); }
  SocketPool(const SocketPool&) = delete;
  SocketPool& operator=(const SocketPool&) = delete;

  /** JS thread: a socket of `family` made ahead, or -1 (then make one). Sets `refill` when the pool wants filling. */
  int take(int family, bool& refill);
  /** The other thread: makes sockets until every family in use holds kTarget (stops at the first refusal). */
  void fill();
  /** Closes every socket held; the pool stays usable. */
  void clear();

 private:
  struct Family {
    bool wanted = false;
    std::vector<int> fds;
  };
  Family& of(int family) { return family == AF_INET6 ? v6_ : v4_; }
  const int receiveBufferBytes_;
  std::mutex m_;
  Family v4_, v6_;
};

}  // namespace ngrelay
