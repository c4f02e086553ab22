// Game message codec: the msgpack envelope of protocol/SPEC.md.
//
// Every game message is one WebSocket binary message holding one msgpack array whose first
// element is the message type. Control messages are [type, body] with body a map of short
// string keys; unknown keys are ignored (that is how the protocol grows). DELTA messages are
// decoded by delta.js (decodeDelta); this module only dispatches on the type number.

import { Decoder, encode as mpEncode } from "@msgpack/msgpack";
import { decodeDelta, WireSchema } from "./delta.js";
import { ProtocolError } from "./errors.js";

export { ProtocolError };

/** Message type numbers (frozen, docs/ARCHITECTURE.md). */
export const MsgType = Object.freeze({
  HELLO: 1,
  RESUME: 2,
  INPUT: 3,
  PING: 4,
  LEAVE: 5,
  CAMERA: 6,
  WELCOME: 16,
  DELTA: 17,
  INPUT_ACK: 18,
  EVENT: 19,
  ERROR: 20,
  PONG: 21,
  VIEW: 22,
});

/** WebSocket close codes used by the game layer. */
export const CloseCode = Object.freeze({
  NORMAL: 1000,
  GOING_AWAY: 1001,
  PROTOCOL_MISUSE: 4000,
  UNAUTHORIZED: 4001,
  ROOM_FULL: 4002,
  UNKNOWN_ROOM: 4003,
  VERSION_MISMATCH: 4004,
  RESUME_INVALID: 4005,
  JOIN_REJECTED: 4006,
  INPUT_FLOOD: 4008,
  TOO_SLOW: 4009,
  ROOM_CRASHED: 4010,
  SESSION_REPLACED: 4011,
  HELLO_TIMEOUT: 4012,
  SPECTATORS_FULL: 4025,
  REDIRECT: 4013,
  MOVED: 4014,
  WORKER_RESTARTED: 4015,
});

/** ERROR message codes (non-fatal unless followed by a close). */
export const ErrorCode = Object.freeze({
  MALFORMED: 1,
  UNKNOWN_TYPE: 2,
  INVALID_INPUT: 3,
  RATE_LIMITED: 4,
  TOO_LARGE: 5,
  JOIN_STATE: 6,
  SPECTATOR_INPUT: 7,
  NOT_SPECTATING: 8,
});

/** Human-readable meaning of each close code, for status lines. */
export const CLOSE_REASONS = Object.freeze({
  1000: "connection closed",
  1001: "server shutting down",
  1002: "protocol error",
  1006: "connection lost",
  1009: "message too big",
  1011: "server error",
  4000: "too many bad messages",
  4001: "unauthorized",
  4002: "room is full",
  4003: "unknown room or game",
  4004: "protocol version mismatch",
  4005: "resume token invalid or expired",
  4006: "join rejected by the game",
  4008: "input flood",
  4009: "connection too slow to keep up",
  4010: "the room's game crashed",
  4011: "session taken over by another connection",
  4012: "no HELLO in time",
  4013: "redirected to another node",
  4014: "room moved to another node",
  4015: "server worker restarted",
});

/** Protocol version spoken by this client. */
export const PROTOCOL_VERSION = 1;

/** WebSocket subprotocol offered by this client; the server selects it (SPEC.md section 1). */
export const SUBPROTOCOL = "gameserver.v1";

/** Encode a [type, body] control message to bytes. @returns {Uint8Array} */
export function encodeMessage(type, body) {
  return mpEncode([type, body ?? {}]);
}

/**
 * HELLO. @param {{game?: string, room?: string, token?: string, name?: string, reservation?: string}} [opts]
 * (`reservation`: a seat reservation from `GET /matchmake`, SPEC.md section 2)
 * @returns {Uint8Array}
 */
