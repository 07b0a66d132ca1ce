// SRTP and SRTCP (RFC 3711, AES-256 per RFC 6188, AES-GCM per RFC 7714) on OpenSSL's EVP ciphers.
//
// One SrtpContext holds one direction's master key: it is created on the JS thread when a rule changes,
// handed to one I/O thread, and from then on used by that thread only (no locks inside). All OpenSSL
// objects and session keys are set up in create(); per-packet calls work in the caller's buffer and
// allocate nothing. Per-SSRC state (rollover counter, highest sequence, replay windows, SRTCP index) lives
// in a small fixed table inside the context.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

namespace ngrelay {

enum class SrtpSuite : uint8_t {
  AesCm128HmacSha1_80 = 0,
  AesCm128HmacSha1_32,
  Aes256CmHmacSha1_80,
  Aes256CmHmacSha1_32,
  AeadAes128Gcm,
  AeadAes256Gcm,
};
constexpr size_t kSrtpSuiteCount = 6;

/** Fixed properties of a suite (RFC 4568 §6.2, RFC 6188 §7, RFC 7714 §12). */
struct SrtpSuiteInfo {
  SrtpSuite suite;
  const char* name;        // SDES name, e.g. "AES_CM_128_HMAC_SHA1_80"
  uint8_t masterKeyLen;    // bytes
  uint8_t masterSaltLen;   // bytes: 14 for AES-CM, 12 for GCM
  uint8_t authKeyLen;      // HMAC-SHA1 session key bytes (0 for AEAD)
  uint8_t srtpTagLen;      // bytes appended to SRTP (10, 4 or 16)
  uint8_t srtcpTagLen;     // bytes appended to SRTCP (10 even for the _32 suites, RFC 4568 §6.2.2; 16 for GCM)
  bool aead;
};

const SrtpSuiteInfo& srtpSuiteInfo(SrtpSuite suite);
/** Looks a suite up by its SDES name (exact, case-sensitive as RFC 4568 writes them). */
bool srtpSuiteFromName(const std::string& name, SrtpSuite* out);

enum class SrtpResult : uint8_t {
  Ok = 0,
  AuthFailed,    // tag mismatch (tampered, wrong key, or GCM tag check failed)
  Replayed,      // index already seen, or older than the 64-packet replay window
  Malformed,     // too short / not RTP v2 / header longer than the packet / trailer missing
  NoRoom,        // protect: cap - len is smaller than the bytes the suite appends
  MkiMismatch,   // packet carries an MKI other than the context's
  CryptoError,   // OpenSSL refused (should not happen after a successful create())
};
const char* srtpResultName(SrtpResult r);

constexpr size_t kSrtpMaxMkiLen = 16;
/** Most bytes protect may append: 16-byte tag + 4-byte SRTCP index + MKI. */
constexpr size_t kSrtpMaxOverhead = 16 + 4 + kSrtpMaxMkiLen;
/** Distinct SSRCs tracked per context; the least recently used one is recycled beyond this. */
constexpr size_t kSrtpSsrcSlots = 8;

/**
 * Where one SSRC's sequence state stood, to carry a context across a restart of the relay (src/state/): the
 * RTP rollover counter with the highest sequence number s_l (RFC 3711 §3.3.1), and the SRTCP index sent next.
 * Read from a running context with SrtpContext::progress(), given back in SrtpParams::resume.
 */
struct SrtpProgress {
  bool rtp = false;  // the RTP part is known
  uint32_t rtpSsrc = 0;
  uint32_t roc = 0;  // below 2^15 (2^31 packets): the published form keeps 15 bits
  uint16_t seq = 0;
  bool rtcp = false;  // the SRTCP part is known
  uint32_t rtcpSsrc = 0;
  uint32_t srtcpIndex = 0;  // 31 bits: the next index protectRtcp sends
};

struct SrtpParams {
  SrtpSuite suite = SrtpSuite::AesCm128HmacSha1_80;
  const uint8_t* masterKey = nullptr;
  size_t masterKeyLen = 0;
  const uint8_t* masterSalt = nullptr;
  size_t masterSaltLen = 0;
  /** ROC assumed for an SSRC first seen by this context (RFC 3711 §3.3.1: 0 unless signalled). */
  uint32_t initialRoc = 0;
  /** SDES session parameters UNENCRYPTED_SRTP / UNENCRYPTED_SRTCP / UNAUTHENTICATED_SRTP (RFC 4568 §6.3). */
  bool encryptRtp = true;
  bool encryptRtcp = true;
  bool authRtp = true;
  /** Optional MKI carried in every packet (RFC 3711 §3.1); 0 = none. */
  const uint8_t* mki = nullptr;
  size_t mkiLen = 0;
  /** SRTCP index protectRtcp uses first for an SSRC new to this context (lets a re-created context continue). */
  uint32_t initialSrtcpIndex = 0;
  /**
   * A restored context: the SSRC named here starts from this state instead of initialRoc / initialSrtcpIndex
   * (RTP both ways: estimate from s_l, replay window above it; SRTCP: protectRtcp continues at srtcpIndex).
   */
  SrtpProgress resume;
  /**
   * Tests only (RFC 7714 §16/§17 publish session keys, not master keys): AEAD suites take masterKey/masterSalt
   * as the RTP and RTCP session key/salt and skip key derivation.
   */
  bool testUseAsSessionKeys = false;
};

/** Drop reasons counted by the context itself, so the integrator can publish them per stream. */
struct SrtpStats {
  uint64_t authFailed = 0;
  uint64_t replayed = 0;
  uint64_t malformed = 0;
  uint64_t otherErrors = 0;  // NoRoom, MkiMismatch, CryptoError
};

/** Session keys derived from a master key (RFC 3711 §4.3, KDR 0); exposed for the RFC vector tests. */
struct SrtpSessionKeys {
  uint8_t rtpKey[32], rtpSalt[14], rtpAuth[20];
  uint8_t rtcpKey[32], rtcpSalt[14], rtcpAuth[20];
  size_t keyLen = 0, saltLen = 0, authLen = 0;
};

class SrtpContext {
 public:
  /** Validates lengths and options, derives session keys, creates the OpenSSL contexts. nullptr + error on failure. */
  static std::unique_ptr<SrtpContext> create(const SrtpParams& params, std::string* error);
  ~SrtpContext();
  SrtpContext(const SrtpContext&) = delete;
  SrtpContext& operator=(const SrtpContext&) = delete;

