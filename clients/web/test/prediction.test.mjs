// Same semantics as clients/prediction.py: predicted = authoritative + pending replayed.
import { test } from "node:test";
import assert from "node:assert/strict";
import { AckTracker, Predictor } from "../src/index.js";

const step = (s, inp) => ({ x: s.x + inp.dx });

test("predict on record, reconcile replays unacked inputs", () => {
  let now = 0;
  const p = new Predictor(step, { x: 0 }, { clock: () => now, error: (a, b) => Math.abs(a.x - b.x) });
  p.record(1, { dx: 1 });
  p.record(2, { dx: 1 });
  p.record(3, { dx: 1 });
  assert.equal(p.state.x, 3);
  now = 0.1;
  // the server applied 1 and 2 (and agrees): 2 + replay of 3 = 3, no misprediction
  p.reconcile({ x: 2 }, 2);
  assert.equal(p.state.x, 3);
  assert.equal(p.pending.length, 1);
  assert.equal(p.mispredictions, 0);
  assert.ok(Math.abs(p.latency - 0.1) < 1e-12);
  // the server disagrees (a wall): corrected within one reconcile
  p.reconcile({ x: 1 }, 3);
  assert.equal(p.state.x, 1);
  assert.equal(p.mispredictions, 1);
  assert.equal(p.lastError, 2);
  // a stale state with an older ack does not resurrect acked inputs
  p.record(4, { dx: 5 });
  p.reconcile({ x: 1 }, 2);
  assert.equal(p.ackedSeq, 3);
  assert.equal(p.state.x, 6);
  assert.throws(() => p.record(4, { dx: 1 }), RangeError);
});

test("bounded: max pending and max age", () => {
  let now = 0;
  const p = new Predictor(step, { x: 0 }, { clock: () => now, maxPending: 2, maxAge: 1 });
  p.record(1, { dx: 1 });
  p.record(2, { dx: 1 });
  p.record(3, { dx: 1 });
  assert.equal(p.pending.length, 2);
  assert.equal(p.expired, 1);
  now = 5;
  p.reconcile({ x: 0 }, 0);
  assert.equal(p.pending.length, 0);
  assert.equal(p.state.x, 0);
  assert.equal(p.expired, 3);
});

test("AckTracker pairs acks with ticks", () => {
  const a = new AckTracker(4);
  assert.equal(a.ackedAt(100), 0);
  a.ack(1, 10);
  a.ack(2, 10);
  a.ack(3, 12);
  a.ack(2, 13); // older seq: ignored
  assert.equal(a.ackedAt(9), 0);
  assert.equal(a.ackedAt(10), 2);
  assert.equal(a.ackedAt(11), 2);
  assert.equal(a.ackedAt(50), 3);
  a.ack(4, 11); // reordered: counted at tick 12
  assert.equal(a.ackedAt(11), 2);
  assert.equal(a.ackedAt(12), 4);
  for (let s = 5; s < 20; s++) a.ack(s, 20 + s);
  assert.equal(a.lastSeq, 19);
  assert.equal(a.ackedAt(39), 19);
  a.reset();
  assert.equal(a.ackedAt(1000), 0);
});
