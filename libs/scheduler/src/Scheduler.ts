/**
 * The coverage scheduler service (SPEC §1): scans the root, opens sweeps, hands out folders
 * under leases and records visits. Time comes from Effect's `Clock` (so tests drive lease expiry
 * with `TestClock`); configuration and the root come from {@link Settings}.
 */
import type * as CommandExecutor from "@effect/platform/CommandExecutor"
import type {
  AgentId,
  ClaimResult,
  Completion,
  FolderPath,
  GcSummary,
  LeaseNotHeld,
  NoFolders,
  NoSweep,
  NotAWorkItem,
  NotLeaseHolder,
  Outcome,
  Release,
  ResetSummary,
  ScanError,
  StoreError,
  Strategy,
  Sweep,
  SweepActive,
  TaskName,
  TaskNotFound,
  TaskStatus,
  TrailConfig,
  WorkItem,
  WorkItemStatus
} from "@trail/domain"
import { Clock, Context, Effect, Layer, Stream } from "effect"
import { CoverageStore, layer as CoverageStoreLayer, type ClaimBatch, type OpenSweepOptions } from "./CoverageStore.js"
import { Database } from "@trail/store"
import type { Project } from "./Project.js"
import * as Walker from "./Walker.js"
import type { ScanProgress } from "./Walker.js"

/** The root's files and its validated `.trail.toml`. */
export class Settings extends Context.Tag("@trail/scheduler/Settings")<
  Settings,
  { readonly project: Project; readonly config: TrailConfig }
>() {}

export interface ScanOutcome {
  readonly folders: number
  readonly excluded: number
  readonly files: number
  /** Folders left out because they could not be read, relative to the root. */
  readonly unreadable: ReadonlyArray<string>
}

export interface SchedulerShape {
  /** Walks the root and registers its folders (a rescan keeps history; new folders count as never visited). */
  readonly scan: (options?: {
    readonly onProgress?: (progress: ScanProgress) => void
  }) => Effect.Effect<ScanOutcome, ScanError | StoreError, CommandExecutor.CommandExecutor>
  /**
   * Leases the next folder of the task's sweep; opens sweep 1 on first use, the next one with
   * `autoSweep`. A `strategy` is remembered for the task: its next sweeps use it until another is given.
   */
  readonly claim: (request: {
    readonly task: TaskName
    readonly agent: AgentId
    readonly strategy?: Strategy | undefined
    readonly autoSweep?: boolean | undefined
  }) => Effect.Effect<ClaimResult, StoreError>
  /** Leases up to `count` folders to `agent` at once (the supervisor's batch use). */
  readonly claimMany: (request: {
    readonly task: TaskName
    readonly agent: AgentId
    readonly count: number
    readonly strategy?: Strategy | undefined
    readonly autoSweep?: boolean | undefined
  }) => Effect.Effect<ClaimBatch, StoreError>
  /**
   * `done` (with an outcome) or `skip` (with a reason) of a pending item, or of an item leased to
   * `agent` (or whose lease expired); see CoverageStore.complete for NotLeaseHolder.
   */
  readonly complete: (request: {
    readonly task: TaskName
    readonly path: FolderPath
    readonly agent: AgentId
    readonly status: "done" | "skipped"
    readonly outcome?: Outcome | undefined
    readonly reason?: string | undefined
  }) => Effect.Effect<Completion, TaskNotFound | NoSweep | NotAWorkItem | NotLeaseHolder | StoreError>
  readonly release: (request: {
    readonly task: TaskName
    readonly path: FolderPath
    readonly agent?: AgentId | undefined
  }) => Effect.Effect<Release, TaskNotFound | NoSweep | NotAWorkItem | LeaseNotHeld | StoreError>
  /** Extends `agent`'s lease on the folder by `lease.ttl_secs`, taking it over from `previous` (see CoverageStore.renew). */
  readonly renew: (request: {
    readonly task: TaskName
    readonly path: FolderPath
    readonly agent: AgentId
    readonly previous?: AgentId | undefined
  }) => Effect.Effect<boolean, TaskNotFound | NoSweep | NotAWorkItem | StoreError>
  /**
   * {@link renew} for many folders in one transaction (see CoverageStore.renewMany): whether each
   * lease was extended, in request order; a folder that is not a work item of its task's current
   * sweep is not (false).
   */
  readonly renewMany: (
    requests: ReadonlyArray<{
      readonly task: TaskName
      readonly path: FolderPath
      readonly agent: AgentId
      readonly previous?: AgentId | undefined
    }>
  ) => Effect.Effect<ReadonlyArray<boolean>, StoreError>
  readonly status: (task: TaskName) => Effect.Effect<TaskStatus, TaskNotFound | StoreError>
  /**
   * The current sweep's items, highest score first, read page by page as the stream is pulled
   * (see CoverageStore.items): only `state` when given, at most `limit` when given.
   */
  readonly items: (
    task: TaskName,
    options?: { readonly state?: WorkItemStatus | undefined; readonly limit?: number | undefined }
  ) => Stream.Stream<WorkItem, TaskNotFound | NoSweep | StoreError>
  /** Every item of {@link items} in `state` (default: all), collected. */
  readonly list: (
    task: TaskName,
    state?: WorkItemStatus | undefined
  ) => Effect.Effect<ReadonlyArray<WorkItem>, TaskNotFound | NoSweep | StoreError>
  readonly newSweep: (request: {
    readonly task: TaskName
    readonly strategy?: Strategy | undefined
  }) => Effect.Effect<Sweep, SweepActive | NoFolders | StoreError>
  /** The task's current sweep, or its sweep number `sweep` (NoSweep when there is none). */
  readonly showSweep: (task: TaskName, sweep?: number) => Effect.Effect<Sweep, TaskNotFound | NoSweep | StoreError>
  readonly reset: (
    task: TaskName,
    options?: { readonly all?: boolean }
  ) => Effect.Effect<ResetSummary, TaskNotFound | StoreError>
  readonly gc: (options?: {
    readonly vacuum?: boolean
    readonly reconcile?: boolean
  }) => Effect.Effect<GcSummary, StoreError>
}

