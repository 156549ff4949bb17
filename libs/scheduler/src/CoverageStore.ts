/**
 * The coverage store: folders, tasks, sweeps with O(1) counters, work items, visits and per-task
 * folder memory in the state database.
 *
 * Two kinds of paths (see {@link Database}):
 *
 * - The hot path (claim, complete, release, renew) and the bulk writes (register, opening a
 *   sweep) are synchronous units of work inside `BEGIN IMMEDIATE`, rows read with the checked
 *   readers of `Rows`: a statement costs ~5 µs there against ~55–80 µs through `SqlClient`
 *   (docs/benchmarks.md). Concurrent processes serialise on SQLite's write lock and can never
 *   double-claim. The claim reclaims expired leases, then leases the best pending item with one
 *   conditional `UPDATE … WHERE id = (SELECT min(id) …) RETURNING …`: the lower of the first
 *   pending item after the sweep's claim cursor (read just before, on the table's key) and the
 *   first item gone back to pending (work_items_returned, kept by a trigger; migration 0014),
 *   then moves the cursor past what it stepped over, in the same transaction.
 *   Opening a sweep is set-based: one `INSERT … SELECT` scores every folder inside SQLite with
 *   Scoring's own function and inserts the items best first, so that within a sweep id order is
 *   claim order (migration 0012: the claim and `list` read ids, nothing sorts by score later).
 *   done / skip / release / renew find an item by path: a leased one (nearly always: the folder
 *   an agent was handed) in the index of leased items by folder (0015), kept by the claim's own
 *   UPDATE; any other in work_items_by_folder (0013), whose entries for a sweep are built, one
 *   statement in folder order, where such an item is first looked up (not by the open: a second
 *   sort of every item, ~0.15 s at 200,000).
 *   The pages of a listing are read on the same connection with the same readers (a listing
 *   can be 200,000 rows; a Schema decode per row would cost seconds).
 * - The other cold paths (status, showSweep, reset, gc) speak `SqlClient` with the `sql`
 *   template, rows decoded by `SqlSchema` with the domain's schemas; their writes run in one
 *   `database.transaction`.
 *
 * Triggers (migrations 0002, 0003, 0014) move the sweep's counters and the folders' `last_visited_at`
 * and keep the sweep's returned items (work_items_returned) inside the statements that change items
 * and record visits. Times are milliseconds since the
 * epoch, passed in by the caller (the scheduler reads them from Effect's `Clock`). SQL and row
 * failures are StoreErrors (a row of the wrong shape: `corrupt`).
 */
import {
  type Completion,
  FolderPath,
  type GcSummary,
  LeaseNotHeld,
  NoFolders,
  NoSweep,
  NotAWorkItem,
  NotLeaseHolder,
  type Release,
  ResetSummary,
  Sweep,
  SweepActive,
  SweepStatus,
  TaskName,
  TaskNotFound,
  TaskStatus,
  WorkItem,
  WorkItemMachine,
  WorkItemStatus,
  Strategy,
  sourcesOf,
  AgentId,
  type ClaimResult,
  type Claimed,
  type NoneAvailable,
  type SweepCompleted,
  type StaticSignal,
  type StoreError
} from "@trail/domain"
import * as SqlClient from "@effect/sql/SqlClient"
import * as SqlSchema from "@effect/sql/SqlSchema"
import { Chunk, Context, Effect, Either, Layer, Option, Schema, Stream } from "effect"
import { Database as Db, Migrations, Rows } from "@trail/store"

type Connection = Db.Connection
const Database = Db.Database
import { decayOutcome, scoreFolder, type SweepMaxima, type SweepScoring } from "./Scoring.js"

/** One folder as the walker found it. */
export interface ScannedFolder {
  readonly path: string
  readonly fileCount: number
  readonly bytes: number
  readonly churn: number
}

/** How a sweep that opens scores its folders. */
export interface OpenSweepOptions {
  /** The strategy when none was asked for: the task's last `--strategy`, else this (strategy.default). */
  readonly strategy: Strategy
  /** `--strategy` given with this call: used, and remembered for the task's next sweeps. */
  readonly requested?: Strategy | undefined
  readonly alpha: number
  readonly outcomeWeight: number
  readonly halfLifeSecs: number
  readonly seed: number
  readonly staticSignal: StaticSignal
}

export interface ClaimRequest {
  readonly task: TaskName
  readonly agent: AgentId
  /** Now, ms since epoch. */
  readonly now: number
  /** Lease time to live in ms. */
  readonly ttlMs: number
  /** Used only if this claim opens a sweep (first claim of a task, or `autoSweep`). */
  readonly open: OpenSweepOptions
  /** Open the next sweep when the current one is complete. */
  readonly autoSweep: boolean
}

export interface CompleteRequest {
  readonly task: TaskName
  readonly path: FolderPath
  readonly agent: AgentId
  readonly status: "done" | "skipped"
  /** Findings reported, or null when the agent said nothing either way. */
  readonly found: number | null
  readonly reason: string | null
  readonly now: number
  /** Half-life (s) with which recorded findings decay. */
  readonly halfLifeSecs: number
}

export type CompleteError = TaskNotFound | NoSweep | NotAWorkItem | NotLeaseHolder

export interface ClaimBatch {
  readonly claimed: ReadonlyArray<Claimed>
  readonly end: SweepCompleted | NoneAvailable | null
}

export interface CoverageStoreShape {
  /** Registers the scanned folders (upsert); folders not in `folders` are marked absent. */
  readonly register: (folders: ReadonlyArray<ScannedFolder>, now: number) => Effect.Effect<number, StoreError>
  /** Leases the next folder (creating the task and opening a sweep as needed). */
  readonly claim: (request: ClaimRequest) => Effect.Effect<ClaimResult, StoreError>
  /**
   * Leases up to `count` folders to one agent in one transaction (the supervisor's batch use).
   * `end` is the result that stopped the batch early (sweep complete, none available), or null
   * when all `count` were claimed.
   */
  readonly claimMany: (request: ClaimRequest & { readonly count: number }) => Effect.Effect<ClaimBatch, StoreError>
  /**
   * Marks a pending or leased item done or skipped. A live lease of another agent refuses it
   * ({@link NotLeaseHolder}); an expired lease does not (the item is back in the pool, as for
   * `next`). Repeating it on an item the same agent finished is a no-op; an item another agent
   * finished refuses it (NotLeaseHolder), so a late report is never dropped without a word.
   */
  readonly complete: (request: CompleteRequest) => Effect.Effect<Completion, CompleteError | StoreError>
  /** Returns a lease to the pool. When `agent` is given it must hold the lease. */
  readonly release: (request: {
    readonly task: TaskName
    readonly path: FolderPath
    readonly agent: AgentId | null
  }) => Effect.Effect<Release, TaskNotFound | NoSweep | NotAWorkItem | LeaseNotHeld | StoreError>
  /**
   * Extends `agent`'s lease on an item of the current sweep to `now + ttlMs`, taking it over from
   * `previous` (or from an expired holder, or the pool) when needed. False when someone else
   * holds it or it is finished. The supervisor keeps a working fleet worker's folder this way.
   */
  readonly renew: (request: {
    readonly task: TaskName
    readonly path: FolderPath
    readonly agent: AgentId
    readonly previous: AgentId | null
    readonly now: number
    readonly ttlMs: number
  }) => Effect.Effect<boolean, TaskNotFound | NoSweep | NotAWorkItem | StoreError>
  /**
   * {@link renew} for many folders in one `SqlClient` transaction (a savepoint of the caller's,
   * so that the supervisor renews its workers' leases and their folders' together): whether each
   * request's lease now runs until `now + ttlMs`, in request order. A task, sweep or item that
   * does not exist is not renewed (false), as one held by someone else.
   */
  readonly renewMany: (
    requests: ReadonlyArray<{
      readonly task: TaskName
      readonly path: FolderPath
      readonly agent: AgentId
      readonly previous: AgentId | null
    }>,
    now: number,
    ttlMs: number
  ) => Effect.Effect<ReadonlyArray<boolean>, StoreError>
  /** Counters of the task's current sweep; expired leases count as pending. */
  readonly status: (task: TaskName, now: number) => Effect.Effect<TaskStatus, TaskNotFound | StoreError>
  /**
   * Items of the current sweep by score, highest first (expired leases shown as pending), read
   * {@link LIST_PAGE} at a time as the stream is pulled: memory stays bounded whatever the sweep's
   * size. `state` keeps only items shown in that state; `limit` (null: all) stops after that
   * many. Pages are separate reads: an item whose status changes meanwhile is listed once, in
   * the status its page read.
   */
  readonly items: (
    task: TaskName,
    options: { readonly state: WorkItemStatus | null; readonly limit: number | null; readonly now: number }
  ) => Stream.Stream<WorkItem, TaskNotFound | NoSweep | StoreError>
  /** Every item of {@link items}, collected. */
  readonly list: (
    task: TaskName,
    state: WorkItemStatus | null,
    now: number
  ) => Effect.Effect<ReadonlyArray<WorkItem>, TaskNotFound | NoSweep | StoreError>
  /** Opens the next sweep (creating the task if needed); fails while one is active. */
  readonly newSweep: (
    task: TaskName,
    open: OpenSweepOptions,
    now: number
  ) => Effect.Effect<Sweep, SweepActive | NoFolders | StoreError>
  /** The task's current sweep, or its sweep number `sweep` when given (NoSweep when there is none). */
  readonly showSweep: (task: TaskName, sweep?: number) => Effect.Effect<Sweep, TaskNotFound | NoSweep | StoreError>
  /** Deletes the task's sweeps; with `all`, also its visits and folder memory. */
  readonly reset: (task: TaskName, all: boolean) => Effect.Effect<ResetSummary, TaskNotFound | StoreError>
  /**
   * Reclaims expired leases everywhere; with `reconcile`, rebuilds every sweep's counters from its
   * items (a sweep whose items were pruned keeps its counters). Prunes the work items of every
   * complete sweep older than its task's last `keepSweeps` (≥ 1) sweeps: the sweep row with its
   * counters and its visits stay, and the sweep records when its items went (`items_pruned_at`).
   * Nothing that scores a sweep reads old items: scores read folders and folder memory.
   */
  readonly gc: (options: {
    readonly now: number
    readonly reconcile: boolean
    readonly keepSweeps: number
  }) => Effect.Effect<Omit<GcSummary, "vacuumed">, StoreError>
  readonly vacuum: Effect.Effect<void, StoreError>
}

