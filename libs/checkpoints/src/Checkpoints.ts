/**
 * The `Checkpoints` service (SPEC §4): stores, finds and hands out checkpoint bundles.
 *
 * A bundle lives in two files under `<root>/.trail/checkpoints/` ({@link bundlePaths}): `<id>.md`,
 * the header and note a person may edit (edits are respected: what is on disk is what is shown
 * and handed out), and `<id>.artifacts.json` ({@link ArtifactsFile}). Both are written to a temp
 * file and renamed, so a reader never sees half a file.
 *
 * The lifecycle is events (subject `{type:"checkpoint", id}`, see `@trail/domain` events.ts):
 * `checkpoint.saved`, `.armed`, `.disarmed`, `.continued`, `.consumed`, `.deleted`, `.purged`.
 * The `checkpoints` table is their fold ({@link applyCheckpointEvent}), written in the same
 * `Database.transaction` as each event, so {@link CheckpointsShape.rebuildIndex} can rebuild it;
 * the search table is rebuilt from the artifacts files and the log.
 *
 * Continuation: `arm` (`trail continue`) marks one checkpoint for the next Claude Code session
 * started in the root; `take` (its SessionStart hook) hands the header out once and records which
 * session took it. An arming no session took within `armedTtlSecs` (`checkpoint.armed_ttl_secs`,
 * a day) expires: `take` does not hand a stale header to a session started days later, and another
 * `arm` is not refused for it; either records `checkpoint.disarmed` (reason "expired") as it finds
 * it. At most one checkpoint is armed at a time; both are read-check-write
 * transactions, which the store retries whole when another process committed in between, so two
 * racing `arm`s arm once (the other gets CheckpointTaken) and two racing `take`s hand it out once.
 *
 * `--once` checkpoints are consumed (`checkpoint.consumed`) at their first continue, take or show
 * of an artifact, and purged `checkpoint.consumed_retention_days` later (`purge`).
 *
 * Errors: CheckpointNotFound (an unknown, deleted or purged id; `"last"` when none is saved),
 * CheckpointFileError (an artifacts file deleted, unreadable or not trail's; a file not written),
 * CheckpointTaken (`arm`), StoreError.
 */
import * as FileSystem from "@effect/platform/FileSystem"
import type { PlatformError } from "@effect/platform/Error"
import * as SqlClient from "@effect/sql/SqlClient"
import * as SqlSchema from "@effect/sql/SqlSchema"
import {
  Artifact,
  canTransition,
  Checkpoint,
  CheckpointFileError,
  CheckpointId,
  CheckpointMachine,
  CheckpointNotFound,
  type CheckpointState,
  CheckpointTaken,
  DEFAULT_ARMED_TTL_SECS,
  headlineOf,
  type NewEvent,
  type StoreError,
  type TrailEvent
} from "@trail/domain"
import { Archive, Database, Events, Migrations } from "@trail/store"
import { Clock, Context, Effect, Layer, Option, Random, Schema, Stream } from "effect"
import type { Bundle } from "./Bundle.js"
import { bundlePaths } from "./Paths.js"
import { readHeader as headerParts } from "./Header.js"
import { Bit, indexArtifacts, rebuildWorkers, unindexArtifacts } from "./Search.js"

/** `<id>.artifacts.json`: every artifact in full, and what could not be read when it was saved. */
export const ArtifactsFile = Schema.Struct({
  id: CheckpointId,
  /** ms since the epoch. */
  created_at: Schema.Number,
  problems: Schema.Array(Schema.String),
  artifacts: Schema.Array(Artifact)
})
export type ArtifactsFile = typeof ArtifactsFile.Type

/** A row of the `checkpoints` table: the domain's {@link Checkpoint} and when it was armed (ms). */
export const IndexEntry = Schema.Struct({
  ...Checkpoint.fields,
  armed_at: Schema.NullOr(Schema.Number)
})
export type IndexEntry = typeof IndexEntry.Type

