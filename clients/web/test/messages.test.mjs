// Control messages: encoding (what the server reads) and strict decoding (SPEC section 8).
import { test } from "node:test";
import assert from "node:assert/strict";
import { decode, encode } from "@msgpack/msgpack";
import {
  decodeMessage, encodeHello, encodeInput, encodePing, encodeResume, encodeLeave, unpack,
  ProtocolError, Stats,
} from "../src/index.js";

test("client messages encode to the SPEC layouts", () => {
  assert.deepEqual(decode(encodeHello({ name: "ann", room: undefined })), [1, { v: 1, name: "ann" }]);
  assert.deepEqual(decode(encodeResume("tok")), [2, { v: 1, token: "tok" }]);
  assert.deepEqual(decode(encodeInput(7, { dx: 0.5, fire: true })), [3, { s: 7, d: { dx: 0.5, fire: true } }]);
  assert.deepEqual(decode(encodePing(12.5)), [4, { t: 12.5 }]);
  assert.deepEqual(Array.from(encodeLeave()), [0x92, 0x05, 0x80]);
});

test("server control messages decode; unknown keys and trailing elements are ignored", () => {
  assert.deepEqual(decodeMessage(encode([18, { s: 3, t: 99, zz: 1 }, "more"])), { type: 18, s: 3, t: 99 });
  assert.deepEqual(decodeMessage(encode([19, { k: "score", d: { a: [1, 2] } }])), { type: 19, k: "score", d: { a: [1, 2] } });
  assert.deepEqual(decodeMessage(encode([20, { c: 4006, m: "no" }])), { type: 20, c: 4006, m: "no" });
  assert.deepEqual(decodeMessage(encode([21, { t: 1.5, st: 7 }])), { type: 21, t: 1.5, st: 7 });
  const w = decodeMessage(encode([16, {
    v: 1, player: 3, room: "r", game: "arena", tick: 5, tick_rate: 30, send_rate: 15,
    schema: { fields: [] }, inputs: [], resume: "tok", resume_grace: 10,
  }]));
  assert.equal(w.player, 3);
  assert.equal(w.entity, null);
  assert.deepEqual(w.schema.fields, []);
  // a new message type is an UNKNOWN_TYPE error, which the client ignores (growth rule 4)
  assert.throws(() => decodeMessage(encode([99, { x: 1 }])), (e) => e instanceof ProtocolError && e.code === 2);
  // direction: a server does not send HELLO, a client does not send WELCOME
  assert.throws(() => decodeMessage(encode([1, { v: 1 }]), "server"), (e) => e.code === 2);
  assert.equal(decodeMessage(encode([1, { v: 1 }]), "client").v, 1);
  assert.throws(() => decodeMessage(encode([18, { s: 1, t: 1 }]), "client"), (e) => e.code === 2);
});

test("malformed server messages are ProtocolErrors", () => {
  const bad = [
    new Uint8Array([0xc1]), // never used
    encode({ a: 1 }), // not an array
    encode([]),
    encode(["x", {}]),
    encode([18, [1, 2]]), // body not a map
    encode([18, { s: 1 }]), // missing key
    encode([18, { s: "1", t: 1 }]), // wrong type
    new Uint8Array([0x92, 0x13, 0x81, 0x01, 0x02]), // int map key
    new Uint8Array([0x92, 0x13, 0xd6, 0xff, 0, 0, 0, 0]), // timestamp ext
    new Uint8Array([0x92, 0x13, 0xd4, 0x05, 0x00]), // ext 5
    new Uint8Array([...encode([21, { t: 1, st: 1 }]), 0x00]), // trailing byte
  ];
  for (const b of bad) assert.throws(() => decodeMessage(b), ProtocolError, Buffer.from(b).toString("hex"));
  // EVENT "d": 32 nested arrays are fine, 33 are not (as protocol/messages.py)
  let d = 1;
  for (let i = 0; i < 32; i++) d = [d];
  assert.equal(decodeMessage(encode([19, { k: "x", d }])).k, "x");
  assert.throws(() => decodeMessage(encode([19, { k: "x", d: [d] }])), /deeper/);
});

test("stats: rtt, bytes per second over the window, tick age", () => {
  let now = 0;
  const s = new Stats({ now: () => now, windowMs: 1000 });
  assert.equal(s.tickAge, null);
  s.received(100);
  now = 500;
  s.received(300);
  s.delta(42);
  assert.equal(s.bytesPerSec, 400);
  now = 1200; // the first sample left the window
  assert.equal(s.bytesPerSec, 300);
  assert.equal(s.tickAge, 700);
  s.pong(1150);
  assert.equal(s.rtt, 50);
  now = 1300;
  s.pong(1100);
  assert.equal(s.rtt, 200);
  assert.equal(s.rttSmoothed, 50 + 150 / 8);
  assert.equal(s.rttMedian, 125);
  now = 1400;
  s.pong(1399);
  assert.equal(s.rttMedian, 50);
  assert.equal(s.snapshot().lastTick, 42);
  for (let i = 0; i < 10000; i++) s.received(1); // bounded ring
  assert.ok(s.bytesPerSec <= 10000);
});

test("an integral float where an int is required is refused, as in Python; elsewhere it is a number", () => {
  // [18, {"s": 1.0, "t": 5}]: float64 1.0 for s
  const f64one = [0xcb, 0x3f, 0xf0, 0, 0, 0, 0, 0, 0];
  const ack = new Uint8Array([0x92, 0x12, 0x82, 0xa1, 0x73, ...f64one, 0xa1, 0x74, 0x05]);
  assert.throws(() => decodeMessage(ack), /"s" must be a uint.*float/);
  // a DELTA tick as float 1.0
  const delta = new Uint8Array([0x97, 0x11, ...f64one, 0xc0, 0x00, 0xc0, 0xc0, 0x90]);
  assert.throws(() => decodeMessage(delta), /tick/);
  // PONG "t" may be any number; an EVENT's data keeps plain numbers
  const pong = decodeMessage(new Uint8Array([0x92, 0x15, 0x82, 0xa1, 0x74, ...f64one, 0xa2, 0x73, 0x74, 0x02]));
  assert.equal(pong.t, 1);
  assert.equal(typeof pong.t, "number");
  const ev = decodeMessage(new Uint8Array([0x92, 0x13, 0x82, 0xa1, 0x6b, 0xa1, 0x61, 0xa1, 0x64, 0x92, ...f64one, 0x81, 0xa1, 0x73, ...f64one]));
  assert.deepEqual(ev.d, [1, { s: 1 }]);
  assert.equal(typeof ev.d[0], "number");
  assert.equal(typeof ev.d[1].s, "number");
  assert.equal(typeof unpack(new Uint8Array(f64one)), "number");
});
