import { expect, test } from "@playwright/test";
import { marker, project, writeToProbe } from "./fixture";

test("hostile log text is shown as text and runs nothing", async ({ page }) => {
  const m = marker("xss");
  await page.goto(`/?project=${project}&service=probe`);
  await expect(page.getByRole("status")).toHaveText(/Live/);
  // Written, and what the page must show: the same text, character for character (an OSC 8
  // hyperlink's escapes go, its target with them, and no link is made).
  const cases: Array<[string, string]> = [
    [`<img src=x onerror=alert(1)>`, `<img src=x onerror=alert(1)>`],
    [`<script>alert(2)</script>`, `<script>alert(2)</script>`],
    [`<a href="javascript:alert(3)">click</a>`, `<a href="javascript:alert(3)">click</a>`],
    [`\\033]8;;javascript:alert(4)\\033\\\\osc8 link\\033]8;;\\033\\\\`, `osc8 link`],
    [`javascript:alert(5) https://example.com/x`, `javascript:alert(5) https://example.com/x`],
    [`<b>bold</b> &lt;i&gt; <svg onload=alert(6)>`, `<b>bold</b> &lt;i&gt; <svg onload=alert(6)>`],
  ];
  for (const [written] of cases) writeToProbe(`%s ${written}\\n`, 1, m);
  const log = page.getByRole("log");
  // Each line's text is exactly what was written, in order.
  await expect(log.locator(".row .text", { hasText: m })).toHaveText(cases.map(([, shown]) => `${m} ${shown}`));
  // No element came out of the text: inside a line's text there are only styled spans (and
  // the filter's marks), and nowhere in the log or the page an element the text names.
  const inside = await log
    .locator(".row .text", { hasText: m })
    .evaluateAll((texts) => texts.flatMap((t) => Array.from(t.querySelectorAll("*"), (e) => e.tagName.toLowerCase())));
  expect(inside.filter((tag) => tag !== "span" && tag !== "mark")).toEqual([]);
  await expect(log.locator("img, script, a, iframe, b, svg, object, embed")).toHaveCount(0);
  await expect(page.locator("img[src='x'], svg[onload], a[href^='javascript:']")).toHaveCount(0);
});

test("ANSI colours become styled spans; timestamps show local time with UTC in a tooltip", async ({ page }) => {
  await page.goto(`/?project=${project}&service=tty`);
  const row = page.getByRole("log").locator(".row", { hasText: /tty line \d+ red/ }).last();
  await expect(row).toBeVisible();
  // The escape codes are gone from the text, the colours are styles.
  await expect(row).not.toContainText("[32m");
  const green = row.locator("span[style*='--ansi-2']", { hasText: "tty" });
  await expect(green).toHaveCount(1);
  await expect(row.locator("span[style*='font-weight:bold']", { hasText: "red" })).toHaveCount(1);

  const ts = row.locator("time");
  await expect(ts).toHaveText(/^\d\d:\d\d:\d\d\.\d{3}$/);
  await expect(ts).toHaveAttribute("title", /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z$/);
  await page.getByRole("checkbox", { name: "Timestamps" }).uncheck();
  await expect(ts).toBeHidden();
  await expect(row.locator(".replica")).toBeVisible();
});

test.describe("in a time zone 5:30 ahead of UTC", () => {
  test.use({ timezoneId: "Asia/Kolkata" });
  test("timestamps are shown in the viewer's local time", async ({ page }) => {
    await page.goto(`/?project=${project}&service=web`);
    await expect(page.getByRole("log").locator(".row time").first()).toBeVisible();
    // Held still, so the row looked at stays in the DOM.
    await page.getByRole("button", { name: "Pause" }).click();
    const ts = page.getByRole("log").locator(".row time").first();
    await expect(ts).toHaveAttribute("title", /Z$/);
    const utc = new Date((await ts.getAttribute("title"))!.replace(/(\.\d{3})\d+Z$/, "$1Z"));
    const local = new Date(utc.getTime() + (5 * 60 + 30) * 60_000);
    const pad = (n: number, w = 2) => String(n).padStart(w, "0");
    const expected = `${pad(local.getUTCHours())}:${pad(local.getUTCMinutes())}:${pad(local.getUTCSeconds())}.${pad(local.getUTCMilliseconds(), 3)}`;
    await expect(ts).toHaveText(expected);
  });
});

test("replica tags have a colour per replica", async ({ page }) => {
  await page.goto(`/?project=${project}&service=web`);
  const log = page.getByRole("log");
  const one = log.locator(".replica", { hasText: "#1" }).first();
  const two = log.locator(".replica", { hasText: "#2" }).first();
  await expect(one).toBeVisible();
  await expect(two).toBeVisible();
  const c1 = await one.evaluate((el) => getComputedStyle(el).color);
  const c2 = await two.evaluate((el) => getComputedStyle(el).color);
  expect(c1).not.toBe(c2);
  await expect(one).toHaveAttribute("title", /web/);
});