export function encodeHello(opts = {}) {
  /** @type {Record<string, unknown>} */
  const body = { v: PROTOCOL_VERSION };
  for (const k of ["game", "room", "token", "name", "reservation"]) {
    if (opts[k] !== undefined && opts[k] !== null) body[k] = String(opts[k]);
  }
  // SPEC section 11: optional extensions ("interest"), spectator join, followed player
  if (Array.isArray(opts.ext) && opts.ext.length) body.ext = opts.ext.map(String);
  if (opts.spectate) body.spectate = true;
  if (Number.isInteger(opts.follow) && opts.follow > 0) body.follow = opts.follow;
  return encodeMessage(MsgType.HELLO, body);
}

/**
 * CAMERA (spectators): centre (x, y), optional size (w, h) in world units (the server clamps
 * it to the game's maximum view), or follow a player id.
 */
export function encodeCamera(x, y, w = null, h = null, follow = null) {
  /** @type {Record<string, number>} */
  const body = { x: Number(x), y: Number(y) };
  if (w !== null && w !== undefined) body.w = Number(w);
  if (h !== null && h !== undefined) body.h = Number(h);
  if (Number.isInteger(follow) && follow > 0) body.follow = follow;
  return encodeMessage(MsgType.CAMERA, body);
}

/** RESUME with the token from WELCOME. @param {string} token */
export function encodeResume(token) {
  return encodeMessage(MsgType.RESUME, { v: PROTOCOL_VERSION, token });
}

/**
 * INPUT. @param {number} seq uint32, 1, 2, 3... @param {Record<string, number|boolean>} data
 * @param {number|null} [rt] the server tick being rendered when the input was produced
 *   (lag compensation, SPEC.md section 2); omitted when null/undefined.
 */
export function encodeInput(seq, data, rt) {
  if (rt === null || rt === undefined) return encodeMessage(MsgType.INPUT, { s: seq >>> 0, d: data });
  return encodeMessage(MsgType.INPUT, { s: seq >>> 0, d: data, rt: Math.max(0, Math.floor(rt)) });
}

/** PING with a client timestamp (ms, any number). @param {number} t */
export function encodePing(t) {
  return encodeMessage(MsgType.PING, { t });
}

/** LEAVE. */
export function encodeLeave() {
  return encodeMessage(MsgType.LEAVE, {});
}

/** SPEC 1: ext types (including the timestamp ext) are not used and are malformed. */
const rejectExt = {
  tryToEncode: () => null,
  decode: (_data, type) => {
    throw new ProtocolError(`msgpack ext type ${type} is not used by the protocol`);
  },
};

/** SPEC 8: map keys must be str. */
function strKeysOnly(key) {
  if (typeof key !== "string") throw new ProtocolError(`non-str map key ${JSON.stringify(key)}`);
  return key;
}

/** Limits of SPEC section 2 (same as protocol/messages.py). */
export const LIMITS = Object.freeze({
  str: 256,
  token: 2048,
  errorMessage: 4096,
  inputKeys: 64,
  inputArray: 256,
  eventDepth: 32,
  inputsDepth: 3,
});

const U32 = 0xffffffff;
const U63 = Number.MAX_SAFE_INTEGER; // JS numbers: ticks are exact up to 2**53

/**
 * A msgpack float whose value is integral (1.0) must not pass where the SPEC wants an int
 * (Python sees a float there and refuses it), but JavaScript has one number type. This
 * decoder boxes such floats (`new Number(1)`: Number.isInteger is false for a box) while the
 * message is validated; unboxDeep() turns them back into plain numbers afterwards.
 */
class StrictDecoder extends Decoder {
  constructor() {
    super({ extensionCodec: rejectExt, mapKeyConverter: strKeysOnly });
    this.boxed = false;
  }

  readF32() {
    const v = super.readF32();
    if (!Number.isInteger(v)) return v;
    this.boxed = true;
    return new Number(v);
  }

  readF64() {
    const v = super.readF64();
    if (!Number.isInteger(v)) return v;
    this.boxed = true;
    return new Number(v);
  }

