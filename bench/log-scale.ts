/**
 * `npm run bench -- --only=log-scale` — the event log at scale, as a user runs it (processes).
 *
 * - read: `trail events` and `trail log` (stdout to /dev/null) over 200k Claude Code session
 *   events (started, prompted, stopped, ended: 50k sessions, 64 at a time), wall time and peak
 *   RSS (`/usr/bin/time -f %M`), at a quarter of the log and at the whole of it (memory must not
 *   grow with the log); `trail log --limit 1000`. Baselines in the same run: `node -e 0`; a bare
 *   better-sqlite3 iterate over the table writing each row as JSON (the floor of `events`); the
 *   same load-everything-then-group-in-memory that `trail log` did before it streamed. And
 *   `trail log` under `--max-old-space-size=64`: it completes, so its live memory is bounded.
 * - archive: `trail gc --archive-before` of 1M such events (six months of them) after the inbox
 *   is current: wall time, peak RSS, size of the archive against the database file; then
 *   `trail events` reading them back from the archive.
 *
 * `--quick`: 20k and 50k events.
 */
import Sqlite from "better-sqlite3"
import { execFileSync, spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { median } from "./stats.js"

const TRAIL = path.resolve(import.meta.dirname, "..", "apps", "cli", "bin", "trail.cjs")
const SQLITE = path.resolve(import.meta.dirname, "..", "node_modules", "better-sqlite3")
const round = (x: number, digits = 2) => Math.round(x * 10 ** digits) / 10 ** digits

/** A fresh root whose log holds `n` session events over `days` days ending now. */
const rootWithEvents = (n: number, days: number) => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), "trail-bench-log-"))
  execFileSync("git", ["init", "-q"], { cwd: root })
  execFileSync(process.execPath, [TRAIL, "init"], { cwd: root })
  const db = new Sqlite(path.join(root, ".trail", "state.db"))
  const insert = db.prepare("INSERT INTO events (at, type, subject_type, subject_id, data) VALUES (?, ?, ?, ?, ?)")
  const types = ["session.started", "session.prompted", "session.stopped", "session.ended"]
  const start = Date.now() - days * 86_400_000
  const step = (days * 86_400_000) / n
  db.transaction(() => {
    // 64 sessions at a time, each through its four events: a realistic interleaving of subjects.
    for (let i = 0; i < n; i++) {
      const wave = Math.floor(i / 256)
      const session = wave * 64 + (i % 64)
      const type = types[Math.floor((i % 256) / 64)] ?? "session.ended"
      const data = JSON.stringify({ cwd: root, pane: null, message: `turn of session ${session}` })
      insert.run(Math.floor(start + i * step), type, "session", `bench-${session}`, data)
    }
  })()
  db.close()
  return root
}

/** Runs `argv` under `/usr/bin/time`, stdout to /dev/null: wall ms and peak RSS in MB. */
const measure = (argv: ReadonlyArray<string>, cwd: string) => {
  const started = performance.now()
  const run = spawnSync("/usr/bin/time", ["-f", "%M", ...argv], {
    cwd,
    stdio: ["ignore", "ignore", "pipe"],
    encoding: "utf8"
  })
  const ms = performance.now() - started
  if (run.status !== 0) throw new Error(`${argv.join(" ")} failed: ${run.stderr}`)
  const kb = Number(run.stderr.trim().split("\n").pop())
  return { ms, mb: kb / 1024 }
}

/** The median wall time and RSS of `runs` runs. */
const medianOf = (runs: number, argv: ReadonlyArray<string>, cwd: string) => {
  const samples = Array.from({ length: runs }, () => measure(argv, cwd))
  return { ms: round(median(samples.map((s) => s.ms)), 0), rss_mb: round(median(samples.map((s) => s.mb)), 1) }
}

const node = (script: string) => [process.execPath, "-e", script]

/** A bare iterate over the table, each row written as a JSON line (what `trail events` must do at least). */
const bareIterate = (db: string) =>
  node(`const S = require(${JSON.stringify(SQLITE)}); const d = new S(${JSON.stringify(db)}, { readonly: true });
let out = []; for (const r of d.prepare("SELECT * FROM events ORDER BY id").iterate()) {
  out.push(JSON.stringify({ id: r.id, at: r.at, type: r.type, subject: { type: r.subject_type, id: r.subject_id }, data: JSON.parse(r.data) }));
  if (out.length === 1000) { process.stdout.write(out.join("\\n") + "\\n"); out = [] } }
process.stdout.write(out.join("\\n") + "\\n")`)

