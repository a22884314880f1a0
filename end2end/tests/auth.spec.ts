import { expect, test } from "@playwright/test";
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { lookoutBin, marker, project, Server, writeToProbe } from "./fixture";

// Each auth mode end to end: the real binary with its own settings, the real fixture.

function usersFile(users: Array<[string, string, string?]>): { file: string; dir: string } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "lookout-users-"));
  const file = path.join(dir, "users");
  for (const [name, password, scope] of users) {
    const args = ["--users-file", file, "users", "add", name, ...(scope ? ["--scope", scope] : [])];
    execFileSync(lookoutBin(), args, { input: `${password}\n`, stdio: ["pipe", "ignore", "pipe"] });
  }
  return { file, dir };
}

test.describe("signing in with --auth users", () => {
  let server: Server;
  let dir: string;
  let file: string;

  test.beforeAll(async () => {
    const u = usersFile([["alice", "correct horse"], ["bob", "battery staple", `${project}/probe`]]);
    ({ dir, file } = u);
    server = await Server.start(0, "--auth", "users", "--users-file", file);
  });
  test.afterAll(async () => {
    await server.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test("a wrong password is refused; the right one opens the view; logging out closes it", async ({ page }) => {
    await page.goto(`${server.url}/?project=${project}&service=probe`);
    await expect(page).toHaveURL(/\/login\?next=/);
    await page.getByLabel("User").fill("alice");
    await page.getByLabel("Password").fill("wrong password");
    await page.getByRole("button", { name: "Sign in" }).click();
    await expect(page.getByRole("alert")).toHaveText("Wrong user name or password.");

    await page.getByLabel("Password").fill("correct horse");
    await page.getByRole("button", { name: "Sign in" }).click();
    await expect(page).toHaveURL(new RegExp(`/\\?project=${project}&service=probe$`));
    await expect(page.getByRole("status")).toHaveText(/Live/);
    await expect(page.getByTitle("Signed in")).toHaveText("alice");
    const m = marker("signed-in");
    writeToProbe("%s\\n", 1, m);
    await expect(page.getByRole("log").getByText(m)).toBeVisible();

    await page.getByRole("button", { name: "Log out" }).click();
    await expect(page).toHaveURL(/\/login$/);
    await page.goto(`${server.url}/`);
    await expect(page).toHaveURL(/\/login\?next=/);
    const api = await page.request.get(`${server.url}/api/projects`);
    expect(api.status()).toBe(401);
  });

  test("an expired session sends the open page to the login page", async ({ page }) => {
    // A server of its own: a session this short would end the other tests' sessions midway
    // on a busy machine.
    const short = await Server.start(0, "--auth", "users", "--users-file", file, "--session-ttl", "8s");
    try {
      await page.goto(`${short.url}/login`);
      await page.getByLabel("User").fill("alice");
      await page.getByLabel("Password").fill("correct horse");
      await page.getByRole("button", { name: "Sign in" }).click();
      await expect(page.getByRole("status")).toHaveText(/Live/);
      // The session lasts 8 s; the server closes the socket and the page goes to sign in.
      await expect(page).toHaveURL(/\/login\?next=/, { timeout: 20_000 });
    } finally {
      await short.stop();
    }
  });

  test("a scoped user's dropdown holds only their services", async ({ page }) => {
    await page.goto(`${server.url}/login`);
    await page.getByLabel("User").fill("bob");
    await page.getByLabel("Password").fill("battery staple");
    await page.getByRole("button", { name: "Sign in" }).click();
    await expect(page.getByRole("status")).toHaveText(/Live/);
    // The project's one service they may see, and the project's view of all they may see.
    const options = page.getByRole("combobox", { name: "Service" }).locator("option");
    await expect(options).toHaveText([`all services of ${project}`, /^probe/]);
    // Asking for another service by URL shows it as unknown.
    await page.goto(`${server.url}/?project=${project}&service=web`);
    await expect(page.getByText(/unknown service/)).toBeVisible();
  });
});

test.describe("--auth forward-proxy", () => {
  let server: Server;

  test.beforeAll(async () => {
    server = await Server.start(0, "--auth", "forward-proxy", "--trusted-proxy", "127.0.0.1");
  });
  test.afterAll(async () => {
    await server.stop();
  });

  test("the proxy's user header signs the viewer in; without it nothing is shown", async ({ browser }) => {
    const proxied = await browser.newContext({ extraHTTPHeaders: { "Remote-User": "carol" } });
    const page = await proxied.newPage();
    await page.goto(`${server.url}/?project=${project}&service=probe`);
    await expect(page.getByRole("status")).toHaveText(/Live/);
    await expect(page.getByTitle("Signed in")).toHaveText("carol");
    await expect(page.getByRole("button", { name: "Log out" })).toHaveCount(0);
    await proxied.close();

    const bare = await browser.newContext();
    const response = await (await bare.newPage()).goto(`${server.url}/`);
    expect(response?.status()).toBe(401);
    await bare.close();
  });
});