  /** SPEC 8: a str must be valid UTF-8 (TextDecoder would silently put U+FFFD in). */
  decodeUtf8String(byteLength, headerOffset) {
    const start = this.pos + headerOffset;
    const end = start + byteLength;
    const bytes = this.bytes;
    if (end <= bytes.byteLength) {
      let i = start;
      while (i < end && bytes[i] < 0x80) i++;
      if (i < end) {
        try {
          fatalUtf8.decode(bytes.subarray(i, end));
        } catch {
          throw new ProtocolError("invalid UTF-8 in a msgpack str", ErrorCode.MALFORMED);
        }
      }
    }
    return super.decodeUtf8String(byteLength, headerOffset);
  }
}

const fatalUtf8 = new TextDecoder("utf-8", { fatal: true });

const decoder = new StrictDecoder();

/** msgpack-decode one value, integral floats boxed; returns [value, anyBoxed]. */
function unpackBoxed(bytes) {
  decoder.boxed = false;
  try {
    return [decoder.decode(bytes), decoder.boxed];
  } catch (e) {
    if (e instanceof ProtocolError) throw e;
    throw new ProtocolError(`not a valid msgpack value (${e instanceof Error ? e.message : e})`);
  }
}

/** Replace boxed numbers by plain ones, in place where possible (iterative). */
function unboxDeep(value) {
  if (value instanceof Number) return value.valueOf();
  if (value === null || typeof value !== "object" || value instanceof Uint8Array) return value;
  const stack = [value];
  while (stack.length) {
    const c = stack.pop();
    const keys = Array.isArray(c) ? c.keys() : Object.keys(c);
    for (const k of keys) {
      const v = c[k];
      if (v instanceof Number) c[k] = v.valueOf();
      else if (v !== null && typeof v === "object" && !(v instanceof Uint8Array)) stack.push(v);
    }
  }
  return value;
}

/** msgpack-decode exactly one value (trailing bytes are malformed); throws ProtocolError. */
export function unpack(bytes) {
  const [value, boxed] = unpackBoxed(bytes);
  return boxed ? unboxDeep(value) : value;
}

function isMap(v) {
  return v !== null && typeof v === "object" && !Array.isArray(v) && !(v instanceof Uint8Array) &&
    !(v instanceof Number);
}

/** A msgpack number (int or float, boxed or not) as a plain number, else undefined. */
function asNumber(v) {
  if (typeof v === "number") return v;
  if (v instanceof Number) return v.valueOf();
  return undefined;
}

const bad = (message) => new ProtocolError(message, ErrorCode.MALFORMED);

/** Code points of a string (Python's len), cheap when it cannot exceed the limit. */
function strLen(v, limit) {
  if (v.length <= limit) return v.length;
  let n = 0;
  for (const _ of v) n++;
  return n;
}

function short(v) {
  if (v === undefined) return "None";
  if (v instanceof Number) return `${v.valueOf()}.0 (a float)`;
  const r = isMap(v) ? "map" : Array.isArray(v) ? "array" : v instanceof Uint8Array ? "bin" : JSON.stringify(v);
  return r.length <= 40 ? r : `${r.slice(0, 37)}...`;
}

function uint(body, key, limit, what) {
  const v = body[key];
  if (!Number.isInteger(v) || v < 0 || v > limit) {
    throw bad(`${what}: "${key}" must be a uint <= ${limit}, got ${short(v)}`);
  }
  return v;
}

function num(body, key, what) {
  const v = asNumber(body[key]);
  if (v === undefined) throw bad(`${what}: "${key}" must be a number, got ${short(body[key])}`);
  return v;
}

function str(body, key, limit, what) {
  const v = body[key];
  if (typeof v !== "string" || strLen(v, limit) > limit) {
    throw bad(`${what}: "${key}" must be a str of at most ${limit} chars, got ${short(v)}`);
  }
  return v;
}

function optStr(body, key, limit, what) {
  const v = body[key];
  if (v === undefined || v === null) return null;
  return str(body, key, limit, what);
}