  /** RTP → SRTP in place: buf[0..len) is the packet, buf has cap bytes; *outLen = protected length. */
  SrtpResult protectRtp(uint8_t* buf, size_t len, size_t cap, size_t* outLen);
  /** SRTP → RTP in place; on anything but Ok the buffer content is unspecified and must be dropped. */
  SrtpResult unprotectRtp(uint8_t* buf, size_t len, size_t* outLen);
  /** RTCP (compound) → SRTCP in place; appends E-bit|index, MKI and tag. */
  SrtpResult protectRtcp(uint8_t* buf, size_t len, size_t cap, size_t* outLen);
  /** SRTCP → RTCP in place. */
  SrtpResult unprotectRtcp(uint8_t* buf, size_t len, size_t* outLen);

  /** Bytes protectRtp / protectRtcp append to a packet. */
  size_t rtpOverhead() const;
  size_t rtcpOverhead() const;

  /**
   * Pass-through check: true when packets protected for `other` are byte-identical to packets protected for
   * this context (same suite, master key, salt, MKI and session options), so a relay may forward SRTP
   * between two legs without decrypting.
   */
  bool sameKeysAs(const SrtpContext& other) const;
  static bool sameKeys(const SrtpParams& a, const SrtpParams& b);

  SrtpSuite suite() const;
  const SrtpStats& stats() const;
  /**
   * The sequence state of the SSRC this context handled last (RTP: protected or authenticated; SRTCP: protected),
   * published by the using thread with relaxed atomic stores, so any thread may read it while packets flow.
   */
  SrtpProgress progress() const;

  /** RFC 3711 §4.3 key derivation with KDR 0 (used by create(); public for the B.3 vectors). */
  static bool deriveSessionKeys(SrtpSuite suite, const uint8_t* masterKey, const uint8_t* masterSalt,
                                SrtpSessionKeys* out);
  /** AES-CM keystream (RFC 3711 §4.1.1) for a 16/32-byte key and a 16-byte IV (for the B.2 vector). */
  static bool aesCmKeystream(const uint8_t* key, size_t keyLen, const uint8_t iv[16], uint8_t* out, size_t len);

  struct Impl;

 private:
  explicit SrtpContext(Impl* impl);
  Impl* impl_;
};

}  // namespace ngrelay
