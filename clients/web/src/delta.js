// Columnar delta codec (protocol/SPEC.md sections 3-5): the wire schema, DELTA decoding and
// the client replica kept in TypedArrays.
//
// Bins are little-endian and unaligned: a bin whose byte offset is a multiple of its width is
// viewed in place with a TypedArray (little-endian hosts), otherwise it is copied once into an
// aligned buffer (one memcpy) and viewed; a big-endian host falls back to a DataView.
//
// Replica.apply is atomic: the new state is built in back buffers (double buffering, so no
// allocation per tick once capacity is reached) and swapped in only when every check passed.

import { DeltaError } from "./errors.js";

export { DeltaError };

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** Wire dtypes: TypedArray constructor, width, range. */
export const DTYPES = Object.freeze({
  u8: { ctor: Uint8Array, width: 1, min: 0, max: 0xff, int: true, get: "getUint8" },
  i8: { ctor: Int8Array, width: 1, min: -0x80, max: 0x7f, int: true, get: "getInt8" },
  u16: { ctor: Uint16Array, width: 2, min: 0, max: 0xffff, int: true, get: "getUint16" },
  i16: { ctor: Int16Array, width: 2, min: -0x8000, max: 0x7fff, int: true, get: "getInt16" },
  u32: { ctor: Uint32Array, width: 4, min: 0, max: 0xffffffff, int: true, get: "getUint32" },
  i32: { ctor: Int32Array, width: 4, min: -0x80000000, max: 0x7fffffff, int: true, get: "getInt32" },
  f32: { ctor: Float32Array, width: 4, min: -Infinity, max: Infinity, int: false, get: "getFloat32" },
  f64: { ctor: Float64Array, width: 8, min: -Infinity, max: Infinity, int: false, get: "getFloat64" },
});

/** COL codes: the dtype their bytes are read as, and whether they are differences. */
const COL_CODES = Object.freeze({
  u8: { dt: DTYPES.u8, diff: false },
  u16: { dt: DTYPES.u16, diff: false },
  u32: { dt: DTYPES.u32, diff: false },
  i8: { dt: DTYPES.i8, diff: false },
  i16: { dt: DTYPES.i16, diff: false },
  i32: { dt: DTYPES.i32, diff: false },
  f32: { dt: DTYPES.f32, diff: false },
  f64: { dt: DTYPES.f64, diff: false },
  d8: { dt: DTYPES.i8, diff: true },
  d16: { dt: DTYPES.i16, diff: true },
  d32: { dt: DTYPES.i32, diff: true },
});

const IDLIST_CODES = Object.freeze({ u8: DTYPES.u8, u16: DTYPES.u16, u32: DTYPES.u32 });

const MAX_FIELDS = 32;

/** Object.hasOwn for ES2020 browsers. */
const hasOwn = (obj, key) => Object.prototype.hasOwnProperty.call(obj, key);

function isUint(v) {
  return Number.isInteger(v) && v >= 0;
}

/**
 * View `bin` (a Uint8Array, any offset) as `n` values of dtype `dt`.
 * Zero-copy when aligned on a little-endian host.
 * @param {Uint8Array} bin
 * @returns {ArrayLike<number> & {length: number}}
 */
export function viewLE(bin, dt) {
  const n = bin.byteLength / dt.width;
  if (dt.width === 1) {
    return dt.ctor === Uint8Array ? bin : new Int8Array(bin.buffer, bin.byteOffset, n);
  }
  if (LITTLE_ENDIAN) {
    if (bin.byteOffset % dt.width === 0) return new dt.ctor(bin.buffer, bin.byteOffset, n);
    const copy = bin.slice(); // fresh, aligned ArrayBuffer: one memcpy
    return new dt.ctor(copy.buffer, 0, n);
  }
  const out = new dt.ctor(n);
  const dv = new DataView(bin.buffer, bin.byteOffset, bin.byteLength);
  const get = dt.get;
  for (let i = 0; i < n; i++) out[i] = dv[get](i * dt.width, true);
  return out;
}

