// minfwd: the smallest useful userspace UDP forwarder, as a yardstick.
//
// One thread, one level-triggered epoll set, recvmmsg/sendmmsg batches of 64
// between fixed socket pairs, no parsing, no learning, no counters beyond a
// total. Whatever CPU it spends per packet is (almost all) the kernel's socket
// API cost on this machine: the floor a real relay's userspace path can reach.
//
// A pair mimics one call through a relay: socket A (the port party A sends
// to) and socket B (the port party B sends to). Packets read on A leave from
// B towards party B's address, and the reverse, just like a relay that sends
// out of the socket the receiving party was given.
//
// It runs until SIGTERM/SIGINT or --max-seconds (default 1800), whichever first.

#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BATCH 64
#define MAX_PKT 2048

typedef struct {
    int fd;
    int out_fd;                 // socket the forwarded packets leave from
    struct sockaddr_in peer;    // where they go
} side_t;

static volatile sig_atomic_t stop;
static void on_signal(int s) { (void)s; stop = 1; }

// Binds ip:port; returns -1 if the port is taken (someone else's socket), exits on other errors.
static int open_bound(const char *ip, int port, int rcvbuf) {
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, ip, &a.sin_addr) != 1) { fprintf(stderr, "minfwd: bad ip %s\n", ip); exit(2); }
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
    if (fd < 0) { perror("socket"); exit(2); }
    if (rcvbuf > 0 && setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof rcvbuf) < 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
    if (bind(fd, (struct sockaddr *)&a, sizeof a) < 0) {
        if (errno == EADDRINUSE) { close(fd); return -1; }
        fprintf(stderr, "minfwd: bind %s:%d: %s\n", ip, port, strerror(errno));
        exit(2);
    }
    return fd;
}

// Like a relay's port allocator: the next free even port in the range (the odd one is left for RTCP).
static int next_port = 0;
static int alloc_port(const char *ip, int port_max, int rcvbuf, int *port_out) {
    for (; next_port + 1 <= port_max; next_port += 2) {
        int fd = open_bound(ip, next_port, rcvbuf);
        if (fd >= 0) { *port_out = next_port; next_port += 2; return fd; }
    }
    fprintf(stderr, "minfwd: port range exhausted\n");
    exit(2);
}

// Peers besides 127.0.0.0/8 it may send to (--allow-addr, one by one: the veth topology's phones).
#define MAX_ALLOWED 16
static uint32_t allowed[MAX_ALLOWED];  // host byte order
static int nallowed;

static int peer_allowed(uint32_t h) {
    if ((h >> 24) == 127) return 1;
    for (int i = 0; i < nallowed; i++)
        if (allowed[i] == h) return 1;
    return 0;
}

static void set_peer(struct sockaddr_in *p, const char *ip, int port) {
    memset(p, 0, sizeof *p);
    p->sin_family = AF_INET;
    p->sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, ip, &p->sin_addr) != 1 || !peer_allowed(ntohl(p->sin_addr.s_addr))) {
        fprintf(stderr, "minfwd: peer %s must be a loopback address or --allow-addr\n", ip);
        exit(2);
    }
}

