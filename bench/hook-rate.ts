/**
 * `npm run bench -- --only=hook-rate`: 1,000 Claude Code hook events a second from 50 processes,
 * and how soon each is visible in the inbox (issue 14).
 *
 * 1,000 `trail hook claude` processes a second cannot start on a 2-core machine, so each of the
 * 50 writers (bench/hook-rate-writer.ts) is a long-lived process that runs the hook's own code
 * after stdin is read (`recordHook`: find the root, open the store, append, close) 20 times a
 * second, over sessions of its own (UserPromptSubmit → PermissionRequest → Stop). One reader
 * (bench/hook-rate-reader.ts) follows the inbox as the supervisor and the TUI do (woken by the
 * live event log on each burst of commits, it reads the items through the Inbox service).
 *
 * Measured: each append's latency in its writer (SQLite's busy waits included; a payload the hook
 * could not record counts as dropped), the rate reached (over all commits, and over the window in
 * which every writer was appending), and for each event that raises an item
 * (PermissionRequest, Stop) the time from its commit to the end of the first read that shows
 * its item (`i<event id>`); an item replaced before any read showed it counts as never seen (an
 * infinite latency in the percentiles). Baselines in the same run: a bare better-sqlite3 append
 * loop on the same store (one connection, prepared statement: SQLite's own cost) and `recordHook`
 * in a loop in this process (the hook's cost without other writers). `--quick`: 10 writers, 5 s.
 */
import { spawn } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import Sqlite from "better-sqlite3"
import { build } from "esbuild"
import { recordHook } from "../apps/cli/src/hook.js"
import { cpuPercent, median, percentile, procSample } from "./stats.js"

const REPO = path.resolve(import.meta.dirname, "..")
const TRAIL = path.join(REPO, "apps", "cli", "bin", "trail.cjs")
const round = (x: number, digits = 1) => Math.round(x * 10 ** digits) / 10 ** digits

/** A process's stdout, line by line, and its end. */
const start = (argv: ReadonlyArray<string>, onLine: (line: string) => void) => {
  const child = spawn(process.execPath, argv, {
    // The bundles live in a temp dir: better-sqlite3 (a native addon, not bundled) comes from the repository.
    env: { ...process.env, NODE_PATH: path.join(REPO, "node_modules") },
    stdio: ["ignore", "pipe", "inherit"]
  })
  let buffer = ""
  child.stdout.setEncoding("utf8")
  child.stdout.on("data", (chunk: string) => {
    buffer += chunk
    for (let newline = buffer.indexOf("\n"); newline >= 0; newline = buffer.indexOf("\n")) {
      onLine(buffer.slice(0, newline))
      buffer = buffer.slice(newline + 1)
    }
  })
  const done = new Promise<number | null>((resolve) => child.on("close", resolve))
  return { child, done }
}

const until = async (check: () => boolean, ms: number) => {
  for (const end = Date.now() + ms; !check() && Date.now() < end;)
    await new Promise((resolve) => setTimeout(resolve, 10))
  return check()
}

const quantiles = (xs: ReadonlyArray<number>) =>
  xs.length === 0
    ? { p50: null, p95: null, p99: null, max: null }
    : {
        p50: round(percentile(xs, 50)),
        p95: round(percentile(xs, 95)),
        p99: round(percentile(xs, 99)),
        max: round(Math.max(...xs))
      }

/** The same store's events table appended to directly: `n` autocommit inserts, µs each (median of 3). */
const bareAppendUs = (file: string, n: number) => {
  const db = new Sqlite(file)
  db.pragma("synchronous = NORMAL")
  const insert = db.prepare(
    "INSERT INTO events (at, type, subject_type, subject_id, data) VALUES (?, ?, ?, ?, ?) RETURNING id"
  )
  const runs: Array<number> = []
  for (let r = 0; r < 3; r++) {
    const before = performance.now()
    for (let i = 0; i < n; i++)
      insert.get(Date.now(), "bench.floor", "session", `floor-${i}`, JSON.stringify({ message: `floor ${i}` }))
    runs.push(((performance.now() - before) * 1000) / n)
  }
  db.close()
  return median(runs)
}

