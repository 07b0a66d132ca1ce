// DTLS-SRTP on the OpenSSL built into Node (see CMakeLists.txt): certificate, per-stream handshakes through
// memory BIOs, fingerprint check and key export (native/include/dtls.hpp).
#include "dtls.hpp"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/srtp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <algorithm>
#include <cstring>
#include <stdexcept>

namespace ngrelay {

namespace {

// RFC 5764 profiles we offer, strongest first (the peer chooses among them).
constexpr const char* kSrtpProfiles = "SRTP_AEAD_AES_256_GCM:SRTP_AEAD_AES_128_GCM:SRTP_AES128_CM_SHA1_80:SRTP_AES128_CM_SHA1_32";
constexpr long kDtlsMtu = 1200;

const EVP_MD* digestOf(const std::string& hash) {
  if (hash == "sha-1") return EVP_sha1();
  if (hash == "sha-224") return EVP_sha224();
  if (hash == "sha-256") return EVP_sha256();
  if (hash == "sha-384") return EVP_sha384();
  if (hash == "sha-512") return EVP_sha512();
  return nullptr;
}

std::string lastSslError(const char* what) {
  unsigned long e = ERR_get_error();
  ERR_clear_error();
  if (e == 0) return what;
  char buf[256];
  ERR_error_string_n(e, buf, sizeof(buf));
  return std::string(what) + ": " + buf;
}

/** The party's certificate is checked against a=fingerprint after the handshake, not against any CA. */
int acceptAnyCertificate(int, X509_STORE_CTX*) { return 1; }

std::string hexFingerprint(const uint8_t* d, size_t n) {
  static const char* digits = "0123456789ABCDEF";
  std::string s;
  for (size_t i = 0; i < n; ++i) {
    if (i) s += ':';
    s += digits[d[i] >> 4];
    s += digits[d[i] & 15];
  }
  return s;
}

}  // namespace

// The SSL's app data is its DtlsSession, which knows the source of the datagram DTLSv1_listen is reading.
int dtlsCookieGenerate(SSL* ssl, unsigned char* cookie, unsigned int* len) {
  const auto* d = static_cast<const DtlsSession*>(SSL_get_app_data(ssl));
  if (!d || d->cookieSourceLen_ == 0) return 0;
  d->identity_.cookieFor(d->cookieSource_, d->cookieSourceLen_, cookie);
  *len = DtlsIdentity::kCookieLen;
  return 1;
}

int dtlsCookieVerify(SSL* ssl, const unsigned char* cookie, unsigned int len) {
  const auto* d = static_cast<const DtlsSession*>(SSL_get_app_data(ssl));
  if (!d || d->cookieSourceLen_ == 0 || len != DtlsIdentity::kCookieLen) return 0;
  uint8_t want[DtlsIdentity::kCookieLen];
  d->identity_.cookieFor(d->cookieSource_, d->cookieSourceLen_, want);
  return CRYPTO_memcmp(want, cookie, len) == 0 ? 1 : 0;
}

const char* dtlsStateName(DtlsSessionState s) {
  switch (s) {
    case DtlsSessionState::New: return "new";
    case DtlsSessionState::Connecting: return "connecting";
    case DtlsSessionState::Connected: return "connected";
    case DtlsSessionState::Failed: return "failed";
    case DtlsSessionState::Closed: return "closed";
  }
  return "new";
}

namespace {

/** A saved certificate and key (PEM); throws when either does not parse or they do not belong together. */
void loadIdentity(const DtlsCertificateSpec& spec, X509** certOut, EVP_PKEY** keyOut) {
  BIO* cb = BIO_new_mem_buf(spec.certificatePem.data(), int(spec.certificatePem.size()));
  BIO* kb = BIO_new_mem_buf(spec.privateKeyPem.data(), int(spec.privateKeyPem.size()));
  X509* cert = cb ? PEM_read_bio_X509(cb, nullptr, nullptr, nullptr) : nullptr;
  EVP_PKEY* key = kb ? PEM_read_bio_PrivateKey(kb, nullptr, nullptr, nullptr) : nullptr;
  if (cb) BIO_free(cb);
  if (kb) BIO_free(kb);
  if (!cert || !key || X509_check_private_key(cert, key) != 1) {
    std::string err = lastSslError(!cert ? "saved DTLS certificate does not parse"
                                         : !key ? "saved DTLS private key does not parse"
                                                : "saved DTLS private key does not match its certificate");
    if (cert) X509_free(cert);
    if (key) EVP_PKEY_free(key);
    throw std::runtime_error(err);
  }
  *certOut = cert;
  *keyOut = key;
}

std::string bioText(BIO* b) {
  char* data = nullptr;
  long n = BIO_get_mem_data(b, &data);
  std::string s(data && n > 0 ? data : "", n > 0 ? size_t(n) : 0);
  BIO_free(b);
  return s;
}

}  // namespace

bool dtlsProfileSuite(const std::string& profile, SrtpSuite* suite, size_t* keyLen, size_t* saltLen) {
  *keyLen = 16;
  *saltLen = 14;
  if (profile == "SRTP_AES128_CM_SHA1_80") *suite = SrtpSuite::AesCm128HmacSha1_80;
  else if (profile == "SRTP_AES128_CM_SHA1_32") *suite = SrtpSuite::AesCm128HmacSha1_32;
  else if (profile == "SRTP_AEAD_AES_128_GCM") *suite = SrtpSuite::AeadAes128Gcm, *saltLen = 12;
  else if (profile == "SRTP_AEAD_AES_256_GCM") *suite = SrtpSuite::AeadAes256Gcm, *keyLen = 32, *saltLen = 12;
  else return false;
  return true;
}

std::string DtlsIdentity::certificatePem() const {
  BIO* b = BIO_new(BIO_s_mem());
  if (!b) return "";
  PEM_write_bio_X509(b, cert_);
  return bioText(b);
}

std::string DtlsIdentity::privateKeyPem() const {
  BIO* b = BIO_new(BIO_s_mem());
  if (!b) return "";
  PEM_write_bio_PrivateKey(b, key_, nullptr, nullptr, 0, nullptr, nullptr);
  return bioText(b);
}

DtlsIdentity::DtlsIdentity(const DtlsCertificateSpec& spec) {
  if (!spec.certificatePem.empty() || !spec.privateKeyPem.empty()) {
    X509* cert = nullptr;
    EVP_PKEY* key = nullptr;
    loadIdentity(spec, &cert, &key);
    setUp(cert, key);
    return;
  }
  EVP_PKEY* key = spec.rsa ? EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", size_t(spec.rsaKeyBits))
                           : EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256");
  if (!key) throw std::runtime_error(lastSslError("DTLS key generation failed"));
  X509* cert = X509_new();
  uint8_t serial[8];
  for (int i = 0; i < 8; ++i) serial[i] = uint8_t(uintptr_t(cert) >> (i * 4)) ^ uint8_t(i * 37);
  X509_set_version(cert, 2);
  ASN1_INTEGER_set(X509_get_serialNumber(cert), long((uint32_t(serial[0]) << 16) | (serial[1] << 8) | serial[2]) + 1);
  X509_gmtime_adj(X509_getm_notBefore(cert), -86400);
  X509_gmtime_adj(X509_getm_notAfter(cert), 86400L * 365);
  X509_set_pubkey(cert, key);
  X509_NAME* name = X509_get_subject_name(cert);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>("ngrelay"), -1, -1, 0);
  X509_set_issuer_name(cert, name);
  if (!X509_sign(cert, key, spec.sha1 ? EVP_sha1() : EVP_sha256())) {
    X509_free(cert);
    EVP_PKEY_free(key);
    throw std::runtime_error(lastSslError("DTLS certificate signing failed"));
  }
  setUp(cert, key);
}

