/**
 * The log stays authoritative across archiving: for random event logs (the inbox properties'
 * event types and subjects, clocks out of id order across months), archived at random cuts (and
 * after a crash between writing the archive and deleting the rows), the archive + table read
 * back the original log, `trail log`'s windows equal the in-memory grouping of the original,
 * and the inbox folded from them equals the live inbox. A real SQLite file and real archive
 * files in a temp dir.
 */
import * as NodeContext from "@effect/platform-node/NodeContext"
import * as FileSystem from "@effect/platform/FileSystem"
import type * as SqlClient from "@effect/sql/SqlClient"
import { assert, describe, it } from "@effect/vitest"
import { emptyInbox, foldEvents, type SubjectType, toSnapshot, TrailEvent } from "@trail/domain"
import { Archive, Database, Events, Migrations } from "@trail/store"
import { Effect, FastCheck as fc, Layer, Stream } from "effect"
import { Timeline } from "../src/index.js"

const subjects: ReadonlyArray<[SubjectType, string]> = [
  ["worker", "w1"],
  ["worker", "w2"],
  ["session", "s1"],
  ["session", "s2"],
  ["checkpoint", "cp-1"]
]
const eventArb = fc.record({
  type: fc.constantFrom(
    "worker.spawned",
    "worker.needs_input",
    "worker.running",
    "worker.ready",
    "worker.failed",
    "worker.note",
    "session.started",
    "session.prompted",
    "session.stopped",
    "session.permission",
    "session.notified",
    "session.ended",
    "inbox.dismissed",
    "inbox.restored",
    "inbox.skipped"
  ),
  subject: fc.constantFrom(...subjects),
  pane: fc.constantFrom("%1", "%2", null),
  item: fc.integer({ min: 1, max: 40 }),
  // Minutes to a day and a half forward, or up to three days back: a late event from a slower clock.
  gap: fc.integer({ min: -3 * 1_440, max: 2_160 })
})

const DAY = 86_400_000
const START = Date.UTC(2026, 8, 25)

/** The events `raw` describe, with ids 1… and times that wander across month boundaries. */
const eventsOf = (raw: ReadonlyArray<typeof eventArb extends fc.Arbitrary<infer A> ? A : never>) => {
  let at = START
  return raw.map((r, i) => {
    at = Math.max(START - 5 * DAY, at + r.gap * 60_000)
    return new TrailEvent({
      id: i + 1,
      at,
      type: r.type,
      subject: { type: r.subject[0], id: r.subject[1] },
      data: { pane: r.pane, socket: "/tmp/tmux-0/default", question: "q", message: "é\nx", item: `i${r.item}` }
    })
  })
}

const json = (value: unknown) => JSON.parse(JSON.stringify(value)) as unknown

/** Runs `body` over a fresh migrated store in a temp dir holding `events`. */
const withLog = <A, E>(
  events: ReadonlyArray<TrailEvent>,
  body: (dir: string) => Effect.Effect<A, E, Database.Database | SqlClient.SqlClient>
) =>
  Effect.gen(function* () {
    const fs = yield* FileSystem.FileSystem
    const dir = yield* fs.makeTempDirectoryScoped({ prefix: "trail-archive-" })
    const ctx = yield* Layer.build(Database.layer({ filename: `${dir}/state.db` }))
    yield* Effect.provide(Migrations.migrate, ctx)
    const database = yield* Effect.provide(Database.Database, ctx)
    yield* database.immediate((db) => {
      for (const e of events) Events.append(db, e)
    })
    return yield* Effect.provide(body(`${dir}/${Archive.DIR}`), ctx)
  }).pipe(Effect.scoped, Effect.provide(NodeContext.layer))

/** Every event of the archive + table, in order. */
const readAll = (dir: string) => Stream.runCollect(Archive.events(dir)).pipe(Effect.map((c) => [...c].flat()))

