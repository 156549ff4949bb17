/**
 * `--only=scale`: the scheduler at 200,000 folders (issue 14), every command as a process with its
 * wall time, CPU time (user + system) and peak RSS (`/usr/bin/time`), each against a baseline
 * measured in the same run (CPU time is the figure to read on a loaded machine):
 *
 * - `trail init` on a generated tree (one file per folder, `area*∕sub*∕mod*`) against
 *   `find ROOT -type f -printf '%s\n'` (the walk and its stats);
 * - the first `trail next` of a task (it opens the sweep: one item per folder, scores frozen)
 *   against a bare `INSERT … SELECT` of the same rows in the same order (claim order: score
 *   DESC, then path) into the same table and indexes with a constant-time score, in this process
 *   (better-sqlite3), and against `node -e 0` (since migration 0015 the open no longer fills
 *   work_items_by_folder, and neither does the floor);
 * - `trail list --limit 100` and a full `trail list` (streamed: its RSS is the point) against
 *   `node -e 0`.
 *
 * Medians of several runs; `--quick` uses 5,000 folders (a smoke run, not for docs).
 */
import Sqlite from "better-sqlite3"
import { spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { median } from "./stats.js"

interface Options {
  /** The CLI (apps/cli/bin/trail.cjs). */
  readonly trail: string
  readonly quick: boolean
  readonly log: (line: string) => void
}

const round = (x: number, digits = 1) => Math.round(x * 10 ** digits) / 10 ** digits

/** One process: its wall time (ms), CPU time (user + system, ms), peak RSS (MB) and stdout. Throws when it fails. */
const measured = (argv: ReadonlyArray<string>, cwd: string) => {
  const start = performance.now()
  const r = spawnSync("/usr/bin/time", ["-f", "%U %S %M", ...argv], { cwd, encoding: "utf8", maxBuffer: 1 << 30 })
  const ms = performance.now() - start
  if (r.status !== 0 && r.status !== 3) throw new Error(`${argv.join(" ")} failed (${r.status}): ${r.stderr}`)
  const [user = Number.NaN, system = Number.NaN, rssKb = Number.NaN] = (r.stderr.trim().split("\n").pop() ?? "")
    .split(" ")
    .map(Number)
  return { ms, cpuMs: 1000 * (user + system), rssMb: rssKb / 1024, stdout: r.stdout }
}

/** `n` folders of one file each, 100 per `sub`, 1,000 per `area`. */
const generate = (root: string, n: number) => {
  for (let i = 0; i < n; i++) {
    const dir = path.join(root, `area${Math.floor(i / 1000)}`, `sub${Math.floor(i / 100) % 10}`, `mod${i}`)
    fs.mkdirSync(dir, { recursive: true })
    fs.writeFileSync(path.join(dir, "f.ts"), "x".repeat(1 + (i % 50)))
  }
}

type Sample = { ms: number; cpuMs: number; rssMb: number }

const summary = (samples: ReadonlyArray<Sample>) => ({
  ms: round(median(samples.map((s) => s.ms))),
  cpu_ms: round(median(samples.map((s) => s.cpuMs))),
  rss_mb: round(median(samples.map((s) => s.rssMb)))
})

export const schedulerScaleBench = async ({ log, quick, trail }: Options) => {
  const folders = quick ? 5_000 : 200_000
  const runs = quick ? 2 : 3
  const root = fs.mkdtempSync(path.join(os.tmpdir(), "trail-bench-scale-"))
  const node = [process.execPath]
  try {
    generate(root, folders)
    const find = () => measured(["find", root, "-type", "f", "-printf", "%s\\n"], root)
    find() // the page cache warm for both
    const inits: Array<Sample> = []
    const finds: Array<Sample> = []
    for (let r = 0; r < runs; r++) {
      fs.rmSync(path.join(root, ".trail"), { recursive: true, force: true })
      finds.push(find())
      const init = measured([...node, trail, "init"], root)
      const registered: unknown = JSON.parse(init.stdout)
      if (typeof registered !== "object" || registered === null || Reflect.get(registered, "folders") !== folders)
        throw new Error(`trail init registered ${init.stdout}`)
      inits.push(init)
    }

    // The first `next` of a fresh task opens its sweep; the floor inserts the same rows bare.
    const nodes: Array<Sample> = []
    const opens: Array<Sample> = []
    const floors: Array<{ ms: number; cpuMs: number }> = []
    const db = new Sqlite(path.join(root, ".trail", "state.db"))
    db.pragma("synchronous = NORMAL")
    db.pragma("foreign_keys = ON")
    for (let r = 0; r < runs; r++) {
      nodes.push(measured([...node, "-e", "0"], root))
      opens.push(measured([...node, trail, "next", "--task", `open-${r}`, "--agent", "bench"], root))
      db.exec("BEGIN IMMEDIATE")
      const task = db
        .prepare("INSERT INTO tasks (name, created_at) VALUES (?, 0) RETURNING id")
        .pluck()
        .get(`floor-${r}`)
      const first = db.prepare("SELECT coalesce(max(id), 0) + 1 FROM work_items").pluck().get()
      const sweep = db
        .prepare(
          "INSERT INTO sweeps (task_id, number, status, strategy, total, opened_at, first_item_id, last_item_id) VALUES (?, 1, 'active', 'weighted', ?, 0, ?, ? + ? - 1) RETURNING id"
        )
        .pluck()
        .get(task, folders, first, first, folders)
      const start = performance.now()
      const cpu = process.cpuUsage()
      db.prepare(
        `INSERT INTO work_items (sweep_id, folder_id, path, status, score)
         SELECT ?, id, path, 'pending', score FROM (
           SELECT id, path, (id * 7919 % 10007) / 10007.0 AS score FROM folders WHERE present = 1
         ) ORDER BY score DESC, path`
      ).run(sweep)
      db.exec("COMMIT")
      const used = process.cpuUsage(cpu)
      floors.push({ ms: performance.now() - start, cpuMs: (used.user + used.system) / 1000 })
    }
    db.close()

    const limited: Array<Sample> = []
    for (let r = 0; r < runs + 2; r++) {
      const list = measured([...node, trail, "list", "--task", "open-0", "--limit", "100"], root)
      const items: unknown = JSON.parse(list.stdout)
      if (!Array.isArray(items) || items.length !== 100) throw new Error("list --limit 100: not 100 items")
      limited.push(list)
    }
    const full = measured([...node, trail, "list", "--task", "open-0"], root)
    const all: unknown = JSON.parse(full.stdout)
    if (!Array.isArray(all) || all.length !== folders) throw new Error(`list: not ${folders} items`)

    const result = {
      folders,
      init: summary(inits),
      find: summary(finds),
      open: summary(opens),
      bare_insert_ms: round(median(floors.map((f) => f.ms))),
      bare_insert_cpu_ms: round(median(floors.map((f) => f.cpuMs))),
      node: summary(nodes),
      list_limit_100: summary(limited),
      list_all: { ms: round(full.ms), cpu_ms: round(full.cpuMs), rss_mb: round(full.rssMb) },
      load_average: os.loadavg().map((x) => round(x, 2))
    }
    log(
      `scale  ${folders} folders: init ${result.init.ms} ms (cpu ${result.init.cpu_ms}) ${result.init.rss_mb} MB (find ${result.find.ms} ms, cpu ${result.find.cpu_ms}); first next ${result.open.ms} ms (cpu ${result.open.cpu_ms}) ${result.open.rss_mb} MB (bare insert ${result.bare_insert_ms} ms, cpu ${result.bare_insert_cpu_ms}; node -e 0 ${result.node.ms} ms, cpu ${result.node.cpu_ms}, ${result.node.rss_mb} MB)`
    )
    log(
      `scale  list --limit 100 ${result.list_limit_100.ms} ms (cpu ${result.list_limit_100.cpu_ms}) ${result.list_limit_100.rss_mb} MB; list (all) ${result.list_all.ms} ms (cpu ${result.list_all.cpu_ms}) ${result.list_all.rss_mb} MB; load ${result.load_average.join(" ")}`
    )
    return result
  } finally {
    fs.rmSync(root, { recursive: true, force: true })
  }
}
