// ng `play DTMF`: RFC 4733 events the relay itself sends into one direction of a call, as if the party had sent
// them: the stream's own SSRC, timestamps continuous with its media, sequence numbers continuous with what was
// forwarded before (and, afterwards, the party's packets shifted by the number of packets injected minus the
// number suppressed, so the far end sees no gap and no duplicate). The packet layout follows rtpengine 10.5
// on the wire: one packet every 20 ms with the duration so far (the first with the marker bit), then three
// End packets with the duration one packet longer. The party's own packets are suppressed while an event
// plays. All state is fixed-size and lives in the Stream; it is touched only by the owner I/O thread.
#pragma once

#include <cstddef>
#include <cstdint>

namespace ngrelay {

/** One queued event (what the ng command asked for, after rtpengine's clamping). */
struct DtmfPlay {
  uint8_t event = 0;        // 0-15
  uint8_t volume = 8;       // -dBm0
  uint8_t payloadType = 0;  // telephone-event PT of the receiving party
  uint16_t durationMs = 250;
  uint16_t pauseMs = 100;   // quiet time after this event before the next one starts
};

constexpr int kDtmfQueue = 16;            // events queued per stream (more: the command is refused)
constexpr int64_t kDtmfPacketUs = 20000;  // one event packet per 20 ms
constexpr int kDtmfEndPackets = 3;

struct DtmfInjector {
  DtmfPlay queue[kDtmfQueue];
  uint8_t head = 0, count = 0;  // ring of events waiting (the one playing is not in it)
  bool playing = false;         // an event is being sent (the party's RTP is suppressed)
  bool waiting = false;         // in the pause after an event
  DtmfPlay current;
  uint32_t ssrc = 0, timestamp = 0;
  uint16_t nextSeq = 0;
  uint32_t progressPackets = 0;  // in-progress packets of the current event (duration / 20 ms)
  uint32_t sent = 0;             // packets of the current event sent so far
  int64_t nextAtUs = 0;          // monotonic: when the next packet (or the next event) is due
  uint64_t injected = 0;         // event packets sent, for tests and logs
  uint64_t suppressed = 0;       // party packets dropped while an event played

  bool idle() const { return !playing && !waiting && count == 0; }
  bool push(const DtmfPlay& p) {
    if (count >= kDtmfQueue) return false;
    queue[(head + count) % kDtmfQueue] = p;
    ++count;
    return true;
  }
  DtmfPlay pop() {
    DtmfPlay p = queue[head];
    head = uint8_t((head + 1) % kDtmfQueue);
    --count;
    return p;
  }
};

/**
 * Writes the 16-byte RTP packet for packet number `index` (0-based) of the event playing and returns its
 * length; the in-progress packets carry duration (index+1) × samples-per-packet, the End packets one more.
 */
inline size_t buildDtmfPacket(uint8_t* out, const DtmfInjector& inj, uint32_t index, uint32_t clockRate) {
  const uint32_t perPacket = (clockRate ? clockRate : 8000) / 50;
  const bool end = index >= inj.progressPackets;
  const uint32_t packets = end ? inj.progressPackets + 1 : index + 1;
  uint32_t duration = packets * perPacket;
  if (duration > 0xffff) duration = 0xffff;
  const uint16_t seq = inj.nextSeq;
  out[0] = 0x80;
  out[1] = uint8_t((index == 0 ? 0x80 : 0) | (inj.current.payloadType & 0x7f));
  out[2] = uint8_t(seq >> 8);
  out[3] = uint8_t(seq);
  out[4] = uint8_t(inj.timestamp >> 24);
  out[5] = uint8_t(inj.timestamp >> 16);
  out[6] = uint8_t(inj.timestamp >> 8);
  out[7] = uint8_t(inj.timestamp);
  out[8] = uint8_t(inj.ssrc >> 24);
  out[9] = uint8_t(inj.ssrc >> 16);
  out[10] = uint8_t(inj.ssrc >> 8);
  out[11] = uint8_t(inj.ssrc);
  out[12] = inj.current.event;
  out[13] = uint8_t((end ? 0x80 : 0) | (inj.current.volume & 0x3f));
  out[14] = uint8_t(duration >> 8);
  out[15] = uint8_t(duration);
  return 16;
}

}  // namespace ngrelay
