// SRTP/SRTCP per RFC 3711 (AES-CM + HMAC-SHA1), RFC 6188 (AES-256-CM) and RFC 7714 (AES-GCM).
// See native/include/srtp.hpp for the contract; this file keeps every per-packet path allocation-free:
// cipher contexts are keyed once in create() and only get a new IV per packet, and HMAC-SHA1 runs on
// precomputed inner/outer SHA-1 states (plain structs copied on the stack) instead of OpenSSL 3's HMAC/MAC
// objects, whose re-initialisation duplicates a provider context on the heap for every packet.

// SHA1_Init/Update/Final are deprecated in OpenSSL 3 but exported by every 3.x build (and by Node's own copy);
// they are the only SHA-1 interface whose state can be copied without an allocation.
#define OPENSSL_SUPPRESS_DEPRECATED 1

#include "srtp.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/sha.h>

#include <atomic>
#include <cstring>

namespace ngrelay {

namespace {

const SrtpSuiteInfo kSuites[kSrtpSuiteCount] = {
    {SrtpSuite::AesCm128HmacSha1_80, "AES_CM_128_HMAC_SHA1_80", 16, 14, 20, 10, 10, false},
    {SrtpSuite::AesCm128HmacSha1_32, "AES_CM_128_HMAC_SHA1_32", 16, 14, 20, 4, 10, false},
    {SrtpSuite::Aes256CmHmacSha1_80, "AES_256_CM_HMAC_SHA1_80", 32, 14, 20, 10, 10, false},
    {SrtpSuite::Aes256CmHmacSha1_32, "AES_256_CM_HMAC_SHA1_32", 32, 14, 20, 4, 10, false},
    {SrtpSuite::AeadAes128Gcm, "AEAD_AES_128_GCM", 16, 12, 0, 16, 16, true},
    {SrtpSuite::AeadAes256Gcm, "AEAD_AES_256_GCM", 32, 12, 0, 16, 16, true},
};

constexpr size_t kGcmTagLen = 16;
constexpr size_t kHmacLen = 20;

inline uint16_t rd16(const uint8_t* p) { return uint16_t((p[0] << 8) | p[1]); }
inline uint32_t rd32(const uint8_t* p) {
  return (uint32_t(p[0]) << 24) | (uint32_t(p[1]) << 16) | (uint32_t(p[2]) << 8) | uint32_t(p[3]);
}
inline void wr32(uint8_t* p, uint32_t v) {
  p[0] = uint8_t(v >> 24);
  p[1] = uint8_t(v >> 16);
  p[2] = uint8_t(v >> 8);
  p[3] = uint8_t(v);
}
inline void xor32(uint8_t* p, uint32_t v) {
  p[0] ^= uint8_t(v >> 24);
  p[1] ^= uint8_t(v >> 16);
  p[2] ^= uint8_t(v >> 8);
  p[3] ^= uint8_t(v);
}

const EVP_CIPHER* ctrCipher(size_t keyLen) { return keyLen == 32 ? EVP_aes_256_ctr() : EVP_aes_128_ctr(); }
const EVP_CIPHER* gcmCipher(size_t keyLen) { return keyLen == 32 ? EVP_aes_256_gcm() : EVP_aes_128_gcm(); }

/** RTP header length (fixed + CSRCs + extension), or 0 when the bytes up to `limit` cannot hold it. */
size_t rtpHeaderLen(const uint8_t* p, size_t limit) {
  if (limit < 12 || (p[0] >> 6) != 2) return 0;
  size_t header = 12 + 4u * (p[0] & 0x0fu);
  if (header > limit) return 0;
  if (p[0] & 0x10u) {
    if (header + 4 > limit) return 0;
    header += 4 + 4 * size_t(rd16(p + header + 2));
    if (header > limit) return 0;
  }
  return header;
}

inline bool rtcpHeaderOk(const uint8_t* p, size_t limit) {
  return limit >= 8 && (p[0] >> 6) == 2 && p[1] >= 192 && p[1] <= 223;
}

/** HMAC-SHA1 with the key absorbed once: per message only two SHA_CTX copies (RFC 2104). */
struct HmacSha1 {
  SHA_CTX inner;
  SHA_CTX outer;

  void init(const uint8_t* key, size_t len) {
    uint8_t block[64];
    std::memset(block, 0, sizeof block);
    std::memcpy(block, key, len);  // len <= 20 < 64: no pre-hash needed
    uint8_t pad[64];
    for (size_t i = 0; i < 64; i++) pad[i] = block[i] ^ 0x36;
    SHA1_Init(&inner);
    SHA1_Update(&inner, pad, 64);
    for (size_t i = 0; i < 64; i++) pad[i] = block[i] ^ 0x5c;
    SHA1_Init(&outer);
    SHA1_Update(&outer, pad, 64);
    OPENSSL_cleanse(block, sizeof block);
    OPENSSL_cleanse(pad, sizeof pad);
  }

