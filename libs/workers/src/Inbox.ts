/**
 * The inbox as a service (SPEC §3): the pure fold of `@trail/domain` kept in the store
 * (InboxStore: `inbox_items`, `inbox_sessions`, … and the id of the last event folded). Every read
 * first folds the events it has not seen, loading only what they touch, so the inbox is right
 * with or without a supervisor; `rebuild` folds the whole log again from nothing.
 *
 * Acting on an item appends an `inbox.*` event (never edits the projection directly), so the
 * log stays the only truth. `reply` types what the human wrote — and only that — into the item's
 * pane: a session's tmux pane (`tmux -S <socket> send-keys -l`, then Enter), or a worker's window.
 *
 * Safe delivery (SPEC §3): before a byte reaches a session's pane, the pane's foreground job
 * must still be the agent its hooks ran under (same pid and start time, /proc); otherwise the
 * reply is refused with PaneChanged and the session is dropped (`session.gone`). A reply to a
 * `permission` item first presses Escape (Claude Code then rejects the tool), so free text never
 * approves; `decide` presses the dialog's own keys ({@link PERMISSION_KEYS}), into a session's
 * pane only while the session still waits on that request, or into a worker's own window.
 *
 * Errors: ItemNotFound, PaneChanged, SubstrateError (`gone`: the pane no longer exists, or the
 * session was never in tmux; the item stays), UsageError (`decide` on an item that is not a
 * permission request, or a stale one), StoreError.
 */
import {
  beginFold,
  emptyInbox,
  finish,
  foldInto,
  type InboxState,
  ItemNotFound,
  type NewEvent,
  PaneChanged,
  type ReviewItem,
  type Session,
  SHELLS,
  StoreError,
  SubstrateError,
  type TrailEvent,
  UsageError,
  WorkerNotFound,
  WorkerId
} from "@trail/domain"
import * as SqlClient from "@effect/sql/SqlClient"
import { Archive, Database as Db, Events } from "@trail/store"
import { Clock, Context, Effect, Either, Layer, Option, Schema, Stream } from "effect"
import * as Hooks from "./Hooks.js"
import * as InboxStore from "./InboxStore.js"
import { denyThenType, PERMISSION_KEYS, type PermissionAction } from "./Permission.js"
import { wallClockSleep } from "./Processes.js"
import * as Tmux from "./Tmux.js"
import { Workers, type WorkersError } from "./Workers.js"

/** An item's worker subject as a worker id; not one (a row trail did not write) is no worker. */
const workerIdOf = (id: string): Effect.Effect<WorkerId, WorkerNotFound> =>
  Schema.is(WorkerId)(id) ? Effect.succeed(id) : Effect.fail(new WorkerNotFound({ id }))

export interface InboxShape {
  /**
   * Folds every appended event not folded yet into the stored projection: O(new events), one
   * transaction per batch that loads only what its events touch. Every read below does it first.
   */
  readonly catchUp: Effect.Effect<void, StoreError>
  /** The whole caught-up projection in memory: O(items + sessions), for tests and small stores. */
  readonly snapshot: Effect.Effect<InboxState, StoreError>
  /**
   * Folds the whole event log again from nothing, in batches, interruptible between them: into
   * the store, one transaction per batch (an interruption keeps the batches folded; the next read
   * goes on), or, when part of the log is archived, in memory, replacing the stored projection in
   * one transaction.
   */
  readonly rebuild: Effect.Effect<void, StoreError>
  /**
   * Visible items, most stuck first (SPEC §3 "Order"): at most `limit` (default all), whose
   * headline, subject id or kind contains `filter` (ASCII case-insensitive). Read in attention
   * order through an index: the cost follows `limit`, not the size of the inbox.
   */
  readonly items: (options?: {
    readonly limit?: number
    readonly filter?: string
  }) => Effect.Effect<ReadonlyArray<ReviewItem>, StoreError>
  /** How many items are visible (and contain `filter`, as {@link items}). */
  readonly count: (filter?: string) => Effect.Effect<number, StoreError>
  /** Every visible item in attention order, `size` at a time (bounded memory for a long inbox). */
  readonly pages: (size: number) => Stream.Stream<ReadonlyArray<ReviewItem>, StoreError>
  /** The item an ITEM argument names (item id, worker id or session id). */
  readonly find: (ref: string) => Effect.Effect<ReviewItem, ItemNotFound | StoreError>
  readonly dismiss: (ref: string) => Effect.Effect<ReviewItem, ItemNotFound | StoreError>
  readonly restore: (ref: string) => Effect.Effect<ReviewItem, ItemNotFound | StoreError>
  /** To the back of the inbox for `cooldownMs` (default 30 s). */
  readonly skip: (ref: string, cooldownMs?: number) => Effect.Effect<ReviewItem, ItemNotFound | StoreError>
  /**
   * Types `text` into the item's pane literally, then Enter; the item is answered. On a
   * permission item, Escape first: the tool is rejected and the text is the next message.
   */
  readonly reply: (ref: string, text: string) => Effect.Effect<ReviewItem, ReplyError>
  /** Answers a permission item with the dialog's own keys; the item is answered. */
  readonly decide: (ref: string, action: PermissionAction) => Effect.Effect<ReviewItem, ReplyError | UsageError>
  /**
   * Drops sessions whose tmux pane no longer exists or no longer runs their agent (appends
   * `session.gone`). Returns their ids.
   */
  readonly reconcile: Effect.Effect<ReadonlyArray<string>, StoreError>
  /** The session with its pane, or a `gone` SubstrateError saying why it cannot be reached. */
  readonly paneOf: (
    sessionId: string
  ) => Effect.Effect<
    { readonly pane: string; readonly socket: string; readonly session: Session },
    SubstrateError | StoreError
  >
}

