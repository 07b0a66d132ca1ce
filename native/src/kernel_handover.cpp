// When a stream's RTP goes to the kernel fast path and when it comes back (IoThread members; the owner
// thread decides, so the choice and the packets it affects are ordered on one thread). A direction goes down
// only when userspace has nothing left to do with its packets and its rule cannot change without a command;
// every command on the stream (apply()), a rule change of its sink (KernelRevoke), and idleness bring it back.
#include "io_thread.hpp"

namespace ngrelay {

namespace {

/** Nothing in the engine needs to see this stream's RTP packets (but DTMF), and its own endpoint is settled. */
bool userspaceNotNeeded(const Stream& x) {
  if (x.kernelSlot <= 0 || x.isRtcp || x.muxedWith >= 0 || x.ioFd < 0) return false;
  const Rule& r = x.rule;
  if (r.userspaceOnly || r.strictSource || r.mediaHandover) return false;  // ICE/DTLS; per-packet source checks
  if (!x.learnSettled || !x.learn.confirmed || !x.learn.current.valid()) return false;  // learned from traffic
  // DTMF detection and blocking need only the telephone-event packets: those go up (kp_rule.pass_pt).
  // rtpAltered: block/silence media, or play DTMF (injecting, or renumbering the party's RTP afterwards).
  if (x.rec || x.rtpAltered) return false;
  if (x.hasCrypto && !x.srtpPassThrough) return false;  // SRTP is decrypted/encrypted here
  return true;
}

}  // namespace

const KernelFds& IoThread::kernelFds() {
  // The maps were created after this thread copied the descriptor table: take its own descriptors once.
  if (kernelFds_.rules < 0) {
    const KernelFds shared = kernel_->fds();
    kernelFds_.rules = acquireFd(shared.rules);
    kernelFds_.counters = acquireFd(shared.counters);
  }
  return kernelFds_;
}

bool IoThread::kernelHandOver(Stream* x) {
  if (nowMono_ < x->kernelRetryMs || !userspaceNotNeeded(*x)) return false;
  Stream* out = x->sink;
  if (!out || x->sinkFd < 0) return false;
  // The destination must stay what it is now: the sink's endpoint changes only by a command, and none is in
  // flight (a KernelRevoke follows every sink Update; see Engine::updateStream).
  if (out->appliedGen.load(std::memory_order_acquire) != out->ruleGen.load(std::memory_order_acquire)) return false;
  if (!out->settledPub.load(std::memory_order_acquire)) return false;
  SockAddr to = out->endpoint.load();
  if (!to.valid() || to.family() != out->local.family()) return false;
  collectDrops(x);  // what went up to the socket is either read or dropped
  if (!kernel_->install(kernelFds(), x->local, x->learn.current, out->local, to, x->kernelSlot,
                        x->socketReads + x->lastDrops, x->dtmfPt)) {
    x->kernelRetryMs = nowMono_ + 1000;  // refused (map full, no interface): userspace, and ask again later
    return false;
  }
  x->inKernel = true;
  x->inKernelPub.store(true, std::memory_order_relaxed);
  return true;
}

void IoThread::kernelConsumed(Stream* x) {
  collectDrops(x);
  kernel_->publishConsumed(x->kernelSlot, x->socketReads + x->lastDrops);
}

void IoThread::kernelTakeBack(Stream* s) {
  if (!s->inKernel) return;
  // The next packet reaches the socket; those forwarded before it have left already.
  kernel_->release(kernelFds(), s->local, s->kernelSlot);
  s->inKernel = false;
  s->inKernelPub.store(false, std::memory_order_relaxed);
  kernelRefresh(s);
}

void IoThread::kernelRefresh(Stream* s) {
  KernelSlotCounters k;
  if (!kernel_ || !kernel_->read(kernelFds(), s->kernelSlot, k)) return;
  const int64_t last = s->lastPacketMs.load(std::memory_order_relaxed);
  if (k.lastWallMs <= last) return;
  // The time about to be replaced is userspace's own unless this function stored it.
  if (last != s->kernelRefreshedMs.load(std::memory_order_relaxed)) s->userspaceSeenMs.store(last, std::memory_order_relaxed);
  s->kernelRefreshedMs.store(k.lastWallMs, std::memory_order_relaxed);
  s->lastPacketMs.store(k.lastWallMs, std::memory_order_relaxed);
}

}  // namespace ngrelay
