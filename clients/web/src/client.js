// GameClient: the browser's WebSocket speaking the game protocol (protocol/SPEC.md).
//
// Lifecycle: connect() opens the socket (binaryType "arraybuffer") and sends HELLO (or RESUME
// with the token of a previous WELCOME); WELCOME resets the replica; DELTAs are applied to the
// replica (TypedArrays, atomic) and pushed into the interpolation buffer; INPUT_ACKs drive
// prediction / reconciliation. An unexpected drop reconnects with exponential backoff and
// jitter, resuming the same player while the token is valid (4005 -> a fresh HELLO).
//
// Differences from the Python client (clients/client.py), on purpose for a page a person
// watches: it also retries after 1001 (server shutting down: it may come back), never gives up
// (the delay is capped at backoffMax), and when RESUME is refused (4005: grace expired, server
// restarted) it joins again as a new player instead of stopping; so on 4015 (the --workers
// process holding the room died: on the live socket, or answering the RESUME after a 1006).
//
// Cluster (SPEC 7): ERROR + close 4013 REDIRECT reconnects at once to the ERROR's url (or the
// close reason's) with the same HELLO / RESUME; 4014 MOVED (the room was handed over on a
// rolling deploy) RESUMEs there with the current token and re-sends the inputs not yet
// acknowledged (the server ignores seqs it already applied: each is applied once). More than
// MAX_HOPS hops without a WELCOME: status "error", fatal {kind: "redirect"} (a loop).
//
// Whose fault: a malformed message from the server (bad msgpack, a delta that does not apply)
// is the server's: the client logs one console.error, closes the socket (code 4000, the reason
// says what was wrong), reports status "error" and does not retry. A join refusal (4001-4006)
// is a decision: status "rejected" with the server's message, no retry. Our misuse (sending
// before joining, after close) throws.

import {
  CLOSE_REASONS,
  CloseCode,
  ErrorCode,
  MsgType,
  ProtocolError,
  SUBPROTOCOL,
  decodeMessage,
  encodeCamera,
  encodeHello,
  encodeInput,
  encodeLeave,
  encodePing,
  encodeResume,
} from "./messages.js";
import { DeltaError, Replica } from "./delta.js";
import { ViewReplica } from "./view.js";
import { InterpolationBuffer } from "./interpolation.js";
import { AckTracker, Predictor } from "./prediction.js";
import { Stats } from "./stats.js";

/** Close codes after which the client must not reconnect (a decision, or our bug). */
const NO_RETRY = new Set([
  CloseCode.NORMAL,
  1002, 1003, 1007, 1008, 1009, 1010,
  CloseCode.PROTOCOL_MISUSE,
  CloseCode.UNAUTHORIZED,
  CloseCode.ROOM_FULL,
  CloseCode.UNKNOWN_ROOM,
  CloseCode.VERSION_MISMATCH,
  CloseCode.JOIN_REJECTED,
  CloseCode.INPUT_FLOOD,
  CloseCode.ROOM_CRASHED,
  CloseCode.SESSION_REPLACED,
  CloseCode.HELLO_TIMEOUT,
]);

/** Join refusals: shown as "rejected" with the server's message. */
const JOIN_CODES = new Set([4001, 4002, 4003, 4004, 4006]);

/** Redirects / moves followed in a row without a WELCOME before giving up (SPEC 7). */
export const MAX_HOPS = 3;

/** Unacknowledged inputs kept for a re-send after a 4014 move (oldest dropped beyond). */
const MAX_PENDING_INPUTS = 1024;

/** Close code the client uses when the server sent something malformed (browser-legal). */
export const CLIENT_PROTOCOL_CLOSE = 4000;

/** The extensions offered in HELLO when `interest` is on (SPEC section 11): VIEW messages
 * and their SAME pieces ("interest/2"; a server that does not know it answers "interest"
 * alone and sends none). */
export const VIEW_EXT = Object.freeze(["interest", "interest/2"]);

/** A close reason must fit 123 UTF-8 bytes (RFC 6455 section 5.5). */
function clip(reason) {
  const enc = new TextEncoder();
  let r = reason;
  while (enc.encode(r).length > 123) r = r.slice(0, -1);
  return r;
}

/** @typedef {import("../index").ClientStatus} ClientStatus */

