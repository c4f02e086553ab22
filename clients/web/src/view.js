// ViewReplica: the browser's side of interest management (protocol/SPEC.md section 11).
//
// A VIEW message [22, tick, base_tick | nil, left | nil, PIECE...], PIECE = [channel, DELTA,
// gone | nil] (or its compact MOVES / SAME forms), carries the pieces of the channels (grid cells, teams, global entities) this
// client sees. One Replica per channel (each PIECE's DELTA applies to its channel as SPEC
// section 5 says); the view is their union: sorted, deduplicated ids (an entity may be in its
// cell and in its team channel) and one column per field, with the same read API as Replica
// (ids, columns, column, values, allValues, rowOf, tick, count, schema), so the client, the
// interpolation buffer and a renderer use it unchanged. After each message `entered`,
// `leftView` and `despawned` say which ids came into view, left it (still in the world) and
// were destroyed.
//
// A VIEW that does not apply throws DeltaError and changes nothing (SPEC section 11: every
// piece is checked against its channel before any state changes), so the view stays at its
// last good tick; the caller still resynchronizes (drop + RESUME: the next VIEW is a reset).

import { DeltaError, Replica, decodeDelta, decodeIdList } from "./delta.js";

const EMPTY = new Uint32Array(0);

export class ViewReplica {
  /** @param {import("./delta.js").WireSchema} schema */
  constructor(schema) {
    this.schema = schema;
    /** @type {number | null} */
    this.tick = null;
    /** @type {Map<number, Replica>} channel -> its replica */
    this.channels = new Map();
    /** @type {Map<number, [number, number, Uint8Array, number]>} channel -> [tick, first
     * row, u8 gaps, mask] of the last MOVES / SAME piece applied to it (SPEC section 11) */
    this._rows = new Map();
    this._union = new Replica(schema);
    this.entered = EMPTY;
    this.leftView = EMPTY;
    this.despawned = EMPTY;
  }

  get count() {
    return this._union.count;
  }

  get ids() {
    return this._union.ids;
  }

  get columns() {
    return this._union.columns;
  }

  column(name) {
    return this._union.column(name);
  }

  values(name) {
    return this._union.values(name);
  }

  allValues() {
    return this._union.allValues();
  }

  rowOf(id) {
    return this._union.rowOf(id);
  }

  reset() {
    this.tick = null;
    this.channels = new Map();
    this._rows = new Map();
    this._union.reset();
  }

  /**
   * Apply one VIEW (the msgpack array, already decoded); returns true for a reset.
   * @param {any[]} raw
   */
  apply(raw) {
    if (!Array.isArray(raw) || raw.length < 4 || raw[0] !== 22) {
      throw new DeltaError("VIEW must be [22, tick, base_tick, left, PIECE...]");
    }
    const [, tick, base, left] = raw;
    if (!Number.isInteger(tick) || tick < 0) throw new DeltaError("VIEW tick must be a uint");
    const reset = base === null;
    if (!reset && (this.tick === null || base !== this.tick)) {
      throw new DeltaError(`VIEW base_tick ${base} does not match the view's tick ${this.tick}`);
    }
    // SPEC section 11: validate everything before changing anything. Every piece is decoded
    // and applied to a scratch copy of its channel (a clone of the held Replica, made once per
    // channel per message); `this` changes only after the last piece succeeded, so a VIEW that
    // throws leaves channels, tick and the union exactly as they were.
    const leftChannels = left === null ? EMPTY : decodeIdList(left, "VIEW left");
    const chans = reset ? new Map() : new Map(this.channels);
    const rows = reset ? new Map() : new Map(this._rows);
    for (const c of leftChannels) {
      chans.delete(c);
      rows.delete(c);
    }
    const scratch = new Set(); // channels whose replica in `chans` is already a private copy
    const gone = new Set();
    for (let i = 4; i < raw.length; i++) {
      const p = raw[i];
      if (!Array.isArray(p) || p.length < 2) throw new DeltaError(`VIEW piece ${i - 4}: must be [channel, DELTA, gone] or MOVES`);
      const c = p[0];
      if (!Number.isInteger(c) || c < 0 || c > 0xffffffff) throw new DeltaError(`VIEW piece ${i - 4}: channel must be a uint32`);
      let delta;
      let g = null;
      const second = p[1];
      if (Number.isInteger(second) || second instanceof Uint8Array) {
        const held = reset ? undefined : chans.get(c);
        if (held === undefined) throw new DeltaError(`VIEW piece ${i - 4}: MOVES for channel ${c}, which the view does not hold`);
        if (Number.isInteger(second) && p.length !== 3) {
          // MOVES: [channel, mask, first row, u8 gaps, values]
          delta = movesDelta(p, tick, base, held.count, i - 4);
          rows.set(c, [tick, p[2], p[3], second]);
        } else {
          // SAME ("interest/2"): [channel, values] | [channel, mask, values], on the rows of
          // the MOVES / SAME piece this view applied to the channel at exactly base_tick
          const rec = rows.get(c);
          if (rec === undefined || rec[0] !== base) {
            throw new DeltaError(`VIEW piece ${i - 4}: SAME for channel ${c}, whose last MOVES rows are not those of tick ${base}`);
          }
          const mask = Number.isInteger(second) ? second : rec[3];
          const vals = Number.isInteger(second) ? p[2] : second;
          delta = movesDelta([c, mask, rec[1], rec[2], vals], tick, base, held.count, i - 4);
          rows.set(c, [tick, rec[1], rec[2], mask]);
        }
      } else {
        if (p.length < 3) throw new DeltaError(`VIEW piece ${i - 4}: must be [channel, DELTA, gone]`);
        delta = second;
        g = p[2] === null ? null : decodeIdList(p[2], `VIEW piece ${i - 4} gone`);
        rows.delete(c);
      }
      const d = decodeDelta(delta);
      if (d.tick !== tick) throw new DeltaError(`VIEW piece ${i - 4}: DELTA tick is not the VIEW's tick`);
      let rep = chans.get(c);
      if (d.baseTick === null || rep === undefined) {
        rep = new Replica(this.schema);
        if (d.baseTick !== null) rep.load(d.baseTick, [], emptyColumns(this.schema)); // empty at the base
        scratch.add(c);
      } else if (!scratch.has(c)) {
        rep = cloneReplica(rep);
        scratch.add(c);
      }
      rep.apply(d); // checks counts, rows, base tick against the channel (SPEC section 5)
      chans.set(c, rep);
      if (g !== null) for (const id of g) gone.add(id);
    }
    const before = this._union.ids.slice();
    for (const rep of chans.values()) rep.tick = tick;
    this.channels = chans;
    this._rows = rows;
    this.tick = tick;
    this._rebuild(before, gone);
    return reset;
  }

