// Type declarations of the gameserver web client (dist/gameclient.js, sources in src/).
// Wire format: protocol/SPEC.md. Times: milliseconds for the socket/stats layer,
// seconds (server time = tick / tick_rate) for interpolation and prediction, as in Python.

export type TypedColumn =
  | Uint8Array | Int8Array | Uint16Array | Int16Array
  | Uint32Array | Int32Array | Float32Array | Float64Array;
export type Column = TypedColumn;
export type WireDtype = "u8" | "i8" | "u16" | "i16" | "u32" | "i32" | "f32" | "f64";
export type InputValue = number | boolean | string | null | Array<number | boolean | string | null>;

export declare const MsgType: Readonly<{
  HELLO: 1; RESUME: 2; INPUT: 3; PING: 4; LEAVE: 5; CAMERA: 6;
  WELCOME: 16; DELTA: 17; INPUT_ACK: 18; EVENT: 19; ERROR: 20; PONG: 21; VIEW: 22;
}>;
export declare const CloseCode: Readonly<Record<string, number>>;
export declare const ErrorCode: Readonly<Record<string, number>>;
export declare const CLOSE_REASONS: Readonly<Record<number, string>>;
export declare const PROTOCOL_VERSION: 1;
/** WebSocket subprotocol the client offers ("gameserver.v1"). */
export declare const SUBPROTOCOL: "gameserver.v1";
/** Close code the client sends when the server sent malformed data. */
export declare const CLIENT_PROTOCOL_CLOSE: 4000;

/** The server sent something that is not the protocol (its fault; never retried). */
export declare class ProtocolError extends Error {
  constructor(message: string, code?: number);
  /** the ERROR code a receiver answers with: 1 malformed, 2 unknown message type */
  readonly code: number;
}
/** A DELTA that is malformed or does not apply to the replica (the server's fault). */
export declare class DeltaError extends ProtocolError {}

export interface Welcome {
  type: 16; v: number; player: number; entity: number | null; room: string; game: string;
  tick: number; tick_rate: number; send_rate: number; schema: WireSchema;
  inputs: { n: string; t: string; lo?: number; hi?: number }[];
  resume: string; resume_grace: number; raw: Record<string, unknown>;
  /** extensions the server agreed to (SPEC section 11: "interest", "interest/2") */
  ext: string[];
  spectator: boolean;
  /** the interest grid (cell, grid, bounds, view, max_view, margin) when the room has one */
  view: Record<string, unknown> | null;
}
/** VIEW (22), validated and applied by ViewReplica.apply */
export interface View { type: 22; tick: number; raw: unknown[] }
export interface DecodedCol { code: string; diff: boolean; values: ArrayLike<number> }
export interface Delta {
  type: 17; tick: number; baseTick: number | null; count: number;
  despawned: Uint32Array | null;
  spawned: { ids: Uint32Array; cols: DecodedCol[] } | null;
  groups: { mask: number; rows: Uint32Array; cols: DecodedCol[] }[];
}
export type ServerMessage =
  | Welcome
  | Delta
  | View
  | { type: 18; s: number; t: number }
  | { type: 19; k: string; d: unknown }
  | { type: 20; c: number; m: string }
  | { type: 21; t: number; st: number };
export type ClientMessage =
  | { type: 1; v: number; game: string | null; room: string | null; token: string | null; name: string | null }
  | { type: 2; v: number; token: string }
  | { type: 3; s: number; d: Record<string, InputValue>; rt: number | null }
  | { type: 4; t: number }
  | { type: 5 }
  | { type: 6; x: number; y: number; w?: number; h?: number; follow?: number };
export type Message = ServerMessage | ClientMessage;

export declare const LIMITS: Readonly<{
  str: number; token: number; errorMessage: number; inputKeys: number; inputArray: number;
  eventDepth: number; inputsDepth: number;
}>;

/**
 * Decode one game message (strict, SPEC section 8, as protocol/messages.py `decode`);
 * throws ProtocolError (code 1 malformed, 2 unknown type / wrong direction).
 */
export declare function decodeMessage(bytes: Uint8Array, direction?: "any" | "server" | "client"): Message;
export declare function unpack(bytes: Uint8Array): unknown;
export declare function encodeMessage(type: number, body?: Record<string, unknown>): Uint8Array;
export declare function encodeHello(opts?: { game?: string; room?: string; token?: string; name?: string }): Uint8Array;
export declare function encodeResume(token: string): Uint8Array;
export declare function encodeInput(seq: number, data: Record<string, InputValue>, rt?: number | null): Uint8Array;
export declare function encodePing(t: number): Uint8Array;
export declare function encodeLeave(): Uint8Array;

export declare const DTYPES: Readonly<Record<WireDtype, { width: number; min: number; max: number; int: boolean }>>;

