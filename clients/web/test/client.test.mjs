// GameClient over a fake WebSocket (no network): join, deltas, inputs, acks, prediction,
// resume after a drop, refusals, malformed data.
import { test } from "node:test";
import assert from "node:assert/strict";
import { encode, decode } from "@msgpack/msgpack";
import { GameClient, SUBPROTOCOL } from "../src/index.js";
import { SCHEMA, FakeWS, quiet, le, welcome, full, moveMe, nextTick, makeClient } from "./harness.mjs";

test("join, deltas, inputs with auto seq, acks drive reconciliation", () => {
  const c = makeClient();
  const statuses = [];
  c.on("status", (e) => statuses.push(e.status));
  c.connect();
  const ws = FakeWS.all[0];
  assert.equal(ws.url, "ws://test/ws");
  ws.open();
  assert.deepEqual(ws.sent[0], [1, { v: 1, name: "ann", ext: ["interest", "interest/2"] }]); // SPEC section 11
  assert.equal(c.sendInput({ dx: 1 }), 0, "no input before WELCOME");
  ws.deliver(welcome());
  assert.equal(c.status, "connected");
  assert.deepEqual(ws.sent[1][0], 4, "a PING follows the WELCOME");
  ws.deliver(full(11));
  assert.equal(c.world.tick, 11);
  assert.equal(c.entityId, 258);
  assert.deepEqual(c.predictor.state, { x: 5 });
  assert.equal(c.sendInput({ dx: 1 }), 1);
  assert.equal(c.sendInput({ dx: 1 }), 2);
  // rt: the tick on screen; frame() was never called, so the latest tick (11)
  assert.deepEqual(ws.sent.slice(-2), [[3, { s: 1, d: { dx: 1 }, rt: 11 }], [3, { s: 2, d: { dx: 1 }, rt: 11 }]]);
  assert.deepEqual(c.predictor.state, { x: 7 });
  // the server applied seq 1 in tick 12; the delta of tick 12 moved us by 1 unit (100 wire)
  ws.deliver([18, { s: 1, t: 12 }]);
  ws.deliver(moveMe(12, 11, 100));
  assert.equal(c.world.values("x")[1], 6);
  assert.deepEqual(c.predictor.state, { x: 7 }, "authoritative 6 + pending seq 2");
  assert.equal(c.predictor.pending.length, 1);
  assert.ok(c.stats.bytesReceived > 0 && c.stats.lastTick === 12);
  assert.deepEqual(statuses, ["connecting", "joining", "connected"]);
  c.close();
});

test("a drop resumes the same player with the token; seqs continue", async () => {
  const c = makeClient();
  c.connect();
  let ws = FakeWS.all[0];
  ws.open();
  ws.deliver(welcome());
  ws.deliver(full(11));
  c.sendInput({ dx: 1 });
  ws.drop(1006);
  assert.equal(c.status, "reconnecting");
  await nextTick();
  ws = FakeWS.all[1];
  assert.ok(ws, "a new socket after the backoff");
  ws.open();
  assert.deepEqual(ws.sent[0], [2, { v: 1, token: "tok" }]);
  let resumed = null;
  c.on("welcome", (e) => (resumed = e.resumed));
  ws.deliver(welcome());
  ws.deliver(full(30));
  assert.equal(resumed, true);
  assert.equal(c.stats.reconnects, 1);
  assert.equal(c.sendInput({ dx: 1 }), 2, "seqs continue after a resume");
  c.close();
  assert.deepEqual(ws.sent.at(-1), [5, {}]);
  assert.equal(ws.closed.code, 1000);
  assert.equal(c.status, "closed");
});

test("resume refused (4005): joins again as a new player, seqs restart", async () => {
  const c = makeClient();
  c.connect();
  let ws = FakeWS.all[0];
  ws.open();
  ws.deliver(welcome(7));
  ws.deliver(full(11));
  c.sendInput({ dx: 1 });
  ws.drop(1001, "going away");
  await nextTick();
  ws = FakeWS.all[1];
  ws.open();
  assert.equal(ws.sent[0][0], 2);
  ws.deliver([20, { c: 4005, m: "unknown resume token" }]);
  ws.drop(4005);
  await nextTick();
  ws = FakeWS.all[2];
  ws.open();
  assert.deepEqual(ws.sent[0], [1, { v: 1, name: "ann", ext: ["interest", "interest/2"] }]); // SPEC section 11
  ws.deliver(welcome(9, 513, "tok2"));
  assert.equal(c.playerId, 9);
  assert.equal(c.sendInput({ dx: 1 }), 1);
  c.close();
});