test("soft wrap: long lines wrap instead of scrolling sideways, rows do not overlap, and the newest line stays in view", async ({ page }) => {
  const m = marker("wrap");
  const long = `${m} ${"abcdefghij".repeat(60)} end`;
  await page.goto(`/?project=${project}&service=probe`);
  await expect(page.getByRole("status")).toHaveText(/Live/);
  // More long lines than the view holds: wrapping makes the log several times taller, and a
  // view that follows must still end at the newest line.
  writeToProbe(`${"%s\\n".repeat(80)}%s after\\n`, 1, ...Array(80).fill(long), m);
  const log = page.getByRole("log");
  const after = log.locator(".row", { hasText: `${m} after` });
  await expect(after).toBeVisible();
  const row = log.locator(".row", { hasText: long }).last();
  expect((await row.boundingBox())!.height).toBeLessThanOrEqual(21);
  expect(await log.evaluate((el) => el.scrollWidth > el.clientWidth)).toBe(true);

  await page.getByRole("checkbox", { name: "Wrap" }).check();
  // While the rows are drawn again the row may be between two elements: no box is no height.
  await expect.poll(async () => (await row.boundingBox())?.height ?? 0).toBeGreaterThan(40);
  expect(await log.evaluate((el) => el.scrollWidth <= el.clientWidth)).toBe(true);
  // Still following: the newest line is inside the view, at its bottom.
  await expect(page.getByRole("button", { name: /Jump to latest/ })).toHaveCount(0);
  await expect
    .poll(async () => {
      const [view, last] = [await log.boundingBox(), await after.boundingBox()];
      return view !== null && last !== null && last.y >= view.y && last.y + last.height <= view.y + view.height + 1;
    })
    .toBe(true);
  // The whole text is inside its row, and the next row starts below it.
  const text = row.locator(".text");
  const rowBox = (await row.boundingBox())!;
  const textBox = (await text.boundingBox())!;
  expect(textBox.y + textBox.height).toBeLessThanOrEqual(rowBox.y + rowBox.height + 1);
  const next = (await after.boundingBox())!;
  expect(next.y).toBeGreaterThanOrEqual(rowBox.y + rowBox.height - 1);
});

test("the client's code goes gzipped to a browser, and whole to a client that takes no gzip", async ({ page }) => {
  const wasm = page.waitForResponse((r) => new URL(r.url()).pathname.endsWith(".wasm"));
  await page.goto(`/?project=${project}&service=probe`);
  const response = await wasm;
  expect(response.headers()["content-encoding"]).toBe("gzip");
  expect(response.headers()["vary"]).toMatch(/accept-encoding/i);
  // The app runs from it.
  await expect(page.getByRole("status")).toHaveText(/Live/);
  const inBrowser = await response.body();
  const whole = await fetch(response.url(), { headers: { "accept-encoding": "identity" } });
  expect(whole.headers.get("content-encoding")).toBeNull();
  const bytes = Buffer.from(await whole.arrayBuffer());
  expect(bytes.equals(inBrowser)).toBe(true);
  // Over the wire, gzipped, it is well under half its size.
  const gzipped = await fetch(response.url(), { headers: { "accept-encoding": "gzip" } });
  expect(Number(gzipped.headers.get("content-length"))).toBeLessThan(bytes.length / 2);
});

test("the page runs under a policy that allows no inline script but its own loader, and breaks none of it", async ({ page }) => {
  await page.addInitScript(() => {
    (window as unknown as { violations: string[] }).violations = [];
    document.addEventListener("securitypolicyviolation", (e) =>
      (window as unknown as { violations: string[] }).violations.push(`${e.violatedDirective} ${e.blockedURI}`),
    );
  });
  const response = await page.goto(`/?project=${project}&service=tty`);
  const headers = response!.headers();
  const policy = headers["content-security-policy"];
  expect(policy).toMatch(/script-src 'self' 'wasm-unsafe-eval' 'sha256-[A-Za-z0-9+/=]+';/);
  expect(policy).not.toMatch(/script-src[^;]*'unsafe-inline'/);
  expect(policy).toContain("frame-ancestors 'none'");
  expect(headers["x-content-type-options"]).toBe("nosniff");
  expect(headers["referrer-policy"]).toBe("no-referrer");
  // The app starts, streams, and styles ANSI colours under it.
  await expect(page.getByRole("status")).toHaveText(/Live/);
  await expect(page.getByRole("log").locator(".row span[style*='--ansi-2']").first()).toBeVisible();
  // An inline script put into the page by anyone else is refused.
  await page.evaluate(() => {
    const s = document.createElement("script");
    s.textContent = "window.injected = true";
    document.body.appendChild(s);
  });
  expect(await page.evaluate(() => (window as unknown as { injected?: boolean }).injected)).toBeUndefined();
  const violations = await page.evaluate(() => (window as unknown as { violations: string[] }).violations);
  expect(violations).toEqual([expect.stringMatching(/^script-src/)]);
});

