/*
 * usage: softirq-meter RELAY_PID OBJECT
 * Loads OBJECT (bench/bin/softirq-meter.bpf.o), counts NET_RX softirq time until stdin closes (at most
 * 300 s), then prints {"gen_ns":..,"relay_ns":..,"other_ns":..,"runs":..} and exits. Prints "ready" once
 * it counts. A line "gen PID" on stdin names the generator's process (else any "loadgen" counts as it).
 * See bench/softirq-meter.bpf.c.
 */
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int quiet(enum libbpf_print_level level, const char* fmt, va_list ap) {
  if (level == LIBBPF_WARN) return vfprintf(stderr, fmt, ap);
  return 0;
}

int main(int argc, char** argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: softirq-meter RELAY_PID OBJECT\n");
    return 2;
  }
  libbpf_set_print(quiet);
  struct bpf_object* obj = bpf_object__open_file(argv[2], NULL);
  if (!obj || bpf_object__load(obj)) {
    fprintf(stderr, "softirq-meter: cannot load %s\n", argv[2]);
    return 1;
  }
  uint32_t zero = 0, one = 1, relay = (uint32_t)strtoul(argv[1], NULL, 10);
  int config = bpf_object__find_map_fd_by_name(obj, "config");
  bpf_map_update_elem(config, &zero, &relay, BPF_ANY);
  struct bpf_program* p;
  bpf_object__for_each_program(p, obj) {
    if (!bpf_program__attach(p)) {
      fprintf(stderr, "softirq-meter: cannot attach %s\n", bpf_program__name(p));
      return 1;
    }
  }
  printf("ready\n");
  fflush(stdout);
  struct pollfd pfd = {.fd = 0, .events = POLLIN};
  char line[64];
  size_t used = 0;
  for (int waited = 0; waited < 300; ++waited) {
    if (poll(&pfd, 1, 1000) > 0) {
      ssize_t n = read(0, line + used, sizeof(line) - 1 - used);
      if (n <= 0) break;
      used += (size_t)n;
      line[used] = 0;
      char* nl;
      while ((nl = strchr(line, '\n')) != NULL) {
        *nl = 0;
        if (strncmp(line, "gen ", 4) == 0) {
          uint32_t gen = (uint32_t)strtoul(line + 4, NULL, 10);
          bpf_map_update_elem(config, &one, &gen, BPF_ANY);
        }
        used -= (size_t)(nl + 1 - line);
        memmove(line, nl + 1, used + 1);
      }
      if (used == sizeof(line) - 1) used = 0;  // an overlong line: dropped
    }
  }
  int cpus = libbpf_num_possible_cpus();
  uint64_t* v = calloc((size_t)cpus, sizeof(uint64_t));
  uint64_t sums[4] = {0, 0, 0, 0};
  int fd = bpf_object__find_map_fd_by_name(obj, "totals");
  for (uint32_t k = 0; k < 4; ++k) {
    if (bpf_map_lookup_elem(fd, &k, v) != 0) continue;
    for (int c = 0; c < cpus; ++c) sums[k] += v[c];
  }
  printf("{\"gen_ns\":%llu,\"relay_ns\":%llu,\"other_ns\":%llu,\"runs\":%llu}\n", (unsigned long long)sums[0],
         (unsigned long long)sums[1], (unsigned long long)sums[2], (unsigned long long)sums[3]);
  bpf_object__close(obj);
  return 0;
}
