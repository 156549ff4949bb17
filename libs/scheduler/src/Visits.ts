/**
 * A read-only view of a task's visit history (the `visits` table), for the people-facing
 * commands that show what a sweep found (`trail results`, the `found`/agent columns of
 * `trail list`). It writes nothing and takes no lease, so it needs only the Database: the CLI
 * composes it with the workers' results (libs never import a lib of their own level).
 */
import { type StoreError, type TaskName, TaskNotFound } from "@trail/domain"
import { Database } from "@trail/store"
import { Effect, Schema } from "effect"

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

const TaskRow = Schema.Struct({ id: Schema.Number, sweep: Schema.NullOr(Schema.Number) })

const SQL = {
  task: `SELECT t.id, s.number AS sweep FROM tasks t LEFT JOIN sweeps s ON s.id = t.current_sweep_id WHERE t.name = ?`,
  // The newest visit per folder of the sweep (a folder can be visited again after a reset of its item).
  visits: `SELECT v.path, v.status, v.found, v.agent, v.reason, v.at FROM visits v
    WHERE v.task_id = @task AND v.sweep = @sweep
      AND v.id = (SELECT max(id) FROM visits w WHERE w.task_id = v.task_id AND w.sweep = v.sweep AND w.path = v.path)
    ORDER BY v.path`
}

const decodeTask = Schema.decodeUnknownSync(TaskRow)
const decodeVisit = Schema.decodeUnknownSync(Visit)

/**
 * The latest visit of each folder in sweep `sweep` of `task` (default: the task's latest sweep),
 * ordered by path. Fails with TaskNotFound for a task that was never started; a task without a
 * sweep, or a sweep number that does not exist, has no visits.
 */
export const ofSweep = (
  task: TaskName,
  sweep?: number
): Effect.Effect<SweepVisits, TaskNotFound | StoreError, Database.Database> =>
  Effect.flatMap(Database.Database, (database) =>
    database.read((db) => {
      const row = db.get(SQL.task, task)
      if (row === undefined) return null
      const current = decodeTask(row)
      const number = sweep ?? current.sweep
      if (number === null) return { task, sweep: null, visits: [] }
      return {
        task,
        sweep: number,
        visits: db.all(SQL.visits, { task: current.id, sweep: number })
          .map((r) => decodeVisit(r))
      }
    })
  ).pipe(
    Effect.flatMap((result) => (result === null ? Effect.fail(new TaskNotFound({ task })) : Effect.succeed(result)))
  )