test("a refused join is final and says why", async () => {
  const c = makeClient();
  const fatal = [];
  c.on("fatal", (e) => fatal.push(e));
  c.connect();
  const ws = FakeWS.all[0];
  ws.open();
  ws.deliver([20, { c: 4006, m: "the name 'ann' is already taken" }]);
  ws.drop(4006);
  await nextTick();
  assert.equal(FakeWS.all.length, 1, "no reconnect after a refusal");
  assert.equal(c.status, "rejected");
  assert.match(c.statusDetail, /already taken/);
  assert.equal(fatal[0].kind, "rejected");
});

test("malformed data: close with 4000 and status error, no retry; unknown types ignored", async () => {
  const c = makeClient();
  c.connect();
  const ws = FakeWS.all[0];
  ws.open();
  ws.deliver(welcome());
  ws.deliver([99, { future: true }]); // unknown S->C type: ignored
  assert.equal(c.status, "connected");
  ws.onmessage({ data: new Uint8Array([0xc1]).buffer });
  assert.equal(c.status, "error");
  assert.equal(ws.closed.code, 4000);
  assert.match(ws.closed.reason, /malformed/);
  assert.ok(new TextEncoder().encode(ws.closed.reason).length <= 123);
  await nextTick();
  assert.equal(FakeWS.all.length, 1);
});

test("a delta that does not apply: resync once via RESUME, fatal the second time in a row", async () => {
  const c = makeClient();
  c.connect();
  let ws = FakeWS.all[0];
  ws.open();
  ws.deliver(welcome());
  ws.deliver(full(11));
  ws.deliver(moveMe(13, 12, 1)); // wrong base tick
  assert.equal(ws.closed.code, 4000);
  assert.equal(c.status, "reconnecting");
  await nextTick();
  ws = FakeWS.all[1];
  ws.open();
  assert.equal(ws.sent[0][0], 2, "resynchronizes with RESUME");
  ws.deliver(welcome());
  ws.deliver(moveMe(13, 12, 1)); // no full snapshot first: does not apply again
  assert.equal(c.status, "error");
});

test("stall: no message for stallTimeout ms is a drop", async () => {
  const c = makeClient({ pingInterval: 5, stallTimeout: 20 });
  c.connect();
  const ws = FakeWS.all[0];
  ws.open();
  ws.deliver(welcome());
  await new Promise((r) => setTimeout(r, 60));
  assert.ok(FakeWS.all.length >= 2, "reconnected after the stall");
  c.close();
});

test("inputs carry rt: the interpolation (render) tick once frames are drawn", () => {
  const c = makeClient({ interpolationDelay: 0.1 });
  c.connect();
  const ws = FakeWS.all[0];
  ws.open();
  ws.deliver(welcome());
  assert.equal(c.renderTick, null, "no snapshot yet");
  ws.deliver(full(11));
  for (let t = 12; t <= 20; t++) ws.deliver(moveMe(t, t - 1, 1));
  assert.equal(c.renderTick, 20, "no frame drawn yet: the latest tick");
  const f = c.frame(); // server time ~ 20/30 s; 0.1 s (3 ticks at 30 Hz) behind: tick 17
  assert.ok(f !== null);
  assert.equal(c.renderTick, 17);
  c.sendInput({ dx: 1 });
  assert.deepEqual(ws.sent.at(-1), [3, { s: 1, d: { dx: 1 }, rt: 17 }]);
  c.close();
  const quietRt = makeClient({ sendRenderTick: false });
  quietRt.connect();
  const ws2 = FakeWS.all[0];
  ws2.open();
  ws2.deliver(welcome());
  ws2.deliver(full(11));
  quietRt.sendInput({ dx: 1 });
  assert.deepEqual(ws2.sent.at(-1), [3, { s: 1, d: { dx: 1 } }], "sendRenderTick: false sends no rt");
  quietRt.close();
});

