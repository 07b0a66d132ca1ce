// BUNDLE on an I/O thread (RFC 8843 §9): what arrives on a bundle transport is, after SRTP unprotection,
// handed to the member stream (m= line) it belongs to, found by (a) the MID RTP header extension, which also
// teaches the member its SSRC, (b) a learned SSRC, (c) the payload type (unique per m= line). RTCP goes by
// the sender SSRC of its first packet, else to the transport's own RTCP stream. Members are on the transport's
// thread (the engine sees to it), so the member's state is used here as its own packets would use it.
#include <sys/epoll.h>

#include <cstring>

#include "bundle.hpp"
#include "io_thread.hpp"

namespace ngrelay {

bool rtpHeaderExtension(const uint8_t* p, size_t len, int id, const uint8_t** value, size_t* valueLen) {
  if (len < 12 || !(p[0] & 0x10) || id <= 0) return false;
  const size_t headerEnd = 12 + size_t(p[0] & 0x0f) * 4;
  if (headerEnd + 4 > len) return false;
  const uint16_t profile = uint16_t((p[headerEnd] << 8) | p[headerEnd + 1]);
  const size_t words = size_t((p[headerEnd + 2] << 8) | p[headerEnd + 3]);
  size_t i = headerEnd + 4;
  const size_t end = i + words * 4;
  if (end > len) return false;
  if (profile == 0xBEDE) {
    if (id > 14) return false;
    while (i < end) {
      const uint8_t b = p[i];
      if (b == 0) {  // padding
        ++i;
        continue;
      }
      const int elemId = b >> 4;
      const size_t elemLen = size_t(b & 0x0f) + 1;
      if (elemId == 15) return false;  // reserved: stop parsing (RFC 8285 §4.2)
      if (i + 1 + elemLen > end) return false;
      if (elemId == id) {
        *value = p + i + 1;
        *valueLen = elemLen;
        return true;
      }
      i += 1 + elemLen;
    }
    return false;
  }
  if ((profile & 0xfff0) == 0x1000) {
    if (id > 255) return false;
    while (i < end) {
      const uint8_t elemId = p[i];
      if (elemId == 0) {
        ++i;
        continue;
      }
      if (i + 2 > end) return false;
      const size_t elemLen = p[i + 1];
      if (i + 2 + elemLen > end) return false;
      if (elemId == id) {
        *value = p + i + 2;
        *valueLen = elemLen;
        return true;
      }
      i += 2 + elemLen;
    }
  }
  return false;
}

void IoThread::setBundle(Stream* s, const BundleTable* table) {
  std::vector<BundleRoute> routes;
  if (table) {
    routes.reserve(table->size());
    for (const BundleMemberSpec& m : *table) {
      BundleRoute r;
      r.member = m.member;
      r.config = m.config;
      // SSRCs learned before a rule change stay with the member.
      for (const BundleRoute& old : s->bundleRoutes)
        if (old.member == m.member) {
          r.ssrcs = old.ssrcs;
          r.ssrcCount = old.ssrcCount;
          r.nextSsrc = old.nextSsrc;
        }
      routes.push_back(std::move(r));
    }
  }
  // Members that left the table read their own socket again; new ones stop (media reaches them through the
  // transport only, and their own port was never given to the party).
  auto inTable = [&](const std::vector<BundleRoute>& list, const Stream* m) {
    for (const BundleRoute& r : list)
      if (r.member == m) return true;
    return false;
  };
  for (const BundleRoute& old : s->bundleRoutes) {
    Stream* m = old.member;
    if (m == s || inTable(routes, m) || !m->bundledAway) continue;
    m->bundledAway = false;
    if (m->ioFd >= 0) {
      epoll_event ev{};
      ev.events = EPOLLIN | EPOLLET;
      ev.data.ptr = m;
      epoll_ctl(epfd_, EPOLL_CTL_ADD, m->ioFd, &ev);
    }
  }
  s->midExtId = -1;
  for (const BundleRoute& r : routes) {
    Stream* m = r.member;
    if (s->midExtId < 0 && r.config->midExtId > 0) s->midExtId = r.config->midExtId;
    if (m == s || m->bundledAway) continue;
    m->bundledAway = true;
    if (m->ioFd >= 0) epoll_ctl(epfd_, EPOLL_CTL_DEL, m->ioFd, nullptr);
  }
  s->bundleRoutes.swap(routes);
  s->bundleDemux = !s->bundleRoutes.empty();
}

Stream* IoThread::bundleTarget(Stream* x, Stream* t, const uint8_t* p, size_t len, bool isRtp) {
  std::vector<BundleRoute>& routes = x->bundleRoutes;
  if (!isRtp) {
    // RTCP: the sender SSRC of the first packet of the compound (SR/RR and feedback alike, RFC 8843 §9.2).
    if (len >= 8) {
      uint32_t ssrc;
      std::memcpy(&ssrc, p + 4, 4);
      ssrc = __builtin_bswap32(ssrc);
      for (BundleRoute& r : routes)
        if (r.hasSsrc(ssrc)) return r.member == x ? t : (r.member->muxRtcp ? r.member->muxRtcp : t);
    }
    return t;  // unknown sender: the transport's own RTCP stream (the first m= line)
  }
  uint32_t ssrc;
  std::memcpy(&ssrc, p + 8, 4);
  ssrc = __builtin_bswap32(ssrc);
  BundleRoute* found = nullptr;
  // (a) MID header extension.
  const uint8_t* mid = nullptr;
  size_t midLen = 0;
  if (x->midExtId > 0 && rtpHeaderExtension(p, len, x->midExtId, &mid, &midLen)) {
    for (BundleRoute& r : routes) {
      const std::string& m = r.config->mid;
      if (!m.empty() && m.size() == midLen && std::memcmp(m.data(), mid, midLen) == 0) {
        found = &r;
        break;
      }
    }
    if (found && !found->hasSsrc(ssrc)) {
      // The MID is authoritative: an SSRC that moved to another m= line is forgotten there.
      for (BundleRoute& r : routes)
        if (&r != found) r.forgetSsrc(ssrc);
      found->learnSsrc(ssrc);
    }
  }
  // (b) a learned SSRC.
  if (!found) {
    for (BundleRoute& r : routes)
      if (r.hasSsrc(ssrc)) {
        found = &r;
        break;
      }
  }
  // (c) the payload type.
  if (!found) {
    const uint8_t pt = p[1] & 0x7f;
    for (BundleRoute& r : routes)
      if (r.config->hasPayloadType(pt)) {
        found = &r;
        found->learnSsrc(ssrc);
        break;
      }
  }
  return found ? found->member : nullptr;
}

}  // namespace ngrelay
