// Same semantics as clients/interpolation.py: union of ids, lerp floats, older ints,
// angles the short way, render time = server time - delay, never backwards.
import { test } from "node:test";
import assert from "node:assert/strict";
import { interpolate, InterpolationBuffer } from "../src/index.js";

const F = (a) => new Float64Array(a);
const U = (a) => new Uint32Array(a);

test("interpolate: union of ids, floats lerped, ints take the older value", () => {
  const r = interpolate(
    U([1, 2, 4]), { x: F([0, 10, 40]), hp: new Uint8Array([9, 8, 7]) },
    U([2, 3, 4]), { x: F([20, 30, 80]), hp: new Uint8Array([1, 2, 3]) },
    0.25,
  );
  assert.deepEqual(Array.from(r.ids), [1, 2, 3, 4]);
  assert.deepEqual(Array.from(r.columns.x), [0, 12.5, 30, 50]);
  assert.deepEqual(Array.from(r.columns.hp), [9, 8, 2, 7]);
  assert.ok(r.columns.hp instanceof Uint8Array);
});

test("interpolate: alpha is clamped, angles go the short way, field list restricts", () => {
  const a = { ang: F([3.0]), y: F([0]) };
  const b = { ang: F([-3.0]), y: F([10]) };
  const r = interpolate(U([1]), a, U([1]), b, 0.5, { angles: ["ang"], fields: ["ang"] });
  // from 3.0 to -3.0 the short way crosses pi: halfway is pi (or -pi)
  assert.ok(Math.abs(Math.abs(r.columns.ang[0]) - Math.PI) < 1e-9);
  assert.equal(r.columns.y[0], 0); // not in `fields`: older value
  const c = interpolate(U([1]), { y: F([0]) }, U([1]), { y: F([10]) }, 7);
  assert.equal(c.columns.y[0], 10);
});

test("interpolate: a field missing on one side takes the side that has it", () => {
  const r = interpolate(U([1, 2]), { x: F([1, 2]) }, U([2]), { x: F([4]), z: F([5]) }, 0.5);
  assert.deepEqual(Array.from(r.columns.x), [1, 3]);
  assert.deepEqual(Array.from(r.columns.z), [0, 5]);
});

test("buffer: renders at server time minus the delay, between the right snapshots", () => {
  let now = 100;
  const buf = new InterpolationBuffer({ delay: 0.1, clock: () => now, tickRate: 20 });
  assert.equal(buf.sample(), null);
  // ticks every 50 ms, each arriving 30 ms after its server time
  for (let t = 0; t <= 4; t++) {
    now = 100 + t * 0.05 + 0.03;
    buf.pushTick(t, U([1]), { x: F([t * 10]) });
  }
  // offset = 100.03; at now = 100.25, server time 0.22, render time 0.12: between ticks 2 and 3
  now = 100.25;
  const f = buf.sample();
  assert.ok(Math.abs(f.renderTime - 0.12) < 1e-9);
  assert.equal(f.olderTime, 0.1);
  assert.equal(f.newerTime, 0.15);
  assert.ok(Math.abs(f.columns.x[0] - 24) < 1e-9);
  assert.equal(f.starved, false);
  // never backwards, even if the offset estimate grows (a faster delivery)
  buf.push(0.25, U([1]), { x: F([50]) }, 100.25);
  now = 100.25;
  const g = buf.sample();
  assert.ok(g.renderTime >= f.renderTime);
  // run past the newest: starved, newest values
  now = 200;
  const h = buf.sample();
  assert.equal(h.starved, true);
  assert.equal(h.columns.x[0], 50);
  assert.equal(buf.starvedFrames, 1);
});

test("buffer: duplicates ignored, a big jump back resets, capacity bounded", () => {
  const buf = new InterpolationBuffer({ capacity: 4, clock: () => 0 });
  for (let t = 0; t < 10; t++) buf.push(t, U([1]), { x: F([t]) }, t);
  assert.equal(buf.length, 4);
  buf.push(9, U([1]), { x: F([0]) }, 10);
  assert.equal(buf.length, 4);
  buf.push(2, U([1]), { x: F([0]) }, 11);
  assert.equal(buf.length, 1);
  assert.throws(() => new InterpolationBuffer({ delay: -1 }), RangeError);
  // the pushed arrays are copies
  const x = F([1]);
  buf.push(3, U([1]), { x }, 12);
  x[0] = 99;
  assert.equal(buf.sample(100).columns.x[0], 1);
});

test("interpolate: the same-ids fast path equals the general merge path", () => {
  const n = 50;
  const ids = Uint32Array.from({ length: n }, (_, i) => 10 + i * 3);
  const mk = (seed) => ({
    x: Float64Array.from({ length: n }, (_, i) => Math.sin(i * seed) * 100),
    ang: Float32Array.from({ length: n }, (_, i) => Math.cos(i + seed) * 3.1),
    hp: Uint8Array.from({ length: n }, (_, i) => (i * seed) & 255),
  });
  const a = mk(1.3);
  const b = mk(2.7);
  const fast = interpolate(ids, a, ids, b, 0.37, { angles: ["ang"] });
  // the same plus one extra entity only in b forces the merge path
  const idsB = Uint32Array.from([...ids, 1000]);
  const b2 = { x: Float64Array.from([...b.x, 1]), ang: Float32Array.from([...b.ang, 1]), hp: Uint8Array.from([...b.hp, 1]) };
  const slow = interpolate(ids, a, idsB, b2, 0.37, { angles: ["ang"] });
  assert.deepEqual(Array.from(fast.ids), Array.from(slow.ids.subarray(0, n)));
  for (const k of ["x", "ang", "hp"]) {
    assert.equal(fast.columns[k].constructor, slow.columns[k].constructor, k);
    assert.deepEqual(Array.from(fast.columns[k]), Array.from(slow.columns[k].subarray(0, n)), k);
  }
  assert.ok(fast.ids !== ids, "a new array, not the input");
});
