import { expect, test } from "@playwright/test";
import { containerStatus, marker, project, Server, TempProject, writeToProbe } from "./fixture";

test("the page lists the fixture's services and shows live lines of the chosen one", async ({ page }) => {
  await page.goto("/");
  const service = page.getByRole("combobox", { name: "Service" });
  await expect(page.getByRole("status")).toHaveText(/Live/);
  for (const s of ["web", "json", "apps", "traces", "fast", "crash", "oneshot", "tty", "probe"]) {
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
  // A project of the test's own whose first service (by name) has exited: the page must pass
  // over it to the first one that runs.
  const temp = new TempProject(
    "first-running",
    `version: "2.4"
x-base: &base
  image: lookout-fixture:latest
  network_mode: none
  stop_grace_period: 1s
services:
  alpha:
    <<: *base
    restart: "no"
    command: ["/bin/sh", "-c", "echo alpha did its job; exit 4"]
  beta:
    <<: *base
    command: ["/bin/sh", "-c", "i=0; while true; do i=$$((i + 1)); echo \\"beta line $$i\\"; usleep 200000; done"]
`,
  );
  let server: Server | undefined;
  try {
    temp.compose("up", "-d");
    const alpha = temp.id("alpha");
    await expect.poll(() => containerStatus(alpha)).toBe("exited");
    server = await Server.start(0, "--project", temp.name);
    await page.goto(`${server.url}/`);
    const service = page.getByRole("combobox", { name: "Service" });
    await expect(service.locator(`option[value="${temp.name}/alpha"]`)).toHaveText(/exited with code 4/);
    await expect(page).toHaveURL(new RegExp(`[?&]service=beta(&|$)`));
    await expect(page).toHaveURL(new RegExp(`[?&]project=${temp.name}(&|$)`));
    await expect(service).toHaveValue(`${temp.name}/beta`);
    const log = page.getByRole("log");
    await expect(log.getByText(/^beta line \d+$/).first()).toBeVisible();
    const last = async () => log.getByText(/^beta line \d+$/).last().textContent();
    const before = await last();
    await expect.poll(last, { timeout: 5000 }).not.toBe(before);
  } finally {
    await server?.stop();
    temp.down();
  }
});
