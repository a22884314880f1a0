import * as fs from "node:fs";
import { expect, test, type Page } from "@playwright/test";
import { marker, project, writeTo } from "./fixture";

/** The rows holding `m`, each as its service tag and its text. */
async function rowsOf(page: Page, m: string): Promise<{ service: string; text: string }[]> {
  const rows = page.getByRole("log").locator(".row", { hasText: m });
  return rows.evaluateAll((els) =>
    els.map((el) => ({
      service: el.querySelector(".service")?.textContent ?? "",
      text: el.querySelector(".text")?.textContent ?? "",
    })),
  );
}

test("a view of chosen services merges their lines in time order, each tagged with its service", async ({ page }) => {
  await page.goto(`/?project=${project}&services=probe&services=web`);
  await expect(page.getByRole("status")).toHaveText(/Live/);
  await expect(page.getByRole("combobox", { name: "Service" })).toHaveValue(`${project}/*`);
  const chips = page.getByRole("navigation", { name: "Services in view" });
  await expect(chips.getByRole("button", { name: "probe" })).toHaveAttribute("aria-pressed", "true");
  await expect(chips.getByRole("button", { name: "web" })).toHaveAttribute("aria-pressed", "true");
  await expect(chips.getByRole("button", { name: "json" })).toHaveAttribute("aria-pressed", "false");

  const m = marker("merged");
  // Each line is shown before the next is written: the engine stamps a line when it reads
  // it, which may be after the write returned, so only a line shown is surely stamped first.
  const log = page.getByRole("log");
  writeTo("probe", `${m} one\\n`);
  await expect(log.getByText(`${m} one`)).toBeVisible();
  writeTo("web", `${m} two\\n`);
  await expect(log.getByText(`${m} two`)).toBeVisible();
  writeTo("probe", `${m} three\\n`);
  const want = [
    { service: "probe", text: `${m} one` },
    { service: "web", text: `${m} two` },
    { service: "probe", text: `${m} three` },
  ];
  await expect.poll(() => rowsOf(page, m)).toEqual(want);
  // The service's name is shown on every row, in the service's colour.
  await expect(log.locator(".row .service").first()).toBeVisible();
  await expect(log.locator(".row", { hasText: /web \S+ stdout line/ }).first().locator(".service")).toHaveText("web");
  await expect(log.locator(".row", { hasText: /"level"|request \d+ handled/ })).toHaveCount(0);

  // The filter works on the merged lines, and Download saves what it shows.
  await page.getByRole("searchbox", { name: "Filter" }).fill(m);
  await expect(page.getByText(/^3 of \d+ lines$/)).toBeVisible();
  const [download] = await Promise.all([
    page.waitForEvent("download"),
    page.getByRole("button", { name: "Download", exact: true }).click(),
  ]);
  expect(download.suggestedFilename()).toMatch(new RegExp(`^${project}-probe_web-\\d{4}-\\d\\d-\\d\\dT[\\d-]+\\.log$`));
  // Lifecycle markers pass any text filter; they are saved as `event` lines.
  const saved = fs
    .readFileSync(await download.path(), "utf8")
    .trimEnd()
    .split("\n")
    .filter((l) => !/^\S+ \S+ event /.test(l));
  expect(saved.map((l) => l.split(" ").slice(1).join(" "))).toEqual([
    expect.stringMatching(new RegExp(`^${project}[-_]probe[-_]1 stdout ${m} one$`)),
    expect.stringMatching(new RegExp(`^${project}[-_]web[-_]1 stdout ${m} two$`)),
    expect.stringMatching(new RegExp(`^${project}[-_]probe[-_]1 stdout ${m} three$`)),
  ]);
  // The whole-log download is one service's: a view of several has none.
  await expect(page.getByRole("link", { name: "Download full log" })).toHaveCount(0);

  // The view is the URL's: a reload brings the same services and filter back, their
  // lines merged in time order from the tail.
  await page.reload();
  await expect(page.getByRole("searchbox", { name: "Filter" })).toHaveValue(m);
  await expect.poll(() => rowsOf(page, m)).toEqual(want);

  // Letting web go leaves probe's lines only; taking json in adds its lines.
  await chips.getByRole("button", { name: "web" }).click();
  await expect(page).toHaveURL(/services=probe(&|$)/);
  await expect(page).not.toHaveURL(/services=web/);
  await expect(chips.getByRole("button", { name: "probe" })).toBeDisabled();
  await expect.poll(() => rowsOf(page, m)).toEqual([want[0], want[2]]);
  await page.getByRole("searchbox", { name: "Filter" }).fill("");
  await chips.getByRole("button", { name: "json" }).click();
  await expect(page).toHaveURL(/services=json/);
  await expect(log.locator(".row", { hasText: /request \d+ handled/ }).first().locator(".service")).toHaveText("json");
  await expect(log.locator(".row", { hasText: /web \S+ stdout line/ })).toHaveCount(0);
});

test("all services of a project, chosen from the Service list, and back to one", async ({ page }) => {
  await page.goto(`/?project=${project}&service=probe`);
  await expect(page.getByRole("status")).toHaveText(/Live/);
  await expect(page.getByRole("navigation", { name: "Services in view" })).toHaveCount(0);
  await page.getByRole("combobox", { name: "Service" }).selectOption(`${project}/*`);
  await expect(page).toHaveURL(/services=\*/);
  await expect(page).not.toHaveURL(/service=probe/);
  const log = page.getByRole("log");
  // Every service's lines, each under its own name.
  for (const [service, text] of [["web", /web \S+ stdout line/], ["json", /request \d+ handled/]] as const) {
    await expect(log.locator(".row", { hasText: text }).first().locator(".service")).toHaveText(service);
  }
  const chips = page.getByRole("navigation", { name: "Services in view" });
  for (const s of ["web", "json", "probe", "fast"]) {
    await expect(chips.getByRole("button", { name: s, exact: true })).toHaveAttribute("aria-pressed", "true");
  }
  // Past windows are one service's: the From and To controls wait for one.
  await expect(page.getByLabel("From")).toHaveCount(0);

  await page.getByRole("combobox", { name: "Service" }).selectOption(`${project}/web`);
  await expect(page).toHaveURL(/service=web/);
  await expect(page).not.toHaveURL(/services=/);
  await expect(page.getByRole("navigation", { name: "Services in view" })).toHaveCount(0);
  await expect(log.locator(".row", { hasText: /web \S+ stdout line/ }).first()).toBeVisible();
  for (let i = 0; i < 3; i++) {
    await expect(log.locator(".row", { hasText: /request \d+ handled/ })).toHaveCount(0);
    await page.waitForTimeout(500);
  }
  // A single service's rows do not repeat its name.
  await expect(log.locator(".row .service").first()).toBeHidden();
});
