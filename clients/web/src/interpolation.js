// Snapshot interpolation: render remote entities slightly in the past, smoothly.
//
// Same semantics as the Python client (clients/interpolation.py):
// - interpolate(): given two snapshots as (sorted uint32 ids, columns) it matches entities by
//   id with one linear merge and returns the union of both id sets. Entities present in both
//   have their floating-point fields interpolated linearly (a + alpha * (b - a); fields named
//   in `angles` take the shortest way around the circle); integer fields take the OLDER value.
//   Entities present in only one of the two snapshots keep that snapshot's values.
// - InterpolationBuffer keeps a bounded ring of snapshots stamped with their server time
//   (seconds, tick / tick_rate), estimates the clock offset as the minimum of
//   (arrival - server_time) over the buffered snapshots (jitter only ever adds delay), and
//   sample() returns the Frame for server_now - delay. The render time never moves backwards.

const TWO_PI = 2 * Math.PI;

/** @param {ArrayLike<number>} a */
function isFloatArray(a) {
  return a instanceof Float32Array || a instanceof Float64Array;
}

/** Sorted union of two sorted unique uint32 id arrays, with each side's positions in it. */
export function mergeIds(idsA, idsB) {
  const na = idsA.length;
  const nb = idsB.length;
  const ids = new Uint32Array(na + nb);
  const posA = new Int32Array(na);
  const posB = new Int32Array(nb);
  const commonA = new Int32Array(Math.min(na, nb));
  const commonB = new Int32Array(Math.min(na, nb));
  let i = 0;
  let j = 0;
  let n = 0;
  let c = 0;
  while (i < na && j < nb) {
    const x = idsA[i];
    const y = idsB[j];
    if (x === y) {
      commonA[c] = i;
      commonB[c] = j;
      c++;
      posA[i++] = n;
      posB[j++] = n;
      ids[n++] = x;
    } else if (x < y) {
      posA[i++] = n;
      ids[n++] = x;
    } else {
      posB[j++] = n;
      ids[n++] = y;
    }
  }
  while (i < na) {
    posA[i++] = n;
    ids[n++] = idsA[i - 1];
  }
  while (j < nb) {
    posB[j++] = n;
    ids[n++] = idsB[j - 1];
  }
  return {
    ids: ids.subarray(0, n),
    posA,
    posB,
    commonA: commonA.subarray(0, c),
    commonB: commonB.subarray(0, c),
  };
}

function sameCtor(a, b) {
  if (a.constructor === b.constructor) return a.constructor;
  if (isFloatArray(a) || isFloatArray(b)) return Float64Array;
  return Float64Array; // mixed integer kinds: float64 holds every uint32/int32 exactly
}

/**
 * Blend snapshot a (older) towards b (newer) by alpha in [0, 1].
 * @param {Uint32Array} idsA sorted unique ids of a
 * @param {Record<string, import("../index").Column>} colsA columns aligned with idsA
 * @param {Uint32Array} idsB
 * @param {Record<string, import("../index").Column>} colsB
 * @param {number} alpha
 * @param {{fields?: Iterable<string> | null, angles?: Iterable<string>}} [opts]
 * @returns {{ids: Uint32Array, columns: Record<string, import("../index").Column>}} new arrays
 */
