/**
 * Search over artifacts (SPEC §4 `trail search QUERY [--kind K]`): SQLite FTS5 (the
 * `artifacts_fts` table of migration 0008) over each artifact's title and text, as
 * {@link artifactText} writes it (what `trail checkpoint show ID --artifact N` prints).
 *
 * Two sources fill it:
 * - checkpoints: their artifacts are indexed when saved ({@link indexArtifacts}) and removed when
 *   deleted or purged; a hit names the checkpoint and `<checkpoint>@<n>`;
 * - workers, without a checkpoint: a projection of the event log ({@link catchUp}) turns each
 *   worker's ending (`worker.ready`, `.failed`, `.lost`) into its `result`, `change_set` and
 *   `failure` artifacts through the same extractor a checkpoint uses ({@link workerArtifacts});
 *   a hit has `checkpoint` null and names `<worker>@<kind>` (`w3@result`). A worker ends once
 *   (WorkerMachine), so it has at most one of each. A respawn is another worker: the
 *   failure of `w3` and the result of its respawn `w4` are both kept (the dead end stays findable),
 *   and the result resolves the failure. The projection's state (migration 0010: `search_state`, the
 *   last event folded; `search_workers`, each worker's respawn lineage and rows) is rebuildable
 *   from the log ({@link rebuildWorkers}). A failure's `last_lines` are not in the log: a worker's
 *   failure found here holds its reason; a checkpoint of it (`--worker`) holds the last lines too.
 *
 * {@link search} catches the projection up first (O(events since the last search), one
 * transaction), so a search sees every worker that ended before it.
 *
 * Ranking: unresolved artifacts first (a failed command, an error or a worker failure that no
 * later success in its bundle answered, {@link unresolvedOf}; a worker's failure from the log that
 * no result of a respawn of it — `respawn_of`, transitively — answered), then by FTS5's `bm25()`
 * (lower is better; https://www.sqlite.org/fts5.html#the_bm25_function) weighted by recency:
 * `bm25 × (1 + 1 / (1 + age_days))`, so that of two equally good matches the newer comes first.
 *
 * A query is words, never FTS5 syntax: each whitespace-separated word is quoted as an FTS5 string
 * (`"` doubled), so `NEAR(`, `col:x`, `*`, `-x`, an unbalanced quote or a NUL never fail; every
 * word must match. A query with no words finds nothing.
 */
import * as SqlClient from "@effect/sql/SqlClient"
import type { SqlError } from "@effect/sql/SqlError"
import * as SqlSchema from "@effect/sql/SqlSchema"
import {
  type Artifact,
  ArtifactId,
  ArtifactKind,
  type ArtifactDraft,
  CheckpointId,
  type StoreError,
  type TrailEvent,
  WorkerArtifactId
} from "@trail/domain"
import { Archive, Database, Events } from "@trail/store"
import { Clock, Effect, Option, type ParseResult, Schema, Stream } from "effect"
import { artifactText, artifactTitle } from "./Bundle.js"
import { workerArtifacts } from "./Extract.js"

/** SQLite's 0/1 as a boolean. */
export const Bit = Schema.transform(Schema.Literal(0, 1), Schema.Boolean, {
  strict: true,
  decode: (n) => n === 1,
  encode: (b) => (b ? 1 : 0)
})

/**
 * One artifact that matched, best first: a checkpoint's (`checkpoint` and `<checkpoint>@<n>`) or a
 * worker's from the log (`checkpoint` null, `<worker>@<kind>`). `at`: ms; `rank`: the weighted
 * bm25 (lower is better).
 */
export const SearchHit = Schema.Struct({
  checkpoint: Schema.NullOr(CheckpointId),
  artifact: Schema.Union(ArtifactId, WorkerArtifactId),
  kind: ArtifactKind,
  title: Schema.String,
  /** The matching part of the text, matches in `[` `]`. */
  snippet: Schema.String,
  unresolved: Bit,
  at: Schema.Number,
  rank: Schema.Number
})
export type SearchHit = typeof SearchHit.Type

export interface SearchOptions {
  /** Only artifacts of this kind. */
  readonly kind?: ArtifactKind
  /** At most this many hits (default {@link DEFAULT_LIMIT}, at most 1000). */
  readonly limit?: number
}