export class Inbox extends Context.Tag("@trail/workers/Inbox")<Inbox, InboxShape>() {}

export type ReplyError = ItemNotFound | PaneChanged | SubstrateError | StoreError | WorkersError | WorkerNotFound

export { PERMISSION_ACTIONS, PERMISSION_KEYS, type PermissionAction } from "./Permission.js"

/**
 * Why `session`'s pane no longer runs its agent, or null when it does. `panePid` and `command`
 * are tmux's `#{pane_pid}` and `#{pane_current_command}`. With /proc: the foreground process
 * group of the pane's terminal must be led by the very process the hooks recorded (pid and
 * start time). Without it: the pane's current command must not be a shell.
 */
export const agentChange = (session: Session, panePid: number, command: string): string | null => {
  const pane = Hooks.procStat(panePid)
  if (pane === null) return SHELLS.has(command) ? `a shell (${command}) is in the foreground` : null
  if (session.agent === null) return "its hooks did not record the agent's process"
  const agent = Hooks.procStat(session.agent.pid)
  if (agent === null || agent.start !== session.agent.start) return `the agent (pid ${session.agent.pid}) has exited`
  if (pane.tpgid !== session.agent.pid)
    return `${command} is in the foreground, not the agent (pid ${session.agent.pid})`
  return null
}

const PANE_FORMAT = "#{pane_id}\t#{pane_pid}\t#{pane_current_command}"

export const SKIP_COOLDOWN_MS = 30_000

/** How many times a rebuild reads the log again when an archive moved it meanwhile. */
const REBUILD_ATTEMPTS = 3

/** Events folded per transaction of a catch-up, and read per batch of a rebuild. */
const BATCH = 5_000

/**
 * The waits (wall-clock ms: the lock is held by other processes, whose progress is not on our
 * Clock) between a catch-up's tries of the write lock without blocking; after the last one it
 * waits in SQLite's busy handler ({@link Db.BUSY_TIMEOUT_MS}). That handler sleeps in the thread
 * (the event loop stops) and is not fair: among 50 hook processes appending 1,000 events a
 * second, a reader waiting in it got the lock 2 to 65 times in 20 s (docs/benchmarks.md).
 */
const LOCK_WAITS_MS = [1, 2, 4, 8, 16, 32, 64] as const

/** The waits (ms) between a read's tries of the write lock before it folds the new events in memory. */
const READ_LOCK_WAITS_MS = [1, 2] as const

/**
 * The most events {@link InboxShape.items} folds in memory over the stored rows (the ones its
 * own fold did not take: the write lock was busy, or they were committed after it; each read
 * folds them again); a longer tail is folded for good (waiting for the lock) first.
 */
const MAX_TAIL = 1_000

