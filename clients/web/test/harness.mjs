// Shared by the GameClient node tests: a fake WebSocket (no network), a schema, and
// builders for the server's messages.
import { encode, decode } from "@msgpack/msgpack";
import { GameClient } from "../src/index.js";

export const SCHEMA = { fields: [{ n: "x", t: "i32", q: 0.01 }, { n: "y", t: "i32", q: 0.01 }, { n: "owner", t: "u32", k: "player" }] };

export class FakeWS {
  static all = [];
  constructor(url, protocols) {
    this.url = url;
    this.protocols = protocols;
    this.readyState = 0;
    this.sent = [];
    this.closed = null;
    FakeWS.all.push(this);
  }
  send(bytes) {
    this.sent.push(decode(bytes));
  }
  close(code, reason) {
    this.closed = { code, reason };
    this.readyState = 3;
  }
  // server side helpers
  open() {
    this.readyState = 1;
    this.onopen?.();
  }
  deliver(value) {
    const b = encode(value);
    this.onmessage?.({ data: b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength) });
  }
  drop(code = 1006, reason = "") {
    this.readyState = 3;
    this.onclose?.({ code, reason, wasClean: false });
  }
}

export const quiet = { error() {}, warn() {}, info() {} };
export const le = (Ctor, a) => new Uint8Array(new Ctor(a).buffer);
export const welcome = (player = 7, entity = 258, resume = "tok") => [16, {
  v: 1, player, entity, room: "r1", game: "arena", tick: 10, tick_rate: 30, send_rate: 15,
  schema: SCHEMA, inputs: [{ n: "dx", t: "f32" }], resume, resume_grace: 15,
}];
export const full = (tick) => [17, tick, null, 2, null, [[257, "u8", new Uint8Array([1])], [
  ["i32", le(Int32Array, [100, 500])], ["i32", le(Int32Array, [0, 0])], ["u32", le(Uint32Array, [0, 7])]]], []];
export const moveMe = (tick, base, dx) => [17, tick, base, 2, null, null, [[1, [1, "u8", new Uint8Array(0)], [["d8", le(Int8Array, [dx])]]]]];
export const nextTick = () => new Promise((r) => setTimeout(r, 5));

export function makeClient(extra = {}) {
  FakeWS.all = [];
  return new GameClient("ws://test/ws", {
    WebSocket: FakeWS, log: quiet, name: "ann", backoffInitial: 1, backoffMax: 2, pingInterval: 60_000,
    step: (s, i) => ({ x: s.x + i.dx }),
    stateOf: (w, r) => ({ x: w.values("x")[r] }),
    ...extra,
  });
}
