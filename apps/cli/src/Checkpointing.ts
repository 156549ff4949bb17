/**
 * Taking a checkpoint (SPEC §4): what trail can see of a root gathered into artifact drafts — a
 * Claude Code session's transcript (the session named, else the most recent one the hooks told
 * of), the workers asked for, the open review items, the active sweeps' coverage and git — then
 * composed into a bundle ({@link composeBundle}) and saved ({@link Checkpoints}).
 *
 * Shared by `trail checkpoint` and the `PreCompact` hook. Never fails for what it reads: a
 * session the hooks never told of, a missing transcript, a folder outside git are problems in the
 * header, not errors.
 */
import type * as CommandExecutor from "@effect/platform/CommandExecutor"
import type * as FileSystem from "@effect/platform/FileSystem"
import * as SqlClient from "@effect/sql/SqlClient"
import * as SqlSchema from "@effect/sql/SqlSchema"
import {
  bundleTitle,
  Checkpoints,
  composeBundle,
  coverageArtifacts,
  defaultTranscriptCaps,
  gitArtifact,
  readSession,
  reviewItemArtifacts,
  type TranscriptCaps,
  workerArtifacts
} from "@trail/checkpoints"
import type { ArtifactDraft, CheckpointConfig, CheckpointId, ReviewItem, StoreError, TrailEvent } from "@trail/domain"
import { Database } from "@trail/store"
import { Clock, Effect, Option, Schema } from "effect"

/** A session the hooks told of, and its transcript (the hook payload's `transcript_path`). */
export interface KnownSession {
  readonly session: string
  readonly transcript: string | null
}

const SessionRow = Schema.Struct({ session: Schema.String, transcript: Schema.NullOr(Schema.String) })

/**
 * The session `session` as its newest hook event with a transcript names it (a worker that is a
 * Claude Code session counts, by the `session_id` its events carry); with `null`, the most recent
 * session of the root. None when the hooks never told of it.
 */
export const knownSession = (
  session: string | null
): Effect.Effect<Option.Option<KnownSession>, StoreError, SqlClient.SqlClient> =>
  Effect.flatMap(SqlClient.SqlClient, (sql) =>
    SqlSchema.findOne({
      Request: Schema.Void,
      Result: SessionRow,
      execute: () =>
        session === null
          ? sql`SELECT subject_id AS session, json_extract(data, '$.transcript_path') AS transcript FROM events
              WHERE subject_type = 'session' AND type LIKE 'session.%'
                AND json_extract(data, '$.transcript_path') IS NOT NULL
              ORDER BY id DESC LIMIT 1`
          : sql`SELECT ${session} AS session, json_extract(data, '$.transcript_path') AS transcript FROM events
              WHERE ((subject_type = 'session' AND subject_id = ${session})
                  OR (subject_type = 'worker' AND json_extract(data, '$.session_id') = ${session}))
                AND type LIKE 'session.%'
              ORDER BY (json_extract(data, '$.transcript_path') IS NOT NULL) DESC, id DESC LIMIT 1`
    })(undefined)
  ).pipe(Database.orStoreError)

const SweepRow = Schema.Struct({
  task: Schema.String,
  sweep: Schema.Int,
  done: Schema.NonNegativeInt,
  skipped: Schema.NonNegativeInt,
  leased: Schema.NonNegativeInt,
  total: Schema.NonNegativeInt,
  at: Schema.Number
})

/**
 * The counters of every active sweep, by task name (the store's O(1) counters). Suspended: in the
 * CLI the store is loaded on first access (apps/cli/build.mjs), not when this module is.
 */
export const activeSweeps = Effect.suspend(() =>
  Effect.flatMap(SqlClient.SqlClient, (sql) =>
    SqlSchema.findAll({
      Request: Schema.Void,
      Result: SweepRow,
      execute: () => sql`SELECT t.name AS task, s.number AS sweep, s.done, s.skipped, s.leased, s.total,
        s.opened_at AS at
      FROM sweeps s JOIN tasks t ON t.id = s.task_id WHERE s.status = 'active' ORDER BY t.name`
    })(undefined)
  ).pipe(
    Effect.map((rows) =>
      rows.map((row) => ({ ...row, pending: Math.max(0, row.total - row.done - row.skipped - row.leased) }))
    ),
    Database.orStoreError
  )
)

