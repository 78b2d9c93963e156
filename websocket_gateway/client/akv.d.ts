// TypeScript declarations of akv.js, the browser client of the async_kv gateway (protocol
// version 1, websocket_gateway/README.md). `import { AkvGateway } from 'akv-gateway-client'`,
// or the global `AkvGateway` of the classic script.

export type AkvState = 'connecting' | 'connected' | 'disconnected' | 'closed';
export type AkvTransport = 'websocket' | 'sse';

/** A channel's place in its history: the offset names a message, the epoch the history. */
export interface AkvPosition {
    offset: string;
    epoch?: string;
}

export interface AkvPush<T = unknown> {
    channel: string;
    /** Present on channels with history. */
    offset?: string;
    data: T;
}

export interface AkvError {
    code: string;
    message: string;
    channel?: string;
    /** The WebSocket close code, for code 'closed'. */
    close?: number;
    error?: unknown;
}

/** A presence entry: the session's client id, its token's subject and info. */
export interface AkvPresenceEntry {
    client: string;
    user?: string;
    sub?: string;
    info?: Record<string, unknown>;
}

export interface AkvJoinLeave {
    channel: string;
    who: AkvPresenceEntry;
}

export interface AkvReply {
    id: number;
    ok?: true;
    [field: string]: unknown;
}

export interface AkvOptions {
    /** The connection token (an HS256 JWT from your backend); none: anonymous. */
    token?: string;
    /** Called before a connect when there is no token yet, and after the token was refused. */
    getToken?: () => Promise<string>;
    /** Reconnect backoff in ms (500, 15000). */
    minDelay?: number;
    maxDelay?: number;
    /** ms from opening the transport to the "connected" reply (10000). */
    connectTimeout?: number;
    /** Tried in order until one connects, then kept: ['websocket', 'sse']. */
    transports?: AkvTransport[];
    /** The SSE endpoint; default: the url's host, path /connection/sse. */
    sseUrl?: string;
    debug?: boolean;
    /** Classes to use instead of the globals (tests, Node). */
    WebSocket?: typeof WebSocket;
    EventSource?: typeof EventSource;
    fetch?: typeof fetch;
}

export interface AkvSubscribeOptions {
    /** Resume after this position: what was published since arrives first, once. */
    offset?: string;
    epoch?: string;
    /** Also 'join' and 'leave' events for this channel (channels with presence). */
    joinLeave?: boolean;
}

export declare class AkvSubscription<T = unknown> {
    readonly channel: string;
    /** The newest offset seen on the channel (history channels only). */
    readonly offset: string | undefined;
    readonly epoch: string | undefined;
    /** True while the server confirms the subscription on the current connection. */
    readonly subscribed: boolean;
    unsubscribe(): void;
}

export interface AkvEvents {
    state: AkvState;
    error: AkvError;
    /** Messages may be missing on `channel`: reload your state from it. */
    gap: {channel: string; offset: string; epoch?: string};
    message: AkvPush;
    join: AkvJoinLeave;
    leave: AkvJoinLeave;
    /** A server-side channel (the token's "subs") now delivers. */
    subscribed: {channel: string; offset?: string; epoch?: string; recovered?: boolean};
}

export declare class AkvGateway {
    /** url: 'ws[s]://host:port/ws'; left out: this page's host, path /ws. */
    constructor(url?: string | null, options?: AkvOptions);
    constructor(options: AkvOptions);

    readonly url: string;
    readonly state: AkvState;
    /** What the current connection uses. */
    readonly transport: AkvTransport | undefined;
    readonly clientId: string | undefined;
    readonly subject: string | undefined;
    readonly expires: number | undefined;

    on<E extends keyof AkvEvents>(event: E, fn: (arg: AkvEvents[E]) => void): this;
    off<E extends keyof AkvEvents>(event: E, fn: (arg: AkvEvents[E]) => void): this;
    connect(): this;
    close(): void;

    subscribe<T = unknown>(channel: string, onMessage?: (data: T, push: AkvPush<T>) => void,
                           options?: AkvSubscribeOptions): AkvSubscription<T>;
    /** Resolves with the reply (its offset and epoch on history channels). */
    publish(channel: string, data: unknown): Promise<AkvReply & Partial<AkvPosition>>;
    ping(): Promise<AkvReply>;
    /** Asks the application's RPC proxy: resolves with its `data`, rejects with AkvError. */
    rpc<T = unknown>(method: string, data?: unknown): Promise<T>;
    presence(channel: string): Promise<AkvReply & {channel: string; clients: AkvPresenceEntry[]}>;
    presenceStats(channel: string): Promise<AkvReply & {channel: string; clients: number; users: number}>;

    /** Stream ids "ms-seq" compared as numbers: <0, 0, >0; NaN when either is not one. */
    static compareOffsets(a: string, b: string): number;
    /** The SSE endpoint beside a WebSocket url. */
    static sseUrlOf(wsUrl: string): string;
}

export default AkvGateway;

type AkvGatewayClass = typeof AkvGateway;
declare global {
    // The classic script (akv.js) defines it.
    var AkvGateway: AkvGatewayClass;
}
