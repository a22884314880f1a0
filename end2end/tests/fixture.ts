import { execFileSync } from "node:child_process";

/** The Compose project the tests run against (started by scripts/test.sh). */
export const project = process.env.LOOKOUT_TEST_PROJECT ?? "lookout-test";

/** The id of a service's container, found by Compose labels, never by name. */
export function containerId(service: string, number = 1): string {
  const out = execFileSync("docker", [
    "ps", "-aq", "--no-trunc",
    "--filter", `label=com.docker.compose.project=${project}`,
    "--filter", `label=com.docker.compose.service=${service}`,
    "--filter", `label=com.docker.compose.container-number=${number}`,
  ]).toString().trim();
  if (!out) throw new Error(`no container for ${project}/${service} #${number}`);
  return out.split("\n")[0];
}

/**
 * Writes exact bytes into the probe service's log: printf's format runs in the container,
 * so "\\n" and octal escapes work. `fd` 1 is stdout, 2 is stderr.
 */
export function writeToProbe(printfFormat: string, fd: 1 | 2 = 1, ...args: string[]): void {
  const quoted = [printfFormat, ...args].map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(" ");
  execFileSync("docker", ["exec", containerId("probe"), "sh", "-c", `printf ${quoted} > /proc/1/fd/${fd}`]);
}

/** A token that no other test writes. */
export function marker(name: string): string {
  return `${name}-${Date.now()}-${Math.floor(Math.random() * 1e6)}`;
}
