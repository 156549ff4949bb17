/**
 * The `workers` table (SPEC §2) through `SqlClient`: every statement the worker lifecycle runs,
 * rows decoded to the domain's {@link Worker} by {@link WorkerFromRow}. It knows no driver, so
 * any `@effect/sql` client can serve it; it decides nothing: `Workers` checks each transition
 * against the machine and runs these inside `Database.transaction` with the event that records
 * the change ({@link WorkerStore} `appendEvent`, which is `Events.appendSql`).
 *
 * Times are ms since the epoch. Every effect fails with `SqlError` or `ParseError` (a row that is
 * not a worker), which the caller maps to a StoreError (`Database.orStoreError`).
 */
import * as SqlClient from "@effect/sql/SqlClient"
import type { SqlError } from "@effect/sql/SqlError"
import * as SqlSchema from "@effect/sql/SqlSchema"
import {
  type NewEvent,
  SubstrateName,
  type TrailEvent,
  Worker,
  WorkerId,
  WorkerResult,
  WorkerState
} from "@trail/domain"
import { Events } from "@trail/store"
import { Effect, Option, type ParseResult, Schema } from "effect"

/** A `workers` row as stored (`result` and `todos` are JSON). */
const WorkerRow = Schema.Struct({
  ...Worker.fields,
  result: Schema.NullOr(Schema.parseJson(WorkerResult)),
  todos: Schema.parseJson(Worker.fields.todos)
})

/** A stored row decoded to the domain's {@link Worker} (its fields are checked once, by the row schema). */
export const WorkerFromRow = Schema.transform(WorkerRow, Schema.typeSchema(Worker), {
  strict: true,
  decode: (row) => new Worker(row, { disableValidation: true }),
  encode: (worker) => ({ ...worker })
})

/** The columns {@link WorkerFromRow} reads, in table order. */
const COLUMNS = [
  "id",
  "kind",
  "state",
  "text",
  "task",
  "path",
  "parent",
  "depth",
  "substrate",
  "pid",
  "window",
  "cwd",
  "worktree",
  "max_duration_ms",
  "lease_owner",
  "lease_expires_at",
  "created_at",
  "updated_at",
  "finished_at",
  "exit_status",
  "question",
  "reason",
  "result",
  "todos",
  "respawn_of"
].join(", ")

/** A new worker's row (`spawning`), as `spawn` decided it. */
export const NewWorker = Schema.Struct({
  id: WorkerId,
  seq: Schema.Int,
  kind: Schema.String,
  text: Schema.String,
  task: Schema.NullOr(Schema.String),
  path: Schema.NullOr(Schema.String),
  parent: Schema.NullOr(WorkerId),
  depth: Schema.Int,
  substrate: SubstrateName,
  cwd: Schema.String,
  max_duration_ms: Schema.NullOr(Schema.Int),
  at: Schema.Number,
  respawn_of: Schema.NullOr(WorkerId)
})

/**
 * A change of state at `at` (ms): a `finished_at` (the state is final) also clears the lease;
 * null leaves `reason`, `result`, `pid` and `window` as they are; `question` is set as given
 * (null clears it).
 */
export const StateChange = Schema.Struct({
  id: WorkerId,
  state: WorkerState,
  at: Schema.Number,
  finished_at: Schema.NullOr(Schema.Number),
  question: Schema.NullOr(Schema.String),
  reason: Schema.NullOr(Schema.String),
  result: Schema.NullOr(Schema.parseJson(WorkerResult)),
  pid: Schema.NullOr(Schema.Int),
  window: Schema.NullOr(Schema.String)
})

const Count = Schema.Struct({ n: Schema.Int })
const IdRow = Schema.Struct({ id: WorkerId })

/** At most this many ids in one `IN (…)`: far under SQLite's and PostgreSQL's limits on parameters. */
const LEASE_BATCH = 500

const chunksOf = <A>(xs: ReadonlyArray<A>, size: number): Array<ReadonlyArray<A>> =>
  Array.from({ length: Math.ceil(xs.length / size) }, (_, i) => xs.slice(i * size, (i + 1) * size))

type SqlEffect<A> = Effect.Effect<A, SqlError | ParseResult.ParseError>

/** A query that always returns one row (an aggregate): its absence is a defect of the driver. */
const one = <A>(effect: Effect.Effect<Option.Option<A>, SqlError | ParseResult.ParseError>): SqlEffect<A> =>
  Effect.flatMap(
    effect,
    Option.match({ onNone: () => Effect.dieMessage("an aggregate returned no row"), onSome: Effect.succeed })
  )

