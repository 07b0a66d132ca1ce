// loadgen: RTP load generator and sink in one single-threaded program.
//
// Why one thread: the generator and the sink share one core (the relay gets
// the other). Two threads on one core would hand the CPU to each other on the
// scheduler's timeslice and add milliseconds of fake latency; one loop that
// sends a batch and then drains whatever has arrived keeps the sink's own
// delay below one batch interval.
//
// Model: a set of UDP endpoint sockets (the "phones") both send and receive.
// Each stream (one direction of a call) goes from one endpoint socket to one
// destination (a relay port, or another endpoint for the no-relay ceiling
// run). Several streams share a source socket, so sendmmsg batches of up to
// 64 messages with a per-message destination are possible even at 1000 calls
// (each message carries its own msg_name). The sink tells streams apart by
// the SSRC and a stream index in the payload, so it can count packets per
// stream and check that every stream still forwards after an overload.
//
// Every run is bounded by a packet count AND by seconds, and always ends by
// itself. Output: one JSON object on stdout.

#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#ifdef WITH_SRTP
#include <srtp2/srtp.h>
#endif

#define BATCH_MAX 64
#define PKT_LEN 172          // 12-byte RTP header + 160-byte payload (G.711, 20 ms)
#define RTP_HDR 12
#define MAGIC 0x4E475242u    // "NGRB": marks our payload, rejects strays
#define SSRC_BASE 0x10000000u
#define MAX_STREAMS 65536
#define MAX_SOCKS 1024
#define LAT_BUCKETS 1000000  // 1 µs buckets up to 1 s; above goes to the last bucket
#define SRTP_TRAILER_MAX 16  // longest SRTP auth tag we use (AEAD GCM: 16 bytes)
#define PRE_STRIDE (PKT_LEN + SRTP_TRAILER_MAX)
#define SENT_MASK 16383u     // send-time table per SRTP stream: valid while latency < 16384 packets of that stream

typedef struct {
    int sock;                // index into socks[]
    struct sockaddr_in dst;
    uint16_t seq;
    uint32_t ts;
    uint64_t sent;
    uint64_t received;
    uint16_t last_rx_seq;
    int have_rx;
    uint64_t out_of_order;
    uint32_t roc;            // SRTP rollover counter of the next packet sent (kept across runs by --state-file)
#ifdef WITH_SRTP
    srtp_t tx_srtp;          // NULL: the stream is sent as plain RTP
    srtp_t rx_srtp;          // NULL: the stream arrives at the sink as plain RTP
#endif
    // SRTP streams: packets protected before the timed run (libsrtp's protect costs several µs here,
    // more than the relay's whole forwarding), consumed in order; live protect once they run out.
    uint8_t *pre;
    int pre_n, pre_next;
    uint32_t *sent_us;       // SRTP streams: send time (µs since start, +1) by seq & SENT_MASK; the payload is encrypted
    uint64_t rx_count_srtp;  // received packets that were SRTP at the sink (unprotect sampling)
    int tx_len;              // bytes on the wire as sent (172 + SRTP tag)
    int rx_len;              // bytes expected at the sink (172 + SRTP tag of the relay's outgoing leg)
} stream_t;

typedef struct {
    int fd;
    struct sockaddr_in addr;
    int *streams;            // indices of streams sending from this socket
    int nstreams;
    int cursor;              // round-robin position among its streams
    uint32_t rx_drops;       // SO_RXQ_OVFL: datagrams the kernel dropped on this socket
} sock_t;

static stream_t *streams;
static int nstreams;
static sock_t socks[MAX_SOCKS];
static int nsocks;
static uint32_t *lat_hist;
static uint64_t t_start_ns;
static int srtp_check_every = 1;   // the sink unprotects every Nth SRTP packet of a stream (1 = all)
static uint64_t srtp_tx_live;
#ifdef WITH_SRTP
static uint64_t srtp_rx_unchecked;
#endif

static uint64_t now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000000ull + (uint64_t)t.tv_nsec;
}

static void die(const char *what) {
    fprintf(stderr, "loadgen: %s: %s\n", what, strerror(errno));
    exit(2);
}

#ifdef WITH_SRTP
static int srtp_ready;
static uint64_t srtp_tx_errors, srtp_rx_auth_fail, srtp_rx_replay_fail, srtp_rx_other_fail;

static int unhex(const char *h, uint8_t *out, int max) {
    int n = 0;
    for (; h[0] && h[1]; h += 2) {
        unsigned v;
        if (n >= max || sscanf(h, "%2x", &v) != 1) return -1;
        out[n++] = (uint8_t)v;
    }
    return n;
}

