// Runs the node firmware suite (tests/mpy/suite.py) on real MicroPython: the official
// WebAssembly port under node. Copies every file of firmware/bms into the interpreter's
// file system as /lib/bms, runs the suite, exits non-zero when a scenario fails, and writes
// the suite's allocation figures as JSON to the path given as the first argument or in
// BMS_MPY_BENCH (if either is set).
//
//   node tests/mpy/run.mjs [bench.json]

import { loadMicroPython } from "@micropython/micropython-webassembly-pyscript";
import { readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, "..", "..");
const firmware = join(root, "firmware", "bms");
const benchPath = process.argv[2] || process.env.BMS_MPY_BENCH || "";

const lines = [];
const mp = await loadMicroPython({
  heapsize: 2 * 1024 * 1024,
  linebuffer: true,
  stdout: (line) => {
    lines.push(line);
    if (!line.startsWith("BENCH ")) {
      process.stdout.write(line + "\n");
    }
  },
  stderr: (line) => process.stderr.write(line + "\n"),
});

function copyTree(src, dst) {
  mp.FS.mkdir(dst);
  for (const name of readdirSync(src).sort()) {
    const path = join(src, name);
    if (statSync(path).isDirectory()) {
      if (name !== "__pycache__") {
        copyTree(path, `${dst}/${name}`);
      }
    } else if (name.endsWith(".py")) {
      mp.FS.writeFile(`${dst}/${name}`, readFileSync(path));
    }
  }
}

mp.FS.mkdir("/lib");
copyTree(firmware, "/lib/bms");

let crashed = false;
try {
  mp.runPython(readFileSync(join(here, "suite.py"), "utf8"));
} catch (err) {
  crashed = true;
  process.stderr.write(`suite crashed: ${err}\n`);
}

const failed = lines.filter((line) => line.startsWith("FAIL "));
const result = lines.find((line) => line.startsWith("RESULT "));
const bench = lines.find((line) => line.startsWith("BENCH "));
if (bench) {
  const figures = JSON.parse(bench.slice("BENCH ".length));
  process.stdout.write(`allocation figures: ${JSON.stringify(figures)}\n`);
  if (benchPath) {
    writeFileSync(benchPath, JSON.stringify(figures, null, 2) + "\n");
    process.stdout.write(`written to ${relative(process.cwd(), benchPath) || benchPath}\n`);
  }
}
if (crashed || failed.length > 0 || !result || !bench) {
  process.stderr.write(`MicroPython suite failed (${failed.length} scenario(s))\n`);
  process.exitCode = 1;
}
