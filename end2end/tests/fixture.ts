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
  writeTo("probe", printfFormat, fd, ...args);
}

/** As `writeToProbe`, into the log of replica 1 of any service of the fixture. */
export function writeTo(service: string, printfFormat: string, fd: 1 | 2 = 1, ...args: string[]): void {
  const quoted = [printfFormat, ...args].map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(" ");
  execFileSync("docker", ["exec", containerId(service), "sh", "-c", `printf ${quoted} > /proc/1/fd/${fd}`]);
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
    if (!args.includes("--data-dir")) {
      // History of its own: the main server writes the shared one.
      args.push("--data-dir", path.resolve(__dirname, "..", "..", "target", "e2e-history", marker("server")));
    }
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

import * as fs from "node:fs";
import * as net from "node:net";
import * as os from "node:os";

/** The Docker engine's socket, which a test may proxy. */
export const engineSocket = (process.env.DOCKER_HOST ?? "unix:///var/run/docker.sock").replace(/^unix:\/\//, "");

/** A loopback port free now, for a listener a test starts later. */
export async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const port = (server.address() as net.AddressInfo).port;
  await new Promise((r) => server.close(r));
  return port;
}

/** The port of the server Playwright starts (playwright.config.ts). */
export const e2ePort = Number(process.env.LOOKOUT_E2E_PORT ?? 18181);

/**
 * A Compose project of a test's own, from a Compose file the test writes (every service on
 * `lookout-fixture:latest`, `network_mode: none`); `down` removes it.
 */
export class TempProject {
  readonly name: string;
  private dir: string;
  private file: string;

  constructor(tag: string, yaml: string) {
    // Compose v1 keeps only [-_a-z0-9] of a project name.
    this.name = `lookout-t-e2e-${tag}-${Date.now()}-${Math.floor(Math.random() * 1e6)}`;
    this.dir = fs.mkdtempSync(path.join(os.tmpdir(), "lookout-e2e-"));
    this.file = path.join(this.dir, "docker-compose.yml");
    fs.writeFileSync(this.file, yaml);
  }

  compose(...args: string[]): string {
    return execFileSync("docker-compose", ["-f", this.file, "-p", this.name, ...args], {
      stdio: ["ignore", "pipe", "pipe"],
    }).toString();
  }

  /** The id of a service's one container, found by Compose labels. */
  id(service: string): string {
    const out = execFileSync("docker", [
      "ps", "-aq", "--no-trunc",
      "--filter", `label=com.docker.compose.project=${this.name}`,
      "--filter", `label=com.docker.compose.service=${service}`,
    ]).toString().trim();
    if (!out) throw new Error(`no container for ${this.name}/${service}`);
    return out.split("\n")[0];
  }

  down(): void {
    try {
      this.compose("down", "-t", "1", "--remove-orphans");
    } finally {
      fs.rmSync(this.dir, { recursive: true, force: true });
    }
  }
}

/** What `docker inspect` says of a container's state: `running`, `exited`, … */
export function containerStatus(id: string): string {
  return execFileSync("docker", ["inspect", "--format", "{{.State.Status}}", id]).toString().trim();
}

/**
 * A TCP proxy that passes everything through at once but holds the requests whose first
 * line matches `holds` until `release()`: by default a Lookout's WebSocket upgrades
 * (`GET /ws`), so that a page sees its socket not yet open for as long as the test wants.
 * `target` is a port on 127.0.0.1, or the path of a unix socket (a Docker engine's).
 */
export class HoldingProxy {
  private held: Array<() => void> = [];
  private released = false;
  private sockets = new Set<net.Socket>();

  private constructor(private server: net.Server, readonly url: string, readonly port: number) {}

  /** Proxies to `target` (a port, or a unix socket's path), on `port` (0: any free one). */
  static async start(target: number | string, holds: RegExp = /^GET \/ws/, port = 0): Promise<HoldingProxy> {
    const server = net.createServer();
    const proxy = await new Promise<HoldingProxy>((resolve) =>
      server.listen(port, "127.0.0.1", () => {
        const port = (server.address() as net.AddressInfo).port;
        resolve(new HoldingProxy(server, `http://127.0.0.1:${port}`, port));
      }),
    );
    server.on("connection", (client) => proxy.accept(client, target, holds));
    return proxy;
  }

  /** Requests held now. */
  get waiting(): number {
    return this.held.length;
  }

  private accept(client: net.Socket, target: number | string, holds: RegExp): void {
    const upstream = typeof target === "number" ? net.connect(target, "127.0.0.1") : net.connect(target);
    for (const s of [client, upstream]) {
      this.sockets.add(s);
      s.on("close", () => {
        this.sockets.delete(s);
        client.destroy();
        upstream.destroy();
      });
      s.on("error", () => s.destroy());
    }
    upstream.pipe(client);
    // A request starts a chunk of its own (a client writes its head at once), on a new
    // connection or a kept-alive one.
    client.on("data", (chunk: Buffer) => {
      if (this.released || !holds.test(chunk.toString("latin1"))) {
        upstream.write(chunk);
        return;
      }
      client.pause();
      this.held.push(() => {
        upstream.write(chunk);
        client.resume();
      });
    });
  }

  /** Lets the held requests, and any later one, through. */
  release(): void {
    this.released = true;
    for (const pass of this.held.splice(0)) pass();
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise((r) => this.server.close(r));
  }
}
