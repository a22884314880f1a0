import { execFileSync } from "node:child_process";
import { expect, test, type Page } from "@playwright/test";
import { containerId, marker, project, Server, TempProject, writeToProbe } from "./fixture";

/** Waits until history's search finds `query` `count` times (the follower read the lines). */
async function storedLines(page: Page, query: string, count: number): Promise<void> {
  await expect
    .poll(async () => {
      const r = await page.request.get(`/api/search?q=${encodeURIComponent(query)}`);
      return r.ok() ? (await r.json()).hits.length : -1;
    }, { message: `history holds ${count} lines matching ${query}`, timeout: 20_000 })
    .toBe(count);
}

/** A time as a `datetime-local` input takes it, in this machine's (and the browser's) zone. */
function localInput(ms: number): string {
  const d = new Date(ms);
  const p = (n: number) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}

test("Search finds a line in any service and opens that service at that moment, marked", async ({ page }) => {
  const m = marker("pin");
  writeToProbe(`before-${m}\\nneedle ${m}\\nafter-${m}\\n`);
  await storedLines(page, m, 3);

  // From another service's page.
  await page.goto(`/?project=${project}&service=web`);
  await expect(page.getByRole("status")).toHaveText(/Live/);
  await page.getByRole("searchbox", { name: "Search" }).fill(`needle ${m}`);
  await page.getByRole("searchbox", { name: "Search" }).press("Enter");
  const results = page.getByRole("region", { name: "Search results" });
  await expect(results).toContainText("1 line matches.");
  const hit = results.getByRole("button", { name: new RegExp(`needle ${m}`) });
  await expect(hit).toContainText(`${project}/probe`);
  await expect(hit.locator("mark")).toHaveText([/needle/i, m]);

  await hit.click();
  await expect(page).toHaveURL(/service=probe/);
  await expect(page).toHaveURL(/at=/);
  await expect(results).toHaveCount(0);
  const log = page.getByRole("log");
  const marked = log.locator('[aria-current="true"]');
  await expect(marked).toContainText(`needle ${m}`);
  await expect(marked).toBeInViewport();
  await expect(log.getByText(`before-${m}`)).toBeVisible();
  await expect(log.getByText(`after-${m}`)).toBeVisible();
  await expect(page.getByText("Showing history around the line found")).toBeVisible();

  // Follow live: the live end again, and new lines arrive.
  await page.getByRole("button", { name: "Follow live" }).click();
  await expect(page).not.toHaveURL(/at=/);
  await expect(page.getByRole("status")).toHaveText(/Live/);
  const later = marker("later");
  writeToProbe(`%s\\n`, 1, later);
  await expect(log.getByText(later)).toBeVisible();
  await expect(log.locator('[aria-current="true"]')).toHaveCount(0);
});

test("a malformed search says where it went wrong", async ({ page }) => {
  await page.goto(`/?project=${project}&service=probe`);
  await page.getByRole("searchbox", { name: "Search" }).fill('"unclosed');
  await page.getByRole("searchbox", { name: "Search" }).press("Enter");
  await expect(page.getByRole("region", { name: "Search results" })).toContainText(/Search failed: .*at character 1/);
});

test("From and To show a past window of the service from its start or end; Follow live returns", async ({ page }) => {
  const m = marker("window");
  // The window holds more lines than the live view's tail (100), so where the view stands
  // in it matters: it must not stay where the live end left it.
  const start = Math.floor(Date.now() / 1000) * 1000;
  await expect.poll(() => Date.now() - start, { timeout: 5_000 }).toBeGreaterThan(1000);
  writeToProbe(`filler-${m}-%s\\n`, 1, ...Array.from({ length: 300 }, (_, i) => String(i + 1)));
  writeToProbe(`early-${m}\\n`);
  await storedLines(page, `early-${m}`, 1);
  await storedLines(page, `filler-${m}`, 300);
  // A whole second after the early line, and before the late one.
  await page.waitForTimeout(1100);
  const cut = Math.floor(Date.now() / 1000) * 1000;
  await expect.poll(() => Date.now() - cut, { timeout: 5_000 }).toBeGreaterThan(1100);
  writeToProbe(`late-${m}\\n`);
  await storedLines(page, `late-${m}`, 1);

  await page.goto(`/?project=${project}&service=probe`);
  const log = page.getByRole("log");
  await expect(log.getByText(`late-${m}`)).toBeVisible();

  // Only To: the window ends at To, and the view stands at its end.
  await page.getByLabel("To", { exact: true }).fill(localInput(cut));
  await expect(page).toHaveURL(/to=/);
  await expect(log.getByText(`early-${m}`)).toBeInViewport();
  await expect(log.getByText(`late-${m}`)).toHaveCount(0);
  await expect(page.getByText(/Showing history from the oldest kept to/)).toBeVisible();
  const download = page.getByRole("link", { name: "Download window" });
  await expect(download).toHaveAttribute("href", /until=/);
  const body = await (await page.request.get((await download.getAttribute("href"))!)).text();
  expect(body).toContain(`early-${m}`);
  expect(body).not.toContain(`late-${m}`);

  // From as well: the window starts at From, and the view stands at its start.
  await page.getByLabel("From", { exact: true }).fill(localInput(start));
  await expect(page).toHaveURL(/from=/);
  await expect(log.getByText(`filler-${m}-1`, { exact: true })).toBeInViewport();
  await expect(log.getByText(`early-${m}`)).not.toBeInViewport();

  await page.getByRole("button", { name: "Follow live" }).click();
  await expect(page).not.toHaveURL(/to=/);
  await expect(page).not.toHaveURL(/from=/);
  await expect(page.getByRole("status")).toHaveText(/Live/);
  await expect(log.getByText(`late-${m}`)).toBeVisible();
  await expect(page.getByRole("link", { name: "Download full log" })).toBeVisible();
});