export declare class WireField {
  constructor(name: string, dtype: WireDtype, quant?: number | null, kind?: string | null);
  readonly name: string;
  readonly dtype: WireDtype;
  /** real value = wire * quant (null: not quantized) */
  readonly quant: number | null;
  /** "float" | "int" | "bool" | "player" | "entity" | other hint */
  readonly kind: string;
  readonly isFloat: boolean;
}
export declare class WireSchema {
  constructor(fields: WireField[]);
  static fromWire(obj: unknown): WireSchema;
  readonly fields: WireField[];
  readonly index: Map<string, number>;
  readonly names: string[];
}
export declare function decodeDelta(msg: unknown[]): Delta;
export declare function decodeIdList(v: unknown, what?: string): Uint32Array;

/** The replicated world: sorted ids and one TypedArray column per field (wire values). */
export declare class Replica {
  constructor(schema: WireSchema);
  readonly schema: WireSchema;
  /** null until the first full snapshot */
  readonly tick: number | null;
  readonly count: number;
  /** views valid until the next apply() */
  readonly ids: Uint32Array;
  readonly columns: Record<string, TypedColumn>;
  column(name: string): TypedColumn;
  /** wire * quant (Float64Array) for a quantized field, else the column */
  values(name: string): TypedColumn;
  allValues(): Record<string, TypedColumn>;
  rowOf(id: number): number;
  /** set the state directly (wire values); throws DeltaError if inconsistent */
  load(tick: number, ids: ArrayLike<number>, columns: Record<string, ArrayLike<number>>): void;
  reset(): void;
  /** Atomic: throws DeltaError and leaves the replica unchanged if the delta does not apply. */
  apply(delta: Delta): void;
}

/**
 * Interest management (SPEC section 11): one Replica per visible channel, read as their
 * union (the same read API as Replica). After each VIEW: entered / leftView / despawned.
 */
export declare class ViewReplica {
  constructor(schema: WireSchema);
  readonly schema: WireSchema;
  readonly tick: number | null;
  readonly count: number;
  readonly ids: Uint32Array;
  readonly columns: Record<string, TypedColumn>;
  readonly channels: Map<number, Replica>;
  readonly entered: Uint32Array;
  readonly leftView: Uint32Array;
  readonly despawned: Uint32Array;
  column(name: string): TypedColumn;
  values(name: string): TypedColumn;
  allValues(): Record<string, TypedColumn>;
  rowOf(id: number): number;
  reset(): void;
  /** apply one VIEW's msgpack array; true for a reset. Throws DeltaError: resynchronize. */
  apply(raw: unknown[]): boolean;
}
export declare function encodeCamera(x: number, y: number, w?: number | null, h?: number | null,
  follow?: number | null): Uint8Array;

export interface Frame {
  /** server seconds */
  renderTime: number;
  ids: Uint32Array;
  columns: Record<string, TypedColumn>;
  alpha: number;
  olderTime: number;
  newerTime: number | null;
  /** the render time ran past the newest snapshot */
  starved: boolean;
}
export declare function interpolate(
  idsA: Uint32Array, colsA: Record<string, TypedColumn>,
  idsB: Uint32Array, colsB: Record<string, TypedColumn>,
  alpha: number, opts?: { fields?: Iterable<string> | null; angles?: Iterable<string> },
): { ids: Uint32Array; columns: Record<string, TypedColumn> };
export declare class InterpolationBuffer {
  constructor(opts?: {
    delay?: number; clock?: () => number; capacity?: number; tickRate?: number | null;
    fields?: Iterable<string> | null; angles?: Iterable<string>;
  });
  delay: number;
  tickRate: number | null;
  starvedFrames: number;
  readonly length: number;
  readonly clockOffset: number | null;
  clear(): void;
  push(serverTime: number, ids: ArrayLike<number>, columns: Record<string, TypedColumn>, now?: number): void;
  pushTick(tick: number, ids: ArrayLike<number>, columns: Record<string, TypedColumn>, now?: number): void;
  serverTime(now?: number): number | null;
  renderTime(now?: number): number | null;
  /** render time (server seconds) of the last sample(), null before the first */
  readonly lastRenderTime: number | null;
  sample(now?: number): Frame | null;
}

export declare class AckTracker {
  constructor(capacity?: number);
  lastSeq: number;
  ack(seq: number, tick: number): void;
  ackedAt(tick: number): number;
  reset(): void;
}
export declare class Predictor<S> {
  constructor(step: (state: S, inputs: Record<string, InputValue>) => S, initial: S, opts?: {
    clock?: () => number; maxPending?: number; maxAge?: number;
    error?: ((a: S, b: S) => number) | null; tolerance?: number;
  });
  authoritative: S;
  state: S;
  ackedSeq: number;
  lastError: number;
  mispredictions: number;
  expired: number;
  latency: number | null;
  readonly pending: { seq: number; data: Record<string, InputValue>; sentAt: number }[];
  record(seq: number, inputs: Record<string, InputValue>): S;
  reconcile(authoritative: S, ackedSeq: number): S;
  reset(state: S): void;
}