test("the client offers the gameserver.v1 subprotocol", () => {
  const c = makeClient();
  c.connect();
  const ws = FakeWS.all[0];
  assert.ok(ws, "a WebSocket was opened");
  assert.equal(SUBPROTOCOL, "gameserver.v1");
  assert.deepEqual(ws.protocols, ["gameserver.v1"]);
  c.close();
});

test("interest: WELCOME ext -> the world is a ViewReplica; VIEW and MOVES apply; camera()", () => {
  const c = makeClient({ spectate: true });
  const views = [];
  c.on("view", (e) => views.push(e));
  c.connect();
  const ws = FakeWS.all[0];
  ws.open();
  assert.deepEqual(ws.sent[0], [1, { v: 1, name: "ann", ext: ["interest", "interest/2"], spectate: true }]);
  const w = welcome(7, null);
  w[1].ext = ["interest"];
  w[1].spectator = true;
  ws.deliver(w);
  assert.ok(c.welcome.spectator && c.welcome.ext.includes("interest"));
  // reset VIEW: channel 3 holds ids 257, 258 (full piece); channel 9 holds 300
  const fullPiece = (ch, ids, xs) => [ch, [17, 11, null, ids.length, null, [[ids[0], "u8", new Uint8Array(ids.slice(1).map((v, i) => v - ids[i]))], [
    ["i32", le(Int32Array, xs)], ["i32", le(Int32Array, xs.map(() => 0))], ["u32", le(Uint32Array, xs.map(() => 0))]]], []], null];
  ws.deliver([22, 11, null, null, fullPiece(3, [257, 258], [100, 200]), fullPiece(9, [300], [5])]);
  assert.equal(c.world.constructor.name, "ViewReplica");
  assert.deepEqual(Array.from(c.world.ids), [257, 258, 300]);
  assert.deepEqual(Array.from(views[0].entered), [257, 258, 300]);
  // MOVES on channel 3: row 1 (id 258) x += 7 (code d8 = 8 in the low nibble, y d8 high)
  ws.deliver([22, 12, 11, null, [3, 3, 1, new Uint8Array(0), new Uint8Array([0x88, 7, 0])]]);
  assert.deepEqual(Array.from(c.world.column("x")), [100, 207, 5]);
  // channel 9 leaves the view: 300 "left view", not despawned
  ws.deliver([22, 13, 12, [9, "u8", new Uint8Array(0)]]);
  assert.deepEqual(Array.from(views[2].leftView), [300]);
  assert.deepEqual(Array.from(views[2].despawned), []);
  assert.ok(c.camera(50, 60, 100, 100));
  assert.deepEqual(ws.sent.at(-1), [6, { x: 50, y: 60, w: 100, h: 100 }]);
  c.close();
});

test("worker restarted: a 1006, the RESUME answered 4015 -> HELLO without the dead room", async () => {
  const c = makeClient({ room: "walker-w1-3" });
  c.connect();
  let ws = FakeWS.all[0];
  ws.open();
  assert.equal(ws.sent[0][1].room, "walker-w1-3");
  ws.deliver(welcome(7));
  ws.deliver(full(11));
  ws.drop(1006); // the worker died mid-frame: no 4015 close frame reached us
  await nextTick();
  ws = FakeWS.all[1];
  ws.open();
  assert.deepEqual(ws.sent[0], [2, { v: 1, token: "tok" }]);
  ws.deliver([20, { c: 4015, m: "worker restarted: join again" }]);
  ws.drop(4015, "worker restarted: join again");
  await nextTick();
  ws = FakeWS.all[2];
  assert.ok(ws, "joins again instead of resuming or stopping");
  ws.open();
  assert.equal(ws.sent[0][0], 1, "a HELLO, not a second RESUME");
  assert.equal(ws.sent[0][1].room, undefined, "without the dead room's id");
  ws.deliver(welcome(9, 513, "tok2"));
  assert.equal(c.playerId, 9);
  assert.equal(c.status, "connected");
  c.close();
});
