/**
 * Descriptors: the relay raises its soft RLIMIT_NOFILE to the hard limit at start (and logs it), and when
 * media sockets run out of descriptors the offer gets rtpengine's "Ran out of ports" (which Kamailio acts
 * on) while the log names the limit that was really hit.
 */
import { readFileSync, readdirSync, readlinkSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { NGRELAY_BIN, REPO_ROOT } from '../support/ngrelay';
import { startNgProcess, type ManagedProcess } from '../support/process';
import { LOOPBACK, relayArgs } from '../support/relay';
import { NgRawClient, textOf } from '../support/ng-client';
import { callerAudio } from '../support/sdp-fixtures';

/** Starts bin/ngrelay under `ulimit` settings (sh execs node, so the PID is the relay's). */
async function startLimited(ulimit: string, span = 400): Promise<{ proc: ManagedProcess; ngPort: number }> {
  const slot = Math.floor(Math.random() * 300);
  const ngPort = 25000 + slot;
  const portMin = 50000 + slot * 20;
  const args = relayArgs({ ngPort, portMin, portMax: portMin + span - 1, deleteDelay: 0 });
  const quoted = [process.execPath, NGRELAY_BIN, ...args].map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(' ');
  const proc = await startNgProcess(
    { name: 'ngrelay', command: '/bin/sh', args: ['-c', `${ulimit} && exec ${quoted}`], cwd: REPO_ROOT },
    { host: LOOPBACK, port: ngPort, deadlineMs: 15_000 },
  );
  return { proc, ngPort };
}

/** Soft and hard "Max open files" of a process. */
function openFileLimits(pid: number): { soft: number; hard: number } {
  const line = readFileSync(`/proc/${pid}/limits`, 'utf8').split('\n').find((l) => l.startsWith('Max open files'))!;
  const [soft, hard] = line.replace('Max open files', '').trim().split(/\s+/).map(Number);
  return { soft: soft!, hard: hard! };
}

describe('descriptors at start (bin/ngrelay run as installed, by its #! line)', () => {
  it("holds no pidfd and one eventfd per I/O thread of its own; node gets bin/ngrelay's heap flag", async () => {
    const slot = Math.floor(Math.random() * 300);
    const ngPort = 25300 + slot;
    const portMin = 56000 + slot * 10;
    const args = relayArgs({ ngPort, portMin, portMax: portMin + 9, deleteDelay: 0 });
    // The executable itself (as systemd's ExecStart runs it), not `node bin/ngrelay`: its #! line counts.
    const proc = await startNgProcess(
      { name: 'ngrelay', command: NGRELAY_BIN, args: [...args, '--num-threads=2'], cwd: REPO_ROOT },
      { host: LOOPBACK, port: ngPort, deadlineMs: 15_000 },
    );
    try {
      const cmdline = readFileSync(`/proc/${proc.pid}/cmdline`, 'utf8').split('\0');
      expect(cmdline).toContain('--max-semi-space-size=4');
      expect(cmdline).toContain('--no-parallel-scavenge');
      const targets = readdirSync(`/proc/${proc.pid}/fd`).map((fd) => {
        try {
          return readlinkSync(`/proc/${proc.pid}/fd/${fd}`);
        } catch {
          return '';
        }
      });
      // Each I/O thread's epoll and pidfd live in its own table only (README "Hostile input and limits").
      expect(targets.filter((t) => t === 'anon_inode:[pidfd]')).toEqual([]);
      expect(targets.length).toBeLessThanOrEqual(22);
    } finally {
      await proc.stop();
    }
  });
});

describe('descriptor limit', () => {
  it('raises the soft limit to the hard one at start and logs the value', async () => {
    const { proc } = await startLimited('ulimit -Sn 256');
    try {
      const { soft, hard } = openFileLimits(proc.pid);
      expect(hard).toBeGreaterThan(256);
      expect(soft).toBe(hard);
      expect(proc.stderrText).toContain(`descriptor limit (RLIMIT_NOFILE): ${hard}`);
    } finally {
      await proc.stop();
    }
  });

  it('answers "Ran out of ports" when descriptors run out, and logs which limit it was', async () => {
    // Hard limit 64: it cannot be raised, and the media sockets of a few calls use it up.
    const { proc, ngPort } = await startLimited('ulimit -n 64');
    const client = await NgRawClient.open(ngPort, LOOPBACK);
    try {
      expect(openFileLimits(proc.pid).soft).toBe(64);
      let refused: string | undefined;
      let calls = 0;
      for (let i = 0; i < 40 && refused === undefined; i++) {
        const reply = await client.request({ command: 'offer', 'call-id': `fd-${i}`, 'from-tag': 'a', sdp: callerAudio() }, { retransmitMs: 0 });
        if (textOf(reply.dict, 'result') === 'ok') calls++;
        else refused = textOf(reply.dict, 'error-reason');
      }
      expect(calls).toBeGreaterThan(0);
      expect(refused).toBe('Ran out of ports');
      // The log line may reach the pipe just after the reply (pino writes asynchronously).
      const logLine = 'the process descriptor limit RLIMIT_NOFILE (64) is reached';
      for (let waited = 0; waited < 2000 && !proc.stderrText.includes(logLine); waited += 20) await new Promise((r) => setTimeout(r, 20));
      expect(proc.stderrText).toContain(logLine);
      // The relay still works: ping, and a delete gives descriptors back for a new call.
      expect(textOf((await client.request({ command: 'ping' })).dict, 'result')).toBe('pong');
      await client.request({ command: 'delete', 'call-id': 'fd-0' });
      const again = await client.request({ command: 'offer', 'call-id': 'fd-again', 'from-tag': 'a', sdp: callerAudio() });
      expect(textOf(again.dict, 'result')).toBe('ok');
    } finally {
      client.close();
      await proc.stop();
    }
  });
});
