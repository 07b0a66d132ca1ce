import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parseCommandLine, parseInvocation, usage, versionText, OPTIONS } from '../../src/config';
import type { ParseEnvironment } from '../../src/config';
import { parseIni, splitList } from '../../src/config/ini';
import { ConfigError } from '../../src/errors';

const env: ParseEnvironment = {
  cpuCount: 3,
  networkInterfaces: () => ({
    lo: [
      { address: '127.0.0.1', netmask: '255.0.0.0', family: 'IPv4', mac: '00:00:00:00:00:00', internal: true, cidr: '127.0.0.1/8' },
      { address: '::1', netmask: 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff', family: 'IPv6', mac: '00:00:00:00:00:00', internal: true, cidr: '::1/128', scopeid: 0 },
    ],
    eth0: [
      { address: '192.0.2.10', netmask: '255.255.255.0', family: 'IPv4', mac: '02:00:00:00:00:01', internal: false, cidr: '192.0.2.10/24' },
      { address: 'fe80::1', netmask: 'ffff:ffff:ffff:ffff::', family: 'IPv6', mac: '02:00:00:00:00:01', internal: false, cidr: 'fe80::1/64', scopeid: 2 },
      { address: '2001:db8::10', netmask: 'ffff:ffff:ffff:ffff::', family: 'IPv6', mac: '02:00:00:00:00:01', internal: false, cidr: '2001:db8::10/64', scopeid: 0 },
    ],
    empty: [],
  }),
};

const parse = (...argv: string[]) => parseCommandLine(argv, env);

/** The ConfigError message parse throws; fails the test if it does not throw one. */
function errorOf(argv: string[], e: ParseEnvironment = env): string {
  try {
    parseCommandLine(argv, e);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    const message = (err as ConfigError).message;
    expect(message).not.toContain('\n');
    return message;
  }
  throw new Error(`no ConfigError for ${JSON.stringify(argv)}`);
}

const dir = mkdtempSync(join(tmpdir(), 'ngrelay-config-test-'));
let fileCounter = 0;
function configFile(text: string): string {
  const path = join(dir, `c${++fileCounter}.conf`);
  writeFileSync(path, text);
  return path;
}
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('defaults', () => {
  it('match rtpengine and the issue', () => {
    expect(parse()).toEqual({
      interfaces: [{ name: 'default', address: '127.0.0.1', advertised: '127.0.0.1', family: 'IPv4' }],
      listenNg: { address: '127.0.0.1', port: 2223 },
      portMin: 30000,
      portMax: 40000,
      timeout: 60,
      silentTimeout: 3600,
      offerTimeout: 3600,
      finalTimeout: 0,
      deleteDelay: 30,
      numThreads: 3,
      logLevel: 6,
      recordingDir: null,
      recordingMethod: 'pcap',
      recordingFormat: 'raw',
      recordEgress: false,
      dtlsPassive: false,
      dtlsCertificate: { cipher: 'prime256v1', rsaKeyBits: 2048, signature: 'sha-256' },
      dtmfLogDest: null,
      dtmfLogNgTcp: false,
      stateDir: null,
      stateFsync: false,
      redis: null,
      foreground: false,
      logStderr: false,
      logTimestamps: true,
      table: -1,
      pidfile: null,
      endpointLearning: 'heuristic',
      socketReceiveBuffer: 4194304,
      debugNgDelayMs: 0,
      listenCli: null,
      listenTcpNg: null,
      listenHttp: null,
      listenHttps: null,
      httpsCert: null,
      httpsKey: null,
      limits: { maxSessions: -1, maxLoad: 0, maxCpu: 0, maxBandwidth: 0 },
      ngCacheMaxEntries: 100000,
      ngCacheMaxBytes: 67108864,
      scheduling: { policy: 'default', priority: null },
      idleScheduling: { policy: 'default', priority: null },
    });
  });

  it('num-threads defaults to the machine CPU count without an override', () => {
    const n = parseCommandLine([]).numThreads;
    expect(Number.isInteger(n) && n >= 1).toBe(true);
  });
});

describe('every option', () => {
  it('parses each long option in --opt=value form', () => {
    const c = parse(
      '--interface=10.0.0.1',
      '--listen-ng=127.0.0.2:5000',
      '--port-min=20000',
      '--port-max=20100',
      '--timeout=10',
      '--silent-timeout=20',
      '--offer-timeout=30',
      '--final-timeout=40',
      '--delete-delay=0',
      '--num-threads=2',
      '--log-level=7',
      '--recording-dir=/var/spool/ngrelay',
      '--recording-method=pcap',
      '--endpoint-learning=delayed',
      '--socket-receive-buffer=65536',
      '--scheduling=fifo',
      '--priority=10',
      '--idle-scheduling=idle',
      '--foreground',
      '--log-stderr',
      '--pidfile=/run/ngrelay.pid',
      '--table=-1',
      '--config-file=none',
      '--config-section=whatever',
    );
    expect(c).toEqual({
      interfaces: [{ name: 'default', address: '10.0.0.1', advertised: '10.0.0.1', family: 'IPv4' }],
      listenNg: { address: '127.0.0.2', port: 5000 },
      portMin: 20000,
      portMax: 20100,
      timeout: 10,
      silentTimeout: 20,
      offerTimeout: 30,
      finalTimeout: 40,
      deleteDelay: 0,
      numThreads: 2,
      logLevel: 7,
      recordingDir: '/var/spool/ngrelay',
      recordingMethod: 'pcap',
      recordingFormat: 'raw',
      recordEgress: false,
      dtlsPassive: false,
      dtlsCertificate: { cipher: 'prime256v1', rsaKeyBits: 2048, signature: 'sha-256' },
      dtmfLogDest: null,
      dtmfLogNgTcp: false,
      stateDir: null,
      stateFsync: false,
      redis: null,
      foreground: true,
      logStderr: true,
      logTimestamps: true,
      table: -1,
      pidfile: '/run/ngrelay.pid',
      endpointLearning: 'delayed',
      socketReceiveBuffer: 65536,
      debugNgDelayMs: 0,
      listenCli: null,
      listenTcpNg: null,
      listenHttp: null,
      listenHttps: null,
      httpsCert: null,
      httpsKey: null,
      limits: { maxSessions: -1, maxLoad: 0, maxCpu: 0, maxBandwidth: 0 },
      ngCacheMaxEntries: 100000,
      ngCacheMaxBytes: 67108864,
      scheduling: { policy: 'fifo', priority: 10 },
      idleScheduling: { policy: 'idle', priority: null },
    });
  });

  it('parses the --opt value form, including a value starting with "-"', () => {
    const c = parse('--port-min', '31000', '--port-max', '31010', '--table', '-1', '--interface', 'pub/203.0.113.5');
    expect(c.portMin).toBe(31000);
    expect(c.portMax).toBe(31010);
    expect(c.table).toBe(-1);
    expect(c.interfaces[0]).toMatchObject({ name: 'pub', address: '203.0.113.5' });
  });

  it("accepts rtpengine's short letters, attached or separate, and grouped flags", () => {
    const c = parse(
      '-i', '10.1.1.1', '-n127.0.0.1:3000', '-m', '32000', '-M', '32010', '-o', '11', '-s', '12', '-a', '13',
      '-d', '14', '-L', '3', '-p', '/tmp/x.pid', '-t', '0', '-fE',
    );
    expect(c).toMatchObject({
      interfaces: [{ address: '10.1.1.1' }],
      listenNg: { address: '127.0.0.1', port: 3000 },
      portMin: 32000,
      portMax: 32010,
      timeout: 11,
      silentTimeout: 12,
      finalTimeout: 13,
      deleteDelay: 14,
      logLevel: 3,
      pidfile: '/tmp/x.pid',
      table: 0,
      foreground: true,
      logStderr: true,
    });
  });

  it('stores --table as given (ngrelay forwards in userspace regardless)', () => {
    expect(parse('--table=5').table).toBe(5);
  });

  it.each(['off', 'immediate', 'delayed', 'heuristic', 'HEURISTIC'])('endpoint-learning %s', (v) => {
    expect(parse(`--endpoint-learning=${v}`).endpointLearning).toBe(v.toLowerCase());
  });

  it('treats 0 like rtpengine: default for timeout/silent/offer/num-threads, off for final, immediate for delete-delay', () => {
    const c = parse('--timeout=0', '--silent-timeout=0', '--offer-timeout=0', '--num-threads=0', '--final-timeout=0', '--delete-delay=0');
    expect([c.timeout, c.silentTimeout, c.offerTimeout, c.numThreads, c.finalTimeout, c.deleteDelay]).toEqual([60, 3600, 3600, 3, 0, 0]);
  });

  it('repeated scalar options: the last one wins', () => {
    expect(parse('--timeout=5', '--timeout=6').timeout).toBe(6);
  });
});

describe('--interface', () => {
  it('takes names, advertised addresses, IPv6, several names and both families under one name', () => {
    const c = parse(
      '--interface=priv/10.0.0.1',
      '--interface=pub/10.0.0.2!203.0.113.7',
      '--interface=pub/2001:db8::2',
      '--interface=v6/[2001:db8::3]![2001:db8::99]',
      '--interface=::1',
    );
    expect(c.interfaces).toEqual([
      { name: 'priv', address: '10.0.0.1', advertised: '10.0.0.1', family: 'IPv4' },
      { name: 'pub', address: '10.0.0.2', advertised: '203.0.113.7', family: 'IPv4' },
      { name: 'pub', address: '2001:db8::2', advertised: '2001:db8::2', family: 'IPv6' },
      { name: 'v6', address: '2001:db8::3', advertised: '2001:db8::99', family: 'IPv6' },
      { name: 'default', address: '::1', advertised: '::1', family: 'IPv6' },
    ]);
  });

  it('expands a device name to its addresses, without IPv6 link-local, advertised per family', () => {
    expect(parse('--interface=ext/eth0!198.51.100.1').interfaces).toEqual([
      { name: 'ext', address: '192.0.2.10', advertised: '198.51.100.1', family: 'IPv4' },
      { name: 'ext', address: '2001:db8::10', advertised: '2001:db8::10', family: 'IPv6' },
    ]);
  });

  it.each([
    ['', 'expected [NAME/]IP'],
    ['/10.0.0.1', 'empty interface name'],
    ['a/', 'missing local address'],
    ['10.0.0.1!', 'empty advertised'],
    ['10.0.0.1!example.com', 'not an IP address'],
    ['10.0.0.1!2001:db8::1', 'is not IPv4'],
    ['0.0.0.0', 'wildcard'],
    ['::', 'wildcard'],
    ['10.0.0.1!0.0.0.0', 'wildcard'],
    ['nosuchdev0', 'neither an IP address nor a network device'],
    ['empty', 'no usable address'],
    ['300.1.1.1', 'neither an IP address'],
    ['a b/10.0.0.1', 'expected [NAME/]IP'],
  ])('rejects %j', (spec, reason) => {
    const msg = errorOf([`--interface=${spec}`]);
    expect(msg).toContain('--interface');
    expect(msg).toContain(reason);
  });

  it("'any' is every address of the machine but loopback and IPv6 link-local, as rtpengine resolves it", () => {
    const any = [
      { name: 'default', address: '192.0.2.10', advertised: '192.0.2.10', family: 'IPv4' },
      { name: 'default', address: '2001:db8::10', advertised: '2001:db8::10', family: 'IPv6' },
    ];
    expect(parse('--interface=any').interfaces).toEqual(any);
    expect(parse('-i', 'pub/any!198.51.100.1').interfaces).toEqual([
      { ...any[0], name: 'pub', advertised: '198.51.100.1' },
      { ...any[1], name: 'pub' },
    ]);
    const file = configFile('[rtpengine]\ninterface = any\n');
    expect(parse(`--config-file=${file}`).interfaces).toEqual(any);
    const loopbackOnly: ParseEnvironment = { networkInterfaces: () => ({ lo: env.networkInterfaces!().lo }) };
    expect(errorOf(['--interface=any'], loopbackOnly)).toContain('no address besides loopback');
  });

  it('rejects the same name and address twice', () => {
    expect(errorOf(['-i', 'a/10.0.0.1', '-i', 'a/10.0.0.1'])).toContain("duplicate interface 'a/10.0.0.1'");
  });
});

describe('--listen-ng', () => {
  it.each([
    ['127.0.0.1:2223', '127.0.0.1', 2223],
    ['[::1]:2224', '::1', 2224],
    ['::1:2225', '::1', 2225],
    ['localhost:2226', '127.0.0.1', 2226],
    ['2227', '0.0.0.0', 2227],
  ])('%s', (text, address, port) => {
    expect(parse(`--listen-ng=${text}`).listenNg).toEqual({ address, port });
  });

  it.each(['127.0.0.1:', '127.0.0.1:0', '127.0.0.1:70000', 'example.com:2223', '[10.0.0.1]:5', 'abc', ''])('rejects %j', (text) => {
    expect(errorOf([`--listen-ng=${text}`])).toMatch(/^invalid value '.*' for --listen-ng: /);
  });
});

describe('bad values name the option', () => {
  it.each([
    ['--port-min=abc', '--port-min'],
    ['--port-min=1023', '--port-min'],
    ['--port-max=65536', '--port-max'],
    ['--port-min=3.5', '--port-min'],
    ['--timeout=-1', '--timeout'],
    ['--timeout=1e3', '--timeout'],
    ['--silent-timeout=x', '--silent-timeout'],
    ['--offer-timeout=', '--offer-timeout'],
    ['--final-timeout=-5', '--final-timeout'],
    ['--delete-delay=soon', '--delete-delay'],
    ['--num-threads=-2', '--num-threads'],
    ['--num-threads=100000', '--num-threads'],
    ['--log-level=8', '--log-level'],
    ['--log-level=-1', '--log-level'],
    ['--recording-method=kernel', '--recording-method'],
    ['--tos=abc', '--tos'],
    ['--silence-detect=lots', '--silence-detect'],
    ['--redis-num-threads=1.5', '--redis-num-threads'],
    ['--recording-dir=', '--recording-dir'],
    ['--endpoint-learning=sometimes', '--endpoint-learning'],
    ['--socket-receive-buffer=-1', '--socket-receive-buffer'],
    ['--pidfile=', '--pidfile'],
    ['--table=x', '--table'],
    ['--timeout=99999999999', '--timeout'],
    ['--scheduling=realtime', '--scheduling'],
    ['--priority=high', '--priority'],
  ])('%s', (arg, name) => {
    const msg = errorOf([arg]);
    expect(msg).toContain(name);
    expect(msg).toContain(`'${arg.slice(arg.indexOf('=') + 1)}'`);
  });

  it('scheduling: the priority is 1..99 under fifo/rr and a nice value -20..19 otherwise (rtpengine\'s rules)', () => {
    expect(parse().scheduling).toEqual({ policy: 'default', priority: null });
    expect(parse('--scheduling=FIFO', '--priority=10').scheduling).toEqual({ policy: 'fifo', priority: 10 });
    expect(parse('--scheduling=rr').scheduling).toEqual({ policy: 'rr', priority: 1 });
    expect(parse('--scheduling=none', '--priority=-5').scheduling).toEqual({ policy: 'default', priority: -5 });
    expect(parse('--scheduling=batch', '--priority=19').scheduling).toEqual({ policy: 'batch', priority: 19 });
    expect(parse('--scheduling=idle').scheduling).toEqual({ policy: 'idle', priority: null });
    expect(errorOf(['--scheduling=fifo', '--priority=0'])).toBe('--priority (0) must be 1..99 with --scheduling=fifo');
    expect(errorOf(['--scheduling=rr', '--priority=100'])).toContain('must be 1..99');
    expect(errorOf(['--priority=20'])).toBe('--priority (20) is a nice value here and must be -20..19');
    expect(errorOf(['--scheduling=other', '--priority=-21'])).toContain('-20..19');
    // The background threads follow the same rules.
    expect(parse('--idle-scheduling=batch', '--idle-priority=10').idleScheduling).toEqual({ policy: 'batch', priority: 10 });
    expect(errorOf(['--idle-scheduling=fifo', '--idle-priority=100'])).toBe(
      '--idle-priority (100) must be 1..99 with --idle-scheduling=fifo',
    );
  });

  it('port-min must be below port-max and the range must hold an even/odd pair', () => {
    expect(errorOf(['--port-min=40000', '--port-max=30000'])).toBe('--port-min (40000) must be lower than --port-max (30000)');
    expect(errorOf(['--port-min=30000', '--port-max=30000'])).toContain('must be lower than');
    expect(errorOf(['--port-min=30001', '--port-max=30002'])).toContain('holds no even/odd port pair');
    expect(parse('--port-min=30000', '--port-max=30001')).toMatchObject({ portMin: 30000, portMax: 30001 });
  });

  it('control characters in a bad value do not break the one-line message', () => {
    expect(errorOf(['--timeout=1\n2'])).toContain("'1\\n2'");
  });
});

describe('command line errors', () => {
  it.each([
    [['--bogus'], 'unknown option --bogus'],
    [['--bogus=1'], 'unknown option --bogus'],
    [['-Z'], 'unknown option -Z'],
    [['-fZ'], 'unknown option -Z'],
    [['--redis-cluster=127.0.0.1:6379/1'], 'unknown option --redis-cluster'],
    [['--foreground=yes'], 'option --foreground takes no value'],
    [['--timeout'], 'option --timeout needs a value'],
    [['-o'], 'option -o (--timeout) needs a value'],
    [['stray'], "unexpected argument 'stray'"],
    [['--', 'stray'], "unexpected argument 'stray'"],
  ])('%j', (argv, message) => {
    expect(errorOf(argv)).toBe(message);
  });

  it('a trailing "--" is fine', () => {
    expect(parse('--timeout=7', '--').timeout).toBe(7);
  });
});

describe('help, version, warnings', () => {
  it('parseInvocation reports help and version requests', () => {
    expect(parseInvocation(['--help'], env)).toEqual({ action: 'help' });
    expect(parseInvocation(['-h'], env)).toEqual({ action: 'help' });
    expect(parseInvocation(['--version'], env)).toEqual({ action: 'version' });
    expect(parseInvocation(['-v', '--timeout=5'], env)).toEqual({ action: 'version' });
    expect(parseInvocation(['--timeout=5'], env)).toMatchObject({ action: 'run', config: { timeout: 5 }, warnings: [] });
  });

  it('parseCommandLine ignores --help/--version and still returns the config', () => {
    expect(parse('--help', '--timeout=9').timeout).toBe(9);
  });

  it('rtpengine options without effect are accepted with a warning naming them', () => {
    const inv = parseInvocation(['--tos=184', '--no-fallback', '--log-facility=local0', '--scheduling=batch'], env);
    expect(inv.action).toBe('run');
    if (inv.action !== 'run') return;
    expect(inv.warnings).toEqual([
      "option --tos has no effect: ngrelay sends media with the system's default TOS (0)",
      'option --no-fallback has no effect: ngrelay has no kernel module; it always forwards in its own engine',
      'option --log-facility has no effect: ngrelay logs JSON lines to stdout/stderr, not to syslog',
    ]);
  });

  it('--table = 0 (the kernel fast path) is taken without warning; recording-method = proc: one warning', () => {
    const inv = parseInvocation(['--table=0', '--recording-method=proc', '--recording-dir=/tmp'], env);
    if (inv.action !== 'run') throw new Error('not run');
    expect(inv.config).toMatchObject({ table: 0, recordingMethod: 'pcap' });
    expect(inv.warnings).toHaveLength(1);
    expect(inv.warnings[0]).toMatch(/^option --recording-method \(proc\) has no effect: .* recorded as pcap under --recording-dir$/);
    expect(parseInvocation(['--table=-1'], env)).toMatchObject({ warnings: [] });
  });

  it('a repeated rtpengine-only option is warned about once', () => {
    const inv = parseInvocation(['--cn-payload=13', '--cn-payload=14', '--tos=1', '--tos=2'], env);
    expect(inv.action === 'run' && inv.warnings).toHaveLength(2);
    expect(inv.action === 'run' && inv.warnings[0]).toMatch(/^option --cn-payload has no effect: /);
    expect(inv.action === 'run' && inv.warnings[1]).toBe("option --tos has no effect: ngrelay sends media with the system's default TOS (0)");
  });

  it('--no-log-timestamps turns the time field off', () => {
    expect(parse('--no-log-timestamps').logTimestamps).toBe(false);
    expect(parse(`--config-file=${configFile('[rtpengine]\nno-log-timestamps = true\n')}`).logTimestamps).toBe(false);
  });

  it('usage lists every effective option with its default; version names the package', () => {
    const text = usage();
    for (const o of OPTIONS.filter((x) => !x.noEffect)) expect(text).toContain(`--${o.name}`);
    expect(text).toContain('-i, --interface=[NAME/]IP[!ADVERTISED]');
    expect(text).toContain('[default: 127.0.0.1:2223]');
    expect(versionText()).toMatch(/^ngrelay \d+\.\d+\.\d+/);
  });
});

describe('config file', () => {
  it('reads [rtpengine] with comments, repeated and ;-joined interface entries, booleans', () => {
    const file = configFile(
      [
        '# rtpengine.conf',
        '; another comment style',
        '[rtpengine]',
        'interface = int/10.0.0.1;ext/10.0.0.2!203.0.113.9',
        'interface = ext/2001:db8::5',
        '  listen-ng = 127.0.0.1:22222  ',
        'port-min = 35000',
        'port-max=35999',
        'timeout = 20',
        'foreground = true',
        'log-stderr = false',
        'log-level = 5',
        'table = -1',
        'recording-dir = /var/spool/rec',
        '',
        '[rtpengine-recording]',
        'unrelated-key = whatever',
      ].join('\r\n'),
    );
    const c = parse(`--config-file=${file}`);
    expect(c.interfaces.map((i) => `${i.name}/${i.address}!${i.advertised}`)).toEqual([
      'int/10.0.0.1!10.0.0.1',
      'ext/10.0.0.2!203.0.113.9',
      'ext/2001:db8::5!2001:db8::5',
    ]);
    expect(c).toMatchObject({
      listenNg: { address: '127.0.0.1', port: 22222 },
      portMin: 35000,
      portMax: 35999,
      timeout: 20,
      foreground: true,
      logStderr: false,
      logLevel: 5,
      table: -1,
      recordingDir: '/var/spool/rec',
    });
  });

  it('the command line overrides the file per option; CLI interfaces replace the file list', () => {
    const file = configFile('[rtpengine]\ninterface = 10.0.0.1\ninterface = 10.0.0.2\ntimeout = 20\nsilent-timeout = 100\n');
    const c = parse('--config-file', file, '--timeout=30', '-i', '10.9.9.9');
    expect(c.timeout).toBe(30);
    expect(c.silentTimeout).toBe(100);
    expect(c.interfaces.map((i) => i.address)).toEqual(['10.9.9.9']);
  });

  it('[ngrelay] overrides [rtpengine]; --config-section reads only the named section', () => {
    const file = configFile('[rtpengine]\ntimeout = 20\ndelete-delay = 5\n[ngrelay]\ntimeout = 25\nsocket-receive-buffer = 1048576\n[other]\ntimeout = 99\n');
    const both = parse(`--config-file=${file}`);
    expect([both.timeout, both.deleteDelay, both.socketReceiveBuffer]).toEqual([25, 5, 1048576]);
    const only = parse(`--config-file=${file}`, '--config-section=other');
    expect([only.timeout, only.deleteDelay]).toEqual([99, 30]);
    expect(parse(`--config-file=${file}`, '--config-section=rtpengine').timeout).toBe(20);
  });

  it('--config-file=none reads nothing', () => {
    const e: ParseEnvironment = { ...env, readTextFile: () => { throw new Error('must not read'); } };
    expect(parseCommandLine(['--config-file=none'], e).timeout).toBe(60);
  });

  it('the last --config-file wins', () => {
    const a = configFile('[rtpengine]\ntimeout = 1\n');
    const b = configFile('[rtpengine]\ntimeout = 2\n');
    expect(parse(`--config-file=${a}`, `--config-file=${b}`).timeout).toBe(2);
    expect(parse(`--config-file=${a}`, '--config-file=none').timeout).toBe(60);
  });

  it('an unknown key names the key, file and line', () => {
    const file = configFile('[rtpengine]\ntimeout = 5\nredis-cluster = 127.0.0.1:6379/1\n');
    expect(errorOf([`--config-file=${file}`])).toBe(`unknown option 'redis-cluster' in ${file}:3`);
  });

  it('a bad value names the key, file and line', () => {
    const file = configFile('[rtpengine]\n\nport-min = lots\n');
    expect(errorOf([`--config-file=${file}`])).toBe(`invalid value 'lots' for port-min (${file}:3): expected an integer`);
    const flagFile = configFile('[rtpengine]\nforeground = maybe\n');
    expect(errorOf([`--config-file=${flagFile}`])).toBe(`invalid value 'maybe' for foreground (${flagFile}:2): expected true or false`);
    const ifFile = configFile('[rtpengine]\ninterface = 10.0.0.1;;10.0.0.2\n');
    expect(errorOf([`--config-file=${ifFile}`])).toContain(`for interface (${ifFile}:2)`);
  });

  it('a bad file value overridden on the command line is not an error', () => {
    const file = configFile('[rtpengine]\ntimeout = never\n');
    expect(parse(`--config-file=${file}`, '--timeout=8').timeout).toBe(8);
  });

  it('command-line-only options are refused in the file', () => {
    const file = configFile('[rtpengine]\nconfig-file = /etc/other.conf\n');
    expect(errorOf([`--config-file=${file}`])).toContain("option 'config-file'");
  });

  it('missing file, missing section, malformed lines', () => {
    expect(errorOf([`--config-file=${join(dir, 'absent.conf')}`])).toMatch(/^cannot read config file '.*absent\.conf': ENOENT/);
    const noSection = configFile('[something]\ntimeout = 5\n');
    expect(errorOf([`--config-file=${noSection}`])).toBe(`config file '${noSection}' has no [rtpengine] or [ngrelay] section`);
    expect(errorOf([`--config-file=${noSection}`, '--config-section=x'])).toBe(`config file '${noSection}' has no [x] section`);
    const outside = configFile('timeout = 5\n[rtpengine]\n');
    expect(errorOf([`--config-file=${outside}`])).toBe(`${outside}:1: key outside of any [section]`);
    const noEquals = configFile('[rtpengine]\njust words\n');
    expect(errorOf([`--config-file=${noEquals}`])).toContain(`${noEquals}:2: expected 'key = value'`);
    const badHeader = configFile('[rtpengine\n');
    expect(errorOf([`--config-file=${badHeader}`])).toContain('malformed section header');
  });

  it('no-effect rtpengine keys in the file load with a warning', () => {
    const file = configFile('[rtpengine]\ntos = 184\nlog-facility = daemon\n');
    const inv = parseInvocation([`--config-file=${file}`], env);
    expect(inv.action === 'run' && inv.warnings).toEqual([
      `option tos (${file}:2) has no effect: ngrelay sends media with the system's default TOS (0)`,
      `option log-facility (${file}:3) has no effect: ngrelay logs JSON lines to stdout/stderr, not to syslog`,
    ]);
  });
});

describe('examples/ngrelay.conf', () => {
  it('loads without warnings and says what the defaults say', () => {
    const file = join(__dirname, '..', '..', 'examples', 'ngrelay.conf');
    const inv = parseInvocation([`--config-file=${file}`], env);
    if (inv.action !== 'run') throw new Error('not run');
    expect(inv.warnings).toEqual([]);
    expect(inv.config).toEqual(parse());
  });
});

describe('examples/systemd/ngrelay.service', () => {
  it("ExecStart's command line is accepted (with the example config in place of /etc/ngrelay/ngrelay.conf)", () => {
    const unit = readFileSync(join(__dirname, '..', '..', 'examples', 'systemd', 'ngrelay.service'), 'utf8');
    const execStart = /^ExecStart=(.*)$/m.exec(unit)![1]!.split(/\s+/);
    expect(execStart[0]).toBe('/usr/bin/ngrelay');
    expect(unit).toMatch(/^Type=notify$/m);
    const example = join(__dirname, '..', '..', 'examples', 'ngrelay.conf');
    const argv = execStart.slice(1).map((a) => (a === '/etc/ngrelay/ngrelay.conf' ? example : a));
    const inv = parseInvocation(argv, env);
    if (inv.action !== 'run') throw new Error('not run');
    expect(inv.warnings).toEqual([]);
    expect(inv.config).toMatchObject({ foreground: true, logStderr: true, logTimestamps: false, pidfile: '/run/ngrelay/ngrelay.pid' });
  });
});

describe('ini helpers', () => {
  it('splitList handles trailing ";", escaped "\\;" and spaces', () => {
    expect(splitList('a; b ;c;')).toEqual(['a', 'b', 'c']);
    expect(splitList('x\\;y;z')).toEqual(['x;y', 'z']);
    expect(splitList('')).toEqual([]);
  });

  it('parseIni merges a repeated section and keeps "#" inside values', () => {
    const ini = parseIni('[a]\nk = 1\n[b]\nk = 2\n[a]\nk = x#y\n', 'f');
    expect(ini.get('a')).toEqual([
      { key: 'k', value: '1', line: 2 },
      { key: 'k', value: 'x#y', line: 6 },
    ]);
    expect(ini.get('b')).toEqual([{ key: 'k', value: '2', line: 4 }]);
  });
});

describe('DTLS certificate options', () => {
  it('take rtpengine spellings (RSA, EC, SHA-1) into the engine options', () => {
    expect(parseCommandLine(['--dtls-cert-cipher=RSA', '--dtls-rsa-key-size=3072', '--dtls-signature=SHA-1']).dtlsCertificate).toEqual({
      cipher: 'rsa',
      rsaKeyBits: 3072,
      signature: 'sha-1',
    });
    expect(parseCommandLine(['--dtls-cert-cipher=EC']).dtlsCertificate?.cipher).toBe('prime256v1');
  });

  it('refuse what the engine cannot make, by class', () => {
    expect(() => parseCommandLine(['--dtls-cert-cipher=DSA'])).toThrow(ConfigError);
    expect(() => parseCommandLine(['--dtls-signature=MD5'])).toThrow(ConfigError);
    expect(() => parseCommandLine(['--dtls-rsa-key-size=512'])).toThrow(ConfigError);
  });
});
