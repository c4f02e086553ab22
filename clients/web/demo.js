// The arena demo: what `gameserver` serves at `/`.
//
// Connects to the same host's /ws (wss:// on an https page), joins the arena, draws the
// interpolated world on a devicePixelRatio-aware canvas with the camera on the local player
// (predicted, reconciled on INPUT_ACK), and reads WASD / arrows / space or a touch joystick.
// Status, ping, tick age and bandwidth are in the top-left panel; a clear message covers the
// view when the server is gone (with automatic reconnect), when the join is rejected, or when
// the server sent malformed data (the client closes; see the console).
//
// URL parameters: ?name=NAME (display name), ?room=ID, ?preview (draw a canned scene
// without connecting: for screenshots of the page design), ?spectate (watch without an
// entity: WASD / arrows fly a free camera, sent to the server as CAMERA so an interest-managed
// game streams what it shows), ?spectate&follow=PLAYER_ID (the camera follows that player).
//
// window.gameDemo exposes the client and the drawn scene for debugging and browser tests.

import { GameClient, CLOSE_REASONS } from "./dist/gameclient.js";

const params = new URLSearchParams(location.search);
const PREVIEW = params.has("preview");
const SPECTATE = params.has("spectate");
const FOLLOW = Number(params.get("follow")) || null;
const SPECTATOR_SPEED = 40; // free camera, world units per second
const spectator = { x: 50, y: 50, sentAt: 0 };

// ------------------------------------------------------------------ game constants (arena)
const KIND = { player: 0, critter: 1, orb: 2, hunter: 3 };
const STATE = { resting: 0, moving: 1, rushing: 2, boosting: 3 };
const PLAYER_SPEED = 12; // units/s, as examples/arena.py
const BOOST = 1.8;
const VIEW_UNITS = 54; // world units across the shorter side of the screen

// ------------------------------------------------------------------ DOM
const $ = (id) => document.getElementById(id);
const canvas = $("view");
const ctx = canvas.getContext("2d", { alpha: false });
const ui = {
  status: $("status"),
  game: $("game-name"),
  ping: $("stat-ping"),
  age: $("stat-age"),
  bytes: $("stat-bytes"),
  players: $("stat-players"),
  scores: $("scores"),
  msg: $("message"),
  msgTitle: $("message-title"),
  msgText: $("message-text"),
  msgAction: $("message-action"),
  joystick: $("joystick"),
  playback: $("playback"),
  pbPlay: $("pb-play"),
  pbSpeed: $("pb-speed"),
  pbSeek: $("pb-seek"),
  pbTick: $("pb-tick"),
  knob: document.querySelector("#joystick .knob"),
  fire: $("fire"),
};

// ------------------------------------------------------------------ names and colours
const ADJ = ["Swift", "Quiet", "Brave", "Lucky", "Sly", "Bold", "Nimble", "Clever"];
const ANIMAL = ["Fox", "Otter", "Lynx", "Heron", "Badger", "Falcon", "Hare", "Wolf"];
function randomName() {
  const r = (a) => a[Math.floor(Math.random() * a.length)];
  return `${r(ADJ)}${r(ANIMAL)}${Math.floor(Math.random() * 90 + 10)}`;
}
let myName = params.get("name") || sessionStorage.getItem("gs-name") || randomName();
sessionStorage.setItem("gs-name", myName);

/** A stable, pleasant hue per player id. */
function playerHue(pid) {
  // golden-angle spread over warm and violet hues: not the greens of the critters, not the
  // cyan reserved for the local player
  const h = (pid * 137.508) % 190;
  return h < 75 ? h + 5 : h + 155;
}
const COLORS = {
  bg: "#0a0e16",
  floor: "#0f1522",
  grid: "rgba(148, 163, 184, 0.07)",
  gridMajor: "rgba(148, 163, 184, 0.13)",
  wall: "rgba(56, 189, 248, 0.55)",
  orb: "#fbbf24",
  orbGlow: "rgba(251, 191, 36, 0.16)",
  critter: "#34d399",
  critterRest: "#1f7a5c",
  critterFlee: "#6ee7b7",
  hunter: "#f43f5e",
  hunterGlow: "rgba(244, 63, 94, 0.25)",
  me: "#38bdf8",
  text: "#e2e8f0",
  muted: "#94a3b8",
};

// ------------------------------------------------------------------ state
/** player id -> display name (from "joined", "scoreboard" events) */
const names = new Map();
let arenaSize = 100;
let scoreboard = []; // [[pid, name, score], ...] from the last "scoreboard" event
const toasts = []; // floating texts: {text, color, x, y, born}
const feed = []; // {text, born}
const camera = { x: 50, y: 50, ready: false };
const view = { cx: 50, cy: 50, s: 1, ox: 0, oy: 0 }; // the view drawn (centre, device px transform)
const zaps = []; // {x, y, hit, mine, born}: recent zaps, drawn as fading rings
const ZAP_RADIUS = 1.0; // examples/arena.py
const meDisplay = { x: 0, y: 0, ready: false };

// Relative to the page, so the demo also works under a path prefix (/game/ -> /game/ws).
const wsUrl = new URL("ws", location.href).href.replace(/^http/, "ws");

/** Input step for prediction: examples/arena.py's _move_players for one tick. */
function makeStep(tickRate) {
  const dt = 1 / tickRate;
  return (s, inp) => {
    let dx = Number(inp.dx) || 0;
    let dy = Number(inp.dy) || 0;
    const n = Math.hypot(dx, dy);
    const scale = n > 1 ? 1 / n : 1;
    const speed = PLAYER_SPEED * (inp.boost ? BOOST : 1) * scale * dt;
    return {
      x: Math.min(Math.max(s.x + dx * speed, 0), arenaSize),
      y: Math.min(Math.max(s.y + dy * speed, 0), arenaSize),
    };
  };
}