export class GameClient {
  /**
   * @param {string} url ws:// or wss:// URL of the game endpoint (e.g. wss://host/ws)
   * @param {import("../index").ClientOptions} [opts]
   */
  constructor(url, opts = {}) {
    this.url = url;
    this.opts = {
      name: opts.name ?? null,
      game: opts.game ?? null,
      room: opts.room ?? null,
      token: opts.token ?? null,
      interest: opts.interest ?? true,
      spectate: opts.spectate ?? false,
      follow: opts.follow ?? null,
      reconnect: opts.reconnect ?? true,
      backoffInitial: opts.backoffInitial ?? 100,
      backoffMax: opts.backoffMax ?? 5000,
      jitter: opts.jitter ?? true,
      maxAttempts: opts.maxAttempts ?? Infinity,
      pingInterval: opts.pingInterval ?? 1000,
      stallTimeout: opts.stallTimeout ?? 5000,
      interpolationDelay: opts.interpolationDelay ?? 0.1,
      angles: opts.angles ?? [],
      sendRenderTick: opts.sendRenderTick ?? true,
      step: opts.step ?? null,
      stateOf: opts.stateOf ?? null,
      WebSocket: opts.WebSocket ?? globalThis.WebSocket,
      log: opts.log ?? console,
    };
    /** @type {ClientStatus} */
    this.status = "idle";
    /** Human-readable detail of the status (why closed, when the next attempt is...). */
    this.statusDetail = "";
    /** @type {any} the last WELCOME */
    this.welcome = null;
    /** @type {number | null} */
    this.playerId = null;
    /** @type {WireSchema | null} */
    this.schema = null;
    /** @type {Replica | null} authoritative replicated world (newest DELTA applied) */
    this.world = null;
    this.interpolation = new InterpolationBuffer({ delay: this.opts.interpolationDelay, angles: this.opts.angles });
    this.acks = new AckTracker();
    /** @type {Predictor<any> | null} */
    this.predictor = null;
    this.stats = new Stats();
    /** @type {{code: number, message: string} | null} the last ERROR from the server */
    this.lastServerError = null;
    /** @type {{code: number, reason: string} | null} */
    this.lastClose = null;
    this.seq = 0;
    this.attempt = 0;
    this._ws = null;
    this._resume = null; // {token, until}
    this._handlers = new Map();
    this._pingTimer = null;
    this._retryTimer = null;
    this._nextRetryAt = null;
    this._userClosed = false;
    this._fatal = null;
    this._pings = new Map();
    this._lastMessageAt = 0;
    this._resyncs = 0; // deltas that did not apply since the last one that did
    this.serverTick = null;
    /** @type {string[]} nodes we were sent to (4013 / 4014) since the last WELCOME */
    this.hops = [];
    this._moved = false; // a 4014 happened: re-send unacknowledged inputs after WELCOME
    /** @type {{seq: number, data: any}[]} inputs sent and not yet acknowledged */
    this.pendingInputs = [];
  }

  // ---------------------------------------------------------------- events

  /**
   * Subscribe to an event: "status", "welcome", "delta", "event", "servererror", "ack",
   * "close", "fatal". Returns an unsubscribe function.
   */
  on(type, fn) {
    let set = this._handlers.get(type);
    if (!set) this._handlers.set(type, (set = new Set()));
    set.add(fn);
    return () => set.delete(fn);
  }

  _emit(type, detail) {
    const set = this._handlers.get(type);
    if (!set) return;
    for (const fn of [...set]) {
      try {
        fn(detail);
      } catch (e) {
        this.opts.log.error(`gameclient: "${type}" handler threw`, e);
      }
    }
  }

  _setStatus(status, detail = "") {
    if (this.status === status && this.statusDetail === detail) return;
    this.status = status;
    this.statusDetail = detail;
    this._emit("status", { status, detail });
  }

  // ---------------------------------------------------------------- public API

  /** Open the connection (idempotent while connecting/connected). */
  connect() {
    if (this._ws && this._ws.readyState <= 1) return;
    this._userClosed = false;
    this._fatal = null;
    this._open();
  }

  /** Leave the game (LEAVE + close 1000) and stop reconnecting. */
  close() {
    this._userClosed = true;
    this._clearTimers();
    const ws = this._ws;
    if (ws && ws.readyState === 1) {
      this._sendRaw(encodeLeave());
      ws.close(1000, "leaving");
    } else if (ws && ws.readyState === 0) {
      ws.close();
    }
    this._setStatus("closed", "you left the game");
  }

