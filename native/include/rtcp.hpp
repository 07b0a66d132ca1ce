// RTCP compound-packet parser (RFC 3550 §6, RFC 3611 XR, RFC 5506 reduced-size): bounds-checked, no
// allocation, fills a fixed-size summary of what call-quality figures need. Used on the I/O threads after
// SRTCP decryption, and by the test binding (native/src/rtcp_binding.cpp).
#pragma once

#include <cstddef>
#include <cstdint>

namespace ngrelay {

/** One reception report block (RFC 3550 §6.4.1). */
struct RtcpReportBlock {
  uint32_t ssrc;            // the source this block is about
  uint8_t fractionLost;     // 1/256 units since the previous report
  int32_t cumulativeLost;   // 24-bit signed
  uint32_t extHighestSeq;
  uint32_t jitter;          // RTP timestamp units
  uint32_t lsr;             // middle 32 bits of the NTP time of the last SR received from `ssrc`
  uint32_t dlsr;            // 1/65536 s since that SR
};

/** RTCP XR VoIP Metrics block (RFC 3611 §4.7), the fields rtpengine reads. */
struct RtcpXrVoip {
  uint32_t ssrc;
  uint8_t lossRate, discardRate;
  uint16_t roundTripDelayMs;
  uint8_t rFactor, mosLq, mosCq;  // MOS ×10; 127 = unavailable
};

/** Report blocks kept per compound packet; more are counted in `blocksSkipped` (an RR carries up to 31). */
constexpr int kRtcpMaxBlocks = 8;
/** A compound packet of more sub-packets than this is refused (a 4096-byte datagram could hold 1024 headers). */
constexpr int kRtcpMaxPackets = 32;

struct RtcpSummary {
  int packets = 0;
  bool hasSr = false;
  uint32_t srSsrc = 0, ntpMsw = 0, ntpLsw = 0, srRtpTs = 0, srPackets = 0, srOctets = 0;
  bool hasRr = false;
  uint32_t reporterSsrc = 0;  // the sender of the SR/RR that carried the blocks
  int blockCount = 0;
  int blocksSkipped = 0;
  RtcpReportBlock blocks[kRtcpMaxBlocks];
  int sdes = 0, bye = 0, app = 0, feedback = 0, xr = 0;
  bool hasXrVoip = false;
  RtcpXrVoip xrVoip{};

  /** The middle 32 bits of the SR's NTP timestamp: what a later report block's LSR names. */
  uint32_t ntpMiddle() const { return (ntpMsw << 16) | (ntpLsw >> 16); }
};

enum class RtcpError : uint8_t {
  None,
  Truncated,    // shorter than a header, or a length field pointing past the end
  BadVersion,   // a sub-packet whose version is not 2
  BadType,      // a packet type outside 192..223 where a header is expected
  BadCount,     // a report count that does not fit the packet's length
  TooManyPackets,
  BadPadding,   // padding on a sub-packet other than the last, or a padding count larger than the packet
};

/** Parses one (compound or reduced-size) RTCP datagram in plain text; RtcpError::None when it is sound. */
RtcpError parseRtcp(const uint8_t* p, size_t len, RtcpSummary& out);

const char* rtcpErrorName(RtcpError e);

}  // namespace ngrelay
