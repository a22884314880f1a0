import { execFileSync, spawn } from "node:child_process";
import * as fs from "node:fs";
import { expect, test } from "@playwright/test";
import { containerId, e2ePort, engineSocket, freePort, HoldingProxy, marker, project, Server, writeToProbe } from "./fixture";

test("switching services shows only the new service's lines", async ({ page }) => {
  await page.goto(`/?project=${project}&service=web`);
  const log = page.getByRole("log");
  await expect(log.getByText(/web \w+ stdout line/).first()).toBeVisible();
  await page.getByRole("combobox", { name: "Service" }).selectOption(`${project}/json`);
  await expect(log.getByText(/level=/).first()).toBeVisible();
  // Over a few seconds of live lines from both services, none of web's shows up.
  for (let i = 0; i < 4; i++) {
    await expect(log.getByText(/web \w+ std(out|err) line/)).toHaveCount(0);
    await page.waitForTimeout(500);
  }
  await expect(page).toHaveURL(/service=json/);
});

test("tail size: the Lines choice sets how many lines come first", async ({ page }) => {
  // More lines than the largest choice below, whenever the fixture came up.
  const m = marker("tail");
  writeToProbe(`${m} %s\\n`, 1, ...Array.from({ length: 600 }, (_, i) => String(i + 1)));
  await page.goto(`/?project=${project}&service=probe`);
  await expect(page.getByRole("log").getByText(`${m} 600`, { exact: true })).toBeVisible();
  // The engine may still have been storing those lines when the page asked for its tail:
  // they then came live, on top of it. Asked again, the tail holds them all.
  await page.reload();
  await expect(page.getByRole("log").getByText(`${m} 600`, { exact: true })).toBeVisible();
  const lines = page.getByRole("combobox", { name: "Lines" });
  await expect(lines).toHaveValue("100");
  const held = async () => Number((await page.locator(".counter").textContent())!.split(" of ")[1].split(" ")[0]);
  expect(await held()).toBeLessThan(140);
  await lines.selectOption("500");
  await expect(page).toHaveURL(/tail=500/);
  // The view starts anew with 500 lines (live lines may come on top), where it had about
  // 100 before.
  await expect.poll(held).toBeGreaterThanOrEqual(500);
  expect(await held()).toBeLessThan(540);
  await lines.selectOption("100");
  await expect.poll(held).toBeLessThan(140);
});

test("download saves the lines in view with timestamp, replica and stream", async ({ page }) => {
  const m = marker("dl");
  await page.goto(`/?project=${project}&service=probe`);
  await expect(page.getByRole("status")).toHaveText(/Live/);
  // The second line is written once the first is shown, so surely stamped after it.
  writeToProbe(`%s out one\\n`, 1, m);
  await expect(page.getByRole("log").getByText(`${m} out one`)).toBeVisible();
  writeToProbe(`%s err two\\n`, 2, m);
  await expect(page.getByRole("log").getByText(`${m} err two`)).toBeVisible();
  await page.getByRole("searchbox", { name: "Filter" }).fill(m);
  await expect(page.getByText(/^2 of \d+ lines$/)).toBeVisible();
  const [download] = await Promise.all([page.waitForEvent("download"), page.getByRole("button", { name: "Download", exact: true }).click()]);
  expect(download.suggestedFilename()).toMatch(new RegExp(`^${project}-probe-\\d{4}-\\d\\d-\\d\\dT\\d\\d-\\d\\d-\\d\\d\\.log$`));
  const text = fs.readFileSync(await download.path(), "utf8");
  // The view's lifecycle markers (which pass any text filter) come as `event` lines.
  const all = text.trimEnd().split("\n");
  for (const e of all.filter((l) => / event /.test(l))) {
    expect(e).toMatch(new RegExp(`^\\d{4}-\\d\\d-\\d\\dT[\\d:.]+Z ${project}[-_]probe[-_]1 event probe #1 (started|exited)`));
  }
  const lines = all.filter((l) => !/ event /.test(l));
  expect(lines).toHaveLength(2);
  expect(lines[0]).toMatch(new RegExp(`^\\d{4}-\\d\\d-\\d\\dT[\\d:.]+Z ${project}[-_]probe[-_]1 stdout ${m} out one$`));
  expect(lines[1]).toMatch(new RegExp(`^\\d{4}-\\d\\d-\\d\\dT[\\d:.]+Z ${project}[-_]probe[-_]1 stderr ${m} err two$`));
});

