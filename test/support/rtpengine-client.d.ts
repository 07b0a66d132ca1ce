/**
 * The part of `rtpengine-client` (npm, CommonJS, no types of its own) the integration tests use.
 * Replies are decoded with `bencode.decode(buf, 'utf8')`: byte strings come back as JS strings, integers
 * as numbers.
 */
declare module 'rtpengine-client' {
  import { EventEmitter } from 'node:events';

  export type NgReplyValue = string | number | NgReplyValue[] | NgReplyDict;
  export interface NgReplyDict {
    [key: string]: NgReplyValue;
  }

  /** Request values; the client bencodes them (strings as UTF-8). */
  export type NgRequestValue = string | number | Buffer | NgRequestValue[] | { [key: string]: NgRequestValue };
  export interface NgRequestDict {
    [key: string]: NgRequestValue;
  }

  export interface ClientOptions {
    localPort?: number;
    localAddress?: string;
    /** ms; 0 = wait forever. */
    timeout?: number;
    /** Reject the promise with the error-reason when `result` is `error` (README calls it rejectOnFailure). */
    rejectOnError?: boolean;
  }

  /** UDP ng client; binds udp4 and emits 'listening' when ready. */
  export class Client extends EventEmitter {
    constructor(options?: ClientOptions);
    ping(port: number, host: string): Promise<NgReplyDict>;
    offer(port: number, host: string, options: NgRequestDict): Promise<NgReplyDict>;
    answer(port: number, host: string, options: NgRequestDict): Promise<NgReplyDict>;
    delete(port: number, host: string, options: NgRequestDict): Promise<NgReplyDict>;
    query(port: number, host: string, options: NgRequestDict): Promise<NgReplyDict>;
    list(port: number, host: string, options?: NgRequestDict): Promise<NgReplyDict>;
    statistics(port: number, host: string, options?: NgRequestDict): Promise<NgReplyDict>;
    close(): void;
  }

  export class RtpEngineError extends Error {}
}