const client = PREVIEW
  ? null
  : new GameClient(wsUrl, {
      name: myName,
      room: params.get("room") ?? undefined,
      spectate: SPECTATE,
      follow: FOLLOW,
      angles: ["angle"],
      step: makeStep(30),
      stateOf: (world, row) => ({ x: world.values("x")[row], y: world.values("y")[row] }),
    });

window.gameDemo = {
  client,
  scene: null,
  /** The last "replay" status (replay server only). */
  replay: null,
  names,
  /** Simulate a network cut (the client resumes the same player). */
  drop: () => client?.dropConnection(),
  input: null,
  view,
  /** our zaps as the server judged them: {x, y, hit: entity id or 0} (last 16) */
  myZaps: [],
  lastZap: null,
};

// ------------------------------------------------------------------ client events
if (client) {
  client.on("status", updateStatus);
  client.on("welcome", ({ welcome, resumed }) => {
    ui.game.textContent = welcome.game;
    document.title = `gameserver · ${welcome.game}`;
    names.set(welcome.player, myName);
    client.opts.step = makeStep(welcome.tick_rate);
    startInputLoop(welcome.tick_rate);
    showPlayback(welcome.game === "replay");
    outage = null;
    pushFeed(resumed ? "reconnected: same player, same score" : `joined room ${welcome.room} as ${myName}`);
    meDisplay.ready = false;
  });
  client.on("event", ({ kind, data }) => onGameEvent(kind, data));
  client.on("close", ({ code, willReconnect }) => {
    if (willReconnect && outage === null) outage = describeClose(code);
  });
  client.on("servererror", ({ code, message }) => {
    if (code < 4000) pushFeed(`server: ${message} (error ${code})`);
  });
  client.on("fatal", ({ kind, message }) => {
    if (kind === "protocol") console.error(`gameserver demo: closed because the server sent malformed data: ${message}`);
  });
  client.connect();
}

function onGameEvent(kind, data) {
  switch (kind) {
    case "replay":
      if (data && typeof data.tick === "number") updatePlayback(data);
      break;
    case "arena":
      if (data && typeof data.size === "number") arenaSize = data.size;
      break;
    case "joined":
      if (data && typeof data.player === "number") {
        names.set(data.player, String(data.name || `player ${data.player}`));
        if (data.player !== client?.playerId) pushFeed(`${names.get(data.player)} joined`);
      }
      break;
    case "left":
      if (data && typeof data.player === "number") pushFeed(`${data.name || names.get(data.player) || "a player"} left`);
      break;
    case "scoreboard":
      if (Array.isArray(data)) {
        scoreboard = data.filter((r) => Array.isArray(r) && r.length >= 3);
        for (const [pid, name] of scoreboard) if (name) names.set(pid, String(name));
      }
      break;
    case "pickup":
      if (data) toast(`+${data.points}`, data.what === "critter" ? COLORS.critterFlee : COLORS.orb);
      break;
    case "zaps":
      // [[player id, ax, ay, hit entity id or 0], ...]: judged against what the shooter saw
      if (Array.isArray(data)) {
        for (const z of data) {
          if (!Array.isArray(z) || z.length < 4) continue;
          const zap = { x: z[1], y: z[2], hit: z[3] !== 0, mine: z[0] === client?.playerId, born: performance.now() };
          zaps.push(zap);
          if (zap.mine) window.gameDemo.myZaps.push({ x: zap.x, y: zap.y, hit: z[3] });
        }
        if (window.gameDemo.myZaps.length > 16) window.gameDemo.myZaps.splice(0, 1);
        if (zaps.length > 64) zaps.splice(0, zaps.length - 64);
      }
      break;
    case "died":
      toast("caught! score halved", COLORS.hunter, 1.6);
      pushFeed("a hunter got you: score halved, respawned");
      break;
    default:
      break;
  }
}

// ------------------------------------------------------------------ replay playback
// `gameserver replay FILE --serve`: the controls are INPUTs of the playback schema
// {cmd: 1 play, 2 pause, 3 seek, 4 speed; speed; tick} (docs/REPLAY.md section 6); the room
// reports its state in "replay" events.
const playback = { paused: false, seeking: false, dragging: false };
function showPlayback(on) {
  ui.playback.classList.toggle("hidden", !on);
  document.body.classList.toggle("replay", on);
}
function sendPlayback(cmd, extra = {}) {
  if (!client || !client.joined) return;
  client.sendInput({ cmd, speed: Number(ui.pbSpeed.value) || 1, tick: 0, ...extra });
}
function updatePlayback(s) {
  playback.paused = !!s.paused;
  ui.pbPlay.textContent = s.paused ? "▶" : "❚❚";
  ui.pbPlay.setAttribute("aria-label", s.paused ? "play" : "pause");
  ui.pbSeek.max = String(s.end);
  if (!playback.dragging) ui.pbSeek.value = String(s.tick);
  const secs = (t) => (t / (s.tick_rate || 30)).toFixed(1);
  ui.pbTick.textContent = `${secs(s.tick)} / ${secs(s.end)} s${s.seeking ? " …" : ""}`;
  ui.pbTick.dataset.tick = String(s.tick);
  window.gameDemo.replay = s;
}
ui.pbPlay.addEventListener("click", () => sendPlayback(playback.paused ? 1 : 2));
ui.pbSpeed.addEventListener("change", () => sendPlayback(4));
ui.pbSeek.addEventListener("input", () => (playback.dragging = true));
ui.pbSeek.addEventListener("change", () => {
  playback.dragging = false;
  sendPlayback(3, { tick: Number(ui.pbSeek.value) });
});