export const DEFAULT_LIMIT = 20

const DAY_MS = 86_400_000

/** The query as an FTS5 expression of quoted words (implicit AND), or null when it has none. */
export const matchExpression = (query: string): string | null => {
  // FTS5 cuts a query string at a NUL (an unterminated string): control characters separate words.
  const words = query.split(/[\s\u0000-\u001f]+/).filter((word) => word !== "")
  return words.length === 0 ? null : words.map((word) => `"${word.replaceAll('"', '""')}"`).join(" ")
}

/**
 * For each artifact of a bundle (in bundle order, oldest first), whether it is unresolved: a failed
 * command not followed by a success of the same command; an error not followed by a success of the
 * same tool (an edit made with that tool); a worker
 * failure not followed by a result of that worker.
 */
export const unresolvedOf = (facts: ReadonlyArray<ArtifactDraft>): ReadonlyArray<boolean> =>
  facts.map((fact, i) => {
    const later = facts.slice(i + 1)
    switch (fact._tag) {
      case "command":
        return fact.failed && !later.some((l) => l._tag === "command" && !l.failed && l.command === fact.command)
      case "error":
        // An edit lists the tools that made it ("Write,Edit"); a failed Bash call is a command, not an error.
        return !later.some((l) => l._tag === "edit" && l.tool.split(",").includes(fact.tool))
      case "failure":
        return !later.some((l) => l._tag === "result" && l.worker === fact.worker)
      default:
        return false
    }
  })

type SqlEffect<A> = Effect.Effect<A, SqlError | ParseResult.ParseError, SqlClient.SqlClient>

const FtsRow = Schema.Struct({
  checkpoint: Schema.NullOr(CheckpointId),
  artifact: Schema.Union(ArtifactId, WorkerArtifactId),
  kind: ArtifactKind,
  title: Schema.String,
  text: Schema.String,
  unresolved: Bit,
  at: Schema.Number
})

const insertRow = SqlSchema.void({
  Request: FtsRow,
  execute: (row) => Effect.flatMap(SqlClient.SqlClient, (sql) => sql`INSERT INTO artifacts_fts ${sql.insert(row)}`)
})

/** Rows per multi-row INSERT (7 parameters each, well under SQLite's 32,766). */
const INSERT_CHUNK = 500

const insertRows = SqlSchema.void({
  Request: Schema.Array(FtsRow),
  execute: (rows) => Effect.flatMap(SqlClient.SqlClient, (sql) => sql`INSERT INTO artifacts_fts ${sql.insert(rows)}`)
})

/**
 * Indexes a checkpoint's artifacts for search (in the caller's transaction). `createdAt` (ms)
 * stands in for an artifact's unknown time.
 */
export const indexArtifacts = (
  checkpoint: CheckpointId,
  createdAt: number,
  artifacts: ReadonlyArray<Artifact>
): Effect.Effect<void, SqlError | ParseResult.ParseError, SqlClient.SqlClient> => {
  const unresolved = unresolvedOf(artifacts.map((a) => a.fact))
  return Effect.forEach(
    artifacts,
    (artifact, i) =>
      insertRow({
        checkpoint,
        artifact: artifact.id,
        kind: artifact.fact._tag,
        title: artifact.title,
        text: artifactText(artifact.fact),
        unresolved: unresolved[i] ?? false,
        at: artifact.fact.at ?? createdAt
      }),
    { discard: true }
  )
}

/** Removes a checkpoint's artifacts from search (in the caller's transaction). */
export const unindexArtifacts = (checkpoint: CheckpointId): SqlEffect<void> =>
  Effect.flatMap(SqlClient.SqlClient, (sql) => sql`DELETE FROM artifacts_fts WHERE checkpoint = ${checkpoint}`).pipe(
    Effect.asVoid
  )

// --- workers' artifacts: the projection of the event log --------------------------------------

/** The events the projection folds: spawns (for `respawn_of`) and the endings {@link workerArtifacts} reads. */
const FOLDED_TYPES = ["worker.spawned", "worker.ready", "worker.failed", "worker.lost", "worker.cancelled"]

/** Events read per query while catching up. */
const BATCH = 5_000

const StateRow = Schema.Struct({ last_event_id: Schema.Int })

