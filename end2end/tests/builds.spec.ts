import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { expect, test, type APIRequestContext } from "@playwright/test";
import { e2ePort, lookoutBin, project } from "./fixture";

/** A build as `GET /api/builds` lists it (app/src/builds.rs). */
type BuildInfo = { number: number; services: string[]; result: { state: string; code?: number } };

async function probeBuilds(request: APIRequestContext): Promise<BuildInfo[]> {
  const answer = await request.get("/api/builds", { params: { project, service: "probe" } });
  expect(answer.status(), await answer.text()).toBe(200);
  return (await answer.json()) as BuildInfo[];
}

test("a build sent by lookout capture shows live in the Builds view, and comes back from the URL", async ({ page, request }) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "lookout-build-"));
  const flag = path.join(dir, "go");
  const before = new Set((await probeBuilds(request)).map((b) => b.number));

  // The command writes two lines, waits for the test's word, then one line to stderr and
  // fails; capture passes its output through and sends its lines to the server.
  const script = `echo first line; echo "<b>not bold</b>"; while [ ! -e '${flag}' ]; do sleep 0.05; done; echo second line >&2; exit 3`;
  const capture = spawn(
    lookoutBin(),
    ["capture", "--server", `http://127.0.0.1:${e2ePort}`, "--project", project, "--service", "probe", "--", "sh", "-c", script],
    { stdio: ["ignore", "pipe", "pipe"] },
  );
  let stdout = "";
  let stderr = "";
  capture.stdout!.on("data", (d: Buffer) => (stdout += d.toString()));
  capture.stderr!.on("data", (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<number | null>((resolve) => capture.on("exit", (code) => resolve(code)));

  try {
    // The server knows the build once capture has begun it.
    let number = 0;
    await expect
      .poll(async () => {
        const build = (await probeBuilds(request)).find((b) => !before.has(b.number));
        number = build?.number ?? 0;
        return build?.result.state;
      }, { message: `capture's output so far: ${stdout} ${stderr}` })
      .toBe("running");

    await page.goto(`/?project=${project}&service=probe`);
    await page.getByRole("button", { name: "Builds", exact: true }).click();
    await expect(page).toHaveURL(/[?&]builds=1(&|$)/);
    await expect(page.getByRole("heading", { name: "Builds of probe" })).toBeVisible();
    const row = page.locator(".build-row").filter({ has: page.locator(".build-number", { hasText: new RegExp(`^#${number}$`) }) });
    await expect(row).toContainText("running");
    await expect(row.locator(".build-result")).toHaveClass(/\brunning\b/);

    await row.click();
    await expect(page).toHaveURL(new RegExp(`[?&]build=${number}(&|$)`));
    await expect(page.getByRole("heading", { name: `Build #${number} of probe` })).toBeVisible();
    const lines = page.getByTestId("build-lines");
    const texts = lines.locator(".build-line .text");
    // Log text is text: the markup in it is shown as written, never made into elements.
    await expect(texts).toHaveText(["first line", "<b>not bold</b>"]);
    await expect(lines.locator("b")).toHaveCount(0);
    await expect(page.getByTestId("build-result")).toHaveText("running");

    // The rest comes while the page looks on, without a reload.
    await page.evaluate(() => ((window as unknown as { stayed: boolean }).stayed = true));
    fs.writeFileSync(flag, "");
    await expect(texts).toHaveText(["first line", "<b>not bold</b>", "second line"]);
    await expect(lines.locator(".build-line.stderr .text")).toHaveText(["second line"]);
    await expect(page.getByTestId("build-result")).toHaveText("exit 3");
    await expect(page.getByTestId("build-result")).toHaveClass(/\bfailed\b/);
    expect(await page.evaluate(() => (window as unknown as { stayed?: boolean }).stayed)).toBe(true);
    expect(await exited, `capture's stderr: ${stderr}`).toBe(3);
    expect(stdout).toContain("first line");
    expect(stdout).toContain("<b>not bold</b>");
    expect(stderr).toContain("second line");

    // The view is the URL's: a reload brings the same build back, whole and ended.
    await page.reload();
    await expect(page.getByRole("heading", { name: `Build #${number} of probe` })).toBeVisible();
    await expect(texts).toHaveText(["first line", "<b>not bold</b>", "second line"]);
    await expect(lines.locator(".build-line.stderr .text")).toHaveText(["second line"]);
    await expect(page.getByTestId("build-result")).toHaveText("exit 3");
    // On a phone the build's lines wrap: the page does not scroll sideways.
    await page.setViewportSize({ width: 375, height: 800 });
    await expect(lines).toBeVisible();
    expect(await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth)).toBeLessThanOrEqual(0);
    await page.setViewportSize({ width: 1280, height: 800 });

    await page.getByRole("button", { name: "Back to logs", exact: true }).click();
    await expect(page.getByRole("log", { name: "Log lines" })).toBeVisible();
    await expect(page).toHaveURL(/[?&]service=probe(&|$)/);
    await expect(page).not.toHaveURL(/[?&]builds?=/);
    await expect(lines).toHaveCount(0);
  } finally {
    // Lets the command end if the test failed before it did, then makes sure it is gone.
    fs.writeFileSync(flag, "");
    if (capture.exitCode === null && capture.signalCode === null) {
      const timer = setTimeout(() => capture.kill("SIGTERM"), 5_000);
      await exited;
      clearTimeout(timer);
    }
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
