/** Texts for --help and --version, generated from the option table so they cannot drift from the parser. */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { OPTIONS, type OptionSpec } from './options';

function synopsis(o: OptionSpec): string {
  const long = o.kind === 'flag' ? `--${o.name}` : `--${o.name}=${o.arg ?? 'VALUE'}`;
  return o.short !== undefined ? `-${o.short}, ${long}` : `    ${long}`;
}

/** Comma-separated words in lines of at most `width` characters, indented by two. */
function wrap(words: string[], width: number): string[] {
  const lines: string[] = [];
  let line = '';
  for (const word of words) {
    const next = line === '' ? `  ${word}` : `${line}, ${word}`;
    if (next.length > width && line !== '') {
      lines.push(`${line},`);
      line = `  ${word}`;
    } else {
      line = next;
    }
  }
  if (line !== '') lines.push(line);
  return lines;
}

export function usage(): string {
  const effective = OPTIONS.filter((o) => o.noEffect === undefined);
  const rows = effective.map((o) => [synopsis(o), o.defaultText !== '' ? `${o.help} [default: ${o.defaultText}]` : o.help]);
  const width = Math.max(...rows.map(([s]) => s!.length)) + 2;
  const lines = [
    'Usage: ngrelay [OPTION...]',
    '',
    'RTP/SRTP media relay controlled over the rtpengine ng protocol. Option names and meanings follow',
    "rtpengine's; a config file uses the long names as keys (`interface = ...`, `foreground = true`).",
    '',
    ...rows.map(([s, h]) => `  ${s!.padEnd(width)}${h}`),
    '',
    'Accepted without effect (rtpengine features ngrelay lacks; each one set is logged once at start):',
    ...wrap(OPTIONS.filter((o) => o.noEffect !== undefined).map((o) => (o.short ? `-${o.short}/--${o.name}` : `--${o.name}`)), 100),
    '',
  ];
  return lines.join('\n');
}

/** The package version, read from package.json (two levels up from both src/config and dist/config). */
export function packageVersion(): string {
  try {
    const pkg: unknown = JSON.parse(readFileSync(join(__dirname, '..', '..', 'package.json'), 'utf8'));
    if (typeof pkg === 'object' && pkg !== null && 'version' in pkg && typeof pkg.version === 'string') {
      return pkg.version;
    }
  } catch {
    // fall through
  }
  return 'unknown';
}

export function versionText(): string {
  return `ngrelay ${packageVersion()}`;
}