void DtlsIdentity::setUp(X509* cert, EVP_PKEY* key) {
  ctx_ = SSL_CTX_new(DTLS_method());
  if (!ctx_ || SSL_CTX_use_certificate(ctx_, cert) != 1 || SSL_CTX_use_PrivateKey(ctx_, key) != 1 ||
      SSL_CTX_set_tlsext_use_srtp(ctx_, kSrtpProfiles) != 0) {
    std::string err = lastSslError("DTLS context setup failed");
    if (ctx_) SSL_CTX_free(ctx_);
    X509_free(cert);
    EVP_PKEY_free(key);
    throw std::runtime_error(err);
  }
  SSL_CTX_set_min_proto_version(ctx_, DTLS1_2_VERSION);
  SSL_CTX_set_verify(ctx_, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, acceptAnyCertificate);
  SSL_CTX_set_read_ahead(ctx_, 1);
  SSL_CTX_set_cookie_generate_cb(ctx_, dtlsCookieGenerate);
  SSL_CTX_set_cookie_verify_cb(ctx_, dtlsCookieVerify);
  cert_ = cert;
  key_ = key;  // kept for privateKeyPem (the context holds its own reference)
  if (RAND_bytes(cookieSecret_, sizeof(cookieSecret_)) != 1) {
    SSL_CTX_free(ctx_);
    X509_free(cert_);
    EVP_PKEY_free(key_);
    ctx_ = nullptr;
    cert_ = nullptr;
    key_ = nullptr;
    throw std::runtime_error(lastSslError("DTLS cookie secret"));
  }
}