/** The row as stored: `once` 0/1, `workers` a JSON array. */
const IndexRow = Schema.Struct({
  ...IndexEntry.fields,
  once: Bit,
  workers: Schema.parseJson(Schema.Array(Schema.String))
})

/** `checkpoint.saved`'s data. */
const SavedData = Schema.Struct({
  created_at: Schema.Number,
  title: Schema.String,
  once: Schema.Boolean,
  session: Schema.NullOr(Schema.String),
  workers: Schema.Array(Schema.String),
  artifacts: Schema.NonNegativeInt
})

const decodeSaved = Schema.decodeUnknownOption(SavedData)
const decodeId = Schema.decodeUnknownOption(CheckpointId)

/** The state after moving `entry` to `to`, or `entry` itself when the machine forbids it. */
const move = (entry: IndexEntry, to: CheckpointState, change: Partial<IndexEntry> = {}): IndexEntry =>
  canTransition(CheckpointMachine, entry.state, to) ? { ...entry, ...change, state: to } : entry

/**
 * One step of the index's fold: the entry of the event's checkpoint after `event` (undefined: no
 * checkpoint). Pure; events of other types or subjects leave it as it is.
 */
export const applyCheckpointEvent = (entry: IndexEntry | undefined, event: TrailEvent): IndexEntry | undefined => {
  if (event.subject.type !== "checkpoint") return entry
  if (event.type === "checkpoint.saved") {
    const id = decodeId(event.subject.id)
    const data = decodeSaved(event.data)
    if (Option.isNone(id) || Option.isNone(data)) return entry
    return {
      id: id.value,
      state: "saved",
      ...data.value,
      consumed_at: null,
      continued_by: null,
      armed_at: null
    }
  }
  if (entry === undefined) return undefined
  switch (event.type) {
    case "checkpoint.armed":
      return { ...entry, armed_at: event.at }
    case "checkpoint.disarmed":
      return { ...entry, armed_at: null }
    case "checkpoint.continued":
      return {
        ...entry,
        armed_at: null,
        continued_by: typeof event.data.session === "string" ? event.data.session : entry.continued_by
      }
    case "checkpoint.consumed":
      return move(entry, "consumed", { consumed_at: event.at })
    case "checkpoint.deleted":
      return move(entry, "deleted", { armed_at: null })
    case "checkpoint.purged":
      return move(entry, "purged", { armed_at: null })
    default:
      return entry
  }
}

export const toCheckpoint = (entry: IndexEntry): Checkpoint => {
  const { armed_at: _, ...fields } = entry
  return new Checkpoint(fields, { disableValidation: true })
}

/** What `save` is given: the composed bundle and where it came from. */
export interface SaveInput {
  readonly bundle: Bundle
  /** `--once`: consumed at its first continue (or show of an artifact). */
  readonly once: boolean
  /** The Claude Code session whose transcript it holds, if any. */
  readonly session: string | null
  readonly workers: ReadonlyArray<string>
  /** The listing's title: the note's first line. Default: the header's first heading. */
  readonly title?: string
}

/** A checkpoint and its header as handed out: the `.md` file as on disk (see {@link headerText}). */
export interface Header {
  readonly checkpoint: Checkpoint
  readonly header: string
}

/** A checkpoint deleted from the index, and its files that could not be removed (`<file>: <why>`). */
export interface Removed {
  readonly checkpoint: Checkpoint
  readonly unremoved: ReadonlyArray<string>
}

