/** The `bencode` npm package (ESM, untyped), used only as an oracle for our own codec. */
declare module 'bencode' {
  const bencode: {
    decode(buf: Uint8Array): unknown;
    encode(value: unknown): Uint8Array;
  };
  export default bencode;
}
