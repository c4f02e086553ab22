// Connection statistics: RTT from PING/PONG, received bytes per second, tick age.

/**
 * Live numbers about the connection. All times are milliseconds.
 * `rtt` is the last PING->PONG round trip, `rttSmoothed` an EWMA (1/8, like TCP's SRTT),
 * `bytesPerSec` the received payload rate over the last `windowMs`, `tickAge` how long ago the
 * newest DELTA arrived (it grows when the stream stalls: a frozen stream is visible).
 */
export class Stats {
  /** @param {{windowMs?: number, now?: () => number}} [opts] */
  constructor(opts = {}) {
    this.windowMs = opts.windowMs ?? 1000;
    this._now = opts.now ?? (() => performance.now());
    /** @type {number | null} */ this.rtt = null;
    /** @type {number | null} */ this.rttSmoothed = null;
    this.bytesReceived = 0;
    this.bytesSent = 0;
    this.messagesReceived = 0;
    this.deltasReceived = 0;
    /** @type {number | null} */ this.lastTick = null;
    /** @type {number | null} */ this.lastDeltaAt = null;
    this.reconnects = 0;
    this.redirects = 0; // 4013 / 4014 followed
    this.inputsResent = 0; // unacknowledged inputs re-sent after a 4014 move
    /** @type {number[]} the last 8 RTT samples (ms) */
    this._rtts = [];
    // Ring of (time, bytes) samples over the rate window; bounded by `_cap` entries.
    this._cap = 512;
    this._t = new Float64Array(this._cap);
    this._b = new Float64Array(this._cap);
    this._head = 0;
    this._len = 0;
    this._sum = 0;
  }

  /** Record one received message of `n` bytes. */
  received(n) {
    const now = this._now();
    this.bytesReceived += n;
    this.messagesReceived += 1;
    this._expire(now);
    if (this._len === this._cap) {
      // Window full: fold the oldest sample into the newest slot's neighbour by dropping it.
      this._sum -= this._b[this._head];
      this._head = (this._head + 1) % this._cap;
      this._len -= 1;
    }
    const i = (this._head + this._len) % this._cap;
    this._t[i] = now;
    this._b[i] = n;
    this._len += 1;
    this._sum += n;
  }

  /** Record `n` bytes sent. */
  sent(n) {
    this.bytesSent += n;
  }

  /** Record a DELTA for `tick`. */
  delta(tick) {
    this.deltasReceived += 1;
    this.lastTick = tick;
    this.lastDeltaAt = this._now();
  }

  /** Record a PONG for a PING sent at `sentAt` (same clock). */
  pong(sentAt) {
    const rtt = Math.max(0, this._now() - sentAt);
    this.rtt = rtt;
    this._rtts.push(rtt);
    if (this._rtts.length > 8) this._rtts.shift();
    this.rttSmoothed = this.rttSmoothed === null ? rtt : this.rttSmoothed + (rtt - this.rttSmoothed) / 8;
  }

  _expire(now) {
    const cutoff = now - this.windowMs;
    while (this._len > 0 && this._t[this._head] < cutoff) {
      this._sum -= this._b[this._head];
      this._head = (this._head + 1) % this._cap;
      this._len -= 1;
    }
  }

  /** Median of the last 8 RTT samples (ms): robust to one slow sample; null before any. */
  get rttMedian() {
    if (!this._rtts.length) return null;
    const s = this._rtts.slice().sort((a, b) => a - b);
    const m = s.length >> 1;
    return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
  }

  /** Received bytes per second over the window. */
  get bytesPerSec() {
    this._expire(this._now());
    return (this._sum * 1000) / this.windowMs;
  }

  /** Milliseconds since the newest DELTA arrived (null before the first). */
  get tickAge() {
    return this.lastDeltaAt === null ? null : this._now() - this.lastDeltaAt;
  }

  /** A plain-object copy, for display or logging. */
  snapshot() {
    return {
      rtt: this.rtt,
      rttSmoothed: this.rttSmoothed,
      rttMedian: this.rttMedian,
      bytesPerSec: this.bytesPerSec,
      tickAge: this.tickAge,
      lastTick: this.lastTick,
      bytesReceived: this.bytesReceived,
      bytesSent: this.bytesSent,
      messagesReceived: this.messagesReceived,
      deltasReceived: this.deltasReceived,
      reconnects: this.reconnects,
    };
  }
}