  void mac(const uint8_t* a, size_t aLen, const uint8_t* b, size_t bLen, uint8_t out[kHmacLen]) const {
    SHA_CTX c = inner;
    SHA1_Update(&c, a, aLen);
    if (bLen) SHA1_Update(&c, b, bLen);
    uint8_t innerHash[kHmacLen];
    SHA1_Final(innerHash, &c);
    c = outer;
    SHA1_Update(&c, innerHash, kHmacLen);
    SHA1_Final(out, &c);
  }

  void wipe() {
    OPENSSL_cleanse(&inner, sizeof inner);
    OPENSSL_cleanse(&outer, sizeof outer);
  }
};

/** AES in counter mode, keyed once; each call restarts the counter at a new IV (keystream XOR in place). */
struct AesCtr {
  EVP_CIPHER_CTX* ctx = nullptr;

  bool init(const uint8_t* key, size_t keyLen) {
    ctx = EVP_CIPHER_CTX_new();
    return ctx && EVP_EncryptInit_ex(ctx, ctrCipher(keyLen), nullptr, key, nullptr) == 1;
  }
  bool apply(const uint8_t iv[16], uint8_t* data, size_t len) {
    int outl = 0;
    if (EVP_EncryptInit_ex(ctx, nullptr, nullptr, nullptr, iv) != 1) return false;
    return len == 0 || EVP_EncryptUpdate(ctx, data, &outl, data, int(len)) == 1;
  }
  ~AesCtr() { EVP_CIPHER_CTX_free(ctx); }
};

/** AES-GCM with separate sealing and opening contexts (EVP fixes the direction at key setup). */
struct AesGcm {
  EVP_CIPHER_CTX* enc = nullptr;
  EVP_CIPHER_CTX* dec = nullptr;

  bool init(const uint8_t* key, size_t keyLen) {
    enc = EVP_CIPHER_CTX_new();
    dec = EVP_CIPHER_CTX_new();
    return enc && dec && EVP_EncryptInit_ex(enc, gcmCipher(keyLen), nullptr, key, nullptr) == 1 &&
           EVP_DecryptInit_ex(dec, gcmCipher(keyLen), nullptr, key, nullptr) == 1;
  }

  // The AAD may come in two pieces (SRTCP authenticates its header and its trailing E|index word).
  bool seal(const uint8_t iv[12], const uint8_t* aad1, size_t aad1Len, const uint8_t* aad2, size_t aad2Len,
            uint8_t* data, size_t len, uint8_t tag[kGcmTagLen]) {
    int outl = 0;
    if (EVP_EncryptInit_ex(enc, nullptr, nullptr, nullptr, iv) != 1) return false;
    if (aad1Len && EVP_EncryptUpdate(enc, nullptr, &outl, aad1, int(aad1Len)) != 1) return false;
    if (aad2Len && EVP_EncryptUpdate(enc, nullptr, &outl, aad2, int(aad2Len)) != 1) return false;
    if (len && EVP_EncryptUpdate(enc, data, &outl, data, int(len)) != 1) return false;
    if (EVP_EncryptFinal_ex(enc, data + len, &outl) != 1) return false;
    return EVP_CIPHER_CTX_ctrl(enc, EVP_CTRL_GCM_GET_TAG, int(kGcmTagLen), tag) == 1;
  }

  /** 1 = authentic (data decrypted in place), 0 = tag mismatch, -1 = OpenSSL error. */
  int open(const uint8_t iv[12], const uint8_t* aad1, size_t aad1Len, const uint8_t* aad2, size_t aad2Len,
           uint8_t* data, size_t len, const uint8_t* tag) {
    int outl = 0;
    uint8_t tagCopy[kGcmTagLen];
    std::memcpy(tagCopy, tag, kGcmTagLen);
    if (EVP_DecryptInit_ex(dec, nullptr, nullptr, nullptr, iv) != 1) return -1;
    if (aad1Len && EVP_DecryptUpdate(dec, nullptr, &outl, aad1, int(aad1Len)) != 1) return -1;
    if (aad2Len && EVP_DecryptUpdate(dec, nullptr, &outl, aad2, int(aad2Len)) != 1) return -1;
    if (len && EVP_DecryptUpdate(dec, data, &outl, data, int(len)) != 1) return -1;
    if (EVP_CIPHER_CTX_ctrl(dec, EVP_CTRL_GCM_SET_TAG, int(kGcmTagLen), tagCopy) != 1) return -1;
    return EVP_DecryptFinal_ex(dec, data + len, &outl) == 1 ? 1 : 0;
  }

