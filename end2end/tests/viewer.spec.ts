import { expect, test } from "@playwright/test";
import { marker, project, writeToProbe } from "./fixture";

test("the page lists the fixture's services and shows live lines of the chosen one", async ({ page }) => {
  await page.goto("/");
  const service = page.getByRole("combobox", { name: "Service" });
  await expect(page.getByRole("status")).toHaveText(/Live/);
  for (const s of ["web", "json", "fast", "crash", "oneshot", "tty", "probe"]) {
    await expect(service.locator(`option[value="${project}/${s}"]`)).toHaveCount(1);
  }
  await expect(service.locator(`option[value="${project}/oneshot"]`)).toHaveText(/exited with code 7/);
  await expect(service.locator(`option[value="${project}/web"]`)).toHaveText(/2 replicas/);

  await service.selectOption(`${project}/probe`);
  await expect(page).toHaveURL(/service=probe/);
  const m = marker("live");
  writeToProbe(`%s\\n`, 1, m);
  await expect(page.getByRole("log").getByText(m)).toBeVisible();
});

test("the first running service is chosen by default and its lines arrive live", async ({ page }) => {
  await page.goto("/");
  await expect(page).toHaveURL(/project=.*service=/);
  await page.goto(`/?project=${project}&service=web`);
  const log = page.getByRole("log");
  await expect(log.getByText(/web \w+ stdout line \d+/).first()).toBeVisible();
  const count = async () => log.locator(".row").count();
  const before = await log.getByText(/stdout line/).last().textContent();
  await expect.poll(async () => log.getByText(/stdout line/).last().textContent(), { timeout: 5000 }).not.toBe(before);
  expect(await count()).toBeGreaterThan(0);
});
