/** The control-listener and load-limit options (--listen-cli/-tcp-ng/-http/-https, --max-*). */
import { describe, expect, it } from 'vitest';
import { parseCommandLine } from '../../src/config/parse';
import { ConfigError } from '../../src/errors';
import { expectThrows } from '../support/errors';

const parse = (...args: string[]) => parseCommandLine(['--config-file=none', ...args], { cpuCount: 2 });

describe('control listener options', () => {
  it('are off unless given', () => {
    const c = parse();
    expect([c.listenCli, c.listenTcpNg, c.listenHttp, c.listenHttps, c.httpsCert, c.httpsKey]).toEqual([null, null, null, null, null, null]);
    expect(c.limits).toEqual({ maxSessions: -1, maxLoad: 0, maxCpu: 0, maxBandwidth: 0 });
  });

  it("take [IP:]PORT and rtpengine's short letters -c (cli) and -N (tcp-ng)", () => {
    const c = parse('-c', '127.0.0.1:9900', '-N2224', '--listen-http=[::1]:8080', '--listen-https=8443', '--https-cert=/c.pem', '--https-key=/k.pem');
    expect(c.listenCli).toEqual({ address: '127.0.0.1', port: 9900 });
    expect(c.listenTcpNg).toEqual({ address: '0.0.0.0', port: 2224 });
    expect(c.listenHttp).toEqual({ address: '::1', port: 8080 });
    expect(c.listenHttps).toEqual({ address: '0.0.0.0', port: 8443 });
    expect([c.httpsCert, c.httpsKey]).toEqual(['/c.pem', '/k.pem']);
  });

  it('refuses a bad address with a ConfigError naming the option', () => {
    expect(() => parse('--listen-cli=example.org:9900')).toThrow(ConfigError);
    expectThrows(() => parse('--listen-http=70000'), ConfigError, /listen-http/);
  });

  it('accepts http-threads as an rtpengine option without effect', () => {
    expect(() => parse('--http-threads=4')).not.toThrow();
  });
});

describe('load limit options', () => {
  it('parse integers and decimals as rtpengine does', () => {
    const c = parse('--max-sessions=0', '--max-load=1.5', '--max-cpu=90', '--max-bandwidth=1000000');
    expect(c.limits).toEqual({ maxSessions: 0, maxLoad: 1.5, maxCpu: 90, maxBandwidth: 1000000 });
  });

  it('refuse values rtpengine refuses', () => {
    expect(() => parse('--max-sessions=-2')).toThrow(ConfigError);
    expectThrows(() => parse('--max-load=-1'), ConfigError, /max-load/);
    expectThrows(() => parse('--max-cpu=lots'), ConfigError, /max-cpu/);
    expect(() => parse('--max-bandwidth=1.5')).toThrow(ConfigError);
  });
});