/**
 * One turn of the event loop: a rebuild yields it between batches so that SIGINT/SIGTERM (and
 * any I/O) are handled while it folds, and its interruption takes effect there.
 */
const nextTurn = Effect.async<void>((resume) => {
  const handle = setImmediate(() => resume(Effect.void))
  return Effect.sync(() => clearImmediate(handle))
})

/** `work` with a stored row this version cannot read ({@link InboxStore.Unreadable}) as a Left. */
const readable =
  <A>(work: (db: Db.Connection) => A) =>
  (db: Db.Connection): Either.Either<A, InboxStore.Unreadable> => {
    try {
      return Either.right(work(db))
    } catch (error) {
      if (error instanceof InboxStore.Unreadable) return Either.left(error)
      throw error
    }
  }

export const make = Effect.gen(function* () {
  const database = yield* Db.Database
  const workers = yield* Workers
  const sql = yield* SqlClient.SqlClient
  const withSql = <A, E>(effect: Effect.Effect<A, E, SqlClient.SqlClient>) =>
    Effect.provideService(effect, SqlClient.SqlClient, sql)

  /**
   * The event log as batches of at most BATCH events, oldest first, read outside any transaction
   * (events are only appended, in id order): the one source a rebuild folds. The archive's events
   * (`trail gc --archive-before`), then the table's.
   */
  const archiveDir = Archive.dirOf(database.filename)
  const logBatches: Stream.Stream<ReadonlyArray<TrailEvent>, StoreError> = Archive.events(archiveDir).pipe(
    Stream.provideService(Db.Database, database)
  )

  /**
   * Folds the whole log from nothing in memory (one draft, batch after batch, interruptible
   * between them), then replaces the stored projection in one transaction: an interrupted fold
   * leaves the old one. `whenUnstored`: keep a projection another process stored meanwhile.
   * Memory grows with the open items (~480 MB for 250,000 of them, docs/benchmarks.md), so this
   * is only for a log part of which is archived, which the table no longer holds ({@link refold}).
   * An archive (`trail gc --archive-before`) that deletes rows while the log is read can make the
   * read skip them: the transaction then finds the table's oldest id moved, stores nothing and
   * folds again (at most {@link REBUILD_ATTEMPTS} times, then a `busy` StoreError).
   */
  const foldInMemory = (whenUnstored: boolean, attempt = 1): Effect.Effect<void, StoreError> =>
    Effect.gen(function* () {
      const { latest, oldest } = yield* database.read((db) => ({
        latest: Events.latestId(db),
        oldest: Events.oldestId(db)
      }))
      const draft = beginFold(emptyInbox, { track: false })
      yield* Stream.runForEach(logBatches, (events) =>
        Effect.zipRight(
          Effect.sync(() => foldInto(draft, events)),
          nextTurn
        )
      )
      const folded = finish(draft)
      // Events in neither the archive nor the table (an archive folder removed, a store copied
      // without it) are lost: the projection goes on after them, or every catch-up would find them
      // missing (`archived`) and fold again.
      const state = { ...folded, last: Math.max(folded.last, oldest === undefined ? latest : oldest - 1) }
      const stored = yield* database.immediate((db) => {
        if (Events.oldestId(db) !== oldest) return false
        if (!whenUnstored || InboxStore.lastFolded(db) === null) InboxStore.replaceAll(db, state)
        return true
      })
      if (stored) return
      if (attempt >= REBUILD_ATTEMPTS)
        return yield* new StoreError({
          reason: "busy",
          detail: `the inbox rebuild read the event log ${attempt} times while an archive moved it; run it again`
        })
      yield* foldInMemory(whenUnstored, attempt + 1)
    })

  /**
   * Starts the projection again from nothing (`whenUnstored`: only when none is stored, keeping
   * one another process stored meanwhile); {@link catchUp} then folds the log into it. Without an
   * archive, the empty projection is stored and the catch-up folds the log into the store batch
   * after batch, each batch one transaction that loads only what its events touch: memory stays
   * that of a batch whatever the number of open items (~130 MB for the 1,000,000 events of
   * docs/benchmarks.md's inbox-scale, against ~480 MB in memory, in the same time), the write
   * lock is held one batch at a time, and an interrupted fold keeps the batches it folded (the
   * next read goes on from there). With an archive the log is folded in memory
   * ({@link foldInMemory}): the catch-up reads the table only.
   */
  const refold = (whenUnstored: boolean): Effect.Effect<void, StoreError> =>
    Effect.gen(function* () {
      if ((yield* Archive.files(archiveDir)).length > 0) return yield* foldInMemory(whenUnstored)
      yield* database.immediate((db) => {
        if (!whenUnstored || InboxStore.lastFolded(db) === null) InboxStore.clear(db)
      })
    })

  /**
   * Folds the events the stored projection has not seen, one transaction per BATCH (each loads
   * only what its events touch); starts from nothing when nothing (readable) is stored, and folds
   * the whole log in memory when the events it needs next were archived. Cheap when there is
   * nothing to fold: two O(1) reads.
   */
  const catchUp: Effect.Effect<void, StoreError> = Effect.gen(function* () {
    const step = yield* foldForGood(LOCK_WAITS_MS, true)
    if (step === "unstored") return yield* refold(true).pipe(Effect.zipRight(catchUp))
    if (step === "unreadable") return yield* refold(false).pipe(Effect.zipRight(catchUp))
    if (step === "archived") return yield* nextTurn.pipe(Effect.zipRight(foldInMemory(false)), Effect.zipRight(catchUp))
  })

  const rebuild = Effect.zipRight(refold(false), catchUp)

  /**
   * Folds for good the events the stored projection has not seen, one transaction per BATCH,
   * trying the write lock without blocking, `waits` (ms) apart; after the last wait it blocks in
   * SQLite's busy handler when `block`, else gives up: `busy` (events may wait). `unstored` /
   * `unreadable`: no readable projection is stored; `archived`: the events it needs next were
   * archived (the caller folds again from nothing).
   */
  const foldForGood = (
    waits: ReadonlyArray<number>,
    block: boolean
  ): Effect.Effect<"done" | "busy" | InboxStore.CatchUp | "unreadable", StoreError> =>
    Effect.gen(function* () {
      const fresh = yield* database.read((db) => InboxStore.lastFolded(db) === Events.latestId(db))
      if (fresh) return "done"
      const batch = readable((db) => InboxStore.catchUpBatch(db, BATCH))
      for (let busy = 0; ;) {
        const step =
          busy >= waits.length && block
            ? Option.some(yield* database.immediate(batch))
            : yield* database.tryImmediate(batch)
        if (Option.isNone(step)) {
          const wait = waits[busy]
          if (wait === undefined) return "busy"
          busy += 1
          yield* wallClockSleep(wait)
          continue
        }
        busy = 0
        if (Either.isLeft(step.value)) return "unreadable"
        if (step.value.right !== "more") return step.value.right
        yield* nextTurn
      }
    })

  /** `work` on the caught-up projection; a row it cannot read back makes it rebuild, then read again. */
  const reading = <A>(work: (db: Db.Connection) => A): Effect.Effect<A, StoreError> =>
    Effect.gen(function* () {
      yield* catchUp
      const read = yield* database.read(readable(work))
      if (Either.isRight(read)) return read.right
      yield* rebuild
      return yield* database.read(work)
    })

  const find = (ref: string) =>
    Effect.flatMap(
      reading((db) => InboxStore.find(db, ref)),
      (item) => (item === undefined ? Effect.fail(new ItemNotFound({ ref })) : Effect.succeed(item))
    )

  const appendEvent = (event: NewEvent) => database.transaction(withSql(Events.appendSql(event)))

  /** Appends an `inbox.*` event about `item`, then returns the item as the fold now has it. */
  const act = (item: ReviewItem, type: string, data: Record<string, unknown>) =>
    Effect.gen(function* () {
      const at = yield* Clock.currentTimeMillis
      yield* appendEvent({ at, type, subject: item.subject, data: { item: item.id, ...data } })
      return (yield* reading((db) => InboxStore.itemById(db, item.id))) ?? item
    })

  /**
   * The first page, fresh without waiting for the write lock: what is new is folded for good
   * when the lock is free; then one read transaction takes the stored rows with the events
   * committed after the stored `last_event_id` folded in memory over them
   * (InboxStore.pageWithTail: the same items, written later). So the events another process
   * committed meanwhile (while this fold ran, or while it held the lock) are shown by this read
   * without a second fold for good, which tried the lock again (up to 127 ms of waits, then
   * SQLite's busy handler): under a stream of hook events there nearly always were some
   * (docs/benchmarks.md, hook-rate). A long tail, or no readable projection, is folded for good
   * first ({@link reading}).
   */
  const items = (options: { readonly limit?: number; readonly filter?: string } = {}) =>
    Effect.gen(function* () {
      const now = yield* Clock.currentTimeMillis
      const query = { now, limit: options.limit ?? Number.MAX_SAFE_INTEGER, filter: options.filter ?? "" }
      const step = yield* foldForGood(READ_LOCK_WAITS_MS, false)
      if (step === "done" || step === "busy") {
        const read = yield* database.snapshot(readable((db) => InboxStore.pageWithTail(db, query, MAX_TAIL)))
        if (Either.isRight(read) && read.right !== null) return read.right
      }
      return yield* reading((db) => InboxStore.page(db, { ...query, cursor: null }).items)
    })

  const start: InboxStore.Cursor | null = null
  const pages = (size: number): Stream.Stream<ReadonlyArray<ReviewItem>, StoreError> =>
    Stream.unwrap(
      Effect.map(Effect.zipRight(catchUp, Clock.currentTimeMillis), (now) =>
        Stream.paginateEffect(start, (cursor: InboxStore.Cursor | null) =>
          Effect.map(
            database.read((db) => InboxStore.page(db, { now, limit: size, filter: "", cursor })),
            ({ items, next }) => [items, Option.fromNullable(next)] as const
          )
        )
      )
    )

  const paneOf = (sessionId: string) =>
    Effect.flatMap(
      reading((db) => InboxStore.session(db, sessionId)),
      (session) => {
        if (session === undefined || session.pane === null || session.socket === null)
          return Effect.fail(
            new SubstrateError({
              substrate: "tmux",
              reason: "gone",
              detail:
                session === undefined
                  ? `session ${sessionId} has ended`
                  : `session ${sessionId} has no tmux pane (it was not started inside tmux, or its pane now belongs to another session): trail cannot type into it`
            })
          )
        return Effect.succeed({ pane: session.pane, socket: session.socket, session })
      }
    )

  /** Appends `session.gone` for `ids` with `reason`. */
  const markGone = (ids: ReadonlyArray<string>, reason: string) =>
    Effect.gen(function* () {
      if (ids.length === 0) return
      const at = yield* Clock.currentTimeMillis
      yield* database.transaction(
        Effect.forEach(
          ids,
          (id) =>
            withSql(Events.appendSql({ at, type: "session.gone", subject: { type: "session", id }, data: { reason } })),
          { discard: true }
        )
      )
    })

  const goneError = (sessionId: string, pane: string) => (error: Tmux.TmuxError) =>
    new SubstrateError({
      substrate: "tmux",
      reason: error.reason === "missing" ? "missing" : "gone",
      detail:
        error.reason === "missing"
          ? error.message
          : `the pane ${pane} of session ${sessionId} is gone (${error.detail}); the item stays`
    })

  /**
   * Runs `deliver` on the session's pane only while the pane's foreground is still the session's
   * agent; otherwise drops the session (`session.gone`) and fails with PaneChanged.
   */
  const intoAgentPane = (
    sessionId: string,
    deliver: (server: Tmux.Server, pane: string) => Effect.Effect<void, Tmux.TmuxError>
  ) =>
    Effect.gen(function* () {
      const { pane, session, socket } = yield* paneOf(sessionId)
      const server = { path: socket }
      const [panePid, command] = (yield* Tmux.run(server, "display-message", [
        "display-message",
        "-p",
        "-t",
        pane,
        "#{pane_pid}\t#{pane_current_command}"
      ]).pipe(Effect.mapError(goneError(sessionId, pane))))
        .trim()
        .split("\t")
      const changed = agentChange(session, Number(panePid), command ?? "")
      if (changed !== null) {
        yield* markGone([sessionId], `its pane no longer runs its agent: ${changed}`)
        return yield* new PaneChanged({ session: sessionId, pane, detail: changed })
      }
      yield* deliver(server, pane).pipe(Effect.mapError(goneError(sessionId, pane)))
    })

  const reply = (ref: string, text: string) =>
    Effect.gen(function* () {
      const item = yield* find(ref)
      if (item.subject.type === "worker") {
        yield* workers.tell(yield* workerIdOf(item.subject.id), text, { prefix: false })
      } else {
        yield* intoAgentPane(item.subject.id, (server, pane) =>
          item.kind === "permission"
            ? // Free text must never approve: reject the tool first, then the text is the next message.
              denyThenType((keys) => Tmux.pressKeys(server, pane, keys), Tmux.typeInto(server, pane, text))
            : Tmux.typeInto(server, pane, text)
        )
      }
      return yield* act(item, "inbox.replied", { length: text.length })
    })

  const decide = (ref: string, action: PermissionAction) =>
    Effect.gen(function* () {
      const item = yield* find(ref)
      if (item.kind !== "permission")
        return yield* new UsageError({
          message: `${item.id} is a ${item.kind} item, not a permission request: --action ${action} answers only those`
        })
      // The keys answer whatever dialog is open now: only while the session still waits on the
      // request that raised this item (a later hook that changed its state has replaced or closed
      // it, or left it stale, e.g. a SessionStart of a resumed session).
      if (item.subject.type === "session") {
        const { session } = yield* paneOf(item.subject.id)
        if (session.state !== "permission")
          return yield* new UsageError({
            message: `${item.id} is stale: session ${item.subject.id} is ${session.state === "working" ? "working" : "stopped"}, not waiting on that permission request; nothing was pressed (answer it in its pane: \`trail jump ${item.id}\`)`
          })
      }
      if (item.subject.type === "worker")
        yield* workers.pressKeys(yield* workerIdOf(item.subject.id), PERMISSION_KEYS[action])
      else
        yield* intoAgentPane(item.subject.id, (server, pane) => Tmux.pressKeys(server, pane, PERMISSION_KEYS[action]))
      return yield* act(item, "inbox.replied", { action })
    })

  const reconcile = Effect.gen(function* () {
    const inTmux = yield* reading(InboxStore.sessionsInTmux)
    const bySocket = new Map<string, Array<Session>>()
    for (const session of inTmux) {
      if (session.socket === null || session.pane === null) continue
      bySocket.set(session.socket, [...(bySocket.get(session.socket) ?? []), session])
    }
    const gone: Array<string> = []
    const changed: Array<string> = []
    for (const [socket, sessions] of bySocket) {
      const panes = yield* Tmux.run({ path: socket }, "list-panes", ["list-panes", "-a", "-F", PANE_FORMAT]).pipe(
        Effect.map(
          (out) =>
            new Map(
              out
                .split("\n")
                .filter((l) => l !== "")
                .map((line) => {
                  const [id = "", pid = "", command = ""] = line.split("\t")
                  return [id, { pid: Number(pid), command }] as const
                })
            )
        ),
        // No server at that socket any more: every pane on it is gone. tmux missing: cannot tell.
        Effect.catchAll((error) => Effect.succeed(error.reason === "missing" ? null : new Map()))
      )
      if (panes === null) continue
      for (const session of sessions) {
        const pane = panes.get(session.pane ?? "")
        if (pane === undefined) gone.push(session.id)
        else if (agentChange(session, pane.pid, pane.command) !== null) changed.push(session.id)
      }
    }
    yield* markGone(gone, "its tmux pane no longer exists")
    yield* markGone(changed, "its pane no longer runs its agent")
    return [...gone, ...changed]
  })

  return Inbox.of({
    catchUp,
    snapshot: Effect.map(reading(InboxStore.loadAll), (state) => state ?? emptyInbox),
    rebuild,
    items,
    count: (filter = "") => reading((db) => InboxStore.count(db, filter)),
    pages,
    find,
    dismiss: (ref) => Effect.flatMap(find(ref), (item) => act(item, "inbox.dismissed", {})),
    restore: (ref) => Effect.flatMap(find(ref), (item) => act(item, "inbox.restored", {})),
    skip: (ref, cooldownMs = SKIP_COOLDOWN_MS) =>
      Effect.gen(function* () {
        const item = yield* find(ref)
        const now = yield* Clock.currentTimeMillis
        return yield* act(item, "inbox.skipped", { until: now + cooldownMs })
      }),
    reply,
    decide,
    reconcile,
    paneOf
  })
})

/** The Inbox over the Database and Workers. */
export const layer = Layer.effect(Inbox, make)
