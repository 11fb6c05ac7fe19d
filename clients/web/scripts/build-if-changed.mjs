// `make web` (and so `make run` and `make test`): install and build the web client only when what goes into it
// changed since the last time. A restart with nothing changed takes a fraction of a second instead of the ~30 s of
// `npm ci` and `tsc` + `vite build` on a small machine.
//
// Two fingerprints (SHA-256), kept under node_modules/.cache/chat-web/ (so `npm ci`, which empties node_modules,
// also forgets them):
// - packages: package-lock.json and the Node.js version; when it changes, `npm ci`;
// - build: every file under src/ and public/, index.html, package.json, package-lock.json, the TypeScript, Vite,
//   Vitest and Biome configurations, and the Node.js version; when it changes, or dist/index.html is missing,
//   `npm run build` (tsc --noEmit, then vite build).
// `--force` does both regardless.

import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const cache = join(root, "node_modules", ".cache", "chat-web");
const PACKAGE_INPUTS = ["package-lock.json"];
const BUILD_INPUTS = [
  "src",
  "public",
  "index.html",
  "package.json",
  "package-lock.json",
  "tsconfig.json",
  "vite.config.ts",
  "vitest.config.ts",
  "biome.jsonc",
];
const force = process.argv.includes("--force");

/** Every file under `path` (or `path` itself), sorted, so the fingerprint does not depend on directory order. */
function files(path) {
  if (!existsSync(path)) return [];
  if (!statSync(path).isDirectory()) return [path];
  return readdirSync(path)
    .sort()
    .flatMap((name) => files(join(path, name)));
}

/** SHA-256 over each input file's path and content, and the Node.js version. */
function fingerprint(inputs) {
  const hash = createHash("sha256").update(`node ${process.version}\0`);
  for (const file of inputs.flatMap((input) => files(join(root, input)))) {
    hash
      .update(`${relative(root, file)}\0`)
      .update(readFileSync(file))
      .update("\0");
  }
  return hash.digest("hex");
}

function stamp(name) {
  const path = join(cache, name);
  return existsSync(path) ? readFileSync(path, "utf8") : null;
}

function remember(name, value) {
  mkdirSync(cache, { recursive: true });
  writeFileSync(join(cache, name), value);
}

function npm(...args) {
  execFileSync("npm", ["--prefix", root, ...args], { stdio: "inherit" });
}

const packages = fingerprint(PACKAGE_INPUTS);
if (force || stamp("packages") !== packages) {
  npm("ci", "--no-audit", "--no-fund");
  remember("packages", packages);
}

const build = fingerprint(BUILD_INPUTS);
if (!force && stamp("build") === build && existsSync(join(root, "dist", "index.html"))) {
  console.log("web client: up to date (clients/web/dist); `npm run --prefix clients/web build` builds it anyway");
} else {
  npm("run", "build");
  remember("build", build);
}
