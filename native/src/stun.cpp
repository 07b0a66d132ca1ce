// STUN parsing and building (native/include/stun.hpp). Every read is checked against the datagram's length
// before it happens; nothing is allocated.
#include "stun.hpp"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <cstring>

namespace ngrelay {

namespace {

constexpr uint32_t kFingerprintXor = 0x5354554e;
constexpr size_t kIntegrityBytes = 20;  // HMAC-SHA1

inline uint16_t rd16(const uint8_t* p) { return uint16_t((p[0] << 8) | p[1]); }
inline uint32_t rd32(const uint8_t* p) {
  return (uint32_t(p[0]) << 24) | (uint32_t(p[1]) << 16) | (uint32_t(p[2]) << 8) | p[3];
}
inline void wr16(uint8_t* p, uint16_t v) {
  p[0] = uint8_t(v >> 8);
  p[1] = uint8_t(v);
}
inline void wr32(uint8_t* p, uint32_t v) {
  p[0] = uint8_t(v >> 24);
  p[1] = uint8_t(v >> 16);
  p[2] = uint8_t(v >> 8);
  p[3] = uint8_t(v);
}

struct Crc32Table {
  uint32_t t[256];
  Crc32Table() {
    for (uint32_t i = 0; i < 256; ++i) {
      uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
      t[i] = c;
    }
  }
};
const Crc32Table kCrc;

/** XOR-MAPPED-ADDRESS value (RFC 8489 §14.2); false when malformed. */
bool parseXorAddress(const uint8_t* v, size_t len, const uint8_t* header, SockAddr& out) {
  if (len < 4) return false;
  const uint16_t port = rd16(v + 2) ^ uint16_t(kStunMagicCookie >> 16);
  if (v[1] == 0x01 && len == 8) {
    out = SockAddr();
    out.u.v4.sin_family = AF_INET;
    out.u.v4.sin_port = htons(port);
    uint32_t addr = rd32(v + 4) ^ kStunMagicCookie;
    out.u.v4.sin_addr.s_addr = htonl(addr);
    out.len = sizeof(sockaddr_in);
    return true;
  }
  if (v[1] == 0x02 && len == 20) {
    out = SockAddr();
    out.u.v6.sin6_family = AF_INET6;
    out.u.v6.sin6_port = htons(port);
    uint8_t* a = reinterpret_cast<uint8_t*>(&out.u.v6.sin6_addr);
    for (int i = 0; i < 16; ++i) a[i] = v[4 + i] ^ header[4 + i];  // cookie + transaction id
    out.len = sizeof(sockaddr_in6);
    return true;
  }
  return false;
}

}  // namespace

const char* stunErrorName(StunError e) {
  switch (e) {
    case StunError::None: return "ok";
    case StunError::TooShort: return "too-short";
    case StunError::TooLong: return "too-long";
    case StunError::NotStun: return "not-stun";
    case StunError::BadLength: return "bad-length";
    case StunError::BadAttribute: return "bad-attribute";
    case StunError::BadFingerprint: return "bad-fingerprint";
  }
  return "unknown";
}

uint32_t stunCrc32(const uint8_t* p, size_t len) {
  uint32_t c = 0xFFFFFFFFu;
  for (size_t i = 0; i < len; ++i) c = kCrc.t[(c ^ p[i]) & 0xFF] ^ (c >> 8);
  return c ^ 0xFFFFFFFFu;
}

StunError parseStun(const uint8_t* p, size_t len, StunMessage& m) {
  m = StunMessage();
  if (len < kStunHeaderBytes) return StunError::TooShort;
  if (len > kStunMaxBytes) return StunError::TooLong;
  if ((p[0] & 0xC0) != 0 || rd32(p + 4) != kStunMagicCookie) return StunError::NotStun;
  const size_t body = rd16(p + 2);
  if ((body & 3) != 0 || kStunHeaderBytes + body != len) return StunError::BadLength;
  m.type = rd16(p);
  m.transactionId = p + 8;
  size_t off = kStunHeaderBytes;
  while (off < len) {
    if (off + 4 > len) return StunError::BadAttribute;
    const uint16_t type = rd16(p + off);
    const size_t alen = rd16(p + off + 2);
    const size_t padded = (alen + 3) & ~size_t(3);
    if (off + 4 + padded > len) return StunError::BadAttribute;
    const uint8_t* v = p + off + 4;
    if (type == kStunAttrFingerprint) {
      // Must be the last attribute; covers everything before it, with the header's length as sent.
      if (alen != 4 || off + 8 != len) return StunError::BadFingerprint;
      if ((stunCrc32(p, off) ^ kFingerprintXor) != rd32(v)) return StunError::BadFingerprint;
      m.hasFingerprint = true;
      break;
    }
    if (m.integrityAt != 0) {
      off += 4 + padded;  // after MESSAGE-INTEGRITY only FINGERPRINT counts (RFC 8489 §14.5)
      continue;
    }
    switch (type) {
      case kStunAttrUsername:
        if (alen == 0 || alen > kStunMaxUsername) return StunError::BadAttribute;
        m.username = v;
        m.usernameLen = alen;
        break;
      case kStunAttrMessageIntegrity:
        if (alen != kIntegrityBytes) return StunError::BadAttribute;
        m.integrityAt = off;
        break;
      case kStunAttrPriority:
        if (alen != 4) return StunError::BadAttribute;
        m.hasPriority = true;
        m.priority = rd32(v);
        break;
      case kStunAttrUseCandidate:
        if (alen != 0) return StunError::BadAttribute;
        m.useCandidate = true;
        break;
      case kStunAttrIceControlling:
      case kStunAttrIceControlled:
        if (alen != 8) return StunError::BadAttribute;
        (type == kStunAttrIceControlling ? m.controlling : m.controlled) = true;
        m.tieBreaker = (uint64_t(rd32(v)) << 32) | rd32(v + 4);
        break;
      case kStunAttrXorMappedAddress:
        if (!parseXorAddress(v, alen, p, m.xorMapped)) return StunError::BadAttribute;
        m.hasXorMapped = true;
        break;
      case kStunAttrErrorCode:
        if (alen < 4) return StunError::BadAttribute;
        m.hasErrorCode = true;
        m.errorCode = uint16_t((v[2] & 0x07) * 100 + v[3]);
        break;
      default:
        break;  // unknown attributes are skipped
    }
    off += 4 + padded;
  }
  if (m.controlling && m.controlled) return StunError::BadAttribute;
  return StunError::None;
}

bool stunIntegrityOk(const uint8_t* p, const StunMessage& m, const uint8_t* key, size_t keyLen) {
  if (m.integrityAt == 0) return false;
  // The HMAC covers the message up to the attribute, with the header's length as if it ended right after it.
  uint8_t copy[kStunMaxBytes];
  const size_t covered = m.integrityAt;
  std::memcpy(copy, p, covered);
  wr16(copy + 2, uint16_t(covered + 4 + kIntegrityBytes - kStunHeaderBytes));
  uint8_t mac[EVP_MAX_MD_SIZE];
  unsigned macLen = 0;
  if (!HMAC(EVP_sha1(), key, int(keyLen), copy, covered, mac, &macLen) || macLen != kIntegrityBytes) return false;
  return CRYPTO_memcmp(mac, p + covered + 4, kIntegrityBytes) == 0;
}

void StunWriter::begin(uint16_t type, const uint8_t transactionId[12]) {
  ok_ = cap_ >= kStunHeaderBytes;
  if (!ok_) return;
  wr16(buf_, type);
  wr16(buf_ + 2, 0);
  wr32(buf_ + 4, kStunMagicCookie);
  std::memcpy(buf_ + 8, transactionId, 12);
  len_ = kStunHeaderBytes;
}

void StunWriter::setLength(size_t bodyLen) { wr16(buf_ + 2, uint16_t(bodyLen)); }

uint8_t* StunWriter::reserve(uint16_t type, size_t valueLen) {
  const size_t padded = (valueLen + 3) & ~size_t(3);
  if (!ok_ || len_ + 4 + padded > cap_ || len_ + 4 + padded > kStunMaxBytes) {
    ok_ = false;
    return nullptr;
  }
  uint8_t* a = buf_ + len_;
  wr16(a, type);
  wr16(a + 2, uint16_t(valueLen));
  std::memset(a + 4, 0, padded);
  len_ += 4 + padded;
  setLength(len_ - kStunHeaderBytes);
  return a + 4;
}

void StunWriter::addBytes(uint16_t type, const uint8_t* value, size_t len) {
  uint8_t* v = reserve(type, len);
  if (v && len) std::memcpy(v, value, len);
}

void StunWriter::addU32(uint16_t type, uint32_t x) {
  uint8_t* v = reserve(type, 4);
  if (v) wr32(v, x);
}

void StunWriter::addU64(uint16_t type, uint64_t x) {
  uint8_t* v = reserve(type, 8);
  if (!v) return;
  wr32(v, uint32_t(x >> 32));
  wr32(v + 4, uint32_t(x));
}

void StunWriter::addXorMappedAddress(const SockAddr& a) {
  const bool v4 = a.family() == AF_INET;
  uint8_t* v = reserve(kStunAttrXorMappedAddress, v4 ? 8 : 20);
  if (!v) return;
  v[0] = 0;
  v[1] = v4 ? 0x01 : 0x02;
  wr16(v + 2, uint16_t(a.port() ^ (kStunMagicCookie >> 16)));
  if (v4) {
    wr32(v + 4, ntohl(a.u.v4.sin_addr.s_addr) ^ kStunMagicCookie);
  } else {
    const uint8_t* ip = reinterpret_cast<const uint8_t*>(&a.u.v6.sin6_addr);
    for (int i = 0; i < 16; ++i) v[4 + i] = ip[i] ^ buf_[4 + i];
  }
}

void StunWriter::addErrorCode(uint16_t code, const char* reason) {
  const size_t rlen = std::strlen(reason);
  uint8_t* v = reserve(kStunAttrErrorCode, 4 + rlen);
  if (!v) return;
  v[2] = uint8_t(code / 100);
  v[3] = uint8_t(code % 100);
  std::memcpy(v + 4, reason, rlen);
}

void StunWriter::addIntegrity(const uint8_t* key, size_t keyLen) {
  const size_t covered = len_;
  uint8_t* v = reserve(kStunAttrMessageIntegrity, kIntegrityBytes);  // also sets the header's length
  if (!v) return;
  unsigned macLen = 0;
  if (!HMAC(EVP_sha1(), key, int(keyLen), buf_, covered, v, &macLen) || macLen != kIntegrityBytes) ok_ = false;
}

void StunWriter::addFingerprint() {
  const size_t covered = len_;
  uint8_t* v = reserve(kStunAttrFingerprint, 4);
  if (v) wr32(v, stunCrc32(buf_, covered) ^ kFingerprintXor);
}

}  // namespace ngrelay
