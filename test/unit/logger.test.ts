import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { SyslogLevel, callLogger, createLogger, setSyslogLevel, syslogToPinoLevel } from '../../src/logger';

/** Collects what pino writes; pino writes whole lines synchronously to a plain stream's write(). */
class MemoryStream extends Writable {
  readonly chunks: string[] = [];
  override _write(chunk: Buffer, _enc: BufferEncoding, done: () => void): void {
    this.chunks.push(chunk.toString('utf8'));
    done();
  }
  lines(): Record<string, unknown>[] {
    return this.chunks
      .join('')
      .split('\n')
      .filter((l) => l !== '')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
  }
  /** Writable may run _write callbacks on a later tick; wait one before reading. */
  async settled(): Promise<void> {
    await new Promise((r) => setImmediate(r));
  }
}

function emitAll(level: number): Promise<string[]> {
  const out = new MemoryStream();
  const logger = createLogger({ level, stderr: false, destination: out });
  logger.fatal('m-fatal');
  logger.error('m-error');
  logger.warn('m-warn');
  logger.info('m-info');
  logger.debug('m-debug');
  logger.trace('m-trace');
  return out.settled().then(() => out.lines().map((l) => String(l['msg'])));
}

describe('logger', () => {
  it('maps syslog levels to pino levels', () => {
    expect([0, 1, 2, 3, 4, 5, 6, 7].map(syslogToPinoLevel)).toEqual([
      'fatal',
      'fatal',
      'fatal',
      'error',
      'warn',
      'info',
      'info',
      'debug',
    ]);
    expect(() => syslogToPinoLevel(8)).toThrow(RangeError);
    expect(() => syslogToPinoLevel(-1)).toThrow(RangeError);
    expect(() => syslogToPinoLevel(2.5)).toThrow(RangeError);
  });

  it('lets through exactly the messages at or above the configured level', async () => {
    expect(await emitAll(0)).toEqual(['m-fatal']);
    expect(await emitAll(3)).toEqual(['m-fatal', 'm-error']);
    expect(await emitAll(4)).toEqual(['m-fatal', 'm-error', 'm-warn']);
    expect(await emitAll(6)).toEqual(['m-fatal', 'm-error', 'm-warn', 'm-info']);
    expect(await emitAll(7)).toEqual(['m-fatal', 'm-error', 'm-warn', 'm-info', 'm-debug']);
  });

  it('writes one JSON object per line with level, time and message', async () => {
    const out = new MemoryStream();
    const logger = createLogger({ level: 6, stderr: true, destination: out });
    logger.info({ port: 30000 }, 'hello');
    await out.settled();
    const text = out.chunks.join('');
    expect(text.endsWith('\n')).toBe(true);
    expect(text.trim().split('\n')).toHaveLength(1);
    const [line] = out.lines();
    expect(line).toMatchObject({ level: 30, msg: 'hello', port: 30000, name: 'ngrelay' });
    expect(typeof line!['time']).toBe('string');
    expect(Number.isNaN(Date.parse(String(line!['time'])))).toBe(false);
  });

  it('callLogger adds call-id and the tags given, and leaves out absent ones', async () => {
    const out = new MemoryStream();
    const logger = createLogger({ level: 7, stderr: false, destination: out });
    callLogger(logger, { callId: 'abc@host', fromTag: 'ft1', toTag: 'tt1' }).info('both tags');
    callLogger(logger, { callId: 'xyz', fromTag: 'ft2' }).debug('from only');
    logger.info('no call');
    await out.settled();
    const [a, b, c] = out.lines();
    expect(a).toMatchObject({ 'call-id': 'abc@host', 'from-tag': 'ft1', 'to-tag': 'tt1', msg: 'both tags' });
    expect(b).toMatchObject({ 'call-id': 'xyz', 'from-tag': 'ft2', msg: 'from only', level: 20 });
    expect(b).not.toHaveProperty('to-tag');
    expect(c).not.toHaveProperty('call-id');
  });

  it('setSyslogLevel changes the level at run time', async () => {
    const out = new MemoryStream();
    const logger = createLogger({ level: 6, stderr: false, destination: out });
    logger.debug('hidden');
    setSyslogLevel(logger, 7);
    logger.debug('shown');
    setSyslogLevel(logger, 3);
    logger.warn('hidden too');
    await out.settled();
    expect(out.lines().map((l) => l['msg'])).toEqual(['shown']);
  });

  it('SyslogLevel: set and shift start from the level the last change left, within 0..7', () => {
    const logger = createLogger({ level: 6, stderr: false, destination: new MemoryStream() });
    const level = new SyslogLevel(logger, 6);
    level.set(3); // rtpengine-ctl set loglevel 3
    expect(level.shift(1)).toBe(4); // then SIGUSR1
    expect(logger.level).toBe('warn');
    level.set(7);
    expect(level.shift(1)).toBe(7);
    level.set(0);
    expect(level.shift(-1)).toBe(0);
  });
});
