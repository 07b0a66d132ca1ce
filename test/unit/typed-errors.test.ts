/**
 * Failures the CLI and the ng layer tell apart by class (exit status, `error-reason`), each thrown as its
 * own class with a message that names what is wrong.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { checkInterfacesAreLocal, InterfaceAddressError } from '../../src/config/local-addresses';
import { prepareRecordingDir, RecordingDirError } from '../../src/recording/recording-dir';
import { decodeJsonDict, JsonShapeError } from '../../src/ng/json';
import { sdNotify, SdNotifyError } from '../../src/sd-notify';
import { expectThrows } from '../support/errors';

describe('typed errors', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'ngrelay-typed-errors-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('an --interface address this machine does not have is an InterfaceAddressError naming it', async () => {
    // 192.0.2.0/24 is TEST-NET-1: never assigned to a real host.
    const iface = { name: 'pub', address: '192.0.2.77', advertised: '192.0.2.77', family: 'IPv4' as const };
    const err = await checkInterfacesAreLocal([iface]).then(() => null, (e: unknown) => e);
    expect(err).toBeInstanceOf(InterfaceAddressError);
    expect((err as Error).message).toContain("192.0.2.77 (interface 'pub') is not an address of this machine");
  });

  it('a --recording-dir that is a file is a RecordingDirError naming the option', () => {
    const file = path.join(dir, 'not-a-dir');
    writeFileSync(file, '');
    expectThrows(() => prepareRecordingDir(file), RecordingDirError, `--recording-dir=${file}`);
  });

  it('JSON ng messages that parse but are not an ng dict are JsonShapeErrors', () => {
    expectThrows(() => decodeJsonDict(Buffer.from('[1, 2]')), JsonShapeError, 'top-level JSON value is not an object');
    expectThrows(() => decodeJsonDict(Buffer.from('{"n": 1e300}')), JsonShapeError, 'not a safe integer');
  });

  it('a NOTIFY_SOCKET nobody listens on is an SdNotifyError with the errno name', () => {
    const socketPath = path.join(dir, 'no-such-socket');
    const err = expectThrows(() => sdNotify(['READY=1'], { NOTIFY_SOCKET: socketPath }), SdNotifyError, `NOTIFY_SOCKET=${socketPath}`);
    expect(err.code).toBe('ENOENT');
  });
});