function scalar(v) {
  if (v === null || typeof v === "boolean" || typeof v === "number" || v instanceof Number) return true;
  return typeof v === "string" && strLen(v, LIMITS.str) <= LIMITS.str;
}

function inputData(d) {
  if (!isMap(d)) throw bad('INPUT: "d" must be a map');
  const keys = Object.keys(d);
  if (keys.length > LIMITS.inputKeys) throw bad(`INPUT: more than ${LIMITS.inputKeys} keys`);
  for (const k of keys) {
    if (strLen(k, LIMITS.str) > LIMITS.str) throw bad("INPUT: keys must be short str");
    const v = d[k];
    if (scalar(v)) continue;
    if (Array.isArray(v) && v.length <= LIMITS.inputArray && v.every(scalar)) continue;
    throw bad(`INPUT: value of "${k}" must be a scalar or a flat array of scalars`);
  }
  return d;
}

/** Iterative nesting check, as protocol/messages.py: a container at depth >= limit is bad. */
function checkDepth(value, limit, what) {
  const stack = [[value, 0]];
  while (stack.length) {
    const [v, depth] = stack.pop();
    if (Array.isArray(v) || isMap(v)) {
      if (depth >= limit) throw bad(`${what}: nested deeper than ${limit}`);
      for (const x of Array.isArray(v) ? v : Object.values(v)) stack.push([x, depth + 1]);
    }
  }
}

function inputsSchema(v) {
  if (!Array.isArray(v) || !v.every((x) => isMap(x) && typeof x.n === "string" && typeof x.t === "string")) {
    throw bad('WELCOME: "inputs" must be an array of {"n": str, "t": str, ...} maps');
  }
  checkDepth(v, LIMITS.inputsDepth, "WELCOME inputs");
  return v;
}

function control(type, body) {
  switch (type) {
    case MsgType.HELLO: {
      const w = "HELLO";
      return {
        type,
        v: uint(body, "v", U32, w),
        game: optStr(body, "game", LIMITS.str, w),
        room: optStr(body, "room", LIMITS.str, w),
        token: optStr(body, "token", LIMITS.token, w),
        name: optStr(body, "name", LIMITS.str, w),
        reservation: optStr(body, "reservation", LIMITS.str, w),
      };
    }
    case MsgType.RESUME:
      return { type, token: str(body, "token", LIMITS.token, "RESUME"), v: uint(body, "v", U32, "RESUME") };
    case MsgType.INPUT: {
      const s = uint(body, "s", U32, "INPUT");
      if (s === 0) throw bad('INPUT: "s" starts at 1');
      const rt = body.rt === undefined || body.rt === null ? null : uint(body, "rt", U63, "INPUT");
      return { type, s, d: unboxDeep(inputData(body.d)), rt };
    }
    case MsgType.PING:
      return { type, t: num(body, "t", "PING") };
    case MsgType.LEAVE:
      return { type };
    case MsgType.CAMERA: {
      const out = { type, x: num(body, "x", "CAMERA"), y: num(body, "y", "CAMERA") };
      for (const k of ["w", "h"]) if (body[k] !== undefined && body[k] !== null) out[k] = num(body, k, "CAMERA");
      if (body.follow !== undefined && body.follow !== null) out.follow = uint(body, "follow", U32, "CAMERA");
      return out;
    }
    case MsgType.WELCOME: {
      const w = "WELCOME";
      const entity = body.entity === undefined || body.entity === null ? null : uint(body, "entity", U32, w);
      const rates = ["tick_rate", "send_rate", "resume_grace"].map((k) => num(body, k, w));
      if (!rates.every((r) => Number.isFinite(r) && r >= 0)) {
        throw bad("WELCOME: rates and resume_grace must be finite and >= 0");
      }
      const out = {
        type,
        player: uint(body, "player", U32, w),
        room: str(body, "room", LIMITS.str, w),
        game: str(body, "game", LIMITS.str, w),
        tick: uint(body, "tick", U63, w),
        tick_rate: rates[0],
        send_rate: rates[1],
        schema: WireSchema.fromWire(body.schema),
        inputs: unboxDeep(inputsSchema(body.inputs)),
        resume: str(body, "resume", LIMITS.token, w),
        resume_grace: rates[2],
        entity,
        v: uint(body, "v", U32, w),
        ext: Array.isArray(body.ext) ? body.ext.filter((x) => typeof x === "string") : [],
        spectator: body.spectator === true,
        view: isMap(body.view) ? unboxDeep(body.view) : null,
        raw: unboxDeep(body),
      };
      if (!(out.tick_rate > 0)) throw bad("WELCOME: tick_rate must be > 0");
      return out;
    }
    case MsgType.INPUT_ACK:
      return { type, s: uint(body, "s", U32, "INPUT_ACK"), t: uint(body, "t", U63, "INPUT_ACK") };
    case MsgType.EVENT: {
      const d = body.d === undefined ? null : body.d;
      checkDepth(d, LIMITS.eventDepth, 'EVENT "d"');
      return { type, k: str(body, "k", LIMITS.str, "EVENT"), d: unboxDeep(d) };
    }
    case MsgType.ERROR: {
      const err = { type, c: uint(body, "c", U32, "ERROR"), m: str(body, "m", LIMITS.errorMessage, "ERROR") };
      // cluster (SPEC 7): 4013 REDIRECT / 4014 MOVED name the node to dial instead
      const url = optStr(body, "url", LIMITS.token, "ERROR");
      if (url !== null) err.url = url;
      return err;
    }
    case MsgType.PONG:
      return { type, t: num(body, "t", "PONG"), st: uint(body, "st", U63, "PONG") };
    default:
      throw new ProtocolError(`unknown message type ${type}`, ErrorCode.UNKNOWN_TYPE);
  }
}