  ~AesGcm() {
    EVP_CIPHER_CTX_free(enc);
    EVP_CIPHER_CTX_free(dec);
  }
};

/** 64-entry sliding replay window over an index (RFC 3711 §3.3.2). */
struct ReplayWindow {
  uint64_t top = 0;   // highest authenticated index
  uint64_t mask = 0;  // bit d set = index top-d seen

  bool seen(uint64_t index) const {
    if (index > top) return false;
    uint64_t delta = top - index;
    return delta >= 64 || (mask >> delta) & 1u;
  }
  void accept(uint64_t index) {
    if (index > top) {
      uint64_t shift = index - top;
      mask = shift >= 64 ? 0 : mask << shift;
      mask |= 1u;
      top = index;
    } else {
      mask |= uint64_t(1) << (top - index);
    }
  }
};

/** RFC 3711 §3.3.1 sequence-number state: the rollover counter and the highest sequence number s_l. */
struct RocState {
  bool init = false;
  uint32_t roc = 0;
  uint16_t sl = 0;

  /** Appendix A estimate of the packet's ROC; false when it would be negative (older than the first packet). */
  bool estimate(uint16_t seq, uint32_t initialRoc, uint32_t* v) const {
    if (!init) {
      *v = initialRoc;
      return true;
    }
    int s = seq, l = sl;
    if (l < 32768) {
      if (s - l > 32768) {
        if (roc == 0) return false;
        *v = roc - 1;
        return true;
      }
    } else if (l - 32768 > s) {
      *v = roc + 1;
      return true;
    }
    *v = roc;
    return true;
  }
  void update(uint16_t seq, uint32_t v) {
    if (!init) {
      init = true;
      roc = v;
      sl = seq;
    } else if (v == roc + 1) {
      roc = v;
      sl = seq;
    } else if (v == roc && seq > sl) {
      sl = seq;
    }
  }
};

struct SsrcSlot {
  uint32_t ssrc = 0;
  bool used = false;
  uint64_t lastUse = 0;
  // Sending side (protect).
  RocState txRtp;
  uint32_t txRtcpIndex = 0;
  // Receiving side (unprotect).
  RocState rxRtp;
  ReplayWindow rxRtpWindow;
  bool rxRtcpInit = false;
  ReplayWindow rxRtcpWindow;
};

}  // namespace

struct SrtpContext::Impl {
  SrtpSuiteInfo info;
  SrtpParams opts;  // pointers nulled; the bytes are copied below
  uint8_t masterKey[32];
  uint8_t masterSalt[14];
  uint8_t mki[kSrtpMaxMkiLen];
  uint8_t rtpSalt[14];
  uint8_t rtcpSalt[14];
  AesCtr rtpCtr, rtcpCtr;
  AesGcm rtpGcm, rtcpGcm;
  HmacSha1 rtpAuth, rtcpAuth;
  SsrcSlot slots[kSrtpSsrcSlots];
  SsrcSlot scratch;  // state for an SSRC not (yet) in the table, so a forged packet cannot evict a real one
  uint64_t useClock = 0;
  SrtpStats stats;
  // progress(), written by the thread using the context (relaxed; one word each, so never torn).
  std::atomic<uint64_t> pubRtp{0};
  std::atomic<uint64_t> pubRtcp{0};

  // RTP: bit 63 known | bits 31..62 ssrc | bits 16..30 roc (15 bits) | bits 0..15 s_l.
  static uint64_t packRtp(uint32_t ssrc, uint32_t roc, uint16_t sl) {
    return (uint64_t(1) << 63) | (uint64_t(ssrc) << 31) | (uint64_t(roc & 0x7fffu) << 16) | sl;
  }
  // SRTCP: bit 63 known | bits 31..62 ssrc | bits 0..30 next index.
  static uint64_t packRtcp(uint32_t ssrc, uint32_t index) {
    return (uint64_t(1) << 63) | (uint64_t(ssrc) << 31) | (index & 0x7fffffffu);
  }
  void publishRtp(uint32_t ssrc, const RocState& r) { pubRtp.store(packRtp(ssrc, r.roc, r.sl), std::memory_order_relaxed); }

  /** A fresh slot for ssrc: defaults, or the resumed state when it is the SSRC a restored context names. */
  void seed(SsrcSlot& s) const {
    s.txRtcpIndex = opts.initialSrtcpIndex;
    const SrtpProgress& r = opts.resume;
    if (r.rtp && s.ssrc == r.rtpSsrc) {
      RocState st;
      st.init = true;
      st.roc = r.roc;
      st.sl = r.seq;
      s.txRtp = st;
      s.rxRtp = st;
      s.rxRtpWindow.top = (uint64_t(r.roc) << 16) | r.seq;
      s.rxRtpWindow.mask = 1;
    }
    if (r.rtcp && s.ssrc == r.rtcpSsrc) s.txRtcpIndex = r.srtcpIndex & 0x7fffffffu;
  }

