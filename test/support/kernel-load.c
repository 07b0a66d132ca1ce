/*
 * Bounded RTP load for the kernel fast path tests (test/integration/kernel-path-load.test.ts), on loopback only.
 *   kernel-load send RELAY_PORT COUNT PPS SSRC      sends COUNT RTP packets (seq 0..COUNT-1, 172 bytes) at PPS
 *                                                   from an ephemeral port of 127.0.0.1; prints how many it sent
 *   kernel-load recv RELAY_PORT EXPECT MAX_SECONDS  binds an ephemeral port, sends one RTP packet to RELAY_PORT
 *                                                   (so the relay learns it), prints "ready PORT", then counts
 *                                                   what arrives until EXPECT packets came, 1 s passed without
 *                                                   any, or MAX_SECONDS; prints the packet count, how many
 *                                                   arrived out of order, duplicates, and the first/last seq
 * Node's dgram cannot keep 50k packets a second going (or take them) on a busy 2-core machine; this can.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static int64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void rtp(uint8_t* p, uint32_t seq, uint32_t ssrc) {
  memset(p, 0x5a, 172);
  p[0] = 0x80;
  p[1] = 0;
  p[2] = (uint8_t)(seq >> 8);
  p[3] = (uint8_t)seq;
  uint32_t ts = seq * 160;
  p[4] = (uint8_t)(ts >> 24); p[5] = (uint8_t)(ts >> 16); p[6] = (uint8_t)(ts >> 8); p[7] = (uint8_t)ts;
  p[8] = (uint8_t)(ssrc >> 24); p[9] = (uint8_t)(ssrc >> 16); p[10] = (uint8_t)(ssrc >> 8); p[11] = (uint8_t)ssrc;
}

static int open_socket(void) {
  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  int big = 8 << 20;
  setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &big, sizeof(big));
  setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &big, sizeof(big));
  struct sockaddr_in me = {.sin_family = AF_INET, .sin_port = 0};
  inet_pton(AF_INET, "127.0.0.1", &me.sin_addr);
  if (bind(fd, (struct sockaddr*)&me, sizeof(me)) != 0) { perror("bind"); exit(1); }
  return fd;
}

int main(int argc, char** argv) {
  if (argc != 6 && argc != 5) {
    fprintf(stderr, "usage: kernel-load send RELAY_PORT COUNT PPS SSRC | recv RELAY_PORT EXPECT MAX_SECONDS\n");
    return 2;
  }
  struct sockaddr_in relay = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(argv[2]))};
  inet_pton(AF_INET, "127.0.0.1", &relay.sin_addr);
  int fd = open_socket();
  uint8_t pkt[172];
  if (strcmp(argv[1], "send") == 0 && argc == 6) {
    long count = atol(argv[3]), pps = atol(argv[4]);
    uint32_t ssrc = (uint32_t)strtoul(argv[5], NULL, 0);
    if (count <= 0 || count > 1000000 || pps <= 0 || pps > 200000) return 2;  // bounded, always
    const int64_t start = now_ns();
    long sent = 0;
    while (sent < count) {
      // Packet i leaves at start + i/pps: small bursts on a busy machine, never faster than PPS on average.
      const int64_t due = start + (int64_t)((double)sent * 1e9 / (double)pps);
      while (now_ns() < due) {
      }
      rtp(pkt, (uint32_t)sent, ssrc);
      if (sendto(fd, pkt, sizeof(pkt), 0, (struct sockaddr*)&relay, sizeof(relay)) == sizeof(pkt)) ++sent;
      if (now_ns() - start > 60 * 1000000000LL) break;
    }
    printf("%ld\n", sent);
    return 0;
  }
  if (strcmp(argv[1], "recv") == 0 && argc == 5) {
    long expect = atol(argv[3]);
    int maxSeconds = atoi(argv[4]);
    rtp(pkt, 0, 0xb);
    sendto(fd, pkt, sizeof(pkt), 0, (struct sockaddr*)&relay, sizeof(relay));
    struct sockaddr_in me;
    socklen_t len = sizeof(me);
    getsockname(fd, (struct sockaddr*)&me, &len);
    printf("ready %d\n", ntohs(me.sin_port));
    fflush(stdout);
    static uint8_t seen[65536];
    long count = 0, outOfOrder = 0, dups = 0;
    long first = -1, last = -1;
    const int64_t start = now_ns();
    int64_t lastAt = now_ns();
    uint8_t buf[2048];
    while (count < expect && now_ns() - start < (int64_t)maxSeconds * 1000000000LL) {
      struct pollfd pfd = {.fd = fd, .events = POLLIN};
      if (poll(&pfd, 1, 100) <= 0) {
        if (count > 0 && now_ns() - lastAt > 1000000000LL) break;
        continue;
      }
      ssize_t n = recv(fd, buf, sizeof(buf), 0);
      if (n < 12) continue;
      long seq = (buf[2] << 8) | buf[3];
      lastAt = now_ns();
      ++count;
      if (seen[seq]) ++dups;
      seen[seq] = 1;
      if (first < 0) first = seq;
      else if (seq != ((last + 1) & 0xffff)) ++outOfOrder;
      last = seq;
    }
    printf("count %ld outOfOrder %ld duplicates %ld first %ld last %ld\n", count, outOfOrder, dups, first, last);
    return 0;
  }
  return 2;
}
