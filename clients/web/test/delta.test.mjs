// Replica.apply: SPEC.md section 5 steps, strictness and atomicity (validate, then mutate).
import { test } from "node:test";
import assert from "node:assert/strict";
import { encode } from "@msgpack/msgpack";
import { decodeMessage, DeltaError, ProtocolError, Replica, WireSchema, decodeIdList } from "../src/index.js";
import { stateOf } from "./helpers.mjs";

const SCHEMA = WireSchema.fromWire({
  fields: [
    { n: "x", t: "i32", q: 0.01, k: "float" },
    { n: "kind", t: "u8" },
    { n: "hp", t: "i16" },
    { n: "a", t: "f32" },
  ],
});

const le = (Ctor, values) => new Uint8Array(new Ctor(values).buffer);
const col = (code, Ctor, values) => [code, le(Ctor, values)];
/** An IDLIST for ascending values. */
function idlist(values) {
  const gaps = values.slice(1).map((v, i) => v - values[i]);
  const max = Math.max(0, ...gaps);
  const [code, Ctor] = max < 256 ? ["u8", Uint8Array] : max < 65536 ? ["u16", Uint16Array] : ["u32", Uint32Array];
  return [values[0], code, le(Ctor, gaps)];
}
const delta = (tick, base, count, des, sp, groups) => encode([17, tick, base, count, des, sp, groups]);

function full(tick = 10) {
  return delta(tick, null, 3, null, [idlist([5, 9, 300]), [
    col("i32", Int32Array, [100, -200, 300]),
    col("u8", Uint8Array, [1, 2, 3]),
    col("u8", Uint8Array, [50, 60, 70]), // a smaller raw code than the field's i16
    col("f32", Float32Array, [0.5, 1.5, 2.5]),
  ]], []);
}

function fresh() {
  const r = new Replica(SCHEMA);
  r.apply(decodeMessage(full()));
  return r;
}

test("full snapshot then a delta with despawn, spawn, diff and raw groups", () => {
  const r = fresh();
  assert.equal(r.tick, 10);
  assert.deepEqual(Array.from(r.ids), [5, 9, 300]);
  assert.deepEqual(Array.from(r.column("hp")), [50, 60, 70]);
  assert.ok(r.column("hp") instanceof Int16Array);
  assert.deepEqual(Array.from(r.values("x")), [1, -2, 3]);
  // despawn 9, spawn 7 and 1000; then rows are [5, 7, 300, 1000]
  const d = delta(11, 10, 4, idlist([9]), [idlist([7, 1000]), [
    col("i32", Int32Array, [7, 8]),
    col("u8", Uint8Array, [4, 5]),
    col("i16", Int16Array, [-1, -2]),
    col("f32", Float32Array, [9, 10]),
  ]], [
    [0b0101, idlist([0, 2]), [col("d8", Int8Array, [1, -1]), col("i16", Int16Array, [-5, 5])]],
    [0b1000, idlist([3]), [col("f32", Float32Array, [42.25])]],
  ]);
  r.apply(decodeMessage(d));
  assert.equal(r.tick, 11);
  assert.deepEqual(Array.from(r.ids), [5, 7, 300, 1000]);
  assert.deepEqual(Array.from(r.column("x")), [101, 7, 299, 8]);
  assert.deepEqual(Array.from(r.column("kind")), [1, 4, 3, 5]);
  assert.deepEqual(Array.from(r.column("hp")), [-5, -1, 5, -2]);
  assert.deepEqual(Array.from(r.column("a")), [0.5, 9, 2.5, 42.25]);
  assert.equal(r.rowOf(300), 2);
  assert.equal(r.rowOf(9), -1);
});

test("unaligned bins are read correctly (copy) and aligned ones in place", () => {
  // A leading str shifts the bins to odd offsets inside the message.
  const r = fresh();
  const d = delta(11, 10, 3, null, null, [[1, idlist([0, 1, 2]), [col("d32", Int32Array, [1000000, -1, 2])]]]);
  r.apply(decodeMessage(d));
  assert.deepEqual(Array.from(r.column("x")), [1000100, -201, 302]);
});

