// Game message codec: the msgpack envelope of protocol/SPEC.md.
//
// Every game message is one WebSocket binary message holding one msgpack array whose first
// element is the message type. Control messages are [type, body] with body a map of short
// string keys; unknown keys are ignored (that is how the protocol grows). DELTA messages are
// decoded by delta.js (decodeDelta); this module only dispatches on the type number.

import { Decoder, encode as mpEncode } from "@msgpack/msgpack";
import { decodeDelta } from "./delta.js";
import { ProtocolError } from "./errors.js";

export { ProtocolError };

/** Message type numbers (frozen, docs/ARCHITECTURE.md). */
export const MsgType = Object.freeze({
  HELLO: 1,
  RESUME: 2,
  INPUT: 3,
  PING: 4,
  LEAVE: 5,
  WELCOME: 16,
  DELTA: 17,
  INPUT_ACK: 18,
  EVENT: 19,
  ERROR: 20,
  PONG: 21,
});

const KNOWN_S2C = new Set([16, 17, 18, 19, 20, 21, 1, 2, 3, 4, 5]);

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
});

/** ERROR message codes (non-fatal unless followed by a close). */
export const ErrorCode = Object.freeze({
  MALFORMED: 1,
  UNKNOWN_TYPE: 2,
  INVALID_INPUT: 3,
  RATE_LIMITED: 4,
  TOO_LARGE: 5,
  JOIN_STATE: 6,
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
});

/** Protocol version spoken by this client. */
export const PROTOCOL_VERSION = 1;

/** Encode a [type, body] control message to bytes. @returns {Uint8Array} */
export function encodeMessage(type, body) {
  return mpEncode([type, body ?? {}]);
}

/**
 * HELLO. @param {{game?: string, room?: string, token?: string, name?: string}} [opts]
 * @returns {Uint8Array}
 */
export function encodeHello(opts = {}) {
  /** @type {Record<string, unknown>} */
  const body = { v: PROTOCOL_VERSION };
  for (const k of ["game", "room", "token", "name"]) {
    if (opts[k] !== undefined && opts[k] !== null) body[k] = String(opts[k]);
  }
  return encodeMessage(MsgType.HELLO, body);
}

/** RESUME with the token from WELCOME. @param {string} token */
export function encodeResume(token) {
  return encodeMessage(MsgType.RESUME, { v: PROTOCOL_VERSION, token });
}

/** INPUT. @param {number} seq uint32, 1, 2, 3... @param {Record<string, number|boolean>} data */
export function encodeInput(seq, data) {
  return encodeMessage(MsgType.INPUT, { s: seq >>> 0, d: data });
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
    throw new ProtocolError(`msgpack ext type ${type} is not allowed`);
  },
};

/** SPEC 8: map keys must be str. */
function strKeysOnly(key) {
  if (typeof key !== "string") throw new ProtocolError(`non-str map key ${JSON.stringify(key)}`);
  return key;
}

/** Max nesting depth of an EVENT's "d" (SPEC 2). */
export const MAX_EVENT_DEPTH = 32;

const decoder = new Decoder({ extensionCodec: rejectExt, mapKeyConverter: strKeysOnly });

/** msgpack-decode exactly one value (trailing bytes are malformed); throws ProtocolError. */
export function unpack(bytes) {
  try {
    return decoder.decode(bytes);
  } catch (e) {
    if (e instanceof ProtocolError) throw e;
    throw new ProtocolError(`undecodable msgpack: ${e instanceof Error ? e.message : e}`);
  }
}

function depth(v, limit) {
  // iterative: a hostile value must not overflow the JS stack
  const stack = [[v, 1]];
  while (stack.length) {
    const [x, d] = stack.pop();
    if (d > limit) return d;
    if (Array.isArray(x)) for (const y of x) stack.push([y, d + 1]);
    else if (isMap(x)) for (const y of Object.values(x)) stack.push([y, d + 1]);
  }
  return 0;
}

function isMap(v) {
  return v !== null && typeof v === "object" && !Array.isArray(v) && !(v instanceof Uint8Array);
}

function need(body, key, check, what) {
  const v = body[key];
  if (!check(v)) throw new ProtocolError(`${what}: field "${key}" missing or invalid`);
  return v;
}

const isInt = (v) => Number.isInteger(v);
const isNum = (v) => typeof v === "number" && Number.isFinite(v);
const isStr = (v) => typeof v === "string";

/**
 * Decode one server message. Throws ProtocolError if the bytes are not a valid game message.
 * @param {Uint8Array} bytes
 * @returns {import("../index").ServerMessage}
 */
export function decodeMessage(bytes) {
  const msg = unpack(bytes);
  if (!Array.isArray(msg) || msg.length < 1 || !isInt(msg[0])) {
    throw new ProtocolError("a game message must be a msgpack array starting with its type");
  }
  const type = msg[0];
  if (!KNOWN_S2C.has(type)) {
    // SPEC 1, rule 4: a new S->C type; the client logs and ignores it
    return { type, unknown: true, body: msg[1] };
  }
  if (type === MsgType.DELTA) {
    return decodeDelta(msg);
  }
  const body = msg[1];
  if (msg.length < 2 || !isMap(body)) {
    throw new ProtocolError(`message type ${type}: body must be a map`);
  }
  switch (type) {
    case MsgType.WELCOME: {
      const w = "WELCOME";
      return {
        type,
        v: need(body, "v", isInt, w),
        player: need(body, "player", isInt, w),
        entity: isInt(body.entity) ? body.entity : null,
        room: need(body, "room", isStr, w),
        game: need(body, "game", isStr, w),
        tick: need(body, "tick", isInt, w),
        tick_rate: need(body, "tick_rate", (v) => isNum(v) && v > 0, w),
        send_rate: need(body, "send_rate", (v) => isNum(v) && v > 0, w),
        schema: need(body, "schema", (v) => v !== undefined && v !== null, w),
        inputs: body.inputs ?? null,
        resume: isStr(body.resume) ? body.resume : null,
        resume_grace: isNum(body.resume_grace) ? body.resume_grace : 0,
        raw: body,
      };
    }
    case MsgType.INPUT_ACK:
      return { type, s: need(body, "s", isInt, "INPUT_ACK"), t: need(body, "t", isInt, "INPUT_ACK") };
    case MsgType.EVENT: {
      const k = need(body, "k", isStr, "EVENT");
      const d = body.d ?? null;
      if (d !== null && typeof d === "object" && depth(d, MAX_EVENT_DEPTH) > MAX_EVENT_DEPTH) {
        throw new ProtocolError(`EVENT: "d" nested deeper than ${MAX_EVENT_DEPTH}`);
      }
      return { type, k, d };
    }
    case MsgType.ERROR:
      return { type, c: need(body, "c", isInt, "ERROR"), m: isStr(body.m) ? body.m : "" };
    case MsgType.PONG:
      return { type, t: need(body, "t", isNum, "PONG"), st: isInt(body.st) ? body.st : null };
    default:
      throw new ProtocolError(`message type ${type} is not sent by a server`);
  }
}