export class CoverageStore extends Context.Tag("@trail/scheduler/CoverageStore")<CoverageStore, CoverageStoreShape>() {}

// ---------------------------------------------------------------------------------------------
// Row shapes (decoded, never cast)

const Int = Schema.Int

// Hot-path rows (claim, complete, release, renew) are read with the checked readers of Rows.ts.

interface Counters {
  readonly total: number
  readonly done: number
  readonly skipped: number
  readonly leased: number
}
const readCounters = (value: unknown): Counters => {
  const r = Rows.row(value, "sweep counters")
  return {
    total: Rows.int(r, "total"),
    done: Rows.int(r, "done"),
    skipped: Rows.int(r, "skipped"),
    leased: Rows.int(r, "leased")
  }
}

/** A task's current sweep with its counters as they were when read. */
interface CurrentSweep extends ActiveSweep {
  readonly counters: Counters
}

interface Current {
  readonly taskId: number
  readonly sweep: CurrentSweep | null
}
const readCurrentRow = (r: Record<string, unknown>): Current => {
  const taskId = Rows.int(r, "task_id")
  const sweepId = Rows.intOrNull(r, "sweep_id")
  return {
    taskId,
    sweep:
      sweepId === null
        ? null
        : {
            taskId,
            sweepId,
            number: Rows.int(r, "number"),
            status: Rows.oneOf(r, "status", SweepStatus.literals),
            counters: readCounters(r)
          }
  }
}

interface Item {
  readonly id: number
  readonly folderId: number
  readonly status: WorkItemStatus
  readonly leaseOwner: string | null
  readonly leaseExpiresAt: number | null
  readonly completedBy: string | null
}

// Cold-path rows (through SqlClient).

/** A task and its current sweep, if any. */
const CurrentSweepRow = Schema.Struct({
  task_id: Int,
  sweep_id: Schema.NullOr(Int),
  number: Schema.NullOr(Int),
  first_item_id: Schema.NullOr(Int),
  last_item_id: Schema.NullOr(Int)
})

/** The row of a task without a current sweep (its sweep columns, from a LEFT JOIN, are null). */
const NoSweepRow = Schema.Struct({ sweep: Schema.Null })

/** A task's current sweep as `showSweep` reads it, or {@link NoSweepRow}. */
const CurrentSweepOrNone = Schema.Union(Sweep, NoSweepRow)

const StatusRequest = Schema.Struct({ task: TaskName, now: Int })

/** The counters of a task's current sweep and its leases expired at `now`, or {@link NoSweepRow}. */
const StatusRow = Schema.Union(
  Schema.Struct({
    sweep: Int,
    status: SweepStatus,
    total: Int,
    done: Int,
    skipped: Int,
    leased: Int,
    expired: Int
  }),
  NoSweepRow
)

const IdRow = Schema.Struct({ id: Int })
const CountRow = Schema.Struct({ n: Int })

/** A sweep's counters next to those its items give (`gc --reconcile`). */
const ReconcileRow = Schema.Struct({
  id: Int,
  total: Int,
  done: Int,
  skipped: Int,
  leased: Int,
  status: SweepStatus,
  actual_total: Int,
  actual_done: Int,
  actual_skipped: Int,
  actual_leased: Int
})

const FixCounters = Schema.Struct({
  id: Int,
  total: Int,
  done: Int,
  skipped: Int,
  leased: Int,
  status: SweepStatus,
  now: Int
})

const readMemory = (value: unknown) => {
  const r = Rows.row(value, "folder memory")
  return { outcome: Rows.num(r, "outcome"), outcomeAt: Rows.intOrNull(r, "outcome_at") }
}

interface ActiveSweep {
  readonly taskId: number
  readonly sweepId: number
  readonly number: number
  readonly status: SweepStatus
}

// ---------------------------------------------------------------------------------------------
// The unit of work's SQL (hot path, bulk writes). Status guards come from the work-item state
// machine table.

const inList = (states: ReadonlyArray<string>) => states.map((s) => `'${s}'`).join(", ")
const FINISHABLE = inList(sourcesOf(WorkItemMachine, "done"))
const RELEASABLE = inList(sourcesOf(WorkItemMachine, "pending"))

/**
 * The id of sweep `sweep`'s item at folder `folder` (SQL expressions): from the index of leased
 * items by folder (migration 0015) when it is leased, else from work_items_by_folder (0013), which
 * has no entries for a sweep until {@link SQL}.indexSweep builds them.
 */
const ITEM_AT_FOLDER = (sweep: string, folder: string) => `coalesce(
    (SELECT l.id FROM work_items l WHERE l.sweep_id = ${sweep} AND l.folder_id = ${folder} AND l.status = 'leased'),
    (SELECT b.item_id FROM work_items_by_folder b WHERE b.sweep_id = ${sweep} AND b.folder_id = ${folder}))`

/**
 * A join condition: `w` is an item of sweep `s`. A sweep's items are the ids of its range (migration
 * 0012), found on the table's key: work_items_by_folder holds a sweep's items only once looked up
 * (0015), and work_items has no index by sweep.
 */
const ITEMS_OF_SWEEP = "w.id BETWEEN s.first_item_id AND s.last_item_id AND w.sweep_id = s.id"