/** One entity field of the wire schema. */
export class WireField {
  /**
   * @param {string} name
   * @param {keyof typeof DTYPES} dtype
   * @param {number | null} quant
   * @param {string | null} kind
   */
  constructor(name, dtype, quant = null, kind = null) {
    this.name = name;
    this.dtype = dtype;
    this.quant = quant;
    this.kind = kind ?? (quant !== null || !DTYPES[dtype].int ? "float" : "int");
    this.dt = DTYPES[dtype];
  }

  /** True for a float field (f32/f64 or quantized): interpolated, dequantized by values(). */
  get isFloat() {
    return this.quant !== null || !this.dt.int;
  }
}

/** The entity fields of a game, from WELCOME's "schema". */
export class WireSchema {
  /** @param {WireField[]} fields */
  constructor(fields) {
    if (fields.length > MAX_FIELDS) throw new DeltaError(`schema has ${fields.length} fields (max 32)`);
    this.fields = fields;
    /** @type {Map<string, number>} */
    this.index = new Map(fields.map((f, i) => [f.name, i]));
    if (this.index.size !== fields.length) throw new DeltaError("schema has duplicate field names");
  }

  /** Parse the msgpack form {"fields": [{"n", "t", "q"?, "k"?}, ...]}; throws DeltaError. */
  static fromWire(obj) {
    if (obj === null || typeof obj !== "object" || !Array.isArray(obj.fields)) {
      throw new DeltaError('schema must be a map with a "fields" array');
    }
    const fields = obj.fields.map((f, i) => {
      if (f === null || typeof f !== "object" || Array.isArray(f)) {
        throw new DeltaError(`schema field ${i} is not a map`);
      }
      if (typeof f.n !== "string" || f.n.length === 0 || f.n.length > 64) {
        throw new DeltaError(`schema field ${i}: "n" must be a short str`);
      }
      if (typeof f.t !== "string" || !hasOwn(DTYPES, f.t)) {
        throw new DeltaError(`schema field ${f.n}: unknown dtype ${JSON.stringify(f.t)}`);
      }
      let q = f.q ?? null;
      if (q instanceof Number) q = q.valueOf(); // an integral float quant (1.0) is fine
      if (q !== null && !(typeof q === "number" && q > 0 && Number.isFinite(q))) {
        throw new DeltaError(`schema field ${f.n}: "q" must be a float > 0`);
      }
      if (q !== null && !DTYPES[f.t].int) {
        throw new DeltaError(`schema field ${f.n}: a quantized field needs an integer dtype`);
      }
      if (f.k !== undefined && f.k !== null && typeof f.k !== "string") {
        throw new DeltaError(`schema field ${f.n}: "k" must be a str`);
      }
      const k = typeof f.k === "string" ? f.k : null;
      return new WireField(f.n, f.t, q, k);
    });
    return new WireSchema(fields);
  }

  get names() {
    return this.fields.map((f) => f.name);
  }
}

/**
 * Decode an IDLIST [first, code, gaps] into a strictly ascending Uint32Array.
 * @returns {Uint32Array}
 */
export function decodeIdList(v, what = "IDLIST") {
  if (!Array.isArray(v) || v.length < 3) throw new DeltaError(`${what}: must be [first, code, gaps]`);
  const [first, code, gaps] = v;
  if (!isUint(first) || first > 0xffffffff) throw new DeltaError(`${what}: first must be a uint32`);
  if (typeof code !== "string" || !hasOwn(IDLIST_CODES, code)) {
    throw new DeltaError(`${what}: unknown code ${JSON.stringify(code)}`);
  }
  if (!(gaps instanceof Uint8Array)) throw new DeltaError(`${what}: gaps must be a bin`);
  const dt = IDLIST_CODES[code];
  if (gaps.byteLength % dt.width !== 0) {
    throw new DeltaError(`${what}: gaps length ${gaps.byteLength} is not a multiple of ${dt.width}`);
  }
  const g = viewLE(gaps, dt);
  const n = g.length + 1;
  const out = new Uint32Array(n);
  let acc = first;
  out[0] = acc;
  for (let i = 1; i < n; i++) {
    const d = g[i - 1];
    if (d < 1) throw new DeltaError(`${what}: gap ${i - 1} is 0 (values must be strictly ascending)`);
    acc += d;
    out[i] = acc;
  }
  if (acc > 0xffffffff) throw new DeltaError(`${what}: value ${acc} exceeds uint32`);
  return out;
}

