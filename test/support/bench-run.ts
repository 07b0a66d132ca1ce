/**
 * Running `bin/ngrelay-bench` from a test: to completion (bounded, then SIGKILL by PID), optionally inside a
 * network namespace, and reading what it wrote; and the two-namespace veth topology the tests reach a relay
 * over (the operator's case of a relay on another address).
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import type { BenchResults } from '../../bench/tool/types';
import { freeMediaRange } from './free-ports';
import { REPO_ROOT } from './ngrelay';

export const BENCH_BIN = path.join(REPO_ROOT, 'bin', 'ngrelay-bench');

export interface BenchRun {
  code: number | null;
  stdout: string;
  stderr: string;
  results: BenchResults | null;
  /** Paths of the results JSON and the HTML report; the SVG's text. */
  json: string | null;
  html: string | null;
  svg: string | null;
}

/**
 * Runs the tool to completion (bounded: `timeoutMs`, then SIGKILL by PID) with `--out=` a new directory
 * below `outRoot`, and reads what it wrote. `netns`: run it inside that network namespace (`ip netns exec`
 * execs node, so the PID stays the tool's).
 */
export async function runBench(outRoot: string, args: string[], netns?: string, timeoutMs = 90_000): Promise<BenchRun> {
  const outDir = fs.mkdtempSync(path.join(outRoot, 'run-'));
  const command = [process.execPath, BENCH_BIN, ...args, `--out=${outDir}`];
  const [cmd, ...rest] = netns ? ['ip', 'netns', 'exec', netns, ...command] : command;
  const child = spawn(cmd as string, rest, { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const timer = setTimeout(() => child.pid !== undefined && process.kill(child.pid, 'SIGKILL'), timeoutMs);
  const code = await new Promise<number | null>((resolve) => child.once('close', (c) => resolve(c)));
  clearTimeout(timer);
  const find = (prefix: string, ext: string): string | null => {
    const f = fs.readdirSync(outDir).find((x) => x.startsWith(prefix) && x.endsWith(ext));
    return f ? path.join(outDir, f) : null;
  };
  const json = find('results-', '.json');
  const svg = find('charts-', '.svg');
  return {
    code,
    stdout,
    stderr,
    results: json ? (JSON.parse(fs.readFileSync(json, 'utf8')) as BenchResults) : null,
    json,
    html: find('report-', '.html'),
    svg: svg ? fs.readFileSync(svg, 'utf8') : null,
  };
}

/** --local and --phone-port for phones on their own loopback addresses (they cannot meet other tests' sockets). */
export async function phoneArgs(phoneA: string, phoneB: string): Promise<string[]> {
  const { portMin } = await freeMediaRange(8, phoneA);
  return [`--local=${phoneA},${phoneB}`, `--phone-port=${portMin}`];
}

async function ip(args: string[]): Promise<void> {
  const child = spawn('ip', args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const code = await new Promise<number | null>((resolve) => child.once('close', resolve));
  if (code !== 0) throw new Error(`ip ${args.join(' ')}: exit ${code}: ${err}`);
}

/**
 * Two namespaces of ours joined by a veth (`vtool` 10.251.0.1 in `tool`, `vrelay` 10.251.0.2 in `relay`),
 * each with its loopback up. The veth is created inside them, so nothing is added to the host's network;
 * removing the namespaces removes it and its addresses.
 */
export class VethPair {
  static readonly TOOL_IP = '10.251.0.1';
  static readonly RELAY_IP = '10.251.0.2';

  constructor(
    readonly tool: string,
    readonly relay: string,
  ) {}

  async create(): Promise<void> {
    await this.remove();
    await ip(['netns', 'add', this.tool]);
    await ip(['netns', 'add', this.relay]);
    await ip(['-n', this.tool, 'link', 'add', 'vtool', 'type', 'veth', 'peer', 'name', 'vrelay', 'netns', this.relay]);
    await ip(['-n', this.tool, 'addr', 'add', `${VethPair.TOOL_IP}/24`, 'dev', 'vtool']);
    await ip(['-n', this.relay, 'addr', 'add', `${VethPair.RELAY_IP}/24`, 'dev', 'vrelay']);
    for (const [ns, dev] of [[this.tool, 'vtool'], [this.relay, 'vrelay'], [this.tool, 'lo'], [this.relay, 'lo']] as const) await ip(['-n', ns, 'link', 'set', dev, 'up']);
  }

  async remove(): Promise<void> {
    for (const ns of [this.tool, this.relay]) await ip(['netns', 'del', ns]).catch(() => undefined);
  }
}