test("the full log downloads from the engine, streamed by the server", async ({ page }) => {
  // oneshot ran once and said one thing: its whole log is known.
  await page.goto(`/?project=${project}&service=oneshot`);
  const [download] = await Promise.all([page.waitForEvent("download"), page.getByRole("link", { name: "Download full log" }).click()]);
  expect(download.suggestedFilename()).toMatch(new RegExp(`^${project}-oneshot-\\d{4}-\\d\\d-\\d\\dT\\d\\d-\\d\\d-\\d\\d\\.log$`));
  const text = fs.readFileSync(await download.path(), "utf8");
  const engine = execFileSync("docker", ["logs", containerId("oneshot")]).toString();
  expect(engine).toBe("oneshot: did its job\n");
  expect(text).toMatch(new RegExp(`^\\d{4}-\\d\\d-\\d\\dT[\\d:.]+Z ${project}[-_]oneshot[-_]1 stdout oneshot: did its job\n$`));
});

/** web writes 4 lines a second: a fixture just started holds fewer than a page of them. */
const webWroteAPage = { timeout: 45_000 };

test("clear empties the view, not the server", async ({ page }) => {
  await page.goto(`/?project=${project}&service=web`);
  const log = page.getByRole("log");
  await expect(log.locator(".row").first()).toBeVisible();
  await expect(page.getByText(/^(\d{3,}) of \1 lines$/)).toBeVisible(webWroteAPage);
  await page.getByRole("button", { name: "Clear" }).click();
  // web writes a few lines a second, so one may come between the click and the look.
  await expect(page.getByText(/^(\d) of \1 lines$/)).toBeVisible();
  // New lines still arrive, and a reload brings the tail back from the server.
  await expect(log.getByText(/web \w+ stdout line/).first()).toBeVisible({ timeout: 5000 });
  await page.reload();
  await expect.poll(async () => log.locator(".row").count()).toBeGreaterThan(10);
});

test("scrolling up stops following and offers to jump to the latest, with a count", async ({ page }) => {
  await page.goto(`/?project=${project}&service=web&tail=500`);
  const log = page.getByRole("log");
  await expect(page.getByText(/^(\d{3,}) of \1 lines$/)).toBeVisible(webWroteAPage);
  await expect(page.getByRole("button", { name: /Jump to latest/ })).toHaveCount(0);
  await log.hover();
  await page.mouse.wheel(0, -3000);
  const jump = page.getByRole("button", { name: /Jump to latest/ });
  await expect(jump).toBeVisible();
  await expect(jump).toHaveText(/Jump to latest \(\d+ new\)/, { timeout: 5000 });
  // The view stays where the user put it while lines arrive.
  const away = await log.evaluate((el) => el.scrollHeight - el.scrollTop - el.clientHeight);
  expect(away).toBeGreaterThan(1000);
  await jump.click();
  await expect(jump).toHaveCount(0);
  await expect
    .poll(async () => log.evaluate((el) => el.scrollHeight - el.scrollTop - el.clientHeight))
    .toBeLessThan(30);
});

test("pause holds the view still; resume follows again", async ({ page }) => {
  await page.goto(`/?project=${project}&service=web`);
  const log = page.getByRole("log");
  await expect(log.locator(".row").first()).toBeVisible();
  await page.getByRole("button", { name: "Pause" }).click();
  const before = await log.evaluate((el) => el.scrollTop);
  await page.waitForTimeout(2500);
  expect(await log.evaluate((el) => el.scrollTop)).toBe(before);
  await page.getByRole("button", { name: "Resume" }).click();
  await expect
    .poll(async () => log.evaluate((el) => el.scrollHeight - el.scrollTop - el.clientHeight))
    .toBeLessThan(30);
});

