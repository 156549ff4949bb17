/**
 * The worker fleet's domain (SPEC §2): worker ids and the worker state machine.
 */
import { Schema } from "effect"
import { FolderPath, TaskName } from "./ids.js"
import type { StateMachine } from "./stateMachine.js"

/** A worker that trail started: `w1`, `w2`, … (also the name of its tmux window). */
export const WorkerId = Schema.String.pipe(
  Schema.pattern(/^w[1-9][0-9]*$/, { message: () => "worker id must look like w1, w2, …" }),
  Schema.brand("WorkerId")
)
export type WorkerId = typeof WorkerId.Type

/** `spawning → running ⇄ needs_input → ready | failed | lost | cancelled`. */
export const WorkerState = Schema.Literal("spawning", "running", "needs_input", "ready", "failed", "lost", "cancelled")
export type WorkerState = typeof WorkerState.Type

/**
 * The worker lifecycle. A worker can fail, be lost (lease expired, pane died) or be cancelled
 * from any live state; only a running worker waits for input or finishes ready.
 */
export const WorkerMachine: StateMachine<WorkerState> = {
  name: "worker",
  transitions: {
    spawning: ["running", "failed", "lost", "cancelled"],
    running: ["needs_input", "ready", "failed", "lost", "cancelled"],
    needs_input: ["running", "ready", "failed", "lost", "cancelled"],
    ready: [],
    failed: [],
    lost: [],
    cancelled: []
  }
}

/** The states in which a worker's program should be running. */
export const liveWorkerStates: ReadonlyArray<WorkerState> = ["spawning", "running", "needs_input"]

export const isLiveWorkerState = (state: WorkerState): boolean => liveWorkerStates.includes(state)

/** Where a worker runs: a tmux window, or a plain child process logging to a file. */
export const SubstrateName = Schema.Literal("tmux", "process")
export type SubstrateName = typeof SubstrateName.Type

/** What a worker handed over with `trail worker done`. */
export class WorkerResult extends Schema.Class<WorkerResult>("WorkerResult")({
  outcome: Schema.String,
  summary: Schema.String,
  evidence: Schema.Array(Schema.String),
  recommend: Schema.Array(Schema.String),
  /** Findings in the folder, for the coverage sweep (null: not reported). */
  found: Schema.NullOr(Schema.Int)
}) {}

/** A worker as `trail workers` and `trail worker show` print it. Times are ms since epoch. */
export class Worker extends Schema.Class<Worker>("Worker")({
  id: WorkerId,
  kind: Schema.String,
  state: WorkerState,
  /** The task text it was given. */
  text: Schema.String,
  /** Fleet mode: the coverage task and the folder it was handed. */
  task: Schema.NullOr(TaskName),
  path: Schema.NullOr(FolderPath),
  parent: Schema.NullOr(WorkerId),
  depth: Schema.Int,
  substrate: SubstrateName,
  pid: Schema.NullOr(Schema.Int),
  /** tmux's id of its window (`@12`); null for plain processes. */
  window: Schema.NullOr(Schema.String),
  cwd: Schema.String,
  worktree: Schema.NullOr(Schema.String),
  /** ms; null: no limit. */
  max_duration_ms: Schema.NullOr(Schema.Int),
  /** The supervisor holding its lease, and until when (null: not supervised right now). */
  lease_owner: Schema.NullOr(Schema.String),
  lease_expires_at: Schema.NullOr(Schema.Number),
  created_at: Schema.Number,
  updated_at: Schema.Number,
  finished_at: Schema.NullOr(Schema.Number),
  exit_status: Schema.NullOr(Schema.Int),
  /** The open question while needs_input. */
  question: Schema.NullOr(Schema.String),
  /** Why it failed, was lost or cancelled. */
  reason: Schema.NullOr(Schema.String),
  result: Schema.NullOr(WorkerResult),
  todos: Schema.Array(Schema.String),
  respawn_of: Schema.NullOr(WorkerId)
}) {}
