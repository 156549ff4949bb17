/**
 * A read-only view of a task's visit history (the `visits` table), for the people-facing
 * commands that show what a sweep found (`trail results`). It writes nothing and takes no
 * lease, so it needs only the `SqlClient`: the CLI
 * composes it with the workers' results (libs never import a lib of their own level).
 */
import * as SqlClient from "@effect/sql/SqlClient"
import * as SqlSchema from "@effect/sql/SqlSchema"
import { type StoreError, TaskName, TaskNotFound } from "@trail/domain"
import { Database } from "@trail/store"
import { Effect, Option, Schema } from "effect"

/** The latest visit of one folder in one sweep. `at` is ms since the epoch. */
export class Visit extends Schema.Class<Visit>("Visit")({
  path: Schema.String,
  status: Schema.Literal("done", "skipped"),
  /** Findings reported with `done --found N` (null: not reported; 0: `--clean`). */
  found: Schema.NullOr(Schema.Number),
  /** Who completed it: the agent id, or the fleet worker's id. */
  agent: Schema.String,
  reason: Schema.NullOr(Schema.String),
  at: Schema.Number
}) {}

/** A sweep's visits; `sweep` is null when the task has no sweep yet (then `visits` is empty). */
export interface SweepVisits {
  readonly task: TaskName
  readonly sweep: number | null
  readonly visits: ReadonlyArray<Visit>
}

const TaskRow = Schema.Struct({ id: Schema.Int, sweep: Schema.NullOr(Schema.Int) })
const VisitsRequest = Schema.Struct({ task: Schema.Int, sweep: Schema.Int })

/**
 * The latest visit of each folder in sweep `sweep` of `task` (default: the task's latest sweep),
 * ordered by path. Fails with TaskNotFound for a task that was never started; a task without a
 * sweep, or a sweep number that does not exist, has no visits.
 */
export const ofSweep = (
  task: TaskName,
  sweep?: number
): Effect.Effect<SweepVisits, TaskNotFound | StoreError, SqlClient.SqlClient> =>
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const findTask = SqlSchema.findOne({
      Request: TaskName,
      Result: TaskRow,
      execute: (task) =>
        sql`SELECT t.id, s.number AS sweep FROM tasks t LEFT JOIN sweeps s ON s.id = t.current_sweep_id
          WHERE t.name = ${task}`
    })
    // The newest visit per folder of the sweep (a folder can be visited again after a reset of its item).
    const findVisits = SqlSchema.findAll({
      Request: VisitsRequest,
      Result: Visit,
      execute: ({ sweep, task }) =>
        sql`SELECT v.path, v.status, v.found, v.agent, v.reason, v.at FROM visits v
          WHERE v.task_id = ${task} AND v.sweep = ${sweep}
            AND v.id = (SELECT max(id) FROM visits w WHERE w.task_id = v.task_id AND w.sweep = v.sweep AND w.path = v.path)
          ORDER BY v.path`
    })
    const current = yield* findTask(task)
    if (Option.isNone(current)) return yield* new TaskNotFound({ task })
    const number = sweep ?? current.value.sweep
    if (number === null) return { task, sweep: null, visits: [] }
    return { task, sweep: number, visits: yield* findVisits({ task: current.value.id, sweep: number }) }
  }).pipe(Database.orStoreError)