const CLIENT_TYPES = new Set([1, 2, 3, 4, 5, 6]);
const SERVER_TYPES = new Set([16, 17, 18, 19, 20, 21, 22]);

/**
 * Decode one game message of either direction, as protocol/messages.py `decode`: strict
 * (SPEC section 8). Throws ProtocolError with `.code` ErrorCode.MALFORMED (1) or
 * ErrorCode.UNKNOWN_TYPE (2); a DELTA's layout errors are DeltaErrors (code 1).
 * @param {Uint8Array} bytes
 * @param {"any" | "server" | "client"} [direction] restrict to S->C or C->S types
 * @returns {import("../index").Message}
 */
export function decodeMessage(bytes, direction = "any") {
  const [obj] = unpackBoxed(bytes);
  if (!Array.isArray(obj) || obj.length === 0) throw bad("a game message must be a non-empty msgpack array");
  const type = obj[0];
  if (!Number.isInteger(type)) throw bad("message type must be an integer");
  if (!CLIENT_TYPES.has(type) && !SERVER_TYPES.has(type)) {
    throw new ProtocolError(`unknown message type ${type}`, ErrorCode.UNKNOWN_TYPE);
  }
  const allowed = direction === "server" ? SERVER_TYPES : direction === "client" ? CLIENT_TYPES : null;
  if (allowed !== null && !allowed.has(type)) {
    throw new ProtocolError(`message type ${type} is not sent in this direction`, ErrorCode.UNKNOWN_TYPE);
  }
  if (type === MsgType.DELTA) return decodeDelta(obj);
  if (type === MsgType.VIEW) {
    // SPEC section 11: validated and applied by ViewReplica.apply
    if (obj.length < 4 || !Number.isInteger(obj[1]) || obj[1] < 0) throw bad("VIEW must be [22, tick, base_tick, left, PIECE...]");
    return { type, tick: obj[1], raw: obj };
  }
  if (obj.length < 2 || !isMap(obj[1])) throw bad(`message type ${type}: body must be a msgpack map`);
  return control(type, obj[1]);
}
