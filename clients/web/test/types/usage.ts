// Compile-time check of index.d.ts (tests/clients/test_web_bundle.py runs tsc on it).
import { GameClient, Replica, WireSchema, InterpolationBuffer, Predictor, decodeMessage, type Frame } from "../../index";

const client = new GameClient("wss://example.test/ws", {
  name: "ann",
  step: (s: { x: number }, inp) => ({ x: s.x + Number(inp.dx) }),
  stateOf: (w: Replica, row: number) => ({ x: w.values("x")[row] }),
});
client.on("status", (e) => console.log(e.status, e.detail));
client.on("event", (e) => console.log(e.kind, e.data));
client.on("welcome", ({ welcome, resumed }) => console.log(welcome.player, welcome.schema.names, resumed));
const seq: number = client.sendInput({ dx: 1, dy: 0, boost: false });
const f: Frame | null = client.frame();
if (f) { const x = f.columns["x"]; console.log(x[0], f.ids.length); }
const rtt: number | null = client.stats.rttMedian;
const p = new Predictor((s: number, i) => s + Number(i.dx), 0);
p.record(1, { dx: 1 });
const buf = new InterpolationBuffer({ delay: 0.1 });
buf.push(1, new Uint32Array([1]), { x: new Float64Array([1]) });
const m = decodeMessage(new Uint8Array([0x92, 0x12, 0x80]), "server");
if (m.type === 18) console.log(m.s, m.t);
const schema: WireSchema = WireSchema.fromWire({ fields: [] });
new Replica(schema).apply({ type: 17, tick: 1, baseTick: null, count: 0, despawned: null, spawned: null, groups: [] });
console.log(seq, rtt);
