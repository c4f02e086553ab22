// SAME pieces (protocol/SPEC.md section 11, "interest/2"): [channel, values] and
// [channel, mask, values] apply on the rows of the MOVES / SAME piece the view applied to the
// channel at exactly the VIEW's base tick; anything else throws DeltaError and changes nothing.
import { test } from "node:test";
import assert from "node:assert/strict";
import { DeltaError, ViewReplica, WireSchema } from "../src/index.js";
import { SCHEMA, le } from "./harness.mjs";

const fullPiece = (ch, tick, ids, xs) => [ch, [17, tick, null, ids.length, null, [[ids[0], "u8", new Uint8Array(ids.slice(1).map((v, i) => v - ids[i]))], [
  ["i32", le(Int32Array, xs)], ["i32", le(Int32Array, xs.map(() => 0))], ["u32", le(Uint32Array, xs.map(() => 0))]]], []], null];
/** MOVES on channel `ch`: row `row` gets x += dx, y += 0 (d8 codes). */
const moves = (ch, row, dx) => [ch, 3, row, new Uint8Array(0), new Uint8Array([0x88, dx & 0xff, 0])];
/** SAME on `ch` (x and y, the remembered mask): x += dx, y += 0 on the remembered row. */
const same = (ch, dx) => [ch, new Uint8Array([0x88, dx & 0xff, 0])];
/** SAME with a mask: x only. */
const sameX = (ch, dx) => [ch, 1, new Uint8Array([0x08, dx & 0xff])];

function state(v) {
  return JSON.stringify({ tick: v.tick, ids: Array.from(v.ids), x: Array.from(v.column("x")),
    chans: [...v.channels.keys()], rows: [...v._rows].map(([c, r]) => [c, r[0], r[1], Array.from(r[2]), r[3]]) });
}

/** A view at tick 12 that applied MOVES on channel 3 (row 1) at tick 12. */
function warm() {
  const v = new ViewReplica(WireSchema.fromWire(SCHEMA));
  v.apply([22, 11, null, null, fullPiece(3, 11, [257, 258], [100, 200]), fullPiece(9, 11, [300], [5])]);
  v.apply([22, 12, 11, null, moves(3, 1, 7)]);
  return v;
}

test("SAME and SAME with a mask apply on the remembered rows", () => {
  const v = warm();
  v.apply([22, 13, 12, null, same(3, 3)]);
  assert.deepEqual(Array.from(v.column("x")), [100, 210, 5]);
  v.apply([22, 14, 13, null, sameX(3, -10)]);
  assert.deepEqual(Array.from(v.column("x")), [100, 200, 5]);
  v.apply([22, 15, 14, null, [3, new Uint8Array([0x08, 1])]]); // the mask stays x only
  assert.deepEqual(Array.from(v.column("x")), [100, 201, 5]);
});

const REFUSED = {
  "SAME on a channel with no MOVES applied": () => [22, 13, 12, null, same(9, 1)],
  "SAME in a reset VIEW": () => [22, 13, null, null, fullPiece(3, 13, [257, 258], [1, 2]), same(3, 1)],
  "SAME on a channel left in the same VIEW": () => [22, 13, 12, [3, "u8", new Uint8Array(0)], same(3, 1)],
  "SAME values too short": () => [22, 13, 12, null, [3, new Uint8Array([0x88, 1])]],
  "SAME with a mask the values do not fill": () => [22, 13, 12, null, [3, 3, new Uint8Array([0x08, 1])]],
  "a 4-element piece": () => [22, 13, 12, null, [3, 3, 1, new Uint8Array([0x08, 1])]],
  "a good SAME, then a bad piece": () => [22, 13, 12, null, same(3, 1), same(9, 1)],
  "a MOVES on other rows, then a bad piece": () => [22, 13, 12, null, moves(3, 0, 1), same(9, 1)],
};

for (const [name, msg] of Object.entries(REFUSED)) {
  test(`refused, nothing changed: ${name}`, () => {
    const v = warm();
    const before = state(v);
    assert.throws(() => v.apply(msg()), DeltaError);
    assert.equal(state(v), before);
    v.apply([22, 13, 12, null, same(3, 1)]); // the rows of tick 12 still apply (row 1)
    assert.deepEqual(Array.from(v.column("x")), [100, 208, 5]);
  });
}

test("stale rows: a tick without a piece for the channel, or a DELTA piece, forgets them", () => {
  const v = warm();
  v.apply([22, 13, 12, null]); // channel 3 unchanged at tick 13
  assert.throws(() => v.apply([22, 14, 13, null, same(3, 1)]), /SAME/);
  const w = warm();
  w.apply([22, 13, 12, null, [3, [17, 13, 12, 2, null, null, []], null]]); // a DELTA piece
  assert.throws(() => w.apply([22, 14, 13, null, same(3, 1)]), /SAME/);
  const r = warm();
  r.apply([22, 13, null, null, fullPiece(3, 13, [257, 258], [1, 2])]); // a reset
  assert.throws(() => r.apply([22, 14, 13, null, same(3, 1)]), /SAME/);
});
