/**
 * Search over checkpoint artifacts (SPEC §4 `trail search QUERY [--kind K]`): SQLite FTS5 (the
 * `artifacts_fts` table of migration 0008) over each artifact's title and text.
 *
 * Ranking: unresolved artifacts first (a failed command, an error or a worker failure that no
 * later success in its bundle answered, {@link unresolvedOf}), then by FTS5's `bm25()` (lower is
 * better; https://www.sqlite.org/fts5.html#the_bm25_function) weighted by recency:
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
  type StoreError
} from "@trail/domain"
import { Database } from "@trail/store"
import { Clock, Effect, type ParseResult, Schema } from "effect"
import { artifactText } from "./Bundle.js"

/** SQLite's 0/1 as a boolean. */
export const Bit = Schema.transform(Schema.Literal(0, 1), Schema.Boolean, {
  strict: true,
  decode: (n) => n === 1,
  encode: (b) => (b ? 1 : 0)
})

/** One artifact that matched, best first. `at`: ms; `rank`: the weighted bm25 (lower is better). */
export const SearchHit = Schema.Struct({
  checkpoint: CheckpointId,
  artifact: ArtifactId,
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
  checkpoint: CheckpointId,
  artifact: ArtifactId,
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

/**
 * The artifacts matching `query`, best first (see the module's ranking). Fails only with a
 * StoreError: a query never fails for its syntax.
 */
export const search = (
  query: string,
  options: SearchOptions = {}
): Effect.Effect<ReadonlyArray<SearchHit>, StoreError, SqlClient.SqlClient> =>
  Effect.gen(function* () {
    const match = matchExpression(query)
    if (match === null) return []
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
