// Loading, attaching and feeding the kernel fast path (see kernel_path.hpp and native/bpf/fastpath.bpf.c).
// Built with the program only when CMake found clang and libbpf (NGRELAY_KERNEL_PATH); otherwise open()
// says why the fast path is unavailable and the engine forwards in userspace as always.
#include "kernel_path.hpp"

#include <errno.h>
#include <time.h>

#include <cstdlib>
#include <cstring>

#ifdef NGRELAY_KERNEL_PATH
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <net/if_arp.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <set>

#include "../bpf/fastpath_maps.h"

// The compiled program, embedded so that the addon is one file wherever it is installed.
asm(".pushsection .rodata\n"
    ".balign 8\n"
    ".global ngrelay_fastpath_obj\n"
    ".hidden ngrelay_fastpath_obj\n"
    "ngrelay_fastpath_obj:\n"
    ".incbin \"" NGRELAY_FASTPATH_OBJ "\"\n"
    ".global ngrelay_fastpath_obj_end\n"
    ".hidden ngrelay_fastpath_obj_end\n"
    "ngrelay_fastpath_obj_end:\n"
    ".popsection\n");
extern "C" const unsigned char ngrelay_fastpath_obj[];
extern "C" const unsigned char ngrelay_fastpath_obj_end[];
#endif

