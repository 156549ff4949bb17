/**
 * `npm run bench -- --only=fleet-scale`: `trail supervise` idling with 100 live workers (tmux
 * windows running `sleep`, default `worker.lease_secs` = 60, so a renewal every 20 s), its CPU
 * (utime + stime from /proc, % of one core) and resident set over a window of several renewals,
 * then over the next window of the same length (start-up's one-off garbage collections are over).
 * Baseline in the same run: an idle `node` process (one timer a second) measured over the same
 * window. Then the stop as a person gives it: SIGINT, SIGINT 300 ms later (cancel every worker),
 * timed from the second signal to the supervisor's exit, with every worker then cancelled, no
 * lease held and no window left. `--quick`: 20 workers, 10 s.
 */
import { execFile, execFileSync, spawn } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { cpuPercent, procSample } from "./stats.js"

const TRAIL = path.resolve(import.meta.dirname, "..", "apps", "cli", "bin", "trail.cjs")
const sleepMs = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

/** Runs `trail ARGS` in `cwd` with its own HOME (the kind's trust is recorded there) to its end; its stdout. */
const trail = (cwd: string, args: ReadonlyArray<string>) =>
  new Promise<string>((resolve, reject) =>
    execFile(
      process.execPath,
      [TRAIL, ...args],
      { cwd, encoding: "utf8", env: { ...process.env, HOME: path.join(cwd, "home") } },
      (error, stdout) => (error === null ? resolve(stdout) : reject(error))
    )
  )

/** The names of the windows on tmux server `socket` (none when it is not running). */
const windowsOf = (socket: string): Array<string> => {
  try {
    return execFileSync("tmux", ["-L", socket, "list-windows", "-a", "-F", "#{window_name}"], { encoding: "utf8" })
      .split("\n")
      .filter((name) => name !== "")
  } catch {
    return []
  }
}

export const fleetScaleBench = async (options: { readonly quick: boolean; readonly log: (line: string) => void }) => {
  const workers = options.quick ? 20 : 100
  const windowSecs = options.quick ? 10 : 60
  const root = fs.mkdtempSync(path.join(os.tmpdir(), "trail-bench-fleet-scale-"))
  const socket = `trail-bench-scale-${process.pid}`
  fs.writeFileSync(path.join(root, "a.ts"), "x")
  fs.writeFileSync(path.join(root, ".trail.toml"), `[worker]\ntmux_socket = "${socket}"\nmax_active = ${workers}\n`)
  await trail(root, ["init"])
  fs.mkdirSync(path.join(root, ".trail", "kinds"), { recursive: true })
  fs.writeFileSync(path.join(root, ".trail", "kinds", "idle.md"), '---\ncommand: [sleep, "3600"]\n---\n')
  await trail(root, ["kinds", "trust", "idle"])
  // Four spawns at a time: each is a CLI process.
  for (let i = 0; i < workers; i += 4)
    await Promise.all(
      Array.from({ length: Math.min(4, workers - i) }, (_, j) =>
        trail(root, ["spawn", "--as", "idle", `idle worker ${i + j}`])
      )
    )
  const supervisor = spawn(process.execPath, [TRAIL, "supervise"], {
    cwd: root,
    env: { ...process.env, HOME: path.join(root, "home") },
    stdio: "ignore"
  })
  const baseline = spawn(process.execPath, ["-e", "setInterval(() => {}, 1000)"], { stdio: "ignore" })
  try {
    const [supervisorPid, baselinePid] = [supervisor.pid, baseline.pid]
    if (supervisorPid === undefined || baselinePid === undefined) throw new Error("a process did not start")
    const started = Date.now()
    for (;;) {
      const list = JSON.parse(await trail(root, ["workers"])) as Array<{ lease_owner: string | null; state: string }>
      if (list.filter((w) => w.lease_owner !== null && w.state === "running").length === workers) break
      if (Date.now() - started > 120_000) throw new Error("the supervisor did not adopt the workers")
      await sleepMs(250)
    }
    const adoptMs = Date.now() - started
    // Start-up (adoption, the first fold) is over; what follows is the idle state.
    await sleepMs(3_000)
    const s0 = procSample(supervisorPid)
    const b0 = procSample(baselinePid)
    await sleepMs(windowSecs * 1000)
    const s1 = procSample(supervisorPid)
    const b1 = procSample(baselinePid)
    // The window after it: V8's one-off collections after start-up (its memory reducer) fall in
    // the first; a supervisor idling for hours is the second.
    await sleepMs(windowSecs * 1000)
    const s2 = procSample(supervisorPid)
    const live = (JSON.parse(await trail(root, ["workers"])) as Array<{ state: string }>).filter(
      (w) => w.state === "running"
    ).length
    if (live !== workers) throw new Error(`${workers - live} worker(s) ended while idle`)
    const exited = new Promise((resolve) => supervisor.once("exit", resolve))
    supervisor.kill("SIGINT")
    await sleepMs(300)
    const cancelAt = Date.now()
    supervisor.kill("SIGINT")
    await exited
    const stopMs = Date.now() - cancelAt
    const after = JSON.parse(await trail(root, ["workers"])) as Array<{ state: string; lease_owner: string | null }>
    const unsettled = after.filter((w) => w.state !== "cancelled" || (w.lease_owner ?? "") !== "").length
    if (unsettled > 0) throw new Error(`${unsettled} worker(s) not cancelled or still leased after the stop`)
    const windowsLeft = windowsOf(socket).filter((name) => name !== "trail").length
    if (windowsLeft > 0) throw new Error(`${windowsLeft} window(s) left after the stop`)
    const result = {
      workers,
      window_secs: windowSecs,
      adopt_ms: adoptMs,
      supervisor_cpu_percent: cpuPercent(s0, s1, windowSecs),
      supervisor_rss_mb: Math.round(s1.rssKb / 102.4) / 10,
      supervisor_next_window_cpu_percent: cpuPercent(s1, s2, windowSecs),
      supervisor_next_window_rss_mb: Math.round(s2.rssKb / 102.4) / 10,
      idle_node_cpu_percent: cpuPercent(b0, b1, windowSecs),
      idle_node_rss_mb: Math.round(b1.rssKb / 102.4) / 10,
      stop_ms: stopMs,
      load_average: os.loadavg().map((x) => Math.round(x * 100) / 100)
    }
    options.log(
      `fleet-scale idle supervisor, ${workers} workers over ${windowSecs} s: ${result.supervisor_cpu_percent}% cpu, ${result.supervisor_rss_mb} MB, the next ${windowSecs} s ${result.supervisor_next_window_cpu_percent}% cpu, ${result.supervisor_next_window_rss_mb} MB (idle node: ${result.idle_node_cpu_percent}%, ${result.idle_node_rss_mb} MB); adopted in ${adoptMs} ms; every worker cancelled ${stopMs} ms after the second SIGINT; load ${result.load_average.join(" ")}`
    )
    return result
  } finally {
    baseline.kill()
    // Stopped above unless the bench failed before.
    if (supervisor.exitCode === null && supervisor.signalCode === null) {
      const exited = new Promise((resolve) => supervisor.once("exit", resolve).once("error", resolve))
      supervisor.kill("SIGINT")
      await sleepMs(300)
      supervisor.kill("SIGINT")
      await exited
    }
    try {
      execFileSync("tmux", ["-L", socket, "kill-server"], { stdio: "ignore" })
    } catch {
      // no tmux server left
    }
    fs.rmSync(root, { recursive: true, force: true })
  }
}