  _rebuild(before, gone) {
    const reps = [...this.channels.values()].filter((r) => r.count > 0);
    const fields = this.schema.fields;
    let total = 0;
    for (const r of reps) total += r.count;
    // (id, replica, row) of every membership, sorted by id; duplicates keep the first
    const order = new Array(total);
    let k = 0;
    reps.forEach((r, ri) => {
      const ids = r.ids;
      for (let row = 0; row < ids.length; row++) order[k++] = [ids[row], ri, row];
    });
    order.sort((a, b) => a[0] - b[0]);
    const ids = [];
    const cols = fields.map(() => []);
    const rcols = reps.map((r) => fields.map((f) => r.column(f.name)));
    let last = -1;
    for (const [id, ri, row] of order) {
      if (id === last) continue;
      last = id;
      ids.push(id);
      for (let f = 0; f < fields.length; f++) cols[f].push(rcols[ri][f][row]);
    }
    /** @type {Record<string, number[]>} */
    const byName = {};
    fields.forEach((f, i) => (byName[f.name] = cols[i]));
    this._union.load(this.tick, ids, byName);
    const now = this._union.ids;
    this.entered = difference(now, before);
    const out = difference(before, now);
    const dead = [];
    const away = [];
    for (const id of out) (gone.has(id) ? dead : away).push(id);
    this.despawned = Uint32Array.from(dead);
    this.leftView = Uint32Array.from(away);
  }
}

/** Column codes of a MOVES piece's COLBs, by their first byte (SPEC section 11). */
export const CODE_IDS = Object.freeze(["u8", "i8", "u16", "i16", "u32", "i32", "f32", "f64", "d8", "d16", "d32"]);

const CODE_WIDTH = Object.freeze({ u8: 1, i8: 1, u16: 2, i16: 2, u32: 4, i32: 4, f32: 4, f64: 8, d8: 1, d16: 2, d32: 4 });

/**
 * The section 5 DELTA a MOVES piece [channel, mask, first row, u8 gaps, values] stands for:
 * one GROUP on the channel's state. `values` = the columns' code ids, two 4-bit nibbles per
 * byte (first column in the low nibble), then each column's values in mask-bit order.
 */
function movesDelta(p, tick, base, count, i) {
  const [, mask, first, gaps, values] = p;
  if (p.length < 5 || !Number.isInteger(mask) || mask <= 0 || mask > 0xffffffff || !Number.isInteger(first) ||
      !(gaps instanceof Uint8Array) || !(values instanceof Uint8Array)) {
    throw new DeltaError(`VIEW piece ${i}: MOVES must be [channel, mask, first, gaps, values]`);
  }
  let k = 0;
  for (let m = mask; m; m = Math.floor(m / 2)) k += m & 1;
  const n = gaps.length + 1;
  let pos = (k + 1) >> 1;
  const cols = [];
  for (let j = 0; j < k; j++) {
    const byte = (j >> 1) < values.length ? values[j >> 1] : 0xff;
    const id = (byte >> (4 * (j & 1))) & 0xf;
    if (id >= CODE_IDS.length) throw new DeltaError(`VIEW piece ${i}: MOVES column ${j} has no valid code id`);
    const code = CODE_IDS[id];
    const w = CODE_WIDTH[code] * n;
    if (pos + w > values.length) throw new DeltaError(`VIEW piece ${i}: MOVES values too short for ${n} rows`);
    cols.push([code, values.subarray(pos, pos + w)]);
    pos += w;
  }
  if (pos !== values.length) throw new DeltaError(`VIEW piece ${i}: MOVES values have ${values.length - pos} extra bytes`);
  return [17, tick, base, count, null, null, [[mask, [first, "u8", gaps], cols]]];
}

/** A private copy of `rep` (same tick, ids and wire values) that a piece can be tried on. */
function cloneReplica(rep) {
  const out = new Replica(rep.schema);
  if (rep.tick !== null) out.load(rep.tick, rep.ids, rep.columns);
  return out;
}

function emptyColumns(schema) {
  /** @type {Record<string, number[]>} */
  const out = {};
  for (const f of schema.fields) out[f.name] = [];
  return out;
}

/** Ids of sorted `a` not in sorted `b`. */
function difference(a, b) {
  const out = [];
  let j = 0;
  for (let i = 0; i < a.length; i++) {
    const v = a[i];
    while (j < b.length && b[j] < v) j++;
    if (j >= b.length || b[j] !== v) out.push(v);
  }
  return Uint32Array.from(out);
}
