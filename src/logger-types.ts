/**
 * The logging surface modules depend on: the subset of pino's Logger they call, so tests can pass a stub
 * and production passes a pino instance (or a child logger) unchanged.
 */
export interface LogFn {
  (obj: object, msg?: string): void;
}

export interface Logger {
  debug: LogFn;
  info: LogFn;
  warn: LogFn;
  error: LogFn;
}
