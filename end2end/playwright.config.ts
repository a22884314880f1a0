import { defineConfig } from "@playwright/test";

// Runs against the real `lookout` binary and the real Compose fixture (see ../scripts/test.sh),
// in Debian's Chromium: Playwright never downloads a browser here.
const port = Number(process.env.LOOKOUT_E2E_PORT ?? 18181);
const bin = process.env.LOOKOUT_BIN ?? "../target/release/lookout";
const project = process.env.LOOKOUT_TEST_PROJECT ?? "lookout-test";
// History on disk, in a folder scripts/test.sh empties before each run.
const dataDir = process.env.LOOKOUT_E2E_DATA ?? "../target/e2e-history/main";

export default defineConfig({
  testDir: "tests",
  timeout: 60_000,
  expect: { timeout: 10_000 },
  fullyParallel: false,
  workers: 1,
  reporter: [["list"]],
  use: {
    baseURL: `http://127.0.0.1:${port}`,
    viewport: { width: 1280, height: 800 },
    launchOptions: {
      executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
      args: [
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-quic",
        "--no-first-run",
      ],
    },
  },
  webServer: {
    command: `${bin} --listen 127.0.0.1:${port} --project ${project} --data-dir ${dataDir}`,
    url: `http://127.0.0.1:${port}/healthz`,
    reuseExistingServer: false,
    stdout: "ignore",
    stderr: "pipe",
    timeout: 30_000,
  },
});
