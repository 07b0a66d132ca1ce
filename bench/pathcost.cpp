// Instructions per forwarded packet on the engine's packet path, measured under valgrind's callgrind (which
// counts instructions, so the figure does not depend on how busy the machine is): one call's worth of
// streams (A -> relay -> B, PCMU, telephone-event PT 101 negotiated, as a real call is), N packets sent from
// A in bursts, everything collected only inside IoThread::drain (see bench/pathcost.sh). Builds against any
// revision of native/ whose Engine has (threads, receiveBufferBytes, sink) and addStream(spec, rule) (24ba840 on).
//
//   pathcost [packets [calls]]   prints "forwarded N of M" when done; bounded: gives up after 300 s.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <algorithm>
#include <random>
#include <vector>

#include "engine.hpp"

using namespace ngrelay;

namespace {

int udpSocket(uint16_t& port) {
  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    perror("bind");
    exit(1);
  }
  int big = 4 << 20;
  setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &big, sizeof big);
  socklen_t len = sizeof a;
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  port = ntohs(a.sin_port);
  return fd;
}

/** Adds the stream on a free random port (other runs on this machine hold ports too). */
uint16_t addOnFreePort(Engine& e, int32_t id, const Rule& rule, std::mt19937& rng) {
  for (int attempt = 0; attempt < 100; ++attempt) {
    uint16_t port = uint16_t(40000 + rng() % 20000);
    try {
      e.addStream(StreamSpec{id, false, "127.0.0.1", port, -1}, rule);
      return port;
    } catch (const BindFailure&) {
    }
  }
  fprintf(stderr, "no free port\n");
  exit(1);
}

}  // namespace

int main(int argc, char** argv) {
  const long packets = argc > 1 ? atol(argv[1]) : 20000;
  // calls = 1: one stream, packets kept 512 in flight (full 64-packet receive batches). calls > 1: one packet
  // to each call's stream, then wait until all are forwarded (one-packet batches, as at many calls with 50
  // packets a second each, where the per-batch work counts per packet).
  const long calls = argc > 2 ? std::max(1L, atol(argv[2])) : 1;
  std::mt19937 rng{uint32_t(getpid())};
  uint16_t aPort = 0, bPort = 0;
  int a = udpSocket(aPort);
  int b = udpSocket(bPort);
  Engine engine(1, 4 << 20, [](std::vector<EngineEvent>&&) {});

  std::vector<uint16_t> relayPorts;  // where A sends for call i
  for (long i = 0; i < calls; ++i) {
    const int32_t idA = int32_t(2 * i + 1), idB = int32_t(2 * i + 2);
    Rule fromA;
    fromA.learning = Learning::Off;
    SockAddr::parse("127.0.0.1", aPort, fromA.expected);
    fromA.sink = idB;
    Rule fromB;
    fromB.learning = Learning::Off;
    SockAddr::parse("127.0.0.1", bPort, fromB.expected);
    fromB.sink = idA;
#ifdef PATHCOST_HAS_DTMF
    fromA.dtmfPt = 101;  // negotiated in a real call: the packet path then compares every packet's PT
    fromB.dtmfPt = 101;
#endif
    relayPorts.push_back(addOnFreePort(engine, idA, fromA, rng));  // receives from A, sends out of idB's socket
    addOnFreePort(engine, idB, fromB, rng);
  }
#ifdef PATHCOST_HAS_SYNC
  engine.sync();  // adds are queued since the batching change; before it they were in place on return
#endif

  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  uint8_t pkt[172];
  memset(pkt, 0xff, sizeof pkt);
  pkt[0] = 0x80;
  pkt[1] = 0;
  uint8_t buf[2048];
  long sent = 0, got = 0;
  const long inFlight = calls == 1 ? 512 : calls;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(300);
  while (got < packets && std::chrono::steady_clock::now() < deadline) {
    // Never more in flight than the relay's sockets hold: every packet is forwarded.
    if (calls == 1 ? sent - got < inFlight : sent == got) {
      for (long k = 0; k < inFlight && sent < packets; ++k) {
        const long call = sent % calls;
        const long n = sent / calls;  // this call's packet number
        const uint16_t seq = uint16_t(n);
        const uint32_t ts = uint32_t(n * 160);
        const uint32_t ssrc = uint32_t(0x12345678 + call);
        pkt[2] = uint8_t(seq >> 8), pkt[3] = uint8_t(seq);
        pkt[4] = uint8_t(ts >> 24), pkt[5] = uint8_t(ts >> 16), pkt[6] = uint8_t(ts >> 8), pkt[7] = uint8_t(ts);
        pkt[8] = uint8_t(ssrc >> 24), pkt[9] = uint8_t(ssrc >> 16), pkt[10] = uint8_t(ssrc >> 8), pkt[11] = uint8_t(ssrc);
        to.sin_port = htons(relayPorts[size_t(call)]);
        if (sendto(a, pkt, sizeof pkt, 0, reinterpret_cast<sockaddr*>(&to), sizeof to) == ssize_t(sizeof pkt)) ++sent;
      }
    }
    pollfd p{b, POLLIN, 0};
    if (poll(&p, 1, 1000) <= 0) continue;
    while (recv(b, buf, sizeof buf, MSG_DONTWAIT) > 0) ++got;
  }
  engine.close();
  printf("forwarded %ld of %ld\n", got, sent);
  return got == packets ? 0 : 1;
}
