/*
 * akv.js: the browser client of the async_kv WebSocket gateway (protocol version 1, see
 * websocket_gateway/README.md). A classic script with no dependencies and no build step: it
 * defines globalThis.AkvGateway. As an ES module: import { AkvGateway } from '/akv.mjs'.
 *
 *   const gw = new AkvGateway('wss://example.com/ws', {token});   // url: see below
 *   gw.on('state', (s) => ...);   // 'connecting' | 'connected' | 'disconnected' | 'closed'
 *   gw.on('error', (e) => ...);   // {code, message, channel?, close?}: see "Errors"
 *   gw.on('gap', ({channel, offset, epoch}) => ...); // messages may be missing: reload state
 *   gw.on('message', (m) => ...); // every push delivered, {channel, offset, data}
 *   const sub = gw.subscribe('news', (data, push) => ..., {offset, epoch}); // resume after
 *   sub.offset, sub.epoch;  // the position on the channel (history channels only)
 *   sub.unsubscribe();
 *   gw.subscribe('room', onData, {joinLeave: true}); // also join / leave events (presence)
 *   gw.on('join', ({channel, who}) => ...);           // who: {client, sub, info?}
 *   gw.on('leave', ({channel, who}) => ...);
 *   const {clients} = await gw.presence('room');      // who is subscribed, on every gateway
 *   const {clients, users} = await gw.presenceStats('room');
 *   const answer = await gw.rpc('method', {any: 'json'}); // the app's RPC proxy answers
 *   gw.on('subscribed', ({channel, offset, epoch}) => ...); // a server-side channel (token)
 *   gw.transport;  // 'websocket' or 'sse': what the current connection uses
 *   const reply = await gw.publish('news', {text: 'hi'});  // reply.offset on history channels
 *   await gw.ping();
 *   gw.connect();       // returns gw; gw.close() stops for good (until connect() again)
 *
 * new AkvGateway(url, options)
 *   url       'ws://host:port/ws'; left out (or null): this page's host, path /ws, wss on https.
 *   options   token     the connection token (a JWT from your backend); none: anonymous.
 *             getToken  async () => token: called before a connect when there is no token yet
 *                       and after the server refused the token (close 4001, expired: 4003).
 *                       Without it, such a close ends the client (state 'closed').
 *             minDelay, maxDelay  reconnect backoff in ms (500, 15000): attempt n waits a
 *                       random time between minDelay and min(maxDelay, minDelay * 2^(n+1)),
 *                       back to the first step once a connect succeeds.
 *             connectTimeout  ms from opening the socket to the "connected" reply (10000).
 *             debug     log the traffic with console.debug.
 *             transports  ['websocket', 'sse'] (the default): tried in this order until one
 *                       connects, then kept. Server-Sent Events (EventSource down, POST up) get
 *                       through proxies that refuse WebSockets.
 *             sseUrl    where the gateway's SSE endpoint is; default: url's host, path
 *                       /connection/sse (requests go to /connection/emulation beside it).
 *             WebSocket, EventSource, fetch  the classes to use (tests); default the globals.
 *
 * Resuming: for each channel with history the client keeps its position (the newest offset it
 * has seen, and the history's epoch) and, on every reconnect, subscribes again from it, so what
 * was published meanwhile arrives once, in order. A push whose offset is not newer than the
 * last one seen is dropped. When messages may be missing (the history was trimmed past the
 * position, or Redis lost it: a new epoch), the client emits 'gap' and carries on from the
 * newest position; the server's "resync" push (its history changed while subscribed) makes
 * the client subscribe again to learn that.
 *
 * Transports: when the WebSocket cannot connect (closed before it opened), the client tries the
 * next transport at once; one that connected is kept for the reconnects that follow. Over SSE
 * everything works the same (auth, limits, resume, presence); only the messages travel as
 * events of one long response, and requests as POSTs.
 *
 * Requests (publish, ping, presence) need a connected client: otherwise, and when the connection drops
 * before the reply, the promise rejects with {code: 'disconnected', message}. A reply
 * {error: {code, message}} rejects with that error object.
 *
 * Errors ('error' event): a server error reply to a subscribe ({code, message, channel}) or
 * with no id; a close that says something is wrong ({code: 'closed', close, message}: 1003,
 * 1007, 1009, 1011, 4001, 4003); a throwing handler ({code: 'handler', error}).
 */
