// Cross-check with the Python piece encoder and ViewReplica: random VIEW streams (written by
// the pytest wrapper tests/clients/test_web_node.py) with MOVES, SAME (both forms), DELTA and
// full pieces, cells entered and left, and resets must give the same union state, bit for bit.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { decodeMessage, ViewReplica, WireSchema } from "../src/index.js";
import { elemHex, hexToBytes } from "./helpers.mjs";

const fixture = process.env.GAMESERVER_VIEW_FIXTURE;

test("fixture: python VIEW sequences give the same view state", { skip: !fixture && "GAMESERVER_VIEW_FIXTURE not set (run via pytest)" }, () => {
  const sequences = JSON.parse(readFileSync(fixture, "utf8"));
  assert.ok(sequences.length > 0);
  let applied = 0;
  for (const seq of sequences) {
    const schema = WireSchema.fromWire(seq.schema);
    const view = new ViewReplica(schema);
    for (const [i, step] of seq.steps.entries()) {
      const msg = decodeMessage(hexToBytes(step.hex), "server");
      assert.equal(msg.type, 22, `step ${i}: a VIEW`);
      view.apply(msg.raw);
      applied++;
      assert.equal(view.tick, step.tick, `step ${i}: tick`);
      assert.deepEqual(Array.from(view.ids), step.ids, `step ${i}: ids`);
      for (const f of schema.fields) {
        const col = view.column(f.name);
        const want = step.columns[f.name];
        assert.equal(col.length, want.length, `step ${i} ${f.name}: length`);
        for (let r = 0; r < want.length; r++) {
          const w = want[r];
          if (typeof w === "object") assert.equal(elemHex(col, r), w.hex, `step ${i} ${f.name}[${r}]`);
          else assert.equal(col[r], w, `step ${i} ${f.name}[${r}]`);
        }
      }
    }
  }
  assert.ok(applied >= 150, `only ${applied} VIEWs applied`);
});
