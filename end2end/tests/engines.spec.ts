import { expect, test } from "@playwright/test";
import { marker, project, Server, writeToProbe } from "./fixture";

// The machine's engine read twice, as `local` and as `twin`, and an engine that never
// answers (`gone`): the Service choice groups by engine, a service of `twin` is followed as
// `twin`'s (its URL says so, a reload keeps it), and the engine that is down is named,
// while the others go on.
test("services are grouped by engine, followed on the engine chosen, and an engine that is down is named", async ({ page }) => {
  const engine = process.env.DOCKER_HOST ?? "unix:///var/run/docker.sock";
  const server = await Server.start(
    0,
    "--engine", `local=${engine}`,
    "--engine", `twin=${engine}`,
    "--engine", "gone=tcp://127.0.0.1:9",
  );
  try {
    await page.goto(`${server.url}/?project=${project}&service=probe`);
    await expect(page.getByRole("status")).toHaveText(/Live/);
    const choice = page.getByRole("combobox", { name: "Service" });
    await expect(choice.locator(`optgroup[label="local: ${project}"]`)).toHaveCount(1);
    await expect(choice.locator(`optgroup[label="twin: ${project}"]`)).toHaveCount(1);
    // Without `engine`, the URL means the default engine, `local`.
    await expect(choice).toHaveValue(`${project}/probe`);
    await expect(page.locator('.notice[data-engine="gone"]')).toContainText("Docker engine gone unreachable");
    await expect(page.locator(".notice[data-engine]")).toHaveCount(1);

    await choice.selectOption(`twin/${project}/probe`);
    await expect(page).toHaveURL(/engine=twin/);
    await expect(page.getByRole("status")).toHaveText(/Live/);
    const m = marker("twin");
    writeToProbe(`${m}\\n`);
    await expect(page.getByRole("log").locator(".row", { hasText: m })).toHaveCount(1);

    await page.reload();
    await expect(choice).toHaveValue(`twin/${project}/probe`);
    await expect(page.getByRole("log").locator(".row", { hasText: m })).toHaveCount(1);
  } finally {
    await server.stop();
  }
});