export interface CheckpointsShape {
  /**
   * A fresh id `cp-<yyyymmdd>-<hhmmss>-<4 hex>` (UTC, from `Clock`; the suffix from `Random`),
   * reserved by creating its `.md` file exclusively, so two processes never get the same one.
   */
  readonly newId: Effect.Effect<CheckpointId, CheckpointFileError>
  /**
   * Gives back an id from `newId` that will not be saved (an `$EDITOR` that failed): removes its
   * reservation. An id that was saved is left alone.
   */
  readonly release: (id: CheckpointId) => Effect.Effect<void, StoreError>
  /**
   * Writes the bundle's two files, indexes it and its artifacts and appends `checkpoint.saved`
   * (one transaction). A bundle whose id is indexed already is a defect (ids come from `newId`).
   */
  readonly save: (input: SaveInput) => Effect.Effect<Checkpoint, CheckpointFileError | StoreError>
  /** The checkpoint an ID argument names: an id, or `"last"` (the newest saved, not consumed). */
  readonly get: (ref: string) => Effect.Effect<Checkpoint, CheckpointNotFound | StoreError>
  /** The header as on disk (a hand-edited file is respected). */
  readonly show: (ref: string) => Effect.Effect<Header, CheckpointNotFound | StoreError>
  /** Artifact `n` (from 1) in full; consumes a `--once` checkpoint. */
  readonly artifact: (
    ref: string,
    n: number
  ) => Effect.Effect<Artifact, CheckpointNotFound | CheckpointFileError | StoreError>
  /** Every artifact in full (`show --full`); consumes a `--once` checkpoint. */
  readonly artifacts: (
    ref: string
  ) => Effect.Effect<ArtifactsFile, CheckpointNotFound | CheckpointFileError | StoreError>
  /** Saved checkpoints, newest first; with `includeConsumed`, consumed ones too. */
  readonly list: (options?: {
    readonly includeConsumed?: boolean
  }) => Effect.Effect<ReadonlyArray<Checkpoint>, StoreError>
  /**
   * Removes the index entry (`checkpoint.deleted`; a consumed one is `checkpoint.purged` now rather
   * than after its retention), then the files. A file that cannot be removed after that commit is
   * in `unremoved` (`<file>: <why>`), for the caller to report; the index and the log stay as
   * committed.
   */
  readonly delete: (ref: string) => Effect.Effect<Removed, CheckpointNotFound | StoreError>
  /**
   * `trail continue`: arms the checkpoint for the next Claude Code session started in the root and
   * returns its header; consumes a `--once` one. Fails with CheckpointTaken when one (this or
   * another) is armed already and its arming has not expired, or the checkpoint was consumed.
   */
  readonly arm: (ref: string) => Effect.Effect<Header, CheckpointNotFound | CheckpointTaken | StoreError>
  /** Undoes `arm`; the id that was armed, if any. */
  readonly disarm: Effect.Effect<Option.Option<CheckpointId>, StoreError>
  /**
   * The SessionStart hook of `session`: the armed checkpoint's header, once (`checkpoint.continued`,
   * and `checkpoint.consumed` for `--once`); none when nothing is armed, or its arming expired.
   * Never fails for a file.
   */
  readonly take: (session: string) => Effect.Effect<Option.Option<Header>, StoreError>
  /** Consumes a checkpoint (idempotent). */
  readonly consume: (ref: string) => Effect.Effect<Checkpoint, CheckpointNotFound | StoreError>
  /**
   * Purges the checkpoints consumed at least `retentionDays` days before `now` (ms; default the
   * `Clock`): `checkpoint.purged`, then their files removed. Returns their ids, and the files that
   * could not be removed after the commit (`<file>: <why>`, as for `delete`).
   */
  readonly purge: (options: {
    readonly retentionDays: number
    readonly now?: number
  }) => Effect.Effect<
    { readonly purged: ReadonlyArray<CheckpointId>; readonly unremoved: ReadonlyArray<string> },
    StoreError
  >
  /**
   * Rebuilds the `checkpoints` table from the `checkpoint.*` events, and the search table: the
   * checkpoints' artifacts from their artifacts files, the workers' from the event log
   * (`Search.rebuildWorkers`), in one transaction. `artifacts`: checkpoint artifacts indexed;
   * `workers`: workers' artifacts indexed; `missing`: live checkpoints whose artifacts file is gone.
   */
  readonly rebuildIndex: Effect.Effect<
    {
      readonly checkpoints: number
      readonly artifacts: number
      readonly workers: number
      readonly missing: ReadonlyArray<CheckpointId>
    },
    StoreError
  >
}

