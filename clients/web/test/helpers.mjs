// Shared helpers of the node tests.
import { readFileSync, readdirSync, existsSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

export const HERE = path.dirname(fileURLToPath(import.meta.url));
export const ROOT = path.resolve(HERE, "..", "..", "..");
export const VECTORS = path.join(ROOT, "protocol", "vectors");

export function hexToBytes(hex) {
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.substr(i * 2, 2), 16);
  return out;
}

export function bytesToHex(bytes) {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** The bytes of one element of a typed array, as hex (little-endian host order). */
export function elemHex(arr, i) {
  const w = arr.BYTES_PER_ELEMENT;
  return bytesToHex(new Uint8Array(arr.buffer, arr.byteOffset + i * w, w));
}

/** Every vector file: [{name, data}] (empty when the folder does not exist yet). */
export function vectorFiles() {
  if (!existsSync(VECTORS)) return [];
  return readdirSync(VECTORS)
    .filter((f) => f.endsWith(".json"))
    .sort()
    .map((f) => ({ name: f, data: JSON.parse(readFileSync(path.join(VECTORS, f), "utf8")) }));
}

/** Copy the replica state (ids + columns) into plain arrays, for unchanged-state checks. */
export function stateOf(replica) {
  const cols = {};
  for (const [k, v] of Object.entries(replica.columns)) cols[k] = Array.from(v);
  return { tick: replica.tick, ids: Array.from(replica.ids), cols };
}
