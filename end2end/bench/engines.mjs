// Two-engine benchmark: Lookout reading two Docker engines, each with the containers
// scripts/engines_bench.sh started (50 each, 100 lines/s each, all followed for history).
//
// Prints lookout's RSS and CPU over the window, and the time from a container's line (the
// engine's timestamp, taken when it reads the line from the container's pipe) to its arrival
// in a browser (Chromium, a WebSocket opened by a page of Lookout's, one service of each
// engine followed), as p50/p99 per engine. It asserts nothing.
//
//   ENGINES_BENCH_B=unix:///path/to/second.sock node bench/engines.mjs   (from end2end/)
//   env: LOOKOUT_BIN, ENGINES_BENCH_PROJECT (ebench), ENGINES_BENCH_SECS (30)
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const here = path.dirname(fileURLToPath(import.meta.url));
const bin = path.resolve(here, "..", process.env.LOOKOUT_BIN ?? "../target/release/lookout");
const project = process.env.ENGINES_BENCH_PROJECT ?? "ebench";
const secs = Number(process.env.ENGINES_BENCH_SECS ?? 30);
const second = process.env.ENGINES_BENCH_B;
const local = process.env.DOCKER_HOST ?? "unix:///var/run/docker.sock";
if (!second) throw new Error("ENGINES_BENCH_B names the second engine (unix:///…/docker.sock)");

const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "lookout-engines-bench-"));
const hz = 100; // USER_HZ on Linux

function cpuTicks(pid) {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return Number(fields[11]) + Number(fields[12]); // utime + stime
}

function rssMiB(pid) {
  const line = fs.readFileSync(`/proc/${pid}/status`, "utf8").split("\n").find((l) => l.startsWith("VmRSS:"));
  return Number(line.split(/\s+/)[1]) / 1024;
}

function pct(xs, p) {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(p * s.length) - 1))];
}

async function startServer() {
  const args = [
    "--listen", "127.0.0.1:0", "--project", project, "--data-dir", dataDir,
    "--engine", `local=${local}`, "--engine", `b=${second}`,
  ];
  const child = spawn(bin, args, { stdio: ["ignore", "pipe", "ignore"] });
  const url = await new Promise((resolve, reject) => {
    let out = "";
    child.stdout.on("data", (d) => {
      out += d;
      const m = out.match(/listening on (http:\/\/[\d.:]+)/);
      if (m) resolve(m[1]);
    });
    child.on("exit", (code) => reject(new Error(`lookout exited with ${code}`)));
  });
  return { child, url };
}

async function waitForEngines(url) {
  const deadline = Date.now() + 60_000;
  for (;;) {
    // Until an engine answers, the listing is an error ("not yet connected"): ask again.
    const res = await fetch(`${url}/api/projects`);
    const projects = res.ok ? await res.json() : [];
    const of = (e) => projects.filter((p) => p.engine === e && p.name === project).flatMap((p) => p.services);
    const [a, b] = [of("local"), of("b")];
    if (a.length >= 50 && b.length >= 50) return [a.length, b.length];
    if (Date.now() > deadline) throw new Error(`both engines' ${project} not listed: ${a.length}, ${b.length}`);
    await new Promise((r) => setTimeout(r, 500));
  }
}

const { child, url } = await startServer();
try {
  const [na, nb] = await waitForEngines(url);
  // Every container is followed (history): let the start's backfill settle first.
  await new Promise((r) => setTimeout(r, 5_000));
  const browser = await chromium.launch({
    executablePath: "/usr/bin/chromium",
    args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
  const page = await browser.newPage();
  await page.goto(`${url}/`);
  const [cpu0, t0] = [cpuTicks(child.pid), Date.now()];
  const rss = [];
  const sampler = setInterval(() => rss.push(rssMiB(child.pid)), 1_000);
  const lags = await page.evaluate(async ({ project, secs }) => {
    const lags = { local: [], b: [] };
    const follow = (engine) => new Promise((resolve) => {
      const ws = new WebSocket(`ws://${location.host}/ws`);
      ws.onopen = () => ws.send(JSON.stringify({ type: "subscribe", engine, project, service: "w1", tail: 0 }));
      ws.onmessage = (m) => {
        const now = Date.now();
        const msg = JSON.parse(m.data);
        if (msg.type !== "lines") return;
        for (const l of msg.lines) lags[engine].push(now - Number(l.cursor.split("-")[0]) / 1e6);
      };
      setTimeout(() => { ws.close(); resolve(); }, secs * 1000);
    });
    await Promise.all([follow("local"), follow("b")]);
    return lags;
  }, { project, secs });
  clearInterval(sampler);
  const cpu = ((cpuTicks(child.pid) - cpu0) / hz) / ((Date.now() - t0) / 1000) * 100;
  await browser.close();
  console.log(`engines bench: ${na} + ${nb} containers at ~100 lines/s each, ${secs} s window, ${os.cpus().length} cores`);
  console.log(`| figure | value |`);
  console.log(`|---|---|`);
  console.log(`| lookout CPU (one core = 100%) | ${cpu.toFixed(1)}% |`);
  console.log(`| lookout RSS, median / max | ${pct(rss, 0.5).toFixed(1)} / ${Math.max(...rss).toFixed(1)} MiB |`);
  for (const e of ["local", "b"]) {
    const xs = lags[e];
    console.log(`| ${e}: line to browser, p50 / p99 (${xs.length} lines) | ${pct(xs, 0.5).toFixed(1)} / ${pct(xs, 0.99).toFixed(1)} ms |`);
  }
} finally {
  child.kill("SIGTERM");
  fs.rmSync(dataDir, { recursive: true, force: true });
}
