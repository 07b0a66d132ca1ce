// Scheduling policy and priority of the engine's own threads (`--scheduling`/`--priority` for the I/O
// threads, `--idle-scheduling`/`--idle-priority` for the background ones), with rtpengine's semantics.
#pragma once

namespace ngrelay {

struct SchedulingSpec {
  int policy = -1;  // SCHED_FIFO/RR/OTHER/BATCH/IDLE, -1 = leave the thread's policy alone
  bool hasPriority = false;
  int priority = 0;  // realtime priority under FIFO/RR, the nice value otherwise
};

/**
 * Applies `spec` to the calling thread: a realtime policy takes the priority as such; any other policy (or
 * none) takes it as the thread's nice value (Linux keeps nice per thread). Returns 0 or the errno of the
 * refusal, in which case the thread keeps what it had.
 */
int applyThreadScheduling(const SchedulingSpec& spec);

}  // namespace ngrelay