/** Decode a COL [code, data] -> {code, diff, values}. */
function decodeCol(v, what) {
  if (!Array.isArray(v) || v.length < 2) throw new DeltaError(`${what}: COL must be [code, data]`);
  const [code, data] = v;
  if (typeof code !== "string" || !hasOwn(COL_CODES, code)) {
    throw new DeltaError(`${what}: unknown COL code ${JSON.stringify(code)}`);
  }
  if (!(data instanceof Uint8Array)) throw new DeltaError(`${what}: COL data must be a bin`);
  const cc = COL_CODES[code];
  if (data.byteLength % cc.dt.width !== 0) {
    throw new DeltaError(`${what}: COL length ${data.byteLength} is not a multiple of ${cc.dt.width}`);
  }
  return { code, diff: cc.diff, dt: cc.dt, values: viewLE(data, cc.dt) };
}

/**
 * The decoded (not yet applied) form of a DELTA message.
 * @typedef {{type: 17, tick: number, baseTick: number | null, count: number,
 *   despawned: Uint32Array | null,
 *   spawned: {ids: Uint32Array, cols: {code: string, diff: boolean, dt: any, values: ArrayLike<number>}[]} | null,
 *   groups: {mask: number, rows: Uint32Array, cols: {code: string, diff: boolean, dt: any, values: ArrayLike<number>}[]}[],
 *   byteLength?: number}} Delta
 */

/**
 * Decode the msgpack array of a DELTA (already msgpack-decoded) into a Delta. Checks the
 * layout only; checks against a schema and a state happen in Replica.apply.
 * @returns {Delta}
 */
export function decodeDelta(msg) {
  if (!Array.isArray(msg) || msg.length < 7 || msg[0] !== 17) {
    throw new DeltaError("DELTA must be [17, tick, base_tick, count, despawned, spawned, groups]");
  }
  const [, tick, baseTick, count, despawned, spawned, groups] = msg;
  if (!isUint(tick)) throw new DeltaError("DELTA: tick must be a uint");
  if (baseTick !== null && !isUint(baseTick)) throw new DeltaError("DELTA: base_tick must be a uint or nil");
  if (!isUint(count) || count > 0xffffffff) throw new DeltaError("DELTA: count must be a uint32");
  const des = despawned === null ? null : decodeIdList(despawned, "despawned");
  let sp = null;
  if (spawned !== null) {
    if (!Array.isArray(spawned) || spawned.length < 2 || !Array.isArray(spawned[1])) {
      throw new DeltaError("DELTA: spawned must be nil or [IDLIST, [COL, ...]]");
    }
    const ids = decodeIdList(spawned[0], "spawned ids");
    const cols = spawned[1].map((c, i) => {
      const col = decodeCol(c, `spawned COL ${i}`);
      if (col.diff) throw new DeltaError(`spawned COL ${i}: difference codes never appear in spawned`);
      if (col.values.length !== ids.length) {
        throw new DeltaError(`spawned COL ${i}: ${col.values.length} values for ${ids.length} ids`);
      }
      return col;
    });
    sp = { ids, cols };
  }
  if (!Array.isArray(groups)) throw new DeltaError("DELTA: groups must be an array");
  const gs = groups.map((g, gi) => {
    if (!Array.isArray(g) || g.length < 3 || !Array.isArray(g[2])) {
      throw new DeltaError(`group ${gi}: must be [mask, ROWLIST, [COL, ...]]`);
    }
    const mask = g[0];
    if (!isUint(mask) || mask === 0 || mask > 0xffffffff) {
      throw new DeltaError(`group ${gi}: mask must be a non-zero uint32`);
    }
    const rows = decodeIdList(g[1], `group ${gi} rows`);
    let bits = 0;
    for (let m = mask; m; m = Math.floor(m / 2)) bits += m & 1;
    if (g[2].length !== bits) {
      throw new DeltaError(`group ${gi}: ${g[2].length} COLs for ${bits} mask bits`);
    }
    const cols = g[2].map((c, ci) => {
      const col = decodeCol(c, `group ${gi} COL ${ci}`);
      if (col.values.length !== rows.length) {
        throw new DeltaError(`group ${gi} COL ${ci}: ${col.values.length} values for ${rows.length} rows`);
      }
      return col;
    });
    return { mask, rows, cols };
  });
  return { type: 17, tick, baseTick, count, despawned: des, spawned: sp, groups: gs };
}

