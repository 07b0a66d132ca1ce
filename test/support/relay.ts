/**
 * What the tests need to know about a running relay (rtpengine or ngrelay), and the command line both are
 * started with: ngrelay takes rtpengine's options, so one argument list serves both.
 */
import { ManagedProcess } from './process';

export interface RelayOptions {
  /** ng control port on 127.0.0.1. */
  ngPort: number;
  portMin: number;
  portMax: number;
  /** Seconds; omitted = the relay's default (30). */
  deleteDelay?: number;
  /** More options, appended as given. */
  extraArgs?: string[];
}

export interface RelayUnderTest {
  /** "rtpengine" or "ngrelay", for messages. */
  name: string;
  ngHost: string;
  ngPort: number;
  portMin: number;
  portMax: number;
  process: ManagedProcess;
  stop(): Promise<void>;
}

export const LOOPBACK = '127.0.0.1';

export function relayArgs(options: RelayOptions): string[] {
  const args = [
    '--config-file=none',
    '--table=-1',
    `--interface=${LOOPBACK}`,
    `--listen-ng=${LOOPBACK}:${options.ngPort}`,
    `--port-min=${options.portMin}`,
    `--port-max=${options.portMax}`,
    '--foreground',
    '--log-stderr',
  ];
  if (options.deleteDelay !== undefined) args.push(`--delete-delay=${options.deleteDelay}`);
  return [...args, ...(options.extraArgs ?? [])];
}

export function relayUnderTest(name: string, options: RelayOptions, proc: ManagedProcess): RelayUnderTest {
  return {
    name,
    ngHost: LOOPBACK,
    ngPort: options.ngPort,
    portMin: options.portMin,
    portMax: options.portMax,
    process: proc,
    stop: async () => {
      await proc.stop();
    },
  };
}