// One srtp_t per stream and direction, the SDES suite name as in a=crypto. Returns the tag length.
static int make_srtp(const char *suite, const char *hexkey, uint32_t ssrc, srtp_t *out) {
    if (!srtp_ready) {
        if (srtp_init() != srtp_err_status_ok) { fprintf(stderr, "loadgen: srtp_init failed\n"); exit(2); }
        srtp_ready = 1;
    }
    srtp_policy_t p;
    memset(&p, 0, sizeof p);
    int tag;
    if (!strcmp(suite, "AES_CM_128_HMAC_SHA1_80")) {
        srtp_crypto_policy_set_aes_cm_128_hmac_sha1_80(&p.rtp); tag = 10;
    } else if (!strcmp(suite, "AES_CM_128_HMAC_SHA1_32")) {
        srtp_crypto_policy_set_aes_cm_128_hmac_sha1_32(&p.rtp); tag = 4;
    } else if (!strcmp(suite, "AEAD_AES_128_GCM")) {
        srtp_crypto_policy_set_aes_gcm_128_16_auth(&p.rtp); tag = 16;
    } else { fprintf(stderr, "loadgen: unsupported SRTP suite %s\n", suite); exit(2); }
    srtp_crypto_policy_set_aes_cm_128_hmac_sha1_80(&p.rtcp);  // no RTCP is sent; libsrtp wants a policy
    static uint8_t keys[MAX_STREAMS * 2][48];
    static int nkeys;
    uint8_t *key = keys[nkeys++];
    int klen = unhex(hexkey, key, 48);
    if (klen != 30 && klen != 28) { fprintf(stderr, "loadgen: SRTP key must be 30 (AES-CM) or 28 (GCM) bytes of hex\n"); exit(2); }
    p.key = key;
    // ssrc_specific: the stream exists from the start, so srtp_set_stream_roc can seed its ROC.
    p.ssrc.type = ssrc_specific;
    p.ssrc.value = ssrc;
    p.window_size = 1024;    // the sink reads batches from several sockets: allow some reordering
    p.allow_repeat_tx = 0;
    if (srtp_create(out, &p) != srtp_err_status_ok) { fprintf(stderr, "loadgen: srtp_create failed\n"); exit(2); }
    return tag;
}
#endif

static void usage(void) {
    fprintf(stderr,
        "usage: loadgen --streams-file F [--rate PPS (0 = as fast as possible)] --count N --seconds S\n"
        "               [--watch-pid PID] [--drain-ms MS] [--run-id ID] [--rcvbuf BYTES] [--per-stream] [--gso]\n"
        "               [--srtp-check-every N (sink unprotects every Nth SRTP packet of a stream; default 1)]\n"
        "               [--state-file F]  (sequence numbers, timestamps and SRTP ROC carried over between runs)\n"
        "               [--allow-addr IP]... (an address besides 127.0.0.0/8 it may bind to or send to; at most 16)\n"
        "streams file: one line per stream: SRC_IP SRC_PORT DST_IP DST_PORT [TX_SUITE TX_KEY RX_SUITE RX_KEY]\n"
        "  TX_*: SRTP the sender protects with; RX_*: SRTP the sink unprotects with (suite and key+salt in hex,\n"
        "  '- -' = plain RTP); needs a build with -DWITH_SRTP -lsrtp2\n"
        "every distinct SRC_IP:SRC_PORT becomes one endpoint socket that sends and receives\n");
    exit(2);
}

// Addresses besides 127.0.0.0/8 that this run may bind to or send to (--allow-addr, given one by one by
// ngrelay-bench for a relay it did not start: the phones' --local addresses and the media addresses the
// relay advertised). Nothing else: a typo cannot aim the load at an arbitrary host.
#define MAX_ALLOWED 16
static uint32_t allowed[MAX_ALLOWED];   // host byte order
static int nallowed;

static int addr_allowed(uint32_t h) {
    if ((h >> 24) == 127) return 1;
    for (int i = 0; i < nallowed; i++)
        if (allowed[i] == h) return 1;
    return 0;
}

static int find_or_open_sock(const char *ip, int port, int rcvbuf) {
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, ip, &a.sin_addr) != 1) { fprintf(stderr, "bad ip %s\n", ip); exit(2); }
    uint32_t h = ntohl(a.sin_addr.s_addr);
    if (!addr_allowed(h)) { fprintf(stderr, "loadgen: %s is not loopback nor --allow-addr; refusing\n", ip); exit(2); }
    for (int i = 0; i < nsocks; i++)
        if (socks[i].addr.sin_addr.s_addr == a.sin_addr.s_addr && socks[i].addr.sin_port == a.sin_port) return i;
    if (nsocks >= MAX_SOCKS) { fprintf(stderr, "too many endpoint sockets\n"); exit(2); }
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
    if (fd < 0) die("socket");
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    setsockopt(fd, SOL_SOCKET, SO_RXQ_OVFL, &one, sizeof one);
    // Big sink buffers: a drop at the sink must never look like relay loss.
    if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof rcvbuf) < 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
    int sndbuf = 4 << 20;
    if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &sndbuf, sizeof sndbuf) < 0)
        setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);
    if (bind(fd, (struct sockaddr *)&a, sizeof a) < 0) {
        fprintf(stderr, "loadgen: bind %s:%d: %s\n", ip, port, strerror(errno));
        exit(2);
    }
    socks[nsocks].fd = fd;
    socks[nsocks].addr = a;
    return nsocks++;
}

