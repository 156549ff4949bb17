/**
 * `npm run bench [-- --json] [-- --quick]` — trail's scheduler measured against its floor.
 *
 * - cycle: drain a sweep through the public Scheduler service (claim, then complete, one at a
 *   time), µs per cycle, median of several drains; and `floor`: the same drain written directly
 *   against better-sqlite3 with the minimal prepared statements the same semantics need (same
 *   schema, same transactions), in the same process and run. `ratio` = cycle / floor.
 * - cli: wall and CPU time of one `trail next`, `trail done`, `trail list --limit 100` (1,000
 *   folders), `trail --version` and `trail inbox --limit 50` (an empty inbox) as processes, and of
 *   `node -e 0`: what a `trail` start costs.
 * - init: `trail init` on a generated tree of 100k files in 10k folders, and
 *   `find ROOT -type f -printf '%s\n'` on the same tree (walk + stat is the floor).
 * - open: opening a sweep over 100k folders whose task has 200 sweeps of history.
 * - scale: the scheduler at 200k folders (bench/scheduler-scale.ts).
 * - checkpoint: a 100 MB Claude Code transcript (the real fixture's lines repeated) through the
 *   session extractor and the bundle composer, wall time and memory growth; floors in the same
 *   run: `wc -l` of the file and a bare 64 KiB-chunk newline count in Node.
 *
 * Medians throughout, because the machine is shared and noisy; every comparison is made in the
 * same run. `--quick` uses smaller sizes (a smoke run, not for docs/benchmarks.md);
 * `--only=cycle,cli,init,open,fleet,fleet-scale,inbox,hook-rate,checkpoint,search,inbox-scale,log-scale,scale`
 * runs some sections (fleet-scale, hook-rate, search, inbox-scale, log-scale and scale are their own
 * files: bench/<section>.ts).
 */
