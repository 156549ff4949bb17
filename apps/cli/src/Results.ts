/**
 * What a sweep found, for people: the scheduler's visits (found, agent) joined in the CLI with
 * the results the fleet's workers handed over (outcome, summary, evidence, recommendations).
 * The two libs sit at the same level and never import each other, so they are composed here.
 */
import type {
  ChangeSetError,
  InvalidTransition,
  ProtocolError,
  StoreError,
  SubstrateError,
  TaskName,
  TaskNotFound,
  Worker,
  WorkerFinished
} from "@trail/domain"
import { Visits } from "@trail/scheduler"
import type * as SqlClient from "@effect/sql/SqlClient"
import { Workers } from "@trail/workers"
import { Effect } from "effect"
import { bold, cyan, dim, green, termWidth, time, wrap, yellow } from "./Pretty.js"

/** One folder of a sweep with findings or a worker's result (`trail results`). Times: ms since epoch. */
export interface FolderResult {
  readonly path: string
  readonly status: "done" | "skipped"
  /** Findings reported for the folder (null: not reported). */
  readonly found: number | null
  readonly outcome: string | null
  readonly summary: string | null
  readonly evidence: ReadonlyArray<string>
  readonly recommendations: ReadonlyArray<string>
  /** The fleet worker that covered it (null: an agent loop, not a worker). */
  readonly worker: string | null
  readonly kind: string | null
  /** Who completed the folder (a worker's id in a fleet). */
  readonly agent: string
  readonly visited_at: number
}

export interface SweepResults {
  readonly task: TaskName
  readonly sweep: number | null
  readonly results: ReadonlyArray<FolderResult>
}

/** Why a sweep's results cannot be read (Workers.WorkersError spelled out, so the CLI's command types stay nameable). */
export type ResultsError =
  TaskNotFound | StoreError | SubstrateError | WorkerFinished | InvalidTransition | ProtocolError | ChangeSetError

/** found desc (unreported last), then path. */
const byFound = (a: FolderResult, b: FolderResult) =>
  (b.found ?? -1) - (a.found ?? -1) || (a.path < b.path ? -1 : a.path > b.path ? 1 : 0)

/**
 * The folders of sweep `sweep` of `task` (default: the latest) that reported findings or whose
 * worker handed over a result, ordered by found (desc) then path. Fails with TaskNotFound for a
 * task never started.
 */
export const sweepResults = (
  task: TaskName,
  sweep?: number
): Effect.Effect<SweepResults, ResultsError, SqlClient.SqlClient | Workers.Workers> =>
  Effect.gen(function* () {
    const { sweep: number, visits } = yield* Visits.ofSweep(task, sweep)
    const workers = visits.length === 0 ? [] : yield* Effect.flatMap(Workers.Workers, (w) => w.list)
    // A fleet completes a folder under the id of the worker that covered it.
    const byId = new Map<string, Worker>()
    for (const w of workers) if (w.task === task && w.path !== null) byId.set(`${w.id}\u0000${w.path}`, w)
    const results: Array<FolderResult> = []
    for (const visit of visits) {
      const worker = byId.get(`${visit.agent}\u0000${visit.path}`)
      const result = worker?.result ?? null
      if ((visit.found ?? 0) <= 0 && result === null) continue
      results.push({
        path: visit.path,
        status: visit.status,
        found: visit.found ?? result?.found ?? null,
        outcome: result?.outcome ?? null,
        summary: result?.summary ?? null,
        evidence: result?.evidence ?? [],
        recommendations: result?.recommend ?? [],
        worker: worker?.id ?? null,
        kind: worker?.kind ?? null,
        agent: visit.agent,
        visited_at: visit.at
      })
    }
    return { task, sweep: number, results: results.sort(byFound) } satisfies SweepResults
  })

const bullets = (title: string, items: ReadonlyArray<string>, width: number) =>
  items.length === 0
    ? []
    : [
        `    ${dim(title)}`,
        ...items.flatMap((item) => wrap(item, width - 8).map((l, i) => `${i === 0 ? "    - " : "      "}${l}`))
      ]

/** `trail results --pretty`: one block per folder, wrapped to the terminal. */
export const renderResults = (task: string, sweep: number | null, results: ReadonlyArray<FolderResult>): string => {
  const width = termWidth()
  const title = bold(
    `${task} · ${sweep === null ? "no sweep yet" : `sweep ${sweep}`} · ${results.length} folder(s) with findings or results`
  )
  if (results.length === 0) return `${title}\n  ${dim("(none)")}`
  const blocks = results.map((r) => {
    const found = r.found === null ? dim("found —") : r.found > 0 ? yellow(`found ${r.found}`) : green("clean")
    const who = r.worker === null ? r.agent : `${r.worker}${r.kind === null ? "" : ` (${r.kind})`}`
    return [
      `${cyan(r.path)}  ${found}  ${dim(`${who} · ${time(r.visited_at)}`)}`,
      ...(r.outcome === null ? [] : wrap(r.outcome, width - 4).map((l) => `    ${bold(l)}`)),
      ...(r.summary === null ? [] : wrap(r.summary, width - 4).map((l) => `    ${l}`)),
      ...bullets("evidence", r.evidence, width),
      ...bullets("recommendations", r.recommendations, width)
    ].join("\n")
  })
  return [title, "", blocks.join("\n\n")].join("\n")
}

/** The few findings a fleet's closing summary names: top `n` by found, with path and summary. */
export const topFindings = (results: ReadonlyArray<FolderResult>, n = 5) =>
  results
    .filter((r) => (r.found ?? 0) > 0)
    .slice(0, n)
    .map((r) => ({ path: r.path, found: r.found, summary: r.summary ?? r.outcome, worker: r.worker }))