test("keyboard: / focuses the filter, Esc clears it, End jumps to the latest", async ({ page }) => {
  await page.goto(`/?project=${project}&service=web&q=stdout`);
  const filter = page.getByRole("searchbox", { name: "Filter" });
  await expect(filter).toHaveValue("stdout");
  // Enough lines that the view scrolls.
  await expect(page.getByText(/^\d{2,} of \d{3,} lines$/)).toBeVisible(webWroteAPage);
  await page.getByRole("log").click();
  await page.keyboard.press("/");
  await expect(filter).toBeFocused();
  await page.keyboard.press("Escape");
  await expect(filter).toHaveValue("");
  await expect(page).not.toHaveURL(/q=/);
  await page.getByRole("log").hover();
  await page.mouse.wheel(0, -3000);
  await expect(page.getByRole("button", { name: /Jump to latest/ })).toBeVisible();
  // Focus on a control that does not scroll, so only the app's own End handling can help.
  await page.getByRole("button", { name: "Pause" }).focus();
  await page.keyboard.press("End");
  await expect(page.getByRole("button", { name: /Jump to latest/ })).toHaveCount(0);
  await page.keyboard.press("Control+f");
  await expect(filter).toBeFocused();
});

test("the dropdown stays current as services stop and start, without a reload", async ({ page }) => {
  await page.goto(`/?project=${project}&service=web`);
  const option = page.getByRole("combobox", { name: "Service" }).locator(`option[value="${project}/json"]`);
  await expect(option).toHaveText(/json \(running\)/);
  execFileSync("docker", ["stop", "-t", "1", containerId("json")]);
  try {
    await expect(option).toHaveText(/json \(exited with code \d+\)/);
  } finally {
    execFileSync("docker", ["start", containerId("json")]);
  }
  await expect(option).toHaveText(/json \(running\)/);
});

test("a replica failing its health check shows in the dropdown, without a reload", async ({ page }) => {
  await page.goto(`/?project=${project}&service=json`);
  const option = page.getByRole("combobox", { name: "Service" }).locator(`option[value="${project}/web"]`);
  await expect(option).toHaveText("web (running, healthy, 2 replicas)");
  // The fixture's web is healthy while /tmp/unhealthy does not exist.
  execFileSync("docker", ["exec", containerId("web"), "touch", "/tmp/unhealthy"]);
  try {
    await expect(option).toHaveText("web (running, unhealthy, 2 replicas)");
  } finally {
    execFileSync("docker", ["exec", containerId("web"), "rm", "-f", "/tmp/unhealthy"]);
  }
  await expect(option).toHaveText("web (running, healthy, 2 replicas)");
});

test("the connection indicator tells the truth, and a restarted server is resumed without duplicates", async ({ page }) => {
  const server = await Server.start();
  let restarted: Server | undefined;
  try {
    const m = marker("resume");
    await page.goto(`${server.url}/?project=${project}&service=probe&q=${m}`);
    const status = page.getByRole("status");
    await expect(status).toHaveText(/Live/);
    await expect(status).toHaveClass(/conn-live/);
    writeToProbe(`%s 1\\n%s 2\\n`, 1, m, m);
    const log = page.getByRole("log");
    await expect(log.locator(".row", { hasText: m })).toHaveCount(2);

    await server.stop();
    await expect(status).toHaveText(/Reconnecting in \d+ s/);
    await expect(status).toHaveClass(/conn-reconnecting/);
    // Lines written while the server is down are not lost...
    writeToProbe(`%s 3\\n%s 4\\n`, 1, m, m);
    restarted = await Server.start(server.port);
    await expect(status).toHaveText(/Live/, { timeout: 20_000 });
    writeToProbe(`%s 5\\n`, 1, m);
    // ...and lines already shown are not shown twice.
    await expect(log.locator(".row", { hasText: m })).toHaveCount(5);
    const texts = await log.locator(".row .text", { hasText: m }).allTextContents();
    expect(texts).toEqual([1, 2, 3, 4, 5].map((i) => `${m} ${i}`));
  } finally {
    await server.stop();
    await restarted?.stop();
  }
});

test("until its socket opens the page says Connecting, then Live", async ({ page }) => {
  // The page comes through a proxy that holds its WebSocket's upgrade.
  const proxy = await HoldingProxy.start(e2ePort);
  try {
    await page.goto(`${proxy.url}/?project=${project}&service=probe`);
    const status = page.getByRole("status");
    await expect(status).toHaveText(/Connecting/);
    await expect.poll(() => proxy.waiting).toBeGreaterThan(0);
    // The socket is still not open: the page says nothing else.
    await expect(status).toHaveText(/Connecting/);
    await expect(page.getByRole("log").locator(".row")).toHaveCount(0);
    proxy.release();
    await expect(status).toHaveText(/Live/);
    const m = marker("connecting");
    writeToProbe(`%s\\n`, 1, m);
    await expect(page.getByRole("log").getByText(m)).toBeVisible();
  } finally {
    await proxy.close();
  }
});

