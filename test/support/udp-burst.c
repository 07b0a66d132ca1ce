/*
 * udp-burst: sends COUNT 172-byte RTP packets (sequence 0..COUNT-1, SSRC given) to DST_IP:DST_PORT as fast
 * as sendmmsg goes, in batches of 64: faster than a relay forwards, so the relay's socket queue fills up.
 * Loopback only. Prints the number of packets the kernel accepted.
 * usage: udp-burst DST_IP DST_PORT COUNT SSRC
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define BATCH 64
#define LEN 172

int main(int argc, char **argv) {
    if (argc != 5) {
        fprintf(stderr, "usage: udp-burst DST_IP DST_PORT COUNT SSRC\n");
        return 2;
    }
    struct sockaddr_in dst;
    memset(&dst, 0, sizeof dst);
    dst.sin_family = AF_INET;
    dst.sin_port = htons((unsigned short)atoi(argv[2]));
    if (inet_pton(AF_INET, argv[1], &dst.sin_addr) != 1 || (ntohl(dst.sin_addr.s_addr) >> 24) != 127) {
        fprintf(stderr, "udp-burst: destination must be an IPv4 loopback address\n");
        return 2;
    }
    long count = atol(argv[3]);
    if (count <= 0 || count > 1000000) {
        fprintf(stderr, "udp-burst: COUNT must be 1..1000000\n");
        return 2;
    }
    unsigned long ssrc = strtoul(argv[4], NULL, 0);
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    if (fd < 0) { perror("socket"); return 1; }
    int sndbuf = 4 << 20;
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);

    static unsigned char pkts[BATCH][LEN];
    struct iovec iov[BATCH];
    struct mmsghdr msgs[BATCH];
    memset(msgs, 0, sizeof msgs);
    long sent = 0;
    while (sent < count) {
        int n = count - sent < BATCH ? (int)(count - sent) : BATCH;
        for (int i = 0; i < n; i++) {
            unsigned long seq = (unsigned long)(sent + i);
            unsigned char *p = pkts[i];
            memset(p, 0, LEN);
            p[0] = 0x80; p[1] = 8;
            p[2] = (unsigned char)(seq >> 8); p[3] = (unsigned char)seq;
            p[4] = (unsigned char)(seq >> 24); p[5] = (unsigned char)(seq >> 16);  /* timestamp: any */
            p[8] = (unsigned char)(ssrc >> 24); p[9] = (unsigned char)(ssrc >> 16);
            p[10] = (unsigned char)(ssrc >> 8); p[11] = (unsigned char)ssrc;
            iov[i].iov_base = p;
            iov[i].iov_len = LEN;
            msgs[i].msg_hdr.msg_iov = &iov[i];
            msgs[i].msg_hdr.msg_iovlen = 1;
            msgs[i].msg_hdr.msg_name = &dst;
            msgs[i].msg_hdr.msg_namelen = sizeof dst;
        }
        int w = sendmmsg(fd, msgs, (unsigned)n, 0);
        if (w < 0) {
            if (errno == EINTR || errno == ENOBUFS || errno == EAGAIN) continue;
            perror("sendmmsg");
            return 1;
        }
        sent += w;
    }
    printf("%ld\n", sent);
    close(fd);
    return 0;
}
