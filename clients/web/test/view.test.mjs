// ViewReplica.apply is atomic (protocol/SPEC.md section 11): a VIEW with a bad piece after a
// good one throws DeltaError and leaves every channel, the tick and the union as they were.
import { test } from "node:test";
import assert from "node:assert/strict";
import { DeltaError, ViewReplica, WireSchema } from "../src/index.js";
import { SCHEMA, le } from "./harness.mjs";

/** A full (reset) piece for channel `ch` at `tick`: ids with x = xs, y = 0, owner = 0. */
const fullPiece = (ch, tick, ids, xs) => [ch, [17, tick, null, ids.length, null, [[ids[0], "u8", new Uint8Array(ids.slice(1).map((v, i) => v - ids[i]))], [
  ["i32", le(Int32Array, xs)], ["i32", le(Int32Array, xs.map(() => 0))], ["u32", le(Uint32Array, xs.map(() => 0))]]], []], null];

/** MOVES on channel `ch`: row `row` gets x += dx, y += 0 (d8 codes, SPEC section 11). */
const moves = (ch, row, dx) => [ch, 3, row, new Uint8Array(0), new Uint8Array([0x88, dx & 0xff, 0])];

function channelState(rep) {
  return { tick: rep.tick, count: rep.count, ids: Array.from(rep.ids),
    columns: Object.fromEntries(Object.entries(rep.columns).map(([k, c]) => [k, Array.from(c)])) };
}

function viewState(v) {
  const chans = {};
  for (const [c, rep] of v.channels) chans[c] = channelState(rep);
  return { tick: v.tick, union: channelState(v._union), chans,
    entered: Array.from(v.entered), leftView: Array.from(v.leftView), despawned: Array.from(v.despawned) };
}

function held() {
  const v = new ViewReplica(WireSchema.fromWire(SCHEMA));
  v.apply([22, 11, null, null, fullPiece(3, 11, [257, 258], [100, 200]), fullPiece(9, 11, [300], [5])]);
  return v;
}

const BAD_SECOND = {
  "MOVES row out of range": moves(9, 5, 1),
  "MOVES for a channel the view does not hold": moves(4, 0, 1),
  "DELTA with a wrong base tick": [9, [17, 12, 10, 1, null, null, []], null],
  "DELTA with a wrong count": [9, [17, 12, 11, 2, null, null, []], null],
  "DELTA of another tick": [9, [17, 13, 11, 1, null, null, []], null],
  "bad gone list": [9, [17, 12, 11, 1, null, null, []], "nope"],
  "not a piece": 7,
};

for (const [name, bad] of Object.entries(BAD_SECOND)) {
  test(`VIEW whose 2nd piece is bad (${name}) changes nothing`, () => {
    const v = held();
    const before = viewState(v);
    const rep3 = v.channels.get(3);
    const ch3 = channelState(rep3);
    assert.throws(() => v.apply([22, 12, 11, null, moves(3, 1, 7), bad]), DeltaError);
    assert.deepEqual(channelState(rep3), ch3, "the 1st piece's channel replica is untouched");
    assert.strictEqual(v.channels.get(3), rep3);
    assert.deepEqual(viewState(v), before);
    // the view is still at tick 11: the same good piece now applies
    v.apply([22, 12, 11, null, moves(3, 1, 7)]);
    assert.deepEqual(Array.from(v.column("x")), [100, 207, 5]);
  });
}

test("a bad piece after a 'left' list does not drop the left channel", () => {
  const v = held();
  const before = viewState(v);
  assert.throws(() => v.apply([22, 12, 11, [9, "u8", new Uint8Array(0)], moves(3, 9, 1)]), DeltaError);
  assert.deepEqual(viewState(v), before);
  assert.ok(v.channels.has(9));
});