/** Check that every value of `values` (a raw COL) fits field dtype `fdt`. */
function checkRange(values, colDt, fdt, what) {
  if (!fdt.int) return; // float field: same-code check is done by the caller
  if (colDt.min >= fdt.min && colDt.max <= fdt.max) return; // the code's range fits: no scan
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (v < fdt.min || v > fdt.max) {
      throw new DeltaError(`${what}: value ${v} out of range for ${fdtName(fdt)}`);
    }
  }
}

function fdtName(fdt) {
  for (const [k, v] of Object.entries(DTYPES)) if (v === fdt) return k;
  return "?";
}

function checkRawCode(col, field, what) {
  if (!field.dt.int) {
    if (col.dt !== field.dt || col.diff) {
      throw new DeltaError(`${what}: field ${field.name} (${field.dtype}) needs COL code ${field.dtype}, got ${col.code}`);
    }
    return;
  }
  if (!col.diff && !col.dt.int) {
    throw new DeltaError(`${what}: float COL ${col.code} for integer field ${field.name}`);
  }
}

/**
 * The client's copy of the world: tick, sorted entity ids, one TypedArray column per field
 * (wire values, the field's own dtype), all of length `count`.
 */
export class Replica {
  /** @param {WireSchema} schema */
  constructor(schema) {
    this.schema = schema;
    /** @type {number | null} tick of the state; null before the first full snapshot */
    this.tick = null;
    this.count = 0;
    this._front = this._alloc(16);
    this._back = this._alloc(16);
    /** @type {Map<string, Float64Array>} cached dequantized views, invalidated by apply */
    this._valuesCache = new Map();
  }

  _alloc(cap) {
    return {
      ids: new Uint32Array(cap),
      cols: this.schema.fields.map((f) => new f.dt.ctor(cap)),
    };
  }

  /** Sorted entity ids (a view, valid until the next apply). */
  get ids() {
    return this._front.ids.subarray(0, this.count);
  }

  /** Wire-value columns by field name (views, valid until the next apply). */
  get columns() {
    /** @type {Record<string, any>} */
    const out = {};
    const fields = this.schema.fields;
    for (let i = 0; i < fields.length; i++) out[fields[i].name] = this._front.cols[i].subarray(0, this.count);
    return out;
  }

  /** The wire-value column of one field (a view). */
  column(name) {
    const i = this.schema.index.get(name);
    if (i === undefined) throw new Error(`no field named ${name}`);
    return this._front.cols[i].subarray(0, this.count);
  }

  /** Real values of a field: wire * q (Float64Array) for a quantized field, else the column. */
  values(name) {
    const i = this.schema.index.get(name);
    if (i === undefined) throw new Error(`no field named ${name}`);
    const f = this.schema.fields[i];
    const col = this._front.cols[i].subarray(0, this.count);
    if (f.quant === null) return col;
    let out = this._valuesCache.get(name);
    if (out === undefined) {
      out = new Float64Array(this.count);
      const q = f.quant;
      for (let r = 0; r < out.length; r++) out[r] = col[r] * q;
      this._valuesCache.set(name, out);
    }
    return out;
  }