export class WorkerStore extends Effect.Service<WorkerStore>()("@trail/workers/WorkerStore", {
  effect: Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const columns = sql.literal(COLUMNS)
    const live = sql.literal(`('spawning', 'running', 'needs_input')`)

    const byId = SqlSchema.findOne({
      Request: WorkerId,
      Result: WorkerFromRow,
      execute: (id) => sql`SELECT ${columns} FROM workers WHERE id = ${id}`
    })
    const all = SqlSchema.findAll({
      Request: Schema.Void,
      Result: WorkerFromRow,
      execute: () => sql`SELECT ${columns} FROM workers ORDER BY seq DESC`
    })
    const liveWorkers = SqlSchema.findAll({
      Request: Schema.Void,
      Result: WorkerFromRow,
      execute: () => sql`SELECT ${columns} FROM workers WHERE state IN ${live} ORDER BY seq`
    })
    const unexited = SqlSchema.findAll({
      Request: Schema.Void,
      Result: WorkerFromRow,
      execute: () => sql`SELECT ${columns} FROM workers WHERE exit_status IS NULL AND pid IS NOT NULL`
    })
    const openWindows = SqlSchema.findAll({
      Request: Schema.Number,
      Result: WorkerFromRow,
      execute: (finishedBefore) =>
        sql`SELECT ${columns} FROM workers
          WHERE window IS NOT NULL AND finished_at IS NOT NULL AND finished_at <= ${finishedBefore}
            AND state NOT IN ${live} ORDER BY seq`
    })
    // Descendants, deepest first, so that no child outlives its parent's cancellation.
    const family = SqlSchema.findAll({
      Request: WorkerId,
      Result: WorkerFromRow,
      execute: (id) =>
        sql`WITH RECURSIVE tree(member, level) AS (SELECT id, 0 FROM workers WHERE id = ${id}
            UNION ALL SELECT w.id, tree.level + 1 FROM workers w JOIN tree ON w.parent = tree.member)
          SELECT ${columns} FROM tree JOIN workers ON workers.id = tree.member ORDER BY tree.level DESC`
    })
    const worktreeBase = SqlSchema.findOne({
      Request: WorkerId,
      Result: Schema.Struct({ worktree_base: Schema.NullOr(Schema.String) }),
      execute: (id) => sql`SELECT worktree_base FROM workers WHERE id = ${id}`
    })
    const promoted = SqlSchema.findOne({
      Request: WorkerId,
      Result: Count,
      execute: (id) =>
        sql`SELECT 1 AS n FROM events WHERE subject_type = 'worker' AND subject_id = ${id} AND type = 'worker.promoted'`
    })
    const liveCount = SqlSchema.findOne({
      Request: Schema.Void,
      Result: Count,
      execute: () => sql`SELECT count(*) AS n FROM workers WHERE state IN ${live}`
    })
    const nextSeq = SqlSchema.findOne({
      Request: Schema.Void,
      Result: Count,
      execute: () => sql`SELECT coalesce(max(seq), 0) + 1 AS n FROM workers`
    })
    const insert = SqlSchema.void({
      Request: NewWorker,
      execute: (w) =>
        sql`INSERT INTO workers ${sql.insert({
          id: w.id,
          seq: w.seq,
          kind: w.kind,
          state: "spawning",
          text: w.text,
          task: w.task,
          path: w.path,
          parent: w.parent,
          depth: w.depth,
          substrate: w.substrate,
          cwd: w.cwd,
          max_duration_ms: w.max_duration_ms,
          created_at: w.at,
          updated_at: w.at,
          respawn_of: w.respawn_of
        })}`
    })
    const setState = SqlSchema.void({
      Request: StateChange,
      execute: (c) =>
        sql`UPDATE workers SET state = ${c.state}, updated_at = ${c.at},
            finished_at = coalesce(${c.finished_at}, finished_at),
            question = ${c.question}, reason = coalesce(${c.reason}, reason), result = coalesce(${c.result}, result),
            pid = coalesce(${c.pid}, pid), window = coalesce(${c.window}, window),
            lease_owner = CASE WHEN ${c.finished_at} IS NULL THEN lease_owner END,
            lease_expires_at = CASE WHEN ${c.finished_at} IS NULL THEN lease_expires_at END
          WHERE id = ${c.id}`
    })
    const setTodos = SqlSchema.void({
      Request: Schema.Struct({ id: WorkerId, todos: Schema.parseJson(Worker.fields.todos), at: Schema.Number }),
      execute: (r) => sql`UPDATE workers SET todos = ${r.todos}, updated_at = ${r.at} WHERE id = ${r.id}`
    })
    const setExitStatus = SqlSchema.void({
      Request: Schema.Struct({ id: WorkerId, status: Schema.NullOr(Schema.Int) }),
      execute: (r) => sql`UPDATE workers SET exit_status = ${r.status} WHERE id = ${r.id}`
    })
    const setWorktree = SqlSchema.void({
      Request: Schema.Struct({ id: WorkerId, path: Schema.String, base: Schema.String }),
      execute: (r) =>
        sql`UPDATE workers SET worktree = ${r.path}, worktree_base = ${r.base}, cwd = ${r.path} WHERE id = ${r.id}`
    })
    const clearWorktree = SqlSchema.void({
      Request: WorkerId,
      execute: (id) => sql`UPDATE workers SET worktree = NULL WHERE id = ${id}`
    })
    const clearWindow = SqlSchema.void({
      Request: WorkerId,
      execute: (id) => sql`UPDATE workers SET window = NULL WHERE id = ${id}`
    })
    // RETURNING tells which rows were live (SQLite ≥ 3.35 and PostgreSQL both have it).
    const renewLeases = SqlSchema.findAll({
      Request: Schema.Struct({ ids: Schema.Array(WorkerId), owner: Schema.String, expires: Schema.Number }),
      Result: IdRow,
      execute: (r) =>
        sql`UPDATE workers SET lease_owner = ${r.owner}, lease_expires_at = ${r.expires}
          WHERE id IN ${sql.in(r.ids)} AND state IN ${live} RETURNING id`
    })

    const withSql = <A, E>(effect: Effect.Effect<A, E, SqlClient.SqlClient>) =>
      Effect.provideService(effect, SqlClient.SqlClient, sql)

    return {
      /** Appends `event` (`Events.appendSql`): inside the transaction of the change it records. */
      appendEvent: (event: NewEvent): SqlEffect<TrailEvent> => withSql(Events.appendSql(event)),
      /** Every event about the worker, oldest first. */
      events: (id: WorkerId): SqlEffect<ReadonlyArray<TrailEvent>> => withSql(Events.ofSubjectSql("worker", id)),
      /** The worker, or none. */
      get: (id: WorkerId): SqlEffect<Option.Option<Worker>> => byId(id),
      /** Every worker, newest first. */
      all: all(undefined),
      /** Live workers (spawning, running, needs_input), oldest first. */
      live: liveWorkers(undefined),
      /** Workers with a program started (a pid) and no exit recorded. */
      unexited: unexited(undefined),
      /** Finished workers whose window is still open and that finished at or before `finishedBefore` (ms). */
      openWindows: (finishedBefore: number): SqlEffect<ReadonlyArray<Worker>> => openWindows(finishedBefore),
      /** The worker and its descendants, deepest first (empty when it does not exist). */
      family: (id: WorkerId): SqlEffect<ReadonlyArray<Worker>> => family(id),
      /** The commit its worktree was made from (null: no worktree, or none recorded). */
      worktreeBase: (id: WorkerId): SqlEffect<string | null> =>
        Effect.map(worktreeBase(id), (row) => Option.getOrNull(Option.flatMapNullable(row, (r) => r.worktree_base))),
      /** Whether a `worker.promoted` event records its change set as applied. */
      promoted: (id: WorkerId): SqlEffect<boolean> => Effect.map(promoted(id), Option.isSome),
      /** How many workers are live. */
      liveCount: Effect.map(one(liveCount(undefined)), (row) => row.n),
      /** The `seq` of the next worker (its id is `w<seq>`). */
      nextSeq: Effect.map(one(nextSeq(undefined)), (row) => row.n),
      insert: (worker: typeof NewWorker.Type): SqlEffect<void> => insert(worker),
      setState: (change: typeof StateChange.Type): SqlEffect<void> => setState(change),
      setTodos: (id: WorkerId, todos: ReadonlyArray<string>, at: number): SqlEffect<void> =>
        setTodos({ id, todos, at }),
      setExitStatus: (id: WorkerId, status: number | null): SqlEffect<void> => setExitStatus({ id, status }),
      setWorktree: (id: WorkerId, path: string, base: string): SqlEffect<void> => setWorktree({ id, path, base }),
      clearWorktree: (id: WorkerId): SqlEffect<void> => clearWorktree(id),
      clearWindow: (id: WorkerId): SqlEffect<void> => clearWindow(id),
      /**
       * Takes or renews the leases of the live ones of `ids` for `owner` until `expires` (ms), in
       * one statement per {@link LEASE_BATCH} ids; the ids renewed (the others are finished or unknown).
       */
      renewLeases: (ids: ReadonlyArray<WorkerId>, owner: string, expires: number): SqlEffect<ReadonlySet<WorkerId>> =>
        Effect.reduce(chunksOf(ids, LEASE_BATCH), new Set<WorkerId>(), (renewed, chunk) =>
          Effect.map(renewLeases({ ids: chunk, owner, expires }), (rows) => {
            for (const row of rows) renewed.add(row.id)
            return renewed
          })
        )
    }
  })
}) {}