test("in a window, Level reads the chosen levels from history, beyond the lines one page holds", async ({ page }) => {
  const m = marker("wlevel");
  // One error line, then more info lines than a window's page (5,000) holds.
  writeToProbe(`level=error msg="%s failed"\\n`, 1, m);
  writeToProbe(`level=info msg="${m} %s"\\n`, 1, ...Array.from({ length: 5100 }, (_, i) => String(i + 1)));
  await storedLines(page, `${m} failed`, 1);
  await storedLines(page, `"${m} 5100"`, 1);
  await page.waitForTimeout(1100);
  const cut = Math.floor(Date.now() / 1000) * 1000;
  await expect.poll(() => Date.now() - cut, { timeout: 5_000 }).toBeGreaterThan(1000);

  await page.goto(`/?project=${project}&service=probe&to=${encodeURIComponent(new Date(cut).toISOString())}`);
  const log = page.getByRole("log");
  await expect(page.getByText(/This window holds more than 5000 lines/)).toBeVisible();
  await expect(log.getByText(`${m} 5100`)).toBeVisible();
  await expect(log.getByText(`${m} failed`)).toHaveCount(0);

  await page.getByRole("combobox", { name: "Level" }).selectOption({ label: "error and above" });
  await expect(page).toHaveURL(/level=/);
  await expect(log.getByText(`${m} failed`)).toBeVisible();
  await expect(log.getByText(`${m} 5100`)).toHaveCount(0);
  await expect(page.getByText(/This window holds more than/)).toHaveCount(0);
  const download = page.getByRole("link", { name: "Download window" });
  await expect(download).toHaveAttribute("href", /level=%3E%3Derror/);
  const body = await (await page.request.get((await download.getAttribute("href"))!)).text();
  expect(body).toContain(`${m} failed`);
  expect(body).not.toContain(`${m} 1"`);
});

test("the picture of the log counts a window's stored lines by level, and a drag over it sets From and To", async ({ page }) => {
  const m = marker("pic");
  // probe writes nothing by itself and tests run one at a time: a window around these six
  // lines holds these six only.
  writeToProbe(
    `level=error ${m} a\\nlevel=error ${m} b\\nlevel=info ${m} c\\nlevel=info ${m} d\\nlevel=info ${m} e\\n${m} plain\\n`,
  );
  await storedLines(page, m, 6);
  const hits = (await (await page.request.get(`/api/search?q=${encodeURIComponent(m)}`)).json()).hits;
  const stamps: number[] = hits.map((h: { line: { cursor: string } }) => Number(BigInt(h.line.cursor.split("-")[0]) / BigInt(1_000_000)));
  const from = new Date(Math.min(...stamps)).toISOString();
  const to = new Date(Math.max(...stamps) + 1).toISOString();

  await page.goto(`/?project=${project}&service=probe&from=${from}&to=${to}`);
  const picture = page.getByRole("img", { name: /stored lines from/ });
  await expect(picture).toHaveAttribute("aria-label", /^6 stored lines from/);
  // Each bar tells its counts on hover; together they are the window's.
  const titles = await picture.locator("g.bar title").allTextContents();
  const sum = (kind: string) =>
    titles.reduce((n, t) => n + Number(t.match(new RegExp(`(\\d+) ${kind}\\b`))?.[1] ?? 0), 0);
  expect([sum("error"), sum("info"), sum("none")]).toEqual([2, 3, 1]);
  await expect(picture.locator("rect.part-error").first()).toBeVisible();

  // Live, a drag over the picture shows that stretch of time.
  await page.goto(`/?project=${project}&service=probe`);
  await expect(page.getByRole("status")).toHaveText(/Live/);
  const live = page.getByRole("img", { name: /stored lines from/ });
  const box = (await live.boundingBox())!;
  await page.mouse.move(box.x + box.width * 0.2, box.y + box.height / 2);
  await page.mouse.down();
  await page.mouse.move(box.x + box.width * 0.6, box.y + box.height / 2, { steps: 5 });
  await expect(live.locator("rect.selection")).toBeVisible();
  await page.mouse.up();
  await expect(page).toHaveURL(/from=.*&to=|to=.*&from=/);
  const url = new URL(page.url());
  const [a, b] = [Date.parse(url.searchParams.get("from")!), Date.parse(url.searchParams.get("to")!)];
  expect(b).toBeGreaterThan(a);
  await expect(page.locator(`input[aria-label="From"]`)).not.toHaveValue("");
  await expect(page.getByRole("button", { name: "Follow live" })).toBeVisible();
});

