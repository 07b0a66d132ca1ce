// BUNDLE (RFC 8843 / RFC 9143): several m= lines of one party share one transport (the socket, ICE pair and
// DTLS-SRTP context of the "bundle transport" stream). The transport's owner thread demultiplexes what
// arrives on it to the member streams (native/src/io_thread_bundle.cpp); the control plane's side is
// StreamBundle in src/dataplane/types.ts.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace ngrelay {

struct Stream;

/** rule.bundle: this stream's m= line is bundled on stream `transport` (which may be this stream itself). */
struct BundleConfig {
  int32_t transport = -1;
  std::string mid;               // a=mid of the m= line ("" = none)
  int16_t midExtId = -1;         // RTP header extension id of urn:ietf:params:rtp-hdrext:sdes:mid (1..255), -1 = none
  uint64_t payloadTypes[2] = {0, 0};  // bit per payload type 0..127 that belongs to this m= line only

  bool hasPayloadType(uint8_t pt) const { return (payloadTypes[pt >> 6] >> (pt & 63)) & 1; }
};

/** One member as the engine (JS thread) hands it to the transport's owner thread (SetBundle command). */
struct BundleMemberSpec {
  Stream* member;
  std::shared_ptr<const BundleConfig> config;
};
using BundleTable = std::vector<BundleMemberSpec>;

/** SSRCs learned per member (main, RTX, FEC, one spare); more replace the oldest. */
constexpr size_t kBundleSsrcs = 4;

/** A member on the transport's owner thread: its demux keys and the SSRCs learned for it. */
struct BundleRoute {
  Stream* member = nullptr;
  std::shared_ptr<const BundleConfig> config;
  std::array<uint32_t, kBundleSsrcs> ssrcs{};
  uint8_t ssrcCount = 0;
  uint8_t nextSsrc = 0;  // the slot a new SSRC takes once all are used

  bool hasSsrc(uint32_t ssrc) const {
    for (size_t i = 0; i < ssrcCount; ++i)
      if (ssrcs[i] == ssrc) return true;
    return false;
  }
  void learnSsrc(uint32_t ssrc) {
    if (hasSsrc(ssrc)) return;
    if (ssrcCount < kBundleSsrcs) {
      ssrcs[ssrcCount++] = ssrc;
      return;
    }
    ssrcs[nextSsrc] = ssrc;
    nextSsrc = uint8_t((nextSsrc + 1) % kBundleSsrcs);
  }
  void forgetSsrc(uint32_t ssrc) {
    for (size_t i = 0; i < ssrcCount; ++i) {
      if (ssrcs[i] != ssrc) continue;
      ssrcs[i] = ssrcs[--ssrcCount];
      nextSsrc = 0;
      return;
    }
  }
};

/**
 * The value of the RTP header extension `id` in an RTP packet (RFC 8285: one-byte 0xBEDE or two-byte
 * 0x100x form), bounds-checked against `len`. False when the packet has no extension header, the id is absent,
 * or the extension block is malformed.
 */
bool rtpHeaderExtension(const uint8_t* p, size_t len, int id, const uint8_t** value, size_t* valueLen);

}  // namespace ngrelay
