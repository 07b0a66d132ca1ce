/** Typed errors of the control plane. */

/** An ng command failed; `reason` goes to the client verbatim as `error-reason`. */
export class NgError extends Error {
  override readonly name = 'NgError';
  constructor(readonly reason: string) {
    super(reason);
  }
}

/** A bad command line or config file value; the CLI prints the message and exits with status 2. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

/** The port range of an interface has no free port (pair) left. */
export class PortsExhaustedError extends NgError {
  constructor() {
    super('Ran out of ports');
  }
}

/** A restored call's stream could not get its socket back (port taken, address gone): that call is not restored. */
export class RestoreBindError extends Error {
  override readonly name = 'RestoreBindError';
}
