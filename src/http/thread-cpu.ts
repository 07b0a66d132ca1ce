/**
 * CPU time of the engine's I/O threads, read from /proc/self/task/<tid>/{comm,stat} (Linux). The threads
 * name themselves `ngrelay-io-N` (native/src/io_thread.cpp); `rate()` of the seconds is each thread's load
 * (1.0 = one core busy), which shows an unevenly spread call mix that the process total hides.
 */
import { readdirSync, readFileSync } from 'node:fs';

/** USER_HZ: the unit of utime/stime in /proc/<pid>/stat; 100 on every Linux architecture Node runs on. */
const CLOCK_TICKS_PER_SECOND = 100;
const IO_THREAD = /^ngrelay-io-\d+$/;

export interface ThreadCpu {
  thread: string;
  seconds: number;
}

/** One entry per I/O thread; empty where /proc is not readable. */
export function ioThreadCpu(procTaskDir = '/proc/self/task'): ThreadCpu[] {
  let tids: string[];
  try {
    tids = readdirSync(procTaskDir);
  } catch {
    return [];
  }
  const out: ThreadCpu[] = [];
  for (const tid of tids) {
    try {
      const name = readFileSync(`${procTaskDir}/${tid}/comm`, 'utf8').trim();
      if (!IO_THREAD.test(name)) continue;
      const stat = readFileSync(`${procTaskDir}/${tid}/stat`, 'utf8');
      // Fields after "(comm)": state is field 3, utime 14 and stime 15 (1-based, man 5 proc).
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      const ticks = Number(fields[11]) + Number(fields[12]);
      if (Number.isFinite(ticks)) out.push({ thread: name, seconds: ticks / CLOCK_TICKS_PER_SECOND });
    } catch {
      // The thread ended between readdir and read: skip it.
    }
  }
  return out.sort((a, b) => a.thread.localeCompare(b.thread, 'en', { numeric: true }));
}
