// DTLS-SRTP (RFC 5763/5764) on OpenSSL: the engine's certificate (one per engine, made at start), and one
// handshake per stream driven through memory BIOs on the stream's owner thread (never blocking it: the
// owner's timer calls onTimer for retransmissions). On success the SRTP master keys are exported
// (RFC 5764 §4.2) into an immutable DtlsSrtpMaterial that the stream publishes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "dtls_config.hpp"
#include "srtp.hpp"

typedef struct ssl_ctx_st SSL_CTX;
typedef struct ssl_st SSL;
typedef struct bio_st BIO;
typedef struct x509_st X509;
typedef struct evp_pkey_st EVP_PKEY;

namespace ngrelay {

/** EngineOptions.dtls (DtlsCertificateOptions). */
struct DtlsCertificateSpec {
  bool rsa = false;  // false: ECDSA P-256
  int rsaKeyBits = 2048;
  bool sha1 = false;  // signature hash; false: sha-256
  /** A saved certificate and its key (PEM), used instead of a new one; both empty = make one. */
  std::string certificatePem, privateKeyPem;
};

/** The relay's certificate and the SSL_CTX every stream's session is made from. */
class DtlsIdentity {
 public:
  /** Throws std::runtime_error when OpenSSL refuses (unsupported key size, ...). */
  explicit DtlsIdentity(const DtlsCertificateSpec& spec);
  ~DtlsIdentity();
  DtlsIdentity(const DtlsIdentity&) = delete;
  DtlsIdentity& operator=(const DtlsIdentity&) = delete;
  SSL_CTX* ctx() const { return ctx_; }
  /** Fingerprint of the certificate with `hash` ("sha-256", ...); false for an unknown hash. */
  bool fingerprint(const std::string& hash, std::vector<uint8_t>& out) const;
  /**
   * The DTLS cookie (RFC 6347 §4.2.1) for a source address: HMAC-SHA256 with a secret made at start, so it
   * proves the ClientHello's sender receives at that address and needs no state per sender.
   */
  static constexpr unsigned kCookieLen = 16;
  void cookieFor(const uint8_t* source, size_t sourceLen, uint8_t out[kCookieLen]) const;
  /** The certificate and its private key as PEM, to be saved and given back (DtlsCertificateSpec) later. */
  std::string certificatePem() const;
  std::string privateKeyPem() const;

 private:
  /** Takes ownership of cert and key (throws, freeing both, when OpenSSL refuses them). */
  void setUp(X509* cert, EVP_PKEY* key);

  SSL_CTX* ctx_ = nullptr;
  X509* cert_ = nullptr;
  uint8_t cookieSecret_[32] = {};
  EVP_PKEY* key_ = nullptr;
};

/** The keys one handshake negotiated (immutable once published). */
struct DtlsSrtpMaterial {
  SrtpSuite suite;
  std::string profileName;  // RFC 5764 name, e.g. SRTP_AES128_CM_SHA1_80
  std::vector<uint8_t> clientKey, clientSalt, serverKey, serverSalt;
  bool relayIsClient;
  /** Made from a saved handshake (StreamDtls.restored), not by one here: contexts made from it resume. */
  bool restored = false;
  /** The party's write keys (what arrives from it) or the relay's (what is sent to it). */
  SrtpParams params(bool relayWrites) const;
};

/** The suite and key/salt lengths of an RFC 5764 profile name; false for a profile ngrelay does not offer. */
bool dtlsProfileSuite(const std::string& profile, SrtpSuite* suite, size_t* keyLen, size_t* saltLen);

enum class DtlsSessionState : uint8_t { New, Connecting, Connected, Failed, Closed };
const char* dtlsStateName(DtlsSessionState s);

/** One handshake with a stream's party. Used by one thread only. */
class DtlsSession {
 public:
  DtlsSession(const DtlsIdentity& identity, const DtlsConfig& config);
  ~DtlsSession();
  DtlsSession(const DtlsSession&) = delete;
  DtlsSession& operator=(const DtlsSession&) = delete;

  bool active() const { return active_; }
  DtlsSessionState state() const { return state_; }
  /** Active role: send the ClientHello (once); call takeOutput afterwards. */
  void start(int64_t nowMs);
  /** A DTLS datagram from the party. */
  void onDatagram(const uint8_t* p, size_t len, int64_t nowMs);
  /**
   * Passive side before its handshake started, when nothing else proved where the party is (no ICE): a
   * ClientHello without the cookie made for `source` (its address bytes) gets a HelloVerifyRequest (takeOutput
   * has it, for that source only) and changes nothing; one that returns the cookie starts the handshake
   * (Verified: the sender receives at `source`). Anything else is ignored (Pending).
   */
  enum class Listen : uint8_t { Pending, Verified };
  Listen listen(const uint8_t* p, size_t len, const uint8_t* source, size_t sourceLen, int64_t nowMs);
  /** Retransmissions (DTLSv1_handle_timeout) and the overall handshake timeout. */
  void onTimer(int64_t nowMs, int64_t handshakeTimeoutMs);
  /** The next datagram to send: whole DTLS records, up to the MTU (one larger record alone); 0 = none. */
  size_t takeOutput(uint8_t* out, size_t cap);
  /** Sends close_notify (takeOutput then has it). */
  void close();
  /** After the state became Connected: the negotiated keys (moved out once). */
  std::unique_ptr<DtlsSrtpMaterial> takeMaterial() { return std::move(material_); }
  const std::string& error() const { return error_; }
  const std::string& peerFingerprint() const { return peerFingerprint_; }
  const std::string& profile() const { return profile_; }
  bool started() const { return started_; }

 private:
  void advance();
  void fail(const std::string& why);
  void finish();

  SSL* ssl_ = nullptr;
  BIO* in_ = nullptr;   // owned by ssl_
  BIO* out_ = nullptr;  // owned by ssl_
  bool active_;
  bool started_ = false;
  DtlsConfig config_;
  DtlsSessionState state_ = DtlsSessionState::New;
  int64_t startedMs_ = 0;
  std::string error_, peerFingerprint_, profile_;
  std::unique_ptr<DtlsSrtpMaterial> material_;
  std::vector<uint8_t> pending_;  // records read from the output BIO, not sent yet
  size_t pendingAt_ = 0;
  const DtlsIdentity& identity_;
  // The source of the ClientHello listen() looks at, and after it was verified the party's (the cookie
  // callbacks read it; the handshake checks the cookie once more).
  uint8_t cookieSource_[32] = {};
  size_t cookieSourceLen_ = 0;
  friend int dtlsCookieGenerate(SSL*, unsigned char*, unsigned int*);
  friend int dtlsCookieVerify(SSL*, const unsigned char*, unsigned int);
};

}  // namespace ngrelay