  /** True once WELCOME arrived on the current connection. */
  get joined() {
    return this.status === "connected";
  }

  /** Seconds until the next reconnect attempt (null when none is scheduled). */
  get retryIn() {
    return this._nextRetryAt === null ? null : Math.max(0, (this._nextRetryAt - performance.now()) / 1000);
  }

  /**
   * Send one input with the next seq; returns the seq, or 0 if not joined (the input is
   * dropped: inputs are only meaningful for the current state).
   * @param {Record<string, number | boolean | string | null>} data
   */
  sendInput(data) {
    if (this._userClosed) throw new Error("GameClient.sendInput after close()");
    if (!this.joined) return 0;
    this.seq = (this.seq + 1) >>> 0 || 1;
    const rt = this.opts.sendRenderTick ? this.renderTick : null;
    this._sendRaw(encodeInput(this.seq, data, rt));
    this.pendingInputs.push({ seq: this.seq, data, rt });
    if (this.pendingInputs.length > MAX_PENDING_INPUTS) this.pendingInputs.shift();
    if (this.predictor) this.predictor.record(this.seq, data);
    return this.seq;
  }

  /**
   * Spectators: move the free camera to centre (x, y), size (w, h) world units (clamped by
   * the server), or follow a player id. Returns false when not joined.
   */
  camera(x, y, w = null, h = null, follow = null) {
    if (!this.joined) return false;
    return this._sendRaw(encodeCamera(x, y, w, h, follow));
  }

  /** Send a PING now (also done every pingInterval ms). */
  ping() {
    if (!this._ws || this._ws.readyState !== 1) return;
    const t = Math.round(performance.now() * 1000) / 1000;
    this._pings.set(t, true);
    if (this._pings.size > 32) this._pings.delete(this._pings.keys().next().value);
    this._sendRaw(encodePing(t));
  }

  /**
   * Test/debug hook: drop the socket without LEAVE, as a network cut would, so the client
   * reconnects and resumes. Browsers cannot send 1006, so this closes with 3000.
   */
  dropConnection() {
    if (this._ws && this._ws.readyState <= 1) this._ws.close(3000, "connection dropped by the client");
  }

  /** The local player's entity id: WELCOME "entity", else the entity owned by our player. */
  get entityId() {
    if (!this.welcome) return null;
    if (this.welcome.entity) return this.welcome.entity;
    const w = this.world;
    if (!w || this.playerId === null) return null;
    for (const f of w.schema.fields) {
      if (f.kind !== "player") continue;
      const col = w.column(f.name);
      const r = col.indexOf(this.playerId);
      if (r >= 0) return w.ids[r];
    }
    return null;
  }

  /**
   * The server tick on screen now, sent as INPUT "rt" for the server's lag compensation
   * (SPEC.md section 2): the tick nearest to the render time of the last frame() (the
   * interpolation time), never above the latest tick received; the latest tick when frame()
   * was never called (no interpolation in use); null before the first snapshot.
   * @returns {number | null}
   */
  get renderTick() {
    const w = this.world;
    if (w === null || w.tick === null) return null;
    const shown = this.interpolation.lastRenderTime;
    const rate = this.interpolation.tickRate;
    if (shown === null || !rate) return w.tick;
    return Math.max(0, Math.min(w.tick, Math.round(shown * rate)));
  }

  /** The interpolated frame to draw now (null before the first snapshot). */
  frame(now) {
    return this.interpolation.sample(now);
  }

  // ---------------------------------------------------------------- socket plumbing

  _open() {
    this._clearTimers();
    const resuming = this._resume !== null && performance.now() < this._resume.until;
    this._setStatus(this.attempt === 0 ? "connecting" : "reconnecting",
      this.attempt === 0 ? `connecting to ${this.url}` : `reconnecting (attempt ${this.attempt})`);
    let ws;
    try {
      // Offer the subprotocol: the server selects it (a server that selects none is fine).
      ws = new this.opts.WebSocket(this.url, [SUBPROTOCOL]);
    } catch (e) {
      this._fail(`cannot open ${this.url}: ${e instanceof Error ? e.message : e}`);
      return;
    }
    ws.binaryType = "arraybuffer";
    this._ws = ws;
    this._lastMessageAt = performance.now();
    ws.onopen = () => {
      if (ws !== this._ws) return;
      this._setStatus("joining", resuming ? "resuming session" : "joining");
      if (resuming) this._sendRaw(encodeResume(this._resume.token));
      else this._sendRaw(encodeHello({ ...this.opts, ext: this.opts.interest ? VIEW_EXT : [] }));
      this._pingTimer = setInterval(() => this._tick(), this.opts.pingInterval);
    };
    ws.onmessage = (ev) => {
      if (ws !== this._ws) return;
      this._onMessage(ev.data);
    };
    ws.onerror = () => {
      /* the close event follows with the code; nothing useful to add here */
    };
    ws.onclose = (ev) => {
      if (ws !== this._ws) return;
      this._onClose(ev.code, ev.reason, ev.wasClean);
    };
  }