void DtlsIdentity::cookieFor(const uint8_t* source, size_t sourceLen, uint8_t out[kCookieLen]) const {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned macLen = 0;
  HMAC(EVP_sha256(), cookieSecret_, sizeof(cookieSecret_), source, sourceLen, mac, &macLen);
  std::memcpy(out, mac, kCookieLen);
}

DtlsIdentity::~DtlsIdentity() {
  if (ctx_) SSL_CTX_free(ctx_);
  if (cert_) X509_free(cert_);
  if (key_) EVP_PKEY_free(key_);
}

bool DtlsIdentity::fingerprint(const std::string& hash, std::vector<uint8_t>& out) const {
  const EVP_MD* md = digestOf(hash);
  if (!md) return false;
  unsigned char d[EVP_MAX_MD_SIZE];
  unsigned n = 0;
  if (!X509_digest(cert_, md, d, &n)) return false;
  out.assign(d, d + n);
  return true;
}

SrtpParams DtlsSrtpMaterial::params(bool relayWrites) const {
  // The client writes with the client keys (RFC 5764 §4.2).
  const bool client = relayWrites == relayIsClient;
  SrtpParams p;
  p.suite = suite;
  p.masterKey = client ? clientKey.data() : serverKey.data();
  p.masterKeyLen = clientKey.size();
  p.masterSalt = client ? clientSalt.data() : serverSalt.data();
  p.masterSaltLen = clientSalt.size();
  return p;
}

DtlsSession::DtlsSession(const DtlsIdentity& identity, const DtlsConfig& config)
    : active_(config.active), config_(config), identity_(identity) {
  ssl_ = SSL_new(identity.ctx());
  if (!ssl_) throw std::runtime_error(lastSslError("SSL_new"));
  SSL_set_app_data(ssl_, this);
  in_ = BIO_new(BIO_s_mem());
  out_ = BIO_new(BIO_s_mem());
  BIO_set_mem_eof_return(in_, -1);
  BIO_set_mem_eof_return(out_, -1);
  SSL_set_bio(ssl_, in_, out_);
  SSL_set_options(ssl_, SSL_OP_NO_QUERY_MTU);
  SSL_set_mtu(ssl_, kDtlsMtu);
  if (active_) SSL_set_connect_state(ssl_);
  else SSL_set_accept_state(ssl_);
}

DtlsSession::~DtlsSession() {
  if (ssl_) SSL_free(ssl_);
}