test("until the server has answered the page's subscription the indicator says Connecting, not Live", async ({ page }) => {
  // Lookout reads the engine through a proxy that holds its log reads: the subscription then
  // waits for the service's tail, with the socket open and the server's hello in.
  const engine = await HoldingProxy.start(engineSocket, /^GET \S*\/containers\/[^/ ]+\/logs\?/);
  const server = await Server.start(0, "--engine", `local=tcp://127.0.0.1:${engine.port}`);
  try {
    await page.goto(`${server.url}/?project=${project}&service=probe`);
    const status = page.getByRole("status");
    await expect.poll(() => engine.waiting).toBeGreaterThan(0);
    // The listing came after the hello: the page has both, and still no answer.
    await expect(page.getByRole("combobox", { name: "Service" }).locator(`option[value="${project}/probe"]`)).toBeAttached();
    await expect(status).toHaveText(/Connecting/);
    engine.release();
    await expect(status).toHaveText(/Live/);
    const m = marker("answered");
    writeToProbe(`%s\\n`, 1, m);
    await expect(page.getByRole("log").getByText(m)).toBeVisible();
  } finally {
    await server.stop();
    await engine.close();
  }
});

test("a page opened while Lookout first reaches its engine waits for it, and is not refused", async ({ page }) => {
  // The engine's answers to GET /version are held: the server has not tried the engine yet
  // when the page subscribes.
  const engine = await HoldingProxy.start(engineSocket, /^GET \S*\/version/);
  const server = await Server.start(0, "--engine", `local=tcp://127.0.0.1:${engine.port}`);
  try {
    const refusals: string[] = [];
    let subscribed!: () => void;
    const sent = new Promise<void>((r) => (subscribed = r));
    page.on("websocket", (ws) => {
      ws.on("framesent", (f) => String(f.payload).includes('"type":"subscribe"') && subscribed());
      ws.on("framereceived", (f) => {
        if (String(f.payload).includes('"code":"engine_unreachable"')) refusals.push(String(f.payload));
      });
    });
    await page.goto(`${server.url}/?project=${project}&service=probe`);
    await sent;
    await expect.poll(() => engine.waiting).toBeGreaterThan(0);
    const status = page.getByRole("status");
    await expect(status).toHaveText(/Connecting/);
    engine.release();
    await expect(status).toHaveText(/Live/);
    const m = marker("first-check");
    writeToProbe(`%s\\n`, 1, m);
    await expect(page.getByRole("log").getByText(m)).toBeVisible();
    expect(refusals).toEqual([]);
  } finally {
    await server.stop();
    await engine.close();
  }
});

test("a page refused while the engine is down follows the service once the engine is back, without a reload", async ({ page }) => {
  // The engine is reached through a port nothing listens on yet.
  const port = await freePort();
  const server = await Server.start(0, "--engine", `local=tcp://127.0.0.1:${port}`);
  let engine: HoldingProxy | undefined;
  try {
    await page.goto(`${server.url}/?project=${project}&service=probe`);
    const unreachable = page.getByText(/^Docker engine unreachable/);
    await expect(unreachable.first()).toBeVisible();
    // It comes up, holding nothing back.
    engine = await HoldingProxy.start(engineSocket, /(?!)/, port);
    await expect(unreachable).toHaveCount(0, { timeout: 20_000 });
    await expect(page.getByRole("status")).toHaveText(/Live/);
    const m = marker("engine-back");
    writeToProbe(`%s\\n`, 1, m);
    await expect(page.getByRole("log").getByText(m)).toBeVisible();
  } finally {
    await server.stop();
    await engine?.close();
  }
});

test("after the last retry the indicator says Disconnected, and Reconnect brings it back", async ({ page }) => {
  const server = await Server.start();
  let restarted: Server | undefined;
  try {
    await page.goto(`${server.url}/?project=${project}&service=probe&retries=1`);
    const status = page.getByRole("status");
    await expect(status).toHaveText(/Live/);
    await server.stop();
    await expect(status).toHaveText(/Disconnected/, { timeout: 20_000 });
    await expect(status).toHaveClass(/conn-disconnected/);
    restarted = await Server.start(server.port);
    await status.getByRole("button", { name: "Reconnect" }).click();
    await expect(status).toHaveText(/Live/);
  } finally {
    await server.stop();
    await restarted?.stop();
  }
});