/** {@link SQL}.indexSweep for the sweep whose id is the SQL expression `sweep`. */
const indexSweepSql = (sweep: string) => `INSERT INTO work_items_by_folder (sweep_id, folder_id, item_id)
    SELECT w.sweep_id, w.folder_id, w.id FROM sweeps s JOIN work_items w ON ${ITEMS_OF_SWEEP}
    WHERE s.id = ${sweep} AND s.first_item_id IS NOT NULL
      AND NOT EXISTS (SELECT 1 FROM work_items_by_folder b WHERE b.sweep_id = s.id)
    ORDER BY w.folder_id`

const SQL = {
  current: `SELECT t.id AS task_id, s.id AS sweep_id, s.number, s.status, s.total, s.done, s.skipped, s.leased,
      coalesce(s.claim_cursor, s.first_item_id - 1) AS claim_cursor, s.last_item_id
    FROM tasks t LEFT JOIN sweeps s ON s.id = t.current_sweep_id WHERE t.name = ?`,
  // The task, its current sweep and the item at a path, in one read: the path's folder id
  // (folders' unique path), then the sweep's item at that folder ({@link ITEM_AT_FOLDER}).
  currentItem: `SELECT t.id AS task_id, s.id AS sweep_id, s.number, s.status, s.total, s.done, s.skipped, s.leased,
      w.id AS item_id, w.folder_id, w.status AS item_status, w.lease_owner, w.lease_expires_at, w.completed_by,
      f.id AS path_folder_id
    FROM tasks t LEFT JOIN sweeps s ON s.id = t.current_sweep_id
      LEFT JOIN folders f ON f.path = ?
      LEFT JOIN work_items w ON w.id = ${ITEM_AT_FOLDER("s.id", "f.id")}
    WHERE t.name = ?`,
  insertTask: `INSERT INTO tasks (name, created_at) VALUES (?, ?) RETURNING id`,
  reclaim: `UPDATE work_items SET status = 'pending', lease_owner = NULL, lease_expires_at = NULL
    WHERE sweep_id = ? AND status = 'leased' AND lease_expires_at <= ?`,
  // The first never-claimed item: the first pending id after the sweep's claim cursor (0014),
  // on the table's own key. Every item it steps over has left pending (the cursor moves past it).
  nextPending: `SELECT id FROM work_items WHERE id > ? AND id <= ? AND sweep_id = ? AND status = 'pending' ORDER BY id LIMIT 1`,
  // Leases the lower of that item (@next, null when none is left) and the first item gone back to
  // pending (work_items_returned, checked against the item itself): the sweep's first pending id.
  // The lease re-checks the item it is given (a pending item of this sweep), so a stale id leases
  // nothing.
  claim: `UPDATE work_items SET status = 'leased', lease_owner = @agent, lease_expires_at = @expires
    WHERE id = (SELECT min(id) FROM (SELECT @next AS id UNION ALL SELECT id FROM (SELECT r.item_id AS id
        FROM work_items_returned r JOIN work_items w ON w.id = r.item_id AND w.sweep_id = r.sweep_id AND w.status = 'pending'
        WHERE r.sweep_id = @sweep ORDER BY r.item_id LIMIT 1)))
      AND sweep_id = @sweep AND status = 'pending'
    RETURNING id, path, score`,
  moveCursor: `UPDATE sweeps SET claim_cursor = ? WHERE id = ?`,
  // A sweep id can be used again after a reset deleted the task's last sweep (ids are max + 1).
  clearReturned: `DELETE FROM work_items_returned WHERE sweep_id = ?`,
  // The same for work_items_by_folder: a reset by a trail older than 0015 leaves its entries, which
  // would name the reused sweep's items at other folders (they are built from its own items).
  clearFolderEntries: `DELETE FROM work_items_by_folder WHERE sweep_id = ?`,
  recordRange: `UPDATE sweeps SET first_item_id = ?, last_item_id = ? WHERE id = ?`,
  finishItem: `UPDATE work_items SET status = ?, lease_owner = NULL, lease_expires_at = NULL, completed_at = ?,
      completed_by = ? WHERE id = ? AND status IN (${FINISHABLE})`,
  closeSweep: `UPDATE sweeps SET status = 'complete', closed_at = ? WHERE id = ? AND status = 'active'`,
  insertVisit: `INSERT INTO visits (task_id, sweep, folder_id, path, agent, status, reason, found, at)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
  memory: `SELECT outcome, outcome_at FROM folder_memory WHERE task_id = ? AND folder_id = ?`,
  recordOutcome: `UPDATE folder_memory SET outcome = ?, outcome_at = ? WHERE task_id = ? AND folder_id = ?`,
  renewItem: `UPDATE work_items SET status = 'leased', lease_owner = @agent, lease_expires_at = @expires
    WHERE id = @id AND (status = 'pending'
      OR (status = 'leased' AND (lease_owner IN (@agent, @previous) OR lease_expires_at <= @now)))`,
  releaseItem: `UPDATE work_items SET status = 'pending', lease_owner = NULL, lease_expires_at = NULL
    WHERE id = ? AND status IN (${RELEASABLE})`,
  lastSweepNumber: `SELECT coalesce(max(number), 0) FROM sweeps WHERE task_id = ?`,
  taskStrategy: `SELECT strategy FROM tasks WHERE id = ?`,
  setTaskStrategy: `UPDATE tasks SET strategy = ? WHERE id = ?`,
  insertSweep: `INSERT INTO sweeps (task_id, number, status, strategy, total, opened_at, first_item_id, last_item_id)
    VALUES (?, ?, 'active', ?, ?, ?, ?, ?) RETURNING id`,
  // The id SQLite gives the next row (an INTEGER PRIMARY KEY without AUTOINCREMENT: the largest + 1).
  nextItemId: `SELECT coalesce(max(id), 0) + 1 FROM work_items`,
  lastItemId: `SELECT max(id) FROM work_items`,
  setCurrent: `UPDATE tasks SET current_sweep_id = ? WHERE id = ?`,
  /** `rows` folders in one statement (see {@link REGISTER_BATCH}). */
  upsertFolders: (rows: number) =>
    `INSERT INTO folders (path, file_count, bytes, churn, present, scanned_at)
    VALUES ${Array.from({ length: rows }, () => "(?, ?, ?, ?, 1, ?)").join(", ")}
    ON CONFLICT (path) DO UPDATE SET file_count = excluded.file_count, bytes = excluded.bytes,
      churn = excluded.churn, present = 1, scanned_at = excluded.scanned_at`,
  markAbsent: `UPDATE folders SET present = 0`,
  countPresent: `SELECT count(*) FROM folders WHERE present = 1`,
  // Only for a sweep without a recorded range (opened by a trail older than 0012): a scan.
  itemRange: `SELECT min(id) AS first, max(id) AS last FROM work_items WHERE sweep_id = ?`,
  // The sweep's entries of work_items_by_folder, when it has none: a sweep opened since 0015 (or
  // by a trail older than 0013 still running after that migration) gets them where an item that
  // is not leased is looked up and not found. From the sweep's id range (0012), appended in key
  // order (the items' folder ids sorted: a sort of integer pairs), ~0.15 s at 200,000 items.
  indexSweep: indexSweepSql("?")
} as const

/**
 * Folders upserted per statement by `register`: one statement per row cost ~0.7 s of CPU at
 * 200,000 folders, 256-row statements about half (docs/benchmarks.md, issue 14). 5 parameters a
 * row stay far under SQLite's 32,766.
 */
const REGISTER_BATCH = 256

/** The read of the task, its current sweep and its item at a path (parameters: path, task), for plan tests. */
export const CURRENT_ITEM_SQL = SQL.currentItem

/**
 * The claim's statements, for plan tests: the next never-claimed item after the cursor
 * (parameters: cursor, last id, sweep), the lease (named: agent, expires, next, sweep) and the
 * reclaim of expired leases (sweep, now).
 */
export const CLAIM_SQL = { nextPending: SQL.nextPending, claim: SQL.claim, reclaim: SQL.reclaim } as const

const count = (db: Connection, sql: string, ...params: ReadonlyArray<unknown>): number =>
  Schema.decodeUnknownSync(Int)(db.pluck(sql, ...params))

// ---------------------------------------------------------------------------------------------

/**
 * Where the claim looks for the current sweep's next never-claimed item: after `cursor`, up to
 * `last` (the sweep's last item id). Null ids for a sweep opened by a trail older than 0012,
 * which recorded no id range (found once by {@link claimRange}).
 */
interface ClaimCursor {
  readonly cursor: number | null
  readonly last: number | null
}

/** The task and its current sweep ({@link SQL}.current), with the sweep's {@link ClaimCursor}. */
const readCurrent = (db: Connection, task: TaskName): (Current & { readonly claimFrom: ClaimCursor }) | null => {
  const row = db.get(SQL.current, task)
  if (row === undefined) return null
  const r = Rows.row(row, "current sweep")
  return {
    ...readCurrentRow(r),
    claimFrom: { cursor: Rows.intOrNull(r, "claim_cursor"), last: Rows.intOrNull(r, "last_item_id") }
  }
}

/** The `folders` column holding each static signal (a fixed set: safe to splice into SQL). */
const SIGNAL_COLUMN: Record<StaticSignal, string> = { file_count: "file_count", bytes: "bytes", churn: "churn" }

/** The SQL function that scores one folder: Scoring.scoreFolder, the one implementation of SPEC §1's formula. */
const SCORE_FUNCTION = "trail_score"

/**
 * Decayed outcome of a folder's memory at a sweep's opening (Scoring.decayOutcome, nothing found
 * since), or 0 when the score cannot depend on it (`@with_outcome` false: not `weighted`, or an
 * outcome weight of 0, whose `0 · outcome` term is 0 whatever the outcome).
 */
const DECAYED_OUTCOME =
  "CASE WHEN @with_outcome THEN trail_decayed_outcome(m.outcome, m.outcome_at, @now, @half_life) ELSE 0 END"

/**
 * The maxima and the number of present folders, then one `INSERT … SELECT` of every item with its
 * score from {@link SCORE_FUNCTION}. Items are inserted best first (ties by path) and nothing is
 * inserted into a sweep later: their consecutive ids are the claim order (score DESC, then path),
 * which the claim (from the sweep's claim cursor) and `list` read on the table's own key. The
 * indexes of work_items hold leased items only (none at the open); one with another key would
 * take 200,000 inserts in random order: items are found by folder as {@link ITEM_AT_FOLDER} says.
 */
const openSql = (signal: StaticSignal) => {
  const column = `f.${SIGNAL_COLUMN[signal]}`
  const from = `FROM folders f LEFT JOIN folder_memory m ON m.task_id = @task AND m.folder_id = f.id WHERE f.present = 1`
  return {
    maxima: `SELECT count(*) AS n, max(0, coalesce(max(${column}), 0)) AS max_signal,
        max(0, coalesce(max(${DECAYED_OUTCOME}), 0)) AS max_outcome ${from}`,
    // The same when the score cannot depend on outcomes (@with_outcome 0): without a probe of
    // folder_memory per folder (~30 ms of 200,000).
    maximaWithoutOutcome: `SELECT count(*) AS n, max(0, coalesce(max(${column}), 0)) AS max_signal, 0 AS max_outcome
      FROM folders f WHERE f.present = 1`,
    insert: `INSERT INTO work_items (sweep_id, folder_id, path, status, score)
      SELECT @sweep_id, id, path, 'pending', score FROM (
        SELECT f.id, f.path, ${SCORE_FUNCTION}(f.path, ${column}, m.last_visited_at, ${DECAYED_OUTCOME}) AS score ${from}
      ) ORDER BY score DESC, path`
  }
}
const OPEN_SQL: Record<StaticSignal, ReturnType<typeof openSql>> = {
  file_count: openSql("file_count"),
  bytes: openSql("bytes"),
  churn: openSql("churn")
}

const argNumber = (value: unknown, what: string): number => {
  if (typeof value !== "number" || Number.isNaN(value)) throw new Rows.RowShapeError(what, value)
  return value
}
const argIntOrNull = (value: unknown, what: string): number | null => {
  if (value === null) return null
  if (typeof value !== "number" || !Number.isInteger(value)) throw new Rows.RowShapeError(what, value)
  return value
}
const argText = (value: unknown, what: string): string => {
  if (typeof value !== "string") throw new Rows.RowShapeError(what, value)
  return value
}
/**
 * The sweep-wide inputs of {@link SCORE_FUNCTION} on each connection while a sweep opens there
 * ({@link openSweep} sets them around its insert): the function takes only a folder's own
 * values, so that 200,000 calls do not convert and check the same nine constants each.
 */
const opening = new WeakMap<Connection, { readonly params: SweepScoring; readonly maxima: SweepMaxima }>()

/** Defines trail_score and trail_decayed_outcome on `db` (once per connection). */
const defineScoring = (db: Connection) => {
  db.defineFunction("trail_decayed_outcome", (outcome, outcomeAt, now, halfLife) =>
    decayOutcome(
      outcome === null ? 0 : argNumber(outcome, "outcome"),
      argIntOrNull(outcomeAt, "outcome_at"),
      0,
      argNumber(now, "now"),
      argNumber(halfLife, "half_life_secs")
    )
  )
  db.defineFunction(SCORE_FUNCTION, (path, signal, lastVisitedAt, outcome) => {
    const sweep = opening.get(db)
    if (sweep === undefined) throw new Error(`${SCORE_FUNCTION} is called only while a sweep opens`)
    return scoreFolder(sweep.params, sweep.maxima, {
      path: argText(path, "path"),
      signal: argNumber(signal, "signal"),
      lastVisitedAt: argIntOrNull(lastVisitedAt, "last_visited_at"),
      outcome: argNumber(outcome, "outcome")
    })
  })
}

/** A sweep just opened: its counters, and what `sweep new` reports of it. */
interface OpenedSweep extends CurrentSweep {
  readonly strategy: Strategy
  readonly claimFrom: ClaimCursor
}

/**
 * Opens sweep `last + 1` for the task: freezes every present folder's score and inserts one
 * pending work item per folder. Returns null (and writes nothing) when no folder is registered.
 * The one implementation for the claim that opens a sweep and for `sweep new`. Set-based: two
 * statements whatever the number of folders, the score computed inside SQLite by Scoring's own
 * function (see {@link defineScoring}); the sweep's counters are set in the same transaction.
 */
const openSweep = (db: Connection, taskId: number, open: OpenSweepOptions, now: number): OpenedSweep | null => {
  defineScoring(db)
  const sql = OPEN_SQL[open.staticSignal]
  const strategy = open.requested ?? rememberedStrategy(db, taskId) ?? open.strategy
  const outcome = {
    with_outcome: strategy === "weighted" && open.outcomeWeight > 0 ? 1 : 0,
    now,
    half_life: open.halfLifeSecs
  }
  const maxima = Rows.row(
    outcome.with_outcome === 1 ? db.get(sql.maxima, { task: taskId, ...outcome }) : db.get(sql.maximaWithoutOutcome),
    "sweep maxima"
  )
  const total = Rows.int(maxima, "n")
  if (total === 0) return null
  const number = count(db, SQL.lastSweepNumber, taskId) + 1
  // One statement inserts the items in claim order: their ids are consecutive from the next one.
  const firstItemId = count(db, SQL.nextItemId)
  const lastItemId = firstItemId + total - 1
  const sweepId = count(db, SQL.insertSweep, taskId, number, strategy, total, now, firstItemId, lastItemId)
  opening.set(db, {
    params: {
      strategy,
      alpha: open.alpha,
      outcomeWeight: open.outcomeWeight,
      halfLifeSecs: open.halfLifeSecs,
      seed: open.seed,
      sweep: number,
      now
    },
    maxima: { maxSignal: Rows.num(maxima, "max_signal"), maxOutcome: Rows.num(maxima, "max_outcome") }
  })
  let inserted: number
  try {
    inserted = db.run(sql.insert, { ...outcome, task: taskId, sweep_id: sweepId })
  } finally {
    opening.delete(db)
  }
  // Thrown (a corrupt StoreError) rolls the opening back: list's id range would be wrong.
  if (inserted !== total || count(db, SQL.lastItemId) !== lastItemId)
    throw new Rows.RowShapeError("work_items.id", `${inserted} items inserted for ids ${firstItemId}..${lastItemId}`)
  db.run(SQL.clearReturned, sweepId)
  db.run(SQL.clearFolderEntries, sweepId)
  db.run(SQL.setCurrent, sweepId, taskId)
  return {
    taskId,
    sweepId,
    number,
    status: "active",
    strategy,
    counters: { total, done: 0, skipped: 0, leased: 0 },
    claimFrom: { cursor: firstItemId - 1, last: lastItemId }
  }
}

const StrategyOrNull = Schema.NullOr(Strategy)

/** The strategy last asked for with `--strategy` for the task, or null. */
const rememberedStrategy = (db: Connection, taskId: number): Strategy | null =>
  Schema.decodeUnknownSync(StrategyOrNull)(db.pluck(SQL.taskStrategy, taskId) ?? null)

/** The task (created if new), remembering `requested` (a `--strategy`) for its next sweeps. */
const ensureTask = (
  db: Connection,
  task: TaskName,
  now: number,
  requested?: Strategy | undefined
): Current & { readonly claimFrom: ClaimCursor } => {
  const current = readCurrent(db, task) ?? {
    taskId: count(db, SQL.insertTask, task, now),
    sweep: null,
    claimFrom: { cursor: null, last: null }
  }
  if (requested !== undefined) db.run(SQL.setTaskStrategy, requested, current.taskId)
  return current
}

/** The task's current sweep and its item at `path` (one read), or the typed reason there is none. */
const currentItem = (
  db: Connection,
  task: TaskName,
  path: FolderPath
): Either.Either<{ readonly sweep: CurrentSweep; readonly item: Item }, TaskNotFound | NoSweep | NotAWorkItem> => {
  const row = db.get(SQL.currentItem, path, task)
  if (row === undefined) return Either.left(new TaskNotFound({ task }))
  const r = Rows.row(row, "current item")
  const { sweep } = readCurrentRow(r)
  if (sweep === null) return Either.left(new NoSweep({ task }))
  const itemId = Rows.intOrNull(r, "item_id")
  if (itemId === null) {
    // A path that is no folder has no item: no need to build the sweep's entries to say so.
    return Rows.intOrNull(r, "path_folder_id") !== null && db.run(SQL.indexSweep, sweep.sweepId) > 0
      ? currentItem(db, task, path)
      : Either.left(new NotAWorkItem({ task, sweep: sweep.number, path }))
  }
  return Either.right({
    sweep,
    item: {
      id: itemId,
      folderId: Rows.int(r, "folder_id"),
      status: Rows.oneOf(r, "item_status", WorkItemStatus.literals),
      leaseOwner: Rows.textOrNull(r, "lease_owner"),
      leaseExpiresAt: Rows.intOrNull(r, "lease_expires_at"),
      completedBy: Rows.textOrNull(r, "completed_by")
    }
  })
}

/** Items not yet done or skipped: the sweep completes when none is left. */
const unfinishedOf = (c: Counters) => c.total - c.done - c.skipped

/**
 * `remaining` as the CLI reports it (the Rust trail's): pending items not handed out, i.e.
 * neither finished nor leased. A lease that expired but was not reclaimed yet counts as handed
 * out until the next claim reclaims it (reading it would cost a scan; counters are O(1)).
 */
const pendingOf = (c: Counters) => c.total - c.done - c.skipped - c.leased

/** Values built from checked rows and typed inputs need no re-validation. */
const trusted = { disableValidation: true } as const

/** Items read per statement by {@link CoverageStoreShape.items}: memory stays bounded by a page. */
export const LIST_PAGE = 500

/**
 * A page of a sweep's items in claim order (score DESC, then path): the sweep's id range
 * `first_item_id ..= last_item_id`, read on the table's own key from `after` (exclusive; the
 * first page from `first_item_id - 1`), so a page of n items reads n rows (n matching ones
 * with a state filter). NOT INDEXED keeps SQLite off the partial indexes (sweep_id, …), whose
 * order would need a sort. An expired lease reads as pending. Who finished an item is
 * work_items.completed_by (the visit's agent for items finished before that column existed);
 * what they found is in the visit recorded with it (same path and time: the visits_by_task
 * index finds it).
 */
const listSql = (filter: string) => {
  const status = `CASE WHEN w.status = 'leased' AND w.lease_expires_at <= @now THEN 'pending' ELSE w.status END`
  return `SELECT w.id, w.path, ${status} AS shown, w.score,
      CASE WHEN w.status = 'leased' AND w.lease_expires_at > @now THEN w.lease_owner END AS lease_owner,
      CASE WHEN w.status = 'leased' AND w.lease_expires_at > @now THEN w.lease_expires_at END AS lease_expires_at,
      m.last_visited_at AS visited_at,
      CASE WHEN w.status = 'done' THEN v.found END AS found,
      CASE WHEN w.status IN ('done', 'skipped') THEN coalesce(w.completed_by, v.agent) END AS agent
    FROM work_items w NOT INDEXED
      LEFT JOIN folder_memory m ON m.task_id = @task AND m.folder_id = w.folder_id
      LEFT JOIN visits v ON w.status IN ('done', 'skipped') AND v.id = (
        SELECT max(x.id) FROM visits x
        WHERE x.task_id = @task AND x.at = w.completed_at AND x.path = w.path AND x.sweep = @number)
    WHERE w.id > @after AND w.id <= @last AND w.sweep_id = @sweep_id ${filter === "" ? "" : `AND ${status} = @state`}
    ORDER BY w.id LIMIT @size`
}
/** The page statements of {@link CoverageStoreShape.items}: every item, or those shown in `@state`. */
export const LIST_SQL = { all: listSql(""), inState: listSql("state") }

/** The current sweep as a listing reads it: its items are the ids `firstItemId ..= lastItemId`. */
interface ListedSweep {
  readonly taskId: number
  readonly sweepId: number
  readonly number: number
  readonly firstItemId: number
  readonly lastItemId: number
}

const readListed = (value: unknown): { readonly item: WorkItem; readonly id: number } => {
  const r = Rows.row(value, "work item")
  const score = Rows.num(r, "score")
  const owner = Rows.textOrNull(r, "lease_owner")
  return {
    id: Rows.int(r, "id"),
    item: new WorkItem(
      {
        path: FolderPath.make(Rows.text(r, "path"), trusted),
        status: Rows.oneOf(r, "shown", WorkItemStatus.literals),
        score,
        lease_owner: owner === null ? null : AgentId.make(owner, trusted),
        lease_expires_at: Rows.intOrNull(r, "lease_expires_at"),
        visited_at: Rows.intOrNull(r, "visited_at"),
        found: r["found"] === null ? null : Rows.num(r, "found"),
        agent: Rows.textOrNull(r, "agent")
      },
      trusted
    )
  }
}

/**
 * The sweep's claim cursor as ids: a null cursor is "before the first item"; a sweep that a trail
 * older than migration 0012 opened has no recorded range, found here once (a scan) and recorded.
 */
const claimRange = (
  db: Connection,
  sweepId: number,
  from: ClaimCursor
): { readonly cursor: number; readonly last: number } => {
  if (from.cursor !== null && from.last !== null) return { cursor: from.cursor, last: from.last }
  const range = Rows.row(db.get(SQL.itemRange, sweepId), "item range")
  const first = Rows.intOrNull(range, "first")
  const last = Rows.intOrNull(range, "last")
  if (first === null || last === null) return { cursor: 0, last: 0 }
  db.run(SQL.recordRange, first, last, sweepId)
  return { cursor: from.cursor ?? first - 1, last }
}

/** One claim inside an open transaction (see {@link CoverageStoreShape.claim}). */
const claimIn = (db: Connection, request: ClaimRequest): ClaimResult => {
  const { task, now } = request
  const current = ensureTask(db, task, now, request.open.requested)
  let sweep = current.sweep
  let claimFrom = current.claimFrom
  if (sweep === null || (sweep.status === "complete" && request.autoSweep)) {
    const opened = openSweep(db, current.taskId, request.open, now)
    if (opened === null) return { _tag: "SweepCompleted", task, sweep: sweep?.number ?? 0, covered: 0, total: 0 }
    sweep = opened
    claimFrom = opened.claimFrom
  }
  const c = sweep.counters
  if (sweep.status === "complete") {
    return { _tag: "SweepCompleted", task, sweep: sweep.number, covered: c.done, total: c.total }
  }
  // Expired leases go back to the pool first (the counters trigger moves `leased`).
  const reclaimed = c.leased === 0 ? 0 : db.run(SQL.reclaim, sweep.sweepId, now)
  const leaseExpiresAt = now + request.ttlMs
  const { cursor, last } = claimRange(db, sweep.sweepId, claimFrom)
  const next = argIntOrNull(db.pluck(SQL.nextPending, cursor, last, sweep.sweepId) ?? null, "work_items.id")
  const row = db.get(SQL.claim, { agent: request.agent, expires: leaseExpiresAt, next, sweep: sweep.sweepId })
  const claimedId = row === undefined ? null : Rows.int(Rows.row(row, "claimed item"), "id")
  // Every item in (cursor, next) has left pending: the cursor moves past them, and past `next`
  // when it was the one leased (an earlier returned item may have been the lower id).
  const moved = next === null ? last : claimedId === next ? next : next - 1
  if (moved !== cursor) db.run(SQL.moveCursor, moved, sweep.sweepId)
  if (row === undefined) {
    if (unfinishedOf(c) <= 0) {
      db.run(SQL.closeSweep, now, sweep.sweepId)
      return { _tag: "SweepCompleted", task, sweep: sweep.number, covered: c.done, total: c.total }
    }
    return { _tag: "NoneAvailable", task, sweep: sweep.number, leased_outstanding: c.leased - reclaimed }
  }
  const claimed = Rows.row(row, "claimed item")
  return {
    _tag: "Claimed",
    task,
    sweep: sweep.number,
    path: FolderPath.make(Rows.text(claimed, "path"), trusted),
    score: Rows.num(claimed, "score"),
    lease_expires_at: leaseExpiresAt,
    // `c` was read before the reclaim and this claim.
    remaining: pendingOf({ ...c, leased: c.leased - reclaimed + 1 })
  }
}

export const make = Effect.gen(function* () {
  const database = yield* Database
  const sql = yield* SqlClient.SqlClient

  const register: CoverageStoreShape["register"] = (folders, now) =>
    database.immediate((db) => {
      db.run(SQL.markAbsent)
      const full = SQL.upsertFolders(REGISTER_BATCH)
      for (let start = 0; start < folders.length; start += REGISTER_BATCH) {
        const rows = Math.min(REGISTER_BATCH, folders.length - start)
        const params: Array<string | number> = []
        for (let i = start; i < start + rows; i++) {
          const f = folders[i]
          if (f !== undefined) params.push(f.path, f.fileCount, f.bytes, f.churn, now)
        }
        db.run(rows === REGISTER_BATCH ? full : SQL.upsertFolders(rows), ...params)
      }
      return count(db, SQL.countPresent)
    })

  const claim: CoverageStoreShape["claim"] = (request) => database.immediate((db) => claimIn(db, request))

  const claimMany: CoverageStoreShape["claimMany"] = (request) =>
    database.immediate((db) => {
      const claimed: Array<Claimed> = []
      for (let i = 0; i < request.count; i++) {
        const result = claimIn(db, request)
        if (result._tag !== "Claimed") return { claimed, end: result }
        claimed.push(result)
      }
      return { claimed, end: null }
    })

  const complete: CoverageStoreShape["complete"] = (request) =>
    database.immediateEither((db): Either.Either<Completion, CompleteError> => {
      const { task, now, path } = request
      const found = currentItem(db, task, path)
      if (Either.isLeft(found)) return Either.left(found.left)
      const { sweep, item } = found.right
      const c = sweep.counters
      if (item.status === "done" || item.status === "skipped") {
        // Rows finished before completed_by existed have no finisher: a repeat stays a no-op.
        if (item.completedBy !== null && item.completedBy !== request.agent) {
          return Either.left(
            new NotLeaseHolder({ task, path, agent: request.agent, status: item.status, holder: item.completedBy })
          )
        }
        return Either.right({
          task,
          sweep: sweep.number,
          path,
          status: item.status,
          remaining: pendingOf(c),
          sweep_complete: sweep.status === "complete",
          changed: false
        })
      }
      if (
        item.status === "leased" &&
        item.leaseOwner !== null &&
        item.leaseOwner !== request.agent &&
        (item.leaseExpiresAt === null || item.leaseExpiresAt > now)
      ) {
        return Either.left(
          new NotLeaseHolder({ task, path, agent: request.agent, status: "leased", holder: item.leaseOwner })
        )
      }
      db.run(SQL.finishItem, request.status, now, request.agent, item.id)
      const unfinished = unfinishedOf(c) - 1
      if (unfinished <= 0) db.run(SQL.closeSweep, now, sweep.sweepId)
      const after: Counters = {
        total: c.total,
        done: c.done + (request.status === "done" ? 1 : 0),
        skipped: c.skipped + (request.status === "skipped" ? 1 : 0),
        leased: c.leased - (item.status === "leased" ? 1 : 0)
      }
      db.run(
        SQL.insertVisit,
        sweep.taskId,
        sweep.number,
        item.folderId,
        path,
        request.agent,
        request.status,
        request.reason,
        request.found,
        now
      )
      // The visits_memory trigger has moved last_visited_at; reported findings also move the
      // decayed outcome (its row exists now, with outcome_at null on a first visit).
      if (request.found !== null) {
        const memory = readMemory(db.get(SQL.memory, sweep.taskId, item.folderId))
        const outcome = decayOutcome(memory.outcome, memory.outcomeAt, request.found, now, request.halfLifeSecs)
        db.run(SQL.recordOutcome, outcome, now, sweep.taskId, item.folderId)
      }
      return Either.right({
        task,
        sweep: sweep.number,
        path,
        status: request.status,
        remaining: pendingOf(after),
        sweep_complete: unfinished <= 0,
        changed: true
      })
    })

  const release: CoverageStoreShape["release"] = (request) =>
    database.immediateEither((db): Either.Either<Release, TaskNotFound | NoSweep | NotAWorkItem | LeaseNotHeld> => {
      const { task, path } = request
      const found = currentItem(db, task, path)
      if (Either.isLeft(found)) return Either.left(found.left)
      const { sweep, item } = found.right
      if (item.status !== "leased") {
        return Either.left(new LeaseNotHeld({ task, path, status: item.status, holder: null }))
      }
      if (request.agent !== null && item.leaseOwner !== request.agent) {
        return Either.left(new LeaseNotHeld({ task, path, status: item.status, holder: item.leaseOwner }))
      }
      db.run(SQL.releaseItem, item.id)
      const c = sweep.counters
      return Either.right({ task, sweep: sweep.number, path, remaining: pendingOf({ ...c, leased: c.leased - 1 }) })
    })

  const renew: CoverageStoreShape["renew"] = (request) =>
    database.immediateEither((db): Either.Either<boolean, TaskNotFound | NoSweep | NotAWorkItem> => {
      const found = currentItem(db, request.task, request.path)
      if (Either.isLeft(found)) return Either.left(found.left)
      const changed = db.run(SQL.renewItem, {
        id: found.right.item.id,
        agent: request.agent,
        previous: request.previous ?? request.agent,
        now: request.now,
        expires: request.now + request.ttlMs
      })
      return Either.right(changed === 1)
    })

  // ---------------------------------------------------------------------------------------------
  // Cold paths: SqlClient, rows decoded by Schema, writes in one `database.transaction`.

  // The statement of SQL.renewItem, with the item found by task name and path.
  const renewByPath = SqlSchema.findAll({
    Request: Schema.Struct({
      task: Schema.String,
      path: Schema.String,
      agent: Schema.String,
      previous: Schema.String,
      now: Schema.Number,
      expires: Schema.Number
    }),
    Result: Schema.Struct({ id: Schema.Int }),
    execute: (r) =>
      sql`UPDATE work_items SET status = 'leased', lease_owner = ${r.agent}, lease_expires_at = ${r.expires}
        WHERE id = (SELECT ${sql.literal(ITEM_AT_FOLDER("t.current_sweep_id", "f.id"))} FROM tasks t
            JOIN folders f ON f.path = ${r.path} WHERE t.name = ${r.task})
          AND (status = 'pending'
            OR (status = 'leased' AND (lease_owner IN (${r.agent}, ${r.previous}) OR lease_expires_at <= ${r.now})))
        RETURNING id`
  })

  // SQL.indexSweep for a task's current sweep: a folder whose item is not leased is found
  // through work_items_by_folder, whose entries a sweep gets when first needed.
  const indexCurrentSweep = (task: string) =>
    sql.unsafe(indexSweepSql("(SELECT current_sweep_id FROM tasks WHERE name = ?)"), [task])

  const renewMany: CoverageStoreShape["renewMany"] = (requests, now, ttlMs) =>
    requests.length === 0
      ? Effect.succeed([])
      : Effect.forEach(requests, (r) => {
          const renewOne = Effect.map(
            renewByPath({ ...r, previous: r.previous ?? r.agent, now, expires: now + ttlMs }),
            (rows) => rows.length === 1
          )
          // Not renewed: a lease lost, or an item that is not leased in a sweep without entries yet.
          return Effect.flatMap(renewOne, (renewed) =>
            renewed ? Effect.succeed(true) : Effect.zipRight(indexCurrentSweep(r.task), renewOne)
          )
        }).pipe(database.transaction)

  // One statement, so the counters and the expired leases are read from one snapshot.
  const findStatus = SqlSchema.findOne({
    Request: StatusRequest,
    Result: StatusRow,
    execute: ({ now, task }) =>
      sql`SELECT s.number AS sweep, s.status, s.total, s.done, s.skipped, s.leased,
          CASE WHEN s.leased = 0 THEN 0 ELSE (SELECT count(*) FROM work_items w
            WHERE w.sweep_id = s.id AND w.status = 'leased' AND w.lease_expires_at <= ${now}) END AS expired
        FROM tasks t LEFT JOIN sweeps s ON s.id = t.current_sweep_id WHERE t.name = ${task}`
  })

  const status: CoverageStoreShape["status"] = (task, now) =>
    Effect.gen(function* () {
      const found = yield* findStatus({ task, now })
      if (Option.isNone(found)) return yield* new TaskNotFound({ task })
      const row = found.value
      if (row.sweep === null) {
        return new TaskStatus({
          task,
          sweep: null,
          sweep_status: null,
          total: 0,
          done: 0,
          leased: 0,
          pending: 0,
          skipped: 0,
          percent: 0
        })
      }
      const leased = row.leased - row.expired
      return new TaskStatus({
        task,
        sweep: row.sweep,
        sweep_status: row.status,
        total: row.total,
        done: row.done,
        leased,
        pending: row.total - row.done - row.skipped - leased,
        skipped: row.skipped,
        percent: row.total === 0 ? 100 : Math.round((1000 * row.done) / row.total) / 10
      })
    }).pipe(Db.autocommit)

  const findCurrent = SqlSchema.findOne({
    Request: TaskName,
    Result: CurrentSweepRow,
    execute: (task) =>
      sql`SELECT t.id AS task_id, s.id AS sweep_id, s.number, s.first_item_id, s.last_item_id FROM tasks t
        LEFT JOIN sweeps s ON s.id = t.current_sweep_id WHERE t.name = ${task}`
  })

  const items: CoverageStoreShape["items"] = (task, options) => {
    const limit = options.limit ?? Number.POSITIVE_INFINITY
    const sqlOf = options.state === null ? LIST_SQL.all : LIST_SQL.inState
    const page = (sweep: ListedSweep, after: number, size: number) =>
      database.read((db) =>
        db
          .all(sqlOf, {
            task: sweep.taskId,
            sweep_id: sweep.sweepId,
            number: sweep.number,
            now: options.now,
            state: options.state,
            size,
            after,
            last: sweep.lastItemId
          })
          .map(readListed)
      )
    return Stream.unwrap(
      Effect.gen(function* () {
        const current = yield* Db.autocommit(findCurrent(task))
        if (Option.isNone(current)) return yield* new TaskNotFound({ task })
        const { first_item_id: first, last_item_id: last, number, sweep_id: sweepId, task_id: taskId } = current.value
        if (sweepId === null || number === null) return yield* new NoSweep({ task })
        // A sweep opened by a trail older than migration 0012 (still running when the store was
        // migrated) has no range recorded: its items are found by sweep (they are in claim order too).
        const range =
          first !== null && last !== null
            ? { first, last }
            : yield* database.read((db) => Rows.row(db.get(SQL.itemRange, sweepId), "item range"))
        const rangeFirst = range.first
        const rangeLast = range.last
        if (typeof rangeFirst !== "number" || typeof rangeLast !== "number") return Stream.empty
        const sweep: ListedSweep = { taskId, sweepId, number, firstItemId: rangeFirst, lastItemId: rangeLast }
        const start: { readonly after: number; readonly read: number } = { after: rangeFirst - 1, read: 0 }
        return Stream.paginateChunkEffect(start, (state) => {
          const size = Math.min(LIST_PAGE, limit - state.read)
          return Effect.map(size <= 0 ? Effect.succeed([]) : page(sweep, state.after, size), (rows) => {
            const last = rows.at(-1)
            const more = rows.length === size && last !== undefined && state.read + rows.length < limit
            return [
              Chunk.unsafeFromArray(rows.map((row) => row.item)),
              more ? Option.some({ after: last.id, read: state.read + rows.length }) : Option.none()
            ] as const
          })
        })
      })
    )
  }

  const list: CoverageStoreShape["list"] = (task, state, now) =>
    Effect.map(Stream.runCollect(items(task, { state, limit: null, now })), Chunk.toReadonlyArray)

  // `sweep new` stays a unit of work: it opens the sweep with the claim's own openSweep (one
  // implementation), and opening is a bulk insert of one item per folder.
  const newSweep: CoverageStoreShape["newSweep"] = (task, open, now) =>
    database.immediateEither((db): Either.Either<Sweep, SweepActive | NoFolders> => {
      const current = ensureTask(db, task, now)
      const sweep = current.sweep
      if (sweep !== null && sweep.status === "active") {
        return Either.left(new SweepActive({ task, sweep: sweep.number }))
      }
      if (open.requested !== undefined) db.run(SQL.setTaskStrategy, open.requested, current.taskId)
      const opened = openSweep(db, current.taskId, open, now)
      if (opened === null) return Either.left(new NoFolders({ task }))
      const { total } = opened.counters
      return Either.right(
        new Sweep({
          task,
          sweep: opened.number,
          status: opened.status,
          strategy: opened.strategy,
          total,
          done: 0,
          skipped: 0,
          leased: 0,
          pending: total,
          opened_at: now,
          closed_at: null,
          items_pruned_at: null
        })
      )
    })

  const findSweep = SqlSchema.findOne({
    Request: Schema.Struct({ task: TaskName, number: Schema.NullOr(Int) }),
    Result: CurrentSweepOrNone,
    execute: ({ number, task }) =>
      sql`SELECT t.name AS task, s.number AS sweep, s.status, s.strategy, s.total, s.done, s.skipped, s.leased,
          s.total - s.done - s.skipped - s.leased AS pending, s.opened_at, s.closed_at, s.items_pruned_at
        FROM tasks t LEFT JOIN sweeps s ON ${
          number === null ? sql`s.id = t.current_sweep_id` : sql`s.task_id = t.id AND s.number = ${number}`
        } WHERE t.name = ${task}`
  })

  const showSweep: CoverageStoreShape["showSweep"] = (task, number) =>
    Effect.gen(function* () {
      const found = yield* findSweep({ task, number: number ?? null })
      if (Option.isNone(found)) return yield* new TaskNotFound({ task })
      const sweep = found.value
      return sweep instanceof Sweep ? sweep : yield* new NoSweep({ task })
    }).pipe(Db.autocommit)

  const findTaskId = SqlSchema.findOne({
    Request: TaskName,
    Result: IdRow,
    execute: (task) => sql`SELECT id FROM tasks WHERE name = ${task}`
  })
  const clearSweeps = SqlSchema.findAll({
    Request: Int,
    Result: IdRow,
    execute: (taskId) =>
      Effect.zipRight(
        Effect.all(
          [
            sql`UPDATE tasks SET current_sweep_id = NULL WHERE id = ${taskId}`,
            sql`DELETE FROM work_items WHERE id IN (SELECT w.id FROM sweeps s JOIN work_items w ON ${sql.literal(
              ITEMS_OF_SWEEP
            )} WHERE s.task_id = ${taskId})`,
            sql`DELETE FROM work_items_by_folder WHERE sweep_id IN (SELECT id FROM sweeps WHERE task_id = ${taskId})`,
            sql`DELETE FROM work_items_returned WHERE sweep_id IN (SELECT id FROM sweeps WHERE task_id = ${taskId})`
          ],
          { discard: true }
        ),
        sql`DELETE FROM sweeps WHERE task_id = ${taskId} RETURNING id`
      )
  })
  // Counted before they go: a task's history can be long, and RETURNING would read every id.
  const countVisits = SqlSchema.findOne({
    Request: Int,
    Result: CountRow,
    execute: (taskId) => sql`SELECT count(*) AS n FROM visits WHERE task_id = ${taskId}`
  })
  const forgetHistory = SqlSchema.void({
    Request: Int,
    execute: (taskId) =>
      Effect.all(
        [sql`DELETE FROM visits WHERE task_id = ${taskId}`, sql`DELETE FROM folder_memory WHERE task_id = ${taskId}`],
        { discard: true }
      )
  })

  const reset: CoverageStoreShape["reset"] = (task, all) =>
    Effect.gen(function* () {
      const found = yield* findTaskId(task)
      if (Option.isNone(found)) return yield* new TaskNotFound({ task })
      const taskId = found.value.id
      const cleared = yield* clearSweeps(taskId)
      let clearedVisits = 0
      if (all) {
        clearedVisits = Option.match(yield* countVisits(taskId), { onNone: () => 0, onSome: (row) => row.n })
        yield* forgetHistory(taskId)
      }
      return new ResetSummary({
        task,
        cleared_sweeps: cleared.length,
        cleared_history: all,
        cleared_visits: clearedVisits
      })
    }).pipe(database.transaction)

  const reclaimAll = SqlSchema.findAll({
    Request: Int,
    Result: IdRow,
    execute: (now) =>
      sql`UPDATE work_items SET status = 'pending', lease_owner = NULL, lease_expires_at = NULL
        WHERE status = 'leased' AND lease_expires_at <= ${now}
          AND sweep_id IN (SELECT id FROM sweeps WHERE status = 'active')
        RETURNING id`
  })
  const findCounters = SqlSchema.findAll({
    Request: Schema.Void,
    Result: ReconcileRow,
    execute: () =>
      sql`SELECT s.id, s.total, s.done, s.skipped, s.leased, s.status,
          count(w.id) AS actual_total,
          coalesce(sum(w.status = 'done'), 0) AS actual_done,
          coalesce(sum(w.status = 'skipped'), 0) AS actual_skipped,
          coalesce(sum(w.status = 'leased'), 0) AS actual_leased
        FROM sweeps s LEFT JOIN work_items w ON ${sql.literal(ITEMS_OF_SWEEP)}
        WHERE s.items_pruned_at IS NULL GROUP BY s.id`
  })
  const fixCounters = SqlSchema.void({
    Request: FixCounters,
    execute: (r) =>
      sql`UPDATE sweeps SET total = ${r.total}, done = ${r.done}, skipped = ${r.skipped}, leased = ${r.leased},
          status = ${r.status}, closed_at = CASE WHEN ${r.status} = 'complete' THEN coalesce(closed_at, ${r.now}) END
        WHERE id = ${r.id}`
  })

  // Complete sweeps that `keep` newer sweeps of their task follow, whose items are still there,
  // with their number of items (counted before they go: RETURNING would read every id).
  const findPrunable = SqlSchema.findAll({
    Request: Int,
    Result: Schema.Struct({ id: Int, n: Int }),
    execute: (keep) =>
      sql`SELECT s.id, (SELECT count(*) FROM work_items w WHERE ${sql.literal(ITEMS_OF_SWEEP)}) AS n FROM sweeps s
        WHERE s.status = 'complete' AND s.items_pruned_at IS NULL
          AND (SELECT count(*) FROM sweeps newer WHERE newer.task_id = s.task_id AND newer.number > s.number) >= ${keep}`
  })
  const pruneItems = SqlSchema.void({
    Request: Schema.Struct({ id: Int, now: Int }),
    execute: ({ id, now }) =>
      Effect.zipRight(
        Effect.all(
          [
            sql`DELETE FROM work_items WHERE id IN (SELECT w.id FROM sweeps s JOIN work_items w ON ${sql.literal(
              ITEMS_OF_SWEEP
            )} WHERE s.id = ${id})`,
            sql`DELETE FROM work_items_by_folder WHERE sweep_id = ${id}`,
            sql`DELETE FROM work_items_returned WHERE sweep_id = ${id}`
          ],
          { discard: true }
        ),
        sql`UPDATE sweeps SET items_pruned_at = ${now}, first_item_id = NULL, last_item_id = NULL WHERE id = ${id}`
      )
  })

  const gc: CoverageStoreShape["gc"] = ({ keepSweeps, now, reconcile }) =>
    Effect.gen(function* () {
      const reclaimed = yield* reclaimAll(now)
      let pruned = 0
      for (const sweep of yield* findPrunable(keepSweeps)) {
        yield* pruneItems({ id: sweep.id, now })
        pruned += sweep.n
      }
      let reconciledSweeps = 0
      let drift = 0
      if (reconcile) {
        for (const r of yield* findCounters(undefined)) {
          const finished = r.actual_done + r.actual_skipped
          const status: SweepStatus = finished >= r.actual_total ? "complete" : "active"
          const rowDrift =
            Math.abs(r.total - r.actual_total) +
            Math.abs(r.done - r.actual_done) +
            Math.abs(r.skipped - r.actual_skipped) +
            Math.abs(r.leased - r.actual_leased)
          if (rowDrift === 0 && status === r.status) continue
          drift += rowDrift
          reconciledSweeps++
          yield* fixCounters({
            id: r.id,
            total: r.actual_total,
            done: r.actual_done,
            skipped: r.actual_skipped,
            leased: r.actual_leased,
            status,
            now
          })
        }
      }
      return {
        reclaimed_leases: reclaimed.length,
        reconciled_sweeps: reconciledSweeps,
        counter_drift: drift,
        pruned_work_items: pruned
      }
    }).pipe(database.transaction)

  // Outside any transaction (VACUUM cannot run inside one); the checkpoint then empties the WAL.
  const vacuum = Effect.zipRight(Db.autocommit(sql`VACUUM`), Db.autocommit(sql`PRAGMA wal_checkpoint(TRUNCATE)`)).pipe(
    Effect.asVoid
  )

  return CoverageStore.of({
    register,
    claim,
    claimMany,
    complete,
    release,
    renew,
    renewMany,
    status,
    items,
    list,
    newSweep,
    showSweep,
    reset,
    gc,
    vacuum
  })
})

/** The store on a {@link Database}, whose schema is brought up to date first. */
export const layer = Layer.effect(CoverageStore, Effect.zipRight(Migrations.migrate, make))
