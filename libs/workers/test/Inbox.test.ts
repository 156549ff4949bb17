/**
 * The Inbox service on a real SQLite file in a temp dir: events reach it through the Workers
 * service (the way a worker's `trail worker wait/done` does), and it folds them on every read.
 */
import { spawn } from "node:child_process"
import * as fs from "node:fs"
import { createRequire } from "node:module"
import * as NodeContext from "@effect/platform-node/NodeContext"
import * as SqlClient from "@effect/sql/SqlClient"
import { assert, describe, it } from "@effect/vitest"
import {
  attentionOrder,
  defaultConfig,
  emptyInbox,
  foldEvents,
  type InboxState,
  toSnapshot,
  type TrailConfig,
  WorkerResult
} from "@trail/domain"
import { Archive, Database, Events } from "@trail/store"
import { Chunk, Effect, FastCheck as fc, Layer, type Scope, Stream, TestClock } from "effect"
import * as Inbox from "../src/Inbox.js"
import * as InboxStore from "../src/InboxStore.js"
import * as Tmux from "../src/Tmux.js"
import * as Workers from "../src/Workers.js"
import { IDLE_KIND, trustedRoot, workersLayer } from "./helpers.js"

/** The items of a state in id order (the fold keeps them in a Map in update order). */
const byId = (state: InboxState) =>
  [...state.items.values()].sort((a, b) => Number(a.id.slice(1)) - Number(b.id.slice(1)))

/** Runs `body` against an Inbox and Workers over a fresh root (its temp dir removed afterwards). */
const inRoot = <A, E>(
  substrate: "process" | "tmux",
  body: Effect.Effect<
    A,
    E,
    Inbox.Inbox | Workers.Workers | Tmux.Tmux | SqlClient.SqlClient | Database.Database | Scope.Scope
  >
) =>
  Effect.gen(function* () {
    const root = yield* trustedRoot("trail-inbox-", { idle: IDLE_KIND })
    const config: TrailConfig = { ...defaultConfig, worker: { ...defaultConfig.worker, substrate } }
    const layer = Inbox.layer.pipe(Layer.provideMerge(workersLayer(root, config, `inbox-${substrate}`)))
    // Scoped inside the layer: the workers are killed while the database is still open.
    return yield* Effect.scoped(
      Effect.gen(function* () {
        const workers = yield* Workers.Workers
        const tmux = yield* Tmux.Tmux
        // Registered first, so it runs last: no worker and no tmux server outlives the test.
        yield* Effect.addFinalizer(() => tmux.killServer)
        yield* Effect.addFinalizer(() =>
          Effect.flatMap(Effect.orDie(workers.live), (live) =>
            Effect.forEach(live, (worker) => Effect.ignore(workers.kill(worker.id)), { discard: true })
          )
        )
        return yield* body
      })
    ).pipe(Effect.provide(layer))
  }).pipe(Effect.provide(NodeContext.layer))

/** Two idle workers, `one` then `two`, each waiting on a question (two `needs_input` items). */
/** The log's events, oldest first: every one, or one subject's. */
const logOf = (subject?: { readonly type: "worker" | "session"; readonly id: string }) =>
  Effect.flatMap(Database.Database, (database) =>
    database.read((db) =>
      subject === undefined
        ? Events.since(db, 0, Number.MAX_SAFE_INTEGER)
        : Events.ofSubject(db, subject.type, subject.id)
    )
  )

const twoWaiting = Effect.gen(function* () {
  const workers = yield* Workers.Workers
  const first = yield* workers.spawn({ text: "one", kind: "idle" })
  const second = yield* workers.spawn({ text: "two", kind: "idle" })
  yield* workers.wait(first.id, "first?")
  yield* workers.wait(second.id, "second?")
  return [first, second] as const
})

