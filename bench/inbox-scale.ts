/**
 * inbox-scale (issue 14): the inbox projection as the event log grows, measured as a user runs it.
 *
 * A store made by `trail init` is filled straight through its `events` table with Claude Code
 * session events: each session is `session.started`, `session.prompted`, `session.notified`,
 * `session.stopped` (one open `stopped` item), or ends with `session.ended` instead of the
 * notification (no item). Sessions interleave; none has a tmux pane (so `trail inbox`'s reconcile
 * has nothing to check). Then, each a `trail` process (wall time, peak RSS by `/usr/bin/time`):
 *
 * - first fold: `trail inbox --limit 50` on the never-folded store;
 * - rebuild: `trail inbox --rebuild --limit 50`;
 * - later: `trail inbox --limit 50` (median of 5), and the same after one new event (a catch-up);
 * - all JSON: `trail inbox` printing every item.
 *
 * Floors in the same run: `node -e 0` (a process), `trail inbox --limit 50` on a store with no
 * events (the CLI's own start-up and reads), and reading the whole `events` table in this process
 * with better-sqlite3 (every row, its data JSON.parse'd: what any fold must read). The first fold,
 * the rebuild and the floor also give their CPU time, the figure to compare on a loaded machine.
 */
import Sqlite from "better-sqlite3"
import { spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { median } from "./stats.js"

const TRAIL = path.resolve(import.meta.dirname, "..", "apps", "cli", "bin", "trail.cjs")
const round = (x: number, digits = 2) => Math.round(x * 10 ** digits) / 10 ** digits

/**
 * A process's wall time (ms), CPU time (ms: user + system, what the wall time is on an idle
 * machine; on a loaded one the wall time also counts waiting for a core), peak RSS (MB) and stdout.
 */
const timed = (argv: ReadonlyArray<string>, cwd: string) => {
  const start = performance.now()
  const run = spawnSync("/usr/bin/time", ["-f", "%U %S %M", process.execPath, ...argv], {
    cwd,
    encoding: "utf8",
    maxBuffer: 1 << 30
  })
  const ms = performance.now() - start
  if (run.status !== 0) throw new Error(`${argv.join(" ")} exited ${run.status}: ${run.stderr.slice(-2000)}`)
  const [user = NaN, system = NaN, rssKb = NaN] = (run.stderr.trim().split("\n").pop() ?? "").split(" ").map(Number)
  return { ms, cpuMs: (user + system) * 1000, rssMb: rssKb / 1024, stdout: run.stdout }
}

/** Fills the store with `events` session events (¼ of them open items unless `ending`); returns the open count. */
const fill = (database: string, events: number, ending: boolean) => {
  const db = new Sqlite(database)
  const insert = db.prepare(
    `INSERT INTO events (at, type, subject_type, subject_id, data) VALUES (?, ?, 'session', ?, ?)`
  )
  const sessions = Math.floor(events / 4)
  // Sessions interleave in groups of 64, as concurrent sessions' hooks do.
  const GROUP = 64
  let at = 1_700_000_000_000
  db.transaction(() => {
    for (let first = 0; first < sessions; first += GROUP) {
      const group = Array.from({ length: Math.min(GROUP, sessions - first) }, (_, i) => {
        const n = first + i
        return `${n.toString(16).padStart(8, "0")}-bench-4b1e-9c3a-${(n * 7919).toString(16).padStart(12, "0")}`
      })
      const steps = ending
        ? ["session.started", "session.prompted", "session.stopped", "session.ended"]
        : ["session.started", "session.prompted", "session.notified", "session.stopped"]
      for (const type of steps)
        for (const id of group) {
          at += 7
          const data =
            type === "session.stopped"
              ? { cwd: "/home/me/project", transcript_path: `/tmp/${id}.jsonl`, message: `Done ${id}.\n- one\n- two` }
              : type === "session.prompted"
                ? { cwd: "/home/me/project", prompt_length: 42 }
                : { cwd: "/home/me/project", transcript_path: `/tmp/${id}.jsonl` }
          insert.run(at, type, id, JSON.stringify(data))
        }
    }
  })()
  db.close()
  return ending ? 0 : sessions
}

/** Reading every event row and parsing its data, in this process: the floor of any fold (wall and CPU ms). */
const readFloor = (database: string) => {
  const db = new Sqlite(database, { readonly: true })
  const start = performance.now()
  const cpu = process.cpuUsage()
  const count = Number(db.prepare(`SELECT count(*) FROM events`).pluck().get())
  let parsed = 0
  for (const row of db.prepare(`SELECT id, at, type, subject_type, subject_id, data FROM events`).iterate())
    if (typeof row === "object" && row !== null && "data" in row && typeof row.data === "string") {
      JSON.parse(row.data)
      parsed++
    }
  const ms = performance.now() - start
  const used = process.cpuUsage(cpu)
  db.close()
  if (parsed !== count) throw new Error(`read ${parsed} of ${count} events`)
  return { ms, cpuMs: (used.user + used.system) / 1000 }
}

export interface InboxScaleRow {
  readonly events: number
  readonly open: number
  readonly ending: boolean
  readonly read_events_ms: number
  readonly read_events_cpu_ms: number
  readonly first_fold_ms: number
  readonly first_fold_cpu_ms: number
  readonly first_fold_rss_mb: number
  readonly rebuild_ms: number
  readonly rebuild_cpu_ms: number
  readonly rebuild_rss_mb: number
  readonly later_limit50_ms: number
  readonly after_one_event_ms: number
  readonly all_json_ms: number
  readonly all_json_rss_mb: number
  readonly node_ms: number
  readonly empty_store_ms: number
}

/** `--only=inbox-scale`: the rows above for each size (`quick`: small sizes, a smoke run). */
export const inboxScaleBench = async (options: {
  readonly quick: boolean
  readonly log: (line: string) => void
}): Promise<ReadonlyArray<InboxScaleRow>> => {
  const sizes: ReadonlyArray<readonly [events: number, ending: boolean]> = options.quick
    ? [
        [2_000, false],
        [8_000, false],
        [4_000, true]
      ]
    : [
        [10_000, false],
        [40_000, false],
        [160_000, false],
        [1_000_000, false],
        [200_000, true]
      ]
  const rows: Array<InboxScaleRow> = []
  const empty = fs.mkdtempSync(path.join(os.tmpdir(), "trail-bench-inbox-empty-"))
  spawnSync(process.execPath, [TRAIL, "init"], { cwd: empty, encoding: "utf8" })
  const emptyStore = () => median(Array.from({ length: 5 }, () => timed([TRAIL, "inbox", "--limit", "50"], empty).ms))
  for (const [events, ending] of sizes) {
    const root = fs.mkdtempSync(path.join(os.tmpdir(), "trail-bench-inbox-scale-"))
    try {
      spawnSync(process.execPath, [TRAIL, "init"], { cwd: root, encoding: "utf8" })
      const database = path.join(root, ".trail", "state.db")
      const open = fill(database, events, ending)
      const floor = readFloor(database)
      const first = timed([TRAIL, "inbox", "--limit", "50"], root)
      const shown = JSON.parse(first.stdout)
      if (!Array.isArray(shown) || shown.length !== Math.min(50, open))
        throw new Error(`trail inbox --limit 50 printed ${String(shown?.length)} items, expected ${Math.min(50, open)}`)
      const rebuild = timed([TRAIL, "inbox", "--rebuild", "--limit", "50"], root)
      const later = Array.from({ length: 5 }, () => timed([TRAIL, "inbox", "--limit", "50"], root).ms)
      const db = new Sqlite(database)
      db.prepare(
        `INSERT INTO events (at, type, subject_type, subject_id, data) VALUES (?, 'session.stopped', 'session', 'bench-new', '{}')`
      ).run(1_800_000_000_000)
      db.close()
      const afterOne = timed([TRAIL, "inbox", "--limit", "50"], root)
      const all = timed([TRAIL, "inbox"], root)
      const printed = JSON.parse(all.stdout)
      if (!Array.isArray(printed) || printed.length !== open + 1)
        throw new Error(`trail inbox printed ${String(printed?.length)} items, expected ${open + 1}`)
      const node = median(Array.from({ length: 5 }, () => timed(["-e", "0"], root).ms))
      const row: InboxScaleRow = {
        events,
        open,
        ending,
        read_events_ms: round(floor.ms, 0),
        read_events_cpu_ms: round(floor.cpuMs, 0),
        first_fold_ms: round(first.ms, 0),
        first_fold_cpu_ms: round(first.cpuMs, 0),
        first_fold_rss_mb: round(first.rssMb, 0),
        rebuild_ms: round(rebuild.ms, 0),
        rebuild_cpu_ms: round(rebuild.cpuMs, 0),
        rebuild_rss_mb: round(rebuild.rssMb, 0),
        later_limit50_ms: round(median(later), 0),
        after_one_event_ms: round(afterOne.ms, 0),
        all_json_ms: round(all.ms, 0),
        all_json_rss_mb: round(all.rssMb, 0),
        node_ms: round(node, 0),
        empty_store_ms: round(emptyStore(), 0)
      }
      rows.push(row)
      options.log(
        `inbox-scale ${events} events (${open} open${ending ? ", sessions end" : ""}): read floor ${row.read_events_ms} ms (CPU ${row.read_events_cpu_ms} ms); first fold ${row.first_fold_ms} ms (CPU ${row.first_fold_cpu_ms} ms) ${row.first_fold_rss_mb} MB; rebuild ${row.rebuild_ms} ms (CPU ${row.rebuild_cpu_ms} ms) ${row.rebuild_rss_mb} MB; later --limit 50 ${row.later_limit50_ms} ms; after one event ${row.after_one_event_ms} ms; all JSON ${row.all_json_ms} ms ${row.all_json_rss_mb} MB; node -e 0 ${row.node_ms} ms; --limit 50 on an empty store ${row.empty_store_ms} ms`
      )
    } finally {
      fs.rmSync(root, { recursive: true, force: true })
    }
  }
  fs.rmSync(empty, { recursive: true, force: true })
  return rows
}
