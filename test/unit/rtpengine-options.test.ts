/**
 * Every option `rtpengine --help` (Debian's 10.5 binary) lists is accepted by ngrelay with the same long
 * name, short letter and value type, on the command line and in the config file. The binary itself says
 * whether an option takes a value (`-v --opt` fails when --opt wants one) and whether that value is a
 * number (`--opt=abc -v` fails), so the test follows the installed rtpengine rather than a copied list.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parseInvocation, type ParseEnvironment } from '../../src/config';
import { optionByName } from '../../src/config/options';
import { ConfigError } from '../../src/errors';

const RTPENGINE = '/usr/bin/rtpengine';

/** A value each option with its own parser accepts; the rest get one by type. */
const SAMPLE_VALUES: Record<string, string> = {
  interface: '127.0.0.1',
  redis: '127.0.0.1:6379/1',
  'redis-write': 'secret@127.0.0.1:6379/2',
  'subscribe-keyspace': '3',
  'listen-ng': '127.0.0.1:2223',
  'port-min': '30000',
  'port-max': '40000',
  'log-level': '5',
  table: '-1',
  pidfile: '/tmp/ngrelay-test.pid',
  'recording-dir': '/tmp',
  'recording-method': 'pcap',
  'recording-format': 'eth',
  'dtmf-log-dest': '127.0.0.1:5060',
  'dtls-cert-cipher': 'RSA',
  'dtls-rsa-key-size': '2048',
  'dtls-signature': 'SHA-1',
  'endpoint-learning': 'off',
  scheduling: 'batch',
  'idle-scheduling': 'idle',
  'listen-cli': '127.0.0.1:2224',
  'listen-tcp-ng': '127.0.0.1:2223',
  'listen-http': '127.0.0.1:2225',
  'listen-https': '127.0.0.1:2226',
};

interface HelpOption {
  name: string;
  short: string | undefined;
}

function helpOptions(): HelpOption[] {
  const text = execFileSync(RTPENGINE, ['--help'], { encoding: 'utf8' });
  const options: HelpOption[] = [];
  for (const line of text.split('\n')) {
    const m = /^\s+(?:-([A-Za-z]), )?--([a-z0-9-]+)/.exec(line);
    if (m) options.push({ name: m[2]!, short: m[1] });
  }
  return options;
}

/** Exit status of rtpengine with these arguments; `-v` makes it print its version instead of running. */
function rtpengineStatus(args: string[]): number | null {
  return spawnSync(RTPENGINE, ['--config-file=none', ...args], { stdio: 'ignore', timeout: 5000 }).status;
}

const env: ParseEnvironment = { cpuCount: 2 };
const dir = mkdtempSync(join(tmpdir(), 'ngrelay-rtpe-options-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const all = helpOptions();
// help, version and the config file options themselves are covered by config.test.ts.
const walked = all.filter((o) => !['help', 'version', 'config-file', 'config-section'].includes(o.name));

describe("rtpengine 10.5's options", () => {
  it('the help text lists them (sanity check of the parsing above)', () => {
    expect(all.length).toBeGreaterThan(120);
    expect(all).toContainEqual({ name: 'interface', short: 'i' });
    expect(all).toContainEqual({ name: 'no-log-timestamps', short: undefined });
  });

  it.each(walked.map((o) => [o.name, o] as const))('--%s', (name, { short }) => {
    const spec = optionByName(name);
    expect(spec, `--${name} is unknown to ngrelay`).toBeDefined();
    if (spec === undefined) return;
    expect(spec.short, `short letter of --${name}`).toBe(short);

    const takesValue = rtpengineStatus(['-v', `--${name}`]) !== 0;
    expect(spec.kind !== 'flag', `--${name} takes a value in rtpengine: ${takesValue}`).toBe(takesValue);
    const numeric = takesValue && rtpengineStatus([`--${name}=abc`, '-v']) !== 0;

    const value = SAMPLE_VALUES[name] ?? (numeric ? '1' : 'x');
    const argv = takesValue ? [`--${name}=${value}`] : [`--${name}`];
    const fromCli = parseInvocation(argv, env);
    expect(fromCli.action).toBe('run');

    const file = join(dir, `${name}.conf`);
    writeFileSync(file, `[rtpengine]\n${name} = ${takesValue ? value : 'true'}\n`);
    const fromFile = parseInvocation([`--config-file=${file}`], env);
    expect(fromFile.action).toBe('run');
    if (fromCli.action !== 'run' || fromFile.action !== 'run') return;
    expect(fromFile.config).toEqual(fromCli.config);

    // Without the feature: exactly one warning, naming the option and saying what ngrelay does instead.
    if (spec.noEffect !== undefined) {
      expect(fromCli.warnings).toEqual([`option --${name} has no effect: ngrelay ${spec.noEffect}`]);
      expect(fromFile.warnings).toEqual([`option ${name} (${file}:2) has no effect: ngrelay ${spec.noEffect}`]);
    }
    // A malformed value is still an error (exit status 2 in the CLI).
    if (numeric) expect(() => parseInvocation([`--${name}=abc`], env)).toThrow(ConfigError);
  });
});
