/**
 * The config file format rtpengine reads (GLib key files): `[section]` headers, `key = value` lines, whole
 * line comments starting with `#` or `;`, blank lines. There are no inline comments: `#` or `;` after a
 * value belongs to the value (a `;` separates list items, see `splitList`). A section that appears twice is
 * one section. Keys before the first header are an error, as in GLib.
 */
import { ConfigError } from '../errors';

export interface IniEntry {
  key: string;
  value: string;
  /** 1-based line number, for error messages. */
  line: number;
}

/** Section name → entries in file order (a key may repeat). */
export type IniFile = Map<string, IniEntry[]>;

export function parseIni(text: string, fileName: string): IniFile {
  const sections: IniFile = new Map();
  let current: IniEntry[] | null = null;
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const lineNo = i + 1;
    const line = lines[i]!.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
    if (line.startsWith('[')) {
      const m = /^\[([^\][]+)\]$/.exec(line);
      if (!m) throw new ConfigError(`${fileName}:${lineNo}: malformed section header ${quote(line)}`);
      const name = m[1]!.trim();
      current = sections.get(name) ?? [];
      sections.set(name, current);
      continue;
    }
    const eq = line.indexOf('=');
    if (eq <= 0) throw new ConfigError(`${fileName}:${lineNo}: expected 'key = value', got ${quote(line)}`);
    if (current === null) throw new ConfigError(`${fileName}:${lineNo}: key outside of any [section]`);
    current.push({ key: line.slice(0, eq).trim(), value: line.slice(eq + 1).trim(), line: lineNo });
  }
  return sections;
}

/** A GLib string list: items separated by ';', a trailing ';' allowed, `\;` for a literal semicolon. */
export function splitList(value: string): string[] {
  const items: string[] = [];
  let item = '';
  for (let i = 0; i < value.length; i++) {
    const c = value[i]!;
    if (c === '\\' && value[i + 1] === ';') {
      item += ';';
      i++;
    } else if (c === ';') {
      items.push(item.trim());
      item = '';
    } else {
      item += c;
    }
  }
  if (item.trim() !== '') items.push(item.trim());
  return items;
}

/** Quote a value for a one-line error message (control characters escaped). */
export function quote(value: string): string {
  return JSON.stringify(value).replace(/^"|"$/g, "'");
}
