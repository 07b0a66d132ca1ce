// Bounds checks for every received byte: a packet is forwarded only when its RTP or RTCP header is sound.
// The payload itself may be SRTP-encrypted, so only the clear-text header fields are checked.
#pragma once

#include <cstddef>
#include <cstdint>

namespace ngrelay {

/** RFC 5761 demultiplexing: a second byte in 192..223 is an RTCP packet type, not an RTP marker+PT. */
inline bool looksLikeRtcp(const uint8_t* p, size_t len) { return len >= 2 && p[1] >= 192 && p[1] <= 223; }

/**
 * RTP: version 2, fixed header, CSRC list, header extension and padding all inside the datagram.
 * `checkPadding` false for SRTP before decryption: its last byte is authentication tag, not the padding count.
 */
inline bool validRtp(const uint8_t* p, size_t len, bool checkPadding = true) {
  if (len < 12 || (p[0] >> 6) != 2) return false;
  size_t header = 12 + 4u * (p[0] & 0x0fu);
  if (header > len) return false;
  if (p[0] & 0x10u) {
    if (header + 4 > len) return false;
    size_t extWords = (size_t(p[header + 2]) << 8) | p[header + 3];
    header += 4 + 4 * extWords;
    if (header > len) return false;
  }
  if (checkPadding && (p[0] & 0x20u)) {
    size_t padding = p[len - 1];
    if (padding == 0 || header + padding > len) return false;
  }
  return true;
}

/**
 * RTCP: version 2, an RTCP packet type, at least header + sender SSRC, and the first packet's length field
 * inside the datagram. Only the first header is checked because under SRTCP the rest is ciphertext.
 */
inline bool validRtcp(const uint8_t* p, size_t len) {
  if (len < 8 || (p[0] >> 6) != 2 || p[1] < 192 || p[1] > 223) return false;
  size_t first = (((size_t(p[2]) << 8) | p[3]) + 1) * 4;
  return first <= len;
}

}  // namespace ngrelay