import * as NodeContext from "@effect/platform-node/NodeContext"
import * as Checkpoints from "@trail/checkpoints"
import { AgentId, CheckpointId, decodeConfig, TaskName } from "@trail/domain"
import { CoverageStore, Scheduler, Walker } from "@trail/scheduler"
import { Database } from "@trail/store"
import Sqlite from "better-sqlite3"
import { Context, Effect, Either, Layer, ManagedRuntime, Schema } from "effect"
import { execFileSync, spawn, spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { fleetScaleBench } from "./fleet-scale.js"
import { hookRateBench } from "./hook-rate.js"
import { inboxScaleBench } from "./inbox-scale.js"
import { logScaleBench } from "./log-scale.js"
import { schedulerScaleBench } from "./scheduler-scale.js"
import { searchBench } from "./search.js"
import { at, cpuPercent, median, percentile, procSample } from "./stats.js"

const args = new Set(process.argv.slice(2))
const json = args.has("--json")
const quick = args.has("--quick")
/** `--only=cycle,init` runs just those sections. */
const only = [...args]
  .find((a) => a.startsWith("--only="))
  ?.slice("--only=".length)
  .split(",")
const wanted = (section: string) => only === undefined || only.includes(section)
const log = (line: string) => {
  if (!json) process.stderr.write(`${line}\n`)
}

const TRAIL = path.resolve(import.meta.dirname, "..", "apps", "cli", "bin", "trail.cjs")
const round = (x: number, digits = 2) => Math.round(x * 10 ** digits) / 10 ** digits
const tmp = (prefix: string) => fs.mkdtempSync(path.join(os.tmpdir(), prefix))

/** `n` synthetic folders `area{i/100}/mod{i}`. */
const syntheticFolders = (n: number) =>
  Array.from({ length: n }, (_, i) => ({
    path: `area${Math.floor(i / 100)}/mod${i}`,
    fileCount: 1 + (i % 13),
    bytes: 100 * (1 + (i % 7)),
    churn: 0
  }))

const config = Either.getOrThrow(decodeConfig({ lease: { ttl_secs: 86_400 } }, "bench"))
const agent = AgentId.make("bench")

// ---------------------------------------------------------------------------------------------
// cycle: the public Scheduler service

const schedulerOn = (filename: string) => {
  const database = Database.layer({ filename })
  const store = CoverageStore.layer.pipe(Layer.provideMerge(database))
  const settings = Layer.succeed(Scheduler.Settings, {
    project: {
      root: os.tmpdir(),
      stateDir: os.tmpdir(),
      databaseFile: filename,
      configFile: path.join(os.tmpdir(), "none.toml")
    },
    config
  })
  return Scheduler.layer.pipe(Layer.provideMerge(store), Layer.provide(Walker.layer), Layer.provide(settings))
}

/** A drain runner: `drain()` drains one fresh sweep of the `n` registered folders, in µs per cycle. */
interface Runner {
  readonly drain: () => Promise<number>
  readonly close: () => Promise<void>
}

const WARM_UP_CYCLES = 2000

/** trail through its public Scheduler service, on `filename`. */
const trailRunner = async (filename: string, n: number): Promise<Runner> => {
  const runtime = ManagedRuntime.make(schedulerOn(filename).pipe(Layer.provide(NodeContext.layer)))
  let drains = 0
  const cycles = (task: TaskName, limit: number) =>
    Effect.gen(function* () {
      const scheduler = yield* Scheduler.Scheduler
      let count = 0
      while (count < limit) {
        const claimed = yield* scheduler.claim({ task, agent })
        if (claimed._tag !== "Claimed") break
        yield* scheduler.complete({ task, path: claimed.path, agent, status: "done" })
        count++
      }
      return count
    })
  await runtime.runPromise(
    Effect.gen(function* () {
      yield* Effect.flatMap(CoverageStore.CoverageStore, (store) => store.register(syntheticFolders(n), 0))
      const warm = TaskName.make("warm-up")
      yield* Effect.flatMap(Scheduler.Scheduler, (scheduler) => scheduler.newSweep({ task: warm }))
      yield* cycles(warm, WARM_UP_CYCLES)
    })
  )
  return {
    drain: () =>
      runtime.runPromise(
        Effect.gen(function* () {
          const task = TaskName.make(`drain-${drains++}`)
          yield* Effect.flatMap(Scheduler.Scheduler, (scheduler) => scheduler.newSweep({ task }))
          const start = performance.now()
          const count = yield* cycles(task, Number.POSITIVE_INFINITY)
          const elapsed = performance.now() - start
          if (count !== n) throw new Error(`drained ${count} of ${n}`)
          return (elapsed * 1000) / count
        })
      ),
    close: () => runtime.dispose()
  }
}

// ---------------------------------------------------------------------------------------------
// floor: the same drain, straight on better-sqlite3, same schema and statements

/** The schema trail creates, read from a database trail migrated. */
const schemaSql = async () => {
  const dir = tmp("trail-bench-schema-")
  const file = path.join(dir, "schema.db")
  await Effect.runPromise(Effect.scoped(Layer.build(schedulerOn(file))).pipe(Effect.provide(NodeContext.layer)))
  const db = new Sqlite(file, { readonly: true })
  const rows = db
    .prepare(
      "SELECT name, sql FROM sqlite_master WHERE sql IS NOT NULL AND name NOT LIKE 'sqlite_%' AND name <> 'effect_sql_migrations' ORDER BY rowid"
    )
    .all()
    .map((row) => Schema.decodeUnknownSync(Schema.Struct({ name: Schema.String, sql: Schema.String }))(row))
  // A virtual table (FTS5) creates its own shadow tables (`<name>_data`, …): copying them is refused.
  const virtual = rows.filter((r) => r.sql.startsWith("CREATE VIRTUAL TABLE")).map((r) => r.name)
  const ddl = rows.filter((r) => !virtual.some((v) => r.name.startsWith(`${v}_`))).map((r) => r.sql)
  db.close()
  fs.rmSync(dir, { recursive: true, force: true })
  return ddl
}

const floorRunner = (ddl: ReadonlyArray<string>, filename: string, n: number): Runner => {
  const db = new Sqlite(filename, { timeout: 5000 })
  db.pragma("journal_mode = WAL")
  db.pragma("synchronous = NORMAL")
  db.pragma("foreign_keys = ON")
  for (const statement of ddl) db.exec(statement)
  const insertFolder = db.prepare(
    "INSERT INTO folders (path, file_count, bytes, churn, present, scanned_at) VALUES (?, ?, ?, 0, 1, 0)"
  )
  db.transaction(() => {
    for (const f of syntheticFolders(n)) insertFolder.run(f.path, f.fileCount, f.bytes)
  })()
  const begin = db.prepare("BEGIN IMMEDIATE")
  const commit = db.prepare("COMMIT")
  const current = db.prepare(
    "SELECT t.id AS task_id, s.id AS sweep_id, s.number, s.status, s.total, s.done, s.skipped, s.leased, coalesce(s.claim_cursor, s.first_item_id - 1) AS claim_cursor, s.last_item_id FROM tasks t LEFT JOIN sweeps s ON s.id = t.current_sweep_id WHERE t.name = ?"
  )
  const currentItem = db.prepare(
    "SELECT t.id AS task_id, s.id AS sweep_id, s.number, s.status, s.total, s.done, s.skipped, s.leased, w.id AS item_id, w.folder_id, w.status AS item_status, w.lease_owner FROM tasks t LEFT JOIN sweeps s ON s.id = t.current_sweep_id LEFT JOIN folders f ON f.path = ? LEFT JOIN work_items w ON w.id = coalesce((SELECT l.id FROM work_items l WHERE l.sweep_id = s.id AND l.folder_id = f.id AND l.status = 'leased'), (SELECT b.item_id FROM work_items_by_folder b WHERE b.sweep_id = s.id AND b.folder_id = f.id)) WHERE t.name = ?"
  )
  const reclaim = db.prepare(
    "UPDATE work_items SET status = 'pending', lease_owner = NULL, lease_expires_at = NULL WHERE sweep_id = ? AND status = 'leased' AND lease_expires_at <= ?"
  )
  // The claim from the sweep's cursor (migration 0014): the next never-claimed item, the lease
  // of the lower of it and the first returned item, the cursor moved.
  const nextPending = db.prepare(
    "SELECT id FROM work_items WHERE id > ? AND id <= ? AND sweep_id = ? AND status = 'pending' ORDER BY id LIMIT 1"
  )
  const claim = db.prepare(
    "UPDATE work_items SET status = 'leased', lease_owner = @agent, lease_expires_at = @expires WHERE id = (SELECT min(id) FROM (SELECT @next AS id UNION ALL SELECT id FROM (SELECT r.item_id AS id FROM work_items_returned r JOIN work_items w ON w.id = r.item_id AND w.sweep_id = r.sweep_id AND w.status = 'pending' WHERE r.sweep_id = @sweep ORDER BY r.item_id LIMIT 1))) RETURNING id, path, score"
  )
  const moveCursor = db.prepare("UPDATE sweeps SET claim_cursor = ? WHERE id = ?")
  const finish = db.prepare(
    "UPDATE work_items SET status = 'done', lease_owner = NULL, lease_expires_at = NULL, completed_at = ? WHERE id = ? AND status IN ('pending', 'leased')"
  )
  const close = db.prepare("UPDATE sweeps SET status = 'complete', closed_at = ? WHERE id = ? AND status = 'active'")
  const visit = db.prepare(
    "INSERT INTO visits (task_id, sweep, folder_id, path, agent, status, reason, found, at) VALUES (?, ?, ?, ?, ?, 'done', NULL, NULL, ?)"
  )
  const insertTask = db.prepare("INSERT INTO tasks (name, created_at) VALUES (?, 0) RETURNING id")
  const insertSweep = db.prepare(
    "INSERT INTO sweeps (task_id, number, status, strategy, total, opened_at, first_item_id, last_item_id) VALUES (?, 1, 'active', 'weighted', ?, 0, (SELECT coalesce(max(id), 0) + 1 FROM work_items), (SELECT coalesce(max(id), 0) + ? FROM work_items)) RETURNING id"
  )
  const insertItems = db.prepare(
    "INSERT INTO work_items (sweep_id, folder_id, path, status, score) SELECT ?, id, path, 'pending', score FROM (SELECT id, path, (id * 7919 % 10007) / 10007.0 AS score FROM folders) ORDER BY score DESC, path"
  )
  const setCurrent = db.prepare("UPDATE tasks SET current_sweep_id = ? WHERE id = ?")
  const row = (value: unknown) => value as Record<string, number | string>

  let drains = 0
  /** Drains up to `limit` cycles of a fresh sweep; returns [cycles, µs per cycle]. */
  const run = (limit: number): [number, number] => {
    const task = `floor-${drains++}`
    db.transaction(() => {
      const taskId = insertTask.pluck().get(task)
      const sweepId = insertSweep.pluck().get(taskId, n, n)
      insertItems.run(sweepId)
      setCurrent.run(sweepId, taskId)
    })()
    let now = 1
    let cycles = 0
    const start = performance.now()
    while (cycles < limit) {
      now++
      // claim: read the sweep, reclaim expired leases if any are out, lease the best item.
      begin.run()
      const c = row(current.get(task))
      if (Number(c["leased"]) > 0) reclaim.run(c["sweep_id"], now)
      const cursor = Number(c["claim_cursor"])
      const last = Number(c["last_item_id"])
      const found: unknown = nextPending.pluck().get(cursor, last, c["sweep_id"])
      const next = typeof found === "number" ? found : null
      const claimed = claim.get({ agent, expires: now + 86_400_000, next, sweep: c["sweep_id"] })
      const claimedId = claimed === undefined ? null : row(claimed)["id"]
      const moved = next === null ? last : claimedId === next ? next : next - 1
      if (moved !== cursor) moveCursor.run(moved, c["sweep_id"])
      commit.run()
      if (claimed === undefined) break
      const p = row(claimed)["path"]
      // complete: read sweep and item, finish it, record the visit (a trigger moves the memory).
      begin.run()
      const it = row(currentItem.get(p, task))
      finish.run(now, it["item_id"])
      if (Number(it["total"]) - Number(it["done"]) - Number(it["skipped"]) - 1 <= 0) close.run(now, it["sweep_id"])
      visit.run(it["task_id"], it["number"], it["folder_id"], p, agent, now)
      commit.run()
      cycles++
    }
    return [cycles, ((performance.now() - start) * 1000) / Math.max(1, cycles)]
  }
  run(WARM_UP_CYCLES)
  return {
    drain: async () => {
      const [cycles, us] = run(Number.POSITIVE_INFINITY)
      if (cycles !== n) throw new Error(`floor drained ${cycles} of ${n}`)
      return us
    },
    close: async () => void db.close()
  }
}

const cycleBench = async () => {
  const ddl = await schemaSql()
  const sizes = quick ? [1000, 5000] : [1000, 10_000, 50_000, 100_000]
  const rows: Array<{
    folders: number
    store: "tmpfs" | "file"
    us_per_cycle: number
    floor_us_per_cycle: number
    ratio: number
  }> = []
  // tmpfs: the store needs two connections to one file, so `:memory:` is no store; a file on
  // /dev/shm (RAM) shows SQLite without the disk, for trail and the floor alike.
  const shm = fs.existsSync("/dev/shm") ? "/dev/shm" : os.tmpdir()
  for (const store of ["tmpfs", "file"] as const) {
    for (const n of sizes) {
      const drains = n <= 10_000 ? 7 : 3
      const dir = store === "tmpfs" ? fs.mkdtempSync(path.join(shm, "trail-bench-cycle-")) : tmp("trail-bench-cycle-")
      const file = (name: string) => path.join(dir, name)
      const trail = await trailRunner(file("trail.db"), n)
      const floorRun = floorRunner(ddl, file("floor.db"), n)
      // Alternate one drain each, so that machine noise hits both alike.
      const ours: Array<number> = []
      const floor: Array<number> = []
      for (let d = 0; d < drains; d++) {
        ours.push(await trail.drain())
        floor.push(await floorRun.drain())
      }
      await trail.close()
      await floorRun.close()
      fs.rmSync(dir, { recursive: true, force: true })
      const row = {
        folders: n,
        store,
        us_per_cycle: round(median(ours)),
        floor_us_per_cycle: round(median(floor)),
        ratio: round(median(ours) / median(floor), 3)
      }
      rows.push(row)
      log(
        `cycle  ${store.padEnd(6)} ${String(n).padStart(6)} folders: ${row.us_per_cycle} µs (floor ${row.floor_us_per_cycle} µs, ratio ${row.ratio})`
      )
    }
  }
  return rows
}

// ---------------------------------------------------------------------------------------------
// cli: process start-up of the hot commands

const timeProcess = (argv: ReadonlyArray<string>, cwd: string) => {
  const start = performance.now()
  const result = spawnSync(at(argv, 0), argv.slice(1), { cwd, encoding: "utf8" })
  const ms = performance.now() - start
  return { ms, result }
}

/**
 * One run of `argv` under /usr/bin/time: wall ms, CPU ms (user + system, 10 ms steps; less
 * disturbed than wall time by what else the machine runs), and the result (stderr ends with
 * time's `%U %S` line).
 */
const timedProcess = (argv: ReadonlyArray<string>, cwd: string) => {
  const run = timeProcess(["/usr/bin/time", "-f", "%U %S", ...argv], cwd)
  const [user = Number.NaN, system = Number.NaN] = (run.result.stderr.trim().split("\n").at(-1) ?? "")
    .split(" ")
    .map(Number)
  if (run.result.status !== 0) throw new Error(`${argv.slice(1).join(" ")} failed: ${run.result.stderr}`)
  return { ms: run.ms, cpuMs: (user + system) * 1000, stdout: run.result.stdout }
}

type CliRow = "next" | "done" | "list" | "version" | "inbox" | "node"

const cliBench = () => {
  const root = tmp("trail-bench-cli-")
  for (const f of syntheticFolders(1000)) {
    fs.mkdirSync(path.join(root, f.path), { recursive: true })
    fs.writeFileSync(path.join(root, f.path, "a.ts"), "x")
  }
  execFileSync(process.execPath, [TRAIL, "init"], { cwd: root })
  const runs = quick ? 5 : 15
  const wall: Record<CliRow, Array<number>> = { next: [], done: [], list: [], version: [], inbox: [], node: [] }
  const cpu: Record<CliRow, Array<number>> = { next: [], done: [], list: [], version: [], inbox: [], node: [] }
  const record = (row: CliRow, run: { readonly ms: number; readonly cpuMs: number }) => {
    wall[row].push(run.ms)
    cpu[row].push(run.cpuMs)
  }
  // `--version` and an empty inbox (no hook events in this root) do almost no work of their
  // own: they are what every `trail` start costs.
  const fixed: ReadonlyArray<readonly [CliRow, ReadonlyArray<string>]> = [
    ["node", [process.execPath, "-e", "0"]],
    ["version", [process.execPath, TRAIL, "--version"]],
    ["inbox", [process.execPath, TRAIL, "inbox", "--limit", "50"]]
  ]
  for (let i = 0; i < runs; i++) {
    for (const [row, argv] of fixed) record(row, timedProcess(argv, root))
    const n = timedProcess([process.execPath, TRAIL, "next", "--task", "cli", "--agent", "bench"], root)
    record("next", n)
    const p = (JSON.parse(n.stdout) as { path: string }).path
    record(
      "done",
      timedProcess([process.execPath, TRAIL, "done", "--task", "cli", "--path", p, "--agent", "bench"], root)
    )
    // A person's listing of the open sweep (1,000 folders): start-up plus one read of 100 rows.
    record("list", timedProcess([process.execPath, TRAIL, "list", "--task", "cli", "--limit", "100"], root))
  }
  fs.rmSync(root, { recursive: true, force: true })
  const rows: ReadonlyArray<CliRow> = ["next", "done", "list", "version", "inbox", "node"]
  const result = {
    ...Object.fromEntries(rows.map((row) => [`${row}_ms`, round(median(wall[row]), 1)])),
    ...Object.fromEntries(rows.map((row) => [`${row}_cpu_ms`, round(median(cpu[row]))]))
  }
  const line = (of: Record<CliRow, Array<number>>) =>
    `next ${round(median(of.next), 1)}, done ${round(median(of.done), 1)}, list --limit 100 ${round(median(of.list), 1)}, --version ${round(median(of.version), 1)}, inbox --limit 50 (empty) ${round(median(of.inbox), 1)}, node -e 0 ${round(median(of.node), 1)} ms`
  log(`cli    wall: ${line(wall)}`)
  log(`cli    cpu:  ${line(cpu)}`)
  return result
}

// ---------------------------------------------------------------------------------------------
// init: the walk against find

const initBench = () => {
  const folders = quick ? 1000 : 10_000
  const perFolder = 10
  const root = tmp("trail-bench-init-")
  for (let i = 0; i < folders; i++) {
    const dir = path.join(root, `area${Math.floor(i / 100)}`, `mod${i}`)
    fs.mkdirSync(dir, { recursive: true })
    for (let f = 0; f < perFolder; f++) fs.writeFileSync(path.join(dir, `f${f}.ts`), "x".repeat(1 + ((i + f) % 50)))
  }
  const find = () => {
    const start = performance.now()
    const r = spawnSync("find", [root, "-type", "f", "-printf", "%s\\n"], { maxBuffer: 64 * 1024 * 1024 })
    if (r.status !== 0) throw new Error("find failed")
    return performance.now() - start
  }
  const init = () => {
    fs.rmSync(path.join(root, ".trail"), { recursive: true, force: true })
    const start = performance.now()
    const r = spawnSync(process.execPath, [TRAIL, "init"], { cwd: root, encoding: "utf8" })
    if (r.status !== 0) throw new Error(`trail init failed: ${r.stderr}`)
    return performance.now() - start
  }
  find() // warm the page cache for both
  const runs = 3
  const initMs: Array<number> = []
  const findMs: Array<number> = []
  for (let i = 0; i < runs; i++) {
    findMs.push(find())
    initMs.push(init())
  }
  fs.rmSync(root, { recursive: true, force: true })
  const result = { files: folders * perFolder, ms: round(median(initMs), 1), find_ms: round(median(findMs), 1) }
  log(
    `init   ${result.files} files: trail init ${result.ms} ms, find ${result.find_ms} ms (ratio ${round(result.ms / result.find_ms)})`
  )
  return result
}

// ---------------------------------------------------------------------------------------------
// open: a new sweep over 100k folders with 200 sweeps of history

const openBench = () =>
  Effect.gen(function* () {
    const folders = quick ? 10_000 : 100_000
    const history = 200
    const dir = tmp("trail-bench-open-")
    const file = path.join(dir, "state.db")
    const ctx = yield* Layer.build(schedulerOn(file))
    const store = Context.get(ctx, CoverageStore.CoverageStore)
    const scheduler = Context.get(ctx, Scheduler.Scheduler)
    const database = Context.get(ctx, Database.Database)
    yield* store.register(syntheticFolders(folders), 0)
    const task = TaskName.make("history")
    // Synthesised history, as 200 completed sweeps leave it: the sweeps, a visit per folder of the
    // last sweep and of 1% of folders in each older one, and every folder's memory.
    yield* database.immediate((db) => {
      const taskId = Number(db.pluck("INSERT INTO tasks (name, created_at) VALUES (?, 0) RETURNING id", task))
      const sweep =
        "INSERT INTO sweeps (task_id, number, status, strategy, total, done, opened_at, closed_at) VALUES (?, ?, 'complete', 'weighted', ?, ?, ?, ?) RETURNING id"
      let last = 0
      for (let s = 1; s <= history; s++)
        last = Number(db.pluck(sweep, taskId, s, folders, folders, s * 1000, s * 1000 + 500))
      db.run("UPDATE tasks SET current_sweep_id = ? WHERE id = ?", last, taskId)
      db.run(
        `INSERT INTO visits (task_id, sweep, folder_id, path, agent, status, found, at)
         SELECT ?, s.value, f.id, f.path, 'a', 'done', f.id % 3, s.value * 1000
         FROM folders f JOIN json_each(?) s WHERE s.value = ? OR f.id % 100 = s.value % 100`,
        taskId,
        JSON.stringify(Array.from({ length: history }, (_, i) => i + 1)),
        history
      )
      db.run(
        `INSERT INTO folder_memory (task_id, folder_id, last_visited_at, outcome, outcome_at)
         SELECT ?, id, ? - (id % 1000) * 1000, id % 5, ? FROM folders WHERE true
         ON CONFLICT (task_id, folder_id) DO UPDATE SET last_visited_at = excluded.last_visited_at,
           outcome = excluded.outcome, outcome_at = excluded.outcome_at`,
        taskId,
        history * 1000,
        history * 1000
      )
    })
    const runs = 3
    const times: Array<number> = []
    for (let r = 0; r < runs; r++) {
      const start = performance.now()
      const opened = yield* scheduler.newSweep({ task })
      times.push(performance.now() - start)
      if (opened.total !== folders) throw new Error("open: wrong total")
      // Close it again so the next run opens another sweep on the same history.
      yield* database.immediate((db) => db.run("UPDATE sweeps SET status = 'complete' WHERE status = 'active'"))
    }
    fs.rmSync(dir, { recursive: true, force: true })
    const result = { folders, history_sweeps: history, ms: round(median(times), 1) }
    log(`open   ${folders} folders, ${history} sweeps of history: ${result.ms} ms`)
    return result
  }).pipe(Effect.scoped, Effect.provide(NodeContext.layer), Effect.runPromise)

// ---------------------------------------------------------------------------------------------

// ---------------------------------------------------------------------------------------------
// fleet: an idle supervisor with 20 live workers, and event latency across processes

const sleepMs = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

const fleetBench = async () => {
  const workers = 20
  const windowSecs = quick ? 10 : 30
  const notes = quick ? 20 : 100
  const root = tmp("trail-bench-fleet-")
  const socket = `trail-bench-${process.pid}`
  fs.mkdirSync(path.join(root, "src"))
  fs.writeFileSync(path.join(root, "src", "a.ts"), "x")
  fs.writeFileSync(
    path.join(root, ".trail.toml"),
    `[worker]\ntmux_socket = "${socket}"\nmax_active = ${workers}\nlease_secs = 60\n`
  )
  // Its own HOME: the kind's trust is recorded there.
  const home = { HOME: path.join(root, "home") }
  const run = (args: ReadonlyArray<string>, env: Record<string, string> = {}) =>
    execFileSync(process.execPath, [TRAIL, ...args], {
      cwd: root,
      env: { ...process.env, ...home, ...env },
      encoding: "utf8"
    })
  run(["init"])
  fs.mkdirSync(path.join(root, ".trail", "kinds"), { recursive: true })
  fs.writeFileSync(path.join(root, ".trail", "kinds", "idle.md"), '---\ncommand: [sleep, "3600"]\n---\n')
  run(["kinds", "trust", "idle"])
  for (let i = 0; i < workers; i++) run(["spawn", "--as", "idle", `idle worker ${i}`])
  const supervisor = spawn(process.execPath, [TRAIL, "supervise"], { cwd: root, stdio: ["ignore", "ignore", "ignore"] })
  const baseline = spawn(process.execPath, ["-e", "setInterval(() => {}, 1000)"], { stdio: "ignore" })
  try {
    // Wait until every worker is adopted (its lease is held).
    for (let i = 0; ; i++) {
      const list = JSON.parse(run(["workers"])) as Array<{ lease_owner: string | null; state: string }>
      if (list.filter((w) => w.lease_owner !== null && w.state === "running").length === workers) break
      if (i > 200) throw new Error("the supervisor did not adopt the workers")
      await sleepMs(100)
    }
    await sleepMs(2000)
    const [supervisorPid, baselinePid] = [supervisor.pid, baseline.pid]
    if (supervisorPid === undefined || baselinePid === undefined) throw new Error("a process did not start")
    const s0 = procSample(supervisorPid)
    const b0 = procSample(baselinePid)
    await sleepMs(windowSecs * 1000)
    const s1 = procSample(supervisorPid)
    const b1 = procSample(baselinePid)
    const cpu = (a: { ticks: number }, b: { ticks: number }) => cpuPercent(a, b, windowSecs)

    // Latency: a protocol call in one process, the event on another process's PubSub.
    const follower = spawn(process.execPath, [TRAIL, "events", "--follow", "--since", "0"], { cwd: root })
    const arrivals = new Map<string, { at: number; eventAt: number }>()
    let buffer = ""
    follower.stdout.on("data", (chunk: Buffer) => {
      const now = Date.now()
      buffer += chunk.toString("utf8")
      let newline = buffer.indexOf("\n")
      while (newline >= 0) {
        const event = JSON.parse(buffer.slice(0, newline)) as { at: number; data: { text?: string } }
        if (event.data.text !== undefined) arrivals.set(event.data.text, { at: now, eventAt: event.at })
        buffer = buffer.slice(newline + 1)
        newline = buffer.indexOf("\n")
      }
    })
    // The follower is subscribed once it has printed the backlog (the 20 spawn events).
    for (let waited = 0; arrivals.size < workers; waited++) {
      if (waited > 300) throw new Error("the follower did not start")
      await sleepMs(100)
    }
    await sleepMs(500)
    const fromCommit: Array<number> = []
    const fromCall: Array<number> = []
    for (let i = 0; i < notes; i++) {
      const text = `latency probe ${i}`
      const start = Date.now()
      run(["worker", "note", text], { TRAIL_WORKER_ID: "w1" })
      for (let waited = 0; !arrivals.has(text); waited++) {
        if (waited > 10_000) throw new Error(`event ${i} never arrived`)
        await sleepMs(1)
      }
      const arrival = arrivals.get(text)
      if (arrival === undefined) throw new Error(`event ${i} arrived and is gone`)
      fromCommit.push(arrival.at - arrival.eventAt)
      fromCall.push(arrival.at - start)
    }
    follower.kill("SIGINT")
    const result = {
      workers,
      window_secs: windowSecs,
      supervisor_cpu_percent: cpu(s0, s1),
      supervisor_rss_mb: round(s1.rssKb / 1024, 1),
      idle_node_cpu_percent: cpu(b0, b1),
      idle_node_rss_mb: round(b1.rssKb / 1024, 1),
      events: notes,
      commit_to_pubsub_p50_ms: percentile(fromCommit, 50),
      commit_to_pubsub_p95_ms: percentile(fromCommit, 95),
      call_to_pubsub_p50_ms: percentile(fromCall, 50),
      call_to_pubsub_p95_ms: percentile(fromCall, 95)
    }
    log(
      `fleet  idle supervisor, ${workers} workers: ${result.supervisor_cpu_percent}% cpu, ${result.supervisor_rss_mb} MB (idle node: ${result.idle_node_cpu_percent}%, ${result.idle_node_rss_mb} MB)`
    )
    log(
      `events commit→pubsub p50 ${result.commit_to_pubsub_p50_ms} ms p95 ${result.commit_to_pubsub_p95_ms} ms; call→pubsub p50 ${result.call_to_pubsub_p50_ms} ms p95 ${result.call_to_pubsub_p95_ms} ms`
    )
    return result
  } finally {
    supervisor.kill("SIGINT")
    await sleepMs(300)
    supervisor.kill("SIGINT")
    baseline.kill()
    await sleepMs(1500)
    try {
      execFileSync("tmux", ["-L", socket, "kill-server"], { stdio: "ignore" })
    } catch {
      // no tmux server (process substrate)
    }
    fs.rmSync(root, { recursive: true, force: true })
  }
}

// ---------------------------------------------------------------------------------------------
// inbox: a Claude Code Stop hook until its item is visible in `trail inbox`, and a hook's cost

const inboxBench = () => {
  const runs = quick ? 10 : 40
  const root = tmp("trail-bench-inbox-")
  fs.mkdirSync(path.join(root, "src"))
  fs.writeFileSync(path.join(root, "src", "a.ts"), "x")
  execFileSync(process.execPath, [TRAIL, "init"], { cwd: root })
  const hookMs: Array<number> = []
  const visibleMs: Array<number> = []
  const cpuMs: Array<number> = []
  const rssMb: Array<number> = []
  const node: Array<number> = []
  for (let i = 0; i < runs; i++) {
    node.push(timeProcess([process.execPath, "-e", "0"], root).ms)
    const payload = JSON.stringify({
      session_id: `bench-${i}`,
      hook_event_name: "Stop",
      cwd: root,
      transcript_path: "/tmp/t.jsonl",
      last_assistant_message: `Turn ${i} finished.\n- one\n- two`
    })
    const start = performance.now()
    // /usr/bin/time reports the hook process's CPU time and peak RSS.
    const hook = spawnSync("/usr/bin/time", ["-f", "%U %S %M", process.execPath, TRAIL, "hook", "claude"], {
      cwd: root,
      input: payload,
      encoding: "utf8"
    })
    const hooked = performance.now()
    const inbox = spawnSync(process.execPath, [TRAIL, "inbox"], { cwd: root, encoding: "utf8" })
    const visible = performance.now()
    if (hook.status !== 0 || !inbox.stdout.includes(`"bench-${i}"`))
      throw new Error(`the item of hook ${i} is not in the inbox`)
    const usage = (hook.stderr.trim().split("\n").pop() ?? "").split(" ").map(Number)
    const [user, sys, rssKb] = [at(usage, 0), at(usage, 1), at(usage, 2)]
    hookMs.push(hooked - start)
    visibleMs.push(visible - start)
    cpuMs.push((user + sys) * 1000)
    rssMb.push(rssKb / 1024)
  }
  fs.rmSync(root, { recursive: true, force: true })
  const result = {
    runs,
    hook_p50_ms: round(percentile(hookMs, 50), 1),
    hook_p95_ms: round(percentile(hookMs, 95), 1),
    stop_to_visible_p50_ms: round(percentile(visibleMs, 50), 1),
    stop_to_visible_p95_ms: round(percentile(visibleMs, 95), 1),
    hook_cpu_ms: round(median(cpuMs), 1),
    hook_rss_mb: round(median(rssMb), 1),
    node_ms: round(median(node), 1)
  }
  log(
    `inbox  hook p50 ${result.hook_p50_ms} ms p95 ${result.hook_p95_ms} ms (cpu ${result.hook_cpu_ms} ms, ${result.hook_rss_mb} MB); Stop→visible p50 ${result.stop_to_visible_p50_ms} ms p95 ${result.stop_to_visible_p95_ms} ms; node -e 0 ${result.node_ms} ms`
  )
  return result
}

// ---------------------------------------------------------------------------------------------
// checkpoint: a 100 MB Claude Code transcript through the session extractor and the composer

/**
 * A transcript of about `bytes` bytes: the real fixture's lines (Claude Code 2.1.197) repeated,
 * each copy with its own tool ids (so results pair with their calls) and its own file.
 */
const synthesiseTranscript = (file: string, bytes: number) => {
  const fixture = fs.readFileSync(
    path.resolve(import.meta.dirname, "..", "libs", "checkpoints", "test", "fixtures", "session.jsonl"),
    "utf8"
  )
  const out = fs.openSync(file, "w")
  let written = 0
  for (let copy = 0; written < bytes; copy++) {
    const text = fixture.replaceAll("toolu_stub", `toolu_c${copy}_`).replaceAll("src/b.ts", `src/f${copy % 500}.ts`)
    fs.writeSync(out, text)
    written += Buffer.byteLength(text)
  }
  fs.closeSync(out)
  return written
}

const checkpointBench = async () => {
  const bytes = (quick ? 10 : 100) * 1024 * 1024
  const dir = tmp("trail-bench-checkpoint-")
  const file = path.join(dir, "session.jsonl")
  const size = synthesiseTranscript(file, bytes)
  const runs = quick ? 2 : 3
  const wcMs: Array<number> = []
  const splitMs: Array<number> = []
  const extractMs: Array<number> = []
  const peakRssMb: Array<number> = []
  const peakHeapMb: Array<number> = []
  let artifacts = 0
  let problems: ReadonlyArray<string> = []
  /** The floor in Node: the same file streamed in 64 KiB chunks, newlines counted, nothing parsed. */
  const bareSplit = () =>
    new Promise<number>((resolve, reject) => {
      let lines = 0
      fs.createReadStream(file, { highWaterMark: 64 * 1024 })
        .on("data", (chunk) => {
          if (typeof chunk === "string") return
          for (let i = chunk.indexOf(10); i !== -1; i = chunk.indexOf(10, i + 1)) lines++
        })
        .on("end", () => resolve(lines))
        .on("error", reject)
    })
  for (let r = 0; r < runs; r++) {
    let start = performance.now()
    if (spawnSync("wc", ["-l", file]).status !== 0) throw new Error("wc failed")
    wcMs.push(performance.now() - start)
    start = performance.now()
    await bareSplit()
    splitMs.push(performance.now() - start)
    const rss0 = process.memoryUsage().rss
    let peakRss = rss0
    let peakHeap = 0
    const sampler = setInterval(() => {
      const usage = process.memoryUsage()
      peakRss = Math.max(peakRss, usage.rss)
      peakHeap = Math.max(peakHeap, usage.heapUsed)
    }, 10)
    start = performance.now()
    const bundle = await Effect.runPromise(
      Checkpoints.readSession(file, "bench").pipe(
        Effect.map(({ drafts, problems }) =>
          Checkpoints.composeBundle({
            id: CheckpointId.make("cp-20261122-000000-0000"),
            createdAt: 0,
            note: "",
            drafts,
            problems
          })
        ),
        Effect.provide(NodeContext.layer)
      )
    )
    extractMs.push(performance.now() - start)
    clearInterval(sampler)
    peakRssMb.push((peakRss - rss0) / 2 ** 20)
    peakHeapMb.push(peakHeap / 2 ** 20)
    artifacts = bundle.artifacts.length
    problems = bundle.problems
  }
  fs.rmSync(dir, { recursive: true, force: true })
  const result = {
    mb: round(size / 2 ** 20, 1),
    ms: round(median(extractMs), 1),
    wc_ms: round(median(wcMs), 1),
    split_ms: round(median(splitMs), 1),
    rss_growth_mb: round(median(peakRssMb), 1),
    peak_heap_mb: round(median(peakHeapMb), 1),
    artifacts,
    problems
  }
  log(
    `checkpoint ${result.mb} MB transcript: ${result.ms} ms (wc -l ${result.wc_ms} ms, bare line split ${result.split_ms} ms), RSS +${result.rss_growth_mb} MB, peak heap ${result.peak_heap_mb} MB, ${artifacts} artifacts`
  )
  return result
}

const machine = () => ({
  cpu: os.cpus()[0]?.model ?? "unknown",
  cores: os.cpus().length,
  memory_gib: round(os.totalmem() / 2 ** 30, 1),
  node: process.version,
  sqlite: String(new Sqlite(":memory:").prepare("SELECT sqlite_version()").pluck().get()),
  load_average: os.loadavg().map((x) => round(x))
})

const main = async () => {
  if (!fs.existsSync(path.join(path.dirname(TRAIL), "..", "dist", "trail.cjs")))
    throw new Error("build the CLI first: npm run build")
  const started = machine()
  const cycle = wanted("cycle") ? await cycleBench() : null
  const cli = wanted("cli") ? cliBench() : null
  const init = wanted("init") ? initBench() : null
  const open = wanted("open") ? await openBench() : null
  const fleet = wanted("fleet") ? await fleetBench() : null
  const fleetScale = wanted("fleet-scale") ? await fleetScaleBench({ quick, log }) : null
  const inbox = wanted("inbox") ? inboxBench() : null
  const hookRate = wanted("hook-rate") ? await hookRateBench({ quick, log }) : null
  const checkpoint = wanted("checkpoint") ? await checkpointBench() : null
  const search = wanted("search") ? await searchBench({ trail: TRAIL, quick }) : null
  if (search !== null) log(`search: ${JSON.stringify(search)}`)
  const inboxScale = wanted("inbox-scale") ? await inboxScaleBench({ quick, log }) : null
  const logScale = wanted("log-scale") ? logScaleBench({ quick, log }) : null
  const scale = wanted("scale") ? await schedulerScaleBench({ trail: TRAIL, quick, log }) : null
  const result = {
    machine: started,
    quick,
    cycle,
    cli,
    init,
    open,
    fleet,
    fleetScale,
    inbox,
    hookRate,
    checkpoint,
    search,
    inboxScale,
    logScale,
    scale
  }
  if (json) process.stdout.write(`${JSON.stringify(result)}\n`)
}

main().catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? error.stack : String(error)}\n`)
  process.exit(1)
})