export class Scheduler extends Context.Tag("@trail/scheduler/Scheduler")<Scheduler, SchedulerShape>() {}

const foundOf = (outcome: Outcome | undefined): number | null => {
  if (outcome === undefined) return null
  switch (outcome._tag) {
    case "found":
      return outcome.count
    case "clean":
      return 0
    case "unreported":
      return null
  }
}

export const make = Effect.gen(function* () {
  const store = yield* CoverageStore
  const walker = yield* Walker.Walker
  const { project, config } = yield* Settings

  const openOptions = (strategy: Strategy | undefined): OpenSweepOptions => ({
    strategy: config.strategy.default,
    requested: strategy,
    alpha: config.strategy.alpha,
    outcomeWeight: config.strategy.outcome_weight,
    halfLifeSecs: config.strategy.half_life_secs,
    seed: config.strategy.seed,
    staticSignal: config.strategy.static_signal
  })
  const ttlMs = config.lease.ttl_secs * 1000

  const scheduler: SchedulerShape = {
    scan: (options) =>
      Effect.gen(function* () {
        const result = yield* walker.scan({
          root: project.root,
          scan: config.scan,
          staticSignal: config.strategy.static_signal,
          ...(options?.onProgress === undefined ? {} : { onProgress: options.onProgress })
        })
        const now = yield* Clock.currentTimeMillis
        const folders = yield* store.register(result.folders, now)
        return { folders, excluded: result.excluded, files: result.files, unreadable: result.unreadable }
      }),
    claim: (request) =>
      Effect.clockWith((clock) =>
        store.claim({
          task: request.task,
          agent: request.agent,
          now: clock.unsafeCurrentTimeMillis(),
          ttlMs,
          open: openOptions(request.strategy),
          autoSweep: request.autoSweep ?? false
        })
      ),
    claimMany: (request) =>
      Effect.flatMap(Clock.currentTimeMillis, (now) =>
        store.claimMany({
          task: request.task,
          agent: request.agent,
          count: request.count,
          now,
          ttlMs,
          open: openOptions(request.strategy),
          autoSweep: request.autoSweep ?? false
        })
      ),
    complete: (request) =>
      Effect.clockWith((clock) =>
        store.complete({
          task: request.task,
          path: request.path,
          agent: request.agent,
          status: request.status,
          found: foundOf(request.outcome),
          reason: request.reason ?? null,
          now: clock.unsafeCurrentTimeMillis(),
          halfLifeSecs: config.strategy.half_life_secs
        })
      ),
    release: (request) => store.release({ task: request.task, path: request.path, agent: request.agent ?? null }),
    renew: (request) =>
      Effect.flatMap(Clock.currentTimeMillis, (now) =>
        store.renew({
          task: request.task,
          path: request.path,
          agent: request.agent,
          previous: request.previous ?? null,
          now,
          ttlMs
        })
      ),
    renewMany: (requests) =>
      Effect.flatMap(Clock.currentTimeMillis, (now) =>
        store.renewMany(
          requests.map((r) => ({ task: r.task, path: r.path, agent: r.agent, previous: r.previous ?? null })),
          now,
          ttlMs
        )
      ),
    status: (task) => Effect.flatMap(Clock.currentTimeMillis, (now) => store.status(task, now)),
    items: (task, options) =>
      Stream.unwrap(
        Effect.map(Clock.currentTimeMillis, (now) =>
          store.items(task, { state: options?.state ?? null, limit: options?.limit ?? null, now })
        )
      ),
    list: (task, state) => Effect.flatMap(Clock.currentTimeMillis, (now) => store.list(task, state ?? null, now)),
    newSweep: (request) =>
      Effect.flatMap(Clock.currentTimeMillis, (now) =>
        store.newSweep(request.task, openOptions(request.strategy), now)
      ),
    showSweep: (task, sweep) => store.showSweep(task, sweep),
    reset: (task, options) => store.reset(task, options?.all ?? false),
    gc: (options) =>
      Effect.gen(function* () {
        const now = yield* Clock.currentTimeMillis
        const summary = yield* store.gc({
          now,
          reconcile: options?.reconcile ?? false,
          keepSweeps: config.history.keep_sweeps
        })
        if (options?.vacuum === true) yield* store.vacuum
        return { ...summary, vacuumed: options?.vacuum === true }
      })
  }
  return Scheduler.of(scheduler)
})