export class Checkpoints extends Context.Tag("@trail/checkpoints/Checkpoints")<Checkpoints, CheckpointsShape>() {}

/** What the service needs to know about the root it serves. */
export interface CheckpointsSettings {
  /** Absolute path of the root. */
  readonly root: string
  /**
   * `checkpoint.armed_ttl_secs`: seconds an armed checkpoint waits for a session (default
   * {@link DEFAULT_ARMED_TTL_SECS}; 0: no limit).
   */
  readonly armedTtlSecs?: number
}

const pad = (n: number, width = 2) => String(n).padStart(width, "0")

/** `cp-<yyyymmdd>-<hhmmss>-<suffix>` for `at` (ms, UTC); `suffix` in 0..0xffff. */
export const formatId = (at: number, suffix: number): CheckpointId => {
  const d = new Date(at)
  const date = `${d.getUTCFullYear()}${pad(d.getUTCMonth() + 1)}${pad(d.getUTCDate())}`
  const time = `${pad(d.getUTCHours())}${pad(d.getUTCMinutes())}${pad(d.getUTCSeconds())}`
  return CheckpointId.make(`cp-${date}-${time}-${suffix.toString(16).padStart(4, "0")}`)
}

/**
 * The listing's title of a header: its title as the composer wrote it (`# Checkpoint <id>: <title>`,
 * read by {@link headerParts}), else its first line, else the id.
 */
export const titleOf = (header: string, id: CheckpointId): string => {
  const first = headerParts(header).title ?? header.split("\n").find((line) => line.trim() !== "")
  return first === undefined || first.trim() === "" ? id : headlineOf(first)
}

/**
 * The header handed out: the `.md` file as a person left it. When it no longer names the checkpoint
 * (its header was cut away, leaving the note) a first line naming it and how to pull its artifacts
 * is added, so a fresh agent still knows what it reads; a deleted file leaves that line and the title.
 */
export const headerText = (checkpoint: Checkpoint, file: string | null): string => {
  const preamble =
    `# Checkpoint ${checkpoint.id}: ${checkpoint.title}\n\n` +
    `Saved ${new Date(checkpoint.created_at).toISOString()} with ${checkpoint.artifacts} artifact(s); ` +
    `\`trail checkpoint show ${checkpoint.id} --artifact N\` prints one in full.\n`
  if (file === null) return `${preamble}\n(The checkpoint's .md file was deleted.)\n`
  return file.includes(checkpoint.id) ? file : `${preamble}\n${file}`
}

const isId = Schema.is(CheckpointId)

