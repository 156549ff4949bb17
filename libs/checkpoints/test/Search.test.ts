import * as NodeContext from "@effect/platform-node/NodeContext"
import * as SqlClient from "@effect/sql/SqlClient"
import * as SqlSchema from "@effect/sql/SqlSchema"
import { assert, describe, it } from "@effect/vitest"
import type { ArtifactDraft, NewEvent } from "@trail/domain"
import { Archive, Database, Events } from "@trail/store"
import { Effect, Schema, TestClock } from "effect"
import { Search } from "../src/index.js"
import { answer, bundleOf, draft, failingInstall, header, openRoot, paddingEdit, passingBuild } from "./helpers.js"

const NOW = Date.UTC(2026, 10, 22, 3, 15, 0)
const DAY = 86_400_000

/** A root with checkpoints saved from `bundles` (each a list of titled drafts), oldest first. */
const withBundles = (bundles: ReadonlyArray<ReadonlyArray<readonly [string, ArtifactDraft]>>) =>
  Effect.gen(function* () {
    yield* TestClock.setTime(NOW)
    const opened = yield* openRoot
    const ids = []
    for (const facts of bundles) {
      const id = yield* opened.checkpoints.newId
      yield* opened.checkpoints.save({
        bundle: bundleOf(id, NOW, header(id), facts),
        once: false,
        session: null,
        workers: []
      })
      ids.push(id)
    }
    const search = (query: string, options?: Search.SearchOptions) =>
      Search.search(query, options).pipe(Effect.provide(opened.ctx))
    return { ...opened, ids, search }
  })

/** A worker event as the fleet appends it. */
const workerEvent = (worker: string, type: string, data: NewEvent["data"] = {}, at = NOW): NewEvent => ({
  at,
  type,
  subject: { type: "worker", id: worker },
  data
})

const done = (summary: string, extra: { readonly recommend?: Array<string>; readonly change_set?: object } = {}) => ({
  from: "running",
  result: {
    outcome: "done",
    summary,
    evidence: ["src/parser.ts:42"],
    recommend: extra.recommend ?? [],
    found: 1
  },
  ...(extra.change_set === undefined ? {} : { change_set: extra.change_set })
})

/** A root whose event log the test appends to, and search and the projection's state over it. */
const withLog = Effect.gen(function* () {
  yield* TestClock.setTime(NOW)
  const opened = yield* openRoot
  const run = <A, E>(effect: Effect.Effect<A, E, SqlClient.SqlClient | Database.Database>) =>
    Effect.provide(effect, opened.ctx)
  const append = (...events: ReadonlyArray<NewEvent>) =>
    run(Effect.flatMap(Database.Database, (db) => db.transaction(Effect.forEach(events, Events.appendSql))))
  const state = run(
    Effect.flatMap(SqlClient.SqlClient, (sql) =>
      SqlSchema.findAll({
        Request: Schema.Void,
        Result: Schema.Struct({ last_event_id: Schema.Int }),
        execute: () => sql`SELECT last_event_id FROM search_state`
      })(undefined)
    )
  )
  const rows = run(
    Effect.flatMap(
      SqlClient.SqlClient,
      (sql) => sql`SELECT checkpoint, artifact, kind, title, text, unresolved, at FROM artifacts_fts ORDER BY artifact`
    )
  )
  return {
    ...opened,
    append,
    state,
    rows,
    run,
    search: (query: string, options?: Search.SearchOptions) => run(Search.search(query, options))
  }
})

