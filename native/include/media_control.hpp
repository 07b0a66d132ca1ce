// `silence media`: the codec's silence in place of a forwarded RTP payload, for the codecs whose silence is
// one repeated byte (G.711: PCMU 0xFF, PCMA 0xD5 — the encodings of a zero sample; G.722: 0xFA, the byte
// rtpengine 10.5 sends, seen on the wire). Header, sequence number,
// timestamp and length stay as they were, so the far end sees an unbroken stream.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

namespace ngrelay {

/** Replaces the payload of a valid plain RTP packet when its payload type is PCMU (0), PCMA (8) or G722 (9). */
inline void silenceRtpPayload(uint8_t* p, size_t len) {
  const uint8_t pt = p[1] & 0x7f;
  uint8_t silence;
  if (pt == 0) silence = 0xff;
  else if (pt == 8) silence = 0xd5;
  else if (pt == 9) silence = 0xfa;
  else return;  // other codecs (and telephone-event) pass unchanged
  size_t header = 12 + 4u * (p[0] & 0x0fu);
  if ((p[0] & 0x10u) && header + 4 <= len) header += 4 + 4 * ((size_t(p[header + 2]) << 8) | p[header + 3]);
  size_t end = len;
  if (p[0] & 0x20u) end -= p[len - 1];  // padding (validRtp checked it fits)
  if (header < end) std::memset(p + header, silence, end - header);
}

}  // namespace ngrelay