/** Random hook and inbox events over a few sessions and workers that share two tmux panes. */
const randomEvents = fc.array(
  fc.record({
    type: fc.constantFrom(
      "worker.spawned",
      "worker.needs_input",
      "worker.running",
      "worker.ready",
      "worker.told",
      "session.started",
      "session.prompted",
      "session.stopped",
      "session.permission",
      "session.notified",
      "session.ended",
      "session.gone",
      "inbox.dismissed",
      "inbox.restored",
      "inbox.skipped",
      "inbox.replied"
    ),
    subject: fc.constantFrom(
      ["worker", "w1"],
      ["worker", "w2"],
      ["session", "s1"],
      ["session", "s2"],
      ["session", "s3"]
    ),
    pane: fc.constantFrom("%1", "%2", null),
    item: fc.nat(30),
    gap: fc.integer({ min: 0, max: 3_000 }),
    /** Events appended after this one before the next catch-up. */
    cut: fc.boolean()
  }),
  { minLength: 1, maxLength: 40 }
)

/**
 * Appends one run of {@link randomEvents} (subjects and tmux server of its own, `data.item`
 * naming items of the run) after `at` (ms); catches up at each `cut` when `catchUp` is given.
 * Returns the time of its last event.
 */
const appendRun = (
  run: number,
  events: typeof randomEvents extends fc.Arbitrary<ReadonlyArray<infer E>> ? ReadonlyArray<E> : never,
  at: number,
  catchUp: Effect.Effect<void, unknown> | null
) =>
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const firstId =
      (yield* sql<{ readonly id: number }>`SELECT coalesce(max(id), 0) AS id FROM events`.pipe(Effect.orDie))[0]?.id ??
      0
    for (const event of events) {
      at += event.gap
      const data = {
        pane: event.pane,
        socket: `/tmp/tmux-${run}/default`,
        question: "q",
        message: "line one\n- a bullet",
        tool_name: "Bash",
        item: `i${firstId + event.item}`,
        until: at + 1_000,
        result: { outcome: "o", found: 1 }
      }
      yield* sql`INSERT INTO events (at, type, subject_type, subject_id, data)
        VALUES (${at}, ${event.type}, ${event.subject[0]}, ${`${event.subject[1]}-${run}`}, ${JSON.stringify(data)})`.pipe(
        Effect.orDie
      )
      if (event.cut && catchUp !== null) yield* Effect.orDie(catchUp)
    }
    return at
  })

/**
 * Another process holding the store's write lock (`BEGIN IMMEDIATE`) for the scope: it has
 * taken it when this succeeds, and lets it go when the scope closes.
 */
const lockHeldElsewhere = (file: string) =>
  Effect.acquireRelease(
    Effect.async<ReturnType<typeof spawn>>((resume) => {
      const script = `const Sqlite = require(process.argv[1]); const db = new Sqlite(process.argv[2]);
        db.exec("BEGIN IMMEDIATE"); process.stdout.write("locked\\n");
        process.stdin.on("end", () => { db.exec("ROLLBACK"); db.close() }); process.stdin.resume()`
      const child = spawn(
        process.execPath,
        ["-e", script, createRequire(import.meta.url).resolve("better-sqlite3"), file],
        {
          stdio: ["pipe", "pipe", "inherit"]
        }
      )
      child.stdout?.once("data", () => resume(Effect.succeed(child)))
    }),
    (child) =>
      Effect.async<void>((resume) => {
        child.on("close", () => resume(Effect.void))
        child.stdin?.end()
      })
  )

