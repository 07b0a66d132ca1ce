// The JS-thread side of the engine: binds sockets, keeps the registry of streams, and turns rule changes
// into commands for the owning I/O threads. Commands are queued without waiting; sync() waits for all of
// them at once and only then frees what they retired (a stream's memory, SRTP contexts, its socket).
#include "engine.hpp"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <new>
#include <stdexcept>
#include <string>

namespace ngrelay {

namespace {

std::string errnoName(int e) {
  switch (e) {
    case EADDRINUSE: return "EADDRINUSE";
    case EADDRNOTAVAIL: return "EADDRNOTAVAIL";
    case EACCES: return "EACCES";
    case EPERM: return "EPERM";
    case EINVAL: return "EINVAL";
    case EAFNOSUPPORT: return "EAFNOSUPPORT";
    case EMFILE: return "EMFILE";
    case ENFILE: return "ENFILE";
    case ENOBUFS: return "ENOBUFS";
    case ENOMEM: return "ENOMEM";
    case ENOENT: return "ENOENT";
    case ENOTDIR: return "ENOTDIR";
    case EEXIST: return "EEXIST";
    case ENOSPC: return "ENOSPC";
    case EROFS: return "EROFS";
    case EDQUOT: return "EDQUOT";
    case EIO: return "EIO";
    default: return "EUNKNOWN";
  }
}

bool isWildcard(const SockAddr& a) {
  if (a.family() == AF_INET) return a.u.v4.sin_addr.s_addr == htonl(INADDR_ANY);
  return std::memcmp(&a.u.v6.sin6_addr, &in6addr_any, sizeof(in6_addr)) == 0;
}

}  // namespace

Engine::Engine(int threads, int receiveBufferBytes, EventSink sink, const SchedulingSpec& scheduling,
               const SchedulingSpec& idleScheduling, FenceSink fenceSink, const DtlsCertificateSpec& dtls)
    : receiveBufferBytes_(receiveBufferBytes), idleScheduling_(idleScheduling), socketPool_(receiveBufferBytes) {
  dtls_ = std::make_unique<DtlsIdentity>(dtls);
  if (threads <= 0) threads = int(std::max(1u, std::thread::hardware_concurrency()));
  relay_ = std::make_unique<EventRelay>(std::move(sink), std::move(fenceSink), idleScheduling);
  EventRelay* relay = relay_.get();
  SocketPool* pool = &socketPool_;
  relay->setChore([pool] { pool->fill(); });
  EventSink toRelay = [relay](std::vector<EngineEvent>&& batch) { relay->push(std::move(batch)); };
  for (int i = 0; i < threads; ++i) threads_.push_back(std::make_unique<IoThread>(i, toRelay, scheduling));
  for (auto& t : threads_) {
    t->setDtlsIdentity(dtls_.get());
    t->start();
  }
  dirty_.assign(threads_.size(), 0);
  for (size_t i = 0; i < threads_.size(); ++i) threadIndex_[threads_[i].get()] = i;
}

void Engine::bury(Graveyard& g) {
  // A retired stream's rule left the kernel when its owner ran Detach, which this batch's fence covers.
  if (kernel_)
    for (const StreamPtr& s : g.streams) kernel_->freeSlot(s->kernelSlot);
  g.clear();
}

void Engine::buryLater(Graveyard& g) {
  // The sockets are closed on the event relay's thread (EventRelay::closeLater), off the JS thread; a port the
  // allocator hands out again before that is waited for (addStream's retry), and sync() waits for them all.
  relay_->closeLater(std::move(g.fds));
  bury(g);
}

std::string Engine::enableKernelPath(const KernelPathSpec& spec) {
  if (closed_) return "engine is closed";
  if (kernel_) return "";
  if (!streams_.empty()) return "the kernel path must be enabled before streams are added";
  std::string why;
  kernel_ = KernelPath::open(spec, why);
  if (!kernel_) return why.empty() ? "unknown failure" : why;
  for (auto& t : threads_) t->setKernel(kernel_.get());
  return "";
}

void Engine::Graveyard::clear() {
  streams.clear();
  contexts.clear();
  for (int fd : fds) ::close(fd);
  fds.clear();
}

Engine::~Engine() { close(); }

int Engine::schedulingError() const {
  for (const auto& t : threads_)
    if (t->schedulingError() != 0) return t->schedulingError();
  return 0;
}

bool Engine::privateDescriptorTables() const {
  for (const auto& t : threads_)
    if (!t->privateFds()) return false;
  return !threads_.empty();
}

int Engine::openSocket(const StreamSpec& spec, SockAddr& local) {
  if (!SockAddr::parse(spec.localAddress, spec.localPort, local))
    throw BindFailure{"EINVAL", "not a literal IP address: " + spec.localAddress};
  if (isWildcard(local)) throw BindFailure{"EINVAL", "refusing to bind a wildcard address"};
  bool refill = false;
  int fd = socketPool_.take(local.family(), refill);
  if (refill) relay_->wakeChore();
  if (fd < 0) fd = makeMediaSocket(local.family(), receiveBufferBytes_);
  if (fd < 0) throw BindFailure{errnoName(errno), std::string("socket: ") + std::strerror(errno)};
  if (bind(fd, &local.u.sa, local.len) != 0) {
    int e = errno;
    ::close(fd);
    throw BindFailure{errnoName(e), "bind " + spec.localAddress + ":" + std::to_string(spec.localPort) + ": " +
                                        std::strerror(e)};
  }
  return fd;
}

Stream* Engine::resolveSink(int64_t sinkId) const {
  if (sinkId < 0) return nullptr;
  auto it = streams_.find(int32_t(sinkId));
  if (it == streams_.end()) return nullptr;
  Stream* s = it->second.stream.get();
  if (s->muxedWith < 0) return s;
  // Sending to a muxed RTCP party goes out of (and to the endpoint of) its RTP stream.
  auto parent = streams_.find(int32_t(s->muxedWith));
  return parent == streams_.end() ? nullptr : parent->second.stream.get();
}

void Engine::queueOn(const Command& cmd, bool webrtc) {
  Command c = cmd;
  c.done = nullptr;
  // Fence bookkeeping (see fence()): which commands the JS thread must see acknowledged before it replies.
  // Setting up a stream attached in this same batch never needs it (no party knows the port yet). Otherwise:
  // what the JS thread reads back (a quality copy, a play DTMF outcome), a recording (its file outlives the
  // command), a stream whose destination its owner thread decides (ICE), and every change while the kernel
  // path is on (the program forwards without the owner's look at its queue: see IoThread::drain).
  const bool setUp = c.type == CommandType::Attach || c.type == CommandType::SetSink || c.type == CommandType::Update;
  if (c.type == CommandType::Attach) {
    attachedUnfenced_.insert(c.stream);
  } else if (!unfencedNeedsAck_ && (!setUp || attachedUnfenced_.count(c.stream) == 0)) {
    const bool readBack = c.type == CommandType::ReadQuality || c.type == CommandType::PlayDtmf ||
                          c.type == CommandType::SetRecording || c.type == CommandType::KernelRevoke;
    if (readBack || webrtc || kernel_) unfencedNeedsAck_ = true;
  }
  size_t i = threadIndex_.at(c.stream->owner);
  if (!dirty_[i]) {
    dirty_[i] = 1;
    ++pendingThreads_;
  }
  c.stream->owner->enqueue(c);
}

void Engine::runOnOwners(const std::vector<Command>& cmds) {
  for (const Command& c : cmds) queueOn(c);
}

void Engine::sync() {
  // What earlier asynchronous fences retired may still be in use on threads this batch did not address:
  // then every thread gets the fence.
  if (!retiredByFence_.empty())
    for (size_t i = 0; i < threads_.size(); ++i)
      if (!dirty_[i]) {
        dirty_[i] = 1;
        ++pendingThreads_;
      }
  if (pendingThreads_ > 0) {
    // Per thread the queue is FIFO: the fence's acknowledgement covers everything queued before it.
    Completion done(pendingThreads_);
    for (size_t i = 0; i < threads_.size(); ++i) {
      if (!dirty_[i]) continue;
      dirty_[i] = 0;
      threads_[i]->submit(Command{CommandType::Fence, nullptr, Rule{}, nullptr, &done, nullptr});
    }
    pendingThreads_ = 0;
    done.wait();
  }
  attachedUnfenced_.clear();
  unfencedNeedsAck_ = false;
  // FIFO per thread: every earlier fence has passed too (their notifications still arrive, and find nothing).
  bury(graveyard_);
  for (auto& [id, g] : retiredByFence_) bury(g);
  retiredByFence_.clear();
  relay_->closeNow();  // and what earlier fences retired: after sync() every removed stream's port is free
}

int64_t Engine::fence() {
  const uint64_t id = ++lastFence_;
  if (closed_) return int64_t(id);
  const bool wait = unfencedNeedsAck_;
  attachedUnfenced_.clear();
  unfencedNeedsAck_ = false;
  const bool retires = !graveyard_.empty();
  if (retires) {
    retiredByFence_.emplace_back(id, std::move(graveyard_));
    graveyard_ = Graveyard{};
  }
  if (pendingThreads_ == 0) {  // nothing queued: it has passed already
    if (retires) relay_->pushFence(id);  // still told, so that fencePassed frees what it retired
    return -int64_t(id);
  }
  // Freed by the thread that acks it last, which tells the relay only when someone needs telling: the JS
  // thread waiting, or what the batch retired waiting to be freed.
  auto* f = new AsyncFence(pendingThreads_, id, wait || retires ? relay_.get() : nullptr);
  for (size_t i = 0; i < threads_.size(); ++i) {
    if (!dirty_[i]) continue;
    dirty_[i] = 0;
    Command c{CommandType::Fence, nullptr, Rule{}, nullptr, nullptr, nullptr};
    c.fence = f;
    // Nobody waits: queued without a wake-up (each costs the JS thread a write and the I/O thread a wake-up,
    // ~30-60 us in a VM). The commands still take effect before the thread reads another packet
    // (IoThread::drain); the fence passes when the thread next wakes, at the latest at wakeQueued().
    if (wait) threads_[i]->submit(c);
    else threads_[i]->enqueue(c);
  }
  pendingThreads_ = 0;
  return wait ? int64_t(id) : -int64_t(id);
}

void Engine::wakeQueued() {
  for (auto& t : threads_)
    if (t->hasCommands()) t->wake();
}

void Engine::fencePassed(uint64_t id) {
  for (auto it = retiredByFence_.begin(); it != retiredByFence_.end(); ++it) {
    if (it->first != id) continue;
    buryLater(it->second);
    retiredByFence_.erase(it);
    return;
  }
}

void Engine::addReferrer(int64_t sinkId, int32_t id) {
  if (sinkId >= 0) referrers_[int32_t(sinkId)].insert(id);
}

void Engine::dropReferrer(int64_t sinkId, int32_t id) {
  if (sinkId < 0) return;
  auto it = referrers_.find(int32_t(sinkId));
  if (it == referrers_.end()) return;
  it->second.erase(id);
  if (it->second.empty()) referrers_.erase(it);
}

void Engine::relinkSinks(int32_t changedId) {
  // Streams naming `changedId` as sink, and (rtcp-mux) streams naming its muxed RTCP stream, which resolves
  // to this stream's socket.
  std::vector<int32_t> affected;
  auto collect = [&](int32_t sinkId) {
    auto it = referrers_.find(sinkId);
    if (it != referrers_.end()) affected.insert(affected.end(), it->second.begin(), it->second.end());
  };
  collect(changedId);
  auto child = muxChild_.find(changedId);
  if (child != muxChild_.end()) collect(child->second);

  std::vector<Command> cmds;
  for (int32_t id : affected) {
    auto it = streams_.find(id);
    if (it == streams_.end()) continue;
    Record& rec = it->second;
    Stream* now = resolveSink(rec.rule.sink);
    if (now != rec.resolvedSink) {
      rec.resolvedSink = now;
      cmds.push_back(Command{CommandType::SetSink, rec.stream.get(), Rule{}, now, nullptr, nullptr});
    }
  }
  runOnOwners(cmds);
}

void Engine::dropDtlsSources(int32_t id, Record& rec) {
  for (int32_t source : {rec.dtlsInSource, rec.dtlsOutSource}) {
    auto it = source >= 0 ? dtlsReferrers_.find(source) : dtlsReferrers_.end();
    if (it == dtlsReferrers_.end()) continue;
    it->second.erase(id);
    if (it->second.empty()) dtlsReferrers_.erase(it);
  }
  rec.dtlsInSource = rec.dtlsOutSource = -1;
}

void Engine::setDtlsSources(int32_t id, Record& rec, const StreamCryptoSpec& crypto, Command& cmd) {
  dropDtlsSources(id, rec);
  const Stream* s = rec.stream.get();
  // The usual sources: this socket's own handshake (a muxed RTCP stream: its RTP stream's), the sink's.
  const int32_t usualIn = s->muxedWith >= 0 ? int32_t(s->muxedWith) : id;
  const int32_t usualOut = rec.resolvedSink ? rec.resolvedSink->id : -1;
  auto resolve = [&](int32_t dtlsOf, int32_t usual, int32_t& slot) -> const Stream* {
    if (dtlsOf < 0 || dtlsOf == usual) return nullptr;
    auto it = streams_.find(dtlsOf);
    if (it == streams_.end()) return nullptr;
    slot = dtlsOf;
    dtlsReferrers_[dtlsOf].insert(id);
    return it->second.stream.get();
  };
  cmd.dtlsInSource = resolve(crypto.inbound.dtlsOf, usualIn, rec.dtlsInSource);
  cmd.dtlsOutSource = resolve(crypto.outbound.dtlsOf, usualOut, rec.dtlsOutSource);
}

void Engine::unlinkDtlsSources(int32_t id) {
  auto it = dtlsReferrers_.find(id);
  if (it == dtlsReferrers_.end()) return;
  std::vector<Command> cmds;
  for (int32_t referrer : it->second) {
    auto r = streams_.find(referrer);
    if (r == streams_.end()) continue;
    Record& rec = r->second;
    if (rec.dtlsInSource == id) rec.dtlsInSource = -1;
    if (rec.dtlsOutSource == id) rec.dtlsOutSource = -1;
    Command c{CommandType::SetDtlsSources, rec.stream.get(), Rule{}, nullptr, nullptr, nullptr};
    auto keep = [&](int32_t source) -> const Stream* {
      auto s = source >= 0 ? streams_.find(source) : streams_.end();
      return s == streams_.end() ? nullptr : s->second.stream.get();
    };
    c.dtlsInSource = keep(rec.dtlsInSource);
    c.dtlsOutSource = keep(rec.dtlsOutSource);
    cmds.push_back(c);
  }
  dtlsReferrers_.erase(it);
  runOnOwners(cmds);
}

void Engine::prepareCrypto(Record& rec, const StreamCryptoSpec& crypto,
                           std::vector<std::unique_ptr<SrtpContext>>& retired) {
  auto make = [](const SrtpKeySpec& k) -> std::unique_ptr<SrtpContext> {
    if (!k.present) return nullptr;
    std::string err;
    std::unique_ptr<SrtpContext> ctx = SrtpContext::create(k.params(), &err);
    if (!ctx) throw std::invalid_argument("SRTP keys rejected: " + err);
    return ctx;
  };
  // Build both first, so a bad key leaves the record as it was.
  const bool inChanged = !(crypto.inbound == rec.crypto.inbound);
  const bool outChanged = !(crypto.outbound == rec.crypto.outbound);
  std::unique_ptr<SrtpContext> in = inChanged ? make(crypto.inbound) : nullptr;
  std::unique_ptr<SrtpContext> out = outChanged ? make(crypto.outbound) : nullptr;
  if (inChanged) {
    retired.push_back(std::move(rec.srtpIn));
    rec.srtpIn = std::move(in);
  }
  if (outChanged) {
    retired.push_back(std::move(rec.srtpOut));
    rec.srtpOut = std::move(out);
  }
  rec.crypto = crypto;
}

bool Engine::passThrough(const Record& rec) {
  if (!rec.srtpIn || !rec.srtpOut || rec.crypto.recrypt) return false;
  return SrtpContext::sameKeys(rec.crypto.inbound.params(), rec.crypto.outbound.params());
}

void Engine::addStream(const StreamSpec& spec, const Rule& rule, const StreamCryptoSpec& crypto) {
  if (closed_) throw std::invalid_argument("engine is closed");
  if (spec.id <= 0) throw std::invalid_argument("stream id must be positive");
  if (streams_.count(spec.id)) throw std::invalid_argument("stream id already in use");
  Record rec;
  std::vector<std::unique_ptr<SrtpContext>> retired;
  prepareCrypto(rec, crypto, retired);  // before the socket: a bad key binds nothing
  StreamPtr s(new (streamArena_.allocate()) Stream(), StreamDeleter{&streamArena_});
  s->id = spec.id;
  s->isRtcp = spec.isRtcp;
  s->muxedWith = spec.muxedWith;
  if (spec.muxedWith >= 0) {
    auto parent = streams_.find(int32_t(spec.muxedWith));
    if (parent == streams_.end()) throw std::invalid_argument("muxedWith names no stream");
    Stream* p = parent->second.stream.get();
    if (p->fd < 0 || p->isRtcp) throw std::invalid_argument("muxedWith must name an RTP stream with its own socket");
    if (muxChild_.count(p->id)) throw std::invalid_argument("that RTP stream already has a muxed RTCP stream");
    s->muxParent = p;
    s->owner = p->owner;
    s->local = p->local;
  } else {
    try {
      s->fd = openSocket(spec, s->local);
    } catch (const BindFailure& f) {
      // A removed socket is closed only once its fence passed: close what is retired and try once more, when
      // that is what held the port or the descriptor this one needs.
      const bool heldByRetired = f.code == "EADDRINUSE" || f.code == "EMFILE" || f.code == "ENFILE";
      if (!heldByRetired || (graveyard_.fds.empty() && retiredByFence_.empty() && !relay_->closesPending())) throw;
      sync();
      s->fd = openSocket(spec, s->local);
    }
    auto with = spec.threadOf >= 0 ? streams_.find(int32_t(spec.threadOf)) : streams_.end();
    s->owner = with != streams_.end() ? with->second.stream->owner : threads_[nextThread_++ % threads_.size()].get();
    if (kernel_ && !spec.isRtcp) {
      // Counted from the socket's first packet on (no party knows the port yet): see KernelPath::registerSocket.
      s->kernelSlot = kernel_->allocSlot();  // -1 (all taken): stays in userspace
      if (s->kernelSlot > 0 && !kernel_->registerSocket(kernel_->fds(), s->local, s->kernelSlot)) {
        kernel_->freeSlot(s->kernelSlot);
        s->kernelSlot = -1;
      }
    }
  }
  Stream* raw = s.get();
  rec.rule = rule;
  rec.resolvedSink = resolveSink(rule.sink);
  Stream* sink = rec.resolvedSink;
  rec.stream = std::move(s);
  streams_.emplace(spec.id, std::move(rec));
  addReferrer(rule.sink, spec.id);
  if (spec.muxedWith >= 0) muxChild_[int32_t(spec.muxedWith)] = spec.id;
  Record& stored = streams_.at(spec.id);
  // Where packets to this party go, published before any thread can see the stream: a stream on another
  // thread may forward to it (its sink) before this stream's own thread has run the Attach, which a silent
  // fence (see fence()) no longer waits for. The Attach stores the same value again (resetLearning), unless an
  // Update published a newer one meanwhile (PublishedAddr::storeApplied).
  stored.endpointGen = 1;
  raw->endpoint.publish(rule.expected, stored.endpointGen);
  Command attach{CommandType::Attach, raw, rule, sink, nullptr, nullptr};
  attach.endpointGen = stored.endpointGen;
  attach.srtpIn = stored.srtpIn.get();
  attach.srtpOut = stored.srtpOut.get();
  attach.srtpPassThrough = passThrough(stored);
  attach.dtlsInOf = crypto.inbound.dtlsOf;
  attach.dtlsOutOf = crypto.outbound.dtlsOf;
  attach.dtlsInResume = crypto.inbound.resume;
  attach.dtlsOutResume = crypto.outbound.resume;
  setDtlsSources(spec.id, stored, crypto, attach);
  queueOn(attach);
  relinkSinks(spec.id);
  const int32_t transport = bundleTransportOf(rule);
  if (transport >= 0) bundleMembers_[transport].insert(spec.id);
  refreshBundle(transport);
  if (transport != spec.id && bundleMembers_.count(spec.id)) refreshBundle(spec.id);  // members named it first
}

int32_t Engine::bundleTransportOf(const Rule& r) { return r.bundle ? r.bundle->transport : -1; }

void Engine::leaveBundle(int32_t transportId, int32_t id) {
  auto m = bundleMembers_.find(transportId);
  if (m != bundleMembers_.end() && m->second.erase(id) && m->second.empty()) bundleMembers_.erase(m);
}

void Engine::refreshBundle(int32_t transportId) {
  if (transportId < 0) return;
  auto t = streams_.find(transportId);
  if (t == streams_.end()) return;
  Stream* transport = t->second.stream.get();
  auto table = std::make_shared<BundleTable>();
  auto members = bundleMembers_.find(transportId);
  if (members != bundleMembers_.end()) {
    // The transport's own m= line first (an RTCP sender it does not know goes there), then by id.
    std::vector<int32_t> ids(members->second.begin(), members->second.end());
    std::sort(ids.begin(), ids.end(), [&](int32_t a, int32_t b) { return (a == transportId) != (b == transportId) ? a == transportId : a < b; });
    for (int32_t id : ids) {
      auto m = streams_.find(id);
      if (m == streams_.end()) continue;
      Stream* s = m->second.stream.get();
      // Only RTP streams with a socket of their own on the transport's thread (see StreamSpec::threadOf); any
      // other stays outside the group and keeps reading its own socket.
      if (s->isRtcp || s->muxedWith >= 0 || s->owner != transport->owner || transport->isRtcp || transport->muxedWith >= 0) continue;
      table->push_back(BundleMemberSpec{s, m->second.rule.bundle});
    }
  }
  Command c{CommandType::SetBundle, transport, Rule{}, nullptr, nullptr, nullptr};
  if (!table->empty()) c.bundle = std::move(table);
  queueOn(c);
}

void Engine::updateStream(int32_t id, const Rule& rule, const StreamCryptoSpec& crypto) {
  if (closed_) throw std::invalid_argument("engine is closed");
  auto it = streams_.find(id);
  if (it == streams_.end()) throw std::invalid_argument("unknown stream id");
  // Replaced contexts die at the next sync(), after the owner thread switched to the new ones.
  std::vector<std::unique_ptr<SrtpContext>> retired;
  prepareCrypto(it->second, crypto, retired);
  dropReferrer(it->second.rule.sink, id);
  addReferrer(rule.sink, id);
  // ICE (and a BUNDLE transport's ICE pair) moves the destination on the owner thread alone. Without it the
  // new destination is known here, and published now (as addStream does), since the Update may wait in the
  // queue of an idle owner thread while streams on other threads already forward to this party (see fence()).
  const Rule& old = it->second.rule;
  const bool webrtc = old.ice || old.dtls || old.bundle || rule.ice || rule.dtls || rule.bundle;
  if (!webrtc && updateResetsLearning(old, rule)) {
    it->second.stream->endpoint.publish(rule.expected, ++it->second.endpointGen);
    it->second.stream->confirmed.store(false, std::memory_order_relaxed);
  }
  const int32_t oldTransport = bundleTransportOf(old);
  const int32_t newTransport = bundleTransportOf(rule);
  it->second.rule = rule;
  it->second.resolvedSink = resolveSink(rule.sink);
  if (kernel_) {
    // Streams that send to this one may be in the kernel path with its old endpoint: they come back up, and
    // go down again only once this Update has been applied (ruleGen == appliedGen, kernel_handover.cpp).
    it->second.stream->ruleGen.fetch_add(1, std::memory_order_acq_rel);
    std::vector<int32_t> senders;
    for (int32_t sinkId : {id, muxChild_.count(id) ? muxChild_.at(id) : int32_t(-1)}) {
      auto r = referrers_.find(sinkId);
      if (r != referrers_.end()) senders.insert(senders.end(), r->second.begin(), r->second.end());
    }
    for (int32_t sender : senders) {
      auto s = streams_.find(sender);
      if (s != streams_.end() && s->second.stream->kernelSlot > 0)
        queueOn(Command{CommandType::KernelRevoke, s->second.stream.get(), Rule{}, nullptr, nullptr, nullptr});
    }
  }
  Command update{CommandType::Update, it->second.stream.get(), rule, it->second.resolvedSink, nullptr, nullptr};
  update.srtpIn = it->second.srtpIn.get();
  update.srtpOut = it->second.srtpOut.get();
  update.srtpPassThrough = passThrough(it->second);
  update.dtlsInOf = crypto.inbound.dtlsOf;
  update.dtlsOutOf = crypto.outbound.dtlsOf;
  update.dtlsInResume = crypto.inbound.resume;
  update.dtlsOutResume = crypto.outbound.resume;
  setDtlsSources(id, it->second, crypto, update);
  update.endpointGen = it->second.endpointGen;
  queueOn(update, webrtc);
  for (auto& ctx : retired)
    if (ctx) graveyard_.contexts.push_back(std::move(ctx));
  // After the member's Update (FIFO on their common thread): the member table with its new keys.
  if (oldTransport != newTransport && oldTransport >= 0) {
    leaveBundle(oldTransport, id);
    refreshBundle(oldTransport);
  }
  if (newTransport >= 0) {
    bundleMembers_[newTransport].insert(id);
    refreshBundle(newTransport);
  }
}

void Engine::removeStream(int32_t id) {
  if (closed_) return;
  auto it = streams_.find(id);
  if (it == streams_.end()) return;
  StreamPtr s = std::move(it->second.stream);
  // The I/O threads may use the stream and its SRTP contexts until they have run Detach and the re-pointing
  // of the streams that sent to it: both are kept until the next sync().
  if (it->second.srtpIn) graveyard_.contexts.push_back(std::move(it->second.srtpIn));
  if (it->second.srtpOut) graveyard_.contexts.push_back(std::move(it->second.srtpOut));
  dropReferrer(it->second.rule.sink, id);
  dropDtlsSources(id, it->second);
  const int32_t transport = bundleTransportOf(it->second.rule);
  streams_.erase(it);
  // Nobody may take keys from it once it is freed (as relinkSinks below does for the streams sending to it).
  unlinkDtlsSources(id);
  if (transport >= 0) {
    // The transport stops handing it packets before its Detach runs (same thread, FIFO).
    leaveBundle(transport, id);
    if (transport != id) refreshBundle(transport);
  }
  if (s->muxedWith >= 0) {
    auto child = muxChild_.find(int32_t(s->muxedWith));
    if (child != muxChild_.end() && child->second == id) muxChild_.erase(child);
  }
  queueOn(Command{CommandType::Detach, s.get(), Rule{}, nullptr, nullptr, nullptr});
  auto fed = streamRecording_.find(id);
  if (fed != streamRecording_.end()) {
    auto r = recordings_.find(fed->second);
    if (r != recordings_.end()) r->second.streams.erase(id);
    streamRecording_.erase(fed);
  }
  // Nobody may send out of this socket any more before it is closed (its fd number could be reused).
  relinkSinks(id);
  muxChild_.erase(id);  // a muxed RTCP stream left behind keeps its id but no socket
  // s->fd stays as it is: the owner thread reads it when it runs Detach (to give back its own copy).
  if (s->fd >= 0) graveyard_.fds.push_back(s->fd);
  graveyard_.streams.push_back(std::move(s));
}

int64_t Engine::lastPacketMs(int32_t id) const {
  auto it = streams_.find(id);
  if (it == streams_.end()) return 0;
  const Stream* s = it->second.stream.get();
  int64_t ms = s->lastPacketMs.load(std::memory_order_relaxed);
  KernelSlotCounters k;
  if (kernel_ && s->inKernelPub.load(std::memory_order_relaxed) && kernel_->read(s->kernelSlot, k))
    ms = std::max(ms, k.lastWallMs);
  return ms;
}

bool Engine::readSrtpProgress(int32_t id, SrtpProgress& inbound, SrtpProgress& outbound) const {
  auto it = streams_.find(id);
  if (it == streams_.end()) return false;
  // The contexts belong to the record (JS thread); the owner thread only publishes into them.
  // DTLS-keyed contexts are the owner thread's; the ones it published stay valid while the stream lives.
  const Stream* s = it->second.stream.get();
  const SrtpContext* in = it->second.srtpIn ? it->second.srtpIn.get() : s->dtlsInPub.load(std::memory_order_acquire);
  const SrtpContext* out = it->second.srtpOut ? it->second.srtpOut.get() : s->dtlsOutPub.load(std::memory_order_acquire);
  inbound = in ? in->progress() : SrtpProgress{};
  outbound = out ? out->progress() : SrtpProgress{};
  return true;
}

bool Engine::readDtlsKeys(int32_t id, DtlsSrtpMaterial& keys, std::string& peerFingerprint) const {
  auto it = streams_.find(id);
  if (it == streams_.end()) return false;
  Stream* s = it->second.stream.get();
  // Published key sets are immutable and kept until the stream goes (dtlsHistory).
  const DtlsSrtpMaterial* k = s->dtlsKeys.load(std::memory_order_acquire);
  if (!k) return false;
  keys = *k;
  std::lock_guard<std::mutex> g(s->dtlsStatusMutex);
  peerFingerprint = s->dtlsPeerFingerprint;
  return true;
}

bool Engine::readCounters(int32_t id, StreamSnapshot& out) const {
  auto it = streams_.find(id);
  if (it == streams_.end()) return false;
  const Stream* s = it->second.stream.get();
  out.packets = s->packets.get();
  out.bytes = s->bytes.get();
  out.errors = s->errors.get();
  out.srtpAuthFailed = s->srtpAuthFailed.get();
  out.srtpReplayed = s->srtpReplayed.get();
  out.hasSrtp = it->second.srtpIn != nullptr || it->second.srtpOut != nullptr || it->second.crypto.inbound.dtlsOf >= 0 ||
                it->second.crypto.outbound.dtlsOf >= 0;
  out.lastPacketMs = s->lastPacketMs.load(std::memory_order_relaxed);
  // A muxed RTCP party is reached at its RTP stream's endpoint.
  const Stream* ep = s;
  if (s->muxedWith >= 0) {
    auto parent = streams_.find(int32_t(s->muxedWith));
    ep = parent == streams_.end() ? nullptr : parent->second.stream.get();
  }
  if (ep) {
    out.endpoint = ep->endpoint.load();
    out.confirmed = ep->confirmed.load(std::memory_order_relaxed);
  } else {
    out.endpoint = SockAddr();
    out.confirmed = false;
  }
  uint64_t rtp = s->rtpState.load(std::memory_order_relaxed);
  out.hasRtp = (rtp >> 48) & 1;
  out.ssrc = uint32_t(rtp);
  out.seq = uint16_t(rtp >> 32);
  out.hasIce = it->second.rule.ice != nullptr;
  out.iceState = IceState(s->iceState.load(std::memory_order_relaxed));
  out.iceSelected = s->iceSelectedPub.load();
  out.iceChecksReceived = s->iceChecksReceived.get();
  out.iceChecksSent = s->iceChecksSent.get();
  out.iceStunRejected = s->iceStunRejected.get();
  out.iceConsentExpired = s->iceConsentExpired.get();
  out.iceLastConsentMs = s->iceLastConsentMs.load(std::memory_order_relaxed);
  out.bundleTransport = !bundleMembers_.count(id) ? false : !bundleMembers_.at(id).empty();
  out.bundleUnmatched = s->bundleUnmatched.get();
  out.hasDtls = it->second.rule.dtls != nullptr;
  if (out.hasDtls) {
    std::lock_guard<std::mutex> g(const_cast<Stream*>(s)->dtlsStatusMutex);
    out.dtlsState = s->dtlsState;
    out.dtlsActive = s->dtlsActive;
    out.dtlsProfile = s->dtlsProfile;
    out.dtlsPeerFingerprint = s->dtlsPeerFingerprint;
    out.dtlsError = s->dtlsError;
  }
  // One set of numbers: what the kernel path forwarded is added to what userspace received.
  out.kernelPath = kernel_ != nullptr;
  out.inKernel = s->inKernelPub.load(std::memory_order_relaxed);
  out.kernelPackets = 0;
  out.userspaceLastPacketMs = s->userspaceLastPacketMs();
  out.kernelLastPacketMs = 0;
  KernelSlotCounters k;
  if (kernel_ && s->kernelSlot > 0 && kernel_->read(s->kernelSlot, k)) {
    out.kernelPackets = k.packets;
    out.kernelLastPacketMs = k.lastWallMs;
    out.packets += k.packets;
    out.bytes += k.bytes;
    if (k.lastWallMs >= out.lastPacketMs && (k.lastRtp >> 48) & 1) {  // the kernel saw the newest packet
      out.hasRtp = true;
      out.ssrc = uint32_t(k.lastRtp);
      out.seq = uint16_t(k.lastRtp >> 32);
    }
    out.lastPacketMs = std::max(out.lastPacketMs, k.lastWallMs);
  }
  return true;
}

EngineTotalsSnapshot Engine::totals() const {
  EngineTotalsSnapshot t{0, 0, 0, 0, 0, 0, 0};
  for (const auto& th : threads_) {
    const ThreadTotals& x = th->totals();
    t.packets += x.packets.get();
    t.bytes += x.bytes.get();
    t.errors += x.errors.get();
    t.malformed += x.malformed.get();
    t.dropped += x.dropped.get();
  }
  t.kernelPackets = t.kernelBytes = 0;
  KernelSlotCounters k;
  if (kernel_ && kernel_->readTotals(k)) {
    t.kernelPackets = k.packets;
    t.kernelBytes = k.bytes;
    t.packets += k.packets;
    t.bytes += k.bytes;
  }
  return t;
}

void Engine::ensureWriter() {
  if (writer_) return;
  std::vector<RecordRing*> rings;
  for (auto& t : threads_) {
    rings_.push_back(std::make_unique<RecordRing>(kRecordRingBytes));
    t->setRing(rings_.back().get());
    rings.push_back(rings_.back().get());
  }
  writer_ = std::make_unique<PcapWriter>(std::move(rings), idleScheduling_);
}

void Engine::startRecording(const RecordingSpec& spec) {
  if (closed_) throw std::invalid_argument("engine is closed");
  if (spec.id <= 0) throw std::invalid_argument("recording id must be positive");
  if (recordings_.count(spec.id)) throw std::invalid_argument("recording id already in use");
  // O_APPEND + one write per record and no user-space buffer: the file is whole records at any instant.
  int flags = spec.append ? (O_WRONLY | O_APPEND | O_CLOEXEC) : (O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC);
  int fd = ::open(spec.path.c_str(), flags, 0640);
  if (fd < 0) {
    int e = errno;
    throw RecordingFailure{errnoName(e), std::string(spec.append ? "cannot open " : "cannot create ") + spec.path + ": " + std::strerror(e)};
  }
  // Appending: the header was written when the file was created; the caller cut the file to whole records.
  if (!spec.append) {
    uint8_t header[kPcapGlobalHeaderSize];
    buildPcapGlobalHeader(header, spec.link);
    if (::write(fd, header, sizeof(header)) != ssize_t(sizeof(header))) {
      int e = errno ? errno : ENOSPC;
      ::close(fd);
      ::unlink(spec.path.c_str());
      throw RecordingFailure{errnoName(e), "cannot write " + spec.path + ": " + std::strerror(e)};
    }
  }
  ensureWriter();
  auto rec = std::make_unique<Recording>();
  rec->id = spec.id;
  rec->fd = fd;
  rec->link = spec.link;
  rec->egress = spec.egress;
  rec->path = spec.path;
  recordings_[spec.id].rec = std::move(rec);
}

void Engine::setRecordingStreams(int32_t recordingId, const std::vector<int32_t>& streamIds) {
  if (closed_) throw std::invalid_argument("engine is closed");
  auto it = recordings_.find(recordingId);
  if (it == recordings_.end()) throw std::invalid_argument("unknown recording id");
  RecordingEntry& entry = it->second;
  std::unordered_set<int32_t> wanted;
  for (int32_t id : streamIds)
    if (streams_.count(id)) wanted.insert(id);
  std::vector<Command> cmds;
  for (int32_t id : entry.streams) {
    if (wanted.count(id)) continue;
    auto s = streams_.find(id);
    if (s != streams_.end())
      cmds.push_back(Command{CommandType::SetRecording, s->second.stream.get(), Rule{}, nullptr, nullptr, nullptr});
    streamRecording_.erase(id);
  }
  for (int32_t id : wanted) {
    if (entry.streams.count(id)) continue;
    // A stream feeds one recording: taking it over detaches it from the other one.
    auto prev = streamRecording_.find(id);
    if (prev != streamRecording_.end() && prev->second != recordingId) {
      auto other = recordings_.find(prev->second);
      if (other != recordings_.end()) other->second.streams.erase(id);
    }
    streamRecording_[id] = recordingId;
    cmds.push_back(
        Command{CommandType::SetRecording, streams_.at(id).stream.get(), Rule{}, nullptr, nullptr, entry.rec.get()});
  }
  entry.streams = std::move(wanted);
  runOnOwners(cmds);
}

static void snapshot(const Recording& r, RecordingSnapshot& out) {
  out.queued = r.queued.load(std::memory_order_relaxed);
  out.written = r.written.load(std::memory_order_relaxed);
  out.dropped = r.dropped.load(std::memory_order_relaxed);
  out.bytes = r.bytesWritten.load(std::memory_order_relaxed);
  out.lastErrno = r.lastErrno.load(std::memory_order_relaxed);
}

bool Engine::stopRecording(int32_t recordingId, RecordingSnapshot& out) {
  auto it = recordings_.find(recordingId);
  if (it == recordings_.end()) return false;
  if (!closed_) {
    setRecordingStreams(recordingId, {});
    sync();  // no I/O thread may queue a record for it once the file is closed
  }
  // No I/O thread queues for it any more; the writer writes what is queued, then closes the file.
  Recording* rec = it->second.rec.get();
  if (writer_) writer_->closeRecording(rec);
  else if (rec->fd >= 0) ::close(rec->fd);
  rec->fd = -1;
  snapshot(*rec, out);
  recordings_.erase(it);
  return true;
}

bool Engine::readRecording(int32_t recordingId, RecordingSnapshot& out) const {
  auto it = recordings_.find(recordingId);
  if (it == recordings_.end()) return false;
  snapshot(*it->second.rec, out);
  return true;
}

void Engine::close() {
  if (closed_) return;
  closed_ = true;
  for (auto& t : threads_) t->stopAndJoin();  // each runs what is still queued before it ends
  pendingThreads_ = 0;
  graveyard_.clear();
  for (auto& [id, g] : retiredByFence_) g.clear();
  retiredByFence_.clear();
  qualityBatches_.clear();  // the threads are gone: no copy is still being written
  relay_->stop();  // delivers the events the I/O threads queued last
  socketPool_.clear();  // after the relay's thread, which fills it
  // The I/O threads are gone: the writer writes everything still queued, then every file is closed.
  if (writer_) writer_->stop();
  for (auto& [id, entry] : recordings_)
    if (entry.rec->fd >= 0) ::close(entry.rec->fd);
  recordings_.clear();
  streamRecording_.clear();
  for (auto& [id, rec] : streams_)
    if (rec.stream->fd >= 0) ::close(rec.stream->fd);
  streams_.clear();
  referrers_.clear();
  muxChild_.clear();
  kernel_.reset();  // detaches the program; no I/O thread uses it any more
}

}  // namespace ngrelay
