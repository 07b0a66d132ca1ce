/*
 * Interop oracle for test/integration/srtp-libsrtp.test.ts: libsrtp2 (an independent SRTP implementation)
 * protects or unprotects a stream of packets given as hex lines on stdin, one srtp session for the whole
 * stream (so ROC, replay window and SRTCP index carry over between lines, as on a real call).
 *
 *   libsrtp-helper <protect-rtp|unprotect-rtp|protect-rtcp|unprotect-rtcp> <suite> <key+salt hex> [flags]
 *
 * flags: comma list of noenc-rtp, noenc-rtcp, noauth-rtp (the SDES UNENCRYPTED_SRTP/SRTCP and
 * UNAUTHENTICATED_SRTP session parameters). Output: one line per input line, the resulting packet in hex or
 * "ERR <srtp_err_status_t>".
 */
#include <srtp2/srtp.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int hexval(int c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

static int unhex(const char *s, unsigned char *out, int max) {
  int n = 0;
  while (s[0] && s[0] != '\n' && s[0] != '\r') {
    int hi = hexval(s[0]), lo = s[1] ? hexval(s[1]) : -1;
    if (hi < 0 || lo < 0 || n >= max) return -1;
    out[n++] = (unsigned char)(hi << 4 | lo);
    s += 2;
  }
  return n;
}

static int set_policy(const char *suite, srtp_policy_t *p) {
  if (!strcmp(suite, "AES_CM_128_HMAC_SHA1_80")) {
    srtp_crypto_policy_set_aes_cm_128_hmac_sha1_80(&p->rtp);
    srtp_crypto_policy_set_aes_cm_128_hmac_sha1_80(&p->rtcp);
  } else if (!strcmp(suite, "AES_CM_128_HMAC_SHA1_32")) {
    /* RFC 4568 §6.2.2: the _32 suites keep an 80-bit SRTCP tag. */
    srtp_crypto_policy_set_aes_cm_128_hmac_sha1_32(&p->rtp);
    srtp_crypto_policy_set_aes_cm_128_hmac_sha1_80(&p->rtcp);
  } else if (!strcmp(suite, "AES_256_CM_HMAC_SHA1_80")) {
    srtp_crypto_policy_set_aes_cm_256_hmac_sha1_80(&p->rtp);
    srtp_crypto_policy_set_aes_cm_256_hmac_sha1_80(&p->rtcp);
  } else if (!strcmp(suite, "AES_256_CM_HMAC_SHA1_32")) {
    srtp_crypto_policy_set_aes_cm_256_hmac_sha1_32(&p->rtp);
    srtp_crypto_policy_set_aes_cm_256_hmac_sha1_80(&p->rtcp);
  } else if (!strcmp(suite, "AEAD_AES_128_GCM")) {
    srtp_crypto_policy_set_aes_gcm_128_16_auth(&p->rtp);
    srtp_crypto_policy_set_aes_gcm_128_16_auth(&p->rtcp);
  } else if (!strcmp(suite, "AEAD_AES_256_GCM")) {
    srtp_crypto_policy_set_aes_gcm_256_16_auth(&p->rtp);
    srtp_crypto_policy_set_aes_gcm_256_16_auth(&p->rtcp);
  } else {
    return -1;
  }
  return 0;
}

int main(int argc, char **argv) {
  if (argc < 4) {
    fprintf(stderr, "usage: %s <mode> <suite> <key+salt hex> [flags]\n", argv[0]);
    return 2;
  }
  const char *mode = argv[1];
  int protect = !strncmp(mode, "protect", 7);
  int rtcp = strstr(mode, "rtcp") != NULL;
  const char *flags = argc > 4 ? argv[4] : "";

  if (srtp_init() != srtp_err_status_ok) return 3;
  srtp_policy_t policy;
  memset(&policy, 0, sizeof policy);
  if (set_policy(argv[2], &policy)) {
    fprintf(stderr, "unknown suite %s\n", argv[2]);
    return 2;
  }
  if (strstr(flags, "noenc-rtp")) policy.rtp.sec_serv = sec_serv_auth;
  if (strstr(flags, "noenc-rtcp")) policy.rtcp.sec_serv = sec_serv_auth;
  if (strstr(flags, "noauth-rtp")) {
    if (strstr(argv[2], "AES_256_CM"))
      srtp_crypto_policy_set_aes_cm_256_null_auth(&policy.rtp);
    else
      srtp_crypto_policy_set_aes_cm_128_null_auth(&policy.rtp);
  }
  static unsigned char key[64];
  if (unhex(argv[3], key, sizeof key) < 0) return 2;
  policy.key = key;
  policy.ssrc.type = protect ? ssrc_any_outbound : ssrc_any_inbound;
  policy.window_size = 128;
  policy.allow_repeat_tx = 0;
  policy.next = NULL;

  srtp_t session;
  srtp_err_status_t st = srtp_create(&session, &policy);
  if (st != srtp_err_status_ok) {
    fprintf(stderr, "srtp_create failed: %d\n", (int)st);
    return 3;
  }

  static char line[20000];
  static unsigned char pkt[8192 + SRTP_MAX_TRAILER_LEN + 16];
  while (fgets(line, sizeof line, stdin)) {
    int len = unhex(line, pkt, 8192);
    if (len < 0) {
      printf("ERR badhex\n");
      continue;
    }
    if (protect)
      st = rtcp ? srtp_protect_rtcp(session, pkt, &len) : srtp_protect(session, pkt, &len);
    else
      st = rtcp ? srtp_unprotect_rtcp(session, pkt, &len) : srtp_unprotect(session, pkt, &len);
    if (st != srtp_err_status_ok) {
      printf("ERR %d\n", (int)st);
      continue;
    }
    for (int i = 0; i < len; i++) printf("%02x", pkt[i]);
    printf("\n");
  }
  srtp_dealloc(session);
  srtp_shutdown();
  return 0;
}
