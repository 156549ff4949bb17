/**
 * `--only=search`: `trail search` over a long event log (issue 14's scale, SPEC §4's search). A
 * store holds `events` events (mostly Claude Code session events, one worker in 20 — spawned, then
 * done or failed), written straight into the `events` table of a store `trail init` made. Then,
 * as a user runs it: the first `trail search` (it folds every worker event of the log into the
 * search index), the next one (nothing new), and one after 1,000 more events. Baseline in the same
 * run: `trail checkpoints` on the same store (a process, the store opened, one query).
 */
import Sqlite from "better-sqlite3"
import { execFileSync, spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { median } from "./stats.js"

const round = (x: number, digits = 2) => Math.round(x * 10 ** digits) / 10 ** digits

/** Appends `n` events after `from`: one worker in 20 events, its spawn and its ending. */
const fill = (file: string, from: number, n: number) => {
  const db = new Sqlite(file)
  const insert = db.prepare("INSERT INTO events (at, type, subject_type, subject_id, data) VALUES (?, ?, ?, ?, ?)")
  db.transaction(() => {
    for (let i = from; i < from + n; i++) {
      const at = 1_795_000_000_000 + i
      if (i % 20 === 0) {
        const worker = `w${i / 20 + 1}`
        insert.run(at, "worker.spawned", "worker", worker, JSON.stringify({ kind: "default", text: `job ${i}` }))
      } else if (i % 20 === 1) {
        const worker = `w${(i - 1) / 20 + 1}`
        if (i % 40 === 1)
          insert.run(
            at,
            "worker.failed",
            "worker",
            worker,
            JSON.stringify({ from: "running", reason: `timeout in step ${i}` })
          )
        else
          insert.run(
            at,
            "worker.ready",
            "worker",
            worker,
            JSON.stringify({
              from: "running",
              result: {
                outcome: "done",
                summary: `fixed module ${i}`,
                evidence: [`src/m${i}.ts:1`],
                recommend: [],
                found: 1
              }
            })
          )
      } else insert.run(at, "session.prompted", "session", `s-${i % 500}`, JSON.stringify({ prompt: `step ${i}` }))
    }
  })()
  db.close()
}

export const searchBench = async (options: { readonly trail: string; readonly quick: boolean }) => {
  const events = options.quick ? 20_000 : 200_000
  const root = fs.mkdtempSync(path.join(os.tmpdir(), "trail-bench-search-"))
  execFileSync("git", ["init", "-q"], { cwd: root })
  const run = (...args: Array<string>) => {
    const started = process.hrtime.bigint()
    const done = spawnSync(process.execPath, [options.trail, ...args], { cwd: root, encoding: "utf8" })
    if (done.status !== 0) throw new Error(`trail ${args.join(" ")}: ${done.stderr}`)
    return { ms: Number(process.hrtime.bigint() - started) / 1e6, stdout: done.stdout }
  }
  run("init")
  const file = path.join(root, ".trail", "state.db")
  fill(file, 0, events)
  const baseline = median([0, 1, 2].map(() => run("checkpoints").ms))
  const first = run("search", "timeout")
  const hits = (JSON.parse(first.stdout) as Array<unknown>).length
  const again = median([0, 1, 2].map(() => run("search", "timeout").ms))
  fill(file, events, 1_000)
  const after = run("search", "timeout").ms
  fs.rmSync(root, { recursive: true, force: true })
  return {
    events,
    workers: events / 20,
    hits,
    first_ms: round(first.ms),
    next_ms: round(again),
    after_1000_ms: round(after),
    baseline_checkpoints_ms: round(baseline)
  }
}