void DtlsSession::start(int64_t nowMs) {
  if (started_) return;
  started_ = true;
  startedMs_ = nowMs;
  state_ = DtlsSessionState::Connecting;
  advance();
}

void DtlsSession::onDatagram(const uint8_t* p, size_t len, int64_t nowMs) {
  if (state_ == DtlsSessionState::Failed || state_ == DtlsSessionState::Closed) return;
  if (!started_) {
    started_ = true;
    startedMs_ = nowMs;
    state_ = DtlsSessionState::Connecting;
  }
  BIO_write(in_, p, int(len));
  if (state_ == DtlsSessionState::Connected) {
    // After the handshake: alerts (close_notify) and retransmitted final flights; no application data in DTLS-SRTP.
    uint8_t sink[2048];
    int r = SSL_read(ssl_, sink, sizeof(sink));
    if (r <= 0 && SSL_get_error(ssl_, r) == SSL_ERROR_ZERO_RETURN) state_ = DtlsSessionState::Closed;
    ERR_clear_error();
    return;
  }
  advance();
}

DtlsSession::Listen DtlsSession::listen(const uint8_t* p, size_t len, const uint8_t* source, size_t sourceLen,
                                        int64_t nowMs) {
  if (active_ || started_) return Listen::Pending;
  // DTLSv1_listen is stateless: it reads this one datagram, answers a ClientHello without a valid cookie with a
  // HelloVerifyRequest and forgets it; with a valid cookie it keeps the ClientHello for the handshake.
  (void)BIO_reset(in_);
  BIO_write(in_, p, int(len));
  cookieSourceLen_ = std::min(sourceLen, sizeof(cookieSource_));
  std::memcpy(cookieSource_, source, cookieSourceLen_);
  BIO_ADDR* client = BIO_ADDR_new();
  const int r = client ? DTLSv1_listen(ssl_, client) : -1;
  BIO_ADDR_free(client);
  (void)BIO_reset(in_);  // what DTLSv1_listen did not read (a second record) is not kept either
  ERR_clear_error();
  if (r != 1) return Listen::Pending;
  started_ = true;
  startedMs_ = nowMs;
  state_ = DtlsSessionState::Connecting;
  advance();
  return Listen::Verified;
}

void DtlsSession::onTimer(int64_t nowMs, int64_t handshakeTimeoutMs) {
  if (state_ != DtlsSessionState::Connecting) return;
  if (nowMs - startedMs_ >= handshakeTimeoutMs) {
    fail("handshake timeout");
    return;
  }
  timeval tv{};
  if (DTLSv1_get_timeout(ssl_, &tv) == 1 && tv.tv_sec == 0 && tv.tv_usec == 0) DTLSv1_handle_timeout(ssl_);
}

void DtlsSession::advance() {
  int r = SSL_do_handshake(ssl_);
  if (r == 1) {
    finish();
    return;
  }
  int e = SSL_get_error(ssl_, r);
  if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
    ERR_clear_error();
    return;
  }
  fail(lastSslError("handshake failed"));
}

void DtlsSession::fail(const std::string& why) {
  state_ = DtlsSessionState::Failed;
  error_ = why;
  ERR_clear_error();
}