test("search results have their picture: the matches over time, by level, and a drag narrows the search to a stretch", async ({ page }) => {
  const m = marker("found");
  writeToProbe(`level=warn ${m} one\\nlevel=warn ${m} two\\nlevel=error ${m} three\\nunrelated line\\n`);
  await storedLines(page, m, 3);
  await page.goto(`/?project=${project}&service=web&find=${m}`);
  const results = page.getByRole("region", { name: "Search results" });
  await expect(results).toContainText("3 lines match.");
  const chart = results.getByRole("img", { name: /matching lines from/ });
  await expect(chart).toHaveAttribute("aria-label", /^3 matching lines from/);
  const titles = await chart.locator("g.bar title").allTextContents();
  const sum = (kind: string) =>
    titles.reduce((n, t) => n + Number(t.match(new RegExp(`(\\d+) ${kind}\\b`))?.[1] ?? 0), 0);
  expect([sum("warn"), sum("error")]).toEqual([2, 1]);

  // A drag over the bars that hold the matches keeps them; the stretch is in the URL.
  const box = (await chart.boundingBox())!;
  await page.mouse.move(box.x + 2, box.y + box.height / 2);
  await page.mouse.down();
  await page.mouse.move(box.x + box.width - 2, box.y + box.height / 2, { steps: 5 });
  await page.mouse.up();
  await expect(page).toHaveURL(/found_from=.*found_to=/);
  await expect(results).toContainText("3 lines match.");
  // A stretch before the matches holds none of them.
  const url = new URL(page.url());
  url.searchParams.set("found_from", "2020-01-01T00:00:00.000Z");
  url.searchParams.set("found_to", "2020-01-02T00:00:00.000Z");
  await page.goto(url.toString());
  await expect(results).toContainText("No lines match.");
  await results.getByRole("button", { name: "All times" }).click();
  await expect(page).not.toHaveURL(/found_from/);
  await expect(results).toContainText("3 lines match.");
});

test("a removed service stays in Service, marked removed, and shows its history", async ({ page }) => {
  const m = marker("gone");
  const temp = new TempProject(
    "removed",
    `version: "2.4"
services:
  gone:
    image: lookout-fixture:latest
    network_mode: none
    stop_grace_period: 1s
    command: ["/bin/sh", "-c", "echo 'gone says ${m}'; while true; do sleep 3600; done"]
`,
  );
  let up = true;
  temp.compose("up", "-d");
  const server = await Server.start(0, "--project", temp.name);
  try {
    const log = page.getByRole("log");
    await page.goto(`${server.url}/?project=${temp.name}&service=gone`);
    await expect(log.getByText(`gone says ${m}`)).toBeVisible();

    temp.down();
    up = false;
    const option = page.getByRole("combobox", { name: "Service" }).locator(`option[value="${temp.name}/gone"]`);
    await expect(option).toHaveText(/removed, history kept/);
    await expect(page.getByText(`The service ${temp.name}/gone is gone`)).toBeVisible();
    await expect(log.getByText(`gone says ${m}`)).toBeVisible();

    // Opened afresh, it shows what history kept.
    await page.goto(`${server.url}/?project=${temp.name}&service=gone`);
    await expect(page.getByText("Showing history from the oldest kept to now.")).toBeVisible();
    await expect(log.getByText(`gone says ${m}`)).toBeVisible();
    await expect(page.getByRole("button", { name: "Follow live" })).toHaveCount(0);
  } finally {
    await server.stop();
    if (up) temp.down();
  }
});

test("scrolling to the top brings older lines from history", async ({ page }) => {
  const m = marker("back");
  execFileSync("docker", ["exec", containerId("probe"), "sh", "-c", `seq 1 400 | sed 's/^/${m} /' > /proc/1/fd/1`]);
  await storedLines(page, m, 400);
  // The last 100 lines, filtered to this test's.
  await page.goto(`/?project=${project}&service=probe&tail=100&q=${m}`);
  const log = page.getByRole("log");
  await expect(log.getByText(`${m} 400`, { exact: true })).toBeVisible();
  await expect(page.getByText(/^100 of 100 lines$/)).toBeVisible();
  await expect(log.getByText(`${m} 1`, { exact: true })).toHaveCount(0);

  await expect
    .poll(async () => {
      await log.evaluate((el) => { el.scrollTop = 0; });
      return log.getByText(`${m} 1`, { exact: true }).isVisible();
    }, { message: "scrolling back reaches the first line", timeout: 20_000 })
    .toBe(true);
  await expect(page.getByText(/^400 of \d+ lines$/)).toBeVisible();
});