/** What a checkpoint reads, as `[checkpoint]` caps it. */
export const capsOf = (config: CheckpointConfig): TranscriptCaps => ({
  ...defaultTranscriptCaps,
  maxBytes: config.max_transcript_bytes,
  maxLineBytes: config.max_line_bytes,
  perKind: config.max_artifacts_per_kind,
  outputLines: config.output_lines
})

/** A worker to include: its id, its events, and the last lines it printed. */
export interface WorkerFacts {
  readonly id: string
  readonly events: ReadonlyArray<TrailEvent>
  readonly lastLines: ReadonlyArray<string>
}

export interface Sources {
  /** Absolute path of the root (git runs there). */
  readonly root: string
  readonly config: CheckpointConfig
  /** `--session ID`; null: the most recent session the hooks told of (none: no session read). */
  readonly session: string | null
  readonly workers: ReadonlyArray<WorkerFacts>
  /** The inbox's items (the open ones become artifacts). */
  readonly items: ReadonlyArray<ReviewItem>
}

/** The drafts and problems of everything `sources` names, and the session read (if any). */
export const gather = (
  sources: Sources
): Effect.Effect<
  {
    readonly drafts: ReadonlyArray<ArtifactDraft>
    readonly problems: ReadonlyArray<string>
    readonly session: string | null
  },
  StoreError,
  SqlClient.SqlClient | FileSystem.FileSystem | CommandExecutor.CommandExecutor
> =>
  Effect.gen(function* () {
    const drafts: Array<ArtifactDraft> = []
    const problems: Array<string> = []
    const git = yield* gitArtifact(sources.root)
    if (git.draft !== null) drafts.push(git.draft)
    problems.push(...git.problems)
    const known = yield* knownSession(sources.session)
    let session: string | null = null
    if (Option.isSome(known)) {
      session = known.value.session
      if (known.value.transcript === null)
        problems.push(`session ${session}: its hooks gave no transcript path, nothing read from it`)
      else {
        const read = yield* readSession(known.value.transcript, session, capsOf(sources.config))
        drafts.push(...read.drafts)
        problems.push(...read.problems)
      }
    } else if (sources.session !== null) {
      session = sources.session
      problems.push(`session ${session}: no hook event of it in this root, so no transcript was read`)
    }
    for (const worker of sources.workers) {
      const facts = workerArtifacts(worker.id, worker.events, worker.lastLines)
      if (facts.length === 0) problems.push(`worker ${worker.id}: still running or cancelled, no outcome to record`)
      drafts.push(...facts)
    }
    drafts.push(...reviewItemArtifacts(sources.items.filter((item) => item.kind !== "checkpoint")))
    drafts.push(...coverageArtifacts(yield* activeSweeps))
    return { drafts, problems, session }
  })

/** The bundle of a fresh checkpoint `id` (its `createdAt` from the `Clock`). */
export const bundleOf = (
  id: CheckpointId,
  note: string,
  gathered: { readonly drafts: ReadonlyArray<ArtifactDraft>; readonly problems: ReadonlyArray<string> }
) =>
  Effect.map(Clock.currentTimeMillis, (createdAt) =>
    composeBundle({ id, createdAt, note, drafts: gathered.drafts, problems: gathered.problems })
  )

/**
 * Gathers, composes and saves a checkpoint in one go (the `PreCompact` hook's path: no editor, no
 * summary). Returns the saved checkpoint.
 */
export const takeCheckpoint = (sources: Sources, options: { readonly note: string; readonly once: boolean }) =>
  Effect.gen(function* () {
    const checkpoints = yield* Checkpoints
    const gathered = yield* gather(sources)
    const id = yield* checkpoints.newId
    const bundle = yield* bundleOf(id, options.note, gathered)
    return yield* checkpoints
      .save({
        bundle,
        once: options.once,
        session: gathered.session,
        workers: sources.workers.map((w) => w.id),
        title: bundleTitle(options.note, gathered.drafts)
      })
      .pipe(Effect.tapError(() => checkpoints.release(id)))
  })
