/**
 * The event log's shape (SPEC "Storage": the append-only `events` table is authoritative).
 * An event is an immutable fact about a subject; `data` is a JSON object whose fields depend on
 * `type`. Worker event types (all with subject `{type:"worker", id}`):
 *
 * | type | data |
 * |---|---|
 * | `worker.spawned` | `kind, text, task, path, parent, depth, substrate, respawn_of` |
 * | `worker.running` `worker.needs_input` `worker.ready` `worker.failed` `worker.lost` `worker.cancelled` | `from` (previous state) plus: needs_input `question`; ready `result` ({@link WorkerResult}); failed/lost/cancelled `reason` |
 * | `worker.todos` | `todos` (string array) |
 * | `worker.note` | `text` |
 * | `worker.told` | `text` (what the human typed) |
 * | `worker.exited` | `status` (exit status of its program, null when unknown) |
 * | `worker.promoted` `worker.discarded` | `files, insertions, deletions` |
 *
 * Supervisor events (subject `{type:"supervisor", id: pid@host}`): `supervisor.started`,
 * `supervisor.stopped`.
 *
 * Checkpoint events (subject `{type:"checkpoint", id: CheckpointId}`, SPEC §4; the `checkpoints`
 * index is their fold):
 *
 * | type | data |
 * |---|---|
 * | `checkpoint.saved` | `created_at` (ms), `title, once, session, workers` (string array), `artifacts` (count) |
 * | `checkpoint.armed` `checkpoint.disarmed` | — (`trail continue` armed it for the next SessionStart; undone); disarmed `reason` "expired" when no session took it within `checkpoint.armed_ttl_secs` |
 * | `checkpoint.continued` | `session` (the Claude Code session whose SessionStart took it) |
 * | `checkpoint.consumed` `checkpoint.deleted` `checkpoint.purged` | — |
 */
import { Context, type Effect, Schema, type Queue, type Scope } from "effect"
import type { StoreError } from "./errors.js"
import type { WorkerState } from "./workers.js"

export const SubjectType = Schema.Literal("worker", "session", "supervisor", "checkpoint")
export type SubjectType = typeof SubjectType.Type

export const Subject = Schema.Struct({ type: SubjectType, id: Schema.String })
export type Subject = typeof Subject.Type

export class TrailEvent extends Schema.Class<TrailEvent>("TrailEvent")({
  /** Increasing; `trail events --since ID` prints the events after it. */
  id: Schema.Int,
  /** ms since epoch. */
  at: Schema.Number,
  type: Schema.String,
  subject: Subject,
  data: Schema.Record({ key: Schema.String, value: Schema.Unknown })
}) {}

/** An event before it is appended (the log assigns `id`). */
export interface NewEvent {
  readonly at: number
  readonly type: string
  readonly subject: Subject
  readonly data: Readonly<Record<string, unknown>>
}

/** The event type a worker transition into `state` appends. */
export const workerStateEvent = (state: WorkerState): string => `worker.${state}`

/**
 * The event log as a stream: every event appended to the store, by this process or another,
 * published once, in id order. Live layer: the supervisor app (a tail of the `events` table woken
 * by file-system notifications on the database, published on a `PubSub`).
 */
export interface EventLogShape {
  /** Events with id > `after`, oldest first (at most `limit`). */
  readonly since: (after: number, limit?: number) => Effect.Effect<ReadonlyArray<TrailEvent>, StoreError>
  /** A subscription receiving every event appended after it was taken. */
  readonly subscribe: Effect.Effect<Queue.Dequeue<TrailEvent>, never, Scope.Scope>
  /** Reads the store now for appends not yet published (call after a local append to skip the watch delay). */
  readonly poke: Effect.Effect<void>
}

export class EventLog extends Context.Tag("@trail/domain/EventLog")<EventLog, EventLogShape>() {}