function toast(text, color, life = 1.0) {
  toasts.push({ text, color, born: performance.now(), life, x: meDisplay.x, y: meDisplay.y });
  if (toasts.length > 20) toasts.shift();
}

function pushFeed(text) {
  feed.push({ text, born: performance.now() });
  if (feed.length > 5) feed.shift();
}

// ------------------------------------------------------------------ status / overlay
function updateStatus() {
  if (!client) return;
  const s = client.status;
  const labels = {
    idle: "idle",
    connecting: "connecting…",
    joining: "joining…",
    connected: "connected",
    reconnecting: "reconnecting…",
    closed: "disconnected",
    rejected: "rejected",
    error: "error",
  };
  ui.status.textContent = labels[s] ?? s;
  ui.status.className = `pill pill-${s === "joining" ? "connecting" : s === "rejected" ? "error" : s}`;
  ui.status.dataset.state = s;
  if (s === "connected") return hideMessage();
  if (s === "reconnecting") {
    return showMessage(client.welcome ? "Connection lost" : "Cannot reach the game server",
      reconnectText(), "info");
  }
  if (s === "rejected") {
    return showMessage("Could not join the game", client.statusDetail, "error", "Try another name", () => {
      myName = randomName();
      sessionStorage.setItem("gs-name", myName);
      const u = new URL(location.href);
      u.searchParams.set("name", myName);
      location.href = u.toString();
    });
  }
  if (s === "error") {
    return showMessage("Disconnected: the server sent malformed data",
      `${client.statusDetail}. Details are in the browser console.`, "error", "Reconnect", () => location.reload());
  }
  if (s === "closed") {
    return showMessage("Disconnected", client.statusDetail, "error", "Reconnect", () => location.reload());
  }
}

/** Why the current outage started (the first close after being connected). */
let outage = null;

/** "The server is shutting down (1001). Reconnecting automatically in 1.2 s (attempt 3)…" */
function reconnectText() {
  const when = client.retryIn === null ? "now" : `in ${client.retryIn.toFixed(1)} s`;
  const why = outage ?? (client.welcome ? "The connection dropped." : "The server does not answer.");
  return `${why} Reconnecting automatically ${when} (attempt ${Math.max(1, client.attempt)})…`;
}

function describeClose(code) {
  if (code === 1001) return "The server is shutting down (1001).";
  if (code === 1006) return "The connection dropped (1006).";
  const r = CLOSE_REASONS[code];
  return r ? `${capitalize(r)} (${code}).` : `The connection closed with code ${code}.`;
}

function capitalize(s) {
  return s.charAt(0).toUpperCase() + s.slice(1);
}

function showMessage(title, text, level = "error", action = null, onAction = null) {
  ui.msg.classList.remove("hidden");
  ui.msg.classList.toggle("info", level === "info");
  ui.msg.dataset.level = level;
  ui.msgTitle.textContent = title;
  ui.msgText.textContent = text;
  ui.msgAction.classList.toggle("hidden", !action);
  if (action) {
    ui.msgAction.textContent = action;
    ui.msgAction.onclick = onAction;
  }
}

function hideMessage() {
  ui.msg.classList.add("hidden");
}

function fmtBytes(bps) {
  if (bps < 1024) return `${Math.round(bps)} B/s`;
  return `${(bps / 1024).toFixed(bps < 10240 ? 1 : 0)} kB/s`;
}

function updateHud() {
  if (!client) return;
  const st = client.stats;
  const rtt = st.rttMedian;
  ui.ping.textContent = rtt === null || client.status !== "connected" ? "–" : `${Math.round(rtt)} ms`;
  const age = st.tickAge;
  ui.age.textContent = age === null ? "–" : `${Math.round(age)} ms`;
  ui.age.style.color = age !== null && age > 500 ? "var(--warn)" : "";
  ui.bytes.textContent = fmtBytes(st.bytesPerSec);
  if (client.status === "reconnecting") ui.msgText.textContent = reconnectText();
  // a stream that stopped while the socket looks open: say so, never a page that looks alive
  if (client.status === "connected" && age !== null && age > 2000) {
    showMessage("Waiting for the server…", `No update for ${(age / 1000).toFixed(1)} s.`, "info");
  } else if (client.status === "connected") {
    hideMessage();
  }
}

// ------------------------------------------------------------------ scoreboard
function renderScores(scene) {
  // live scores from the replicated state (player entities carry `score`), names from events
  let rows = [];
  if (scene && scene.count) {
    for (let i = 0; i < scene.count; i++) {
      if (scene.kind[i] !== KIND.player) continue;
      const pid = scene.owner[i];
      rows.push([pid, names.get(pid) ?? `player ${pid}`, scene.score ? scene.score[i] : 0]);
    }
    rows.sort((a, b) => b[2] - a[2] || a[0] - b[0]);
  } else {
    rows = scoreboard.slice();
  }
  ui.players.textContent = String(rows.length || "–");
  const me = client?.playerId ?? scene?.mePid;
  const html = rows.slice(0, 10).map(([pid, name, score]) => {
    const color = `hsl(${playerHue(pid)} 80% 62%)`;
    return `<li class="${pid === me ? "me" : ""}"><span class="swatch" style="background:${pid === me ? COLORS.me : color}"></span>` +
      `<span class="name">${escapeHtml(name)}</span><span class="score">${score}</span></li>`;
  }).join("");
  ui.scores.innerHTML = html || '<li class="empty">no players yet</li>';
}

function escapeHtml(s) {
  return String(s).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
}

// ------------------------------------------------------------------ input
const keys = new Set();
const joy = { active: false, dx: 0, dy: 0, id: null };
let touchBoost = false;
let inputTimer = null;
let lastSent = null;
let lastSentAt = 0;