/** `recordHook` in a loop in this process (no other writer): µs per call (median of 3). */
const soloHookUs = (root: string, n: number) => {
  const runs: Array<number> = []
  for (let r = 0; r < 3; r++) {
    const before = performance.now()
    for (let i = 0; i < n; i++) {
      const raw = JSON.stringify({ session_id: `solo-${r}-${i}`, hook_event_name: "SessionEnd", cwd: root })
      if (recordHook(raw, { env: {}, cwd: root, at: Date.now() }).outcome !== "recorded")
        throw new Error("the solo hook was not recorded")
    }
    runs.push(((performance.now() - before) * 1000) / n)
  }
  return median(runs)
}

export const hookRateBench = async (options: { readonly quick: boolean; readonly log: (line: string) => void }) => {
  const writers = options.quick ? 10 : 50
  const rate = 20
  const secs = options.quick ? 5 : 20
  const sessions = 20
  const root = fs.mkdtempSync(path.join(os.tmpdir(), "trail-bench-hook-rate-"))
  const bundles = path.join(root, "bundles")
  try {
    await new Promise<void>((resolve, reject) =>
      spawn(process.execPath, [TRAIL, "init"], { cwd: root, stdio: "ignore" }).on("close", (code) =>
        code === 0 ? resolve() : reject(new Error(`trail init exited ${code}`))
      )
    )
    await build({
      entryPoints: {
        writer: path.join(import.meta.dirname, "hook-rate-writer.ts"),
        reader: path.join(import.meta.dirname, "hook-rate-reader.ts")
      },
      outdir: bundles,
      outExtension: { ".js": ".cjs" },
      bundle: true,
      platform: "node",
      format: "cjs",
      target: "node20",
      external: ["better-sqlite3"],
      logLevel: "warning"
    })
    const file = path.join(root, ".trail", "state.db")
    const floorUs = bareAppendUs(file, options.quick ? 2_000 : 10_000)
    const soloUs = soloHookUs(root, options.quick ? 200 : 1_000)

    const seenAt = new Map<string, number>()
    const readMs: Array<number> = []
    let ready = false
    const reader = start([path.join(bundles, "reader.cjs"), root], (line) => {
      const [tag, a, b] = line.split(" ")
      if (tag === "ready") ready = true
      else if (tag === "read") readMs.push(Number(a))
      else if (tag === "seen" && a !== undefined) seenAt.set(a, Number(b))
    })
    if (!(await until(() => ready, 60_000))) throw new Error("the reader did not start")
    const readerPid = reader.child.pid
    if (readerPid === undefined) throw new Error("the reader did not start")

    type Append = { writer: number; key: string; event: string; committed: number; ms: number; outcome: string }
    const appends: Array<Append> = []
    let writerCpuUs = 0
    const r0 = procSample(readerPid)
    const started = Date.now()
    const running = Array.from({ length: writers }, (_, w) =>
      start(
        [path.join(bundles, "writer.cjs"), root, String(w), String(rate), String(secs), String(sessions)],
        (line) => {
          const [key = "", event = "", committed, ms, outcome = ""] = line.split(" ")
          if (key === "cpu") writerCpuUs += Number(event)
          else appends.push({ writer: w, key, event, committed: Number(committed), ms: Number(ms), outcome })
        }
      )
    )
    const codes = await Promise.all(running.map((r) => r.done))
    if (codes.some((code) => code !== 0)) throw new Error(`a writer exited ${codes.join(",")}`)
    const first = Math.min(...appends.map((a) => a.committed))
    const last = Math.max(...appends.map((a) => a.committed))

    // The events' ids, by the key each payload carried (its transcript_path).
    const db = new Sqlite(file, { readonly: true })
    const ids = new Map(
      db
        .prepare("SELECT id, json_extract(data, '$.transcript_path') AS key FROM events WHERE type LIKE 'session.%'")
        .all()
        .flatMap((row) =>
          typeof row === "object" && row !== null && "id" in row && "key" in row && typeof row.key === "string"
            ? [[row.key, Number(row.id)] as const]
            : []
        )
    )
    db.close()
    const raising = appends.filter((a) => a.event !== "UserPromptSubmit" && a.outcome === "recorded")
    const itemOf = (a: Append) => `i${ids.get(a.key) ?? "?"}`
    // The reader catches up with the last commits.
    await until(() => raising.every((a) => seenAt.has(itemOf(a))), 15_000)
    const r1 = procSample(readerPid)
    const readerSecs = (Date.now() - started) / 1000
    reader.child.kill("SIGTERM")
    await reader.done

    const visibleOf = (a: Append) => {
      const at = seenAt.get(itemOf(a))
      return at === undefined ? Number.POSITIVE_INFINITY : at - a.committed
    }
    const visible = raising.map(visibleOf)
    const recorded = appends.filter((a) => a.outcome === "recorded").length
    // The writers start one after another (50 Node processes loading on 2 cores take seconds) and
    // end so: the rate over the first to the last commit counts those seconds of fewer writers.
    // While all of them append, they offer writers × rate events a second together.
    const commitsOf = (w: number) => appends.filter((a) => a.writer === w).map((a) => a.committed)
    const allFrom = Math.max(...Array.from({ length: writers }, (_, w) => Math.min(...commitsOf(w))))
    const allUntil = Math.min(...Array.from({ length: writers }, (_, w) => Math.max(...commitsOf(w))))
    const whileAll = (a: Append) => a.committed >= allFrom && a.committed <= allUntil
    const result = {
      writers,
      rate_per_writer: rate,
      secs,
      events: appends.length,
      dropped: appends.length - recorded,
      events_per_sec: round(recorded / ((last - first) / 1000)),
      /** The rate while every writer was appending, over that window (s). */
      all_writers: {
        secs: round((allUntil - allFrom) / 1000),
        events_per_sec: round(
          appends.filter((a) => a.outcome === "recorded" && whileAll(a)).length / ((allUntil - allFrom) / 1000)
        ),
        visible_ms: quantiles(raising.filter(whileAll).map(visibleOf))
      },
      append_ms: quantiles(appends.map((a) => a.ms)),
      /** CPU time of one append in its writer (user + system), and all writers' share of the machine's cores. */
      append_cpu_us: round(writerCpuUs / appends.length),
      writers_cpu_cores: round(writerCpuUs / 1e6 / ((last - first) / 1000), 2),
      visible_ms: quantiles(visible),
      items: raising.length,
      never_seen: visible.filter((ms) => !Number.isFinite(ms)).length,
      reads: readMs.length,
      read_ms: quantiles(readMs),
      reader_cpu_percent: cpuPercent(r0, r1, readerSecs),
      reader_rss_mb: round(r1.rssKb / 1024),
      floor_append_us: round(floorUs),
      solo_hook_us: round(soloUs),
      load_average: os.loadavg().map((x) => round(x, 2))
    }
    options.log(
      `hook-rate ${writers} writers × ${rate}/s for ${secs} s: ${result.events_per_sec} events/s (${result.all_writers.events_per_sec} over the ${result.all_writers.secs} s all ${writers} ran), ${result.dropped} dropped; append p50 ${result.append_ms.p50} p95 ${result.append_ms.p95} p99 ${result.append_ms.p99} max ${result.append_ms.max} ms, ${result.append_cpu_us} µs cpu each (writers: ${result.writers_cpu_cores} cores) (floor: bare append ${result.floor_append_us} µs, recordHook alone ${result.solo_hook_us} µs)`
    )
    options.log(
      `hook-rate commit→visible p50 ${result.visible_ms.p50} p95 ${result.visible_ms.p95} p99 ${result.visible_ms.p99} ms (while all ran: p95 ${result.all_writers.visible_ms.p95}) over ${result.items} items (${result.never_seen} never seen); ${result.reads} reads, p50 ${result.read_ms.p50} p95 ${result.read_ms.p95} ms; reader ${result.reader_cpu_percent}% cpu, ${result.reader_rss_mb} MB; load ${result.load_average.join(" ")}`
    )
    return result
  } finally {
    fs.rmSync(root, { recursive: true, force: true })
  }
}