static void load_streams(const char *path, int rcvbuf) {
    FILE *f = fopen(path, "r");
    if (!f) die(path);
    streams = calloc(MAX_STREAMS, sizeof *streams);
    char sip[64], dip[64], line[1024];
    int sport, dport;
    while (fgets(line, sizeof line, f)) {
        char txs[64] = "-", txk[128] = "-", rxs[64] = "-", rxk[128] = "-";
        int nf = sscanf(line, "%63s %d %63s %d %63s %127s %63s %127s", sip, &sport, dip, &dport, txs, txk, rxs, rxk);
        if (nf < 4) continue;
        if (nstreams >= MAX_STREAMS) { fprintf(stderr, "too many streams\n"); exit(2); }
        stream_t *s = &streams[nstreams];
        s->sock = find_or_open_sock(sip, sport, rcvbuf);
        memset(&s->dst, 0, sizeof s->dst);
        s->dst.sin_family = AF_INET;
        s->dst.sin_port = htons((uint16_t)dport);
        if (inet_pton(AF_INET, dip, &s->dst.sin_addr) != 1 || !addr_allowed(ntohl(s->dst.sin_addr.s_addr))) {
            fprintf(stderr, "loadgen: destination %s is not loopback nor --allow-addr; refusing\n", dip);
            exit(2);
        }
        s->seq = (uint16_t)(nstreams * 7919);
        s->ts = (uint32_t)nstreams * 104729u;
        s->tx_len = PKT_LEN;
        s->rx_len = PKT_LEN;
        if (strcmp(txs, "-") || strcmp(rxs, "-")) {
#ifdef WITH_SRTP
            uint32_t ssrc = SSRC_BASE + (uint32_t)nstreams;
            if (strcmp(txs, "-")) s->tx_len += make_srtp(txs, txk, ssrc, &s->tx_srtp);
            if (strcmp(rxs, "-")) s->rx_len += make_srtp(rxs, rxk, ssrc, &s->rx_srtp);
#else
            fprintf(stderr, "loadgen: built without SRTP (WITH_SRTP) but the streams file asks for it\n");
            exit(2);
#endif
        }
        nstreams++;
    }
    fclose(f);
    if (nstreams == 0) { fprintf(stderr, "no streams in %s\n", path); exit(2); }
    for (int i = 0; i < nstreams; i++) socks[streams[i].sock].nstreams++;
    for (int k = 0; k < nsocks; k++) {
        socks[k].streams = malloc(sizeof(int) * (size_t)(socks[k].nstreams ? socks[k].nstreams : 1));
        socks[k].nstreams = 0;
    }
    for (int i = 0; i < nstreams; i++) {
        sock_t *k = &socks[streams[i].sock];
        k->streams[k->nstreams++] = i;
    }
}

// --state-file: a stream's sequence number, timestamp and ROC continue where the previous run
// stopped. Needed for SRTP: a relay's replay window rejects sequence numbers it has already seen,
// and a receiver must know the ROC once a stream wrapped.
static void load_state(const char *path) {
    FILE *f = fopen(path, "r");
    if (!f) return;  // first run
    int i;
    unsigned seq, ts, roc;
    while (fscanf(f, "%d %u %u %u", &i, &seq, &ts, &roc) == 4)
        if (i >= 0 && i < nstreams) {
            streams[i].seq = (uint16_t)seq;
            streams[i].ts = ts;
            streams[i].roc = roc;
        }
    fclose(f);
#ifdef WITH_SRTP
    for (i = 0; i < nstreams; i++) {
        stream_t *s = &streams[i];
        if (!s->roc) continue;  // ROC 0: libsrtp's own estimate from the first sequence number is right
        uint32_t ssrc = SSRC_BASE + (uint32_t)i;
        srtp_t sess[2] = { s->tx_srtp, s->rx_srtp };
        for (int d = 0; d < 2; d++) {
            if (!sess[d]) continue;
            if (srtp_set_stream_roc(sess[d], ssrc, s->roc) != srtp_err_status_ok) {
                fprintf(stderr, "loadgen: cannot set the ROC of stream %d\n", i);
                exit(2);
            }
        }
    }
#endif
}

static void save_state(const char *path) {
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f) die(tmp);
    for (int i = 0; i < nstreams; i++)
        fprintf(f, "%d %u %u %u\n", i, streams[i].seq, streams[i].ts, streams[i].roc);
    fclose(f);
    if (rename(tmp, path) < 0) die(path);
}