const BAD = {
  "wrong base tick": () => delta(12, 9, 3, null, null, []),
  "despawn of an unknown id": () => delta(11, 10, 2, idlist([6]), null, []),
  "spawn of a present id": () => delta(11, 10, 4, null, [idlist([9]), [
    col("i32", Int32Array, [0]), col("u8", Uint8Array, [0]), col("i16", Int16Array, [0]), col("f32", Float32Array, [0])]], []),
  "count mismatch": () => delta(11, 10, 4, null, null, []),
  "row out of range": () => delta(11, 10, 3, null, null, [[2, idlist([3]), [col("u8", Uint8Array, [1])]]]),
  "diff overflows the field dtype": () => delta(11, 10, 3, null, null, [[2, idlist([0]), [col("d16", Int16Array, [300])]]]),
  "raw value out of the field dtype": () => delta(11, 10, 3, null, null, [[2, idlist([0]), [col("u16", Uint16Array, [256])]]]),
  "diff on a float field": () => delta(11, 10, 3, null, null, [[8, idlist([0]), [col("d8", Int8Array, [1])]]]),
  "f64 column for an f32 field": () => delta(11, 10, 3, null, null, [[8, idlist([0]), [col("f64", Float64Array, [1])]]]),
  "mask bit beyond the schema": () => delta(11, 10, 3, null, null, [[16, idlist([0]), [col("u8", Uint8Array, [1])]]]),
  // a later group fails: the earlier one must not have been applied either
  "second group fails": () => delta(11, 10, 3, null, null, [
    [2, idlist([0]), [col("u8", Uint8Array, [99])]],
    [4, idlist([9]), [col("i16", Int16Array, [1])]],
  ]),
};

for (const [name, make] of Object.entries(BAD)) {
  test(`atomic: ${name} -> DeltaError, replica unchanged`, () => {
    const r = fresh();
    const before = stateOf(r);
    assert.throws(() => r.apply(decodeMessage(make())), DeltaError);
    assert.deepEqual(stateOf(r), before);
    // and the replica still accepts a good delta afterwards
    r.apply(decodeMessage(delta(11, 10, 3, null, null, [[2, idlist([1]), [col("u8", Uint8Array, [7])]]])));
    assert.deepEqual(Array.from(r.column("kind")), [1, 7, 3]);
  });
}

test("a delta before any full snapshot does not apply", () => {
  const r = new Replica(SCHEMA);
  assert.throws(() => r.apply(decodeMessage(delta(2, 1, 0, null, null, []))), /no full snapshot/);
});

test("malformed layouts are ProtocolErrors", () => {
  const bytes = full();
  for (let cut = 1; cut < bytes.length; cut += 7) {
    assert.throws(() => decodeMessage(bytes.subarray(0, cut)), ProtocolError, `truncated at ${cut}`);
  }
  const withTrailing = new Uint8Array([...bytes, 0xc0]);
  assert.throws(() => decodeMessage(withTrailing), /Extra|trailing/i);
  assert.throws(() => decodeMessage(encode([17, 1, null, 0, null, null])), DeltaError); // too short
  assert.throws(() => decodeMessage(encode([17, -1, null, 0, null, null, []])), DeltaError);
  assert.throws(() => decodeMessage(encode([17, 1, null, 0, null, null, [[0, idlist([0]), []]]])), /mask/);
  assert.throws(() => decodeIdList([1, "u8", new Uint8Array([1, 0])]), /gap/);
  assert.throws(() => decodeIdList([1, "u16", new Uint8Array([1])]), /multiple/);
  assert.throws(() => decodeIdList([1, "u64", new Uint8Array([])]), /code/);
  assert.throws(() => decodeIdList([0xffffffff, "u8", new Uint8Array([1])]), /uint32/);
  // extra trailing elements are ignored (growth rule 3)
  const grown = encode([17, 10, null, 1, null, [[...idlist([4]), "x"], [
    ["i32", le(Int32Array, [1]), 9], ["u8", le(Uint8Array, [1])], ["u8", le(Uint8Array, [1])], ["f32", le(Float32Array, [1])]]], [], "future"]);
  const r = new Replica(SCHEMA);
  r.apply(decodeMessage(grown));
  assert.deepEqual(Array.from(r.ids), [4]);
});

test("big state: 5000 entities, 2000 moving, applies fast", () => {
  const n = 5000;
  const ids = Array.from({ length: n }, (_, i) => 1 + i * 3);
  const r = new Replica(SCHEMA);
  r.apply(decodeMessage(delta(1, null, n, null, [idlist(ids), [
    col("i32", Int32Array, ids), col("u8", Uint8Array, ids.map((v) => v & 255)),
    col("i16", Int16Array, ids.map(() => 5)), col("f32", Float32Array, ids)]], [])));
  const rows = Array.from({ length: 2000 }, (_, i) => i * 2);
  const move = encode([17, 2, 1, n, null, null, [[1, idlist(rows), [col("d8", Int8Array, rows.map(() => 3))]]]]);
  const t0 = performance.now();
  for (let k = 0; k < 50; k++) {
    const m = decodeMessage(move);
    m.baseTick = r.tick;
    m.tick = r.tick + 1;
    r.apply(m);
  }
  const ms = (performance.now() - t0) / 50;
  assert.equal(r.column("x")[0], 1 + 150);
  assert.equal(r.column("x")[1], 4);
  assert.ok(ms < 20, `${ms.toFixed(2)} ms per delta`);
});
