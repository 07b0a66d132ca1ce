/** Where the checkout's pieces are, whether this runs compiled (bench/out/...) or from source (vitest). */
import fs from 'node:fs';
import path from 'node:path';

function findRoot(start: string): string {
  for (let dir = start; ; dir = path.dirname(dir)) {
    if (fs.existsSync(path.join(dir, 'bench', 'loadgen.c')) && fs.existsSync(path.join(dir, 'package.json'))) return dir;
    if (path.dirname(dir) === dir) throw new Error(`ngrelay-bench: no checkout (bench/loadgen.c) above ${start}`);
  }
}

export const ROOT = findRoot(__dirname);
export const BENCH_DIR = path.join(ROOT, 'bench');
export const BENCH_BIN = path.join(BENCH_DIR, 'bin');
export const LOADGEN = path.join(BENCH_BIN, 'loadgen');
export const MINFWD = path.join(BENCH_BIN, 'minfwd');
/** NET_RX softirq meter and its BPF object (built by bench/build.sh only where clang + libbpf-dev exist). */
export const SOFTIRQ_METER = path.join(BENCH_BIN, 'softirq-meter');
export const SOFTIRQ_METER_OBJ = path.join(BENCH_BIN, 'softirq-meter.bpf.o');
/** Default output directory (gitignored). */
export const DEFAULT_OUT = path.join(BENCH_DIR, 'out');