/** The episodes of a window as `trail log` streams them, joined back into episodes. */
const streamed = (dir: string, window: Timeline.Window) =>
  Effect.gen(function* () {
    const out: Array<{ subject: unknown; events: Array<TrailEvent> }> = []
    yield* Timeline.stream(dir, window, (piece) =>
      Effect.sync(() => {
        if (piece.first) out.push({ subject: piece.subject, events: [...piece.events] })
        else out.at(-1)?.events.push(...piece.events)
      })
    )
    return out
  })

describe("the archived log", () => {
  it.effect(
    "reads back whole after archiving at random cuts (and a crash before the delete); log windows and the inbox fold agree",
    () =>
      Effect.promise(() =>
        fc.assert(
          fc.asyncProperty(
            fc.array(eventArb, { minLength: 1, maxLength: 50 }),
            fc.array(fc.nat(50), { minLength: 1, maxLength: 3 }),
            fc.boolean(),
            fc.nat(60),
            fc.nat(50),
            (raw, cuts, crash, limit, since) => {
              const events = eventsOf(raw)
              const live = toSnapshot(foldEvents(emptyInbox, events))
              const program = withLog(events, (dir) =>
                Effect.gen(function* () {
                  const database = yield* Database.Database
                  // The projections are current (gc brings them there first): the archive deletes what it copied.
                  yield* database.immediate((db) =>
                    db.run(`INSERT INTO inbox_state (id, last_event_id) VALUES (1, ?)`, events.length)
                  )
                  for (const cut of [...new Set(cuts.map((c) => Math.min(c, events.length)))].sort((a, b) => a - b)) {
                    const before = yield* database.read(Events.oldestId)
                    const archived = yield* Archive.archive(dir, cut)
                    if (crash && archived.archived_events > 0)
                      // The rows come back as if the delete had never run; the next run archives them again.
                      yield* database.immediate((db) => {
                        for (const e of events.filter((e) => e.id >= (before ?? 1) && e.id <= cut))
                          db.run(
                            `INSERT INTO events (id, at, type, subject_type, subject_id, data) VALUES (?, ?, ?, ?, ?, ?)`,
                            e.id,
                            e.at,
                            e.type,
                            e.subject.type,
                            e.subject.id,
                            JSON.stringify(e.data)
                          )
                      })
                  }
                  if (crash) yield* Archive.archive(dir, Math.max(...cuts.map((c) => Math.min(c, events.length))))

                  const all = yield* readAll(dir)
                  assert.deepStrictEqual(json(all), json(events))
                  const rebuilt = toSnapshot(
                    yield* Stream.runFold(Archive.events(dir), emptyInbox, (state, batch) => foldEvents(state, batch))
                  )
                  assert.deepStrictEqual(json(rebuilt), json(live))
                  // The same through SqlClient inside a store transaction, as a projection's rebuild reads it.
                  const inTransaction = yield* database.transaction(
                    Stream.runFold(Archive.eventsWith(Archive.sqlClient)(dir), emptyInbox, foldEvents)
                  )
                  assert.deepStrictEqual(json(toSnapshot(inTransaction)), json(live))

                  const whole = yield* Timeline.window(dir, {})
                  assert.deepStrictEqual(json(yield* streamed(dir, whole)), json(Timeline.episodes(events)))
                  const newest = yield* Timeline.window(dir, { limit: limit + 1 })
                  assert.deepStrictEqual(
                    json(yield* streamed(dir, newest)),
                    json(Timeline.episodes(events.slice(-(limit + 1))))
                  )
                  const after = yield* Timeline.window(dir, { since: { id: since } })
                  assert.deepStrictEqual(
                    json(yield* streamed(dir, after)),
                    json(Timeline.episodes(events.filter((e) => e.id > since)))
                  )
                  const at = events[Math.min(since, events.length - 1)]?.at ?? START
                  const fromTime = yield* Timeline.window(dir, { since: { at } })
                  const first = events.findIndex((e) => e.at >= at)
                  assert.deepStrictEqual(
                    json(yield* streamed(dir, fromTime)),
                    json(Timeline.episodes(events.slice(first)))
                  )
                })
              )
              return Effect.runPromise(program).then(() => true)
            }
          ),
          { numRuns: 20 }
        )
      ),
    120_000
  )
})
