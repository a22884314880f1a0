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

import { spawn, type ChildProcess } from "node:child_process";
import * as path from "node:path";

/** The `lookout` binary under test. */
export function lookoutBin(): string {
  return path.resolve(__dirname, "..", process.env.LOOKOUT_BIN ?? "../target/release/lookout");
}

/** A `lookout` process of a test's own, for tests that stop and start the server. */
export class Server {
  private constructor(private child: ChildProcess, readonly url: string, readonly port: number) {}

  static async start(port = 0, ...extra: string[]): Promise<Server> {
    return Server.startWith({}, port, ...extra);
  }

  /** Starts one with extra environment (DOCKER_HOST, say) and arguments. */
  static async startWith(env: Record<string, string>, port = 0, ...extra: string[]): Promise<Server> {
    const bin = lookoutBin();
    const args = extra.includes("--project") ? extra : ["--project", project, ...extra];
    const child = spawn(bin, ["--listen", `127.0.0.1:${port}`, ...args], {
      stdio: ["ignore", "pipe", "inherit"],
      env: { ...process.env, ...env },
    });
    const url = await new Promise<string>((resolve, reject) => {
      let out = "";
      const timer = setTimeout(() => reject(new Error(`lookout did not start: ${out}`)), 15_000);
      child.stdout!.on("data", (d: Buffer) => {
        out += d.toString();
        const m = out.match(/listening on (http:\/\/[\d.:]+)/);
        if (m) {
          clearTimeout(timer);
          resolve(m[1]);
        }
      });
      child.on("exit", (code) => reject(new Error(`lookout exited with ${code}: ${out}`)));
    });
    return new Server(child, url, Number(new URL(url).port));
  }

  /** Stops it with SIGTERM, as a service manager would, and waits for it to exit. */
  async stop(): Promise<void> {
    if (this.child.exitCode !== null) return;
    const exited = new Promise((r) => this.child.once("exit", r));
    this.child.kill("SIGTERM");
    await exited;
  }
}