export function interpolate(idsA, colsA, idsB, colsB, alpha, opts = {}) {
  alpha = Math.min(Math.max(Number(alpha), 0), 1);
  const fields = opts.fields ? new Set(opts.fields) : null;
  const angles = new Set(opts.angles ?? []);
  if (sameIds(idsA, idsB)) return interpolateAligned(idsA, colsA, colsB, alpha, fields, angles);
  const m = mergeIds(idsA, idsB);
  const n = m.ids.length;
  const { posA, posB, commonA, commonB } = m;
  /** @type {Record<string, any>} */
  const out = {};
  const names = Object.keys(colsA).concat(Object.keys(colsB).filter((k) => !(k in colsA)));
  for (const name of names) {
    const a = colsA[name];
    const b = colsB[name];
    if (a === undefined || b === undefined) {
      // a field missing from one side (schema change across a reconnect): newest wins
      const src = b !== undefined ? b : a;
      const pos = b !== undefined ? posB : posA;
      const col = new src.constructor(n);
      for (let k = 0; k < pos.length; k++) col[pos[k]] = src[k];
      out[name] = col;
      continue;
    }
    const Ctor = sameCtor(a, b);
    const col = new Ctor(n);
    for (let k = 0; k < posB.length; k++) col[posB[k]] = b[k];
    for (let k = 0; k < posA.length; k++) col[posA[k]] = a[k]; // older wins (int-field rule)
    const lerp = fields ? fields.has(name) : isFloatArray(col);
    if (lerp && isFloatArray(col) && commonA.length) {
      const isAngle = angles.has(name);
      for (let k = 0; k < commonA.length; k++) {
        const va = a[commonA[k]];
        let diff = b[commonB[k]] - va;
        if (isAngle) {
          // shortest signed arc in [-pi, pi) (numpy remainder semantics: sign of divisor)
          const r = (diff + Math.PI) % TWO_PI;
          diff = (r < 0 ? r + TWO_PI : r) - Math.PI;
        }
        col[posA[commonA[k]]] = va + diff * alpha;
      }
    }
    out[name] = col;
  }
  return { ids: m.ids, columns: out };
}