const KEYMAP = {
  KeyW: "up", ArrowUp: "up", KeyS: "down", ArrowDown: "down",
  KeyA: "left", ArrowLeft: "left", KeyD: "right", ArrowRight: "right", Space: "boost",
};
addEventListener("keydown", (e) => {
  const k = KEYMAP[e.code];
  if (!k) return;
  keys.add(k);
  e.preventDefault();
});
addEventListener("keyup", (e) => {
  const k = KEYMAP[e.code];
  if (k) keys.delete(k);
});
addEventListener("blur", () => keys.clear());

function currentInput() {
  let dx = (keys.has("right") ? 1 : 0) - (keys.has("left") ? 1 : 0);
  let dy = (keys.has("down") ? 1 : 0) - (keys.has("up") ? 1 : 0);
  if (joy.active) {
    dx = joy.dx;
    dy = joy.dy;
  }
  const n = Math.hypot(dx, dy);
  if (n > 1) {
    dx /= n;
    dy /= n;
  }
  return { dx: Math.round(dx * 1000) / 1000, dy: Math.round(dy * 1000) / 1000, boost: keys.has("boost") || touchBoost };
}

/** Send the held input once per tick while it is non-zero or changed (the arena holds it). */
function startInputLoop(tickRate) {
  if (inputTimer !== null) clearInterval(inputTimer);
  lastSent = null;
  inputTimer = setInterval(() => {
    if (!client || !client.joined) return;
    const all = currentInput();
    // only the fields this game accepts (WELCOME "inputs"): another game may not have "boost"
    const accepted = new Set((client.welcome.inputs ?? []).map((f) => f.n));
    const inp = {};
    for (const k of Object.keys(all)) if (accepted.has(k)) inp[k] = all[k];
    window.gameDemo.input = inp;
    if (SPECTATE) {
      // a spectator sends no inputs (the server answers ERROR 7): it moves its camera
      if (FOLLOW) return;
      spectator.x = Math.min(Math.max(spectator.x + all.dx * SPECTATOR_SPEED / tickRate, 0), arenaSize);
      spectator.y = Math.min(Math.max(spectator.y + all.dy * SPECTATOR_SPEED / tickRate, 0), arenaSize);
      const t = performance.now();
      if ((all.dx || all.dy || !spectator.sentAt) && t - spectator.sentAt > 100) {
        client.camera(spectator.x, spectator.y);
        spectator.sentAt = t;
      }
      return;
    }
    if (!Object.keys(inp).length) return;
    const idle = !inp.dx && !inp.dy && !inp.boost;
    const same = lastSent && lastSent.dx === inp.dx && lastSent.dy === inp.dy && lastSent.boost === inp.boost;
    const now = performance.now();
    if (idle && same && now - lastSentAt < 1000) return;
    client.sendInput(inp);
    lastSent = inp;
    lastSentAt = now;
  }, 1000 / tickRate);
}

// touch: a virtual joystick (left) and a boost button (right)
const isTouch = matchMedia("(pointer: coarse)").matches || "ontouchstart" in window;
if (isTouch) {
  document.body.classList.add("touch");
  ui.joystick.classList.remove("hidden");
  ui.fire.classList.remove("hidden");
}
function joyMove(e) {
  const r = ui.joystick.getBoundingClientRect();
  const cx = r.left + r.width / 2;
  const cy = r.top + r.height / 2;
  const max = r.width / 2;
  let dx = (e.clientX - cx) / max;
  let dy = (e.clientY - cy) / max;
  const n = Math.hypot(dx, dy);
  if (n > 1) {
    dx /= n;
    dy /= n;
  }
  joy.dx = Math.abs(dx) < 0.12 ? 0 : dx;
  joy.dy = Math.abs(dy) < 0.12 ? 0 : dy;
  ui.knob.style.transform = `translate(${dx * max * 0.6}px, ${dy * max * 0.6}px)`;
}
ui.joystick.addEventListener("pointerdown", (e) => {
  joy.active = true;
  joy.id = e.pointerId;
  ui.joystick.setPointerCapture(e.pointerId);
  joyMove(e);
});
ui.joystick.addEventListener("pointermove", (e) => {
  if (joy.active && e.pointerId === joy.id) joyMove(e);
});
const joyEnd = (e) => {
  if (e.pointerId !== joy.id) return;
  joy.active = false;
  joy.dx = joy.dy = 0;
  ui.knob.style.transform = "";
};
ui.joystick.addEventListener("pointerup", joyEnd);
ui.joystick.addEventListener("pointercancel", joyEnd);
ui.fire.addEventListener("pointerdown", (e) => {
  touchBoost = true;
  ui.fire.setPointerCapture(e.pointerId);
});
ui.fire.addEventListener("pointerup", () => (touchBoost = false));
ui.fire.addEventListener("pointercancel", () => (touchBoost = false));

// mouse: click to zap what is under the pointer (examples/arena.py's lag-compensated attack:
// the client sends its render tick with the input, so the server judges the shot against
// the world as drawn here)
canvas.addEventListener("pointerdown", (e) => {
  if (e.pointerType !== "mouse" || e.button !== 0 || !client || !client.joined) return;
  const accepted = new Set((client.welcome.inputs ?? []).map((f) => f.n));
  if (!accepted.has("fire")) return;
  const r = canvas.getBoundingClientRect();
  const wx = ((e.clientX - r.left) * dpr - view.ox) / view.s;
  const wy = ((e.clientY - r.top) * dpr - view.oy) / view.s;
  const size = arenaSize;
  const held = currentInput();
  const inp = { fire: true, ax: Math.min(Math.max(wx, 0), size), ay: Math.min(Math.max(wy, 0), size) };
  for (const k of Object.keys(held)) if (accepted.has(k)) inp[k] = held[k];
  client.sendInput(inp);
  window.gameDemo.lastZap = inp;
});