describe("Search", () => {
  it.layer(NodeContext.layer)((it) => {
    it.scoped("a failing command ranks first for its error text, above answers and edits that mention it", () =>
      Effect.gen(function* () {
        const { ids, search } = yield* withBundles([
          [
            ["answer: the left-pad module is missing", answer],
            ["npm run build", passingBuild],
            ["npm install && npm test failed (exit 1)", failingInstall],
            ["edit src/pad.ts +3 -1", paddingEdit]
          ]
        ])
        const hits = yield* search("Cannot find module left-pad")
        assert.strictEqual(hits[0]!.artifact, `${ids[0]}@3`)
        assert.strictEqual(hits[0]!.kind, "command")
        assert.isTrue(hits[0]!.unresolved)
        assert.include(hits[0]!.snippet, "[Cannot] [find] [module]")

        // Without the unresolved weight the answer would do as well on "left-pad module".
        const broad = yield* search("left-pad module")
        assert.deepStrictEqual(
          broad.map((h) => h.kind),
          ["command", "answer"]
        )
        assert.deepStrictEqual(
          (yield* search("left-pad", { kind: "answer" })).map((h) => h.artifact),
          [`${ids[0]}@1`]
        )
        assert.deepStrictEqual(yield* search("left-pad", { kind: "git" }), [])
        assert.strictEqual((yield* search("left-pad", { limit: 1 })).length, 1)
      })
    )

    it.scoped("a failure fixed later in its bundle is resolved; of equal matches the newer comes first", () =>
      Effect.gen(function* () {
        const fixed = draft(
          {
            _tag: "command",
            command: "npm install && npm test",
            exit_code: 0,
            failed: false,
            head: [],
            tail: ["ok"],
            lines: 1
          },
          5_000
        )
        const { ids, search } = yield* withBundles([
          [["npm install && npm test failed", failingInstall]],
          [
            ["npm install && npm test failed", failingInstall],
            ["npm install && npm test", fixed]
          ]
        ])
        const hits = yield* search("left-pad")
        // The first bundle's failure is still open; the second's was answered by a success.
        assert.deepStrictEqual(
          hits.map((h) => [h.artifact, h.unresolved]),
          [
            [`${ids[0]}@1`, true],
            [`${ids[1]}@1`, false]
          ]
        )
        assert.deepStrictEqual(Search.unresolvedOf([failingInstall, passingBuild]), [true, false])
        assert.deepStrictEqual(
          Search.unresolvedOf([
            draft({ _tag: "error", tool: "Edit", message: "old_string not found" }),
            draft({ _tag: "edit", file: "a.ts", tool: "Edit", added: 1, removed: 1 }),
            draft({ _tag: "failure", worker: "w2", reason: "no build", last_lines: [] })
          ]),
          [false, false, true]
        )

        // Recency: the same artifact text in an old and a new bundle; the new one first.
        const recent = yield* withBundles([])
        const old = yield* recent.checkpoints.newId
        yield* recent.checkpoints.save({
          bundle: bundleOf(old, NOW - 30 * DAY, header(old), [["build", draft(passingBuild, NOW - 30 * DAY)]]),
          once: false,
          session: null,
          workers: []
        })
        const fresh = yield* recent.checkpoints.newId
        yield* recent.checkpoints.save({
          bundle: bundleOf(fresh, NOW, header(fresh), [["build", draft(passingBuild, NOW - 1_000)]]),
          once: false,
          session: null,
          workers: []
        })
        assert.deepStrictEqual(
          (yield* recent.search("wrapper")).map((h) => h.checkpoint),
          [fresh, old]
        )
      })
    )

    it.scoped("queries are words, never FTS5 syntax: nothing a person types makes search fail", () =>
      Effect.gen(function* () {
        const { search } = yield* withBundles([[["npm install && npm test failed", failingInstall]]])
        for (const query of [
          "",
          "   ",
          '"',
          '"unbalanced',
          "NEAR(",
          "left-pad AND",
          "OR",
          "NOT left",
          "*",
          "title:npm",
          "^npm",
          "(module)",
          "'; DROP TABLE artifacts_fts; --",
          "\u0000",
          "módulo ünïcode 模块"
        ]) {
          const hits = yield* Effect.either(search(query))
          assert.isTrue(hits._tag === "Right", JSON.stringify(query))
        }
        assert.strictEqual((yield* search('"module"')).length, 1, "quotes are part of the word, not syntax")
        assert.strictEqual((yield* search("(module)")).length, 1)
        // Punctuation inside a word separates tokens of one phrase, as in the indexed text.
        assert.strictEqual((yield* search("npm:install")).length, 1)
        assert.deepStrictEqual(yield* search(""), [])
        assert.strictEqual(Search.matchExpression('say "hi"'), '"say" """hi"""')
      })
    )

    it.scoped("a worker's result, change set and failure are found from the log, without a checkpoint", () =>
      Effect.gen(function* () {
        const log = yield* withLog
        yield* log.append(
          workerEvent("w1", "worker.spawned", { kind: "default", text: "fix the parser", respawn_of: null }),
          workerEvent("w1", "worker.ready", {
            ...done("the quuxification of the tokenizer was wrong", {
              recommend: ["rerun the zanzibar benchmark"],
              change_set: { files: 2, insertions: 7, deletions: 3, paths: ["src/tokenizer.ts", "src/lexer.ts"] }
            })
          }),
          { at: NOW, type: "session.prompted", subject: { type: "session", id: "s-1" }, data: { prompt: "quux" } },
          workerEvent("w2", "worker.spawned", { kind: "default", text: "profile it", respawn_of: null }),
          workerEvent(
            "w2",
            "worker.lost",
            {
              from: "running",
              reason: "its quuxification window vanished",
              last_lines: ["npm ERR! missing script: flibbertigibbet"]
            },
            NOW + 1
          )
        )
        // The last lines its ending event kept are searchable, as `show` prints them.
        assert.deepStrictEqual(
          (yield* log.search("flibbertigibbet")).map((h) => h.artifact),
          ["w2@failure"]
        )
        const hits = yield* log.search("quuxification")
        // The failure is unresolved: first, though the result is the older and as good a match.
        assert.deepStrictEqual(
          hits.map((h) => [h.checkpoint, h.artifact, h.kind, h.unresolved]),
          [
            [null, "w2@failure", "failure", true],
            [null, "w1@result", "result", false]
          ]
        )
        assert.strictEqual(hits[1]!.title, "w1 finished (done): the quuxification of the tokenizer was wrong")
        assert.include(hits[1]!.snippet, "[quuxification]")
        // Recommendations and a change set's paths are in the text, as `show` prints it.
        assert.deepStrictEqual(
          (yield* log.search("zanzibar")).map((h) => h.artifact),
          ["w1@result"]
        )
        assert.deepStrictEqual(
          (yield* log.search("lexer", { kind: "change_set" })).map((h) => h.artifact),
          ["w1@change_set"]
        )
        // A session's prompt is not a worker's artifact.
        assert.strictEqual((yield* log.search("quux")).length, 0)
        // Hostile queries over worker rows are words too.
        for (const query of ['"', "NEAR(", "w1@result", "kind:failure", "\u0000"])
          assert.isTrue((yield* Effect.either(log.search(query)))._tag === "Right", JSON.stringify(query))
      })
    )

    it.scoped(
      "each search folds only the events since the last; a respawn's result resolves the failures before it",
      () =>
        Effect.gen(function* () {
          const log = yield* withLog
          yield* log.append(
            workerEvent("w3", "worker.spawned", { kind: "default", text: "migrate", respawn_of: null }, NOW - 2 * DAY),
            workerEvent(
              "w3",
              "worker.failed",
              { from: "running", reason: "the flibbertigibbet migration timed out" },
              NOW - 2 * DAY
            )
          )
          assert.deepStrictEqual(yield* log.run(Search.catchUp), { folded: 2, last_event_id: 2 })
          assert.deepStrictEqual(yield* log.state, [{ last_event_id: 2 }])
          // Nothing new: nothing folded, no write.
          assert.deepStrictEqual(yield* log.run(Search.catchUp), { folded: 0, last_event_id: 2 })

          yield* log.append(
            { at: NOW, type: "session.stopped", subject: { type: "session", id: "s-1" }, data: {} },
            workerEvent("w4", "worker.spawned", { kind: "default", text: "migrate", respawn_of: "w3" }),
            workerEvent("w4", "worker.failed", {
              from: "running",
              reason: "the flibbertigibbet migration timed out again"
            })
          )
          // A search catches up: the three new events (two of them a worker's), not the five. Of two
          // open failures the newer comes first.
          assert.deepStrictEqual(
            (yield* log.search("flibbertigibbet")).map((h) => [h.artifact, h.unresolved]),
            [
              ["w4@failure", true],
              ["w3@failure", true]
            ]
          )
          assert.deepStrictEqual(yield* log.state, [{ last_event_id: 5 }])

          yield* log.append(
            workerEvent("w5", "worker.spawned", { kind: "default", text: "migrate", respawn_of: "w4" }),
            workerEvent("w5", "worker.ready", done("the flibbertigibbet migration runs in batches now"))
          )
          assert.deepStrictEqual(yield* log.run(Search.catchUp), { folded: 2, last_event_id: 7 })
          // Both dead ends are kept, answered by the respawn's result.
          assert.sameDeepMembers(
            (yield* log.search("flibbertigibbet")).map((h) => [h.artifact, h.unresolved]),
            [
              ["w5@result", false],
              ["w4@failure", false],
              ["w3@failure", false]
            ]
          )

          // The projection is rebuildable from the log: the same rows.
          const live = yield* log.rows
          assert.strictEqual(yield* log.run(Search.rebuildWorkers), 3)
          assert.deepStrictEqual(yield* log.rows, live)
          assert.deepStrictEqual(yield* log.state, [{ last_event_id: 7 }])
          // Folding events read elsewhere (an archive) does the same.
          yield* log.run(
            Effect.flatMap(Database.Database, (db) =>
              db.transaction(
                Effect.gen(function* () {
                  yield* Search.clearWorkers
                  yield* Search.foldEvents(yield* Events.sinceSql(0, 100))
                })
              )
            )
          )
          assert.deepStrictEqual(yield* log.rows, live)
          assert.deepStrictEqual(yield* log.state, [{ last_event_id: 7 }])
          // And so is it through the checkpoints' rebuild, which drops the whole table first.
          const rebuilt = yield* log.checkpoints.rebuildIndex
          assert.strictEqual(rebuilt.workers, 3)
          assert.deepStrictEqual(yield* log.rows, live)
          // And after all but the last event went to the archive (`gc --archive-before`).
          const archived = yield* log.run(
            Effect.flatMap(Database.Database, (db) => Archive.archive(Archive.dirOf(db.filename), 6))
          )
          assert.strictEqual(archived.archived_events, 6)
          assert.strictEqual(yield* log.run(Search.rebuildWorkers), 3)
          assert.deepStrictEqual(yield* log.rows, live)
          assert.deepStrictEqual(yield* log.state, [{ last_event_id: 7 }])
        })
    )
  })
})
