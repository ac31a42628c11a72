// Runs the node firmware suite (tests/mpy/suite.py) on real MicroPython: the official
// WebAssembly port under node. Copies every file of firmware/bms into the interpreter's
// file system as /lib/bms, runs the suite, exits non-zero when a scenario fails, and writes
// the suite's allocation figures as JSON to the path given as the first argument or in
// BMS_MPY_BENCH (if either is set). Then the chip driver tests (tests/mpy/chips.py): the
// fakes of gateway/sim/chips and tests/firmware/test_chip_*.py, copied as they are.
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
    if (!line.startsWith("BENCH")) {
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
// The chip fakes and the driver tests, under their CPython package names (empty packages
// above them: the gateway's own __init__ files import CPython-only modules).
for (const dir of ["/lib/gateway", "/lib/gateway/sim", "/lib/tests", "/lib/tests/firmware"]) {
  mp.FS.mkdir(dir);
  mp.FS.writeFile(`${dir}/__init__.py`, "");
}
copyTree(join(root, "gateway", "sim", "chips"), "/lib/gateway/sim/chips");
const chipTests = [];
for (const name of readdirSync(join(root, "tests", "firmware")).sort()) {
  if (name === "allocation.py" || name === "gateway_commands.py" || /^test_chip_.*\.py$/.test(name)) {
    mp.FS.writeFile(`/lib/tests/firmware/${name}`, readFileSync(join(root, "tests", "firmware", name)));
    if (name.startsWith("test_chip_")) {
      chipTests.push(name.slice(0, -3));
    }
  }
}

let crashed = false;
try {
  mp.runPython(readFileSync(join(here, "suite.py"), "utf8"));
} catch (err) {
  crashed = true;
  process.stderr.write(`suite crashed: ${err}\n`);
}

try {
  mp.runPython(readFileSync(join(here, "chips.py"), "utf8") + `\nrun_all(${JSON.stringify(chipTests)})\n`);
} catch (err) {
  crashed = true;
  process.stderr.write(`chip suite crashed: ${err}\n`);
}

const failed = lines.filter((line) => line.startsWith("FAIL "));
const result = lines.find((line) => line.startsWith("RESULT "));
const bench = lines.find((line) => line.startsWith("BENCH "));
const chipBench = lines.find((line) => line.startsWith("BENCH_CHIPS "));
const chipResult = lines.find((line) => line.startsWith("RESULT_CHIPS "));
if (bench) {
  const figures = JSON.parse(bench.slice("BENCH ".length));
  if (chipBench) {
    figures.chips_alloc_bytes = JSON.parse(chipBench.slice("BENCH_CHIPS ".length));
  }
  process.stdout.write(`allocation figures: ${JSON.stringify(figures)}\n`);
  if (benchPath) {
    writeFileSync(benchPath, JSON.stringify(figures, null, 2) + "\n");
    process.stdout.write(`written to ${relative(process.cwd(), benchPath) || benchPath}\n`);
  }
}
if (crashed || failed.length > 0 || !result || !bench || !chipResult) {
  process.stderr.write(`MicroPython suite failed (${failed.length} scenario(s))\n`);
  process.exitCode = 1;
}
