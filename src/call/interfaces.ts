/** Chooses which configured interface (address) a side of a call uses. */
import type { InterfaceConfig } from '../config/types';
import type { AddrType } from '../sdp/types';
import type { Family } from '../dataplane/types';
import { NgError } from '../errors';

export function addrTypeOf(family: Family): AddrType {
  return family === 'IPv6' ? 'IP6' : 'IP4';
}

export function familyOf(addrType: AddrType): Family {
  return addrType === 'IP6' ? 'IPv6' : 'IPv4';
}

export class InterfaceTable {
  private readonly byName = new Map<string, InterfaceConfig[]>();
  readonly defaultName: string;

  constructor(readonly all: readonly InterfaceConfig[]) {
    const first = all[0];
    if (!first) throw new Error('no interface configured');
    this.defaultName = first.name;
    for (const iface of all) {
      const list = this.byName.get(iface.name) ?? [];
      list.push(iface);
      this.byName.set(iface.name, list);
    }
  }

  /**
   * The interface of that logical name (default: the first configured) for the wanted address family;
   * the name's primary (first) address when it has none of that family.
   */
  pick(name: string | null | undefined, family: AddrType | null): InterfaceConfig {
    const list = this.byName.get(name ?? this.defaultName);
    if (!list || list.length === 0) throw new NgError(`Unknown interface name '${name ?? ''}'`);
    const wanted = family ? familyOf(family) : null;
    return list.find((i) => i.family === wanted) ?? (list[0] as InterfaceConfig);
  }

  /** Every address of that logical name, in configuration order (none for an unknown name). */
  addressesOf(name: string): readonly InterfaceConfig[] {
    return this.byName.get(name) ?? [];
  }

  find(name: string, address: string): InterfaceConfig | undefined {
    return this.byName.get(name)?.find((i) => i.address === address);
  }
}
