#include "thread_sched.hpp"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

namespace ngrelay {

int applyThreadScheduling(const SchedulingSpec& s) {
  if (s.policy == SCHED_FIFO || s.policy == SCHED_RR) {
    sched_param p{};
    p.sched_priority = s.priority;
    return pthread_setschedparam(pthread_self(), s.policy, &p);
  }
  if (s.policy >= 0) {
    sched_param p{};
    p.sched_priority = 0;
    int e = pthread_setschedparam(pthread_self(), s.policy, &p);
    if (e != 0) return e;
  }
  if (s.hasPriority && setpriority(PRIO_PROCESS, id_t(syscall(SYS_gettid)), s.priority) != 0) return errno;
  return 0;
}

}  // namespace ngrelay
