import { BlockList, isIP } from 'node:net';

/** An address as a socket or X-Forwarded-For gives it, compared plainly: no zone id, IPv4-mapped IPv6 as IPv4. */
export function plainAddress(address: string): string {
  const trimmed = address.trim();
  const zone = trimmed.indexOf('%');
  const plain = zone === -1 ? trimmed : trimmed.slice(0, zone);
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(plain);
  return mapped ? mapped[1]! : plain;
}

/**
 * Addresses and CIDR ranges ("10.0.0.0/8", "192.0.2.1", "fd00::/8") as one BlockList. The first entry
 * that is neither (or whose prefix is longer than its family's 32 or 128 bits) throws a RangeError naming it.
 */
export function addressList(entries: readonly string[]): BlockList {
  const list = new BlockList();
  for (const entry of entries) {
    const [raw = '', bits] = entry.split('/');
    const address = plainAddress(raw);
    const family = isIP(address);
    if (family === 0 || (bits !== undefined && !(/^\d{1,3}$/.test(bits) && Number(bits) <= (family === 4 ? 32 : 128)))) {
      throw new RangeError(`not an address or CIDR range: "${entry}"`);
    }
    const type = family === 6 ? 'ipv6' : 'ipv4';
    if (bits === undefined) list.addAddress(address, type);
    else list.addSubnet(address, Number(bits), type);
  }
  return list;
}