describe("Inbox", () => {
  it.scoped("a catch-up that loads only what new events touch arrives where a fold of the whole log does", () =>
    inRoot(
      "process",
      Effect.gen(function* () {
        const inbox = yield* Inbox.Inbox
        // Each run has its own subjects and tmux server, so runs share the store but nothing else.
        const runs = fc.sample(randomEvents, { numRuns: 25, seed: 14 })
        let at = 1_000
        for (const [run, events] of runs.entries()) {
          at = yield* appendRun(run, events, at, inbox.catchUp)
          yield* inbox.catchUp
        }
        const live = yield* inbox.snapshot
        const expected = foldEvents(emptyInbox, yield* logOf())
        assert.deepStrictEqual(toSnapshot(live), toSnapshot(expected))
        assert.isAbove(live.items.size, 0)
        // Read page by page (each page continues from the last row's rank, since and event id),
        // the items are one read's, in its order.
        const all = yield* inbox.items()
        assert.isAbove(all.length, 6)
        const paged = yield* Stream.runCollect(inbox.pages(3))
        assert.deepStrictEqual(Chunk.toReadonlyArray(paged).flat(), all)
        yield* inbox.rebuild
        assert.deepStrictEqual(toSnapshot(yield* inbox.snapshot), toSnapshot(expected))
      })
    )
  )

  it.scoped("a fold from nothing that finds part of the log archived folds the archive too (it never skips it)", () =>
    inRoot(
      "process",
      Effect.gen(function* () {
        const inbox = yield* Inbox.Inbox
        const database = yield* Database.Database
        for (const [run, events] of fc.sample(randomEvents, { numRuns: 8, seed: 41 }).entries())
          yield* appendRun(run, events, 1_000 * run, null)
        const log = yield* logOf()
        const expected = foldEvents(emptyInbox, log)
        assert.isAbove(expected.items.size, 0)
        // The projection is current, so the archive deletes what it copies.
        yield* inbox.catchUp
        const cut = Math.ceil(log.length / 2)
        yield* Archive.archive(Archive.dirOf(database.filename), cut)
        assert.strictEqual(yield* database.read(Events.oldestId), cut + 1)
        // A rebuild that looked for archive files before they were written stores the empty
        // projection after the rows were deleted: its catch-up must not start at the table's oldest row.
        yield* database.immediate(InboxStore.clear)
        // A read that shows the tail without folding it for good does not show it either.
        const tail = yield* database.snapshot((db) =>
          InboxStore.pageWithTail(db, { now: 0, limit: 100, filter: "" }, 1_000)
        )
        assert.isNull(tail)
        yield* inbox.catchUp
        assert.deepStrictEqual(toSnapshot(yield* inbox.snapshot), toSnapshot(expected))
      })
    )
  )

  it.scopedLive(
    "events in neither the table nor the archive (its folder removed) are lost, not looked for again and again",
    () =>
      inRoot(
        "process",
        Effect.gen(function* () {
          const inbox = yield* Inbox.Inbox
          const database = yield* Database.Database
          const [events = []] = fc.sample(randomEvents, { numRuns: 1, seed: 5 })
          yield* appendRun(0, events, 1_000, null)
          yield* inbox.catchUp
          const latest = yield* database.read(Events.latestId)
          const dir = Archive.dirOf(database.filename)
          yield* Archive.archive(dir, latest)
          assert.strictEqual(yield* database.read(Events.oldestId), undefined)
          fs.rmSync(dir, { recursive: true })
          yield* inbox.rebuild.pipe(
            Effect.timeoutFail({ duration: "20 seconds", onTimeout: () => new Error("the rebuild never ended") })
          )
          const after = yield* inbox.snapshot
          assert.strictEqual(after.last, latest)
          assert.strictEqual(after.items.size, 0)
          // What comes next is folded as usual.
          const [more = []] = fc.sample(randomEvents, { numRuns: 1, seed: 6 })
          yield* appendRun(1, more, 100_000, null)
          const log = yield* logOf()
          assert.deepStrictEqual(
            toSnapshot(yield* inbox.snapshot),
            toSnapshot(foldEvents({ ...emptyInbox, last: latest }, log))
          )
        })
      )
  )

  it.scoped(
    "while another process holds the write lock, a read folds the new events in memory: the items a full fold shows, nothing written",
    () =>
      inRoot(
        "process",
        Effect.gen(function* () {
          const inbox = yield* Inbox.Inbox
          const sql = yield* SqlClient.SqlClient
          const database = yield* Database.Database
          const runs = fc.sample(randomEvents, { numRuns: 12, seed: 41 })
          let at = 1_000
          for (const [run, events] of runs.entries()) {
            // The last runs stay unfolded: the tail a reader finds while the lock is held.
            at = yield* appendRun(run, events, at, run < 8 ? inbox.catchUp : null)
            if (run < 8) yield* inbox.catchUp
          }
          // Some items cooling down after a skip, some back.
          yield* TestClock.setTime(at - 2_000)
          const storedLast = sql<{
            readonly last: number
          }>`SELECT last_event_id AS last FROM inbox_state`.pipe(
            Effect.map((rows) => rows[0]?.last),
            Effect.orDie
          )
          const folded = yield* storedLast
          const queries = [
            {},
            { limit: 3 },
            { limit: 1 },
            { filter: "S2" },
            { filter: "permission", limit: 2 },
            { filter: "w1-1" }
          ]
          const whileLocked = yield* Effect.scoped(
            Effect.zipRight(
              lockHeldElsewhere(database.filename),
              Effect.forEach(queries, (query) => inbox.items(query))
            )
          )
          // Nothing was written meanwhile (the lock was held), yet the tail's items are shown.
          assert.strictEqual(yield* storedLast, folded)
          const all = whileLocked[0] ?? []
          assert.isTrue(all.some((item) => Number(item.id.slice(1)) > (folded ?? 0)))
          const expected = attentionOrder(foldEvents(emptyInbox, yield* logOf()), at - 2_000)
          assert.deepStrictEqual(all, expected)
          // The lock free, the same reads fold for good and read the stored rows: the same pages.
          const afterwards = yield* Effect.forEach(queries, (query) => inbox.items(query))
          assert.notStrictEqual(yield* storedLast, folded)
          assert.deepStrictEqual(whileLocked, afterwards)
          assert.isAbove(afterwards.filter((page) => page.length > 0).length, 3)
        })
      )
  )

  it.scoped(
    "a read folds for good once: an event committed while it folds is shown from the tail, not by a second fold",
    () =>
      inRoot(
        "process",
        Effect.gen(function* () {
          const inbox = yield* Inbox.Inbox
          const database = yield* Database.Database
          const stopped = (id: string, at: number) =>
            database.immediate((db) =>
              Events.append(db, {
                at,
                type: "session.stopped",
                subject: { type: "session", id },
                data: { pane: null, socket: null, cwd: null, transcript_path: null, agent: null, message: `${id} done` }
              })
            )
          yield* stopped("first", 1_000)
          assert.deepStrictEqual(
            (yield* inbox.items()).map((item) => item.subject.id),
            ["first"]
          )
          // Another writer's commit while the read's fold holds the lock, made deterministic: this
          // connection's fold writes `last_event_id`, and a temporary trigger counts each fold and
          // appends an event at the first (in the fold's transaction, after it read the events).
          yield* database.exec(`CREATE TEMP TABLE folds (last INTEGER)`)
          yield* database.exec(`CREATE TEMP TRIGGER fold_counted AFTER UPDATE OF last_event_id ON main.inbox_state
            BEGIN
              INSERT INTO temp.folds VALUES (NEW.last_event_id);
              INSERT INTO main.events (at, type, subject_type, subject_id, data)
                SELECT 3000, 'session.stopped', 'session', 'late', '{"message":"late done"}'
                WHERE (SELECT count(*) FROM temp.folds) = 1;
            END`)
          yield* stopped("second", 2_000)
          const shown = (yield* inbox.items()).map((item) => item.subject.id)
          assert.deepStrictEqual([...shown].sort(), ["first", "late", "second"])
          // One fold for good (a second would have tried the lock again); the late event is not folded yet.
          assert.strictEqual(yield* database.read((db) => db.pluck(`SELECT count(*) FROM temp.folds`)), 1)
          assert.isBelow(
            Number(yield* database.read((db) => db.pluck(`SELECT last_event_id FROM inbox_state`))),
            Number(yield* database.read((db) => db.pluck(`SELECT max(id) FROM events`)))
          )
        })
      )
  )

  it.scoped("folds the events it has not seen on every read, with no supervisor running", () =>
    inRoot(
      "process",
      Effect.gen(function* () {
        const inbox = yield* Inbox.Inbox
        const workers = yield* Workers.Workers
        assert.deepStrictEqual(yield* inbox.items(), [])
        const worker = yield* workers.spawn({ text: "look", kind: "idle" })
        yield* workers.wait(worker.id, "which folder?")
        const [asked] = yield* inbox.items()
        assert.strictEqual(asked?.kind, "needs_input")
        assert.deepStrictEqual(asked?.subject, { type: "worker", id: worker.id })
        assert.include(asked?.headline ?? "", "which folder?")

        // The next read sees the worker's report without anything else folding it in.
        const result = new WorkerResult({ outcome: "fixed", summary: "s", evidence: ["e"], recommend: [], found: 1 })
        const ready = yield* workers.done(worker.id, result)
        yield* workers.stopProgram(ready, 100) // a finished worker is no longer live: its program is ended here
        const after = yield* inbox.snapshot
        const log = yield* logOf()
        assert.strictEqual(after.last, log.at(-1)?.id)
        const items = [...after.items.values()]
        assert.deepStrictEqual(
          items.map((item) => [item.kind, item.subject.id]),
          [["ready", worker.id]]
        )
        assert.strictEqual((yield* inbox.find(worker.id)).id, items[0]?.id)
      })
    )
  )

  it.scoped("rebuild folds the whole log again and arrives where reading did", () =>
    inRoot(
      "process",
      Effect.gen(function* () {
        const inbox = yield* Inbox.Inbox
        const [first, second] = yield* twoWaiting
        yield* inbox.dismiss(first.id)
        const read = yield* inbox.snapshot
        yield* inbox.rebuild
        const rebuilt = yield* inbox.snapshot
        assert.strictEqual(rebuilt.last, read.last)
        assert.deepStrictEqual(
          byId(rebuilt).map((item) => [item.id, item.kind, item.dismissed]),
          byId(read).map((item) => [item.id, item.kind, item.dismissed])
        )
        assert.deepStrictEqual(
          byId(rebuilt).map((item) => [item.subject.id, item.dismissed]),
          [
            [first.id, true],
            [second.id, false]
          ]
        )
        // And what is stored afterwards is the rebuilt state.
        assert.deepStrictEqual(
          (yield* inbox.items()).map((item) => item.subject.id),
          [second.id]
        )
      })
    )
  )

  it.scoped("a stored inbox that cannot be read back (another version wrote it) is rebuilt from the log", () =>
    inRoot(
      "process",
      Effect.gen(function* () {
        const inbox = yield* Inbox.Inbox
        const [first] = yield* twoWaiting
        yield* inbox.dismiss(first.id)
        const read = yield* inbox.snapshot
        const sql = yield* SqlClient.SqlClient
        yield* sql`UPDATE inbox_items SET item = ${"{not json"}`.pipe(Effect.orDie)
        const again = yield* inbox.snapshot
        assert.strictEqual(again.last, read.last)
        assert.deepStrictEqual(
          byId(again).map((item) => [item.id, item.subject.id, item.dismissed]),
          byId(read).map((item) => [item.id, item.subject.id, item.dismissed])
        )
        // What is stored now reads back.
        const stored = yield* sql<{
          readonly event_id: number
          readonly item: string
        }>`SELECT event_id, item FROM inbox_items ORDER BY event_id`.pipe(Effect.orDie)
        assert.deepStrictEqual(
          stored.map((row) => [`i${row.event_id}`, JSON.parse(row.item).provenance]),
          byId(read).map((item) => [item.id, item.provenance])
        )
      })
    )
  )

  it.scoped("rows an earlier trail wrote (the whole item or session as JSON in its column) read back as they are", () =>
    inRoot(
      "process",
      Effect.gen(function* () {
        const inbox = yield* Inbox.Inbox
        const sql = yield* SqlClient.SqlClient
        const data = { pane: "%7", socket: "/tmp/tmux-old/default", cwd: "/w", message: "done\n- a bullet" }
        for (const type of ["session.started", "session.stopped"])
          yield* sql`INSERT INTO events (at, type, subject_type, subject_id, data)
            VALUES (${1_000}, ${type}, 'session', 'old-session', ${JSON.stringify(data)})`.pipe(Effect.orDie)
        const read = yield* inbox.snapshot
        const [item] = [...read.items.values()]
        const session = read.sessions.get("old-session")
        assert.isDefined(item)
        assert.isDefined(session)
        // The earlier form, with a provenance a rebuild would not make: reading it must not rebuild.
        const old = { ...item, provenance: "written by an earlier trail" }
        yield* sql`UPDATE inbox_items SET item = ${JSON.stringify(old)}`.pipe(Effect.orDie)
        yield* sql`UPDATE inbox_sessions SET session = ${JSON.stringify({ ...session, cwd: "/earlier" })}`.pipe(
          Effect.orDie
        )
        const again = yield* inbox.snapshot
        assert.deepStrictEqual([...again.items.values()], [old])
        assert.deepStrictEqual([...again.sessions.values()], [{ ...session, cwd: "/earlier" }])
        assert.strictEqual(again.last, read.last)
      })
    )
  )

  it.scoped("dismiss, skip and restore are events the fold applies; a skipped item waits at the back", () =>
    inRoot(
      "process",
      Effect.gen(function* () {
        const inbox = yield* Inbox.Inbox
        const [first, second] = yield* twoWaiting
        const order = () => Effect.map(inbox.items(), (items) => items.map((item) => item.subject.id))
        assert.deepStrictEqual(yield* order(), [first.id, second.id])

        // A plain process has no terminal to type into: the reply fails, nothing is recorded, the item stays.
        const refused = yield* Effect.flip(inbox.reply(first.id, "src/api"))
        assert.strictEqual(refused._tag, "SubstrateError")
        assert.deepStrictEqual(yield* order(), [first.id, second.id])

        const skipped = yield* inbox.skip(first.id, 60_000)
        assert.strictEqual(skipped.skipped_until, 60_000) // TestClock: now is 0
        assert.deepStrictEqual(yield* order(), [second.id, first.id])

        const dismissed = yield* inbox.dismiss(second.id)
        assert.isTrue(dismissed.dismissed)
        assert.deepStrictEqual(yield* order(), [first.id])

        const restored = yield* inbox.restore(second.id)
        assert.isFalse(restored.dismissed)
        assert.deepStrictEqual(yield* order(), [second.id, first.id])

        const types = (yield* logOf()).map((event) => event.type).filter((type) => type.startsWith("inbox."))
        assert.deepStrictEqual(types, ["inbox.skipped", "inbox.dismissed", "inbox.restored"])
        const missing = yield* Effect.flip(inbox.dismiss("i999"))
        assert.strictEqual(missing._tag, "ItemNotFound")
      })
    )
  )

  it.scoped("a reply is typed into the worker's window, answers the item and is recorded", () =>
    inRoot(
      "tmux",
      Effect.gen(function* () {
        const inbox = yield* Inbox.Inbox
        const workers = yield* Workers.Workers
        const worker = yield* workers.spawn({ text: "look", kind: "idle" })
        yield* workers.wait(worker.id, "which folder?")
        const item = yield* inbox.find(worker.id)

        const answered = yield* inbox.reply(worker.id, "src/api")
        assert.strictEqual(answered.id, item.id)
        assert.deepStrictEqual(yield* inbox.items(), [])
        const events = yield* logOf({ type: "worker", id: worker.id })
        const replied = events.find((event) => event.type === "inbox.replied")
        assert.deepStrictEqual(replied?.data, { item: item.id, length: "src/api".length })
        assert.deepStrictEqual(events.map((event) => event.type).slice(-3), [
          "worker.told",
          "worker.running",
          "inbox.replied"
        ])
        assert.strictEqual((yield* workers.get(worker.id)).state, "running")
      })
    )
  )
})