  /** Every field's real values (dequantized), by name. */
  allValues() {
    /** @type {Record<string, any>} */
    const out = {};
    for (const f of this.schema.fields) out[f.name] = this.values(f.name);
    return out;
  }

  /** Row of entity `id`, or -1 (binary search over the sorted ids). */
  rowOf(id) {
    const ids = this._front.ids;
    let lo = 0;
    let hi = this.count - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      const v = ids[mid];
      if (v === id) return mid;
      if (v < id) lo = mid + 1;
      else hi = mid - 1;
    }
    return -1;
  }

  /**
   * Set the state directly (tests, tools): `ids` strictly ascending uint32, `columns` the wire
   * values by field name. Throws DeltaError if inconsistent (the replica is then unchanged).
   */
  load(tick, ids, columns) {
    const n = ids.length;
    for (let i = 1; i < n; i++) {
      if (!(ids[i] > ids[i - 1])) throw new DeltaError("load: ids must be strictly ascending");
    }
    let cap = Math.max(16, this._back.ids.length);
    while (cap < n) cap *= 2;
    const buf = this._alloc(cap);
    buf.ids.set(ids);
    this.schema.fields.forEach((f, i) => {
      const col = columns[f.name];
      if (!col || col.length !== n) throw new DeltaError(`load: column ${f.name} needs ${n} values`);
      checkRange(col, DTYPES.f64, f.dt, `load ${f.name}`);
      buf.cols[i].set(col);
    });
    this._front = buf;
    this._back = this._alloc(cap);
    this.count = n;
    this.tick = tick;
    this._valuesCache.clear();
  }

  /** Forget the state (a new WELCOME): the next delta must be a full snapshot. */
  reset() {
    this.tick = null;
    this.count = 0;
    this._valuesCache.clear();
  }

  /**
   * Apply a decoded DELTA atomically. Throws DeltaError (and leaves the replica unchanged)
   * if it is malformed or does not apply (wrong base tick, unknown despawned id, ...).
   * @param {Delta} d
   */
  apply(d) {
    const fields = this.schema.fields;
    const nf = fields.length;
    const full = d.baseTick === null;
    if (!full && d.baseTick !== this.tick) {
      throw new DeltaError(
        this.tick === null
          ? `delta on base tick ${d.baseTick} but no full snapshot yet`
          : `delta on base tick ${d.baseTick} but the replica is at tick ${this.tick}`,
      );
    }
    const oldN = full ? 0 : this.count;
    const oldIds = this._front.ids;
    const oldCols = this._front.cols;

    // -- step 2: despawned rows (merge of two sorted lists)
    const des = d.despawned;
    let removed = null;
    if (des !== null) {
      removed = new Int32Array(des.length);
      let r = 0;
      for (let k = 0; k < des.length; k++) {
        const id = des[k];
        while (r < oldN && oldIds[r] < id) r++;
        if (r >= oldN || oldIds[r] !== id) throw new DeltaError(`despawned id ${id} is not in the state`);
        removed[k] = r++;
      }
    }
    // -- step 3: spawned
    const sp = d.spawned;
    const nSpawn = sp === null ? 0 : sp.ids.length;
    if (sp !== null) {
      if (sp.cols.length !== nf) throw new DeltaError(`spawned has ${sp.cols.length} COLs for ${nf} fields`);
      for (let f = 0; f < nf; f++) {
        checkRawCode(sp.cols[f], fields[f], "spawned");
        checkRange(sp.cols[f].values, sp.cols[f].dt, fields[f].dt, `spawned ${fields[f].name}`);
      }
    }
    const nRemoved = removed === null ? 0 : removed.length;
    const newN = oldN - nRemoved + nSpawn;
    if (newN !== d.count) throw new DeltaError(`count is ${d.count} but the state would hold ${newN}`);

    // Build the new ids/columns in the back buffers as runs of copies (TypedArray.set):
    // runs of kept old rows and runs of spawned rows, interleaved in id order.
    if (this._back.ids.length < newN) {
      let cap = Math.max(16, this._back.ids.length);
      while (cap < newN) cap *= 2;
      this._back = this._alloc(cap);
    }
    const back = this._back;
    let dst = 0;
    const copyOld = (from, to) => {
      if (to <= from) return;
      back.ids.set(oldIds.subarray(from, to), dst);
      for (let f = 0; f < nf; f++) back.cols[f].set(oldCols[f].subarray(from, to), dst);
      dst += to - from;
    };
    const copySpawn = (from, to) => {
      if (to <= from) return;
      back.ids.set(sp.ids.subarray(from, to), dst);
      for (let f = 0; f < nf; f++) back.cols[f].set(sp.cols[f].values.subarray(from, to), dst);
      dst += to - from;
    };
    const spIds = sp === null ? null : sp.ids;
    let oldRow = 0;
    let ri = 0; // next index into removed
    let si = 0; // next index into spawned
    for (;;) {
      while (ri < nRemoved && removed[ri] === oldRow) {
        ri++;
        oldRow++;
      }
      if (oldRow >= oldN) {
        copySpawn(si, nSpawn);
        break;
      }
      const runEnd = ri < nRemoved ? removed[ri] : oldN; // kept run [oldRow, runEnd)
      if (si >= nSpawn) {
        copyOld(oldRow, runEnd);
        oldRow = runEnd;
        continue;
      }
      const sid = spIds[si];
      let lo = oldRow; // first row of the run whose id >= sid
      let hi = runEnd;
      while (lo < hi) {
        const mid = (lo + hi) >>> 1;
        if (oldIds[mid] < sid) lo = mid + 1;
        else hi = mid;
      }
      copyOld(oldRow, lo);
      oldRow = lo;
      if (lo < runEnd) {
        const limit = oldIds[lo];
        if (limit === sid) throw new DeltaError(`spawned id ${sid} is already in the state`);
        let sj = si + 1;
        while (sj < nSpawn && spIds[sj] < limit) sj++;
        if (sj < nSpawn && spIds[sj] === limit) {
          throw new DeltaError(`spawned id ${limit} is already in the state`);
        }
        copySpawn(si, sj);
        si = sj;
      }
    }

    // -- step 5: groups, into the back buffers
    for (let gi = 0; gi < d.groups.length; gi++) {
      const g = d.groups[gi];
      const rows = g.rows;
      if (rows.length && rows[rows.length - 1] >= newN) {
        throw new DeltaError(`group ${gi}: row ${rows[rows.length - 1]} >= count ${newN}`);
      }
      let ci = 0;
      for (let f = 0; f < MAX_FIELDS; f++) {
        if ((g.mask & (1 << f)) === 0) continue;
        if (f >= nf) throw new DeltaError(`group ${gi}: mask bit ${f} but only ${nf} fields`);
        const col = g.cols[ci++];
        const field = fields[f];
        const out = back.cols[f];
        const vals = col.values;
        const what = `group ${gi} field ${field.name}`;
        if (col.diff) {
          if (!field.dt.int) throw new DeltaError(`${what}: difference code ${col.code} on a float field`);
          const lo = field.dt.min;
          const hi = field.dt.max;
          for (let i = 0; i < rows.length; i++) {
            const r = rows[i];
            const v = out[r] + vals[i];
            if (v < lo || v > hi) throw new DeltaError(`${what}: ${out[r]} + ${vals[i]} out of range for ${field.dtype}`);
            out[r] = v;
          }
        } else {
          checkRawCode(col, field, what);
          checkRange(vals, col.dt, field.dt, what);
          for (let i = 0; i < rows.length; i++) out[rows[i]] = vals[i];
        }
      }
    }

    // -- commit: swap buffers (nothing above touched the front)
    this._back = this._front;
    this._front = back;
    this.count = newN;
    this.tick = d.tick;
    this._valuesCache.clear();
  }
}