static long read_proc_cpu_ticks(int pid) {
    if (pid <= 0) return -1;
    char path[64], buf[4096];
    snprintf(path, sizeof path, "/proc/%d/stat", pid);
    int fd = open(path, O_RDONLY);
    if (fd < 0) return -1;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0) return -1;
    buf[n] = 0;
    // Fields after the command name (which may contain spaces) start after ')'.
    char *p = strrchr(buf, ')');
    if (!p) return -1;
    p += 2;  // now at field 3 (state)
    long utime = 0, stime = 0;
    // field 3 state, 4..13 skip, 14 utime, 15 stime
    int field = 3;
    char *save = NULL;
    for (char *tok = strtok_r(p, " ", &save); tok; tok = strtok_r(NULL, " ", &save), field++) {
        if (field == 14) utime = atol(tok);
        if (field == 15) { stime = atol(tok); break; }
    }
    return utime + stime;
}

// ---- receive side ----
static struct mmsghdr rx_msgs[BATCH_MAX];
static struct iovec rx_iov[BATCH_MAX];
static uint8_t rx_buf[BATCH_MAX][2048];
#ifdef WITH_SRTP
static uint64_t srtp_rx_ok;
#endif
static uint8_t rx_ctl[BATCH_MAX][64];
static uint64_t total_rx, stale_rx, foreign_rx;
static uint64_t first_rx_ns, last_rx_ns, max_lat_us;
static uint32_t run_id;

static void rx_init(void) {
    for (int i = 0; i < BATCH_MAX; i++) {
        rx_iov[i].iov_base = rx_buf[i];
        rx_iov[i].iov_len = sizeof rx_buf[i];
        rx_msgs[i].msg_hdr.msg_iov = &rx_iov[i];
        rx_msgs[i].msg_hdr.msg_iovlen = 1;
    }
}

// Drain one socket once (up to BATCH_MAX datagrams). Returns datagrams read.
static int rx_drain_sock(sock_t *k) {
    for (int i = 0; i < BATCH_MAX; i++) {
        rx_msgs[i].msg_hdr.msg_control = rx_ctl[i];
        rx_msgs[i].msg_hdr.msg_controllen = sizeof rx_ctl[i];
        rx_msgs[i].msg_hdr.msg_name = NULL;
        rx_msgs[i].msg_hdr.msg_namelen = 0;
    }
    int n = recvmmsg(k->fd, rx_msgs, BATCH_MAX, MSG_DONTWAIT, NULL);
    if (n <= 0) return 0;
    uint64_t t = now_ns();
    if (!first_rx_ns) first_rx_ns = t;
    last_rx_ns = t;
    for (int i = 0; i < n; i++) {
        struct msghdr *mh = &rx_msgs[i].msg_hdr;
        for (struct cmsghdr *c = CMSG_FIRSTHDR(mh); c; c = CMSG_NXTHDR(mh, c))
            if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SO_RXQ_OVFL) {
                uint32_t d;
                memcpy(&d, CMSG_DATA(c), sizeof d);
                if (d > k->rx_drops) k->rx_drops = d;
            }
        uint8_t *p = rx_buf[i];
        int len = (int)rx_msgs[i].msg_len;
        uint32_t magic, rid, idx, ssrc;
        uint64_t sent_ns = 0;
        if (len < RTP_HDR || (p[0] >> 6) != 2) { foreign_rx++; continue; }
        memcpy(&ssrc, p + 8, 4);
        idx = ntohl(ssrc) - SSRC_BASE;
        if (idx >= (uint32_t)nstreams || len != streams[idx].rx_len) { foreign_rx++; continue; }
        stream_t *s = &streams[idx];
        uint16_t seq = (uint16_t)((p[2] << 8) | p[3]);
        int payload_readable = 1;
#ifdef WITH_SRTP
        if (s->rx_srtp) {
            // The SSRC and seq are in clear; the payload (index, magic, run id) only after unprotect,
            // which the sink does for every Nth packet of the stream (libsrtp is slow here).
            if (s->rx_count_srtp++ % (uint64_t)srtp_check_every == 0) {
                srtp_err_status_t e = srtp_unprotect(s->rx_srtp, p, &len);
                if (e == srtp_err_status_auth_fail) { srtp_rx_auth_fail++; continue; }
                if (e == srtp_err_status_replay_fail || e == srtp_err_status_replay_old) { srtp_rx_replay_fail++; continue; }
                if (e != srtp_err_status_ok) { srtp_rx_other_fail++; continue; }
                srtp_rx_ok++;
            } else {
                payload_readable = 0;
                srtp_rx_unchecked++;
            }
        }
#endif
        if (payload_readable) {
            if (len != PKT_LEN) { foreign_rx++; continue; }
            memcpy(&sent_ns, p + RTP_HDR, 8);
            memcpy(&idx, p + RTP_HDR + 8, 4);
            memcpy(&magic, p + RTP_HDR + 12, 4);
            memcpy(&rid, p + RTP_HDR + 16, 4);
            if (magic != MAGIC || idx >= (uint32_t)nstreams || ntohl(ssrc) != SSRC_BASE + idx) { foreign_rx++; continue; }
            if (rid != run_id) { stale_rx++; continue; }
        }
        if (s->sent_us) {
            // SRTP stream: the send time comes from the sender's table (by seq), not from the payload.
            uint32_t us = s->sent_us[seq & SENT_MASK];
            if (!us) { stale_rx++; continue; }  // not sent by this run
            sent_ns = t_start_ns + (uint64_t)(us - 1) * 1000ull;
        }
        if (s->have_rx && (int16_t)(seq - s->last_rx_seq) <= 0) s->out_of_order++;
        else s->last_rx_seq = seq;
        s->have_rx = 1;
        s->received++;
        total_rx++;
        uint64_t lat_us = t > sent_ns ? (t - sent_ns) / 1000 : 0;
        if (lat_us > max_lat_us) max_lat_us = lat_us;
        lat_hist[lat_us < LAT_BUCKETS ? lat_us : LAT_BUCKETS - 1]++;
    }
    return n;
}

