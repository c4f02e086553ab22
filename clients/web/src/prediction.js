// Client-side prediction with server reconciliation.
//
// Same semantics as the Python client (clients/prediction.py): the predicted state is always
// "authoritative state + replay of my pending (unacknowledged) inputs". Each input is applied
// locally when sent (record); when an authoritative state arrives, reconcile() restarts from
// it and replays the inputs it does not include yet. The user supplies
// step(state, inputs) -> newState (the server's one-input rule; must not mutate `state`).
// Buffers are bounded: at most maxPending unacknowledged inputs, none older than maxAge s.

/**
 * Pairs INPUT_ACK messages (seq s applied in tick t) with delta ticks: ackedAt(tick) is the
 * last input seq the authoritative state of `tick` includes. Keeps at most `capacity` acks.
 */
export class AckTracker {
  constructor(capacity = 256) {
    /** @type {number[]} */ this._ticks = [];
    /** @type {number[]} */ this._seqs = [];
    this._capacity = capacity;
    this._floor = 0;
    /** The highest seq acknowledged so far (regardless of tick). */
    this.lastSeq = 0;
  }

  /** Record INPUT_ACK {s: seq, t: tick}. Acks for older seqs are ignored. */
  ack(seq, tick) {
    if (seq <= this.lastSeq) return;
    this.lastSeq = seq;
    const n = this._ticks.length;
    if (n && tick < this._ticks[n - 1]) tick = this._ticks[n - 1]; // reordered: later in time
    this._ticks.push(tick);
    this._seqs.push(seq);
    if (this._ticks.length > this._capacity) {
      const drop = this._ticks.length - Math.floor(this._capacity / 2);
      this._floor = this._seqs[drop - 1];
      this._ticks.splice(0, drop);
      this._seqs.splice(0, drop);
    }
  }

  /** The largest acknowledged seq applied in a tick <= `tick` (0 if none). */
  ackedAt(tick) {
    // bisect_right over the ascending ticks
    let lo = 0;
    let hi = this._ticks.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this._ticks[mid] <= tick) lo = mid + 1;
      else hi = mid;
    }
    return lo ? this._seqs[lo - 1] : this._floor;
  }

  /** Forget everything (a new session: seqs restart at 1). */
  reset() {
    this._ticks.length = 0;
    this._seqs.length = 0;
    this._floor = 0;
    this.lastSeq = 0;
  }
}

/**
 * Predicted state = authoritative state + replay of the unacknowledged inputs.
 * @template S
 */
export class Predictor {
  /**
   * @param {(state: S, inputs: Record<string, any>) => S} step
   * @param {S} initial
   * @param {{clock?: () => number, maxPending?: number, maxAge?: number,
   *   error?: ((a: S, b: S) => number) | null, tolerance?: number}} [opts]
   *   clock in seconds (default performance.now() / 1000); maxAge seconds (default 5).
   */
  constructor(step, initial, opts = {}) {
    const maxPending = opts.maxPending ?? 256;
    if (maxPending < 1) throw new RangeError("maxPending must be >= 1");
    this._step = step;
    this._clock = opts.clock ?? (() => performance.now() / 1000);
    this._maxPending = maxPending;
    this._maxAge = opts.maxAge ?? 5.0;
    this._error = opts.error ?? null;
    this._tolerance = opts.tolerance ?? 1e-6;
    /** @type {{seq: number, data: Record<string, any>, sentAt: number}[]} */
    this._pending = [];
    /** The last state received from the server. */
    this.authoritative = initial;
    /** The predicted state: what to draw for the local player now. */
    this.state = initial;
    /** The last input seq the authoritative state includes. */
    this.ackedSeq = 0;
    /** How far the last reconciliation moved the prediction (0 without `error`). */
    this.lastError = 0;
    /** Reconciliations that moved the prediction by more than `tolerance`. */
    this.mispredictions = 0;
    /** Inputs forgotten (no ack within maxAge, or the buffer was full). */
    this.expired = 0;
    /** @type {number | null} seconds between sending the newest acked input and reconciling */
    this.latency = null;
  }

  /** Inputs sent and not yet included in the authoritative state, oldest first (a copy). */
  get pending() {
    return this._pending.slice();
  }

  /** An input was just sent with `seq`: predict its effect; returns the new state. */
  record(seq, inputs) {
    if (seq <= this.ackedSeq) throw new RangeError(`input seq ${seq} is already acknowledged (${this.ackedSeq})`);
    const p = this._pending;
    if (p.length && seq <= p[p.length - 1].seq) {
      throw new RangeError(`input seq ${seq} not after ${p[p.length - 1].seq}`);
    }
    if (p.length === this._maxPending) {
      this.expired += 1;
      p.shift();
    }
    p.push({ seq, data: { ...inputs }, sentAt: this._clock() });
    this.state = this._step(this.state, inputs);
    return this.state;
  }

  /**
   * Restart from the server's state (which includes inputs up to ackedSeq) and replay the
   * newer pending inputs. Returns the new predicted state.
   */
  reconcile(authoritative, ackedSeq) {
    const now = this._clock();
    const p = this._pending;
    if (ackedSeq < this.ackedSeq) ackedSeq = this.ackedSeq; // a stale delta
    let k = 0;
    while (k < p.length && p[k].seq <= ackedSeq) {
      if (p[k].seq === ackedSeq) this.latency = now - p[k].sentAt;
      k++;
    }
    while (k < p.length && now - p[k].sentAt > this._maxAge) {
      k++;
      this.expired += 1;
    }
    if (k) p.splice(0, k);
    this.ackedSeq = ackedSeq;
    this.authoritative = authoritative;
    let state = authoritative;
    for (const x of p) state = this._step(state, x.data);
    if (this._error !== null) {
      this.lastError = Number(this._error(this.state, state));
      if (this.lastError > this._tolerance) this.mispredictions += 1;
    }
    this.state = state;
    return state;
  }

  /** Forget every pending input and start from `state` (a new session). */
  reset(state) {
    this._pending.length = 0;
    this.ackedSeq = 0;
    this.authoritative = state;
    this.state = state;
  }
}