test("a line's level, found by the server in the line itself, marks its row", async ({ page }) => {
  await page.goto(`/?project=${project}&service=json`);
  const log = page.getByRole("log");
  // json writes debug, info, info, warn and error lines, one a second, as JSON objects.
  for (const level of ["debug", "info", "warn", "error"]) {
    const row = log.locator(".row", { hasText: `level=${level} ` }).first();
    await expect(row).toHaveClass(new RegExp(`\\blevel-${level}\\b`));
  }
  // A lifecycle marker or a line without a level has no level class.
  await expect(log.locator(".row.level-fatal")).toHaveCount(0);
});

test("a JSON line reads as its message and fields, and opens whole, pretty and copyable", async ({ page, context }) => {
  await context.grantPermissions(["clipboard-read", "clipboard-write"]);
  const m = marker("json");
  await page.goto(`/?project=${project}&service=probe&tail=500`);
  await expect(page.getByRole("status")).toHaveText(/Live/);
  // Hostile on purpose: markup in a key and a value, a number no float holds.
  writeToProbe(`{"level":"warn","msg":"%s <img src=x onerror=window.pwned=1>","<b>k</b>":123456789012345678901234567890,"ok":true}\\n`, 1, m);
  const log = page.getByRole("log");
  const row = log.locator(".row", { hasText: m });
  await expect(row.locator(".text")).toHaveText(
    `{}${m} <img src=x onerror=window.pwned=1>  level=warn  <b>k</b>=123456789012345678901234567890  ok=true`,
  );
  await expect(row).toHaveClass(/\blevel-warn\b/);

  await row.getByRole("button", { name: "Show the whole object" }).click();
  const details = page.getByRole("region", { name: "Line details" });
  const pretty = [
    "{",
    '  "level": "warn",',
    `  "msg": "${m} <img src=x onerror=window.pwned=1>",`,
    '  "<b>k</b>": 123456789012345678901234567890,',
    '  "ok": true',
    "}",
  ].join("\n");
  await expect(details.locator("pre")).toHaveText(pretty);
  // Keys, strings, numbers and keywords each have their colour.
  await expect(details.locator("pre span[style*='--ansi-4']", { hasText: '"<b>k</b>"' })).toHaveCount(1);
  await expect(details.locator("pre span[style*='--ansi-5']", { hasText: "123456789012345678901234567890" })).toHaveCount(1);
  await details.getByRole("button", { name: "Copy" }).click();
  await expect(details.getByRole("status")).toHaveText("Copied");
  expect(await page.evaluate(() => navigator.clipboard.readText())).toBe(pretty);

  // Text, never markup: no element came out of it, nothing ran.
  await expect(page.locator("main img, .details img, .details b, main b")).toHaveCount(0);
  expect(await page.evaluate(() => (window as unknown as { pwned?: number }).pwned)).toBeUndefined();
  await details.getByRole("button", { name: "Close" }).click();
  await expect(details).toHaveCount(0);
});

test("clicking a JSON line's field filters by it, in the URL, until it is removed", async ({ page }) => {
  const m = marker("field");
  await page.goto(`/?project=${project}&service=probe&tail=500`);
  await expect(page.getByRole("status")).toHaveText(/Live/);
  // A value with a percent escape in it must stay as written on its way through the URL.
  writeToProbe(
    `{"msg":"%s one","user":"ada","tag":"a%%41b"}\\n{"msg":"%s two","user":"bob","tag":"a%%41b"}\\n{"msg":"%s three","user":"ada","tag":"x"}\\n`,
    1, m, m, m,
  );
  const log = page.getByRole("log");
  const rows = log.locator(".row", { hasText: m });
  await expect(rows).toHaveCount(3);

  await rows.first().getByRole("button", { name: "Filter by user=ada" }).click();
  await expect(rows).toHaveCount(2);
  await expect(rows.nth(1)).toContainText(`${m} three`);
  await expect(page).toHaveURL(/field=user%3Dada/);
  // A second field narrows further; both survive a reload.
  await rows.first().getByRole("button", { name: "Filter by tag=a%41b" }).click();
  await expect(rows).toHaveCount(1);
  await expect(rows.first()).toContainText(`${m} one`);
  await page.reload();
  await expect(rows).toHaveCount(1);
  await page.getByRole("button", { name: "Stop filtering by user=ada" }).click();
  await expect(rows).toHaveCount(2);
  await page.getByRole("button", { name: "Stop filtering by tag=a%41b" }).click();
  await expect(rows).toHaveCount(3);
  await expect(page).not.toHaveURL(/field=/);
});
