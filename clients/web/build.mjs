// Build dist/gameclient.js: one ES module (the library + @msgpack/msgpack), served as is.
// Usage: node build.mjs [--outfile PATH]   (the freshness test rebuilds into a temp file with
// exactly these options and compares bytes with the committed bundle).
import { build } from "esbuild";
import { fileURLToPath } from "node:url";
import path from "node:path";

const here = path.dirname(fileURLToPath(import.meta.url));
const i = process.argv.indexOf("--outfile");
const outfile = i > 0 ? path.resolve(process.argv[i + 1]) : path.join(here, "dist", "gameclient.js");

/** The one set of esbuild options (keep the bundle reproducible: no timestamps, no paths). */
export const options = {
  entryPoints: [path.join(here, "src", "index.js")],
  bundle: true,
  format: "esm",
  platform: "browser",
  target: ["es2020"],
  minify: false,
  sourcemap: false,
  legalComments: "inline",
  charset: "utf8",
  absWorkingDir: here,
  banner: { js: "// gameserver web client (dist bundle: built by clients/web/build.mjs from src/; do not edit)" },
  logLevel: "warning",
};

await build({ ...options, outfile });
