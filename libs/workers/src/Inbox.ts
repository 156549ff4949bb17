/**
 * The inbox as a service (SPEC §3): the pure fold of `@trail/domain` kept in the store
 * (`inbox_items`, `inbox_state`) with the id of the last event folded. Every read first folds
 * the events it has not seen (one transaction), so the inbox is right with or without a
 * supervisor; `rebuild` folds the whole log again from nothing.
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
import * as CommandExecutor from "@effect/platform/CommandExecutor"
import {
  attentionOrder,
  emptyInbox,
  findItem,
  foldEvents,
  type InboxState,
  ItemNotFound,
  type NewEvent,
  PaneChanged,
  ReviewItem,
  Session,
  SHELLS,
  type StoreError,
  type SubjectType,
  SubstrateError,
  type TrailEvent,
  UsageError,
  WorkerCardInfo,
  WorkerNotFound,
  WorkerId
} from "@trail/domain"
import * as SqlClient from "@effect/sql/SqlClient"
import type { SqlError } from "@effect/sql/SqlError"
import * as SqlSchema from "@effect/sql/SqlSchema"
import { Database as Db, Events } from "@trail/store"
import { Clock, Context, Effect, Layer, Option, ParseResult, Schema } from "effect"
import * as Hooks from "./Hooks.js"
import { denyThenType, PERMISSION_KEYS, type PermissionAction } from "./Permission.js"
import * as Tmux from "./Tmux.js"
import { Workers, type WorkersError } from "./Workers.js"

/** An item's worker subject as a worker id; not one (a row trail did not write) is no worker. */
const workerIdOf = (id: string): Effect.Effect<WorkerId, WorkerNotFound> =>
  Schema.is(WorkerId)(id) ? Effect.succeed(id) : Effect.fail(new WorkerNotFound({ id }))