/** A `search_workers` row: the worker it respawns, and the rowids of its rows in `artifacts_fts`. */
const WorkerRow = Schema.Struct({
  worker: Schema.String,
  respawn_of: Schema.NullOr(Schema.String),
  rowids: Schema.parseJson(Schema.Array(Schema.Int))
})
type WorkerRow = typeof WorkerRow.Type

const RowidRow = Schema.Struct({ rowid: Schema.Int })

const stateRow = Effect.flatMap(SqlClient.SqlClient, (sql) =>
  SqlSchema.findOne({
    Request: Schema.Void,
    Result: StateRow,
    execute: () => sql`SELECT last_event_id FROM search_state WHERE id = 1`
  })(undefined)
).pipe(Effect.map(Option.match({ onNone: () => 0, onSome: (row) => row.last_event_id })))

const setState = (lastEventId: number) =>
  Effect.flatMap(
    SqlClient.SqlClient,
    (sql) => sql`INSERT INTO search_state (id, last_event_id) VALUES (1, ${lastEventId})
      ON CONFLICT (id) DO UPDATE SET last_event_id = excluded.last_event_id`
  )

const workerRow = (worker: string) =>
  Effect.flatMap(SqlClient.SqlClient, (sql) =>
    SqlSchema.findOne({
      Request: Schema.String,
      Result: WorkerRow,
      execute: (id) => sql`SELECT worker, respawn_of, rowids FROM search_workers WHERE worker = ${id}`
    })(worker)
  )

const upsertWorker = SqlSchema.void({
  Request: WorkerRow,
  execute: (row) =>
    Effect.flatMap(
      SqlClient.SqlClient,
      (sql) => sql`INSERT INTO search_workers ${sql.insert(row)}
        ON CONFLICT (worker) DO UPDATE SET respawn_of = excluded.respawn_of, rowids = excluded.rowids`
    )
})

/** The rowid FTS5 gave the row just inserted (`RETURNING` does not work on a virtual table). */
const lastRowid = Effect.flatMap(SqlClient.SqlClient, (sql) =>
  SqlSchema.single({
    Request: Schema.Void,
    Result: RowidRow,
    execute: () => sql`SELECT last_insert_rowid() AS rowid`
  })(undefined)
).pipe(
  Effect.map((row) => row.rowid),
  Effect.catchTag("NoSuchElementException", () => Effect.dieMessage("SELECT last_insert_rowid() returned no row"))
)

/** The folded events with id in (`after`, `upTo`], oldest first, at most {@link BATCH}. */
const foldedSince = (after: number, upTo: number) =>
  Effect.flatMap(SqlClient.SqlClient, (sql) =>
    SqlSchema.findAll({
      Request: Schema.Void,
      Result: Events.EventFromRow,
      execute: () => sql`SELECT id, at, type, subject_type, subject_id, data FROM events
        WHERE id > ${after} AND id <= ${upTo} AND subject_type = 'worker' AND type IN ${sql.in(FOLDED_TYPES)}
        ORDER BY id LIMIT ${BATCH}`
    })(undefined)
  )

/**
 * Marks resolved the failures of the workers `from` respawns, transitively (a result of `w5`,
 * respawned from `w4`, respawned from `w3`, answers both failures).
 */
const resolveLineage = (from: string | null) =>
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const seen = new Set<string>()
    for (let current = from; current !== null && !seen.has(current);) {
      seen.add(current)
      const row = yield* workerRow(current)
      if (Option.isNone(row)) return
      if (row.value.rowids.length > 0)
        yield* sql`UPDATE artifacts_fts SET unresolved = 0
          WHERE rowid IN ${sql.in(row.value.rowids)} AND kind = 'failure' AND unresolved = 1`
      current = row.value.respawn_of
    }
  })

/**
 * What a fold of several events keeps between them: the workers whose spawn it saw (not a respawn:
 * no row of theirs can be in `search_workers`, so their ending needs no lookup), and the rows that
 * never change (a result of such a worker), inserted together at the end ({@link flush}).
 */
interface Folding {
  readonly plain: Set<string>
  readonly pending: Array<typeof FtsRow.Type>
}

const newFolding = (): Folding => ({ plain: new Set(), pending: [] })