export declare class Stats {
  constructor(opts?: { windowMs?: number; now?: () => number });
  /** last PING->PONG round trip (ms) */
  rtt: number | null;
  rttSmoothed: number | null;
  /** median of the last 8 RTT samples (ms) */
  readonly rttMedian: number | null;
  bytesReceived: number;
  bytesSent: number;
  messagesReceived: number;
  deltasReceived: number;
  lastTick: number | null;
  reconnects: number;
  /** 4013 / 4014 followed */
  redirects: number;
  /** unacknowledged inputs re-sent after a 4014 move */
  inputsResent: number;
  /** received bytes per second over the window */
  readonly bytesPerSec: number;
  /** ms since the newest DELTA arrived */
  readonly tickAge: number | null;
  snapshot(): Record<string, number | null>;
}

export type ClientStatus =
  | "idle" | "connecting" | "joining" | "connected" | "reconnecting"
  | "closed" | "rejected" | "error";

export interface ClientOptions {
  name?: string; game?: string; room?: string; token?: string;
  /** offer the "interest" and "interest/2" extensions: VIEW messages (with SAME pieces), world = a ViewReplica (default true) */
  interest?: boolean;
  /** join as a spectator (no entity, no inputs; camera()); follow a player id */
  spectate?: boolean; follow?: number | null;
  /** reconnect after an unexpected drop (default true) */
  reconnect?: boolean;
  /**
   * Reconnect delays: exponential from backoffInitial ms (default 100) doubling up to
   * backoffMax (default 5000); with jitter (default true) each delay is uniform in [0, bound]
   * ("full jitter", as the Python client). maxAttempts in a row (default Infinity).
   */
  backoffInitial?: number; backoffMax?: number; jitter?: boolean; maxAttempts?: number;
  /** ms between PINGs (default 1000); no message for stallTimeout ms (default 5000) = dropped */
  pingInterval?: number; stallTimeout?: number;
  /** seconds behind the estimated server time (default 0.1) */
  interpolationDelay?: number;
  angles?: string[];
  /** send INPUT "rt" = renderTick with every input (lag compensation; default true) */
  sendRenderTick?: boolean;
  /** prediction: the server's one-input rule, and how to read our entity's state from a row */
  step?: ((state: any, inputs: Record<string, InputValue>) => any) | null;
  stateOf?: ((world: Replica, row: number) => any) | null;
  WebSocket?: typeof WebSocket;
  log?: Pick<Console, "error" | "warn" | "info">;
}

export interface ClientEvents {
  status: { status: ClientStatus; detail: string };
  welcome: { welcome: Welcome; resumed: boolean };
  delta: { tick: number; world: Replica | ViewReplica };
  view: { tick: number; entered: Uint32Array; leftView: Uint32Array; despawned: Uint32Array };
  event: { kind: string; data: unknown };
  servererror: { code: number; message: string };
  /** 4013 REDIRECT / 4014 MOVED followed to url */
  redirect: { code: number; url: string };
  ack: { type: 18; s: number; t: number };
  close: { code: number; reason: string; willReconnect: boolean };
  fatal: { kind: "protocol" | "rejected" | "error" | "redirect"; code?: number; message: string };
}

export declare class GameClient {
  constructor(url: string, opts?: ClientOptions);
  readonly url: string;
  readonly status: ClientStatus;
  readonly statusDetail: string;
  readonly welcome: Welcome | null;
  readonly playerId: number | null;
  readonly schema: WireSchema | null;
  /** authoritative replica (newest DELTA applied) */
  readonly world: Replica | ViewReplica | null;
  readonly interpolation: InterpolationBuffer;
  readonly acks: AckTracker;
  readonly predictor: Predictor<any> | null;
  readonly stats: Stats;
  readonly lastServerError: { code: number; message: string; url?: string } | null;
  /** nodes followed (4013 / 4014) since the last WELCOME */
  readonly hops: string[];
  /** inputs sent and not yet acknowledged (re-sent after a 4014 move) */
  readonly pendingInputs: { seq: number; data: Record<string, InputValue>; rt: number | null }[];
  readonly lastClose: { code: number; reason: string } | null;
  readonly serverTick: number | null;
  readonly seq: number;
  readonly joined: boolean;
  readonly entityId: number | null;
  /** seconds until the next reconnect attempt */
  readonly retryIn: number | null;
  on<K extends keyof ClientEvents>(type: K, fn: (e: ClientEvents[K]) => void): () => void;
  connect(): void;
  close(): void;
  /** returns the seq used, or 0 when not joined; the INPUT carries rt = renderTick */
  sendInput(data: Record<string, InputValue>): number;
  /** the server tick on screen (last frame()'s interpolation time, else the latest tick) */
  readonly renderTick: number | null;
  ping(): void;
  /** spectators: free camera (clamped by the server) or follow a player; false if not joined */
  camera(x: number, y: number, w?: number | null, h?: number | null, follow?: number | null): boolean;
  /** test hook: drop the socket as a network cut would (the client resumes) */
  dropConnection(): void;
  frame(now?: number): Frame | null;
}
