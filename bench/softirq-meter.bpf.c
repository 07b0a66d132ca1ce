// NET_RX softirq time, split by whose context it ran in: the generator (its tgid once bench/softirq-meter.c
// is told it, else comm "loadgen": another loadgen on a shared machine would count too), the relay under
// test (its tgid, set by bench/softirq-meter.c), anyone else (ksoftirqd, idle, other processes). The bench
// adds what is not in the relay's own process CPU time to the relay's cost (bench/README.md "Accounting").
// raw tracepoints: no tracefs needed.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#define NET_RX_SOFTIRQ 3

struct start {
  __u64 ns;
  __u32 cls;
  __u32 pad;
};

struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __uint(max_entries, 1);
  __type(key, __u32);
  __type(value, struct start);
} starts SEC(".maps");

// 0 = generator, 1 = relay, 2 = other: nanoseconds; 3 = number of NET_RX runs
struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __uint(max_entries, 4);
  __type(key, __u32);
  __type(value, __u64);
} totals SEC(".maps");

// 0 = the relay's tgid, 1 = the generator's tgid (0 = not known yet: match comm "loadgen")
struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(max_entries, 2);
  __type(key, __u32);
  __type(value, __u32);
} config SEC(".maps");

SEC("raw_tp/softirq_entry")
int on_entry(struct bpf_raw_tracepoint_args* ctx) {
  if (ctx->args[0] != NET_RX_SOFTIRQ) return 0;
  __u32 zero = 0;
  struct start* s = bpf_map_lookup_elem(&starts, &zero);
  if (!s) return 0;
  __u32 one = 1;
  __u32* relay = bpf_map_lookup_elem(&config, &zero);
  __u32* gen = bpf_map_lookup_elem(&config, &one);
  __u32 tgid = bpf_get_current_pid_tgid() >> 32;
  char comm[16] = {};
  bpf_get_current_comm(comm, sizeof(comm));
  if (relay && *relay && tgid == *relay) s->cls = 1;
  else if (gen && *gen) s->cls = tgid == *gen ? 0 : 2;
  else if (comm[0] == 'l' && comm[1] == 'o' && comm[2] == 'a' && comm[3] == 'd' && comm[4] == 'g' && comm[5] == 'e' &&
           comm[6] == 'n')
    s->cls = 0;
  else s->cls = 2;
  s->ns = bpf_ktime_get_ns();
  return 0;
}

SEC("raw_tp/softirq_exit")
int on_exit(struct bpf_raw_tracepoint_args* ctx) {
  if (ctx->args[0] != NET_RX_SOFTIRQ) return 0;
  __u32 zero = 0;
  struct start* s = bpf_map_lookup_elem(&starts, &zero);
  if (!s || !s->ns) return 0;
  __u64 d = bpf_ktime_get_ns() - s->ns;
  s->ns = 0;
  __u32 cls = s->cls > 2 ? 2 : s->cls;
  __u64* t = bpf_map_lookup_elem(&totals, &cls);
  if (t) *t += d;
  __u32 runs = 3;
  t = bpf_map_lookup_elem(&totals, &runs);
  if (t) *t += 1;
  return 0;
}

char LICENSE[] SEC("license") = "GPL";
