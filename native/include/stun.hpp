// STUN (RFC 5389/8489) as ICE needs it: a bounds-checked parser of one datagram, MESSAGE-INTEGRITY
// (HMAC-SHA1, short-term credentials) and FINGERPRINT (CRC-32 xor 0x5354554e) checks, and a writer for the
// responses and requests the engine sends. No allocation: the parser points into the datagram.
#pragma once

#include <cstddef>
#include <cstdint>

#include "sock_addr.hpp"

namespace ngrelay {

constexpr uint32_t kStunMagicCookie = 0x2112A442;
constexpr size_t kStunHeaderBytes = 20;
/** Larger datagrams are refused: ICE checks are ~100 bytes, and a STUN message must fit a path MTU. */
constexpr size_t kStunMaxBytes = 1280;
/** RFC 8489 §14.3: USERNAME is at most 513 bytes. */
constexpr size_t kStunMaxUsername = 513;

// Message types (method Binding = 0x001 in its classes).
constexpr uint16_t kStunBindingRequest = 0x0001;
constexpr uint16_t kStunBindingIndication = 0x0011;
constexpr uint16_t kStunBindingSuccess = 0x0101;
constexpr uint16_t kStunBindingError = 0x0111;

// Attributes.
constexpr uint16_t kStunAttrMappedAddress = 0x0001;
constexpr uint16_t kStunAttrUsername = 0x0006;
constexpr uint16_t kStunAttrMessageIntegrity = 0x0008;
constexpr uint16_t kStunAttrErrorCode = 0x0009;
constexpr uint16_t kStunAttrXorMappedAddress = 0x0020;
constexpr uint16_t kStunAttrPriority = 0x0024;
constexpr uint16_t kStunAttrUseCandidate = 0x0025;
constexpr uint16_t kStunAttrFingerprint = 0x8028;
constexpr uint16_t kStunAttrIceControlled = 0x8029;
constexpr uint16_t kStunAttrIceControlling = 0x802A;

/** Why a datagram is not an acceptable STUN message (names: stunErrorName). */
enum class StunError : uint8_t {
  None,
  TooShort,        // shorter than the 20-byte header
  TooLong,         // longer than kStunMaxBytes
  NotStun,         // top bits not 00 or wrong magic cookie
  BadLength,       // header length not a multiple of 4 or not the datagram's length
  BadAttribute,    // an attribute overruns the message, or a known one has the wrong size
  BadFingerprint,  // FINGERPRINT present and wrong, or not the last attribute
};
const char* stunErrorName(StunError e);

/** One parsed message; pointers point into the datagram it was parsed from. */
struct StunMessage {
  uint16_t type = 0;
  const uint8_t* transactionId = nullptr;  // 12 bytes
  const uint8_t* username = nullptr;
  size_t usernameLen = 0;
  bool hasPriority = false;
  uint32_t priority = 0;
  bool useCandidate = false;
  bool controlling = false;  // ICE-CONTROLLING present (tieBreaker holds its value)
  bool controlled = false;   // ICE-CONTROLLED present
  uint64_t tieBreaker = 0;
  bool hasXorMapped = false;
  SockAddr xorMapped;
  bool hasErrorCode = false;
  uint16_t errorCode = 0;
  /** Offset of the MESSAGE-INTEGRITY attribute header (0 = absent); what follows it is ignored but FINGERPRINT. */
  size_t integrityAt = 0;
  bool hasFingerprint = false;
};

/** Parses `p`/`len`; a FINGERPRINT, when present, is verified here. */
StunError parseStun(const uint8_t* p, size_t len, StunMessage& out);

/** MESSAGE-INTEGRITY of a parsed message verifies with short-term `key` (RFC 8489 §14.5); false if absent. */
bool stunIntegrityOk(const uint8_t* p, const StunMessage& m, const uint8_t* key, size_t keyLen);

/** CRC-32 (ISO-HDLC, the one of zlib and Ethernet). */
uint32_t stunCrc32(const uint8_t* p, size_t len);

/** Builds one message in a caller's buffer; every add fails (ok() false) rather than overrun it. */
class StunWriter {
 public:
  StunWriter(uint8_t* buf, size_t cap) : buf_(buf), cap_(cap) {}
  void begin(uint16_t type, const uint8_t transactionId[12]);
  void addBytes(uint16_t type, const uint8_t* value, size_t len);
  void addU32(uint16_t type, uint32_t v);
  void addU64(uint16_t type, uint64_t v);
  void addFlag(uint16_t type) { addBytes(type, nullptr, 0); }
  void addXorMappedAddress(const SockAddr& a);
  void addErrorCode(uint16_t code, const char* reason);
  /** MESSAGE-INTEGRITY over everything so far (HMAC-SHA1 with `key`). */
  void addIntegrity(const uint8_t* key, size_t keyLen);
  /** FINGERPRINT; must come last. */
  void addFingerprint();
  bool ok() const { return ok_; }
  /** Bytes written (0 when something did not fit). */
  size_t length() const { return ok_ ? len_ : 0; }

 private:
  uint8_t* reserve(uint16_t type, size_t valueLen);
  void setLength(size_t bodyLen);
  uint8_t* buf_;
  size_t cap_;
  size_t len_ = 0;
  bool ok_ = false;
};

}  // namespace ngrelay