/** Builds the service for `settings.root` (needs SqlClient, Database, FileSystem). */
export const make = (settings: CheckpointsSettings) =>
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const database = yield* Database.Database
    const fs = yield* FileSystem.FileSystem
    const pathsOf = (id: CheckpointId) => bundlePaths(settings.root, id)
    /** One store transaction; the event log and the search index speak this client. */
    const transaction = <A, E>(effect: Effect.Effect<A, E, SqlClient.SqlClient>) =>
      database.transaction(Effect.provideService(effect, SqlClient.SqlClient, sql))

    const entryById = SqlSchema.findOne({
      Request: CheckpointId,
      Result: IndexRow,
      execute: (id) => sql`SELECT * FROM checkpoints WHERE id = ${id}`
    })
    const newestSaved = SqlSchema.findOne({
      Request: Schema.Void,
      Result: IndexRow,
      execute: () => sql`SELECT * FROM checkpoints WHERE state = 'saved' ORDER BY created_at DESC, id DESC LIMIT 1`
    })
    const armedEntry = SqlSchema.findOne({
      Request: Schema.Void,
      Result: IndexRow,
      execute: () => sql`SELECT * FROM checkpoints WHERE armed_at IS NOT NULL`
    })
    const listed = SqlSchema.findAll({
      Request: Schema.Boolean,
      Result: IndexRow,
      execute: (includeConsumed) =>
        sql`SELECT * FROM checkpoints WHERE state IN ${sql.in(includeConsumed ? ["saved", "consumed"] : ["saved"])}
          ORDER BY created_at DESC, id DESC`
    })
    const consumedBefore = SqlSchema.findAll({
      Request: Schema.Number,
      Result: IndexRow,
      execute: (cutoff) =>
        sql`SELECT * FROM checkpoints WHERE state = 'consumed' AND consumed_at <= ${cutoff} ORDER BY consumed_at, id`
    })
    const liveEntries = SqlSchema.findAll({
      Request: Schema.Void,
      Result: IndexRow,
      execute: () => sql`SELECT * FROM checkpoints WHERE state IN ('saved', 'consumed') ORDER BY created_at, id`
    })
    const upsert = SqlSchema.void({
      Request: IndexRow,
      execute: (row) =>
        sql`INSERT INTO checkpoints ${sql.insert(row)} ON CONFLICT (id) DO UPDATE SET ${sql.update(row, ["id"])}`
    })

    /** Appends `type` about `entry` and writes the fold's result (in the caller's transaction). */
    const record = (entry: IndexEntry | undefined, id: CheckpointId, type: string, data: NewEvent["data"] = {}) =>
      Effect.gen(function* () {
        const at = yield* Clock.currentTimeMillis
        const event = yield* Events.appendSql({ at, type, subject: { type: "checkpoint", id }, data })
        const next = applyCheckpointEvent(entry, event)
        if (next !== undefined) yield* upsert(next)
        return next ?? entry
      })

    const fileError = (id: CheckpointId, file: string, writing: boolean) => (error: PlatformError) =>
      new CheckpointFileError({
        id,
        file,
        problem:
          error._tag === "SystemError" && error.reason === "NotFound" && !writing
            ? "missing"
            : writing
              ? "unwritable"
              : "unreadable",
        detail: error.message
      })

    /** Writes `text` to `file` through a temp file and a rename. */
    const writeAtomically = (id: CheckpointId, file: string, text: string) =>
      Effect.gen(function* () {
        const suffix = yield* Random.nextIntBetween(0, 0x1000000)
        const temp = `${file}.${suffix.toString(16)}.tmp`
        yield* fs.writeFileString(temp, text).pipe(
          Effect.zipRight(fs.rename(temp, file)),
          Effect.tapError(() => fs.remove(temp).pipe(Effect.ignore))
        )
      }).pipe(Effect.mapError(fileError(id, file, true)))

    const readHeader = (id: CheckpointId): Effect.Effect<string | null> =>
      fs.readFileString(pathsOf(id).header).pipe(Effect.orElseSucceed(() => null))

    /** Removes both files of `id`; the ones that are still there, as `<file>: <why>` (one already gone is fine). */
    const removeFiles = (id: CheckpointId): Effect.Effect<ReadonlyArray<string>> => {
      const paths = pathsOf(id)
      return Effect.map(
        Effect.forEach([paths.header, paths.artifacts], (file) =>
          fs.remove(file).pipe(
            Effect.as<ReadonlyArray<string>>([]),
            Effect.catchAll((error) =>
              Effect.succeed(
                error._tag === "SystemError" && error.reason === "NotFound" ? [] : [`${file}: ${error.message}`]
              )
            )
          )
        ),
        (problems) => problems.flat()
      )
    }

    const readArtifacts = (id: CheckpointId): Effect.Effect<ArtifactsFile, CheckpointFileError> => {
      const file = pathsOf(id).artifacts
      return fs.readFileString(file).pipe(
        Effect.mapError(fileError(id, file, false)),
        Effect.flatMap((text) =>
          Schema.decodeUnknown(Schema.parseJson(ArtifactsFile))(text).pipe(
            Effect.mapError(
              (error) => new CheckpointFileError({ id, file, problem: "malformed", detail: error.message })
            )
          )
        )
      )
    }

    const notFound = (ref: string) => new CheckpointNotFound({ id: ref })

    /** The entry a ref names, if it is live (saved or consumed). */
    const resolve = (ref: string): Effect.Effect<IndexEntry, CheckpointNotFound | StoreError> =>
      Effect.gen(function* () {
        const found = ref === "last" ? yield* newestSaved(undefined) : isId(ref) ? yield* entryById(ref) : Option.none()
        if (Option.isNone(found) || (found.value.state !== "saved" && found.value.state !== "consumed"))
          return yield* notFound(ref)
        return found.value
      }).pipe(Database.orStoreError)

    const headerOf = (entry: IndexEntry): Effect.Effect<Header> => {
      const checkpoint = toCheckpoint(entry)
      return Effect.map(readHeader(entry.id), (file) => ({ checkpoint, header: headerText(checkpoint, file) }))
    }

    /** Consumes `entry` when it is a `--once` checkpoint not consumed yet (in its own transaction). */
    const consumeOnce = (entry: IndexEntry) =>
      entry.once && entry.state === "saved"
        ? transaction(
            Effect.gen(function* () {
              const current = yield* entryById(entry.id)
              if (Option.isNone(current) || current.value.state !== "saved") return
              yield* record(current.value, entry.id, "checkpoint.consumed")
            })
          )
        : Effect.void

    const newId = Effect.gen(function* () {
      const at = yield* Clock.currentTimeMillis
      const dir = bundlePaths(settings.root, formatId(at, 0)).dir
      yield* fs.makeDirectory(dir, { recursive: true }).pipe(Effect.mapError(fileError(formatId(at, 0), dir, true)))
      for (;;) {
        const id = formatId(at, yield* Random.nextIntBetween(0, 0x10000))
        const file = pathsOf(id).header
        const reserved = yield* fs.writeFileString(file, "", { flag: "wx" }).pipe(
          Effect.as(true),
          Effect.catchIf(
            (error) => error._tag === "SystemError" && error.reason === "AlreadyExists",
            () => Effect.succeed(false)
          ),
          Effect.mapError(fileError(id, file, true))
        )
        if (reserved) return id
      }
    })

    const release = (id: CheckpointId) =>
      Effect.flatMap(entryById(id).pipe(Database.orStoreError), (entry) =>
        Option.isSome(entry) ? Effect.void : removeFiles(id)
      )

    const save = (input: SaveInput) =>
      Effect.gen(function* () {
        const { bundle } = input
        const id = bundle.id
        if (Option.isSome(yield* entryById(id).pipe(Database.orStoreError)))
          return yield* Effect.dieMessage(`checkpoint ${id} is saved already; Checkpoints.newId gives a fresh id`)
        const paths = pathsOf(id)
        yield* fs.makeDirectory(paths.dir, { recursive: true }).pipe(Effect.mapError(fileError(id, paths.dir, true)))
        const file: ArtifactsFile = {
          id,
          created_at: bundle.createdAt,
          problems: bundle.problems,
          artifacts: bundle.artifacts
        }
        const json = JSON.stringify(yield* Schema.encode(ArtifactsFile)(file).pipe(Effect.orDie), null, 2)
        const title = headlineOf(input.title ?? "") || titleOf(bundle.header, id)
        // Both files and the index row, or nothing: a failure at any step removes what was written.
        const entry = yield* Effect.gen(function* () {
          yield* writeAtomically(id, paths.artifacts, `${json}\n`)
          yield* writeAtomically(id, paths.header, bundle.header)
          return yield* transaction(
            Effect.gen(function* () {
              yield* indexArtifacts(id, bundle.createdAt, bundle.artifacts)
              return yield* record(undefined, id, "checkpoint.saved", {
                created_at: bundle.createdAt,
                title,
                once: input.once,
                session: input.session,
                workers: [...input.workers],
                artifacts: bundle.artifacts.length
              })
            })
          )
        }).pipe(Effect.tapError(() => removeFiles(id)))
        if (entry === undefined) return yield* Effect.dieMessage(`checkpoint.saved of ${id} did not fold`)
        return toCheckpoint(entry)
      })

    const artifacts = (ref: string) =>
      Effect.gen(function* () {
        const entry = yield* resolve(ref)
        const file = yield* readArtifacts(entry.id)
        yield* consumeOnce(entry)
        return file
      })

    const artifact = (ref: string, n: number) =>
      Effect.gen(function* () {
        const entry = yield* resolve(ref)
        const file = yield* readArtifacts(entry.id)
        const found = Number.isInteger(n) && n >= 1 ? file.artifacts[n - 1] : undefined
        if (found === undefined)
          return yield* new CheckpointNotFound({ id: entry.id, artifact: n, artifacts: file.artifacts.length })
        yield* consumeOnce(entry)
        return found
      })

    const list = (options: { readonly includeConsumed?: boolean } = {}) =>
      listed(options.includeConsumed ?? false).pipe(
        Effect.map((rows) => rows.map(toCheckpoint)),
        Database.orStoreError
      )

    /**
     * Applies `change` to the checkpoint `ref` names as it is inside one transaction (another
     * process may have moved it since `resolve` read it); gone → CheckpointNotFound naming `ref`.
     * Returns the entry after the change (as it was when `change` wrote nothing).
     */
    const changing = <E>(
      ref: string,
      change: (current: IndexEntry) => Effect.Effect<IndexEntry | undefined, E, SqlClient.SqlClient>
    ) =>
      Effect.flatMap(resolve(ref), ({ id }) =>
        transaction(
          Effect.gen(function* () {
            const current = yield* entryById(id)
            if (Option.isNone(current)) return yield* notFound(ref)
            return (yield* change(current.value)) ?? current.value
          })
        )
      )

    const remove = (ref: string) =>
      Effect.gen(function* () {
        const entry = yield* changing(ref, (current) =>
          Effect.gen(function* () {
            if (current.state !== "saved" && current.state !== "consumed") return yield* notFound(ref)
            yield* unindexArtifacts(current.id)
            const type = current.state === "consumed" ? "checkpoint.purged" : "checkpoint.deleted"
            return yield* record(current, current.id, type)
          })
        )
        // Committed: the index and the log say it is gone whatever the files do; a file left is named.
        const unremoved = yield* removeFiles(entry.id)
        return { checkpoint: toCheckpoint(entry), unremoved }
      })

    const arm = (ref: string) =>
      Effect.flatMap(
        changing(ref, (current) =>
          Effect.gen(function* () {
            const id = current.id
            if (current.state === "consumed") return yield* new CheckpointTaken({ id, reason: "consumed", armed: null })
            if (current.state !== "saved") return yield* notFound(ref)
            const armed = yield* freshArmed
            if (Option.isSome(armed)) return yield* new CheckpointTaken({ id, reason: "armed", armed: armed.value.id })
            // `current` as it is now: an expired arming of this very checkpoint was just undone.
            const now = Option.getOrElse(yield* entryById(id), () => current)
            const next = yield* record(now, id, "checkpoint.armed")
            return next?.once === true ? yield* record(next, id, "checkpoint.consumed") : next
          })
        ),
        headerOf
      )

    const ttlMs = (settings.armedTtlSecs ?? DEFAULT_ARMED_TTL_SECS) * 1000
    /**
     * The armed entry, if its arming is still fresh; a stale one is disarmed here (`checkpoint.disarmed`,
     * reason "expired"), in the caller's transaction.
     */
    const freshArmed = Effect.gen(function* () {
      const armed = yield* armedEntry(undefined)
      if (Option.isNone(armed) || armed.value.armed_at === null || ttlMs === 0) return armed
      const now = yield* Clock.currentTimeMillis
      if (now - armed.value.armed_at < ttlMs) return armed
      yield* record(armed.value, armed.value.id, "checkpoint.disarmed", { reason: "expired" })
      return Option.none<IndexEntry>()
    })

    const disarm = transaction(
      Effect.gen(function* () {
        const armed = yield* armedEntry(undefined)
        if (Option.isNone(armed)) return Option.none<CheckpointId>()
        yield* record(armed.value, armed.value.id, "checkpoint.disarmed")
        return Option.some(armed.value.id)
      })
    )

    const take = (session: string) =>
      Effect.gen(function* () {
        const taken = yield* transaction(
          Effect.gen(function* () {
            const armed = yield* freshArmed
            if (Option.isNone(armed)) return undefined
            const id = armed.value.id
            const next = yield* record(armed.value, id, "checkpoint.continued", { session })
            return next?.once === true && next.state === "saved" ? yield* record(next, id, "checkpoint.consumed") : next
          })
        )
        return taken === undefined ? Option.none<Header>() : Option.some(yield* headerOf(taken))
      })

    const consume = (ref: string) =>
      Effect.map(
        changing(ref, (current) =>
          current.state === "saved" ? record(current, current.id, "checkpoint.consumed") : Effect.succeed(current)
        ),
        toCheckpoint
      )

    const purge = (options: { readonly retentionDays: number; readonly now?: number }) =>
      Effect.gen(function* () {
        const now = options.now ?? (yield* Clock.currentTimeMillis)
        const cutoff = now - options.retentionDays * 86_400_000
        const purged = yield* transaction(
          Effect.gen(function* () {
            const due = yield* consumedBefore(cutoff)
            for (const entry of due) {
              yield* unindexArtifacts(entry.id)
              yield* record(entry, entry.id, "checkpoint.purged")
            }
            return due.map((entry) => entry.id)
          })
        )
        const unremoved = yield* Effect.forEach(purged, removeFiles)
        return { purged, unremoved: unremoved.flat() }
      })

    const rebuildIndex = transaction(
      Effect.gen(function* () {
        const entries = new Map<string, IndexEntry>()
        const fold = (event: TrailEvent) => {
          if (event.subject.type !== "checkpoint") return
          const next = applyCheckpointEvent(entries.get(event.subject.id), event)
          if (next !== undefined) entries.set(event.subject.id, next)
        }
        // The deletes come first: a transaction begins deferred, and only its first write takes the
        // lock under which gc deletes archived rows, so that the log cannot move while it is read.
        yield* sql`DELETE FROM checkpoints`
        yield* sql`DELETE FROM artifacts_fts`
        // The log is the archive's events below the table's oldest id, then the table's.
        yield* Stream.runForEach(
          Archive.eventsWith(Archive.sqlClient)(`${settings.root.replace(/\/+$/, "")}/.trail/${Archive.DIR}`),
          (batch) =>
            Effect.sync(() => {
              for (const event of batch) fold(event)
            })
        ).pipe(Effect.provideService(SqlClient.SqlClient, sql))
        for (const entry of entries.values()) yield* upsert(entry)
        let artifacts = 0
        const missing: Array<CheckpointId> = []
        for (const entry of yield* liveEntries(undefined)) {
          const file = yield* Effect.either(readArtifacts(entry.id))
          if (file._tag === "Left") {
            missing.push(entry.id)
            continue
          }
          yield* indexArtifacts(entry.id, entry.created_at, file.right.artifacts)
          artifacts += file.right.artifacts.length
        }
        const workers = yield* rebuildWorkers.pipe(
          Effect.provideService(SqlClient.SqlClient, sql),
          Effect.provideService(Database.Database, database)
        )
        return { checkpoints: entries.size, artifacts, workers, missing }
      })
    )

    return Checkpoints.of({
      newId,
      release,
      save,
      get: (ref) => Effect.map(resolve(ref), toCheckpoint),
      show: (ref) => Effect.flatMap(resolve(ref), headerOf),
      artifact,
      artifacts,
      list,
      delete: remove,
      arm,
      disarm,
      take,
      consume,
      purge,
      rebuildIndex
    })
  })

/** The live service over the store (migrated first) and the file system. */
export const layer = (
  settings: CheckpointsSettings
): Layer.Layer<Checkpoints, StoreError, SqlClient.SqlClient | Database.Database | FileSystem.FileSystem> =>
  Layer.effect(Checkpoints, Effect.zipRight(Migrations.migrate, make(settings)))
