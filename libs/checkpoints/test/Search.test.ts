import * as NodeContext from "@effect/platform-node/NodeContext"
import { assert, describe, it } from "@effect/vitest"
import type { ArtifactDraft } from "@trail/domain"
import { Effect, TestClock } from "effect"
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
  })
})
