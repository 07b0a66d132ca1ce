// RFC 4733 telephone-event detection on the packet path: an event is reported once, when its first packet
// with the End bit arrives (the End packet is usually sent three times; the event's RTP timestamp, fixed for
// the whole event, tells repeats apart). Fixed-size state per stream, bounds-checked parsing.
#pragma once

#include <cstddef>
#include <cstdint>

namespace ngrelay {

struct DtmfEvent {
  uint8_t event = 0;         // 0-9, 10 = *, 11 = #, 12-15 = A-D, others as sent
  uint8_t volume = 0;        // -dBm0, 0..63
  uint32_t durationMs = 0;
  uint32_t rtpTimestamp = 0;
};

struct DtmfState {
  bool reported = false;     // the event with `lastTimestamp` has been reported
  uint32_t lastTimestamp = 0;
};

/** True (and `out` filled) when this packet ends an event not reported yet. `p` is a valid plain RTP packet. */
inline bool dtmfOnPacket(DtmfState& st, const uint8_t* p, size_t len, uint32_t clockRate, DtmfEvent& out) {
  size_t off = 12 + 4u * (p[0] & 0x0fu);
  if ((p[0] & 0x10u) && off + 4 <= len) off += 4 + 4 * ((size_t(p[off + 2]) << 8) | p[off + 3]);
  if (off + 4 > len) return false;
  const uint32_t ts = (uint32_t(p[4]) << 24) | (uint32_t(p[5]) << 16) | (uint32_t(p[6]) << 8) | p[7];
  if (ts != st.lastTimestamp) {
    st.lastTimestamp = ts;
    st.reported = false;
  }
  const bool end = (p[off + 1] & 0x80u) != 0;
  if (!end || st.reported) return false;
  st.reported = true;
  out.event = p[off];
  out.volume = p[off + 1] & 0x3fu;
  const uint32_t duration = (uint32_t(p[off + 2]) << 8) | p[off + 3];
  out.durationMs = duration * 1000 / (clockRate ? clockRate : 8000);
  out.rtpTimestamp = ts;
  return true;
}

}  // namespace ngrelay