  _tick() {
    if (this.status === "connected" || this.status === "joining") {
      const silent = performance.now() - this._lastMessageAt;
      if (silent > this.opts.stallTimeout) {
        this.opts.log.warn(`gameclient: no message from the server for ${Math.round(silent)} ms, reconnecting`);
        this._ws?.close(3001, "server stalled");
        this._onClose(1006, "server stalled", false);
        return;
      }
      this.ping();
    }
  }

  _sendRaw(bytes) {
    const ws = this._ws;
    if (!ws || ws.readyState !== 1) return false;
    ws.send(bytes);
    this.stats.sent(bytes.byteLength);
    return true;
  }

  _clearTimers() {
    if (this._pingTimer !== null) clearInterval(this._pingTimer);
    if (this._retryTimer !== null) clearTimeout(this._retryTimer);
    this._pingTimer = null;
    this._retryTimer = null;
    this._nextRetryAt = null;
  }

  /** The server broke the protocol: log once, close, stop. */
  _protocolFailure(err) {
    const msg = err instanceof Error ? err.message : String(err);
    this.opts.log.error(`gameclient: malformed data from the server, closing: ${msg}`);
    this._fatal = { kind: "protocol", message: msg };
    const ws = this._ws;
    this._ws = null;
    this._clearTimers();
    if (ws && ws.readyState <= 1) ws.close(CLIENT_PROTOCOL_CLOSE, clip(`malformed server message: ${msg}`));
    this._setStatus("error", `the server sent malformed data: ${msg}`);
    this._emit("fatal", { kind: "protocol", message: msg });
    this._emit("close", { code: CLIENT_PROTOCOL_CLOSE, reason: msg, willReconnect: false });
  }

  _fail(message) {
    this._fatal = { kind: "error", message };
    this._clearTimers();
    this._setStatus("error", message);
    this._emit("fatal", { kind: "error", message });
  }

  _onMessage(data) {
    this._lastMessageAt = performance.now();
    if (!(data instanceof ArrayBuffer)) {
      this._protocolFailure(new ProtocolError("text WebSocket message (the protocol is binary only)"));
      return;
    }
    this.stats.received(data.byteLength);
    let msg;
    try {
      msg = decodeMessage(new Uint8Array(data), "server");
    } catch (e) {
      if (e instanceof ProtocolError && e.code === ErrorCode.UNKNOWN_TYPE) {
        // SPEC 1, rule 4: a client ignores an unknown S->C type (logs it) rather than disconnect
        this.opts.log.info(`gameclient: ignoring a message: ${e.message}`);
        return;
      }
      this._protocolFailure(e);
      return;
    }
    try {
      this._dispatch(msg);
    } catch (e) {
      if (e instanceof DeltaError && (msg.type === MsgType.DELTA || msg.type === MsgType.VIEW) &&
          this._resyncs === 0 && this._resume) {
        // SPEC 5: a delta that does not apply leaves the replica untouched; resynchronize by
        // dropping the connection and RESUMEing (a full snapshot follows). Twice in a row is
        // the server's bug: fatal (as the Python client).
        this._resyncs += 1;
        this.opts.log.error(`gameclient: a DELTA did not apply (${e.message}); resynchronizing`);
        this._ws?.close(CLIENT_PROTOCOL_CLOSE, clip(`delta did not apply: ${e.message}`));
        this._onClose(1006, "resynchronizing after a delta that did not apply", false);
      } else if (e instanceof ProtocolError) {
        this._protocolFailure(e);
      } else {
        throw e;
      }
    }
  }

