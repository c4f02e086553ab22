// The browser client (the shipped bundle, clients/web/dist/gameclient.js) in node, against a
// real server: join game "beat", send an input every ~33 ms, follow whatever happens for
// DURATION ms, then print one JSON line with what it saw (tests/gameserver/test_handover.py).
// Usage: node --experimental-websocket web_handover_probe.mjs BUNDLE URL DURATION_MS
const [bundle, url, duration] = process.argv.slice(2);
const { GameClient } = await import(bundle);

const quiet = { error: (...a) => console.error(...a), warn() {}, info() {} };
const c = new GameClient(url, { game: "beat", name: "web", WebSocket: globalThis.WebSocket, log: quiet,
  backoffInitial: 50, backoffMax: 300, maxAttempts: 5 });
const seen = { welcomes: [], ticks: [], beats: [], applied: [], sent: [], closes: [], fatal: null };
c.on("welcome", ({ welcome }) => {
  seen.welcomes.push({ player: welcome.player, entity: welcome.entity ?? null, room: welcome.room, url: c.url });
  if (seen.welcomes.length === 1) console.log(JSON.stringify({ ready: true }));
});
c.on("delta", ({ tick }) => seen.ticks.push(tick));
c.on("event", ({ kind, data }) => {
  if (kind === "beat") seen.beats.push(data.n);
  else if (kind === "applied") seen.applied.push(...data.s);
});
c.on("close", (e) => seen.closes.push(e.code));
c.on("fatal", (e) => (seen.fatal = e));
c.connect();
const timer = setInterval(() => {
  const s = c.sendInput({ dx: Math.random() * 2 - 1 });
  if (s) seen.sent.push(s);
}, 33);
await new Promise((r) => setTimeout(r, Number(duration)));
clearInterval(timer);
// let the last inputs be applied and reported
const end = Date.now() + 5000;
while (Date.now() < end && !seen.sent.every((s) => seen.applied.includes(s))) {
  await new Promise((r) => setTimeout(r, 50));
}
seen.redirects = c.stats.redirects;
seen.inputsResent = c.stats.inputsResent;
seen.status = c.status;
c.close();
console.log(JSON.stringify(seen));
process.exit(0);
