// GameClient follows the cluster's 4013 REDIRECT and 4014 MOVED (SPEC 7) over a fake
// WebSocket: same HELLO at the new URL, RESUME after a move with unacknowledged inputs
// re-sent, the URL from the close reason when the ERROR has none, the loop cut after 3 hops.
import { test } from "node:test";
import assert from "node:assert/strict";
import { encode, decode } from "@msgpack/msgpack";
import { SCHEMA, FakeWS, quiet, le, welcome, full, moveMe, nextTick, makeClient } from "./harness.mjs";

test("4013 on HELLO: the same HELLO at the ERROR's url, at once", () => {
  const c = makeClient({ room: "r9" });
  c.connect();
  const a = FakeWS.all[0];
  a.open();
  const hello = a.sent[0];
  a.deliver([20, { c: 4013, m: "room lives elsewhere", url: "ws://b:2/ws" }]);
  a.drop(4013, "ws://b:2/ws");
  const b = FakeWS.all[1];
  assert.ok(b, "a new socket without waiting for a backoff");
  assert.equal(b.url, "ws://b:2/ws");
  assert.equal(c.url, "ws://b:2/ws");
  b.open();
  assert.deepEqual(b.sent[0], hello);
  b.deliver(welcome());
  b.deliver(full(11));
  assert.equal(c.status, "connected");
  assert.equal(c.stats.redirects, 1);
  assert.deepEqual(c.hops, []);
  c.close();
});

test("4014 MOVED: RESUME at url with the token, unacknowledged inputs re-sent", () => {
  const c = makeClient();
  const redirects = [];
  c.on("redirect", (e) => redirects.push(e));
  c.connect();
  const a = FakeWS.all[0];
  a.open();
  a.deliver(welcome());
  a.deliver(full(11));
  assert.equal(c.sendInput({ dx: 1 }), 1);
  assert.equal(c.sendInput({ dx: 0.5 }), 2);
  assert.equal(c.sendInput({ dx: 0.25 }), 3);
  a.deliver([18, { s: 1, t: 12 }]); // only seq 1 acknowledged on the old node
  assert.deepEqual(c.pendingInputs.map((p) => p.seq), [2, 3]);
  // the close reason is not a URL here: the ERROR's url is used
  a.deliver([20, { c: 4014, m: "room moved", url: "ws://b:2/ws" }]);
  a.drop(4014, "moved");
  assert.deepEqual(redirects, [{ code: 4014, url: "ws://b:2/ws" }]);
  const b = FakeWS.all[1];
  assert.equal(b.url, "ws://b:2/ws");
  b.open();
  assert.deepEqual(b.sent[0], [2, { v: 1, token: "tok" }]);
  b.deliver(welcome());
  b.deliver(full(40));
  const inputs = b.sent.filter((m) => m[0] === 3);
  // the original seqs, and the tick each was rendering when first sent (rt)
  assert.deepEqual(inputs, [[3, { s: 2, d: { dx: 0.5 }, rt: 11 }], [3, { s: 3, d: { dx: 0.25 }, rt: 11 }]]);
  assert.equal(c.playerId, 7);
  assert.equal(c.stats.inputsResent, 2);
  assert.equal(c.sendInput({ dx: 1 }), 4, "seqs continue on the new node");
  c.close();
});

test("4014 with only the close reason: followed too", () => {
  const c = makeClient();
  c.connect();
  const a = FakeWS.all[0];
  a.open();
  a.deliver(welcome());
  a.deliver(full(11));
  a.drop(4014, "wss://c:3/ws");
  assert.equal(FakeWS.all[1].url, "wss://c:3/ws");
  c.close();
});

test("a redirect loop is cut after 3 hops with a clear error", () => {
  const c = makeClient();
  let fatal = null;
  c.on("fatal", (e) => (fatal = e));
  c.connect();
  for (let i = 0; i < 4; i++) {
    const ws = FakeWS.all[i];
    ws.open();
    ws.deliver([20, { c: 4013, m: "elsewhere", url: `ws://n${i % 2}/ws` }]);
    ws.drop(4013, `ws://n${i % 2}/ws`);
  }
  assert.equal(FakeWS.all.length, 4, "1 + 3 hops, no more");
  assert.equal(c.status, "error");
  assert.equal(fatal.kind, "redirect");
  assert.match(fatal.message, /redirect loop/);
});

test("4013 without any URL is an error, not a hang", () => {
  const c = makeClient();
  c.connect();
  const a = FakeWS.all[0];
  a.open();
  a.drop(4013, "");
  assert.equal(c.status, "error");
  assert.equal(FakeWS.all.length, 1);
});