test("light and dark themes follow the system setting", async ({ browser }) => {
  const background = async (colorScheme: "light" | "dark") => {
    const context = await browser.newContext({ colorScheme });
    const page = await context.newPage();
    await page.goto(`/?project=${project}&service=web`);
    const bg = await page.evaluate(() => getComputedStyle(document.body).backgroundColor);
    await context.close();
    return bg;
  };
  expect(await background("light")).toBe("rgb(255, 255, 255)");
  expect(await background("dark")).toBe("rgb(13, 17, 23)");
});

test("with 50,000 lines held the DOM stays small and the first line is reachable", async ({ page }) => {
  test.setTimeout(120_000);
  const server = await Server.start(0, "--queue-lines", "100000");
  try {
    const m = marker("many");
    await page.goto(`${server.url}/?project=${project}&service=probe&tail=100`);
    await expect(page.getByRole("status")).toHaveText(/Live/);
    execFileSync("docker", ["exec", containerId("probe"), "sh", "-c", `seq 1 50000 | sed 's/^/${m} /' > /proc/1/fd/1`]);
    await page.getByRole("searchbox", { name: "Filter" }).fill(m);
    await expect(page.getByText(/^50000 of \d+ lines$/)).toBeVisible({ timeout: 60_000 });
    const rows = await page.locator(".row").count();
    expect(rows).toBeLessThan(500);
    const log = page.getByRole("log");
    await log.evaluate((el) => (el.scrollTop = 0));
    await log.dispatchEvent("scroll");
    await expect(log.getByText(`${m} 1`, { exact: true })).toBeVisible();
    await log.evaluate((el) => (el.scrollTop = el.scrollHeight));
    await log.dispatchEvent("scroll");
    await expect(log.getByText(`${m} 50000`, { exact: true })).toBeVisible();
    expect(await page.locator(".row").count()).toBeLessThan(500);
  } finally {
    await server.stop();
  }
});

test("following a service whose lines continue entries stays at the newest line as the oldest fall off", async ({ page }) => {
  test.setTimeout(180_000);
  // The page gets its 100,000 lines in one burst: the server's queue for it holds them all.
  const server = await Server.start(0, "--queue-lines", "200000", "--queue-bytes", String(256 << 20));
  try {
    const m = marker("cap");
    const probe = containerId("probe");
    await page.goto(`${server.url}/?project=${project}&service=probe&tail=100`);
    await expect(page.getByRole("status")).toHaveText(/Live/);
    // As many lines as the page holds, mixed as services write them: plain, JSON, logfmt, and
    // a stack trace's line continuing the logfmt line before it. At the cap, each append
    // drops the oldest lines, and with them, now and then, an entry's first line.
    const kinds = [
      `"%s line %d\\n"`,
      `"{\\"level\\":\\"info\\",\\"msg\\":\\"%s line %d\\"}\\n"`,
      `"time=2026-12-03T18:00:00Z level=warn msg=\\"%s line %d\\"\\n"`,
      `"\\tat com.example.shop.OrderService.place(%s line %d)\\n"`,
    ];
    const branches = kinds.map((k, i) => `k==${i} { printf ${k}, t, $1 }`).join("; ");
    execFileSync("docker", ["exec", probe, "sh", "-c", `seq 1 100000 | awk -v t=${m} '{ k = $1 % 4 } ${branches}' > /proc/1/fd/1`]);
    await expect(page.getByText(/^75000 of 75000 lines$/)).toBeVisible({ timeout: 90_000 });
    const jump = page.getByRole("button", { name: /Jump to latest/ });
    const last = page.getByRole("log").locator(".row .text").last();
    // The browser's scroll anchoring moved the view up a few rows now and then as rows were
    // replaced, which read as the user scrolling up: the view stopped following on its own.
    // The appends come as a service writes them: bursts through one process writing into the
    // probe, a moment apart (as the viewer bench has them, where the follow was lost).
    const writer = spawn("docker", ["exec", "-i", probe, "sh", "-c", "cat > /proc/1/fd/1"], { stdio: ["pipe", "ignore", "inherit"] });
    try {
      for (let i = 0; i < 60; i++) {
        writer.stdin.write(Array.from({ length: 1000 }, (_, n) => `${m}-${i} ${n + 1}\n`).join(""));
        await expect(last).toHaveText(`${m}-${i} 1000`);
        await expect(jump).toHaveCount(0);
        await page.waitForTimeout(200);
      }
    } finally {
      writer.stdin.end();
    }
  } finally {
    await server.stop();
  }
});

