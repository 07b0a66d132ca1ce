/** Configuration: command line and config file → RelayConfig. */
export type { InterfaceConfig, RelayConfig } from './types';
export { parseCommandLine, parseInvocation, DEFAULTS, DEFAULT_SECTIONS } from './parse';
export type { Invocation, ParseEnvironment } from './parse';
export { usage, versionText, packageVersion } from './usage';
export { OPTIONS } from './options';
export type { OptionSpec, OptionKind } from './options';