/** Inserts the rows a fold left pending. */
const flush = (folding: Folding): SqlEffect<void> =>
  Effect.gen(function* () {
    for (let i = 0; i < folding.pending.length; i += INSERT_CHUNK)
      yield* insertRows(folding.pending.slice(i, i + INSERT_CHUNK))
    folding.pending.length = 0
  })

/** Folds one event into the projection (in the caller's transaction); other events are ignored. */
const foldEvent = (event: TrailEvent, folding: Folding): SqlEffect<void> =>
  Effect.gen(function* () {
    if (event.subject.type !== "worker" || !FOLDED_TYPES.includes(event.type)) return
    const worker = event.subject.id
    if (event.type === "worker.spawned") {
      // Only a respawn needs a row before it ends: its lineage.
      const respawnOf = typeof event.data.respawn_of === "string" ? event.data.respawn_of : null
      if (respawnOf === null) folding.plain.add(worker)
      else yield* upsertWorker({ worker, respawn_of: respawnOf, rowids: [] })
      return
    }
    const known = folding.plain.has(worker) ? Option.none<WorkerRow>() : yield* workerRow(worker)
    const row: WorkerRow = Option.getOrElse(known, () => ({ worker, respawn_of: null, rowids: [] }))
    const sql = yield* SqlClient.SqlClient
    if (row.rowids.length > 0) yield* sql`DELETE FROM artifacts_fts WHERE rowid IN ${sql.in(row.rowids)}`
    const drafts = workerArtifacts(worker, [event])
    // Rows are kept track of where they may change: a failure (a respawn's result resolves it), and
    // any row of a worker the table knows (a respawn). A result of any other worker is final.
    const tracked = Option.isSome(known) || drafts.some((draft) => draft._tag === "failure")
    const rowids: Array<number> = []
    for (const draft of drafts) {
      const fts = {
        checkpoint: null,
        artifact: WorkerArtifactId.make(`${worker}@${draft._tag}`),
        kind: draft._tag,
        title: artifactTitle(draft),
        text: artifactText(draft),
        // Nothing can answer a failure yet: a respawn of it starts after it ended.
        unresolved: draft._tag === "failure",
        at: draft.at ?? event.at
      }
      if (!tracked) {
        folding.pending.push(fts)
        continue
      }
      yield* insertRow(fts)
      rowids.push(yield* lastRowid)
    }
    if (tracked) yield* upsertWorker({ ...row, rowids })
    if (drafts.some((draft) => draft._tag === "result")) yield* resolveLineage(row.respawn_of)
  })

/**
 * Folds `events` (oldest first, all after the projection's last event) into the projection and
 * records the last as folded, in the caller's transaction. For a reader of events that are no
 * longer in the `events` table (an archive); {@link catchUp} reads the table itself.
 */
export const foldEvents = (events: ReadonlyArray<TrailEvent>): SqlEffect<void> =>
  Effect.gen(function* () {
    const last = yield* stateRow
    const folding = newFolding()
    let folded = last
    for (const event of events) {
      if (event.id <= last) continue
      yield* foldEvent(event, folding)
      folded = event.id
    }
    yield* flush(folding)
    if (folded > last) yield* setState(folded)
  })

/** What a catch-up did: the workers' endings and spawns folded, and the last event id now folded. */
export interface CaughtUp {
  readonly folded: number
  readonly last_event_id: number
}

/**
 * Brings the projection of workers' artifacts up to the end of the event log: folds the events
 * after its `last_event_id`, {@link BATCH} folded events per transaction, each storing its
 * position (O(new events); a first search over a long log would otherwise hold the write lock for
 * seconds, longer than a hook waits for it; a log with nothing new costs two reads and takes no
 * lock). `trail search` runs it first; a command that moves events out of the table (an archive)
 * runs it before, so that the projection is current past them.
 */
export const catchUp: Effect.Effect<CaughtUp, StoreError, SqlClient.SqlClient | Database.Database> = Effect.gen(
  function* () {
    const database = yield* Database.Database
    const [last, latest] = yield* Database.autocommit(Effect.zip(stateRow, Events.latestIdSql))
    if (last >= latest) return { folded: 0, last_event_id: last }
    let folded = 0
    for (;;) {
      const step = yield* database.transaction(foldBatch(latest))
      folded += step.folded
      if (step.last_event_id >= latest) return { folded, last_event_id: step.last_event_id }
    }
  }
)

