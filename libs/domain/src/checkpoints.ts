/**
 * Checkpoints (SPEC §4): a frozen bundle of typed artifacts, an orientation header composed from
 * them, and the human's note. These are the shapes every part shares: the extractors produce
 * {@link ArtifactDraft}s, the bundle numbers them into {@link Artifact}s (`<checkpoint>@<n>`), the
 * store indexes {@link Checkpoint} records, and the lifecycle follows {@link CheckpointMachine}.
 * Times are ms since the epoch.
 */
import { Schema } from "effect"
import type { StateMachine } from "./stateMachine.js"

/** `cp-<yyyymmdd>-<hhmmss>-<4 hex>`: sortable by creation, unique across processes. */
export const CheckpointId = Schema.String.pipe(
  Schema.pattern(/^cp-\d{8}-\d{6}-[0-9a-f]{4}$/, {
    message: () => "a checkpoint id looks like cp-20261122-031500-3f2a"
  }),
  Schema.brand("CheckpointId")
)
export type CheckpointId = typeof CheckpointId.Type

/** `<checkpoint>@<n>`, n from 1 in bundle order. */
export const ArtifactId = Schema.String.pipe(
  Schema.pattern(/^cp-\d{8}-\d{6}-[0-9a-f]{4}@[1-9]\d*$/),
  Schema.brand("ArtifactId")
)
export type ArtifactId = typeof ArtifactId.Type

/**
 * `<worker>@result`, `<worker>@change_set`, `<worker>@failure`: a worker's artifact as search
 * indexes it from the event log, outside any checkpoint (one of each kind per worker at most).
 */
export const WorkerArtifactId = Schema.String.pipe(
  Schema.pattern(/^w[1-9]\d*@(?:result|change_set|failure)$/),
  Schema.brand("WorkerArtifactId")
)
export type WorkerArtifactId = typeof WorkerArtifactId.Type

/** Where an artifact was read from. `id` is the session id, worker id, or null (store, git). */
export const ArtifactSource = Schema.Struct({
  type: Schema.Literal("session", "worker", "store", "git"),
  id: Schema.NullOr(Schema.String)
})
export type ArtifactSource = typeof ArtifactSource.Type

const common = {
  source: ArtifactSource,
  /** When it happened, if known (ms). */
  at: Schema.NullOr(Schema.Number)
}

/**
 * A file changed by Edit/Write/MultiEdit/NotebookEdit: one per file, lines summed over its calls
 * (from the applied patch when the result has one, else from the tool's input); `tool` lists the
 * tools used, comma-separated (`Write,Edit`).
 */
export const EditArtifact = Schema.TaggedStruct("edit", {
  ...common,
  file: Schema.String,
  tool: Schema.String,
  added: Schema.NonNegativeInt,
  removed: Schema.NonNegativeInt
})

/** A Bash call: its command, how it ended, and the first and last lines of its output. */
export const CommandArtifact = Schema.TaggedStruct("command", {
  ...common,
  command: Schema.String,
  /** The exit status when the output names one, else null. */
  exit_code: Schema.NullOr(Schema.Int),
  failed: Schema.Boolean,
  head: Schema.Array(Schema.String),
  tail: Schema.Array(Schema.String),
  /** Total output lines (head and tail are capped). */
  lines: Schema.NonNegativeInt
})

/** A tool result marked as an error (other than a failed command, which is a `command`). */
export const ErrorArtifact = Schema.TaggedStruct("error", {
  ...common,
  tool: Schema.String,
  message: Schema.String
})

/** The assistant's final text of a turn. */
export const AnswerArtifact = Schema.TaggedStruct("answer", {
  ...common,
  text: Schema.String
})

/** A worker's `done` report. */
export const ResultArtifact = Schema.TaggedStruct("result", {
  ...common,
  worker: Schema.String,
  outcome: Schema.String,
  summary: Schema.String,
  evidence: Schema.Array(Schema.String),
  recommend: Schema.Array(Schema.String),
  found: Schema.NullOr(Schema.NonNegativeInt)
})

