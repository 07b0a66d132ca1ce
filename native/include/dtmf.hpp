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
  // DTMF-security=random: the stand-in digit of the event with `randomTs` (one per event, not per packet).
  bool hasRandom = false;
  uint32_t randomTs = 0;
  uint8_t randomEvent = 0;
  uint32_t rng = 0x9e3779b9u;
};

constexpr int8_t kDtmfReplaceRandom = 16;

/**
 * block DTMF with DTMF-security zero/DTMF/random: the event code of a valid plain telephone-event packet is
 * replaced (the other fields, and the rest of the packet, stay). `replace` is 0-15, or kDtmfReplaceRandom for
 * a random digit other than the one sent, the same for every packet of one event.
 */
inline void dtmfReplaceEvent(DtmfState& st, uint8_t* p, size_t len, int8_t replace) {
  size_t off = 12 + 4u * (p[0] & 0x0fu);
  if ((p[0] & 0x10u) && off + 4 <= len) off += 4 + 4 * ((size_t(p[off + 2]) << 8) | p[off + 3]);
  if (off + 4 > len) return;
  if (replace != kDtmfReplaceRandom) {
    p[off] = uint8_t(replace);
    return;
  }
  const uint32_t ts = (uint32_t(p[4]) << 24) | (uint32_t(p[5]) << 16) | (uint32_t(p[6]) << 8) | p[7];
  if (!st.hasRandom || st.randomTs != ts) {
    st.rng ^= st.rng << 13;  // xorshift32: cheap, and enough to hide a digit
    st.rng ^= st.rng >> 17;
    st.rng ^= st.rng << 5;
    const uint8_t sent = p[off] < 16 ? p[off] : 0;
    st.randomEvent = uint8_t((sent + 1 + st.rng % 15) % 16);  // never the digit that was sent
    st.randomTs = ts;
    st.hasRandom = true;
  }
  p[off] = st.randomEvent;
}

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
