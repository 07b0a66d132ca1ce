/**
 * A burst sender faster than the relay (test/support/udp-burst.c, sendmmsg in batches of 64), built with gcc
 * into a temp dir. Node's dgram sends one packet per call and never outruns the relay's I/O thread; this
 * does, so tests can leave a relay socket with a deep queue.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

const SOURCE = path.join(__dirname, 'udp-burst.c');

export interface UdpBurst {
  /** Sends `count` RTP packets (seq 0..count-1) to address:port; returns how many the kernel took. */
  send(address: string, port: number, count: number, ssrc: number): number;
  dispose(): void;
}

export function buildUdpBurst(): UdpBurst {
  const workDir = fs.mkdtempSync(path.join(os.tmpdir(), 'ngrelay-udp-burst-'));
  const bin = path.join(workDir, 'udp-burst');
  execFileSync('gcc', ['-O2', '-Wall', '-Wextra', '-Werror', '-o', bin, SOURCE], { stdio: 'pipe' });
  return {
    send(address, port, count, ssrc) {
      const out = execFileSync(bin, [address, String(port), String(count), String(ssrc)], {
        encoding: 'utf8',
        timeout: 20_000,
      });
      return Number(out.trim());
    },
    dispose() {
      fs.rmSync(workDir, { recursive: true, force: true });
    },
  };
}