namespace ngrelay {

#ifndef NGRELAY_KERNEL_PATH

struct KernelPath::Impl {};

std::unique_ptr<KernelPath> KernelPath::open(const KernelPathSpec&, std::string& why) {
#ifdef NGRELAY_KERNEL_PATH_UNAVAILABLE
  why = NGRELAY_KERNEL_PATH_UNAVAILABLE;
#else
  why = "this build has no kernel fast path";
#endif
  return nullptr;
}
KernelPath::~KernelPath() = default;
int32_t KernelPath::allocSlot() { return -1; }
void KernelPath::freeSlot(int32_t) {}
KernelFds KernelPath::fds() const { return KernelFds{}; }
bool KernelPath::registerSocket(const KernelFds&, const SockAddr&, int32_t) { return false; }
bool KernelPath::install(const KernelFds&, const SockAddr&, const SockAddr&, const SockAddr&, const SockAddr&, int32_t,
                         uint64_t, int) {
  return false;
}
void KernelPath::publishConsumed(int32_t, uint64_t) {}
void KernelPath::release(const KernelFds&, const SockAddr&, int32_t) {}
void KernelPath::remove(const KernelFds&, const SockAddr&) {}
bool KernelPath::read(const KernelFds&, int32_t, KernelSlotCounters&) const { return false; }

#else

namespace {

// The classic tc filter's identity (old kernels without tcx): a crashed ngrelay's filter is found and removed
// by the next start. "NG".
constexpr uint32_t kTcHandle = 0x4e47;
constexpr uint32_t kTcPriority = 0x4e47;
// enum bpf_attach_type BPF_TCX_INGRESS (Linux 6.6); Debian 12's UAPI headers predate it.
constexpr int kTcxIngress = 46;

int quietLibbpf(enum libbpf_print_level, const char*, va_list) { return 0; }

int64_t clockNs(clockid_t c) {
  timespec ts;
  clock_gettime(c, &ts);
  return int64_t(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

void fill(kp_u8 (&out)[16], kp_u16& port, const SockAddr& a) {
  std::memset(out, 0, sizeof(out));
  if (a.family() == AF_INET) {
    std::memcpy(out, &a.u.v4.sin_addr, 4);
    port = a.u.v4.sin_port;
  } else {
    std::memcpy(out, &a.u.v6.sin6_addr, 16);
    port = a.u.v6.sin6_port;
  }
}

kp_key keyOf(const SockAddr& local) {
  kp_key k;
  std::memset(&k, 0, sizeof(k));
  fill(k.addr, k.port, local);
  k.family = local.family() == AF_INET ? KP_FAMILY_V4 : KP_FAMILY_V6;
  return k;
}

/** ARPHRD of an interface: the program parses an Ethernet header, which lo and Ethernet devices have. */
int linkType(const std::string& ifname) {
  std::ifstream f("/sys/class/net/" + ifname + "/type");
  int t = -1;
  f >> t;
  return t;
}

std::string errText(int e) { return std::string(std::strerror(e)); }

}  // namespace

struct KernelPath::Impl {
  bpf_object* obj = nullptr;
  int progFd = -1, rulesFd = -1, countersFd = -1;
  kp_sync* sync = nullptr;  // kp_sync mapped into this process (shared by every thread)
  size_t syncBytes = 0;
  std::vector<int> links;        // tcx: closing them detaches the program
  std::vector<int> tcIfindexes;  // classic tc: filters to remove at close
  int loIndex = 1;
  int cpus = 1;
  struct LocalAddr {
    SockAddr addr;
    int ifindex;
  };
  std::vector<LocalAddr> addrs;  // every address of this host, with its interface

  int ifindexOf(const SockAddr& a) const {
    for (const auto& l : addrs)
      if (l.addr.sameIp(a)) return l.ifindex;
    return -1;
  }

  ~Impl() {
    for (int fd : links) ::close(fd);
    for (int ifindex : tcIfindexes) {
      bpf_tc_hook hook{};
      hook.sz = sizeof(hook);
      hook.ifindex = ifindex;
      hook.attach_point = BPF_TC_INGRESS;
      bpf_tc_opts opts{};
      opts.sz = sizeof(opts);
      opts.handle = kTcHandle;
      opts.priority = kTcPriority;
      bpf_tc_detach(&hook, &opts);
    }
    if (sync) munmap(sync, syncBytes);
    if (obj) bpf_object__close(obj);
  }

  /** Classic tc: clsact + a direct-action filter, replacing one a crashed ngrelay left behind. */
  int attachTc(int ifindex) {
    bpf_tc_hook hook{};
    hook.sz = sizeof(hook);
    hook.ifindex = ifindex;
    hook.attach_point = BPF_TC_INGRESS;
    int r = bpf_tc_hook_create(&hook);
    if (r != 0 && r != -EEXIST) return r;
    bpf_tc_opts opts{};
    opts.sz = sizeof(opts);
    opts.handle = kTcHandle;
    opts.priority = kTcPriority;
    bpf_tc_detach(&hook, &opts);  // stale filter of an earlier run (ENOENT when there is none)
    opts.prog_fd = progFd;
    r = bpf_tc_attach(&hook, &opts);
    if (r == 0) tcIfindexes.push_back(ifindex);
    return r;
  }
};

std::unique_ptr<KernelPath> KernelPath::open(const KernelPathSpec& spec, std::string& why) {
  libbpf_set_print(quietLibbpf);  // one clear line from us, not libbpf's own chatter on stderr
  std::unique_ptr<KernelPath> kp(new KernelPath());
  kp->impl_ = std::make_unique<Impl>();
  Impl& im = *kp->impl_;

  // Every local address with its interface: where the program goes, and which interface a packet leaves by.
  ifaddrs* list = nullptr;
  if (getifaddrs(&list) != 0) {
    why = "cannot list the network interfaces: " + errText(errno);
    return nullptr;
  }
  std::set<int> targets;
  std::vector<std::string> skipped;
  im.loIndex = int(if_nametoindex("lo"));
  for (ifaddrs* a = list; a; a = a->ifa_next) {
    if (!a->ifa_addr || (a->ifa_addr->sa_family != AF_INET && a->ifa_addr->sa_family != AF_INET6)) continue;
    Impl::LocalAddr la;
    la.addr.len = a->ifa_addr->sa_family == AF_INET ? sizeof(sockaddr_in) : sizeof(sockaddr_in6);
    std::memcpy(&la.addr.u, a->ifa_addr, la.addr.len);
    la.ifindex = int(if_nametoindex(a->ifa_name));
    im.addrs.push_back(la);
    for (const std::string& want : spec.addresses) {
      SockAddr w;
      if (!SockAddr::parse(want, 0, w) || !w.sameIp(la.addr)) continue;
      const int type = linkType(a->ifa_name);
      if (type == ARPHRD_ETHER || type == ARPHRD_LOOPBACK) targets.insert(la.ifindex);
      else skipped.push_back(a->ifa_name);
    }
  }
  freeifaddrs(list);
  if (im.loIndex > 0) targets.insert(im.loIndex);  // local parties reach every local address through lo
  if (targets.empty()) {
    why = "no interface to attach to";
    return nullptr;
  }

  const size_t size = size_t(ngrelay_fastpath_obj_end - ngrelay_fastpath_obj);
  bpf_object_open_opts oo{};
  oo.sz = sizeof(oo);
  oo.object_name = "ngrelay_fastpath";
  im.obj = bpf_object__open_mem(ngrelay_fastpath_obj, size, &oo);
  if (!im.obj) {
    why = "cannot open the embedded BPF object: " + errText(errno);
    return nullptr;
  }
  int r = bpf_object__load(im.obj);
  if (r != 0) {
    const int e = -r;
    if (e == EPERM || e == EACCES)
      why = "the kernel refused to load the BPF program (" + errText(e) +
            "): it needs CAP_BPF and CAP_NET_ADMIN (or CAP_SYS_ADMIN)";
    else
      why = "loading the BPF program failed: " + errText(e);
    return nullptr;
  }
  bpf_program* prog = bpf_object__find_program_by_name(im.obj, "ngrelay_fastpath");
  im.progFd = prog ? bpf_program__fd(prog) : -1;
  im.rulesFd = bpf_object__find_map_fd_by_name(im.obj, "kp_rules");
  im.countersFd = bpf_object__find_map_fd_by_name(im.obj, "kp_counters");
  if (im.progFd < 0 || im.rulesFd < 0 || im.countersFd < 0) {
    why = "the embedded BPF object lacks its program or maps";
    return nullptr;
  }
  const int syncFd = bpf_object__find_map_fd_by_name(im.obj, "kp_sync");
  const size_t page = size_t(sysconf(_SC_PAGESIZE));
  im.syncBytes = (sizeof(kp_sync) * KP_MAX_SLOTS + page - 1) / page * page;
  void* mapped = syncFd < 0 ? MAP_FAILED : mmap(nullptr, im.syncBytes, PROT_READ | PROT_WRITE, MAP_SHARED, syncFd, 0);
  if (mapped == MAP_FAILED) {
    why = "cannot map the kp_sync map: " + errText(errno);
    return nullptr;
  }
  im.sync = static_cast<kp_sync*>(mapped);
  im.cpus = libbpf_num_possible_cpus();
  if (im.cpus <= 0) {
    why = "cannot count the possible CPUs";
    return nullptr;
  }

  // tcx (a bpf_link per interface: the kernel detaches it when the last descriptor closes, so a crashed
  // ngrelay leaves nothing forwarding); on kernels before 6.6 a classic clsact filter.
  // NGRELAY_KERNEL_ATTACH=tc takes the clsact path on any kernel (tests of the fallback, troubleshooting).
  const char* attach = std::getenv("NGRELAY_KERNEL_ATTACH");
  bool tcx = !(attach && std::strcmp(attach, "tc") == 0);
  for (int ifindex : targets) {
    char name[IF_NAMESIZE] = {0};
    if_indextoname(unsigned(ifindex), name);
    if (tcx) {
      int fd = bpf_link_create(im.progFd, ifindex, bpf_attach_type(kTcxIngress), nullptr);
      if (fd >= 0) {
        im.links.push_back(fd);
        kp->ifnames_.push_back(name);
        continue;
      }
      const int e = errno;
      if (e == EPERM || e == EACCES) {
        why = std::string("the kernel refused to attach the program to ") + name + " (" + errText(e) + ")";
        return nullptr;
      }
      if (!im.links.empty()) {
        why = std::string("tcx attach to ") + name + " failed: " + errText(e);
        return nullptr;
      }
      tcx = false;  // no tcx on this kernel: classic tc for all
    }
    r = im.attachTc(ifindex);
    if (r != 0) {
      why = std::string("tc attach to ") + name + " failed: " + errText(-r);
      return nullptr;
    }
    kp->ifnames_.push_back(name);
  }
  kp->mode_ = tcx ? "tcx" : "tc";
  for (const std::string& s : skipped) kp->ifnames_.push_back(s + " (skipped: no Ethernet header)");
  // Slot 0 (the totals) starts at zero like every slot.
  std::vector<kp_counters> zero(size_t(im.cpus));
  std::memset(zero.data(), 0, zero.size() * sizeof(kp_counters));
  uint32_t total = KP_TOTALS_SLOT;
  bpf_map_update_elem(im.countersFd, &total, zero.data(), BPF_ANY);
  return kp;
}

KernelPath::~KernelPath() = default;

int32_t KernelPath::allocSlot() {
  std::lock_guard<std::mutex> g(slotMutex_);
  int32_t slot;
  if (!freeSlots_.empty()) {
    slot = freeSlots_.back();
    freeSlots_.pop_back();
  } else if (nextSlot_ < KP_MAX_SLOTS) {
    slot = nextSlot_++;
  } else {
    return -1;
  }
  std::vector<kp_counters> zero(size_t(impl_->cpus));
  std::memset(zero.data(), 0, zero.size() * sizeof(kp_counters));
  uint32_t key = uint32_t(slot);
  if (bpf_map_update_elem(impl_->countersFd, &key, zero.data(), BPF_ANY) != 0) {
    freeSlots_.push_back(slot);
    return -1;
  }
  return slot;
}

void KernelPath::freeSlot(int32_t slot) {
  if (slot <= 0) return;
  std::lock_guard<std::mutex> g(slotMutex_);
  freeSlots_.push_back(slot);
}

KernelFds KernelPath::fds() const { return KernelFds{impl_->rulesFd, impl_->countersFd}; }

bool KernelPath::registerSocket(const KernelFds& fds, const SockAddr& local, int32_t slot) {
  if (slot <= 0 || !local.valid()) return false;
  __atomic_store_n(&impl_->sync[slot].up, 0, __ATOMIC_RELAXED);
  __atomic_store_n(&impl_->sync[slot].consumed, 0, __ATOMIC_RELEASE);
  release(fds, local, slot);
  kp_key key = keyOf(local);
  kp_rule rule;
  return bpf_map_lookup_elem(fds.rules, &key, &rule) == 0;
}

void KernelPath::publishConsumed(int32_t slot, uint64_t consumed) {
  if (slot > 0) __atomic_store_n(&impl_->sync[slot].consumed, consumed, __ATOMIC_RELEASE);
}

void KernelPath::release(const KernelFds& fds, const SockAddr& local, int32_t slot) {
  kp_key key = keyOf(local);
  kp_rule rule;
  std::memset(&rule, 0, sizeof(rule));
  rule.slot = uint32_t(slot);  // inactive: counts what goes up, forwards nothing
  rule.pass_pt = 0xff;
  bpf_map_update_elem(fds.rules, &key, &rule, BPF_ANY);
}

bool KernelPath::install(const KernelFds& fds, const SockAddr& local, const SockAddr& expect, const SockAddr& from,
                         const SockAddr& to, int32_t slot, uint64_t consumed, int passPt) {
  if (slot <= 0 || !local.valid() || !expect.valid() || !from.valid() || !to.valid()) return false;
  if (local.family() != expect.family() || from.family() != to.family()) return false;
  // Out through lo when the destination is on this host; otherwise through the interface that carries the
  // address the packet now comes from (the other leg's socket), as userspace's send would.
  int ifindex = impl_->ifindexOf(to) >= 0 ? impl_->loIndex : impl_->ifindexOf(from);
  if (ifindex <= 0) return false;
  kp_key key = keyOf(local);
  kp_rule rule;
  std::memset(&rule, 0, sizeof(rule));
  fill(rule.expect_addr, rule.expect_port, expect);
  fill(rule.src_addr, rule.src_port, from);
  fill(rule.dst_addr, rule.dst_port, to);
  rule.ifindex = uint32_t(ifindex);
  rule.slot = uint32_t(slot);
  rule.pass_pt = passPt >= 0 && passPt < 128 ? kp_u8(passPt) : kp_u8(0xff);
  rule.flags = KP_FLAG_ACTIVE | (ifindex != impl_->loIndex ? KP_FLAG_DEC_TTL : 0);
  publishConsumed(slot, consumed);  // before the rule turns active
  return bpf_map_update_elem(fds.rules, &key, &rule, BPF_ANY) == 0;
}

void KernelPath::remove(const KernelFds& fds, const SockAddr& local) {
  kp_key key = keyOf(local);
  bpf_map_delete_elem(fds.rules, &key);
}

bool KernelPath::read(const KernelFds& fds, int32_t slot, KernelSlotCounters& out) const {
  // One buffer per thread: the JS thread and the I/O threads read.
  thread_local std::vector<kp_counters> perCpu;
  perCpu.resize(size_t(impl_->cpus));
  uint32_t key = uint32_t(slot);
  if (slot < 0 || bpf_map_lookup_elem(fds.counters, &key, perCpu.data()) != 0) return false;
  out = KernelSlotCounters{};
  uint64_t lastNs = 0;
  for (const kp_counters& c : perCpu) {
    out.packets += c.packets;
    out.bytes += c.bytes;
    out.mismatches += c.mismatches;
    if (c.last_ns > lastNs) {
      lastNs = c.last_ns;
      out.lastRtp = c.last_rtp;
    }
  }
  if (lastNs != 0) {
    const int64_t ageNs = clockNs(CLOCK_MONOTONIC) - int64_t(lastNs);
    out.lastWallMs = (clockNs(CLOCK_REALTIME) - ageNs) / 1000000;
  }
  return true;
}

#endif

}  // namespace ngrelay