void DtlsSession::finish() {
  X509* peer = SSL_get1_peer_certificate(ssl_);
  if (!peer) {
    fail("no peer certificate");
    return;
  }
  unsigned char d[EVP_MAX_MD_SIZE];
  unsigned n = 0;
  if (X509_digest(peer, EVP_sha256(), d, &n)) peerFingerprint_ = hexFingerprint(d, n);
  bool match = false;
  if (config_.hasRemoteFingerprint) {
    const EVP_MD* md = digestOf(config_.fingerprintHash);
    unsigned m = 0;
    match = md && X509_digest(peer, md, d, &m) && m == config_.remoteFingerprint.size() &&
            std::memcmp(d, config_.remoteFingerprint.data(), m) == 0;
  }
  X509_free(peer);
  if (!config_.hasRemoteFingerprint) {
    fail("no a=fingerprint to verify the peer certificate against");
    return;
  }
  if (!match) {
    fail("certificate fingerprint mismatch");
    return;
  }
  const SRTP_PROTECTION_PROFILE* prof = SSL_get_selected_srtp_profile(ssl_);
  if (!prof) {
    fail("no use_srtp profile negotiated");
    return;
  }
  auto mat = std::make_unique<DtlsSrtpMaterial>();
  size_t keyLen = 16, saltLen = 14;
  switch (prof->id) {
    case SRTP_AES128_CM_SHA1_80: mat->suite = SrtpSuite::AesCm128HmacSha1_80; break;
    case SRTP_AES128_CM_SHA1_32: mat->suite = SrtpSuite::AesCm128HmacSha1_32; break;
    case SRTP_AEAD_AES_128_GCM: mat->suite = SrtpSuite::AeadAes128Gcm; saltLen = 12; break;
    case SRTP_AEAD_AES_256_GCM: mat->suite = SrtpSuite::AeadAes256Gcm; keyLen = 32; saltLen = 12; break;
    default: fail(std::string("unsupported use_srtp profile ") + prof->name); return;
  }
  uint8_t km[2 * (32 + 14)];
  const size_t total = 2 * (keyLen + saltLen);
  static const char kLabel[] = "EXTRACTOR-dtls_srtp";
  if (SSL_export_keying_material(ssl_, km, total, kLabel, sizeof(kLabel) - 1, nullptr, 0, 0) != 1) {
    fail(lastSslError("keying material export failed"));
    return;
  }
  // RFC 5764 §4.2: client key | server key | client salt | server salt.
  mat->clientKey.assign(km, km + keyLen);
  mat->serverKey.assign(km + keyLen, km + 2 * keyLen);
  mat->clientSalt.assign(km + 2 * keyLen, km + 2 * keyLen + saltLen);
  mat->serverSalt.assign(km + 2 * keyLen + saltLen, km + total);
  mat->relayIsClient = active_;
  mat->profileName = prof->name;
  profile_ = prof->name;
  material_ = std::move(mat);
  state_ = DtlsSessionState::Connected;
}

size_t DtlsSession::takeOutput(uint8_t* out, size_t cap) {
  // A memory BIO keeps no datagram boundaries: everything OpenSSL wrote is read out, then sent as datagrams
  // of whole records (13-byte header + length) of at most the MTU, so a flight never becomes one oversized
  // datagram that the path would fragment.
  if (pendingAt_ >= pending_.size()) {
    pending_.clear();
    pendingAt_ = 0;
    size_t n = BIO_ctrl_pending(out_);
    if (n == 0) return 0;
    pending_.resize(n);
    int r = BIO_read(out_, pending_.data(), int(n));
    if (r <= 0) {
      pending_.clear();
      return 0;
    }
    pending_.resize(size_t(r));
  }
  const size_t limit = std::min(cap, size_t(kDtlsMtu));
  size_t at = pendingAt_, len = 0;
  while (at + 13 <= pending_.size()) {
    const size_t record = 13 + ((size_t(pending_[at + 11]) << 8) | pending_[at + 12]);
    if (at + record > pending_.size()) break;   // cannot happen with OpenSSL's output; never overrun
    if (len > 0 && len + record > limit) break;  // the next datagram takes it
    if (record > cap) {                          // larger than any datagram we can build: drop it
      at += record;
      continue;
    }
    len += record;
    at += record;
  }
  if (len == 0) {
    pendingAt_ = pending_.size();  // nothing sendable left (malformed tail)
    return 0;
  }
  std::memcpy(out, pending_.data() + pendingAt_ + (at - pendingAt_ - len), len);
  pendingAt_ = at;
  return len;
}

void DtlsSession::close() {
  if (state_ == DtlsSessionState::Connected) {
    SSL_shutdown(ssl_);
    state_ = DtlsSessionState::Closed;
  }
  ERR_clear_error();
}

}  // namespace ngrelay
