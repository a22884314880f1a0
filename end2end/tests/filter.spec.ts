import * as fs from "node:fs";
import { expect, test } from "@playwright/test";
import { marker, project, writeToProbe } from "./fixture";

test.describe("filtering", () => {
  test("plain text, regex, match case, invert, counter and highlights", async ({ page }) => {
    const m = marker("flt");
    await page.goto(`/?project=${project}&service=probe`);
    await expect(page.getByRole("status")).toHaveText(/Live/);
    writeToProbe(`%s alpha ERROR one\\n%s beta error two\\n%s gamma ok three\\n`, 1, m, m, m);
    const log = page.getByRole("log");
    await expect(log.getByText(`${m} gamma ok three`)).toBeVisible();

    const filter = page.getByRole("searchbox", { name: "Filter" });
    await filter.fill(`${m}`);
    await expect(page.getByText(/^3 of \d+ lines$/)).toBeVisible();

    // Case-insensitive by default; matches highlighted.
    await filter.fill(`error`);
    await expect(log.locator(".row", { hasText: m })).toHaveCount(2);
    await expect(log.locator(".row", { hasText: m }).locator("mark", { hasText: /^error$/i })).toHaveCount(2);

    await page.getByRole("checkbox", { name: "Match case" }).check();
    await expect(log.locator(".row", { hasText: m })).toHaveCount(1);
    await expect(log.locator(".row", { hasText: m })).toContainText("beta error two");
    await page.getByRole("checkbox", { name: "Match case" }).uncheck();

    await page.getByRole("checkbox", { name: "Regex" }).check();
    await filter.fill(`${m} (alpha|gamma)`);
    await expect(log.locator(".row", { hasText: m })).toHaveCount(2);

    await page.getByRole("checkbox", { name: "Invert" }).check();
    await expect(log.locator(".row", { hasText: m })).toHaveCount(1);
    await expect(log.locator(".row", { hasText: m })).toContainText("beta error two");

    // The filter lives in the URL and survives a reload.
    await expect(page).toHaveURL(/regex=1/);
    await expect(page).toHaveURL(/invert=1/);
    await page.reload();
    await expect(page.getByRole("searchbox", { name: "Filter" })).toHaveValue(`${m} (alpha|gamma)`);
    await expect(page.getByRole("checkbox", { name: "Invert" })).toBeChecked();
    await expect(log.locator(".row", { hasText: m })).toHaveCount(1);
  });

  test("an invalid regex is reported and the last valid filter stays applied", async ({ page }) => {
    const m = marker("bad-re");
    await page.goto(`/?project=${project}&service=probe&regex=1`);
    writeToProbe(`%s first\\n%s second\\n`, 1, m, m);
    const log = page.getByRole("log");
    const filter = page.getByRole("searchbox", { name: "Filter" });
    await filter.fill(`${m} first`);
    await expect(log.locator(".row", { hasText: m })).toHaveCount(1);
    await filter.fill(`${m} (first`);
    await expect(page.getByRole("alert")).toContainText(/invalid regular expression/i);
    await expect(filter).toHaveAttribute("aria-invalid", "true");
    await expect(log.locator(".row", { hasText: m })).toHaveCount(1);
    await expect(log.locator(".row", { hasText: m })).toContainText("first");
    await filter.fill(`${m} (first|second)`);
    await expect(page.getByRole("alert")).toHaveCount(0);
    await expect(log.locator(".row", { hasText: m })).toHaveCount(2);
  });

  test("a filter over its bounds is refused at once with a clear error, and the page goes on", async ({ page }) => {
    const m = marker("flt-bounds");
    await page.goto(`/?project=${project}&service=probe&regex=1`);
    await expect(page.getByRole("status")).toHaveText(/Live/);
    writeToProbe(`%s first\\n%s second\\n`, 1, m, m);
    const log = page.getByRole("log");
    const filter = page.getByRole("searchbox", { name: "Filter" });
    const alert = page.getByRole("alert");
    await filter.fill(`${m} first`);
    await expect(log.locator(".row", { hasText: m })).toHaveCount(1);

    // Longer than 1,000 characters.
    await filter.fill(`${m} ${"x".repeat(1000)}`);
    await expect(alert).toContainText("longer than 1000 characters", { timeout: 5000 });
    await expect(filter).toHaveAttribute("aria-invalid", "true");
    await expect(log.locator(".row", { hasText: m })).toHaveCount(1);
    await expect(log.locator(".row", { hasText: m })).toContainText("first");

    // Short to write, too large to compile: refused, not run.
    await filter.fill(String.raw`(?:a{1000}){1000}`);
    await expect(alert).toContainText(/invalid regular expression.*size limit/i, { timeout: 5000 });
    await expect(filter).toHaveAttribute("aria-invalid", "true");
    await expect(log.locator(".row", { hasText: m })).toHaveCount(1);

    // The page still answers: a valid filter applies and new lines come.
    await filter.fill(`${m} (first|second|third)`);
    await expect(alert).toHaveCount(0);
    await expect(log.locator(".row", { hasText: m })).toHaveCount(2);
    writeToProbe(`%s third\\n`, 1, m);
    await expect(log.locator(".row", { hasText: m })).toHaveCount(3);
  });

  test("stream choice keeps stdout and stderr apart, and stderr looks different", async ({ page }) => {
    const m = marker("streams");
    await page.goto(`/?project=${project}&service=probe`);
    await expect(page.getByRole("status")).toHaveText(/Live/);
    writeToProbe(`%s to stdout\\n`, 1, m);
    writeToProbe(`%s to stderr\\n`, 2, m);
    const log = page.getByRole("log");
    await expect(log.locator(".row.stderr", { hasText: `${m} to stderr` })).toBeVisible();
    await expect(log.locator(".row.stdout", { hasText: `${m} to stdout` })).toBeVisible();
    const stderrBg = await log.locator(".row.stderr", { hasText: m }).evaluate((el) => getComputedStyle(el).backgroundColor);
    const stdoutBg = await log.locator(".row.stdout", { hasText: m }).evaluate((el) => getComputedStyle(el).backgroundColor);
    expect(stderrBg).not.toBe(stdoutBg);

    await page.getByRole("combobox", { name: "Stream" }).selectOption("stderr");
    await expect(log.locator(".row", { hasText: m })).toHaveCount(1);
    await expect(log.locator(".row", { hasText: m })).toContainText("to stderr");
  });

  test("the Level control keeps the lines stating a level at least as severe, in the URL", async ({ page }) => {
    const m = marker("levels");
    await page.goto(`/?project=${project}&service=probe`);
    await expect(page.getByRole("status")).toHaveText(/Live/);
    writeToProbe(`[DEBUG] %s d\\n[INFO] %s i\\nWARN %s w\\n{"level":"error","msg":"%s e"}\\n%s says error in the middle\\n`, 1, m, m, m, m, m);
    const log = page.getByRole("log");
    const rows = log.locator(".row", { hasText: m });
    await expect(rows).toHaveCount(5);

    const level = page.getByRole("combobox", { name: "Level" });
    await level.selectOption({ label: "warn and above" });
    await expect(rows).toHaveCount(2);
    await expect(rows.nth(0)).toContainText(`WARN ${m} w`);
    await expect(rows.nth(1)).toContainText(`${m} e`);
    await expect(page).toHaveURL(/level=%3E%3Dwarn/);

    // With the text filter too; and after a reload.
    await page.getByRole("searchbox", { name: "Filter" }).fill(`${m} e`);
    await expect(rows).toHaveCount(1);
    await page.reload();
    await expect(page.getByRole("combobox", { name: "Level" })).toHaveValue(">=warn");
    await expect(log.locator(".row", { hasText: m })).toHaveCount(1);

    // A set from a shared link is shown as written.
    await page.goto(`/?project=${project}&service=probe&level=info,error&tail=500`);
    await expect(page.getByRole("combobox", { name: "Level" })).toHaveValue("info,error");
    await expect(log.locator(".row", { hasText: m })).toHaveCount(2);
    await page.getByRole("combobox", { name: "Level" }).selectOption({ label: "Any level" });
    await expect(log.locator(".row", { hasText: m })).toHaveCount(5);
    await expect(page).not.toHaveURL(/level=/);
  });

  test("a replica choice for a service with several replicas", async ({ page }) => {
    await page.goto(`/?project=${project}&service=web`);
    const log = page.getByRole("log");
    await expect(log.locator(".replica", { hasText: "#2" }).first()).toBeVisible();
    await page.getByRole("combobox", { name: "Replica" }).selectOption("1");
    await expect(log.locator(".replica", { hasText: "#2" })).toHaveCount(0);
    await expect(log.locator(".replica", { hasText: "#1" }).first()).toBeVisible();
  });

  test("a stack trace is one entry: kept whole by a filter, counted once, collapsed, downloaded whole", async ({ page }) => {
    const m = marker("trace");
    const cause = marker("cause");
    await page.goto(`/?project=${project}&service=probe&tail=500`);
    await expect(page.getByRole("status")).toHaveText(/Live/);
    // One write, as a Java logger prints an error: the line, the exception, frames, a cause.
    writeToProbe(
      "%s request failed\\njava.lang.IllegalStateException: no items\\n\\tat com.example.Shop.place(Shop.java:88)\\nCaused by: java.sql.SQLException: %s\\n\\t... 12 more\\n%s next request\\n",
      2, m, cause, m,
    );
    const log = page.getByRole("log");
    await expect(log.getByText(`${m} next request`)).toBeVisible();
    const head = log.locator(".row", { hasText: `${m} request failed` });
    const toggle = head.getByRole("button", { name: "Hide 4 more lines" });
    await expect(toggle).toHaveAttribute("aria-expanded", "true");
    // The lines after the first keep the first's place, under it.
    const caused = log.locator(".row.continued", { hasText: `Caused by: java.sql.SQLException: ${cause}` });
    await expect(caused).toBeVisible();
    await expect(log.locator(".row", { hasText: `${m} next request` })).not.toHaveClass(/continued/);

    // The filter finds the cause, in the fourth line, and keeps the whole entry: one entry.
    const filter = page.getByRole("searchbox", { name: "Filter" });
    await filter.fill(cause);
    await expect(page.getByText(/^1 of \d+ lines$/)).toBeVisible();
    await expect(head).toBeVisible();
    await expect(log.locator(".row.continued")).toHaveCount(4);
    await expect(log.locator(".row", { hasText: "next request" })).toHaveCount(0);

    // Collapsed: the first line and how many more; the counter and the filter are unchanged.
    await toggle.click();
    await expect(log.locator(".row.continued")).toHaveCount(0);
    await expect(head.getByRole("button", { name: "Show 4 more lines" })).toHaveAttribute("aria-expanded", "false");
    await expect(head).toContainText("… 4 more");
    await expect(page.getByText(/^1 of \d+ lines$/)).toBeVisible();

    // The download keeps the original lines, the collapsed ones too.
    const [download] = await Promise.all([page.waitForEvent("download"), page.getByRole("button", { name: "Download", exact: true }).click()]);
    const lines = fs.readFileSync(await download.path(), "utf8").trimEnd().split("\n").filter((l) => / stderr /.test(l));
    expect(lines.map((l) => l.replace(/^\S+ \S+ stderr /, ""))).toEqual([
      `${m} request failed`,
      "java.lang.IllegalStateException: no items",
      "\tat com.example.Shop.place(Shop.java:88)",
      `Caused by: java.sql.SQLException: ${cause}`,
      "\t... 12 more",
    ]);

    await head.getByRole("button", { name: "Show 4 more lines" }).click();
    await expect(log.locator(".row.continued")).toHaveCount(4);
  });

  test("a filter holding a percent escape is kept as typed, across a reload", async ({ page }) => {
    const m = marker("pct");
    await page.goto(`/?project=${project}&service=probe`);
    await expect(page.getByRole("status")).toHaveText(/Live/);
    writeToProbe(`%s GET /a%%41b\\n%s GET /aAb\\n`, 1, m, m);
    const log = page.getByRole("log");
    await expect(log.locator(".row", { hasText: m })).toHaveCount(2);
    const filter = page.getByRole("searchbox", { name: "Filter" });
    await filter.fill(`${m} GET /a%41b`);
    await expect(log.locator(".row", { hasText: m })).toHaveCount(1);
    await expect(log.locator(".row", { hasText: m })).toContainText("/a%41b");
    await page.reload();
    await expect(filter).toHaveValue(`${m} GET /a%41b`);
    await expect(log.locator(".row", { hasText: m })).toHaveCount(1);
  });

  test("no lines match: an empty state says so", async ({ page }) => {
    await page.goto(`/?project=${project}&service=web&q=${marker("nothing-matches")}`);
    await expect(page.getByText("No lines match the filter.")).toBeVisible();
  });
});
