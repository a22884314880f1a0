import AxeBuilder from "@axe-core/playwright";
import { expect, test } from "@playwright/test";
import { marker, project, writeToProbe } from "./fixture";

// The page as a user of assistive technology meets it: axe-core's rules, in both themes,
// with every kind of row on screen (stdout, stderr, levels, markers) and the controls open.
for (const colorScheme of ["light", "dark"] as const) {
  test(`no serious or critical accessibility violation in the ${colorScheme} theme`, async ({ page }) => {
    await page.emulateMedia({ colorScheme });
    const m = marker("a11y");
    await page.goto(`/?project=${project}&service=probe&tail=500`);
    await expect(page.getByRole("status")).toHaveText(/Live/);
    writeToProbe(`[WARN] %s to stdout\\n{"level":"error","msg":"%s"}\\n`, 1, m, m);
    writeToProbe(`%s to stderr\\n`, 2, m);
    const log = page.getByRole("log");
    await expect(log.locator(".row.stderr", { hasText: m })).toBeVisible();
    await expect(log.locator(".row.level-warn", { hasText: m })).toBeVisible();

    const results = await new AxeBuilder({ page }).analyze();
    const grave = results.violations
      .filter((v) => v.impact === "serious" || v.impact === "critical")
      .map((v) => `${v.id} (${v.impact}, ${v.nodes.length} nodes): ${v.nodes.slice(0, 3).map((n) => n.target.join(" ")).join(" | ")}`);
    expect(grave).toEqual([]);
  });
}

test("the log can be scrolled from the keyboard", async ({ page }) => {
  await page.goto(`/?project=${project}&service=web&tail=500`);
  const log = page.getByRole("log");
  // The condition PageUp needs: more lines than the log shows at once. Rows are virtual,
  // so their count on the page says nothing about it; the scroll height does.
  await expect(page.getByRole("status")).toHaveText(/Live/);
  await expect
    .poll(() => log.evaluate((el) => el.scrollHeight - el.clientHeight), { timeout: 30_000 })
    .toBeGreaterThan(200);
  await log.focus();
  await expect(log).toBeFocused();
  const before = await log.evaluate((el) => el.scrollTop);
  await page.keyboard.press("PageUp");
  await expect.poll(() => log.evaluate((el) => el.scrollTop)).toBeLessThan(before);
});