// Poll every ready endpoint socket once, without blocking (or waiting up to timeout_ms).
static int rx_poll(int ep, int timeout_ms) {
    struct epoll_event ev[MAX_SOCKS];
    int n = epoll_wait(ep, ev, MAX_SOCKS, timeout_ms);
    int got = 0;
    for (int i = 0; i < n; i++) got += rx_drain_sock(&socks[ev[i].data.u32]);
    return got;
}

// ---- send side ----
static struct mmsghdr tx_msgs[BATCH_MAX];
static struct iovec tx_iov[BATCH_MAX];   // one per packet; a GSO message points at a run of them
static uint8_t tx_buf[BATCH_MAX][PKT_LEN + SRTP_TRAILER_MAX];
static int tx_stream[BATCH_MAX];
static int tx_run_len[BATCH_MAX];   // GSO: packets carried by message i
static uint8_t tx_ctl[BATCH_MAX][CMSG_SPACE(sizeof(uint16_t))];
static int next_sock;
static int use_gso;

// Writes packet number `slot` of the batch (RTP, then SRTP-protected if the stream is) and
// points tx_iov[slot] at it. Returns its length on the wire.
static int build_packet(uint8_t *p, int si, uint64_t t);

static int fill_packet(int slot, int si, uint64_t t) {
    stream_t *s = &streams[si];
    if (s->sent_us) {
        uint16_t seq;
        int len;
        uint8_t *p;
        if (s->pre_next < s->pre_n) {
            p = s->pre + (size_t)s->pre_next++ * PRE_STRIDE;
            len = s->tx_len;
        } else {
            p = tx_buf[slot];
            len = build_packet(p, si, t);
#ifdef WITH_SRTP
            if (s->tx_srtp) srtp_tx_live++;
#endif
        }
        seq = (uint16_t)((p[2] << 8) | p[3]);
        s->sent_us[seq & SENT_MASK] = (uint32_t)((t - t_start_ns) / 1000) + 1;
        tx_iov[slot].iov_base = p;
        tx_iov[slot].iov_len = (size_t)len;
        return len;
    }
    int len = build_packet(tx_buf[slot], si, t);
    tx_iov[slot].iov_base = tx_buf[slot];
    tx_iov[slot].iov_len = (size_t)len;
    return len;
}

// One RTP packet of stream si (SRTP-protected if the stream is); returns its length.
static int build_packet(uint8_t *p, int si, uint64_t t) {
    stream_t *s = &streams[si];
    p[0] = 0x80;            // V=2, no padding, no extension, no CSRC
    p[1] = 8;               // PT 8 (PCMA), no marker
    p[2] = (uint8_t)(s->seq >> 8);
    p[3] = (uint8_t)s->seq;
    uint32_t v = htonl(s->ts);
    // A stream may appear several times in one batch: number each copy.
    // If the kernel takes fewer than asked, the unsent numbers are a gap the sink ignores.
    s->seq++;
    if (s->seq == 0) s->roc++;  // the next packet starts a new SRTP rollover
    s->ts += 160;
    memcpy(p + 4, &v, 4);
    v = htonl(SSRC_BASE + (uint32_t)si);
    memcpy(p + 8, &v, 4);
    memcpy(p + RTP_HDR, &t, 8);
    uint32_t idx = (uint32_t)si;
    memcpy(p + RTP_HDR + 8, &idx, 4);
    uint32_t magic = MAGIC;
    memcpy(p + RTP_HDR + 12, &magic, 4);
    memcpy(p + RTP_HDR + 16, &run_id, 4);
    memset(p + RTP_HDR + 20, 0, PKT_LEN - RTP_HDR - 20);
    int len = PKT_LEN;
#ifdef WITH_SRTP
    if (s->tx_srtp && srtp_protect(s->tx_srtp, p, &len) != srtp_err_status_ok) srtp_tx_errors++;
#endif
    return len;
}

