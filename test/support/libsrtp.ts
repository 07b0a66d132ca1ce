/**
 * libsrtp2 as the independent SRTP implementation of the interop tests: a small C helper
 * (test/support/libsrtp-helper.c) built against Debian's libsrtp2-dev, which the suite's global setup
 * installs (scripts/install-test-deps.sh). One helper run is one libsrtp session over a stream of packets.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

const HELPER_SOURCE = path.join(__dirname, 'libsrtp-helper.c');
const SRTP_HEADER = '/usr/include/srtp2/srtp.h';

export type LibsrtpMode = 'protect-rtp' | 'unprotect-rtp' | 'protect-rtcp' | 'unprotect-rtcp';
/** A packet, or libsrtp's error line ("ERR 7" = auth_fail, "ERR 9" = replay_fail, "ERR 10" = replay_old). */
export type LibsrtpOutput = Buffer | string;

export interface LibsrtpHelper {
  /** Runs `packets` through one libsrtp session; `keySalt` is the master key followed by the master salt. */
  run(mode: LibsrtpMode, suite: string, keySalt: Buffer, packets: Buffer[], flags?: string): LibsrtpOutput[];
  /** Removes the built helper. */
  dispose(): void;
}

/** Compiles the helper into a fresh temp dir. Fails loudly when libsrtp2-dev is missing (never skips). */
export function buildLibsrtpHelper(): LibsrtpHelper {
  if (!fs.existsSync(SRTP_HEADER)) {
    throw new Error(`${SRTP_HEADER} is missing: run scripts/install-test-deps.sh as root (installs libsrtp2-dev)`);
  }
  const workDir = fs.mkdtempSync(path.join(os.tmpdir(), 'ngrelay-libsrtp-'));
  const helper = path.join(workDir, 'libsrtp-helper');
  execFileSync('gcc', ['-O2', '-Wall', '-Wextra', '-Werror', '-o', helper, HELPER_SOURCE, '-lsrtp2'], { stdio: 'pipe' });
  return {
    run(mode, suite, keySalt, packets, flags = '') {
      const r = spawnSync(helper, [mode, suite, keySalt.toString('hex'), flags], {
        input: packets.map((p) => p.toString('hex')).join('\n') + '\n',
        encoding: 'utf8',
        timeout: 20_000,
      });
      if (r.status !== 0) throw new Error(`libsrtp helper failed (${String(r.status)}): ${r.stderr}`);
      const lines = r.stdout.trim().split('\n');
      if (lines.length !== packets.length) {
        throw new Error(`libsrtp helper answered ${lines.length} lines for ${packets.length} packets`);
      }
      return lines.map((l) => (l.startsWith('ERR') ? l : Buffer.from(l, 'hex')));
    },
    dispose() {
      fs.rmSync(workDir, { recursive: true, force: true });
    },
  };
}