// ------------------------------------------------------------------ canvas sizing
let cssW = 0;
let cssH = 0;
let dpr = 1;
function resize() {
  dpr = Math.min(window.devicePixelRatio || 1, 3);
  cssW = window.innerWidth;
  cssH = window.innerHeight;
  canvas.width = Math.round(cssW * dpr);
  canvas.height = Math.round(cssH * dpr);
}
addEventListener("resize", resize);
resize();

// ------------------------------------------------------------------ the scene
/**
 * What to draw: the interpolated frame's columns (typed arrays) plus who we are.
 * Own entity position comes from the predictor when it runs (ahead of the interpolated
 * others, as usual for client-side prediction).
 */
function buildScene() {
  if (PREVIEW) return previewScene(performance.now() / 1000);
  const f = client.frame();
  if (!f) return null;
  const c = f.columns;
  const need = ["x", "y"]; // other fields are optional: any game with a position draws
  if (!need.every((k) => k in c)) return null;
  const n = f.ids.length;
  const zeros = new Uint8Array(n);
  // a spectator following a player centres on that player's entity (the "owner" field)
  const owner = c.owner;
  const meId = FOLLOW && owner ? (() => { const r = owner.indexOf(FOLLOW); return r >= 0 ? f.ids[r] : null; })()
    : client.entityId;
  let me = null;
  if (meId !== null) {
    // rows are sorted by id: binary search
    let lo = 0;
    let hi = n - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      if (f.ids[mid] === meId) {
        me = mid;
        break;
      }
      if (f.ids[mid] < meId) lo = mid + 1;
      else hi = mid - 1;
    }
  }
  let meX = null;
  let meY = null;
  const p = client.predictor;
  if (p) {
    meX = p.state.x;
    meY = p.state.y;
  } else if (me !== null) {
    meX = c.x[me];
    meY = c.y[me];
  }
  return {
    count: n,
    ids: f.ids,
    x: c.x,
    y: c.y,
    angle: c.angle ?? new Float64Array(n),
    kind: c.kind ?? new Uint8Array(n).fill(KIND.critter),
    state: c.state ?? zeros,
    hp: c.hp ?? new Uint8Array(n).fill(100),
    owner: c.owner ?? new Uint32Array(n),
    score: c.score ?? null,
    meRow: me,
    meX,
    meY,
    mePid: client.playerId,
    size: arenaSize,
    starved: f.starved,
  };
}

/** A deterministic fake scene for ?preview (design screenshots without a server). */
function previewScene(t) {
  const rnd = mulberry32(7);
  const n = 150;
  const s = {
    count: n, ids: new Uint32Array(n), x: new Float64Array(n), y: new Float64Array(n),
    angle: new Float64Array(n), kind: new Uint8Array(n), state: new Uint8Array(n),
    hp: new Uint8Array(n).fill(100), owner: new Uint32Array(n), score: new Uint16Array(n),
    meRow: 0, meX: 0, meY: 0, mePid: 1, size: 100, starved: false,
  };
  for (let i = 0; i < n; i++) {
    s.ids[i] = (i + 1) << 8 | 1;
    const kind = i < 4 ? 0 : i < 7 ? 3 : i < 47 ? 2 : 1;
    s.kind[i] = kind;
    const a = rnd() * 6.28;
    const sp = kind === 1 ? 2 : kind === 3 ? 3 : 0;
    s.x[i] = 30 + rnd() * 45 + Math.cos(a + t * 0.3) * sp;
    s.y[i] = 25 + rnd() * 50 + Math.sin(a + t * 0.3) * sp;
    s.angle[i] = a + t * 0.3 + Math.PI / 2;
    s.state[i] = kind === 1 ? (rnd() < 0.4 ? 1 : 0) : kind === 3 ? 2 : 1;
    if (kind === 0) {
      s.owner[i] = i + 1;
      s.score[i] = [42, 17, 9, 3][i];
      s.hp[i] = [100, 64, 100, 30][i];
      names.set(i + 1, ["you", "SwiftOtter42", "BoldLynx17", "QuietHeron80"][i]);
    }
  }
  s.x[0] = 52; s.y[0] = 50; s.meX = 52; s.meY = 50; s.state[0] = 3; s.angle[0] = -0.5;
  s.x[1] = 60; s.y[1] = 44;
  s.x[2] = 44; s.y[2] = 57;
  s.x[3] = 63; s.y[3] = 58;
  s.x[4] = 47; s.y[4] = 43;
  return s;
}