  ~Impl() {
    OPENSSL_cleanse(masterKey, sizeof masterKey);
    OPENSSL_cleanse(masterSalt, sizeof masterSalt);
    OPENSSL_cleanse(rtpSalt, sizeof rtpSalt);
    OPENSSL_cleanse(rtcpSalt, sizeof rtcpSalt);
    rtpAuth.wipe();
    rtcpAuth.wipe();
  }

  SsrcSlot* find(uint32_t ssrc) {
    for (auto& s : slots)
      if (s.used && s.ssrc == ssrc) return &s;
    return nullptr;
  }

  /** The slot for ssrc, recycling a free or the least recently used one. */
  SsrcSlot* claim(uint32_t ssrc) {
    SsrcSlot* s = find(ssrc);
    if (!s) {
      s = &slots[0];
      for (auto& c : slots) {
        if (!c.used) {
          s = &c;
          break;
        }
        if (c.lastUse < s->lastUse) s = &c;
      }
      *s = SsrcSlot{};
      s->used = true;
      s->ssrc = ssrc;
      seed(*s);
    }
    s->lastUse = ++useClock;
    return s;
  }

  /** For unprotect: existing slot, or a fresh scratch one that is claimed only once the packet authenticates. */
  SsrcSlot* lookup(uint32_t ssrc) {
    SsrcSlot* s = find(ssrc);
    if (s) return s;
    scratch = SsrcSlot{};
    scratch.ssrc = ssrc;
    seed(scratch);
    return &scratch;
  }
  void commit(SsrcSlot*& s) {
    if (s == &scratch) {
      SsrcSlot state = scratch;
      s = claim(state.ssrc);
      uint64_t use = s->lastUse;
      *s = state;
      s->used = true;
      s->lastUse = use;
    } else {
      s->lastUse = ++useClock;
    }
  }

  size_t rtpTagLen() const { return info.aead ? kGcmTagLen : (opts.authRtp ? info.srtpTagLen : 0); }

  // AES-CM IV (RFC 3711 §4.1.1): (k_s * 2^16) XOR (SSRC * 2^64) XOR (index * 2^16).
  static void cmIv(uint8_t iv[16], const uint8_t salt[14], uint32_t ssrc, uint64_t index) {
    std::memcpy(iv, salt, 14);
    iv[14] = iv[15] = 0;
    xor32(iv + 4, ssrc);
    xor32(iv + 8, uint32_t(index >> 16));
    iv[12] ^= uint8_t(index >> 8);
    iv[13] ^= uint8_t(index);
  }
  // GCM IV (RFC 7714 §8.1 / §9.1): 00 00 | SSRC | high word | low word, XOR the 12-byte session salt.
  static void gcmIv(uint8_t iv[12], const uint8_t salt[14], uint32_t ssrc, uint32_t hi, uint32_t lo16or32,
                    bool rtcp) {
    std::memset(iv, 0, 12);
    wr32(iv + 2, ssrc);
    if (rtcp) {
      wr32(iv + 8, lo16or32);  // 00 00 | 0 | 31-bit SRTCP index
    } else {
      wr32(iv + 6, hi);        // ROC
      iv[10] = uint8_t(lo16or32 >> 8);
      iv[11] = uint8_t(lo16or32);
    }
    for (size_t i = 0; i < 12; i++) iv[i] ^= salt[i];
  }

  SrtpResult protectRtp(uint8_t* buf, size_t len, size_t cap, size_t* outLen);
  SrtpResult unprotectRtp(uint8_t* buf, size_t len, size_t* outLen);
  SrtpResult protectRtcp(uint8_t* buf, size_t len, size_t cap, size_t* outLen);
  SrtpResult unprotectRtcp(uint8_t* buf, size_t len, size_t* outLen);