  _dispatch(msg) {
    switch (msg.type) {
      case MsgType.WELCOME:
        return this._onWelcome(msg);
      case MsgType.DELTA:
        return this._onDelta(msg);
      case MsgType.VIEW:
        return this._onView(msg);
      case MsgType.INPUT_ACK:
        this.acks.ack(msg.s, msg.t);
        this._dropAcked(msg.s);
        this._emit("ack", msg);
        return;
      case MsgType.EVENT:
        this._emit("event", { kind: msg.k, data: msg.d });
        return;
      case MsgType.ERROR:
        this.lastServerError = msg.url ? { code: msg.c, message: msg.m, url: msg.url } : { code: msg.c, message: msg.m };
        this.opts.log.warn(`gameclient: server ERROR ${msg.c}: ${msg.m}`);
        this._emit("servererror", { code: msg.c, message: msg.m });
        return;
      case MsgType.PONG:
        if (this._pings.delete(msg.t)) this.stats.pong(msg.t);
        this.serverTick = msg.st;
        return;
      default:
        this.opts.log.info(`gameclient: ignoring message type ${msg.type}`);
    }
  }

  _onWelcome(w) {
    if (this.welcome !== null && this.status === "connected") {
      throw new ProtocolError("second WELCOME on one connection");
    }
    const schema = w.schema;
    const sameSession = this.playerId !== null && w.player === this.playerId;
    this.welcome = w;
    this.playerId = w.player;
    this.schema = schema;
    // SPEC section 11: with the "interest" extension the world is the union of the channels
    this.world = (w.ext || []).includes("interest") ? new ViewReplica(schema) : new Replica(schema);
    this.interpolation.clear();
    this.interpolation.tickRate = w.tick_rate;
    this.interpolation.fields = null;
    this.serverTick = w.tick;
    this.predictor = null;
    if (!sameSession) {
      this.seq = 0;
      this.acks.reset();
      this.pendingInputs = [];
    }
    this.hops = [];
    this._resume = { token: w.resume, until: Number.POSITIVE_INFINITY, grace: w.resume_grace };
    if (this.attempt > 0) this.stats.reconnects += 1;
    this.attempt = 0;
    this.lastServerError = null;
    this._setStatus("connected", sameSession ? "resumed" : "joined");
    this.ping(); // first RTT sample once the server has processed the join
    this._emit("welcome", { welcome: w, resumed: sameSession });
    if (this._moved && sameSession) this._resendPending();
    this._moved = false;
  }

  _dropAcked(s) {
    const p = this.pendingInputs;
    let n = 0;
    while (n < p.length && p[n].seq <= s) n++;
    if (n) p.splice(0, n);
  }

  /** After a 4014 move: the inputs the old node had not acknowledged, oldest first. */
  _resendPending() {
    for (const { seq, data, rt } of this.pendingInputs) {
      this._sendRaw(encodeInput(seq, data, rt)); // the tick it was rendering when first sent
      this.stats.inputsResent += 1;
    }
  }

