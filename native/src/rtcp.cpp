// See rtcp.hpp. Every read is preceded by a check that it lies inside the sub-packet, and every sub-packet
// inside the datagram, so a lying length or count is refused, never read past.
#include "rtcp.hpp"

namespace ngrelay {

namespace {

inline uint32_t be32(const uint8_t* p) {
  return (uint32_t(p[0]) << 24) | (uint32_t(p[1]) << 16) | (uint32_t(p[2]) << 8) | p[3];
}
inline uint16_t be16(const uint8_t* p) { return uint16_t((p[0] << 8) | p[1]); }

constexpr uint8_t kSr = 200, kRr = 201, kSdes = 202, kBye = 203, kApp = 204, kRtpfb = 205, kPsfb = 206, kXr = 207;
constexpr size_t kBlockBytes = 24;

void readBlocks(const uint8_t* p, int count, RtcpSummary& out) {
  for (int i = 0; i < count; ++i, p += kBlockBytes) {
    if (out.blockCount >= kRtcpMaxBlocks) {
      ++out.blocksSkipped;
      continue;
    }
    RtcpReportBlock& b = out.blocks[out.blockCount++];
    b.ssrc = be32(p);
    b.fractionLost = p[4];
    uint32_t lost = (uint32_t(p[5]) << 16) | (uint32_t(p[6]) << 8) | p[7];
    b.cumulativeLost = (lost & 0x800000u) ? int32_t(lost | 0xff000000u) : int32_t(lost);
    b.extHighestSeq = be32(p + 8);
    b.jitter = be32(p + 12);
    b.lsr = be32(p + 16);
    b.dlsr = be32(p + 20);
  }
}

/** XR report blocks (RFC 3611 §3): BT, type-specific, block length in words after the 4-byte header. */
RtcpError readXr(const uint8_t* body, size_t len, RtcpSummary& out) {
  size_t off = 4;  // after the XR sender SSRC
  while (off < len) {
    if (off + 4 > len) return RtcpError::Truncated;
    const uint8_t bt = body[off];
    const size_t blockLen = 4 + 4 * size_t(be16(body + off + 2));
    if (off + blockLen > len) return RtcpError::Truncated;
    const uint8_t* b = body + off + 4;
    if (bt == 7 && blockLen >= 36) {
      out.hasXrVoip = true;
      out.xrVoip.ssrc = be32(b);
      out.xrVoip.lossRate = b[4];
      out.xrVoip.discardRate = b[5];
      out.xrVoip.roundTripDelayMs = be16(b + 12);
      out.xrVoip.rFactor = b[22];
      out.xrVoip.mosLq = b[24];
      out.xrVoip.mosCq = b[25];
    }
    off += blockLen;
  }
  return RtcpError::None;
}

}  // namespace

RtcpError parseRtcp(const uint8_t* p, size_t len, RtcpSummary& out) {
  out = RtcpSummary{};
  if (len < 4) return RtcpError::Truncated;
  size_t off = 0;
  while (off < len) {
    if (out.packets >= kRtcpMaxPackets) return RtcpError::TooManyPackets;
    if (off + 4 > len) return RtcpError::Truncated;
    const uint8_t* h = p + off;
    if ((h[0] >> 6) != 2) return RtcpError::BadVersion;
    const uint8_t pt = h[1];
    if (pt < 192 || pt > 223) return RtcpError::BadType;
    const size_t size = 4 * (size_t(be16(h + 2)) + 1);
    if (off + size > len) return RtcpError::Truncated;
    size_t bodyLen = size - 4;
    const bool last = off + size == len;
    if (h[0] & 0x20) {
      // RFC 3550 §6.4.1: only the last packet of a compound may be padded; the count includes itself.
      const size_t pad = h[size - 1];
      if (!last || pad == 0 || pad > bodyLen) return RtcpError::BadPadding;
      bodyLen -= pad;
    }
    const uint8_t* body = h + 4;
    const int count = h[0] & 0x1f;
    ++out.packets;
    switch (pt) {
      case kSr:
        if (bodyLen < 24 + kBlockBytes * size_t(count)) return RtcpError::BadCount;
        if (!out.hasSr) {
          out.hasSr = true;
          out.srSsrc = be32(body);
          out.ntpMsw = be32(body + 4);
          out.ntpLsw = be32(body + 8);
          out.srRtpTs = be32(body + 12);
          out.srPackets = be32(body + 16);
          out.srOctets = be32(body + 20);
        }
        if (count > 0) {
          out.hasRr = true;
          out.reporterSsrc = be32(body);
        }
        readBlocks(body + 24, count, out);
        break;
      case kRr:
        if (bodyLen < 4 + kBlockBytes * size_t(count)) return RtcpError::BadCount;
        out.hasRr = true;
        out.reporterSsrc = be32(body);
        readBlocks(body + 4, count, out);
        break;
      case kSdes:
        // Chunks are not walked: nothing here needs CNAMEs. The count must still be plausible (8 bytes a chunk).
        if (bodyLen < 8 * size_t(count)) return RtcpError::BadCount;
        ++out.sdes;
        break;
      case kBye:
        if (bodyLen < 4 * size_t(count)) return RtcpError::BadCount;
        ++out.bye;
        break;
      case kApp:
        if (bodyLen < 8) return RtcpError::Truncated;
        ++out.app;
        break;
      case kRtpfb:
      case kPsfb:
        if (bodyLen < 8) return RtcpError::Truncated;
        ++out.feedback;
        break;
      case kXr: {
        if (bodyLen < 4) return RtcpError::Truncated;
        ++out.xr;
        RtcpError e = readXr(body, bodyLen, out);
        if (e != RtcpError::None) return e;
        break;
      }
      default:
        break;  // other RTCP types (RFC 5760 ...) are forwarded uninterpreted
    }
    off += size;
  }
  return RtcpError::None;
}

const char* rtcpErrorName(RtcpError e) {
  switch (e) {
    case RtcpError::None: return "none";
    case RtcpError::Truncated: return "truncated";
    case RtcpError::BadVersion: return "bad-version";
    case RtcpError::BadType: return "bad-type";
    case RtcpError::BadCount: return "bad-count";
    case RtcpError::TooManyPackets: return "too-many-packets";
    case RtcpError::BadPadding: return "bad-padding";
  }
  return "unknown";
}

}  // namespace ngrelay