/** The scheduler over a {@link CoverageStore} and a {@link Walker}; needs {@link Settings}. */
export const layer = Layer.effect(Scheduler, make)

/**
 * The whole scheduler for one root: its settings, the state database at
 * `settings.project.databaseFile` (opened and migrated), the store and the walker.
 * `walkWorker` is the path of the bundled walk worker (large scans then use two threads).
 * `create` (default true) creates the database when it does not exist; with false a missing or
 * empty database fails with StoreError `missing` / `corrupt` (only `trail init` creates one).
 */
export const layerFor = (
  settings: Context.Tag.Service<Settings>,
  options?: { readonly walkWorker?: string | undefined; readonly create?: boolean | undefined }
) =>
  layerOn(settings, options).pipe(
    Layer.provide(Database.layer({ filename: settings.project.databaseFile, create: options?.create ?? true }))
  )

/** As {@link layerFor}, on a Database provided by the caller (shared with other services). */
export const layerOn = (
  settings: Context.Tag.Service<Settings>,
  options?: { readonly walkWorker?: string | undefined }
) =>
  layer.pipe(
    Layer.provide(CoverageStoreLayer),
    Layer.provide(options?.walkWorker === undefined ? Walker.layer : Walker.layerWithWorker(options.walkWorker)),
    Layer.provide(Layer.succeed(Settings, settings))
  )