/**
 * Folds the next {@link BATCH} events after the stored position, up to `latest`, and stores the
 * new position (`latest` once none is left), in its own transaction (see {@link catchUp}).
 */
const foldBatch = (latest: number): SqlEffect<CaughtUp> =>
  Effect.gen(function* () {
    const last = yield* stateRow
    if (last >= latest) return { folded: 0, last_event_id: last }
    const events = yield* foldedSince(last, latest)
    const folding = newFolding()
    for (const event of events) yield* foldEvent(event, folding)
    yield* flush(folding)
    const reached = events.length < BATCH ? latest : (events[events.length - 1]?.id ?? latest)
    yield* setState(reached)
    return { folded: events.length, last_event_id: reached }
  })

/** Drops the projection of workers' artifacts (its rows and its state), in the caller's transaction. */
export const clearWorkers: Effect.Effect<void, SqlError, SqlClient.SqlClient> = Effect.flatMap(
  SqlClient.SqlClient,
  (sql) =>
    Effect.zipRight(
      sql`DELETE FROM artifacts_fts WHERE checkpoint IS NULL`,
      Effect.zipRight(sql`DELETE FROM search_workers`, sql`DELETE FROM search_state`)
    )
)

/**
 * Rebuilds the projection of workers' artifacts from the event log (in the caller's transaction,
 * or its own): drops its rows and state, then folds every event — the archived ones
 * (`.trail/archive`), then the table's ({@link Archive.eventsWith}). Returns the rows indexed.
 */
export const rebuildWorkers: Effect.Effect<number, StoreError, SqlClient.SqlClient | Database.Database> =
  Effect.flatMap(Database.Database, (database) =>
    database.transaction(
      Effect.gen(function* () {
        const sql = yield* SqlClient.SqlClient
        yield* clearWorkers
        // gc cannot archive meanwhile: it deletes under the write lock the deletes above took.
        // The whole log, the archive cut below the table's oldest id (after a crash between an
        // archive's copy and its delete, ids in both places are read once, in order).
        yield* Stream.runForEach(Archive.eventsWith(Archive.sqlClient)(Archive.dirOf(database.filename)), (batch) =>
          Database.orStoreError(foldEvents(batch))
        )
        const counted = yield* SqlSchema.findAll({
          Request: Schema.Void,
          Result: Schema.Struct({ n: Schema.Int }),
          execute: () => sql`SELECT count(*) AS n FROM artifacts_fts WHERE checkpoint IS NULL`
        })(undefined)
        return counted[0]?.n ?? 0
      })
    )
  )

/**
 * The artifacts matching `query`, best first (see the module's ranking), after bringing the
 * workers' projection up to date ({@link catchUp}). Fails only with a StoreError: a query never
 * fails for its syntax.
 */
export const search = (
  query: string,
  options: SearchOptions = {}
): Effect.Effect<ReadonlyArray<SearchHit>, StoreError, SqlClient.SqlClient | Database.Database> =>
  Effect.gen(function* () {
    const match = matchExpression(query)
    if (match === null) return []
    yield* catchUp
    const sql = yield* SqlClient.SqlClient
    const now = yield* Clock.currentTimeMillis
    const limit = Math.max(1, Math.min(1000, Math.trunc(options.limit ?? DEFAULT_LIMIT)))
    const kind = options.kind === undefined ? sql`` : sql`AND kind = ${options.kind}`
    return yield* SqlSchema.findAll({
      Request: Schema.Void,
      Result: SearchHit,
      execute: () => sql`SELECT checkpoint, artifact, kind, title,
          snippet(artifacts_fts, 4, '[', ']', '…', 16) AS snippet,
          unresolved, at,
          bm25(artifacts_fts) * (1.0 + 1.0 / (1.0 + max(0, ${now} - at) * 1.0 / ${DAY_MS})) AS rank
        FROM artifacts_fts
        WHERE artifacts_fts MATCH ${match} ${kind}
        ORDER BY unresolved DESC, rank, at DESC, artifact
        LIMIT ${limit}`
    })(undefined).pipe(Database.orStoreError)
  })
