// play DTMF on the owner I/O thread (see dtmf_inject.hpp): the command queues an event, the thread's timer
// pass (handleTimers) sends the packets as they fall due. Nothing here allocates: the queue and the packet
// buffer are fixed, and the thread's list of injecting streams only grows to the number of streams that
// play at once.
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>

#include "engine.hpp"

namespace ngrelay {

namespace {

int64_t monotonicUs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t(ts.tv_sec) * 1000000 + ts.tv_nsec / 1000;
}

/** Starts `play` on `s`: SSRC, sequence number and timestamp taken from what the party sent last. */
void startEvent(Stream* s, const DtmfPlay& play, int64_t nowUs) {
  DtmfInjector& j = s->inject;
  j.current = play;
  const uint32_t packetMs = uint32_t(kDtmfPacketUs / 1000);  // rtpengine rounds up: 250 ms = 13 packets
  j.progressPackets = std::max<uint32_t>(1, (play.durationMs + packetMs - 1) / packetMs);
  j.sent = 0;
  const RtpReceiveStats& r = s->rtpStats;
  const uint32_t clock = s->rule.clockRate ? s->rule.clockRate : 8000;
  if (r.started) {
    j.ssrc = r.ssrc;
    j.nextSeq = uint16_t(r.maxSeq + s->seqShift + 1);
    // Where the party's media clock stands now: the time on the RTP clock less the transit its packets had;
    // never before the end of the last packet (taken as 20 ms long), which an event must not overlap.
    const uint32_t estimate = rtpClockAt(nowUs, clock) - r.lastTransit;
    const uint32_t afterLast = r.lastTimestamp + clock / 50;
    j.timestamp = int32_t(estimate - afterLast) > 0 ? estimate : afterLast;
  } else {
    // Nothing received from the party yet: a stream of the relay's own (as a party starting to send would).
    uint32_t seed = uint32_t(nowUs) ^ (uint32_t(s->id) * 0x9e3779b9u);
    seed ^= seed << 13;
    seed ^= seed >> 17;
    seed ^= seed << 5;
    j.ssrc = seed;
    j.nextSeq = uint16_t(seed >> 7);
    j.timestamp = seed * 2654435761u;
  }
  j.playing = true;
  s->dtmfInjecting = true;
  s->refreshRtpAltered();
  j.nextAtUs = nowUs;
}

}  // namespace

DtmfPlayResult IoThread::queueDtmf(Stream* s, const DtmfPlay& play) {
  // SRTP passed through untouched cannot carry packets of ours, nor a shifted sequence number.
  if (s->hasCrypto && s->srtpPassThrough) return DtmfPlayResult::PassThrough;
  const bool wasIdle = s->inject.idle();
  if (!s->inject.push(play)) return DtmfPlayResult::QueueFull;
  if (wasIdle) {
    if (std::find(injecting_.begin(), injecting_.end(), s) == injecting_.end()) injecting_.push_back(s);
    s->inject.nextAtUs = monotonicUs();
  }
  return DtmfPlayResult::Queued;
}

void IoThread::sendInjected(Stream* s, uint8_t* p, size_t len) {
  Stream* out = s->sink;
  const int fd = s->sinkFd;
  if (!out || fd < 0) return;
  const SockAddr dest = out->endpoint.load();
  if (!dest.valid()) return;
  // Towards an SRTP party: protected with the same outbound context as the forwarded packets, whose index
  // follows the (shifted) sequence numbers, so the two interleave without a gap.
  SrtpContext* eg = s->hasCrypto ? s->srtpOut : nullptr;
  if (eg && !s->srtpPassThrough) {
    size_t protLen = 0;
    SrtpResult r = eg->protectRtp(p, len, injectBuf_.size(), &protLen);
    if (r != SrtpResult::Ok) {
      countSrtpFailure(s, r);
      return;
    }
    len = protLen;
  }
  const ssize_t w = ::sendto(fd, p, len, MSG_DONTWAIT, reinterpret_cast<const sockaddr*>(&dest.u), dest.len);
  if (w < 0) totals_.dropped.add(1);
}

void IoThread::runInjections() {
  const int64_t nowUs = monotonicUs();
  for (size_t i = 0; i < injecting_.size();) {
    Stream* s = injecting_[i];
    DtmfInjector& j = s->inject;
    // A late loop round catches up, but a stall never becomes a burst of more than a few packets.
    for (int step = 0; step < 4 && nowUs >= j.nextAtUs; ++step) {
      if (j.playing) {
        const size_t len = buildDtmfPacket(injectBuf_.data(), j, j.sent, s->rule.clockRate);
        sendInjected(s, injectBuf_.data(), len);
        ++j.sent;
        ++j.nextSeq;
        ++j.injected;
        ++s->seqShift;  // the party's next packet comes after ours
        if (j.sent >= j.progressPackets + kDtmfEndPackets) {
          j.playing = false;
          s->dtmfInjecting = false;
          s->refreshRtpAltered();  // stays set while seqShift is not 0
          j.waiting = true;
          j.nextAtUs += int64_t(j.current.pauseMs) * 1000;
        } else {
          j.nextAtUs += kDtmfPacketUs;
        }
      } else if (j.waiting) {
        j.waiting = false;
      } else if (j.count > 0) {
        startEvent(s, j.pop(), nowUs);
      } else {
        break;
      }
    }
    if (j.idle()) {
      injecting_[i] = injecting_.back();
      injecting_.pop_back();
    } else {
      ++i;
    }
  }
}

int IoThread::injectionTimeoutMs() const {
  const int64_t nowUs = monotonicUs();
  int64_t soonest = kDtmfPacketUs;
  for (const Stream* s : injecting_) soonest = std::min(soonest, s->inject.nextAtUs - nowUs);
  return soonest <= 0 ? 0 : int((soonest + 999) / 1000);
}

DtmfPlayResult Engine::playDtmf(int32_t id, const DtmfPlay& play) {
  if (closed_) return DtmfPlayResult::UnknownStream;
  auto it = streams_.find(id);
  if (it == streams_.end()) return DtmfPlayResult::UnknownStream;
  Stream* s = it->second.stream.get();
  DtmfPlayResult result = DtmfPlayResult::UnknownStream;
  Completion done(1);
  Command c{};
  c.type = CommandType::PlayDtmf;
  c.stream = s;
  c.sink = nullptr;
  c.done = &done;
  c.rec = nullptr;
  c.play = play;
  c.playOut = &result;
  s->owner->submit(c);
  done.wait();
  return result;
}

}  // namespace ngrelay