test("works at a phone's width", async ({ page }) => {
  await page.setViewportSize({ width: 390, height: 800 });
  await page.goto(`/?project=${project}&service=web`);
  await expect(page.getByRole("combobox", { name: "Service" })).toBeVisible();
  await expect(page.getByRole("searchbox", { name: "Filter" })).toBeVisible();
  await expect(page.getByRole("log").locator(".row").first()).toBeVisible();
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  expect(overflow).toBeLessThanOrEqual(0);
  // The header folds so that the log keeps most of the screen; More shows the rest.
  const header = await page.locator("header.toolbar").boundingBox();
  const log = await page.getByRole("log").boundingBox();
  expect(header!.height).toBeLessThanOrEqual(800 / 6);
  expect(log!.height).toBeGreaterThanOrEqual(800 * 0.6);
  await expect(page.getByRole("status")).toBeVisible();
  const regex = page.getByRole("checkbox", { name: "Regex" });
  await expect(regex).toBeHidden();
  const more = page.getByRole("button", { name: "More" });
  await expect(more).toHaveAttribute("aria-expanded", "false");
  await more.click();
  await expect(regex).toBeVisible();
  await expect(page.getByRole("combobox", { name: "Level" })).toBeVisible();
  await expect(page.getByRole("button", { name: "Less" })).toHaveAttribute("aria-expanded", "true");
  await page.getByRole("button", { name: "Less" }).click();
  await expect(regex).toBeHidden();
});

test("on a wide screen nothing is folded", async ({ page }) => {
  await page.setViewportSize({ width: 1280, height: 800 });
  await page.goto(`/?project=${project}&service=web`);
  await expect(page.getByRole("checkbox", { name: "Regex" })).toBeVisible();
  await expect(page.getByRole("combobox", { name: "Lines" })).toBeVisible();
  await expect(page.getByRole("button", { name: "More" })).toBeHidden();
});

test("a restart shows in the timeline: exited with its code, started, and the lines go on", async ({ page }) => {
  await page.goto(`/?project=${project}&service=json`);
  const log = page.getByRole("log");
  await expect(log.getByText(/level=/).first()).toBeVisible();
  // The tail may already show the current run's start (when it holds the whole log).
  const markers = log.locator(".row.lifecycle");
  const exited = markers.filter({ hasText: "json #1 exited with code 0" });
  const started = markers.filter({ hasText: "json #1 started" });
  // The tail's own markers may land a frame after its first line: counted once two reads
  // 300 ms apart agree.
  let before = [-1, -1];
  await expect
    .poll(
      async () => {
        const now = [await exited.count(), await started.count()];
        const settled = now[0] === before[0] && now[1] === before[1];
        before = now;
        return settled;
      },
      { intervals: [300] },
    )
    .toBe(true);
  execFileSync("docker", ["restart", "-t", "1", containerId("json")]);
  await expect(exited).toHaveCount(before[0] + 1);
  // The tail's own start marker may land a frame after its first line, so `before` may miss
  // it: what must hold is a start after the new exit.
  await expect
    .poll(async () => {
      const t = await markers.locator(".text").allTextContents();
      return t.lastIndexOf("json #1 started") > t.lastIndexOf("json #1 exited with code 0");
    })
    .toBe(true);
  expect(await started.count()).toBeGreaterThan(before[1]);
  const texts = await markers.locator(".text").allTextContents();
  expect(texts.lastIndexOf("json #1 exited with code 0")).toBeLessThan(texts.lastIndexOf("json #1 started"));
  // The restarted container's first line ("request 1") comes after the markers.
  const rows = log.locator(".row .text");
  await expect
    .poll(
      async () => {
        const all = await rows.allTextContents();
        const started = all.lastIndexOf("json #1 started");
        return started >= 0 && all.slice(started).some((t) => t.includes("request 1 handled "));
      },
      { timeout: 15_000 },
    )
    .toBe(true);
});
