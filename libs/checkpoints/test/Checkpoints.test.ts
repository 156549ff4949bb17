import * as NodeContext from "@effect/platform-node/NodeContext"
import * as SqlClient from "@effect/sql/SqlClient"
import { assert, describe, it } from "@effect/vitest"
import { CheckpointId, errorCode } from "@trail/domain"
import { Archive, Events } from "@trail/store"
import { Effect, Either, Option, Schema, TestClock } from "effect"
import { spawn } from "node:child_process"
import * as nodeFs from "node:fs"
import { fileURLToPath } from "node:url"
import { ArtifactsFile, bundlePaths, composeBundle, formatId, readHeader } from "../src/index.js"
import { answer, bundleOf, failingInstall, header, openRoot, paddingEdit, passingBuild } from "./helpers.js"

const NOW = Date.UTC(2026, 10, 22, 3, 15, 0)
const DAY = 86_400_000

const eventTypes = (id: CheckpointId) =>
  Events.ofSubjectSql("checkpoint", id).pipe(Effect.map((events) => events.map((e) => e.type)))

/** A root whose clock reads NOW, with one saved checkpoint of four artifacts. */
const withOne = (once = false) =>
  Effect.gen(function* () {
    yield* TestClock.setTime(NOW)
    const opened = yield* openRoot
    const id = yield* opened.checkpoints.newId
    const saved = yield* opened.checkpoints.save({
      bundle: bundleOf(id, NOW, header(id), [
        ["npm install && npm test failed (exit 1)", failingInstall],
        ["npm run build", passingBuild],
        ["edit src/pad.ts +3 -1", paddingEdit],
        ["answer: the left-pad module is missing", answer]
      ]),
      once,
      session: "5f1c2a9e-0000-4000-8000-000000000001",
      workers: ["w1"]
    })
    return { ...opened, id, saved, paths: bundlePaths(opened.root, id) }
  })

const RACER = fileURLToPath(new URL("./fixtures/race.ts", import.meta.url))

/** What a racer prints: the id it armed or the error's tag, the id it took or null. */
const RacerResult = Schema.Struct({ arm: Schema.String, take: Schema.NullOr(Schema.String) })

/**
 * Two processes on one root at the same moment (each opens the store first): both arm
 * (`refs`), then both take (`sessions`). Their JSON results (see fixtures/race.ts).
 */
const race = (root: string, refs: readonly [string, string], sessions: readonly [string, string]) =>
  Effect.promise(async () => {
    const runs = refs.map(
      (ref, i) =>
        new Promise<unknown>((resolve, reject) => {
          const child = spawn(process.execPath, ["--import", "tsx", RACER, root, ref, sessions[i] ?? ""], {
            stdio: "pipe"
          })
          let out = ""
          let err = ""
          child.stdout.on("data", (chunk: Buffer) => (out += chunk.toString()))
          child.stderr.on("data", (chunk: Buffer) => (err += chunk.toString()))
          child.on("error", reject)
          child.on("close", (code) =>
            code === 0 ? resolve(JSON.parse(out)) : reject(new Error(`racer exited ${code}: ${err}`))
          )
        })
    )
    const all = Promise.all(runs)
    // A racer that fails early must fail the test, not leave it waiting for its signal.
    all.catch(() => undefined)
    const signalled = (name: string) => nodeFs.readdirSync(root).filter((f) => f.startsWith(`${name}.`)).length
    const release = async (waitFor: string, go: string) => {
      while (signalled(waitFor) < refs.length) await Promise.race([new Promise((r) => setTimeout(r, 20)), all])
      nodeFs.writeFileSync(`${root}/${go}`, "")
    }
    await release("ready", "arm")
    await release("armed", "take")
    return all
  })