/** Every row loaded, then grouped by subject in memory and printed as one JSON value: `trail log` before it streamed. */
const loadAndGroup = (db: string) =>
  node(`const S = require(${JSON.stringify(SQLITE)}); const d = new S(${JSON.stringify(db)}, { readonly: true });
const rows = d.prepare("SELECT * FROM events ORDER BY id").all(); const groups = new Map();
for (const r of rows) { const e = { id: r.id, at: r.at, type: r.type, subject: { type: r.subject_type, id: r.subject_id }, data: JSON.parse(r.data) };
  const k = r.subject_type + ":" + r.subject_id; const g = groups.get(k); if (g) g.events.push(e); else groups.set(k, { subject: e.subject, events: [e] }) }
process.stdout.write(JSON.stringify([...groups.values()]) + "\\n")`)

export const logScaleBench = (options: { readonly quick: boolean; readonly log: (line: string) => void }) => {
  const { quick, log } = options
  const runs = quick ? 1 : 3
  const n = quick ? 20_000 : 200_000
  const read: Record<string, unknown> = {}
  for (const size of [n / 4, n]) {
    const root = rootWithEvents(size, 30)
    const db = path.join(root, ".trail", "state.db")
    const row = {
      node: medianOf(runs, node("0"), root),
      bare_iterate: medianOf(runs, bareIterate(db), root),
      load_and_group: medianOf(runs, loadAndGroup(db), root),
      events: medianOf(runs, [process.execPath, TRAIL, "events"], root),
      log: medianOf(runs, [process.execPath, TRAIL, "log"], root),
      log_limit_1000: medianOf(runs, [process.execPath, TRAIL, "log", "--limit", "1000"], root),
      // Live memory is bounded: the whole log goes through a 64 MB heap (RSS above is V8 and SQLite caches).
      log_heap_64mb: medianOf(runs, [process.execPath, "--max-old-space-size=64", TRAIL, "log"], root)
    }
    read[String(size)] = row
    log(
      `log-scale ${size} events: events ${row.events.ms} ms / ${row.events.rss_mb} MB, log ${row.log.ms} ms / ${row.log.rss_mb} MB, log --limit 1000 ${row.log_limit_1000.ms} ms, log in a 64 MB heap ${row.log_heap_64mb.ms} ms / ${row.log_heap_64mb.rss_mb} MB; bare iterate ${row.bare_iterate.ms} ms / ${row.bare_iterate.rss_mb} MB, load+group ${row.load_and_group.ms} ms / ${row.load_and_group.rss_mb} MB, node -e 0 ${row.node.ms} ms / ${row.node.rss_mb} MB`
    )
    fs.rmSync(root, { recursive: true, force: true })
  }

  const m = quick ? 50_000 : 1_000_000
  const root = rootWithEvents(m, 180)
  // The inbox is brought current first, so gc's figure is the archive's own work.
  execFileSync(process.execPath, [TRAIL, "inbox"], { cwd: root, stdio: "ignore" })
  const dbBytes = fs.statSync(path.join(root, ".trail", "state.db")).size
  const tomorrow = new Date(Date.now() + 86_400_000).toISOString().slice(0, 10)
  const gc = measure([process.execPath, TRAIL, "gc", "--archive-before", tomorrow], root)
  const dir = path.join(root, ".trail", "archive")
  const files = fs.readdirSync(dir)
  const archiveBytes = files.reduce((sum, name) => sum + fs.statSync(path.join(dir, name)).size, 0)
  const readBack = measure([process.execPath, TRAIL, "events"], root)
  const logBack = measure([process.execPath, TRAIL, "log", "--limit", "1000"], root)
  fs.rmSync(root, { recursive: true, force: true })
  const archive = {
    events: m,
    ms: round(gc.ms, 0),
    rss_mb: round(gc.mb, 1),
    files: files.length,
    archive_mb: round(archiveBytes / 2 ** 20, 1),
    db_mb: round(dbBytes / 2 ** 20, 1),
    events_from_archive: { ms: round(readBack.ms, 0), rss_mb: round(readBack.mb, 1) },
    log_limit_1000_from_archive: { ms: round(logBack.ms, 0), rss_mb: round(logBack.mb, 1) }
  }
  log(
    `log-scale archive ${m} events: gc ${archive.ms} ms / ${archive.rss_mb} MB, ${files.length} files, ${archive.archive_mb} MB (database ${archive.db_mb} MB); events from the archive ${archive.events_from_archive.ms} ms / ${archive.events_from_archive.rss_mb} MB; log --limit 1000 ${archive.log_limit_1000_from_archive.ms} ms`
  )
  return { read, archive }
}
