// StreamDtls (src/dataplane/types.ts) as the engine keeps it: immutable once made, shared by rule copies.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace ngrelay {

struct DtlsConfig {
  bool active = false;  // role 'active': the relay sends the ClientHello
  bool hasRemoteFingerprint = false;
  std::string fingerprintHash;  // "sha-256", ...
  std::vector<uint8_t> remoteFingerprint;
  double generation = 0;
};

}  // namespace ngrelay
