/**
 * The coverage scheduler's domain: strategies, work items, sweeps, visits and the results of
 * claims and completions. Field names are snake_case because they are the CLI's JSON contract
 * (SPEC §1). All times are milliseconds since the Unix epoch.
 */
import { Schema } from "effect"
import { AgentId, FolderPath, TaskName } from "./ids.js"

/** How a sweep orders its one-pass drain. */
export const Strategy = Schema.Literal("weighted", "round-robin", "random")
export type Strategy = typeof Strategy.Type

/** The per-folder static weight used by `weighted`. */
export const StaticSignal = Schema.Literal("file_count", "bytes", "churn")
export type StaticSignal = typeof StaticSignal.Type

/** A work item's state: `pending → leased → done | skipped`, `leased → pending`. */
export const WorkItemStatus = Schema.Literal("pending", "leased", "done", "skipped")
export type WorkItemStatus = typeof WorkItemStatus.Type

export const SweepStatus = Schema.Literal("active", "complete")
export type SweepStatus = typeof SweepStatus.Type

const Millis = Schema.Number

/** One folder inside one sweep, as `trail list` prints it. */
export class WorkItem extends Schema.Class<WorkItem>("WorkItem")({
  path: FolderPath,
  status: WorkItemStatus,
  score: Schema.Number,
  lease_owner: Schema.NullOr(AgentId),
  lease_expires_at: Schema.NullOr(Millis),
  /** When this folder was last completed under the task (any sweep), or null if never. */
  visited_at: Schema.NullOr(Millis),
  /** Findings its finisher reported with `done --found N` (done items only; null: not reported). */
  found: Schema.NullOr(Schema.Number),
  /** Who finished it (done or skipped items only): the agent id, or the fleet worker's id. */
  agent: Schema.NullOr(Schema.String)
}) {}

/** One pass of a task over every registered folder, with its O(1) counters. */
export class Sweep extends Schema.Class<Sweep>("Sweep")({
  task: TaskName,
  sweep: Schema.Number,
  status: SweepStatus,
  strategy: Strategy,
  total: Schema.Number,
  done: Schema.Number,
  skipped: Schema.Number,
  leased: Schema.Number,
  pending: Schema.Number,
  opened_at: Millis,
  closed_at: Schema.NullOr(Millis),
  /** When `trail gc` pruned the sweep's work items (`history.keep_sweeps`), or null: its counters and visits stay. */
  items_pruned_at: Schema.NullOr(Millis)
}) {}

/** The most findings one visit may report (`--found N`). */
export const MAX_FOUND = 1_000_000_000

/** A number of findings: a whole number from 0 to {@link MAX_FOUND}. */
export const FoundCount = Schema.Int.pipe(Schema.between(0, MAX_FOUND))

/**
 * What an agent reports when completing a folder.
 * `found`: number of findings (`--found N`), `clean`: nothing found (`--clean`, found 0),
 * `unreported`: no claim either way (found is null in the visit).
 */
export const Outcome = Schema.Union(
  Schema.TaggedStruct("found", { count: FoundCount }),
  Schema.TaggedStruct("clean", {}),
  Schema.TaggedStruct("unreported", {})
)
export type Outcome = typeof Outcome.Type

/** The history row written when a work item is completed. */
export class Visit extends Schema.Class<Visit>("Visit")({
  task: TaskName,
  sweep: Schema.Number,
  path: FolderPath,
  agent: AgentId,
  status: Schema.Literal("done", "skipped"),
  reason: Schema.NullOr(Schema.String),
  found: Schema.NullOr(Schema.Number),
  at: Millis
}) {}

// The results of the hot path (claim, complete, release) are plain structs: they are built for
// every agent call, and a class instance costs several times as much to make.

/**
 * `trail next`: a folder was leased to the agent. `remaining` = pending items not yet handed out
 * after this claim (not counting this one, nor folders leased to others), as the Rust trail.
 */
export const Claimed = Schema.TaggedStruct("Claimed", {
  task: TaskName,
  sweep: Schema.Number,
  path: FolderPath,
  score: Schema.Number,
  lease_expires_at: Millis,
  remaining: Schema.Number
})
export type Claimed = typeof Claimed.Type

/** `trail next`: every item of the sweep is done or skipped (exit 3). `covered` counts done items only. */
export const SweepCompleted = Schema.TaggedStruct("SweepCompleted", {
  task: TaskName,
  sweep: Schema.Number,
  covered: Schema.Number,
  total: Schema.Number
})
export type SweepCompleted = typeof SweepCompleted.Type

/** `trail next`: nothing pending, but leases are outstanding (exit 4: retry later). */
export const NoneAvailable = Schema.TaggedStruct("NoneAvailable", {
  task: TaskName,
  sweep: Schema.Number,
  leased_outstanding: Schema.Number
})
export type NoneAvailable = typeof NoneAvailable.Type

export const ClaimResult = Schema.Union(Claimed, SweepCompleted, NoneAvailable)
export type ClaimResult = typeof ClaimResult.Type

/**
 * `trail done` / `trail skip`. `changed` is false when the item was already finished by the same
 * agent (a no-op). `remaining` = pending items not handed out (as in {@link Claimed}).
 */
export const Completion = Schema.Struct({
  task: TaskName,
  sweep: Schema.Number,
  path: FolderPath,
  status: Schema.Literal("done", "skipped"),
  remaining: Schema.Number,
  sweep_complete: Schema.Boolean,
  changed: Schema.Boolean
})
export type Completion = typeof Completion.Type

/** `trail release`. */
export const Release = Schema.Struct({
  task: TaskName,
  sweep: Schema.Number,
  path: FolderPath,
  remaining: Schema.Number
})
export type Release = typeof Release.Type

/**
 * `trail status`. `percent` = done / total × 100, one decimal (skipped folders are not covered,
 * as in the Rust trail). `sweep` and `sweep_status` are null when the task has no sweep.
 */
export class TaskStatus extends Schema.Class<TaskStatus>("TaskStatus")({
  task: TaskName,
  sweep: Schema.NullOr(Schema.Number),
  sweep_status: Schema.NullOr(SweepStatus),
  total: Schema.Number,
  done: Schema.Number,
  leased: Schema.Number,
  pending: Schema.Number,
  skipped: Schema.Number,
  percent: Schema.Number
}) {}

/** `trail init`. `excluded` counts directories left out by ignore rules, globs or `min_files`. */
export class ScanSummary extends Schema.Class<ScanSummary>("ScanSummary")({
  folders: Schema.Number,
  excluded: Schema.Number,
  wrote_example_config: Schema.Boolean
}) {}

/**
 * `trail reset`. `cleared_history` says whether the visit history and folder memory were cleared
 * (`--all`; a boolean, as in the Rust trail); `cleared_visits` counts the visits deleted.
 */
export class ResetSummary extends Schema.Class<ResetSummary>("ResetSummary")({
  task: TaskName,
  cleared_sweeps: Schema.Number,
  cleared_history: Schema.Boolean,
  cleared_visits: Schema.Number
}) {}

/**
 * `trail gc`. `counter_drift` is the sum of absolute counter corrections `--reconcile` made;
 * `pruned_work_items` counts the work items of finished sweeps beyond `history.keep_sweeps` deleted.
 */
export class GcSummary extends Schema.Class<GcSummary>("GcSummary")({
  reclaimed_leases: Schema.Number,
  pruned_work_items: Schema.Number,
  reconciled_sweeps: Schema.Number,
  counter_drift: Schema.Number,
  vacuumed: Schema.Boolean
}) {}