  SrtpResult count(SrtpResult r) {
    switch (r) {
      case SrtpResult::Ok: break;
      case SrtpResult::AuthFailed: stats.authFailed++; break;
      case SrtpResult::Replayed: stats.replayed++; break;
      case SrtpResult::Malformed: stats.malformed++; break;
      default: stats.otherErrors++; break;
    }
    return r;
  }
};

SrtpResult SrtpContext::Impl::protectRtp(uint8_t* buf, size_t len, size_t cap, size_t* outLen) {
  size_t hdr = rtpHeaderLen(buf, len);
  if (!hdr) return SrtpResult::Malformed;
  size_t tagLen = rtpTagLen();
  if (cap < len || cap - len < tagLen + opts.mkiLen) return SrtpResult::NoRoom;
  uint32_t ssrc = rd32(buf + 8);
  uint16_t seq = rd16(buf + 2);
  SsrcSlot* s = claim(ssrc);
  uint32_t v;
  if (!s->txRtp.estimate(seq, opts.initialRoc, &v)) v = 0;  // a straggler from before the first packet
  s->txRtp.update(seq, v);
  publishRtp(ssrc, s->txRtp);

  if (info.aead) {
    uint8_t iv[12];
    gcmIv(iv, rtpSalt, ssrc, v, seq, false);
    if (!rtpGcm.seal(iv, buf, hdr, nullptr, 0, buf + hdr, len - hdr, buf + len)) return SrtpResult::CryptoError;
    std::memcpy(buf + len + kGcmTagLen, mki, opts.mkiLen);  // RFC 7714 §8.1: MKI follows the tag
    *outLen = len + kGcmTagLen + opts.mkiLen;
    return SrtpResult::Ok;
  }
  if (opts.encryptRtp) {
    uint8_t iv[16];
    cmIv(iv, rtpSalt, ssrc, (uint64_t(v) << 16) | seq);
    if (!rtpCtr.apply(iv, buf + hdr, len - hdr)) return SrtpResult::CryptoError;
  }
  std::memcpy(buf + len, mki, opts.mkiLen);
  if (tagLen) {
    // Authenticated portion = header + encrypted payload, then the ROC (RFC 3711 §4.2); the MKI is not covered.
    uint8_t roc[4], mac[kHmacLen];
    wr32(roc, v);
    rtpAuth.mac(buf, len, roc, 4, mac);
    std::memcpy(buf + len + opts.mkiLen, mac, tagLen);
  }
  *outLen = len + opts.mkiLen + tagLen;
  return SrtpResult::Ok;
}

SrtpResult SrtpContext::Impl::unprotectRtp(uint8_t* buf, size_t len, size_t* outLen) {
  size_t tagLen = rtpTagLen();
  if (len < 12 + tagLen + opts.mkiLen) return SrtpResult::Malformed;
  // Where the MKI and tag sit depends on the mode: CM = payload|MKI|tag, GCM = payload|tag|MKI.
  size_t plen = len - tagLen - opts.mkiLen;  // end of header + (encrypted) payload
  size_t hdr = rtpHeaderLen(buf, plen);
  if (!hdr) return SrtpResult::Malformed;
  const uint8_t* mkiAt = info.aead ? buf + plen + tagLen : buf + plen;
  const uint8_t* tagAt = info.aead ? buf + plen : buf + plen + opts.mkiLen;
  if (opts.mkiLen && CRYPTO_memcmp(mkiAt, mki, opts.mkiLen) != 0) return SrtpResult::MkiMismatch;

  uint32_t ssrc = rd32(buf + 8);
  uint16_t seq = rd16(buf + 2);
  SsrcSlot* s = lookup(ssrc);
  uint32_t v;
  if (!s->rxRtp.estimate(seq, opts.initialRoc, &v)) return SrtpResult::Replayed;
  uint64_t index = (uint64_t(v) << 16) | seq;
  if (s->rxRtp.init && s->rxRtpWindow.seen(index)) return SrtpResult::Replayed;

  if (info.aead) {
    uint8_t iv[12];
    gcmIv(iv, rtpSalt, ssrc, v, seq, false);
    int ok = rtpGcm.open(iv, buf, hdr, nullptr, 0, buf + hdr, plen - hdr, tagAt);
    if (ok < 0) return SrtpResult::CryptoError;
    if (ok == 0) return SrtpResult::AuthFailed;
  } else {
    if (tagLen) {
      uint8_t roc[4], mac[kHmacLen];
      wr32(roc, v);
      rtpAuth.mac(buf, plen, roc, 4, mac);
      if (CRYPTO_memcmp(mac, tagAt, tagLen) != 0) return SrtpResult::AuthFailed;
    }
    if (opts.encryptRtp) {
      uint8_t iv[16];
      cmIv(iv, rtpSalt, ssrc, index);
      if (!rtpCtr.apply(iv, buf + hdr, plen - hdr)) return SrtpResult::CryptoError;
    }
  }
  s->rxRtp.update(seq, v);
  s->rxRtpWindow.accept(index);
  commit(s);
  publishRtp(ssrc, s->rxRtp);
  *outLen = plen;
  return SrtpResult::Ok;
}

SrtpResult SrtpContext::Impl::protectRtcp(uint8_t* buf, size_t len, size_t cap, size_t* outLen) {
  if (!rtcpHeaderOk(buf, len)) return SrtpResult::Malformed;
  size_t tagLen = info.srtcpTagLen;
  if (cap < len || cap - len < tagLen + 4 + opts.mkiLen) return SrtpResult::NoRoom;
  uint32_t ssrc = rd32(buf + 4);
  SsrcSlot* s = claim(ssrc);
  uint32_t index = s->txRtcpIndex;
  s->txRtcpIndex = (index + 1) & 0x7fffffffu;
  pubRtcp.store(packRtcp(ssrc, s->txRtcpIndex), std::memory_order_relaxed);
  uint32_t trailer = (opts.encryptRtcp ? 0x80000000u : 0) | index;

  if (info.aead) {
    // RFC 7714 §9: header | ciphertext | tag | E+index | MKI; AAD = header + E+index (or everything when E=0).
    uint8_t iv[12], word[4];
    gcmIv(iv, rtcpSalt, ssrc, 0, index, true);
    wr32(word, trailer);
    bool ok = opts.encryptRtcp ? rtcpGcm.seal(iv, buf, 8, word, 4, buf + 8, len - 8, buf + len)
                               : rtcpGcm.seal(iv, buf, len, word, 4, nullptr, 0, buf + len);
    if (!ok) return SrtpResult::CryptoError;
    std::memcpy(buf + len + kGcmTagLen, word, 4);
    std::memcpy(buf + len + kGcmTagLen + 4, mki, opts.mkiLen);
    *outLen = len + kGcmTagLen + 4 + opts.mkiLen;
    return SrtpResult::Ok;
  }
  if (opts.encryptRtcp) {
    uint8_t iv[16];
    cmIv(iv, rtcpSalt, ssrc, index);
    if (!rtcpCtr.apply(iv, buf + 8, len - 8)) return SrtpResult::CryptoError;
  }
  // RFC 3711 §3.4: header | encrypted | E+index | MKI | tag; the tag covers everything up to the index word.
  wr32(buf + len, trailer);
  std::memcpy(buf + len + 4, mki, opts.mkiLen);
  uint8_t mac[kHmacLen];
  rtcpAuth.mac(buf, len + 4, nullptr, 0, mac);
  std::memcpy(buf + len + 4 + opts.mkiLen, mac, tagLen);
  *outLen = len + 4 + opts.mkiLen + tagLen;
  return SrtpResult::Ok;
}

SrtpResult SrtpContext::Impl::unprotectRtcp(uint8_t* buf, size_t len, size_t* outLen) {
  size_t tagLen = info.srtcpTagLen;
  if (len < 8 + 4 + tagLen + opts.mkiLen) return SrtpResult::Malformed;
  if (!rtcpHeaderOk(buf, len)) return SrtpResult::Malformed;
  // Offsets: CM = [0,end) | word | MKI | tag ; GCM = [0,end) | tag | word | MKI.
  size_t end = len - tagLen - 4 - opts.mkiLen;
  const uint8_t* tagAt = info.aead ? buf + end : buf + end + 4 + opts.mkiLen;
  const uint8_t* wordAt = info.aead ? buf + end + tagLen : buf + end;
  const uint8_t* mkiAt = wordAt + 4;
  if (opts.mkiLen && CRYPTO_memcmp(mkiAt, mki, opts.mkiLen) != 0) return SrtpResult::MkiMismatch;

  uint32_t word = rd32(wordAt);
  bool encrypted = (word & 0x80000000u) != 0;
  uint32_t index = word & 0x7fffffffu;
  uint32_t ssrc = rd32(buf + 4);
  SsrcSlot* s = lookup(ssrc);
  if (s->rxRtcpInit && s->rxRtcpWindow.seen(index)) return SrtpResult::Replayed;

  if (info.aead) {
    uint8_t iv[12];
    gcmIv(iv, rtcpSalt, ssrc, 0, index, true);
    int ok = encrypted ? rtcpGcm.open(iv, buf, 8, wordAt, 4, buf + 8, end - 8, tagAt)
                       : rtcpGcm.open(iv, buf, end, wordAt, 4, nullptr, 0, tagAt);
    if (ok < 0) return SrtpResult::CryptoError;
    if (ok == 0) return SrtpResult::AuthFailed;
  } else {
    uint8_t mac[kHmacLen];
    rtcpAuth.mac(buf, end + 4, nullptr, 0, mac);  // CM: the word directly follows the payload
    if (CRYPTO_memcmp(mac, tagAt, tagLen) != 0) return SrtpResult::AuthFailed;
    if (encrypted) {
      uint8_t iv[16];
      cmIv(iv, rtcpSalt, ssrc, index);
      if (!rtcpCtr.apply(iv, buf + 8, end - 8)) return SrtpResult::CryptoError;
    }
  }
  s->rxRtcpInit = true;
  s->rxRtcpWindow.accept(index);
  commit(s);
  *outLen = end;
  return SrtpResult::Ok;
}

// ---- public surface -------------------------------------------------------------------------------------

const SrtpSuiteInfo& srtpSuiteInfo(SrtpSuite suite) { return kSuites[size_t(suite) % kSrtpSuiteCount]; }

bool srtpSuiteFromName(const std::string& name, SrtpSuite* out) {
  for (const auto& s : kSuites) {
    if (name == s.name) {
      *out = s.suite;
      return true;
    }
  }
  return false;
}

const char* srtpResultName(SrtpResult r) {
  switch (r) {
    case SrtpResult::Ok: return "ok";
    case SrtpResult::AuthFailed: return "auth-failed";
    case SrtpResult::Replayed: return "replayed";
    case SrtpResult::Malformed: return "malformed";
    case SrtpResult::NoRoom: return "no-room";
    case SrtpResult::MkiMismatch: return "mki-mismatch";
    case SrtpResult::CryptoError: return "crypto-error";
  }
  return "unknown";
}

bool SrtpContext::aesCmKeystream(const uint8_t* key, size_t keyLen, const uint8_t iv[16], uint8_t* out, size_t len) {
  if (keyLen != 16 && keyLen != 32) return false;
  AesCtr ctr;
  if (!ctr.init(key, keyLen)) return false;
  std::memset(out, 0, len);
  return ctr.apply(iv, out, len);
}

bool SrtpContext::deriveSessionKeys(SrtpSuite suite, const uint8_t* masterKey, const uint8_t* masterSalt,
                                    SrtpSessionKeys* out) {
  const SrtpSuiteInfo& info = srtpSuiteInfo(suite);
  *out = SrtpSessionKeys{};
  out->keyLen = info.masterKeyLen;
  out->saltLen = info.masterSaltLen;  // session salt is as long as the master salt (112 bits, GCM 96 bits)
  out->authLen = info.authKeyLen;
  // The KDF always works on a 112-bit salt; GCM's 96-bit master salt is zero-padded (RFC 7714 §11).
  uint8_t salt[14];
  std::memset(salt, 0, sizeof salt);
  std::memcpy(salt, masterSalt, info.masterSaltLen);
  struct Target {
    uint8_t label;
    uint8_t* dst;
    size_t len;
  } targets[] = {
      {0, out->rtpKey, out->keyLen},   {1, out->rtpAuth, out->authLen},  {2, out->rtpSalt, out->saltLen},
      {3, out->rtcpKey, out->keyLen},  {4, out->rtcpAuth, out->authLen}, {5, out->rtcpSalt, out->saltLen},
  };
  AesCtr prf;
  if (!prf.init(masterKey, info.masterKeyLen)) return false;
  for (const auto& t : targets) {
    if (!t.len) continue;
    // x = (label || r) XOR master_salt with r = 0 (KDR 0): the label lands on byte 7; counter in the low 16 bits.
    uint8_t iv[16];
    std::memcpy(iv, salt, 14);
    iv[7] ^= t.label;
    iv[14] = iv[15] = 0;
    std::memset(t.dst, 0, t.len);
    if (!prf.apply(iv, t.dst, t.len)) return false;
  }
  OPENSSL_cleanse(salt, sizeof salt);
  return true;
}

std::unique_ptr<SrtpContext> SrtpContext::create(const SrtpParams& p, std::string* error) {
  auto fail = [error](const char* msg) {
    if (error) *error = msg;
    return std::unique_ptr<SrtpContext>();
  };
  if (size_t(p.suite) >= kSrtpSuiteCount) return fail("unknown SRTP suite");
  const SrtpSuiteInfo& info = srtpSuiteInfo(p.suite);
  if (!p.masterKey || p.masterKeyLen != info.masterKeyLen) return fail("master key length does not match the suite");
  if (!p.masterSalt || p.masterSaltLen != info.masterSaltLen)
    return fail("master salt length does not match the suite");
  if (p.mkiLen > kSrtpMaxMkiLen || (p.mkiLen && !p.mki)) return fail("MKI too long");
  if (info.aead && (!p.encryptRtp || !p.authRtp))
    return fail("AEAD suites cannot be unencrypted or unauthenticated for SRTP");

  std::unique_ptr<Impl> impl(new Impl());
  impl->info = info;
  impl->opts = p;
  impl->opts.masterKey = impl->opts.masterSalt = impl->opts.mki = nullptr;
  std::memset(impl->masterKey, 0, sizeof impl->masterKey);
  std::memset(impl->masterSalt, 0, sizeof impl->masterSalt);
  std::memset(impl->mki, 0, sizeof impl->mki);
  std::memcpy(impl->masterKey, p.masterKey, p.masterKeyLen);
  std::memcpy(impl->masterSalt, p.masterSalt, p.masterSaltLen);
  if (p.mkiLen) std::memcpy(impl->mki, p.mki, p.mkiLen);

  if (p.initialSrtcpIndex > 0x7fffffffu) return fail("SRTCP index is 31 bits");
  if (p.testUseAsSessionKeys && !info.aead) return fail("raw session keys are supported for AEAD suites only");

  SrtpSessionKeys keys;
  if (p.testUseAsSessionKeys) {
    keys.keyLen = info.masterKeyLen;
    keys.saltLen = info.masterSaltLen;
    std::memcpy(keys.rtpKey, p.masterKey, keys.keyLen);
    std::memcpy(keys.rtcpKey, p.masterKey, keys.keyLen);
    std::memcpy(keys.rtpSalt, p.masterSalt, keys.saltLen);
    std::memcpy(keys.rtcpSalt, p.masterSalt, keys.saltLen);
  } else if (!deriveSessionKeys(p.suite, p.masterKey, p.masterSalt, &keys)) {
    return fail("SRTP key derivation failed");
  }
  std::memcpy(impl->rtpSalt, keys.rtpSalt, sizeof impl->rtpSalt);
  std::memcpy(impl->rtcpSalt, keys.rtcpSalt, sizeof impl->rtcpSalt);
  bool ok;
  if (info.aead) {
    ok = impl->rtpGcm.init(keys.rtpKey, keys.keyLen) && impl->rtcpGcm.init(keys.rtcpKey, keys.keyLen);
  } else {
    ok = impl->rtpCtr.init(keys.rtpKey, keys.keyLen) && impl->rtcpCtr.init(keys.rtcpKey, keys.keyLen);
    impl->rtpAuth.init(keys.rtpAuth, keys.authLen);
    impl->rtcpAuth.init(keys.rtcpAuth, keys.authLen);
  }
  OPENSSL_cleanse(&keys, sizeof keys);
  if (!ok) return fail("OpenSSL cipher setup failed");
  return std::unique_ptr<SrtpContext>(new SrtpContext(impl.release()));
}

SrtpContext::SrtpContext(Impl* impl) : impl_(impl) {}
SrtpContext::~SrtpContext() { delete impl_; }

SrtpResult SrtpContext::protectRtp(uint8_t* buf, size_t len, size_t cap, size_t* outLen) {
  return impl_->count(impl_->protectRtp(buf, len, cap, outLen));
}
SrtpResult SrtpContext::unprotectRtp(uint8_t* buf, size_t len, size_t* outLen) {
  return impl_->count(impl_->unprotectRtp(buf, len, outLen));
}
SrtpResult SrtpContext::protectRtcp(uint8_t* buf, size_t len, size_t cap, size_t* outLen) {
  return impl_->count(impl_->protectRtcp(buf, len, cap, outLen));
}
SrtpResult SrtpContext::unprotectRtcp(uint8_t* buf, size_t len, size_t* outLen) {
  return impl_->count(impl_->unprotectRtcp(buf, len, outLen));
}

size_t SrtpContext::rtpOverhead() const { return impl_->rtpTagLen() + impl_->opts.mkiLen; }
size_t SrtpContext::rtcpOverhead() const { return impl_->info.srtcpTagLen + 4 + impl_->opts.mkiLen; }
SrtpSuite SrtpContext::suite() const { return impl_->info.suite; }
const SrtpStats& SrtpContext::stats() const { return impl_->stats; }

SrtpProgress SrtpContext::progress() const {
  SrtpProgress p;
  uint64_t rtp = impl_->pubRtp.load(std::memory_order_relaxed);
  uint64_t rtcp = impl_->pubRtcp.load(std::memory_order_relaxed);
  p.rtp = (rtp >> 63) != 0;
  p.rtpSsrc = uint32_t(rtp >> 31);
  p.roc = uint32_t(rtp >> 16) & 0x7fffu;
  p.seq = uint16_t(rtp);
  p.rtcp = (rtcp >> 63) != 0;
  p.rtcpSsrc = uint32_t(rtcp >> 31);
  p.srtcpIndex = uint32_t(rtcp) & 0x7fffffffu;
  return p;
}

bool SrtpContext::sameKeys(const SrtpParams& a, const SrtpParams& b) {
  if (a.suite != b.suite || a.masterKeyLen != b.masterKeyLen || a.masterSaltLen != b.masterSaltLen ||
      a.mkiLen != b.mkiLen || a.encryptRtp != b.encryptRtp || a.encryptRtcp != b.encryptRtcp ||
      a.authRtp != b.authRtp)
    return false;
  if (!a.masterKey || !b.masterKey || !a.masterSalt || !b.masterSalt) return false;
  return std::memcmp(a.masterKey, b.masterKey, a.masterKeyLen) == 0 &&
         std::memcmp(a.masterSalt, b.masterSalt, a.masterSaltLen) == 0 &&
         (a.mkiLen == 0 || std::memcmp(a.mki, b.mki, a.mkiLen) == 0);
}

bool SrtpContext::sameKeysAs(const SrtpContext& other) const {
  SrtpParams a = impl_->opts, b = other.impl_->opts;
  a.masterKey = impl_->masterKey;
  a.masterSalt = impl_->masterSalt;
  a.mki = impl_->mki;
  b.masterKey = other.impl_->masterKey;
  b.masterSalt = other.impl_->masterSalt;
  b.mki = other.impl_->mki;
  return sameKeys(a, b);
}

}  // namespace ngrelay