int main(int argc, char **argv) {
    const char *bind_ip = "127.0.0.1", *pairs_file = NULL;
    double max_seconds = 1800;
    int rcvbuf = 0;  // 0: kernel default, as a relay that does not tune it
    int port_min = 50000, port_max = 57999;
    for (int i = 1; i < argc; i++) {
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(argv[i], "--bind") && v) { bind_ip = v; i++; }
        else if (!strcmp(argv[i], "--pairs-file") && v) { pairs_file = v; i++; }
        else if (!strcmp(argv[i], "--max-seconds") && v) { max_seconds = atof(v); i++; }
        else if (!strcmp(argv[i], "--rcvbuf") && v) { rcvbuf = atoi(v); i++; }
        else if (!strcmp(argv[i], "--port-min") && v) { port_min = atoi(v); i++; }
        else if (!strcmp(argv[i], "--port-max") && v) { port_max = atoi(v); i++; }
        else if (!strcmp(argv[i], "--allow-addr") && v) {
            struct in_addr a;
            if (nallowed >= MAX_ALLOWED || inet_pton(AF_INET, v, &a) != 1) { fprintf(stderr, "minfwd: bad or too many --allow-addr %s\n", v); return 2; }
            allowed[nallowed++] = ntohl(a.s_addr);
            i++;
        }
        else {
            fprintf(stderr,
                "usage: minfwd --pairs-file F [--bind 127.0.0.1] [--port-min 50000] [--port-max 57999]\n"
                "              [--rcvbuf BYTES] [--max-seconds S] [--allow-addr IP]...\n"
                "pairs file, one line per call: PEER_A_IP PEER_A_PORT PEER_B_IP PEER_B_PORT\n"
                "minfwd binds two free even ports per call, PORT_A (A sends there) and PORT_B (B sends there),\n"
                "prints 'pair N PORT_A PORT_B' per call, then 'ready'. Read on PORT_A -> sent from PORT_B to\n"
                "PEER_B; read on PORT_B -> sent from PORT_A to PEER_A.\n");
            return 2;
        }
    }
    if (!pairs_file) { fprintf(stderr, "minfwd: --pairs-file is required\n"); return 2; }
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) { rl.rlim_cur = rl.rlim_max; setrlimit(RLIMIT_NOFILE, &rl); }
    signal(SIGTERM, on_signal);
    signal(SIGINT, on_signal);
    signal(SIGPIPE, SIG_IGN);

    FILE *f = fopen(pairs_file, "r");
    if (!f) { perror(pairs_file); return 2; }
    int cap = 1024, nsides = 0;
    side_t *sides = malloc(sizeof(side_t) * (size_t)cap);
    int pa, pb, ppa, ppb, ncalls = 0;
    char ipa[64], ipb[64];
    int ep = epoll_create1(0);
    next_port = port_min + (port_min & 1);
    while (fscanf(f, "%63s %d %63s %d", ipa, &ppa, ipb, &ppb) == 4) {
        if (nsides + 2 > cap) { cap *= 2; sides = realloc(sides, sizeof(side_t) * (size_t)cap); }
        int fa = alloc_port(bind_ip, port_max, rcvbuf, &pa), fb = alloc_port(bind_ip, port_max, rcvbuf, &pb);
        side_t *a = &sides[nsides], *b = &sides[nsides + 1];
        a->fd = fa; a->out_fd = fb; set_peer(&a->peer, ipb, ppb);
        b->fd = fb; b->out_fd = fa; set_peer(&b->peer, ipa, ppa);
        nsides += 2;
        printf("pair %d %d %d\n", ncalls++, pa, pb);
    }
    fclose(f);
    for (int i = 0; i < nsides; i++) {
        struct epoll_event e = { .events = EPOLLIN, .data.u32 = (uint32_t)i };
        if (epoll_ctl(ep, EPOLL_CTL_ADD, sides[i].fd, &e) < 0) { perror("epoll_ctl"); return 2; }
    }
    printf("ready %d sockets\n", nsides);
    fflush(stdout);

    static uint8_t bufs[BATCH][MAX_PKT];
    struct iovec iov[BATCH];
    struct mmsghdr msgs[BATCH];
    for (int i = 0; i < BATCH; i++) {
        iov[i].iov_base = bufs[i];
        msgs[i].msg_hdr.msg_iov = &iov[i];
        msgs[i].msg_hdr.msg_iovlen = 1;
    }
    struct timespec ts0, tn;
    clock_gettime(CLOCK_MONOTONIC, &ts0);
    unsigned long long fwd = 0, dropped = 0;
    struct epoll_event evs[256];
    while (!stop) {
        int n = epoll_wait(ep, evs, 256, 500);
        if (n < 0 && errno != EINTR) { perror("epoll_wait"); break; }
        for (int e = 0; e < n; e++) {
            side_t *s = &sides[evs[e].data.u32];
            for (int i = 0; i < BATCH; i++) {
                iov[i].iov_len = MAX_PKT;
                msgs[i].msg_hdr.msg_name = NULL;
                msgs[i].msg_hdr.msg_namelen = 0;
                msgs[i].msg_hdr.msg_control = NULL;
                msgs[i].msg_hdr.msg_controllen = 0;
            }
            int r = recvmmsg(s->fd, msgs, BATCH, MSG_DONTWAIT, NULL);
            if (r <= 0) continue;
            for (int i = 0; i < r; i++) {
                iov[i].iov_len = msgs[i].msg_len;
                msgs[i].msg_hdr.msg_name = &s->peer;
                msgs[i].msg_hdr.msg_namelen = sizeof s->peer;
            }
            int w = sendmmsg(s->out_fd, msgs, (unsigned)r, MSG_DONTWAIT);
            if (w < 0) w = 0;
            fwd += (unsigned long long)w;
            dropped += (unsigned long long)(r - w);
        }
        clock_gettime(CLOCK_MONOTONIC, &tn);
        if ((double)(tn.tv_sec - ts0.tv_sec) > max_seconds) break;
    }
    fprintf(stderr, "minfwd: forwarded %llu, send failures %llu\n", fwd, dropped);
    return 0;
}