/** A worker's proposed change set. */
export const ChangeSetArtifact = Schema.TaggedStruct("change_set", {
  ...common,
  worker: Schema.String,
  files: Schema.NonNegativeInt,
  insertions: Schema.NonNegativeInt,
  deletions: Schema.NonNegativeInt,
  /** The changed paths, relative to the repository (the change set's `paths`). */
  diffstat: Schema.Array(Schema.String)
})

/** A worker that failed or was lost: why, and the last lines it printed. */
export const FailureArtifact = Schema.TaggedStruct("failure", {
  ...common,
  worker: Schema.String,
  reason: Schema.String,
  last_lines: Schema.Array(Schema.String)
})

/** An open review item of the inbox when the checkpoint was taken. */
export const ReviewItemArtifact = Schema.TaggedStruct("review_item", {
  ...common,
  item: Schema.String,
  kind: Schema.String,
  headline: Schema.String
})

/** The coverage state of an active sweep. */
export const CoverageArtifact = Schema.TaggedStruct("coverage", {
  ...common,
  task: Schema.String,
  sweep: Schema.Int,
  done: Schema.NonNegativeInt,
  skipped: Schema.NonNegativeInt,
  leased: Schema.NonNegativeInt,
  pending: Schema.NonNegativeInt,
  total: Schema.NonNegativeInt
})

/** The repository's state: branch (null when detached), HEAD, dirty and untracked files. */
export const GitArtifact = Schema.TaggedStruct("git", {
  ...common,
  branch: Schema.NullOr(Schema.String),
  head: Schema.NullOr(Schema.Struct({ sha: Schema.String, subject: Schema.String })),
  dirty: Schema.Array(Schema.String),
  untracked: Schema.Array(Schema.String),
  /** Null when the branch has no upstream. */
  ahead: Schema.NullOr(Schema.NonNegativeInt),
  behind: Schema.NullOr(Schema.NonNegativeInt)
})

/** What an extractor produces: an artifact before the bundle numbers it. */
export const ArtifactDraft = Schema.Union(
  EditArtifact,
  CommandArtifact,
  ErrorArtifact,
  AnswerArtifact,
  ResultArtifact,
  ChangeSetArtifact,
  FailureArtifact,
  ReviewItemArtifact,
  CoverageArtifact,
  GitArtifact
)
export type ArtifactDraft = typeof ArtifactDraft.Type

export type ArtifactKind = ArtifactDraft["_tag"]
export const ArtifactKind = Schema.Literal(
  "edit",
  "command",
  "error",
  "answer",
  "result",
  "change_set",
  "failure",
  "review_item",
  "coverage",
  "git"
)

/** An artifact in a bundle: its id, its one-line title, and the draft's fields under `fact`. */
export const Artifact = Schema.Struct({
  id: ArtifactId,
  /** One line, for the header and listings. */
  title: Schema.String,
  fact: ArtifactDraft
})
export type Artifact = typeof Artifact.Type

/** Checkpoint lifecycle: `saved → consumed → purged`, `saved → deleted` (ARCHITECTURE.md). */
export const CheckpointState = Schema.Literal("saved", "consumed", "deleted", "purged")
export type CheckpointState = typeof CheckpointState.Type

export const CheckpointMachine: StateMachine<CheckpointState> = {
  name: "checkpoint",
  transitions: {
    saved: ["consumed", "deleted"],
    consumed: ["purged"],
    deleted: [],
    purged: []
  }
}

/** A checkpoint as the index (the `checkpoints` table, rebuildable from its events) lists it. */
export class Checkpoint extends Schema.Class<Checkpoint>("Checkpoint")({
  id: CheckpointId,
  state: CheckpointState,
  created_at: Schema.Number,
  /** The note's first line, or the header's title when there is no note. */
  title: Schema.String,
  /** `--once`: soft-consumed at its first continue (or show of an artifact). */
  once: Schema.Boolean,
  session: Schema.NullOr(Schema.String),
  workers: Schema.Array(Schema.String),
  artifacts: Schema.NonNegativeInt,
  consumed_at: Schema.NullOr(Schema.Number),
  /** Which Claude Code session took it through SessionStart, if one did. */
  continued_by: Schema.NullOr(Schema.String)
}) {}
