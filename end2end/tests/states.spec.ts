import { execFileSync } from "node:child_process";
import { expect, test } from "@playwright/test";
import { containerId, marker, project, Server, writeToProbe } from "./fixture";

test("no Docker engine: the page says so, and the connection to Lookout is still live", async ({ page }) => {
  const server = await Server.startWith({ DOCKER_HOST: "unix:///nonexistent/docker.sock" });
  try {
    await page.goto(server.url);
    await expect(page.getByRole("status")).toHaveText(/Live/);
    await expect(page.getByText(/Docker engine unreachable: .*nonexistent/)).toBeVisible();
  } finally {
    await server.stop();
  }
});

test("no Compose projects: an empty state says how to get one", async ({ page }) => {
  const server = await Server.start(0, "--project", marker("no-such-project"));
  try {
    await page.goto(server.url);
    await expect(page.getByText(/No Compose projects found/)).toBeVisible();
  } finally {
    await server.stop();
  }
});

test("a service that goes away is reported in place", async ({ page }) => {
  const service = marker("ephemeral");
  const id = execFileSync("docker", [
    "run", "-d", "--network", "none",
    "--label", `com.docker.compose.project=${project}`,
    "--label", `com.docker.compose.service=${service}`,
    "--label", "com.docker.compose.container-number=1",
    "lookout-fixture:latest", "/bin/sh", "/fixture/probe.sh",
  ]).toString().trim();
  try {
    await page.goto(`/?project=${project}&service=${service}`);
    await expect(page.getByRole("log").getByText("probe: ready")).toBeVisible();
    execFileSync("docker", ["rm", "-f", id]);
    await expect(page.getByText(`The service ${project}/${service} is gone`)).toBeVisible();
    // The lines already shown stay.
    await expect(page.getByRole("log").getByText("probe: ready")).toBeVisible();
  } finally {
    execFileSync("docker", ["rm", "-f", id], { stdio: "ignore" });
  }
});

test("the number of lines kept is a setting; older lines fall off with a note", async ({ page }) => {
  const m = marker("keep");
  await page.goto(`/?project=${project}&service=probe&keep=1000&q=${m}`);
  await expect(page.getByRole("status")).toHaveText(/Live/);
  // Live is the socket; the subscription may still be on its way, and lines written before it
  // would come only as its tail: wait for a line written now before writing the 1500.
  writeToProbe(`%s ready\\n`, 1, m);
  await expect(page.getByRole("log").getByText(`${m} ready`)).toBeVisible();
  execFileSync("docker", ["exec", containerId("probe"), "sh", "-c", `seq 1 1500 | sed 's/^/${m} /' > /proc/1/fd/1`]);
  await expect(page.getByText(/^1000 of 1000 lines$/)).toBeVisible();
  await expect(page.getByText(/\d+ older lines were dropped/)).toBeVisible();
  await expect(page.getByRole("log").getByText(`${m} 1500`, { exact: true })).toBeVisible();
});
