// StreamDtls (src/dataplane/types.ts) as the engine keeps it: immutable once made, shared by rule copies.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace ngrelay {

struct DtlsSrtpMaterial;

struct DtlsConfig {
  bool active = false;  // role 'active': the relay sends the ClientHello
  bool hasRemoteFingerprint = false;
  std::string fingerprintHash;  // "sha-256", ...
  std::vector<uint8_t> remoteFingerprint;
  double generation = 0;
  /**
   * StreamDtls.restored: the keys of this generation's handshake, saved before a restart. Published as the
   * stream's keys at once, state "connected", and no handshake is started (a new one from the party is answered).
   */
  std::shared_ptr<const DtlsSrtpMaterial> restored;
  std::string restoredPeerFingerprint;
};

}  // namespace ngrelay