function sameIds(a, b) {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Lerp `diff = b - a` into `out` (`out` starts as a copy of a). Monomorphic per array type. */
function lerpInto(out, a, b, alpha, isAngle) {
  const n = out.length;
  if (!isAngle) {
    for (let i = 0; i < n; i++) out[i] = a[i] + (b[i] - a[i]) * alpha;
    return;
  }
  for (let i = 0; i < n; i++) {
    const r = (b[i] - a[i] + Math.PI) % TWO_PI;
    out[i] = a[i] + ((r < 0 ? r + TWO_PI : r) - Math.PI) * alpha;
  }
}

/**
 * The common case: the same entities in both snapshots (no spawn/despawn between them):
 * integer columns are one copy of the older values, float columns one lerp loop each.
 */
function interpolateAligned(ids, colsA, colsB, alpha, fields, angles) {
  /** @type {Record<string, any>} */
  const out = {};
  const names = Object.keys(colsA).concat(Object.keys(colsB).filter((k) => !(k in colsA)));
  for (const name of names) {
    const a = colsA[name];
    const b = colsB[name];
    if (a === undefined || b === undefined) {
      out[name] = (b ?? a).slice(); // missing on one side: newest wins
      continue;
    }
    const Ctor = sameCtor(a, b);
    const col = a.constructor === Ctor ? a.slice() : Ctor.from(a);
    const lerp = fields ? fields.has(name) : isFloatArray(col);
    if (lerp && isFloatArray(col) && col.length) lerpInto(col, a, b, alpha, angles.has(name));
    out[name] = col;
  }
  return { ids: ids.slice(), columns: out };
}

function copyColumn(c) {
  return c.slice();
}

/**
 * A bounded buffer of snapshots sampled at server time - delay (seconds).
 */
export class InterpolationBuffer {
  /**
   * @param {{delay?: number, clock?: () => number, capacity?: number, tickRate?: number | null,
   *   fields?: Iterable<string> | null, angles?: Iterable<string>}} [opts]
   *   delay in seconds (default 0.1); clock in seconds (default performance.now() / 1000).
   */
  constructor(opts = {}) {
    const delay = opts.delay ?? 0.1;
    const capacity = opts.capacity ?? 32;
    if (delay < 0) throw new RangeError("delay must be >= 0 seconds");
    if (capacity < 2) throw new RangeError("capacity must be >= 2 snapshots");
    this.delay = delay;
    this.clock = opts.clock ?? (() => performance.now() / 1000);
    this.capacity = capacity;
    this.tickRate = opts.tickRate ?? null;
    this.fields = opts.fields ? [...opts.fields] : null;
    this.angles = [...(opts.angles ?? [])];
    /** @type {{serverTime: number, offset: number, ids: Uint32Array, columns: Record<string, any>}[]} */
    this._entries = [];
    /** @type {number | null} */
    this._lastRender = null;
    /** How many sample() calls ran past the newest snapshot (delay too small). */
    this.starvedFrames = 0;
  }

  get length() {
    return this._entries.length;
  }

  /** Forget every snapshot (after a reconnect to another room, say). */
  clear() {
    this._entries.length = 0;
    this._lastRender = null;
  }

  /**
   * Store a snapshot taken at serverTime (seconds). The arrays are copied. An older or equal
   * one is ignored (a duplicate after a resume); a jump back by more than 1 s means the server
   * restarted its clock: the buffer is reset.
   */
  push(serverTime, ids, columns, now) {
    const arrival = now === undefined ? this.clock() : now;
    const entries = this._entries;
    if (entries.length) {
      const last = entries[entries.length - 1].serverTime;
      if (serverTime <= last) {
        if (last - serverTime <= 1.0) return;
        this.clear();
      }
    }
    /** @type {Record<string, any>} */
    const cols = {};
    for (const k of Object.keys(columns)) cols[k] = copyColumn(columns[k]);
    entries.push({
      serverTime: Number(serverTime),
      offset: arrival - Number(serverTime),
      ids: ids instanceof Uint32Array ? ids.slice() : Uint32Array.from(ids),
      columns: cols,
    });
    if (entries.length > this.capacity) entries.shift();
  }

  /** push() with serverTime = tick / tickRate (tickRate must be set). */
  pushTick(tick, ids, columns, now) {
    if (!this.tickRate) throw new Error("InterpolationBuffer.pushTick needs tickRate");
    this.push(tick / this.tickRate, ids, columns, now);
  }

  /** Estimated local clock - server clock (seconds), null while empty. */
  get clockOffset() {
    if (!this._entries.length) return null;
    let m = Infinity;
    for (const e of this._entries) if (e.offset < m) m = e.offset;
    return m;
  }

  /** Estimated current server time (seconds), null while empty. */
  serverTime(now) {
    const off = this.clockOffset;
    if (off === null) return null;
    return (now === undefined ? this.clock() : now) - off;
  }

  /** The render time (server seconds) of the last sample(): what is on screen; null before. */
  get lastRenderTime() {
    return this._lastRender;
  }

  /** serverTime(now) - delay, never decreasing between sample() calls; null while empty. */
  renderTime(now) {
    const st = this.serverTime(now);
    if (st === null) return null;
    let rt = st - this.delay;
    if (this._lastRender !== null && rt < this._lastRender) rt = this._lastRender;
    return rt;
  }

  /**
   * The frame to draw at local time `now` (default: the clock); null if empty.
   * @returns {import("../index").Frame | null}
   */
  sample(now) {
    const rt = this.renderTime(now);
    if (rt === null) return null;
    this._lastRender = rt;
    const entries = this._entries;
    const first = entries[0];
    if (rt <= first.serverTime) {
      return frame(rt, first.ids, first.columns, 0, first.serverTime, null, false);
    }
    const last = entries[entries.length - 1];
    if (rt >= last.serverTime) {
      const starved = rt > last.serverTime;
      if (starved) this.starvedFrames += 1;
      return frame(rt, last.ids, last.columns, 1, last.serverTime, null, starved);
    }
    let i = entries.length - 2;
    while (entries[i].serverTime > rt) i--;
    const a = entries[i];
    const b = entries[i + 1];
    const alpha = (rt - a.serverTime) / (b.serverTime - a.serverTime);
    const r = interpolate(a.ids, a.columns, b.ids, b.columns, alpha, {
      fields: this.fields,
      angles: this.angles,
    });
    return frame(rt, r.ids, r.columns, alpha, a.serverTime, b.serverTime, false);
  }
}

function frame(renderTime, ids, columns, alpha, olderTime, newerTime, starved) {
  return { renderTime, ids, columns, alpha, olderTime, newerTime, starved };
}