function mulberry32(a) {
  return () => {
    a |= 0;
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// ------------------------------------------------------------------ drawing
let lastFrame = performance.now();
let hudAt = 0;

function frame() {
  const now = performance.now();
  const dt = Math.min(0.1, (now - lastFrame) / 1000);
  lastFrame = now;
  let scene = null;
  try {
    scene = buildScene();
  } catch (e) {
    console.error("gameserver demo: could not build the frame", e);
  }
  window.gameDemo.scene = scene;
  draw(scene, dt, now);
  if (now - hudAt > 250) {
    hudAt = now;
    updateHud();
    renderScores(scene);
  }
  requestAnimationFrame(frame);
}

function draw(scene, dt, now) {
  ctx.setTransform(1, 0, 0, 1, 0, 0);
  ctx.fillStyle = COLORS.bg;
  ctx.fillRect(0, 0, canvas.width, canvas.height);
  const size = scene ? scene.size : arenaSize;

  // own position: smoothed towards the predicted one (inputs advance it in tick steps)
  if (scene && scene.meX !== null) {
    if (!meDisplay.ready) {
      meDisplay.x = scene.meX;
      meDisplay.y = scene.meY;
      meDisplay.ready = true;
    }
    const k = 1 - Math.exp(-dt / 0.045);
    meDisplay.x += (scene.meX - meDisplay.x) * k;
    meDisplay.y += (scene.meY - meDisplay.y) * k;
    if (Math.hypot(scene.meX - meDisplay.x, scene.meY - meDisplay.y) > 8) {
      meDisplay.x = scene.meX; // a respawn: jump
      meDisplay.y = scene.meY;
    }
  }
  // camera follows the player (or shows the arena centre)
  const free = SPECTATE && !FOLLOW;
  const tx = free ? spectator.x : meDisplay.ready ? meDisplay.x : size / 2;
  const ty = free ? spectator.y : meDisplay.ready ? meDisplay.y : size / 2;
  if (!camera.ready) {
    camera.x = tx;
    camera.y = ty;
    camera.ready = true;
  }
  const ck = 1 - Math.exp(-dt / 0.18);
  camera.x += (tx - camera.x) * ck;
  camera.y += (ty - camera.y) * ck;
  const scale = viewScale();
  // keep the arena filling the view where it is larger than the view (no wasted screen)
  const hw = cssW / 2 / scale;
  const hh = cssH / 2 / scale;
  const cx = size > 2 * hw ? Math.min(Math.max(camera.x, hw - 2), size - hw + 2) : size / 2;
  const cy = size > 2 * hh ? Math.min(Math.max(camera.y, hh - 2), size - hh + 2) : size / 2;
  const s = scale * dpr;
  const ox = canvas.width / 2 - cx * s;
  const oy = canvas.height / 2 - cy * s;
  const toScreen = (wx, wy) => [(wx * s + ox) / dpr, (wy * s + oy) / dpr];

  // floor, grid, walls (world units)
  ctx.setTransform(s, 0, 0, s, ox, oy);
  ctx.fillStyle = COLORS.floor;
  ctx.fillRect(0, 0, size, size);
  ctx.lineWidth = 1 / s * dpr;
  const x0 = Math.max(0, Math.floor((cx - hw) / 5) * 5);
  const x1 = Math.min(size, cx + hw);
  const y0 = Math.max(0, Math.floor((cy - hh) / 5) * 5);
  const y1 = Math.min(size, cy + hh);
  for (const major of [false, true]) {
    ctx.beginPath();
    for (let gx = x0; gx <= x1; gx += 5) {
      if ((gx % 25 === 0) !== major) continue;
      ctx.moveTo(gx, 0);
      ctx.lineTo(gx, size);
    }
    for (let gy = y0; gy <= y1; gy += 5) {
      if ((gy % 25 === 0) !== major) continue;
      ctx.moveTo(0, gy);
      ctx.lineTo(size, gy);
    }
    ctx.strokeStyle = major ? COLORS.gridMajor : COLORS.grid;
    ctx.stroke();
  }
  // walls: a soft wide stroke under a thin bright one (no shadowBlur: costly without a GPU)
  ctx.strokeStyle = "rgba(56, 189, 248, 0.12)";
  ctx.lineWidth = (10 * dpr) / s;
  ctx.strokeRect(0, 0, size, size);
  ctx.strokeStyle = COLORS.wall;
  ctx.lineWidth = (2 * dpr) / s;
  ctx.strokeRect(0, 0, size, size);

  if (!scene) {
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.fillStyle = COLORS.muted;
    ctx.font = "600 15px ui-sans-serif, system-ui, sans-serif";
    ctx.textAlign = "center";
    ctx.fillText(client && client.status === "connected" ? "waiting for the first snapshot…" : "", cssW / 2, cssH / 2 + 60);
    return;
  }

  const { count, x, y, kind, state, angle, hp, owner } = scene;
  const t = now / 1000;
  const vx0 = cx - hw - 2;
  const vx1 = cx + hw + 2;
  const vy0 = cy - hh - 2;
  const vy1 = cy + hh + 2;
  view.cx = cx;
  view.cy = cy;
  view.s = s;
  view.ox = ox;
  view.oy = oy;
  const visible = (i) => x[i] >= vx0 && x[i] <= vx1 && y[i] >= vy0 && y[i] <= vy1;

  // orbs: one glow path and one core path for all of them
  ctx.beginPath();
  for (let i = 0; i < count; i++) {
    if (kind[i] !== KIND.orb || !visible(i)) continue;
    const r = 0.7 + 0.1 * Math.sin(t * 3 + i);
    ctx.moveTo(x[i] + r, y[i]);
    ctx.arc(x[i], y[i], r, 0, Math.PI * 2);
  }
  ctx.fillStyle = COLORS.orbGlow;
  ctx.fill();
  ctx.beginPath();
  for (let i = 0; i < count; i++) {
    if (kind[i] !== KIND.orb || !visible(i)) continue;
    ctx.moveTo(x[i] + 0.38, y[i]);
    ctx.arc(x[i], y[i], 0.38, 0, Math.PI * 2);
  }
  ctx.fillStyle = COLORS.orb;
  ctx.fill();

  // critters: bodies by state (resting dim, moving, fleeing bright) with a heading nose
  for (const [st, color] of [[STATE.resting, COLORS.critterRest], [STATE.moving, COLORS.critter], [STATE.rushing, COLORS.critterFlee]]) {
    ctx.beginPath();
    for (let i = 0; i < count; i++) {
      if (kind[i] !== KIND.critter || state[i] !== st || !visible(i)) continue;
      const r = 0.55 + 0.15 * (hp[i] / 100);
      ctx.moveTo(x[i] + r, y[i]);
      ctx.arc(x[i], y[i], r, 0, Math.PI * 2);
    }
    ctx.fillStyle = color;
    ctx.fill();
  }
  ctx.beginPath();
  for (let i = 0; i < count; i++) {
    if (kind[i] !== KIND.critter || state[i] === STATE.resting || !visible(i)) continue;
    const a = angle[i];
    ctx.moveTo(x[i] + Math.cos(a) * 0.95, y[i] + Math.sin(a) * 0.95);
    ctx.arc(x[i] + Math.cos(a) * 0.95, y[i] + Math.sin(a) * 0.95, 0.16, 0, Math.PI * 2);
  }
  ctx.fillStyle = COLORS.critterFlee;
  ctx.fill();

  // hunters: red arrowheads, glowing when chasing
  for (let i = 0; i < count; i++) {
    if (kind[i] !== KIND.hunter || !visible(i)) continue;
    if (state[i] === STATE.rushing) {
      ctx.beginPath();
      ctx.arc(x[i], y[i], 2.1 + 0.25 * Math.sin(t * 8), 0, Math.PI * 2);
      ctx.fillStyle = COLORS.hunterGlow;
      ctx.fill();
    }
    arrow(x[i], y[i], angle[i], 1.25, COLORS.hunter);
  }

  // players: coloured discs with a heading notch; our own drawn last, highlighted
  const labels = [];
  const order = [];
  for (let i = 0; i < count; i++) if (kind[i] === KIND.player && i !== scene.meRow) order.push(i);
  if (scene.meRow !== null) order.push(scene.meRow);
  for (const i of order) {
    const mine = i === scene.meRow;
    const px = mine && meDisplay.ready ? meDisplay.x : x[i];
    const py = mine && meDisplay.ready ? meDisplay.y : y[i];
    if (!mine && !visible(i)) continue;
    const color = mine ? COLORS.me : `hsl(${playerHue(owner[i])} 80% 62%)`;
    if (state[i] === STATE.boosting) {
      ctx.beginPath();
      ctx.moveTo(px, py);
      ctx.lineTo(px - Math.cos(angle[i]) * 3.2, py - Math.sin(angle[i]) * 3.2);
      ctx.strokeStyle = mine ? "rgba(56,189,248,0.35)" : "rgba(226,232,240,0.22)";
      ctx.lineWidth = 1.4;
      ctx.lineCap = "round";
      ctx.stroke();
    }
    if (mine) {
      // a halo marks the local player (radial gradient: cheap, unlike shadowBlur)
      const g = ctx.createRadialGradient(px, py, 0.9, px, py, 2.4);
      g.addColorStop(0, "rgba(56, 189, 248, 0.45)");
      g.addColorStop(1, "rgba(56, 189, 248, 0)");
      ctx.beginPath();
      ctx.arc(px, py, 2.4, 0, Math.PI * 2);
      ctx.fillStyle = g;
      ctx.fill();
    }
    ctx.beginPath();
    ctx.arc(px, py, 1.05, 0, Math.PI * 2);
    ctx.fillStyle = color;
    ctx.fill();
    ctx.lineWidth = mine ? 0.22 : 0.14;
    ctx.strokeStyle = mine ? "#e0f2fe" : "rgba(10,14,22,0.85)";
    ctx.stroke();
    ctx.beginPath();
    ctx.arc(px + Math.cos(angle[i]) * 0.62, py + Math.sin(angle[i]) * 0.62, 0.24, 0, Math.PI * 2);
    ctx.fillStyle = "#0a0e16";
    ctx.fill();
    labels.push({ i, px, py, mine, color });
  }

  // screen-space text and bars (crisp at any zoom)
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  ctx.textAlign = "center";
  ctx.textBaseline = "bottom";
  for (const { i, px, py, mine, color } of labels) {
    const [sx, sy] = toScreen(px, py);
    const rpx = 1.05 * scale;
    const name = names.get(owner[i]) ?? (mine ? myName : `player ${owner[i]}`);
    ctx.font = `${mine ? 700 : 600} 12px ui-sans-serif, system-ui, -apple-system, sans-serif`;
    ctx.lineWidth = 3;
    ctx.strokeStyle = "rgba(10,14,22,0.85)";
    ctx.strokeText(name, sx, sy - rpx - 7);
    ctx.fillStyle = mine ? "#e0f2fe" : `hsl(${playerHue(owner[i])} 90% 76%)`; // readable on dark
    ctx.fillText(name, sx, sy - rpx - 7);
    if (hp[i] < 100) {
      const w = 30;
      ctx.fillStyle = "rgba(10,14,22,0.8)";
      ctx.fillRect(sx - w / 2 - 1, sy + rpx + 5, w + 2, 5);
      ctx.fillStyle = hp[i] > 50 ? "#34d399" : hp[i] > 25 ? "#fbbf24" : "#f43f5e";
      ctx.fillRect(sx - w / 2, sy + rpx + 6, (w * hp[i]) / 100, 3);
    }
  }

  // zaps: a ring where each one was aimed (bright: it hit)
  ctx.lineWidth = 2;
  for (let k = zaps.length - 1; k >= 0; k--) {
    const z = zaps[k];
    const age = (now - z.born) / 1000;
    if (age > 0.4) {
      zaps.splice(k, 1);
      continue;
    }
    const [sx, sy] = toScreen(z.x, z.y);
    ctx.globalAlpha = 1 - age / 0.4;
    ctx.strokeStyle = z.hit ? (z.mine ? COLORS.me : COLORS.text) : COLORS.muted;
    ctx.beginPath();
    ctx.arc(sx, sy, ZAP_RADIUS * scale * (1 + age), 0, Math.PI * 2);
    ctx.stroke();
  }
  ctx.globalAlpha = 1;

  // floating pickup texts
  ctx.font = "800 15px ui-sans-serif, system-ui, sans-serif";
  for (let k = toasts.length - 1; k >= 0; k--) {
    const tt = toasts[k];
    const age = (now - tt.born) / 1000;
    if (age > tt.life) {
      toasts.splice(k, 1);
      continue;
    }
    const [sx, sy] = toScreen(meDisplay.x, meDisplay.y);
    ctx.globalAlpha = 1 - age / tt.life;
    ctx.fillStyle = tt.color;
    ctx.fillText(tt.text, sx, sy - 34 - age * 40);
  }
  ctx.globalAlpha = 1;

  // event feed (bottom left)
  ctx.textAlign = "left";
  ctx.font = "500 12px ui-sans-serif, system-ui, sans-serif";
  let fy = isTouch ? cssH - 200 : cssH - 40;
  for (let k = feed.length - 1; k >= 0; k--) {
    const age = (now - feed[k].born) / 1000;
    if (age > 8) continue;
    ctx.globalAlpha = Math.min(1, 8 - age);
    ctx.fillStyle = COLORS.muted;
    ctx.fillText(feed[k].text, 16, fy);
    fy -= 18;
  }
  ctx.globalAlpha = 1;

  // not live (reconnecting, closed, stalled): dim the stale world so it cannot look alive
  const age = client ? client.stats.tickAge : 0;
  if (client && (client.status !== "connected" || (age !== null && age > 2000))) {
    ctx.fillStyle = "rgba(10, 14, 22, 0.55)";
    ctx.fillRect(0, 0, cssW, cssH);
  }

  // mini-map (bottom right; not on phones, where the touch controls live there)
  if (!isTouch && cssW >= 600) drawMinimap(scene, size);
}

/** CSS pixels per world unit: ~VIEW_UNITS across the shorter side, more on big screens. */
function viewScale() {
  return (Math.min(cssW, cssH) / VIEW_UNITS) * Math.max(1, Math.min(cssW, cssH) / 900);
}

function arrow(px, py, a, r, color) {
  const c = Math.cos(a);
  const s = Math.sin(a);
  ctx.beginPath();
  ctx.moveTo(px + c * r * 1.25, py + s * r * 1.25);
  ctx.lineTo(px - c * r * 0.8 - s * r * 0.85, py - s * r * 0.8 + c * r * 0.85);
  ctx.lineTo(px - c * r * 0.35, py - s * r * 0.35);
  ctx.lineTo(px - c * r * 0.8 + s * r * 0.85, py - s * r * 0.8 - c * r * 0.85);
  ctx.closePath();
  ctx.fillStyle = color;
  ctx.fill();
  ctx.lineWidth = 0.12;
  ctx.strokeStyle = "#fecdd3";
  ctx.stroke();
}

function drawMinimap(scene, size) {
  const m = Math.min(140, Math.max(90, Math.min(cssW, cssH) * 0.18));
  const mx = cssW - m - 16;
  const my = cssH - m - 40;
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  ctx.fillStyle = "rgba(17, 24, 39, 0.78)";
  ctx.strokeStyle = "rgba(148, 163, 184, 0.2)";
  ctx.lineWidth = 1;
  roundRect(mx - 6, my - 6, m + 12, m + 12, 10);
  ctx.fill();
  ctx.stroke();
  const k = m / size;
  const { count, x, y, kind, owner } = scene;
  const dot = (i, r, color) => {
    ctx.fillStyle = color;
    ctx.fillRect(mx + x[i] * k - r / 2, my + y[i] * k - r / 2, r, r);
  };
  for (let i = 0; i < count; i++) {
    if (kind[i] === KIND.orb) dot(i, 1.5, "rgba(251,191,36,0.7)");
    else if (kind[i] === KIND.critter) dot(i, 1.5, "rgba(52,211,153,0.55)");
  }
  for (let i = 0; i < count; i++) {
    if (kind[i] === KIND.hunter) dot(i, 3, COLORS.hunter);
    else if (kind[i] === KIND.player && i !== scene.meRow) dot(i, 3.5, `hsl(${playerHue(owner[i])} 80% 62%)`);
  }
  if (meDisplay.ready) {
    ctx.fillStyle = COLORS.me;
    ctx.beginPath();
    ctx.arc(mx + meDisplay.x * k, my + meDisplay.y * k, 3, 0, Math.PI * 2);
    ctx.fill();
  }
  // the camera's view rectangle, clipped to the map
  const scale = viewScale();
  const rx0 = Math.max(0, view.cx - cssW / 2 / scale);
  const ry0 = Math.max(0, view.cy - cssH / 2 / scale);
  const rx1 = Math.min(size, view.cx + cssW / 2 / scale);
  const ry1 = Math.min(size, view.cy + cssH / 2 / scale);
  ctx.strokeStyle = "rgba(56,189,248,0.45)";
  if (rx1 > rx0 && ry1 > ry0) ctx.strokeRect(mx + rx0 * k, my + ry0 * k, (rx1 - rx0) * k, (ry1 - ry0) * k);
}

function roundRect(x, y, w, h, r) {
  ctx.beginPath();
  ctx.moveTo(x + r, y);
  ctx.arcTo(x + w, y, x + w, y + h, r);
  ctx.arcTo(x + w, y + h, x, y + h, r);
  ctx.arcTo(x, y + h, x, y, r);
  ctx.arcTo(x, y, x + w, y, r);
  ctx.closePath();
}

if (PREVIEW) {
  ui.status.textContent = "preview";
  ui.status.className = "pill pill-connected";
  ui.ping.textContent = "23 ms";
  ui.age.textContent = "41 ms";
  ui.bytes.textContent = "3.2 kB/s";
  window.gameDemo.scene = previewScene(0);
  pushFeed("SwiftOtter42 joined");
  pushFeed("joined room 1 as you");
}
requestAnimationFrame(frame);
