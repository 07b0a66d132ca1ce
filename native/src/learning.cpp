#include "learning.hpp"

namespace ngrelay {

void resetLearning(LearnState& st, const Rule& rule) {
  st.current = rule.expected;
  st.confirmed = false;
  st.inWindow = false;
  st.bestRank = -1;
  st.windowStartMs = 0;
}

bool updateResetsLearning(const Rule& old, const Rule& now) {
  const bool expectedMoved = old.expected.valid() != now.expected.valid() ||
                             (old.expected.valid() && !old.expected.sameEndpoint(now.expected));
  return expectedMoved || (now.asymmetric && !old.asymmetric) ||
         (now.learning == Learning::Off && old.learning != Learning::Off);
}

static LearnOutcome confirm(LearnState& st, const SockAddr& src) {
  LearnOutcome out;
  out.endpointChanged = !st.current.sameEndpoint(src) || !st.current.valid();
  st.current = src;
  st.confirmed = true;
  st.inWindow = false;
  out.event = LearnEvent::Learned;
  return out;
}

LearnOutcome learnFromPacket(LearnState& st, const Rule& rule, const SockAddr& src, int64_t nowMs) {
  LearnOutcome out;
  // asymmetric and `off` never learn: the destination stays the expected endpoint and anyone may send.
  if (rule.asymmetric || rule.learning == Learning::Off) return out;

  if (st.confirmed) {
    if (st.current.sameEndpoint(src)) return out;
    if (rule.mediaHandover) {
      st.current = src;
      out.endpointChanged = true;
      out.event = LearnEvent::SourceChanged;
      return out;
    }
    // RTP-injection protection: a stranger never takes over a confirmed stream; strict mode also drops it.
    if (rule.strictSource) out.accept = false;
    return out;
  }

  switch (rule.learning) {
    case Learning::Immediate:
      return confirm(st, src);
    case Learning::Delayed:
      // Latch onto the next source only once signalling has been quiet for the window.
      if (nowMs - st.lastSignalMs >= kLearningWindowMs) return confirm(st, src);
      return out;
    case Learning::Heuristic: {
      if (rule.expected.valid() && rule.expected.sameEndpoint(src)) return confirm(st, src);
      int rank = 0;
      if (rule.expected.sameIp(src)) rank = 2;
      else if (rule.expected.samePort(src)) rank = 1;
      if (!st.inWindow) {
        st.inWindow = true;
        st.windowStartMs = nowMs;
        st.bestRank = rank;
        out.endpointChanged = !st.current.sameEndpoint(src);
        st.current = src;
      } else if (rank > st.bestRank) {
        st.bestRank = rank;
        st.current = src;
        out.endpointChanged = true;
      }
      if (nowMs - st.windowStartMs >= kLearningWindowMs) {
        LearnOutcome c = confirm(st, st.current);
        c.endpointChanged = c.endpointChanged || out.endpointChanged;
        return c;
      }
      return out;
    }
    case Learning::Off:
      break;
  }
  return out;
}

LearnOutcome learnOnTimer(LearnState& st, int64_t nowMs) {
  LearnOutcome out;
  if (st.inWindow && !st.confirmed && nowMs - st.windowStartMs >= kLearningWindowMs) {
    st.inWindow = false;
    st.confirmed = true;
    out.event = LearnEvent::Learned;
  }
  return out;
}

}  // namespace ngrelay