// Before the timed run: tables for every SRTP stream, and `per_stream` pre-protected packets per
// sending SRTP stream (what its share of --count needs, within a memory cap).
static void prepare_srtp(uint64_t count) {
    int ntx = 0;
    for (int i = 0; i < nstreams; i++) {
#ifdef WITH_SRTP
        stream_t *s = &streams[i];
        if (!s->tx_srtp && !s->rx_srtp) continue;
        s->sent_us = calloc(SENT_MASK + 1, sizeof *s->sent_us);
        if (!s->sent_us) die("calloc");
        if (s->tx_srtp) ntx++;
#endif
    }
    if (!ntx) return;
    uint64_t per = count / (uint64_t)nstreams + count / (uint64_t)nstreams / 50 + 64;
    uint64_t cap = (1024ull << 20) / PRE_STRIDE / (uint64_t)ntx;   // at most 1 GB in all
    if (per > cap) per = cap;
    if (per > 30000) per = 30000;                                    // unsent ones are a seq gap: keep it < 2^15
    for (int i = 0; i < nstreams; i++) {
        stream_t *s = &streams[i];
#ifdef WITH_SRTP
        if (!s->tx_srtp) continue;
#endif
        s->pre = malloc((size_t)per * PRE_STRIDE);
        if (!s->pre) die("malloc");
        s->pre_n = (int)per;
        for (int j = 0; j < s->pre_n; j++) build_packet(s->pre + (size_t)j * PRE_STRIDE, i, 0);
    }
}

// UDP GSO variant: consecutive packets of one stream go out as one message with a
// UDP_SEGMENT control message, which the kernel splits into 172-byte datagrams.
// Each stream gets a run of n / (streams on this socket) packets (at least 1).
static int tx_batch_gso(sock_t *k, int n, uint64_t *send_errors) {
    uint64_t t = now_ns();
    int per = n / k->nstreams;
    if (per < 1) per = 1;
    int cur = k->cursor, nmsg = 0, filled = 0;
    while (filled < n) {
        int si = k->streams[cur];
        cur = (cur + 1) % k->nstreams;
        int m = n - filled < per ? n - filled : per;
        int seg = PKT_LEN;
        for (int j = 0; j < m; j++) seg = fill_packet(filled + j, si, t);
        struct msghdr *h = &tx_msgs[nmsg].msg_hdr;
        // The run's packets are one iovec each; the kernel joins them and cuts at `seg`.
        h->msg_iov = &tx_iov[filled];
        h->msg_iovlen = (size_t)m;
        h->msg_name = &streams[si].dst;
        h->msg_namelen = sizeof streams[si].dst;
        if (m > 1) {
            h->msg_control = tx_ctl[nmsg];
            h->msg_controllen = sizeof tx_ctl[nmsg];
            struct cmsghdr *c = CMSG_FIRSTHDR(h);
            c->cmsg_level = SOL_UDP;
            c->cmsg_type = UDP_SEGMENT;
            c->cmsg_len = CMSG_LEN(sizeof(uint16_t));
            uint16_t seg16 = (uint16_t)seg;
            memcpy(CMSG_DATA(c), &seg16, sizeof seg16);
        } else {
            h->msg_control = NULL;
            h->msg_controllen = 0;
        }
        tx_stream[nmsg] = si;
        tx_run_len[nmsg] = m;
        nmsg++;
        filled += m;
    }
    int r = sendmmsg(k->fd, tx_msgs, (unsigned)nmsg, MSG_DONTWAIT);
    if (r < 0) { (*send_errors)++; r = 0; }
    else if (r < nmsg) (*send_errors)++;
    int pkts = 0;
    for (int i = 0; i < r; i++) {
        streams[tx_stream[i]].sent += (uint64_t)tx_run_len[i];
        pkts += tx_run_len[i];
    }
    k->cursor = (k->cursor + r) % k->nstreams;
    return pkts;
}

// Build and send one batch of up to n packets from the next socket in turn.
static int tx_batch(int n, uint64_t *send_errors) {
    // pick the next socket that has streams
    sock_t *k = NULL;
    for (int tries = 0; tries < nsocks; tries++) {
        sock_t *c = &socks[next_sock];
        next_sock = (next_sock + 1) % nsocks;
        if (c->nstreams) { k = c; break; }
    }
    if (!k) return 0;
    if (use_gso) return tx_batch_gso(k, n, send_errors);
    uint64_t t = now_ns();
    int cur = k->cursor;
    for (int i = 0; i < n; i++) {
        int si = k->streams[cur];
        cur = (cur + 1) % k->nstreams;
        stream_t *s = &streams[si];
        fill_packet(i, si, t);
        tx_msgs[i].msg_hdr.msg_iov = &tx_iov[i];
        tx_msgs[i].msg_hdr.msg_iovlen = 1;
        tx_msgs[i].msg_hdr.msg_control = NULL;
        tx_msgs[i].msg_hdr.msg_controllen = 0;
        tx_msgs[i].msg_hdr.msg_name = &s->dst;
        tx_msgs[i].msg_hdr.msg_namelen = sizeof s->dst;
        tx_stream[i] = si;
    }
    int r = sendmmsg(k->fd, tx_msgs, (unsigned)n, MSG_DONTWAIT);
    if (r < 0) { (*send_errors)++; r = 0; }
    else if (r < n) (*send_errors)++;
    // only what the kernel accepted counts as sent; the stream cursor moves by that much
    for (int i = 0; i < r; i++) {
        streams[tx_stream[i]].sent++;
    }
    k->cursor = (k->cursor + r) % k->nstreams;
    return r;
}