(function () {
    'use strict';

    const CLOSE_SHUTDOWN = 1001;
    const CLOSE_BAD_TOKEN = 4001;
    const CLOSE_TOKEN_EXPIRED = 4003;
    const CLOSE_SLOW_CONSUMER = 4008;
    // Closes that only tell the client to come back later: no 'error' event.
    const ROUTINE_CLOSES = new Set([1000, CLOSE_SHUTDOWN, 1005, 1006, 1008, CLOSE_SLOW_CONSUMER]);

    // Stream ids "ms-seq" compared as two numbers. The parts are decimal digit strings of any
    // length (no precision lost above 2^53): compared by length, then digit by digit.
    function compareDigits(a, b) {
        a = a.replace(/^0+(?=\d)/, '');
        b = b.replace(/^0+(?=\d)/, '');
        if (a.length !== b.length) return a.length < b.length ? -1 : 1;
        return a < b ? -1 : a > b ? 1 : 0;
    }
    function parseOffset(offset) {
        const m = /^(\d+)-(\d+)$/.exec(String(offset));
        return m ? [m[1], m[2]] : null;
    }
    // <0, 0, >0 like a comparator; NaN when either is no stream id (then nothing is dropped).
    function compareOffsets(a, b) {
        const pa = parseOffset(a);
        const pb = parseOffset(b);
        if (!pa || !pb) return NaN;
        return compareDigits(pa[0], pb[0]) || compareDigits(pa[1], pb[1]);
    }

    function defaultUrl() {
        const loc = globalThis.location;
        if (!loc || !loc.host) throw new Error('AkvGateway: no url given and no page location');
        return (loc.protocol === 'https:' ? 'wss://' : 'ws://') + loc.host + '/ws';
    }

    function disconnected(message) {
        return {code: 'disconnected', message};
    }

    // The SSE endpoint beside a WebSocket url: ws -> http, wss -> https, path /connection/sse.
    function sseUrlOf(wsUrl) {
        const u = new URL(wsUrl, globalThis.location ? globalThis.location.href : undefined);
        u.protocol = u.protocol === 'wss:' ? 'https:' : u.protocol === 'ws:' ? 'http:' : u.protocol;
        u.pathname = '/connection/sse';
        u.search = '';
        return u.toString();
    }

    // A WebSocket look-alike over Server-Sent Events, so the client has one code path: the
    // first send (the connect message) opens the EventSource with it in the query string; the
    // server's first message names the session's key, under which later sends are POSTed, in
    // order; {"op":"close"} and a failed stream end it like a WebSocket's close.
    class SseSocket {
        constructor(url, EventSourceClass, fetchFn) {
            this._url = url;
            this._EventSource = EventSourceClass;
            this._fetch = fetchFn;
            this._source = null;
            this._key = null;
            this._queue = [];
            this._posting = false;
            this._closed = false;
            this.onopen = this.onmessage = this.onerror = this.onclose = null;
            setTimeout(() => {
                if (!this._closed && this.onopen) this.onopen();
            }, 0);
        }

        send(text) {
            if (this._closed) return;
            if (!this._source) {
                const u = new URL(this._url);
                u.searchParams.set('connect', text);
                this._source = new this._EventSource(u.toString());
                this._source.onmessage = (ev) => this._onEvent(ev.data);
                this._source.onerror = () => this._fail(1006, 'event stream failed');
                return;
            }
            this._queue.push(text);
            this._post();
        }

        close(code, reason) {
            if (this._closed) return;
            this._end(code || 1000, reason || '');
        }

        _onEvent(data) {
            if (this._closed || typeof data !== 'string') return;
            const lines = [];
            for (const line of data.split('\n')) {
                let msg = null;
                if (line.startsWith('{"op":"session"') || line.startsWith('{"op":"close"')) {
                    try {
                        msg = JSON.parse(line);
                    } catch (e) {
                        msg = null;
                    }
                }
                if (msg && msg.op === 'session') {
                    this._key = msg.key;
                    this._post();
                } else if (msg && msg.op === 'close') {
                    if (lines.length && this.onmessage) this.onmessage({data: lines.join('\n')});
                    this._end(msg.code, msg.reason);
                    return;
                } else {
                    lines.push(line);
                }
            }
            if (lines.length && this.onmessage) this.onmessage({data: lines.join('\n')});
        }

        async _post() {
            if (this._posting || !this._key || this._queue.length === 0) return;
            this._posting = true;
            while (!this._closed && this._queue.length) {
                const body = this._queue.splice(0).join('\n');
                const target = new URL(this._url);
                target.pathname = '/connection/emulation';
                target.search = '?session=' + encodeURIComponent(this._key);
                try {
                    const res = await this._fetch(target.toString(), {
                        method: 'POST', body, headers: {'Content-Type': 'text/plain'},
                    });
                    if (!res.ok) throw new Error('emulation: HTTP ' + res.status);
                } catch (e) {
                    this._fail(1006, String(e));
                }
            }
            this._posting = false;
        }

        _fail(code, reason) {
            if (this._closed) return;
            if (this.onerror) this.onerror();
            this._end(code, reason);
        }

        _end(code, reason) {
            this._closed = true;
            if (this._source) this._source.close(); // no reconnect of its own: the client decides
            const onclose = this.onclose;
            this.onopen = this.onmessage = this.onerror = this.onclose = null;
            if (onclose) setTimeout(() => onclose({code, reason}), 0);
        }
    }

    class AkvSubscription {
        constructor(client, channel, onMessage) {
            this._client = client;
            this.channel = channel;
            this._onMessage = onMessage;
            this._active = true;
        }
        // The newest offset seen on the channel (undefined until the server named one).
        get offset() {
            const ch = this._client._channels.get(this.channel);
            return ch ? ch.offset : undefined;
        }
        // The epoch of the channel's history that offset belongs to.
        get epoch() {
            const ch = this._client._channels.get(this.channel);
            return ch ? ch.epoch : undefined;
        }
        // True while the server confirms the subscription on the current connection.
        get subscribed() {
            const ch = this._client._channels.get(this.channel);
            return this._active && !!ch && ch.confirmed;
        }
        unsubscribe() {
            if (!this._active) return;
            this._active = false;
            this._client._removeSubscription(this);
        }
    }

    class AkvGateway {
        constructor(url, options) {
            if (url !== null && typeof url === 'object') {
                options = url;
                url = undefined;
            }
            const o = options || {};
            this.url = url || defaultUrl();
            this._token = o.token;
            this._getToken = typeof o.getToken === 'function' ? o.getToken : null;
            this._minDelay = o.minDelay !== undefined ? o.minDelay : 500;
            this._maxDelay = Math.max(this._minDelay, o.maxDelay !== undefined ? o.maxDelay : 15000);
            this._connectTimeout = o.connectTimeout !== undefined ? o.connectTimeout : 10000;
            this._debug = !!o.debug;
            this._WebSocket = o.WebSocket || globalThis.WebSocket;
            this._EventSource = o.EventSource || globalThis.EventSource;
            this._fetch = o.fetch || (globalThis.fetch && globalThis.fetch.bind(globalThis));
            this._transports = (o.transports || ['websocket', 'sse']).filter(
                (t) => t === 'websocket' || (t === 'sse' && this._EventSource && this._fetch));
            if (this._transports.length === 0) throw new TypeError('AkvGateway: no usable transport');
            this._sseUrl = o.sseUrl;
            this._transportIndex = 0;
            this.transport = undefined;  // of the current connection
            this._opened = false;        // the current socket opened (the transport gets through)

            this.state = 'disconnected';
            this.clientId = undefined; // from the server's "connected" reply
            this.subject = undefined;
            this.expires = undefined;

            this._ws = null;
            this._ready = false;         // the server said "connected" on this._ws
            this._wanted = false;        // connect() called and close() not since
            this._tokenStale = this._token === undefined && !!this._getToken;
            this._attempt = 0;           // failed connects since the last success
            this._reconnectTimer = null;
            this._connectTimer = null;
            this._nextId = 1;
            this._pending = new Map();   // request id -> {resolve, reject}
            // channel -> {subs: Set<AkvSubscription>, offset, epoch, confirmed, retryTimer}
            this._channels = new Map();
            this._listeners = new Map(); // event -> Set<fn>
        }

        on(event, fn) {
            if (!this._listeners.has(event)) this._listeners.set(event, new Set());
            this._listeners.get(event).add(fn);
            return this;
        }

        off(event, fn) {
            const set = this._listeners.get(event);
            if (set) set.delete(fn);
            return this;
        }

        connect() {
            this._wanted = true;
            if (!this._ws && !this._reconnectTimer && this.state !== 'connecting') this._open();
            return this;
        }

        close() {
            this._wanted = false;
            clearTimeout(this._reconnectTimer);
            this._reconnectTimer = null;
            const ws = this._ws;
            this._dropSocket('closed by the client');
            if (ws) {
                try {
                    ws.close(1000, 'bye');
                } catch (e) {
                    // already closing
                }
            }
            this._setState('closed');
        }

        subscribe(channel, onMessage, options) {
            if (typeof channel !== 'string' || channel === '')
                throw new TypeError('AkvGateway.subscribe: channel must be a non-empty string');
            const sub = new AkvSubscription(this, channel, onMessage);
            let ch = this._channels.get(channel);
            if (!ch) {
                const from = options && options.offset;
                const epoch = options && options.epoch;
                ch = {subs: new Set(), offset: from || undefined, epoch: epoch || undefined,
                      joinLeave: !!(options && options.joinLeave), confirmed: false,
                      retryTimer: null};
                this._channels.set(channel, ch);
                ch.subs.add(sub);
                if (this._ready) this._sendSubscribe(channel, ch);
            } else {
                ch.subs.add(sub);
                if (options && options.joinLeave && !ch.joinLeave) {
                    ch.joinLeave = true; // asked for later: subscribe again with it
                    if (this._ready) this._request({op: 'unsubscribe', channel}, {
                        resolve: () => this._sendSubscribe(channel, ch),
                        reject: () => {},
                    });
                }
            }
            return sub;
        }

        publish(channel, data) {
            return this._request({op: 'publish', channel, data});
        }

        ping() {
            return this._request({op: 'ping'});
        }

        // Asks the application's RPC proxy (the gateway's --proxy-rpc): resolves with its
        // reply's `data`; rejects with {code, message}, the application's own error included.
        rpc(method, data) {
            const message = {op: 'rpc', method};
            if (data !== undefined) message.data = data;
            return this._request(message).then((reply) => reply.data);
        }

        // Who is subscribed to `channel` on every gateway: {clients: [{client, sub, info?}]}.
        presence(channel) {
            return this._request({op: 'presence', channel});
        }

        // {clients, users}: how many sessions and distinct users are subscribed to `channel`.
        presenceStats(channel) {
            return this._request({op: 'presence_stats', channel});
        }

        // Internals.

        _log(...args) {
            if (this._debug) console.debug('[akv]', ...args);
        }

        _emit(event, arg) {
            const set = this._listeners.get(event);
            if (!set) return;
            for (const fn of Array.from(set)) {
                try {
                    fn(arg);
                } catch (e) {
                    if (event === 'error') console.error(e);
                    else this._emit('error', {code: 'handler', message: String(e), error: e});
                }
            }
        }

        _setState(state) {
            if (this.state === state) return;
            this._log('state', state);
            this.state = state;
            this._emit('state', state);
        }

        async _open() {
            this._setState('connecting');
            let token = this._token;
            if (this._tokenStale && this._getToken) {
                try {
                    token = await this._getToken();
                } catch (e) {
                    this._emit('error', {code: 'token', message: 'getToken failed: ' + e, error: e});
                    this._scheduleReconnect();
                    return;
                }
                if (!this._wanted || this._ws) return; // close() or connect() meanwhile
                this._token = token;
                this._tokenStale = false;
            }
            let ws;
            const transport = this._transports[this._transportIndex];
            try {
                ws = transport === 'sse'
                    ? new SseSocket(this._sseUrl || sseUrlOf(this.url), this._EventSource, this._fetch)
                    : new this._WebSocket(this.url);
            } catch (e) {
                this._emit('error', {code: 'url', message: String(e), error: e});
                this._wanted = false;
                this._setState('closed');
                return;
            }
            this._ws = ws;
            this.transport = transport;
            this._opened = false;
            ws.onopen = () => {
                if (ws !== this._ws) return;
                this._opened = true;
                const hello = {op: 'connect'};
                if (token !== undefined && token !== null) hello.token = token;
                this._send(hello);
            };
            ws.onmessage = (ev) => {
                if (ws !== this._ws) return;
                this._onFrame(ev.data);
            };
            ws.onerror = () => {
                // Browsers follow it with onclose (code 1006), which decides; some WebSocket
                // implementations (Node 20's) do not, hence the fallback.
                this._log('socket error');
                setTimeout(() => {
                    if (ws !== this._ws) return;
                    try {
                        ws.close();
                    } catch (e) {
                        // not open yet
                    }
                    this._onClose(1006, 'network error');
                }, 100);
            };
            ws.onclose = (ev) => {
                if (ws !== this._ws) return;
                this._onClose(ev.code, ev.reason);
            };
            this._connectTimer = setTimeout(() => {
                if (ws !== this._ws || this.state === 'connected') return;
                this._log('no "connected" reply in time');
                try {
                    ws.close();
                } catch (e) {
                    // closing anyway
                }
                this._onClose(1006, 'connect timed out');
            }, this._connectTimeout);
        }

        _send(message) {
            const text = JSON.stringify(message);
            this._log('->', text);
            this._ws.send(text);
        }

        // A promise of the reply; or, given `handlers` ({resolve, reject}), calls them as the
        // reply is read, before the rest of its frame (the client's own requests need that).
        _request(message, handlers) {
            if (!this._ready) {
                const error = disconnected('not connected');
                if (handlers) return handlers.reject(error);
                return Promise.reject(error);
            }
            const id = this._nextId++;
            const send = (h) => {
                this._pending.set(id, h);
                this._send(Object.assign({id}, message));
            };
            if (handlers) return send(handlers);
            return new Promise((resolve, reject) => send({resolve, reject}));
        }

        _onFrame(data) {
            if (typeof data !== 'string') return; // the protocol has text frames only
            this._log('<-', data);
            for (const line of data.split('\n')) {
                if (line.trim() === '') continue;
                let msg;
                try {
                    msg = JSON.parse(line);
                } catch (e) {
                    this._emit('error', {code: 'bad_message', message: 'not JSON: ' + line});
                    continue;
                }
                if (msg === null || typeof msg !== 'object') continue;
                this._onMessage(msg);
                if (!this._ws) return; // a handler closed the client
            }
        }

        _onMessage(msg) {
            if (msg.op === 'connected') {
                this._onConnected(msg);
            } else if (msg.id !== undefined && msg.id !== null) {
                const p = this._pending.get(msg.id);
                if (!p) return;
                this._pending.delete(msg.id);
                if (msg.error) p.reject(msg.error);
                else p.resolve(msg);
            } else if (msg.error) {
                this._emit('error', msg.error);
            } else if (msg.op === 'resync' && typeof msg.channel === 'string') {
                // The server dropped the subscription: its history changed under it.
                const ch = this._channels.get(msg.channel);
                if (ch && this._ready) this._sendSubscribe(msg.channel, ch);
            } else if ((msg.op === 'join' || msg.op === 'leave') && typeof msg.channel === 'string') {
                this._emit(msg.op, {channel: msg.channel, who: msg.who});
            } else if (msg.op === 'subscribed') {
                // A server-side channel (the token's "subs") now delivers.
                this._emit('subscribed', msg);
            } else if (msg.op === 'subscribe_failed') {
                this._emit('error', Object.assign({channel: msg.channel}, msg.error));
            } else if (typeof msg.channel === 'string' && msg.op === undefined) {
                this._onPush(msg);
            }
        }

        _onConnected(msg) {
            clearTimeout(this._connectTimer);
            this._connectTimer = null;
            this._attempt = 0;
            this._everConnected = true; // this transport gets through: keep it
            this.clientId = msg.client;
            this.subject = msg.sub;
            this.expires = msg.expires;
            this._ready = true;
            // Subscribe before telling anyone: a publish made on 'connected' then comes after.
            for (const [channel, ch] of this._channels) this._sendSubscribe(channel, ch);
            this._setState('connected');
        }

        _sendSubscribe(channel, ch) {
            clearTimeout(ch.retryTimer);
            ch.retryTimer = null;
            ch.confirmed = false;
            const message = {op: 'subscribe', channel};
            if (ch.joinLeave) message.join_leave = true;
            if (ch.offset !== undefined) {
                message.offset = ch.offset;
                if (ch.epoch !== undefined) message.epoch = ch.epoch;
            }
            this._request(message, {
                resolve: (reply) => this._onSubscribed(channel, ch, reply),
                reject: (error) => this._onSubscribeFailed(channel, ch, error),
            });
        }

        _onSubscribed(channel, ch, reply) {
            if (this._channels.get(channel) !== ch) return; // unsubscribed meanwhile
            ch.confirmed = true;
            if (typeof reply.offset === 'string') {
                const epochChanged = ch.epoch !== undefined && reply.epoch !== ch.epoch;
                if (typeof reply.epoch === 'string') ch.epoch = reply.epoch;
                if (reply.recovered === false) {
                    // Nothing follows: carry on from the newest position.
                    ch.offset = reply.offset;
                    this._emit('gap', {channel, offset: reply.offset, epoch: ch.epoch});
                } else if (epochChanged) {
                    ch.offset = reply.offset;
                } else if (ch.offset === undefined || compareOffsets(reply.offset, ch.offset) > 0) {
                    if (reply.recovered !== true) ch.offset = reply.offset;
                    // recovered: the missed messages follow and move the offset themselves.
                }
            }
        }

        _onSubscribeFailed(channel, ch, error) {
            if (this._channels.get(channel) !== ch) return;
            if (error.code === 'disconnected') return; // subscribed again on reconnect
            if (error.code === 'already_subscribed') {
                ch.confirmed = true;
                return;
            }
            this._emit('error', Object.assign({channel}, error));
            if (error.code === 'unavailable') {
                // Redis is away for a moment: try again while the connection lasts.
                ch.retryTimer = setTimeout(() => {
                    ch.retryTimer = null;
                    if (this._ready && this._channels.get(channel) === ch)
                        this._sendSubscribe(channel, ch);
                }, this._delay());
                return;
            }
            // forbidden, bad_request: it would fail on every reconnect as well.
            for (const sub of ch.subs) sub._active = false;
            this._channels.delete(channel);
        }

        _onPush(msg) {
            const ch = this._channels.get(msg.channel);
            if (ch && typeof msg.offset === 'string') {
                if (ch.offset !== undefined && compareOffsets(msg.offset, ch.offset) <= 0) {
                    this._log('dropped duplicate', msg.channel, msg.offset);
                    return;
                }
                ch.offset = msg.offset;
            }
            const push = {channel: msg.channel, offset: msg.offset, data: msg.data};
            this._emit('message', push);
            if (!ch) return;
            for (const sub of Array.from(ch.subs)) {
                if (!sub._active || typeof sub._onMessage !== 'function') continue;
                try {
                    sub._onMessage(push.data, push);
                } catch (e) {
                    this._emit('error', {code: 'handler', message: String(e), error: e});
                }
            }
        }

        _removeSubscription(sub) {
            const ch = this._channels.get(sub.channel);
            if (!ch || !ch.subs.delete(sub) || ch.subs.size > 0) return;
            clearTimeout(ch.retryTimer);
            this._channels.delete(sub.channel);
            if (this._ready)
                this._request({op: 'unsubscribe', channel: sub.channel}, {
                    resolve: () => {},
                    reject: () => {},
                });
        }

        // Forgets the socket: pending requests reject, subscriptions wait for the next connect.
        _dropSocket(why) {
            clearTimeout(this._connectTimer);
            this._connectTimer = null;
            const ws = this._ws;
            this._ws = null;
            this._ready = false; // requests need a "connected" reply on a new socket
            if (ws) ws.onopen = ws.onmessage = ws.onerror = ws.onclose = null;
            for (const ch of this._channels.values()) {
                ch.confirmed = false;
                clearTimeout(ch.retryTimer);
                ch.retryTimer = null;
            }
            const pending = Array.from(this._pending.values());
            this._pending.clear();
            for (const p of pending) p.reject(disconnected(why));
        }

        _onClose(code, reason) {
            this._log('closed', code, reason);
            // Never got through (a proxy refusing WebSockets): the next transport, at once.
            const nextTransport = !this._opened && !this._everConnected &&
                this._transportIndex + 1 < this._transports.length;
            const why = 'connection closed (' + code + (reason ? ': ' + reason : '') + ')';
            this._dropSocket(why);
            if (!ROUTINE_CLOSES.has(code))
                this._emit('error', {code: 'closed', close: code, message: why});
            if (code === CLOSE_BAD_TOKEN || code === CLOSE_TOKEN_EXPIRED) {
                if (!this._getToken) {
                    this._wanted = false;
                    this._setState('closed');
                    return;
                }
                this._tokenStale = true;
            }
            if (!this._wanted) {
                this._setState('closed');
                return;
            }
            this._setState('disconnected');
            if (nextTransport) {
                this._transportIndex++;
                this._log('trying transport', this._transports[this._transportIndex]);
                this._open();
                return;
            }
            this._scheduleReconnect();
        }

        // Full jitter: uniform between minDelay and the exponential step, capped at maxDelay.
        _delay() {
            const step = Math.min(this._maxDelay, this._minDelay * Math.pow(2, this._attempt + 1));
            return this._minDelay + Math.random() * (step - this._minDelay);
        }

        _scheduleReconnect() {
            if (!this._wanted || this._reconnectTimer) return;
            const delay = this._delay();
            this._attempt = Math.min(this._attempt + 1, 30);
            this._log('reconnect in', Math.round(delay), 'ms');
            if (this.state !== 'disconnected') this._setState('disconnected');
            this._reconnectTimer = setTimeout(() => {
                this._reconnectTimer = null;
                if (this._wanted && !this._ws) this._open();
            }, delay);
        }
    }

    AkvGateway.compareOffsets = compareOffsets;
    AkvGateway.sseUrlOf = sseUrlOf;
    globalThis.AkvGateway = AkvGateway;
})();