  /** 4013 / 4014: the URL to follow (the ERROR's url, else a ws:// close reason), or null. */
  _redirectUrl(reason) {
    const err = this.lastServerError;
    for (const u of [err && (err.code === 4013 || err.code === 4014) ? err.url : null, reason]) {
      if (typeof u === "string" && /^wss?:\/\//.test(u)) return u;
    }
    return null;
  }

  _onDelta(d) {
    if (this.world === null) throw new ProtocolError("DELTA before WELCOME");
    this.world.apply(d);
    this._resyncs = 0;
    this.stats.delta(d.tick);
    const w = this.world;
    this.interpolation.pushTick(d.tick, w.ids, w.allValues());
    if (this.opts.step && this.opts.stateOf) this._reconcile(d.tick);
    this._emit("delta", { tick: d.tick, world: w });
  }

  _onView(v) {
    const w = this.world;
    if (!(w instanceof ViewReplica)) throw new ProtocolError("VIEW without the interest extension");
    w.apply(v.raw);
    this._resyncs = 0;
    this.stats.delta(v.tick);
    this.interpolation.pushTick(v.tick, w.ids, w.allValues());
    if (this.opts.step && this.opts.stateOf) this._reconcile(v.tick);
    this._emit("delta", { tick: v.tick, world: w });
    this._emit("view", { tick: v.tick, entered: w.entered, leftView: w.leftView, despawned: w.despawned });
  }

  _reconcile(tick) {
    const id = this.entityId;
    if (id === null) return;
    const row = this.world.rowOf(id);
    if (row < 0) return;
    const auth = this.opts.stateOf(this.world, row);
    if (this.predictor === null) {
      this.predictor = new Predictor(this.opts.step, auth);
      this.predictor.ackedSeq = this.acks.ackedAt(tick);
    }
    this.predictor.reconcile(auth, this.acks.ackedAt(tick));
  }

  _onClose(code, reason, wasClean) {
    const ws = this._ws;
    this._ws = null;
    if (ws) {
      ws.onopen = ws.onmessage = ws.onerror = ws.onclose = null;
    }
    this._clearTimers();
    this.lastClose = { code, reason };
    if (this._userClosed || this._fatal) return;
    if (this._resume && this._resume.until === Number.POSITIVE_INFINITY) {
      // the server keeps the player for resume_grace seconds after the drop
      this._resume.until = performance.now() + this._resume.grace * 1000;
    }
    const err = this.lastServerError;
    const explained = reason || (err ? err.message : "") || CLOSE_REASONS[code] || `code ${code}`;
    if (code === CloseCode.REDIRECT || code === CloseCode.MOVED) {
      const url = this._redirectUrl(reason);
      if (url !== null && this.hops.length < MAX_HOPS) {
        this.hops.push(url);
        this.url = url;
        if (code === CloseCode.MOVED) this._moved = true;
        this.lastServerError = null;
        this.stats.redirects += 1;
        this.opts.log.info(`gameclient: ${CLOSE_REASONS[code]}, following to ${url}`);
        this._emit("close", { code, reason: explained, willReconnect: true });
        this._emit("redirect", { code, url });
        this._open(); // at once: the room (or token) is already there
        return;
      }
      const message = url === null
        ? `server closed with ${code} but gave no ws:// URL to follow`
        : `redirect loop: sent on ${this.hops.length + 1} times without a WELCOME (${[...this.hops, url].join(" -> ")})`;
      this._fatal = { kind: "redirect", message };
      this._setStatus("error", message);
      this._emit("fatal", { kind: "redirect", code, message });
      this._emit("close", { code, reason: explained, willReconnect: false });
      return;
    }
    if ((code === CloseCode.RESUME_INVALID || code === CloseCode.WORKER_RESTARTED) && this._resume) {
      // The session is gone (grace expired, server restarted; 4015: the --workers process
      // holding the room died, on the live socket or as the answer to our RESUME after a
      // 1006, SPEC 7): join again as a new player, without the dead room's id.
      this.opts.log.info(`gameclient: resume refused (${explained}), joining as a new player`);
      this._resume = null;
      this.playerId = null;
      if (code === CloseCode.WORKER_RESTARTED) this.opts.room = null;
      this._emit("close", { code, reason: explained, willReconnect: true });
      this._scheduleReconnect(0);
      return;
    }
    if (JOIN_CODES.has(code) || (err && JOIN_CODES.has(err.code) && code !== 1006)) {
      const c = JOIN_CODES.has(code) ? code : err.code;
      this._fatal = { kind: "rejected", message: explained };
      this._setStatus("rejected", `${CLOSE_REASONS[c] ?? "rejected"}: ${explained}`);
      this._emit("fatal", { kind: "rejected", code: c, message: explained });
      this._emit("close", { code, reason: explained, willReconnect: false });
      return;
    }
    const retry = this.opts.reconnect && !NO_RETRY.has(code) && this.attempt < this.opts.maxAttempts;
    this._emit("close", { code, reason: explained, willReconnect: retry });
    if (!retry) {
      this._fatal = { kind: "closed", message: explained };
      this._setStatus("closed", `disconnected (${code}): ${explained}`);
      return;
    }
    this._scheduleReconnect();
  }

  _scheduleReconnect(delayMs) {
    const n = this.attempt++;
    // exponential backoff with full jitter, as the Python client's Backoff: uniform in
    // [0, min(cap, base * 2**n)], so many clients dropped at once do not return in lockstep
    const bound = Math.min(this.opts.backoffMax, this.opts.backoffInitial * 2 ** Math.min(n, 30));
    const wait = delayMs ?? (this.opts.jitter ? Math.random() * bound : bound);
    this._nextRetryAt = performance.now() + wait;
    this._setStatus("reconnecting", `connection lost, retrying in ${(wait / 1000).toFixed(1)} s`);
    this._retryTimer = setTimeout(() => {
      this._retryTimer = null;
      this._nextRetryAt = null;
      this._open();
    }, wait);
  }
}