describe("Checkpoints", () => {
  it.layer(NodeContext.layer)((it) => {
    it.scoped("newId: cp-<yyyymmdd>-<hhmmss>-<4 hex> from the Clock, unique when many are asked at once", () =>
      Effect.gen(function* () {
        yield* TestClock.setTime(NOW)
        const { checkpoints } = yield* openRoot
        const ids = yield* Effect.all(
          Array.from({ length: 300 }, () => checkpoints.newId),
          { concurrency: 50 }
        )
        assert.strictEqual(new Set(ids).size, 300)
        for (const id of ids) {
          assert.isTrue(Schema.is(CheckpointId)(id))
          assert.match(id, /^cp-20261122-031500-[0-9a-f]{4}$/)
        }
        assert.strictEqual(formatId(NOW, 0x3f2a), "cp-20261122-031500-3f2a")
      })
    )

    it.scoped("an id from newId that is not saved is released without a trace; a saved one is kept", () =>
      Effect.gen(function* () {
        const { checkpoints, fs, id, paths, root } = yield* withOne()
        const unused = yield* checkpoints.newId
        const reserved = bundlePaths(root, unused).header
        assert.isTrue(yield* fs.exists(reserved), "newId reserves the id with its .md file")
        yield* checkpoints.release(unused)
        assert.isFalse(yield* fs.exists(reserved))
        yield* checkpoints.release(id)
        assert.isTrue(yield* fs.exists(paths.header))
        assert.isTrue(yield* fs.exists(paths.artifacts))
      })
    )

    it.scoped("save writes the header and the artifacts, indexes them and records checkpoint.saved", () =>
      Effect.gen(function* () {
        const { checkpoints, fs, id, saved, paths, sql } = yield* withOne()
        assert.strictEqual(yield* fs.readFileString(paths.header), header(id))
        const file = Schema.decodeUnknownSync(Schema.parseJson(ArtifactsFile))(
          yield* fs.readFileString(paths.artifacts)
        )
        assert.deepStrictEqual(
          file.artifacts.map((a) => a.id),
          [`${id}@1`, `${id}@2`, `${id}@3`, `${id}@4`]
        )
        assert.deepStrictEqual(file.artifacts[0]!.fact, failingInstall)
        // No temp file is left behind.
        assert.deepStrictEqual((yield* fs.readDirectory(paths.dir)).sort(), [`${id}.artifacts.json`, `${id}.md`])

        assert.strictEqual(saved.title, "Fixing the pad tests")
        assert.strictEqual(saved.state, "saved")
        assert.strictEqual(saved.artifacts, 4)
        assert.deepStrictEqual(saved.workers, ["w1"])
        assert.deepStrictEqual(yield* checkpoints.list(), [saved])
        assert.deepStrictEqual(yield* checkpoints.get("last"), saved)

        const [event] = yield* Events.ofSubjectSql("checkpoint", id).pipe(
          Effect.provideService(SqlClient.SqlClient, sql)
        )
        assert.strictEqual(event!.type, "checkpoint.saved")
        assert.deepStrictEqual(event!.data, {
          created_at: NOW,
          title: "Fixing the pad tests",
          once: false,
          session: "5f1c2a9e-0000-4000-8000-000000000001",
          workers: ["w1"],
          artifacts: 4
        })
      })
    )

    it.scoped("a composed header's title is its title, not the id again", () =>
      Effect.gen(function* () {
        yield* TestClock.setTime(NOW)
        const { checkpoints } = yield* openRoot
        const id = yield* checkpoints.newId
        const bundle = composeBundle({ id, createdAt: NOW, note: "", drafts: [failingInstall], problems: [] })
        const saved = yield* checkpoints.save({ bundle, once: false, session: null, workers: [] })
        assert.notInclude(saved.title, id)
        assert.strictEqual(saved.title, readHeader(bundle.header).title)
      })
    )

    it.scoped("a bundle that cannot be written is not saved: a clear error, no index entry, no temp file", () =>
      Effect.gen(function* () {
        yield* TestClock.setTime(NOW)
        const { checkpoints, fs, root, sql } = yield* openRoot
        const id = yield* checkpoints.newId
        const paths = bundlePaths(root, id)
        // A directory where the artifacts file goes: the rename onto it fails.
        yield* fs.makeDirectory(paths.artifacts)
        const error = yield* Effect.flip(
          checkpoints.save({
            bundle: bundleOf(id, NOW, header(id), [["npm run build", passingBuild]]),
            once: false,
            session: null,
            workers: []
          })
        )
        assert.strictEqual(error._tag === "CheckpointFileError" && error.problem, "unwritable")
        assert.include(error.message, "nothing was saved")
        assert.deepStrictEqual(yield* checkpoints.list({ includeConsumed: true }), [])
        assert.deepStrictEqual(yield* eventTypes(id).pipe(Effect.provideService(SqlClient.SqlClient, sql)), [])
        assert.deepStrictEqual(
          (yield* fs.readDirectory(paths.dir)).filter((f) => f.endsWith(".tmp")),
          []
        )
      })
    )

    it.scoped("show prints the header as on disk: hand edits kept, a removed header still names the checkpoint", () =>
      Effect.gen(function* () {
        const { checkpoints, fs, id, paths } = yield* withOne()
        assert.strictEqual((yield* checkpoints.show(id)).header, header(id))

        const edited = `${header(id)}- and ask Ana about the CI cache\n`
        yield* fs.writeFileString(paths.header, edited)
        assert.strictEqual((yield* checkpoints.show(id)).header, edited)

        // Only the note is left: it is printed after a line naming the checkpoint.
        yield* fs.writeFileString(paths.header, "## Next steps\n- add left-pad\n")
        const cut = (yield* checkpoints.show("last")).header
        assert.match(cut, new RegExp(`^# Checkpoint ${id}: Fixing the pad tests\n`))
        assert.include(cut, `trail checkpoint show ${id} --artifact N`)
        assert.isTrue(cut.endsWith("## Next steps\n- add left-pad\n"))

        yield* fs.remove(paths.header)
        assert.include((yield* checkpoints.show(id)).header, "was deleted")
      })
    )

    it.scoped("artifact N in full; a deleted artifacts file, an unknown id or number are clear errors", () =>
      Effect.gen(function* () {
        const { checkpoints, fs, id, paths } = yield* withOne()
        const second = yield* checkpoints.artifact(id, 2)
        assert.strictEqual(second.id, `${id}@2`)
        assert.deepStrictEqual(second.fact, passingBuild)
        assert.strictEqual((yield* checkpoints.artifacts(id)).artifacts.length, 4)

        const beyond = yield* Effect.flip(checkpoints.artifact(id, 5))
        assert.strictEqual(beyond._tag, "CheckpointNotFound")
        assert.include(beyond.message, "numbered 1 to 4")

        const unknown = yield* Effect.flip(checkpoints.show("cp-20200101-000000-beef"))
        assert.strictEqual(unknown._tag, "CheckpointNotFound")
        assert.include(unknown.message, "cp-20200101-000000-beef")
        // Not an id at all (a path, say) is not looked up, let alone read.
        const traversal = yield* Effect.flip(checkpoints.show("../../etc/passwd"))
        assert.strictEqual(traversal._tag, "CheckpointNotFound")

        yield* fs.remove(paths.artifacts)
        const gone = yield* Effect.flip(checkpoints.artifact(id, 1))
        assert.strictEqual(gone._tag, "CheckpointFileError")
        if (gone._tag === "CheckpointFileError") {
          assert.strictEqual(gone.problem, "missing")
          assert.strictEqual(errorCode(gone), "checkpoint-file-missing")
        }
        assert.include(gone.message, "was deleted")
        assert.include(gone.message, paths.artifacts)
        // The header is still there.
        assert.strictEqual((yield* checkpoints.show(id)).header, header(id))

        yield* fs.writeFileString(paths.artifacts, '{"id": 3}')
        const malformed = yield* Effect.flip(checkpoints.artifacts(id))
        assert.strictEqual(malformed._tag === "CheckpointFileError" && malformed.problem, "malformed")
      })
    )

    it.scoped("delete removes the files, the listing and the search entries, and records checkpoint.deleted", () =>
      Effect.gen(function* () {
        const { checkpoints, fs, id, paths, sql } = yield* withOne()
        const deleted = yield* checkpoints.delete(id)
        assert.strictEqual(deleted.checkpoint.state, "deleted")
        assert.deepStrictEqual(deleted.unremoved, [])
        assert.isFalse(yield* fs.exists(paths.header))
        assert.isFalse(yield* fs.exists(paths.artifacts))
        assert.deepStrictEqual(yield* checkpoints.list({ includeConsumed: true }), [])
        assert.strictEqual((yield* Effect.flip(checkpoints.show(id)))._tag, "CheckpointNotFound")
        assert.strictEqual((yield* Effect.flip(checkpoints.delete(id)))._tag, "CheckpointNotFound")
        assert.strictEqual((yield* Effect.flip(checkpoints.get("last")))._tag, "CheckpointNotFound")
        const left = yield* sql`SELECT count(*) AS n FROM artifacts_fts`
        assert.deepStrictEqual(left, [{ n: 0 }])
        assert.deepStrictEqual(yield* eventTypes(id).pipe(Effect.provideService(SqlClient.SqlClient, sql)), [
          "checkpoint.saved",
          "checkpoint.deleted"
        ])
      })
    )

    it.scoped("arm then take: the next session gets the header once; a second arm is told it is taken", () =>
      Effect.gen(function* () {
        const { checkpoints, fs, id, paths, sql } = yield* withOne()
        assert.isTrue(Option.isNone(yield* checkpoints.take("s-before")), "nothing armed: nothing handed out")
        yield* fs.writeFileString(paths.header, `${header(id)}- edited before continue\n`)

        // Two `trail continue` at once: one arms, the other is told it is taken.
        const results = yield* Effect.all([checkpoints.arm("last"), checkpoints.arm(id)].map(Effect.either), {
          concurrency: "unbounded"
        })
        const armed = results.filter(Either.isRight)
        const refused = results.filter(Either.isLeft).map((r) => r.left)
        assert.strictEqual(armed.length, 1)
        assert.include(armed[0]!.right.header, "- edited before continue")
        assert.strictEqual(refused.length, 1)
        assert.strictEqual(refused[0]!._tag, "CheckpointTaken")
        assert.include(refused[0]!.message, "taken")

        // Two SessionStarts at once: one gets it, the other none.
        const taken = yield* Effect.all([checkpoints.take("s-one"), checkpoints.take("s-two")], {
          concurrency: "unbounded"
        })
        const got = taken.filter(Option.isSome)
        assert.strictEqual(got.length, 1)
        assert.include(got[0]!.value.header, "- edited before continue")
        const taker = got[0]!.value.checkpoint.continued_by
        assert.include(["s-one", "s-two"], taker)
        assert.isTrue(Option.isNone(yield* checkpoints.take("s-three")))
        assert.strictEqual((yield* checkpoints.get(id)).continued_by, taker)

        const events = yield* Events.ofSubjectSql("checkpoint", id).pipe(
          Effect.provideService(SqlClient.SqlClient, sql)
        )
        assert.deepStrictEqual(
          events.map((e) => e.type),
          ["checkpoint.saved", "checkpoint.armed", "checkpoint.continued"]
        )
        assert.deepStrictEqual(events[2]!.data, { session: taker })

        // Taken, it can be armed again; disarm undoes an arm.
        yield* checkpoints.arm(id)
        assert.deepStrictEqual(yield* checkpoints.disarm, Option.some(id))
        assert.isTrue(Option.isNone(yield* checkpoints.take("s-four")))
      })
    )

    // Real processes; the TestClock of this test does not reach them.
    it.scoped(
      "across processes: of two racing continues one arms, of two racing SessionStarts one takes it",
      () =>
        Effect.gen(function* () {
          const { checkpoints, id, root } = yield* withOne()
          const results = yield* race(root, [id, "last"], ["s-one", "s-two"])
          const decoded = Schema.decodeUnknownSync(Schema.Array(RacerResult))(results)
          const arms = decoded.map((r) => r.arm)
          const takes = decoded.map((r) => r.take)
          assert.sameMembers(arms, [id, "CheckpointTaken"], "one arms, the other is told it is taken")
          assert.sameMembers(takes, [id, null], "one session gets it, the other none")
          assert.include(["s-one", "s-two"], (yield* checkpoints.get(id)).continued_by)
        }),
      60_000
    )

    it.scoped(
      "an arming no session took expires after checkpoint.armed_ttl_secs: not handed out, and no longer in the way",
      () =>
        Effect.gen(function* () {
          const { checkpoints, id, sql } = yield* withOne()
          yield* checkpoints.arm(id)
          // Within the day: a second continue is told it is taken.
          yield* TestClock.adjust(DAY - 1)
          const other = yield* checkpoints.newId
          yield* checkpoints.save({
            bundle: bundleOf(other, NOW, header(other), []),
            once: false,
            session: null,
            workers: []
          })
          assert.strictEqual((yield* Effect.flip(checkpoints.arm(other)))._tag, "CheckpointTaken")
          // A day after: the stale arming gives way to a new continue…
          yield* TestClock.adjust(1)
          assert.strictEqual((yield* checkpoints.arm(other)).checkpoint.id, other)
          // …and is not handed out to a session started days later.
          yield* TestClock.adjust(DAY)
          assert.isTrue(Option.isNone(yield* checkpoints.take("s-late")))
          const types = (cp: CheckpointId) => eventTypes(cp).pipe(Effect.provideService(SqlClient.SqlClient, sql))
          assert.deepStrictEqual(yield* types(id), ["checkpoint.saved", "checkpoint.armed", "checkpoint.disarmed"])
          assert.deepStrictEqual(yield* types(other), ["checkpoint.saved", "checkpoint.armed", "checkpoint.disarmed"])
          // Re-armed, it is fresh again.
          yield* checkpoints.arm(id)
          assert.strictEqual(Option.getOrThrow(yield* checkpoints.take("s-now")).checkpoint.id, id)
        })
    )

    it.scoped("a file that cannot be removed after delete or purge committed is reported, not ignored", () =>
      Effect.gen(function* () {
        const { checkpoints, fs, id, paths, sql } = yield* withOne()
        // A directory where the .md was: removing it as a file fails (for root too).
        yield* fs.remove(paths.header)
        yield* fs.makeDirectory(paths.header)
        yield* fs.writeFileString(`${paths.header}/keep`, "x")
        const deleted = yield* checkpoints.delete(id)
        // Committed: the index and the log say deleted; the artifacts file went; the .md is named.
        assert.strictEqual(deleted.checkpoint.state, "deleted")
        assert.strictEqual(deleted.unremoved.length, 1)
        assert.include(deleted.unremoved[0], paths.header)
        assert.isFalse(yield* fs.exists(paths.artifacts))
        assert.deepStrictEqual(yield* checkpoints.list({ includeConsumed: true }), [])
        assert.deepStrictEqual(yield* eventTypes(id).pipe(Effect.provideService(SqlClient.SqlClient, sql)), [
          "checkpoint.saved",
          "checkpoint.deleted"
        ])

        const once = yield* withOne(true)
        yield* once.checkpoints.consume(once.id)
        yield* once.fs.remove(once.paths.artifacts)
        yield* once.fs.makeDirectory(`${once.paths.artifacts}/sub`, { recursive: true })
        yield* TestClock.adjust(7 * DAY)
        const purged = yield* once.checkpoints.purge({ retentionDays: 7 })
        assert.deepStrictEqual(purged.purged, [once.id])
        assert.strictEqual(purged.unremoved.length, 1)
        assert.include(purged.unremoved[0], once.paths.artifacts)
        assert.isFalse(yield* once.fs.exists(once.paths.header))
        // A file already gone is not a problem.
        assert.deepStrictEqual((yield* once.checkpoints.purge({ retentionDays: 7 })).unremoved, [])
      })
    )

    it.scoped("--once: consumed at its first continue, still handed out once, purged after retention", () =>
      Effect.gen(function* () {
        const { checkpoints, fs, id, paths, sql } = yield* withOne(true)
        yield* checkpoints.arm(id)
        assert.deepStrictEqual(yield* checkpoints.list(), [], "consumed: out of the default listing")
        const [consumed] = yield* checkpoints.list({ includeConsumed: true })
        assert.strictEqual(consumed!.state, "consumed")
        assert.strictEqual(consumed!.consumed_at, NOW)
        const refused = yield* Effect.flip(checkpoints.arm(id))
        assert.strictEqual(refused._tag === "CheckpointTaken" && refused.reason, "consumed")

        const taken = yield* checkpoints.take("s-one")
        assert.isTrue(Option.isSome(taken))
        assert.isTrue(Option.isNone(yield* checkpoints.take("s-two")))

        yield* TestClock.adjust(7 * DAY - 1)
        assert.deepStrictEqual(yield* checkpoints.purge({ retentionDays: 7 }), { purged: [], unremoved: [] })
        assert.isTrue(yield* fs.exists(paths.artifacts))
        yield* TestClock.adjust(1)
        assert.deepStrictEqual(yield* checkpoints.purge({ retentionDays: 7 }), { purged: [id], unremoved: [] })
        assert.isFalse(yield* fs.exists(paths.header))
        assert.isFalse(yield* fs.exists(paths.artifacts))
        assert.deepStrictEqual(yield* checkpoints.list({ includeConsumed: true }), [])
        assert.deepStrictEqual(yield* eventTypes(id).pipe(Effect.provideService(SqlClient.SqlClient, sql)), [
          "checkpoint.saved",
          "checkpoint.armed",
          "checkpoint.consumed",
          "checkpoint.continued",
          "checkpoint.purged"
        ])
      })
    )

    it.scoped("--once: showing an artifact consumes it; a plain checkpoint is never consumed by reading", () =>
      Effect.gen(function* () {
        const once = yield* withOne(true)
        yield* once.checkpoints.show(once.id)
        assert.strictEqual((yield* once.checkpoints.get(once.id)).state, "saved", "the header alone does not consume")
        yield* once.checkpoints.artifact(once.id, 1)
        assert.strictEqual((yield* once.checkpoints.get(once.id)).state, "consumed")

        const plain = yield* withOne(false)
        yield* plain.checkpoints.artifact(plain.id, 1)
        yield* plain.checkpoints.arm(plain.id)
        assert.strictEqual((yield* plain.checkpoints.get(plain.id)).state, "saved")
        assert.deepStrictEqual((yield* plain.checkpoints.purge({ retentionDays: 0 })).purged, [])
      })
    )

    it.scoped.each([
      ["the events", false],
      ["the events, most of them archived", true]
    ] as const)("the index is rebuilt from %s (and the search table from the files) to what it was", ([, archiving]) =>
      Effect.gen(function* () {
        const { checkpoints, sql, root, ctx } = yield* withOne()
        const make = (title: string, once: boolean) =>
          Effect.gen(function* () {
            yield* TestClock.adjust(1_000)
            const id = yield* checkpoints.newId
            yield* checkpoints.save({
              bundle: bundleOf(id, NOW, header(id, title), [["npm run build", passingBuild]]),
              once,
              session: null,
              workers: []
            })
            return id
          })
        const deleted = yield* make("deleted", false)
        const consumed = yield* make("consumed", true)
        const armed = yield* make("armed", false)
        yield* checkpoints.delete(deleted)
        yield* checkpoints.consume(consumed)
        yield* checkpoints.arm(armed)

        const rows = sql`SELECT * FROM checkpoints ORDER BY id`
        const fts = sql`SELECT checkpoint, artifact, kind, title, text, unresolved, at FROM artifacts_fts ORDER BY artifact`
        const before = { rows: yield* rows, fts: yield* fts, list: yield* checkpoints.list({ includeConsumed: true }) }
        assert.strictEqual(before.rows.length, 4)
        assert.strictEqual(before.fts.length, 6)

        if (archiving)
          yield* Effect.gen(function* () {
            // Every event but the last two leaves the table for the archive.
            const latest = yield* Events.latestIdSql.pipe(Effect.orDie)
            // The archive deletes only what the projections have folded (gc brings them current first).
            yield* sql`INSERT INTO inbox_state (id, last_event_id) VALUES (1, ${latest})
              ON CONFLICT (id) DO UPDATE SET last_event_id = excluded.last_event_id`
            yield* sql`UPDATE search_state SET last_event_id = ${latest}`
            const archived = yield* Archive.archive(`${root}/.trail/${Archive.DIR}`, latest - 2)
            assert.strictEqual(archived.archived_events, latest - 2)
            assert.strictEqual((yield* Events.sinceSql(0, 100).pipe(Effect.orDie)).length, 2)
          }).pipe(Effect.provide(ctx))
        yield* sql`DELETE FROM checkpoints`
        yield* sql`DELETE FROM artifacts_fts`
        assert.deepStrictEqual(yield* checkpoints.list({ includeConsumed: true }), [])
        const rebuilt = yield* checkpoints.rebuildIndex
        assert.deepStrictEqual(rebuilt, { checkpoints: 4, artifacts: 6, workers: 0, missing: [] })
        assert.deepStrictEqual(
          { rows: yield* rows, fts: yield* fts, list: yield* checkpoints.list({ includeConsumed: true }) },
          before
        )
        // The armed state came back with it.
        assert.strictEqual(Option.getOrThrow(yield* checkpoints.take("s-after")).checkpoint.id, armed)
      })
    )
  })
})
