/** Embedding API: run a relay inside a Node program. */
export { Relay } from './relay';
export type { RelayDeps } from './relay';
export type { RelayConfig, InterfaceConfig } from './config/types';
export { parseCommandLine } from './config';
export { createLogger } from './logger';
export type { DataPlane, StreamCounters, EngineTotals } from './dataplane/types';
export { NgError, ConfigError } from './errors';