export interface InboxShape {
  /** The inbox with every appended event folded in. */
  readonly current: Effect.Effect<InboxState, StoreError>
  /** Folds the whole event log again from nothing and stores the result. */
  readonly rebuild: Effect.Effect<InboxState, StoreError>
  /** Visible items, most stuck first. */
  readonly items: Effect.Effect<ReadonlyArray<ReviewItem>, StoreError>
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
  /** Events of one subject, oldest first (`trail log`), or of every subject. */
  readonly log: (subject?: {
    readonly type: "worker" | "session"
    readonly id: string
  }) => Effect.Effect<ReadonlyArray<TrailEvent>, StoreError>
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

/** The `inbox_state` row: the last event folded, and the fold's sessions and worker facts as JSON. */
const StateRow = Schema.Struct({
  last_event_id: Schema.Int,
  /** The sessions, and the subjects whose session ended (see InboxState.ended). */
  sessions: Schema.parseJson(Schema.Struct({ sessions: Schema.Array(Session), ended: Schema.Array(Schema.String) })),
  workers: Schema.parseJson(Schema.Array(Schema.Tuple(Schema.String, WorkerCardInfo)))
})

/** An `inbox_items` row as written: the item as JSON beside the columns it is found by. */
const ItemRow = Schema.Struct({
  id: Schema.String,
  kind: Schema.String,
  subject_type: Schema.String,
  subject_id: Schema.String,
  since: Schema.Number,
  item: Schema.parseJson(ReviewItem)
})

const BATCH = 5_000

/**
 * The projection's SQL (tables `inbox_items`, `inbox_state`) through `SqlClient`; failures are
 * `SqlError`, or `ParseError` for a row this version of trail cannot read back.
 */
const makeStore = Effect.gen(function* () {
  const sql = yield* SqlClient.SqlClient
  const withSql = <A, E>(effect: Effect.Effect<A, E, SqlClient.SqlClient>) =>
    Effect.provideService(effect, SqlClient.SqlClient, sql)

  const stateRow = SqlSchema.findOne({
    Request: Schema.Void,
    Result: StateRow,
    execute: () => sql`SELECT last_event_id, sessions, workers FROM inbox_state WHERE id = 1`
  })
  const itemRows = SqlSchema.findAll({
    Request: Schema.Void,
    Result: ItemRow.pick("item"),
    execute: () => sql`SELECT item FROM inbox_items`
  })
  const deleteItem = SqlSchema.void({
    Request: Schema.String,
    execute: (id) => sql`DELETE FROM inbox_items WHERE id = ${id}`
  })
  const deleteItems = SqlSchema.void({ Request: Schema.Void, execute: () => sql`DELETE FROM inbox_items` })
  const upsertItem = SqlSchema.void({
    Request: ItemRow,
    execute: (row) =>
      sql`INSERT INTO inbox_items ${sql.insert(row)}
        ON CONFLICT (id) DO UPDATE SET kind = excluded.kind, subject_type = excluded.subject_type,
          subject_id = excluded.subject_id, since = excluded.since, item = excluded.item`
  })
  const upsertState = SqlSchema.void({
    Request: StateRow,
    execute: (row) =>
      sql`INSERT INTO inbox_state ${sql.insert({ id: 1, ...row })}
        ON CONFLICT (id) DO UPDATE SET last_event_id = excluded.last_event_id, sessions = excluded.sessions,
          workers = excluded.workers`
  })

  /** The stored inbox (empty when none is stored yet). */
  const load = Effect.gen(function* () {
    const row = yield* stateRow(undefined)
    if (Option.isNone(row)) return emptyInbox
    const items = yield* itemRows(undefined)
    const { last_event_id, sessions, workers } = row.value
    return {
      last: last_event_id,
      items: new Map(items.map(({ item }) => [item.id, item])),
      sessions: new Map(sessions.sessions.map((s) => [s.id, s])),
      workers: new Map(workers),
      ended: new Set(sessions.ended)
    } satisfies InboxState
  })

  /**
   * The stored inbox, or null when it cannot be read back (written by another version of trail):
   * the inbox is a projection, so it is then rebuilt from the log.
   */
  const loadOrNull: Effect.Effect<InboxState | null, SqlError> = Effect.catchIf(load, ParseResult.isParseError, () =>
    Effect.succeed(null)
  )

  /** Writes what changed from `before` to `after`. */
  const save = (before: InboxState, after: InboxState) =>
    Effect.gen(function* () {
      for (const id of before.items.keys()) if (!after.items.has(id)) yield* deleteItem(id)
      for (const [id, item] of after.items) {
        if (before.items.get(id) === item) continue
        yield* upsertItem({
          id,
          kind: item.kind,
          subject_type: item.subject.type,
          subject_id: item.subject.id,
          since: item.since,
          item
        })
      }
      yield* upsertState({
        last_event_id: after.last,
        sessions: { sessions: [...after.sessions.values()], ended: [...after.ended] },
        workers: [...after.workers.entries()]
      })
    })

  /** Folds every event after `state.last` into `state` (in batches). */
  const catchUp = (state: InboxState) =>
    Effect.iterate(
      { state, more: true },
      {
        while: ({ more }) => more,
        body: ({ state }) =>
          Effect.map(withSql(Events.sinceSql(state.last, BATCH)), (events) => ({
            state: events.length === 0 ? state : foldEvents(state, events),
            more: events.length === BATCH
          }))
      }
    ).pipe(Effect.map(({ state }) => state))

  return {
    loadOrNull,
    save,
    catchUp,
    deleteItems: deleteItems(undefined),
    latestId: withSql(Events.latestIdSql),
    appendEvent: (event: NewEvent) => withSql(Events.appendSql(event)),
    events: (subject?: { readonly type: SubjectType; readonly id: string }) =>
      withSql(subject === undefined ? Events.sinceSql(0, 1_000_000) : Events.ofSubjectSql(subject.type, subject.id))
  }
})

export const make = Effect.gen(function* () {
  const database = yield* Db.Database
  const workers = yield* Workers
  const executor = yield* CommandExecutor.CommandExecutor
  const store = yield* makeStore

  /** Folds the whole log from nothing and replaces what is stored (inside a transaction). */
  const rebuildIn = Effect.gen(function* () {
    const after = yield* store.catchUp(emptyInbox)
    yield* store.deleteItems
    yield* store.save(emptyInbox, after)
    return after
  })

  // Catches up in a write transaction only when there is something to fold.
  const current = Effect.flatMap(
    Effect.gen(function* () {
      const state = yield* store.loadOrNull
      return state !== null && state.last === (yield* store.latestId) ? state : null
    }).pipe(Db.autocommit),
    (fresh) =>
      fresh !== null
        ? Effect.succeed(fresh)
        : Effect.gen(function* () {
            const before = yield* store.loadOrNull
            if (before === null) return yield* rebuildIn
            const after = yield* store.catchUp(before)
            if (after !== before) yield* store.save(before, after)
            return after
          }).pipe(database.transaction)
  )

  const rebuild = database.transaction(rebuildIn)

  const find = (ref: string) =>
    Effect.flatMap(current, (state) => {
      const item = findItem(state, ref)
      return item === undefined ? Effect.fail(new ItemNotFound({ ref })) : Effect.succeed(item)
    })

  /** Appends an `inbox.*` event about `item`, then returns the item as the fold now has it. */
  const act = (item: ReviewItem, type: string, data: Record<string, unknown>) =>
    Effect.gen(function* () {
      const at = yield* Clock.currentTimeMillis
      yield* database.transaction(
        store.appendEvent({ at, type, subject: item.subject, data: { item: item.id, ...data } })
      )
      const state = yield* current
      return state.items.get(item.id) ?? item
    })

  const paneOf = (sessionId: string) =>
    Effect.flatMap(current, (state) => {
      const session = state.sessions.get(sessionId)
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
    })

  const tmuxOn = <A>(effect: Effect.Effect<A, Tmux.TmuxError, CommandExecutor.CommandExecutor>) =>
    Effect.provideService(effect, CommandExecutor.CommandExecutor, executor)

  /** Appends `session.gone` for `ids` with `reason`. */
  const markGone = (ids: ReadonlyArray<string>, reason: string) =>
    Effect.gen(function* () {
      if (ids.length === 0) return
      const at = yield* Clock.currentTimeMillis
      yield* database.transaction(
        Effect.forEach(
          ids,
          (id) => store.appendEvent({ at, type: "session.gone", subject: { type: "session", id }, data: { reason } }),
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
    deliver: (server: Tmux.Server, pane: string) => Effect.Effect<void, Tmux.TmuxError, CommandExecutor.CommandExecutor>
  ) =>
    Effect.gen(function* () {
      const { pane, session, socket } = yield* paneOf(sessionId)
      const server = { path: socket }
      const [panePid, command] = (yield* tmuxOn(
        Tmux.run(server, "display-message", [
          "display-message",
          "-p",
          "-t",
          pane,
          "#{pane_pid}\t#{pane_current_command}"
        ])
      ).pipe(Effect.mapError(goneError(sessionId, pane))))
        .trim()
        .split("\t")
      const changed = agentChange(session, Number(panePid), command ?? "")
      if (changed !== null) {
        yield* markGone([sessionId], `its pane no longer runs its agent: ${changed}`)
        return yield* new PaneChanged({ session: sessionId, pane, detail: changed })
      }
      yield* tmuxOn(deliver(server, pane)).pipe(Effect.mapError(goneError(sessionId, pane)))
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
    const state = yield* current
    const bySocket = new Map<string, Array<Session>>()
    for (const session of state.sessions.values()) {
      if (session.socket === null || session.pane === null) continue
      bySocket.set(session.socket, [...(bySocket.get(session.socket) ?? []), session])
    }
    const gone: Array<string> = []
    const changed: Array<string> = []
    for (const [socket, sessions] of bySocket) {
      const panes = yield* tmuxOn(
        Tmux.run({ path: socket }, "list-panes", ["list-panes", "-a", "-F", PANE_FORMAT])
      ).pipe(
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
    current,
    rebuild,
    items: Effect.flatMap(current, (state) => Effect.map(Clock.currentTimeMillis, (now) => attentionOrder(state, now))),
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
    paneOf,
    log: (subject) => Db.autocommit(store.events(subject))
  })
})

/** The Inbox over the Database and Workers. */
export const layer = Layer.effect(Inbox, make)
