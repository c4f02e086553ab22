// The shared test vectors (protocol/vectors/*.json): Node must give exactly what Python gives.
import { test } from "node:test";
import assert from "node:assert/strict";
import { decodeMessage, unpack, DeltaError, ProtocolError, Replica, WireSchema } from "../src/index.js";
import { hexToBytes, stateOf, vectorFiles } from "./helpers.mjs";

const files = Object.fromEntries(vectorFiles().map((f) => [f.name, f.data]));
const missing = (name) => !(name in files) && `protocol/vectors/${name} not present`;

/** JSON-comparable form of a decoded msgpack value (bins as byte arrays). */
function plain(v) {
  if (v instanceof Uint8Array) return Array.from(v);
  if (Array.isArray(v)) return v.map(plain);
  if (v !== null && typeof v === "object") return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, plain(x)]));
  return v;
}

/** Load a replica with a base state {tick, ids, columns} (wire values). */
function replicaAt(schema, base) {
  const r = new Replica(schema);
  if (base) r.load(base.tick, base.ids, base.columns);
  return r;
}

function colValues(col) {
  return col === null ? [] : Array.from(col.values);
}

test("vectors: messages.json decode to the same values and typed messages", { skip: missing("messages.json") }, () => {
  const vs = files["messages.json"].vectors;
  assert.ok(vs.length >= 10);
  for (const v of vs) {
    const bytes = hexToBytes(v.hex);
    assert.deepEqual(plain(unpack(bytes)), v.value, v.name);
    const m = decodeMessage(bytes);
    const [type, body] = v.value;
    assert.equal(m.type, type, v.name);
    // every key of the body that the typed message exposes carries the same value
    for (const [k, val] of Object.entries(body)) {
      if (k === "schema") {
        assert.deepEqual(m.schema.fields.map((f) => f.name), val.fields.map((f) => f.n), v.name);
        continue;
      }
      if (k in m) assert.deepEqual(plain(m[k]), val, `${v.name}.${k}`);
    }
  }
});

test("vectors: messages_lenient.json (bytes an encoder would not write) are accepted", { skip: missing("messages_lenient.json") }, () => {
  const vs = files["messages_lenient.json"].vectors;
  assert.ok(vs.length >= 5);
  for (const v of vs) {
    const bytes = hexToBytes(v.hex);
    assert.deepEqual(plain(unpack(bytes)), v.value, v.name);
    const m = decodeMessage(bytes);
    const [type, body] = v.value;
    assert.equal(m.type, type, v.name);
    for (const [k, val] of Object.entries(body)) {
      if (k in m && val !== null) assert.deepEqual(plain(m[k]), val, `${v.name}.${k}`);
    }
  }
});

test("vectors: messages_invalid.json are refused with the same ERROR code", { skip: missing("messages_invalid.json") }, () => {
  const vs = files["messages_invalid.json"].vectors;
  assert.ok(vs.length >= 5);
  for (const v of vs) {
    assert.throws(() => decodeMessage(hexToBytes(v.hex)), (e) => {
      assert.ok(e instanceof ProtocolError, `${v.name}: ${e}`);
      assert.equal(e.code, v.error_code, `${v.name}: ${e.message}`);
      return true;
    }, v.name);
  }
});

test("vectors: deltas.json decode and apply to the expected state", { skip: missing("deltas.json") }, () => {
  const vs = files["deltas.json"].vectors;
  assert.ok(vs.length >= 5);
  for (const v of vs) {
    const schema = WireSchema.fromWire(v.schema);
    const d = decodeMessage(hexToBytes(v.hex));
    const dec = v.decoded;
    assert.equal(d.tick, dec.tick, v.name);
    assert.equal(d.baseTick, dec.base_tick, v.name);
    assert.equal(d.count, dec.count, v.name);
    assert.deepEqual(d.despawned ? Array.from(d.despawned) : [], dec.despawned, v.name);
    assert.deepEqual(d.spawned ? Array.from(d.spawned.ids) : [], dec.spawned_ids, v.name);
    assert.deepEqual((d.spawned ? d.spawned.cols : []).map((c) => ({ code: c.code, values: colValues(c) })), dec.spawned, v.name);
    assert.deepEqual(d.groups.map((g) => ({
      mask: g.mask, rows: Array.from(g.rows), columns: g.cols.map((c) => ({ code: c.code, values: colValues(c) })),
    })), dec.groups.map((g) => ({ mask: g.mask, rows: g.rows, columns: g.columns })), v.name);

    const r = replicaAt(schema, v.base);
    r.apply(d);
    const e = v.expected;
    assert.equal(r.tick, e.tick, v.name);
    assert.deepEqual(Array.from(r.ids), e.ids, v.name);
    for (const f of schema.fields) {
      assert.deepEqual(Array.from(r.column(f.name)), e.columns[f.name], `${v.name}.${f.name}`);
      assert.deepEqual(Array.from(r.values(f.name)), e.values[f.name], `${v.name}.${f.name} values`);
    }
  }
});

test("vectors: deltas_invalid.json do not apply and leave the replica unchanged", { skip: missing("deltas_invalid.json") }, () => {
  const vs = files["deltas_invalid.json"].vectors;
  assert.ok(vs.length >= 5);
  for (const v of vs) {
    const schema = WireSchema.fromWire(v.schema);
    const r = replicaAt(schema, v.base);
    const before = stateOf(r);
    assert.throws(() => r.apply(decodeMessage(hexToBytes(v.hex))), (e) => e instanceof ProtocolError, v.name);
    assert.deepEqual(stateOf(r), before, `${v.name}: replica changed`);
  }
});

test("vectors are present (protocol/vectors/*.json)", () => {
  for (const name of ["messages.json", "messages_invalid.json", "deltas.json", "deltas_invalid.json"]) {
    assert.ok(name in files, `${name} missing`);
  }
  assert.ok(DeltaError.prototype instanceof ProtocolError);
});

test("vectors: views.json VIEW sequences (interest management)", { skip: missing("views.json") }, async () => {
  const { ViewReplica } = await import("../src/index.js");
  const [seq, bad] = files["views.json"].vectors;
  const view = new ViewReplica(WireSchema.fromWire(seq.schema));
  const state = () => ({
    tick: view.tick,
    ids: Array.from(view.ids),
    columns: Object.fromEntries(Object.entries(view.columns).map(([k, c]) => [k, Array.from(c)])),
    channels: [...view.channels.keys()].sort((a, b) => a - b),
    entered: Array.from(view.entered),
    left_view: Array.from(view.leftView),
    despawned: Array.from(view.despawned),
  });
  for (const step of seq.steps) {
    const m = decodeMessage(hexToBytes(step.hex), "server");
    assert.equal(m.type, 22, step.description);
    view.apply(m.raw);
    assert.deepEqual(state(), step.expected, step.description);
  }
  const after = state();
  for (const step of bad.steps) {
    assert.throws(() => {
      const m = decodeMessage(hexToBytes(step.hex), "server");
      if (m.type !== 22) throw new DeltaError("not a VIEW");
      view.apply(m.raw);
    }, (e) => e instanceof ProtocolError, step.description);
    assert.deepEqual(state(), after, step.description);
  }
});
