/** The `interfaces` list of `statistics`: each configured interface and its port pool's use. */
import type { RelayConfig } from '../config/types';
import type { CallManager } from '../call/call-manager';
import type { NgDict } from '../ng/types';
import { ngDict } from '../ng/dict';

export function interfaceStats(config: RelayConfig, manager: CallManager): NgDict[] {
  return config.interfaces.map((iface) => {
    const alloc = manager.sockets.allocator(iface.address);
    const d = ngDict();
    d['name'] = iface.name;
    d['address'] = iface.address;
    const ports = ngDict();
    ports['min'] = config.portMin;
    ports['max'] = config.portMax;
    ports['used'] = alloc.counts().used;
    ports['free'] = alloc.counts().free;
    ports['totals'] = config.portMax - config.portMin + 1;
    d['ports'] = ports;
    return d;
  });
}