static double percentile_us(double q) {
    if (!total_rx) return -1;
    uint64_t want = (uint64_t)(q * (double)total_rx);
    if (want >= total_rx) want = total_rx - 1;
    uint64_t acc = 0;
    for (int i = 0; i < LAT_BUCKETS; i++) {
        acc += lat_hist[i];
        if (acc > want) return (double)i;
    }
    return LAT_BUCKETS - 1;
}

int main(int argc, char **argv) {
    const char *streams_file = NULL, *state_file = NULL;
    double rate = 0, seconds = 0;
    uint64_t count = 0;
    int watch_pid = 0, drain_ms = 300, rcvbuf = 32 << 20, per_stream = 0;
    run_id = (uint32_t)getpid();
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--streams-file") && v) { streams_file = v; i++; }
        else if (!strcmp(a, "--rate") && v) { rate = atof(v); i++; }
        else if (!strcmp(a, "--count") && v) { count = strtoull(v, NULL, 10); i++; }
        else if (!strcmp(a, "--seconds") && v) { seconds = atof(v); i++; }
        else if (!strcmp(a, "--watch-pid") && v) { watch_pid = atoi(v); i++; }
        else if (!strcmp(a, "--drain-ms") && v) { drain_ms = atoi(v); i++; }
        else if (!strcmp(a, "--run-id") && v) { run_id = (uint32_t)strtoul(v, NULL, 10); i++; }
        else if (!strcmp(a, "--rcvbuf") && v) { rcvbuf = atoi(v); i++; }
        else if (!strcmp(a, "--per-stream")) per_stream = 1;
        else if (!strcmp(a, "--gso")) use_gso = 1;
        else if (!strcmp(a, "--state-file") && v) { state_file = v; i++; }
        else if (!strcmp(a, "--srtp-check-every") && v) { srtp_check_every = atoi(v); i++; }
        else if (!strcmp(a, "--allow-addr") && v) {
            struct in_addr x;
            if (nallowed >= MAX_ALLOWED || inet_pton(AF_INET, v, &x) != 1) usage();
            allowed[nallowed++] = ntohl(x.s_addr);
            i++;
        }
        else usage();
    }
    // Both bounds are mandatory: a run always ends by itself.
    if (!streams_file || count == 0 || seconds <= 0 || seconds > 120 || drain_ms < 0 || drain_ms > 5000 || srtp_check_every < 1) usage();
    t_start_ns = now_ns();

    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) { rl.rlim_cur = rl.rlim_max; setrlimit(RLIMIT_NOFILE, &rl); }
    lat_hist = calloc(LAT_BUCKETS, sizeof *lat_hist);
    load_streams(streams_file, rcvbuf);
    if (state_file) load_state(state_file);
    prepare_srtp(count);
    rx_init();
    int ep = epoll_create1(0);
    if (ep < 0) die("epoll_create1");
    for (int k = 0; k < nsocks; k++) {
        struct epoll_event e = { .events = EPOLLIN, .data.u32 = (uint32_t)k };
        if (epoll_ctl(ep, EPOLL_CTL_ADD, socks[k].fd, &e) < 0) die("epoll_ctl");
    }

    // Pacing: token bucket at the aggregate rate. A batch leaves once enough
    // tokens for a "pacing batch" have accumulated (rate x 50 µs, between 1 and
    // 64 packets), so the packets are spread as evenly as sendmmsg allows.
    // The bucket never holds more than two full batches, so a generator that
    // falls behind does not catch up with a burst.
    int pace_batch = BATCH_MAX;
    if (rate > 0) {
        pace_batch = (int)(rate * 50e-6);
        if (pace_batch < 1) pace_batch = 1;
        if (pace_batch > BATCH_MAX) pace_batch = BATCH_MAX;
    }
    uint64_t sent = 0, send_errors = 0;
    double tokens = pace_batch;
    struct rusage ru0;
    getrusage(RUSAGE_SELF, &ru0);   // the generator's CPU counts from here (pre-protect excluded)
    long cpu0 = read_proc_cpu_ticks(watch_pid);
    uint64_t t0 = now_ns(), tlast = t0;
    uint64_t limit_ns = (uint64_t)(seconds * 1e9);
    uint64_t t = t0;
    while (sent < count && (t = now_ns()) - t0 < limit_ns) {
        if (rate > 0) {
            tokens += (double)(t - tlast) * rate / 1e9;
            tlast = t;
            if (tokens > 2.0 * BATCH_MAX) tokens = 2.0 * BATCH_MAX;
        }
        int n = rate > 0 ? (int)tokens : BATCH_MAX;
        if (n >= pace_batch) {
            if (n > BATCH_MAX) n = BATCH_MAX;
            if ((uint64_t)n > count - sent) n = (int)(count - sent);
            int r = tx_batch(n, &send_errors);
            sent += (uint64_t)r;
            if (rate > 0) tokens -= r;
        }
        rx_poll(ep, 0);
    }
    uint64_t t_send_end = now_ns();
    // Drain: keep reading until nothing arrived for drain_ms (hard cap 5 s).
    uint64_t quiet_since = now_ns();
    while (1) {
        uint64_t n = (uint64_t)rx_poll(ep, 10);
        uint64_t tn = now_ns();
        if (n) quiet_since = tn;
        if (tn - quiet_since >= (uint64_t)drain_ms * 1000000ull || tn - t_send_end > 5000000000ull) break;
    }
    long cpu1 = read_proc_cpu_ticks(watch_pid);
    if (state_file) save_state(state_file);
    // The generator's own CPU (send + protect + receive + unprotect): shows when it, not the relay, is the limit.
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    double gen_cpu_s = (double)(ru.ru_utime.tv_sec - ru0.ru_utime.tv_sec) + (ru.ru_utime.tv_usec - ru0.ru_utime.tv_usec) / 1e6 +
                       (double)(ru.ru_stime.tv_sec - ru0.ru_stime.tv_sec) + (ru.ru_stime.tv_usec - ru0.ru_stime.tv_usec) / 1e6;

    double send_s = (double)(t_send_end - t0) / 1e9;
    uint64_t active_end = last_rx_ns > t_send_end ? last_rx_ns : t_send_end;
    double active_s = (double)(active_end - t0) / 1e9;
    long hz = sysconf(_SC_CLK_TCK);
    int silent = 0;
    uint64_t ooo = 0, min_rx = UINT64_MAX;
    for (int i = 0; i < nstreams; i++) {
        if (streams[i].received == 0) silent++;
        if (streams[i].received < min_rx) min_rx = streams[i].received;
        ooo += streams[i].out_of_order;
    }
    uint64_t sink_drops = 0;
    for (int k = 0; k < nsocks; k++) sink_drops += socks[k].rx_drops;

    printf("{\"streams\":%d,\"sockets\":%d,\"rate_target\":%.0f,\"sent\":%llu,\"received\":%llu,"
           "\"send_errors\":%llu,\"send_s\":%.6f,\"active_s\":%.6f,\"offered_pps\":%.1f,\"forwarded_pps\":%.1f,"
           "\"loss_pct\":%.4f,\"lat_p50_us\":%.0f,\"lat_p99_us\":%.0f,\"lat_max_us\":%.0f,"
           "\"silent_streams\":%d,\"min_stream_received\":%llu,\"out_of_order\":%llu,\"stale\":%llu,\"foreign\":%llu,"
           "\"sink_drops\":%llu,\"relay_pid\":%d,\"relay_cpu_ticks\":%ld,\"clk_tck\":%ld,\"relay_cpu_s\":%.4f",
           nstreams, nsocks, rate, (unsigned long long)sent, (unsigned long long)total_rx,
           (unsigned long long)send_errors, send_s, active_s, send_s > 0 ? sent / send_s : 0,
           active_s > 0 ? total_rx / active_s : 0,
           sent ? 100.0 * (double)(sent - (total_rx < sent ? total_rx : sent)) / (double)sent : 0,
           percentile_us(0.50), percentile_us(0.99), (double)max_lat_us,
           silent, (unsigned long long)(min_rx == UINT64_MAX ? 0 : min_rx), (unsigned long long)ooo,
           (unsigned long long)stale_rx, (unsigned long long)foreign_rx, (unsigned long long)sink_drops,
           watch_pid, (cpu0 >= 0 && cpu1 >= 0) ? cpu1 - cpu0 : -1, hz,
           (cpu0 >= 0 && cpu1 >= 0) ? (double)(cpu1 - cpu0) / (double)hz : -1.0);
    printf(",\"gen_cpu_s\":%.4f", gen_cpu_s);
#ifdef WITH_SRTP
    printf(",\"srtp\":{\"tx_live\":%llu,\"rx_unchecked\":%llu,\"tx_errors\":%llu,\"rx_ok\":%llu,\"rx_auth_fail\":%llu,\"rx_replay_fail\":%llu,\"rx_other_fail\":%llu}",
           (unsigned long long)srtp_tx_live, (unsigned long long)srtp_rx_unchecked,
           (unsigned long long)srtp_tx_errors, (unsigned long long)srtp_rx_ok, (unsigned long long)srtp_rx_auth_fail,
           (unsigned long long)srtp_rx_replay_fail, (unsigned long long)srtp_rx_other_fail);
#endif
    if (per_stream) {
        printf(",\"per_stream_received\":[");
        for (int i = 0; i < nstreams; i++) printf("%s%llu", i ? "," : "", (unsigned long long)streams[i].received);
        printf("]");
    }
    printf("}\n");
    return 0;
}
