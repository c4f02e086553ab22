// Cross-check with the Python delta encoder: random sequences (written by the pytest wrapper
// tests/clients/test_web_node.py) must give the same replica state, bit for bit.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { decodeMessage, Replica, WireSchema } from "../src/index.js";
import { elemHex, hexToBytes } from "./helpers.mjs";

const fixture = process.env.GAMESERVER_DELTA_FIXTURE;

test("fixture: python delta sequences give the same replica state", { skip: !fixture && "GAMESERVER_DELTA_FIXTURE not set (run via pytest)" }, () => {
  const sequences = JSON.parse(readFileSync(fixture, "utf8"));
  assert.ok(sequences.length > 0);
  let applied = 0;
  for (const seq of sequences) {
    const schema = WireSchema.fromWire(seq.schema);
    const replica = new Replica(schema);
    for (const [i, step] of seq.steps.entries()) {
      const msg = decodeMessage(hexToBytes(step.hex));
      replica.apply(msg);
      applied++;
      assert.equal(replica.tick, step.tick, `step ${i}: tick`);
      assert.deepEqual(Array.from(replica.ids), step.ids, `step ${i}: ids`);
      for (const f of schema.fields) {
        const col = replica.column(f.name);
        const want = step.columns[f.name];
        assert.equal(col.length, want.length, `step ${i} ${f.name}: length`);
        for (let r = 0; r < want.length; r++) {
          const w = want[r];
          if (typeof w === "object") assert.equal(elemHex(col, r), w.hex, `step ${i} ${f.name}[${r}]`);
          else assert.equal(col[r], w, `step ${i} ${f.name}[${r}]`);
        }
        if (f.quant !== null) {
          const vals = replica.values(f.name);
          for (let r = 0; r < want.length; r++) assert.equal(vals[r], want[r] * f.quant);
        }
      }
    }
  }
  assert.ok(applied >= 100, `only ${applied} deltas applied`);
});
