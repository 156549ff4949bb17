/**
 * The inbox (SPEC §3): a projection of the event log onto the review items that need a human,
 * as a pure fold `(InboxState, TrailEvent) → InboxState`. Nothing here reads a clock or a store:
 * the same events always give the same inbox, whether folded live, in chunks with the state
 * saved in between, or rebuilt from scratch.
 *
 * Each step costs O(1) whatever the number of open items: a fold runs on an {@link InboxDraft}
 * indexed by subject and by pane (`beginFold` / `foldInto` / `finish`; `foldEvents` is the three
 * at once), which also names the keys it changed so that a store writes only those.
 *
 * Each subject (a worker or a session) has at most one open item; a newer item for a subject
 * replaces its older one. What never appears: successful steps (a fleet worker that finished its
 * folder with nothing found), chatter (notes, todos), the human's own prompts (they close the
 * session's item), and dismissed items (kept, hidden, so that `restore` can bring them back).
 *
 * Events folded (besides the worker events of events.ts; `worker.told` closes a permission item): `session.started`, `session.prompted`,
 * `session.stopped`, `session.permission`, `session.notified`, `session.ended`, `session.gone`
 * (data: `pane`, `socket`, `cwd`, … from the Claude Code hook) and `inbox.dismissed`,
 * `inbox.restored`, `inbox.skipped` (`until`, ms), `inbox.replied` (data: `item`).
 * `checkpoint.saved` raises a `checkpoint` item (subject `{type:"checkpoint", id}`);
 * `checkpoint.continued`, `checkpoint.consumed`, `checkpoint.deleted`, `checkpoint.purged` close it.
 */
import { Predicate, Schema } from "effect"
import { Subject, type TrailEvent } from "./events.js"

export const ReviewKind = Schema.Literal(
  "needs_input",
  "permission",
  "failed",
  "patch_proposed",
  "ready",
  "stopped",
  "checkpoint"
)
export type ReviewKind = typeof ReviewKind.Type

/** What a person can do with an item (the CLI command of the same name). */
export const ReviewAction = Schema.Literal(
  "continue",
  "reply",
  "allow",
  "allow-always",
  "deny",
  "jump",
  "attach",
  "show",
  "promote",
  "discard",
  "respawn",
  "skip",
  "dismiss",
  "restore"
)
export type ReviewAction = typeof ReviewAction.Type

export class ReviewItem extends Schema.Class<ReviewItem>("ReviewItem")({
  /** `i<event id>`: the event that raised it. */
  id: Schema.String,
  kind: ReviewKind,
  subject: Subject,
  headline: Schema.String,
  /** ms since epoch: when it was raised. */
  since: Schema.Number,
  bullets: Schema.Array(Schema.String),
  actions: Schema.Array(ReviewAction),
  /** Where it came from, for the card's footer. */
  provenance: Schema.String,
  dismissed: Schema.Boolean,
  /** ms since epoch until which a skipped item waits at the back; null when not skipped. */
  skipped_until: Schema.NullOr(Schema.Number)
}) {}

/** The agent's process as its hook saw it: pid and start time (clock ticks after boot, /proc). */
export const AgentProcess = Schema.Struct({ pid: Schema.Int, start: Schema.Number })
export type AgentProcess = typeof AgentProcess.Type

/** An interactive agent session that trail learns about through hooks. */
export class Session extends Schema.Class<Session>("Session")({
  id: Schema.String,
  /** The tmux pane (`%3`) and server socket path its last hook ran in; null: unreachable. */
  pane: Schema.NullOr(Schema.String),
  socket: Schema.NullOr(Schema.String),
  /**
   * The agent's process in that pane (the foreground job its hook ran under); null: not known
   * (no /proc). Text is typed into the pane only while this process is still its foreground.
   */
  agent: Schema.NullOr(AgentProcess),
  cwd: Schema.NullOr(Schema.String),
  transcript_path: Schema.NullOr(Schema.String),
  state: Schema.Literal("working", "stopped", "permission"),
  started_at: Schema.Number,
  updated_at: Schema.Number
}) {}

/** What the inbox remembers of a worker to write its cards. */
export const WorkerCardInfo = Schema.Struct({
  kind: Schema.String,
  text: Schema.String,
  /** Fleet mode: the coverage task and folder. */
  task: Schema.NullOr(Schema.String),
  path: Schema.NullOr(Schema.String)
})
export type WorkerCardInfo = typeof WorkerCardInfo.Type

export interface InboxState {
  /** The id of the last event folded. */
  readonly last: number
  readonly items: ReadonlyMap<string, ReviewItem>
  readonly sessions: ReadonlyMap<string, Session>
  readonly workers: ReadonlyMap<string, WorkerCardInfo>
  /**
   * Subjects (`session:<id>`, `worker:<id>`) whose agent session has ended: a Stop or a
   * permission request of theirs committed after the SessionEnd is late, not news (hooks race).
   * A SessionStart (a resumed session) takes the subject out again.
   */
  readonly ended: ReadonlySet<string>
}

export const emptyInbox: InboxState = {
  last: 0,
  items: new Map(),
  sessions: new Map(),
  workers: new Map(),
  ended: new Set()
}

/** Attention classes: most stuck first (SPEC §3 "Order"). */
export const attentionRank: { readonly [K in ReviewKind]: number } = {
  needs_input: 0,
  permission: 0,
  failed: 1,
  patch_proposed: 2,
  ready: 2,
  stopped: 2,
  checkpoint: 3
}

/** The actions of an item of each kind, in the order a person is offered them (the first is Enter's in the TUI). */
export const actionsOf: { readonly [K in ReviewKind]: ReadonlyArray<ReviewAction> } = {
  needs_input: ["reply", "jump", "skip", "dismiss"],
  // Jump first: the primary action (Enter in the TUI) must never approve a tool.
  permission: ["jump", "allow", "allow-always", "deny", "reply", "skip", "dismiss"],
  failed: ["show", "respawn", "skip", "dismiss"],
  patch_proposed: ["promote", "discard", "show", "skip", "dismiss"],
  ready: ["show", "skip", "dismiss"],
  stopped: ["reply", "jump", "skip", "dismiss"],
  // Continue first: the primary action (Enter in the TUI) hands the checkpoint to the next session.
  checkpoint: ["continue", "show", "skip", "dismiss"]
}

const MAX_HEADLINE = 140
const MAX_BULLETS = 5

/** One line of at most MAX_HEADLINE characters. */
export const headlineOf = (text: string): string => {
  const line = text.replace(/\s+/g, " ").trim()
  return flat(line.length > MAX_HEADLINE ? `${line.slice(0, MAX_HEADLINE - 1)}…` : line)
}

/**
 * `text` as one flat string. V8 keeps a string built by concatenation as a tree of its parts
 * until something reads its characters; an item keeps its strings as long as it is open (a
 * quarter of a million of them in a long-neglected inbox), so they are flattened once when made:
 * about a third of their memory.
 */
const flat = (text: string): string => {
  text.charCodeAt(0)
  return text
}

const str = (data: Readonly<Record<string, unknown>>, key: string): string | null =>
  typeof data[key] === "string" ? data[key] : null

const strings = (value: unknown): Array<string> =>
  Array.isArray(value) ? value.filter((v): v is string => typeof v === "string") : []

/** How many of a failed or lost worker's last output lines its card shows (SPEC §3: "error captured"). */
const ERROR_LINES = 3

/** A failed or lost worker's card bullets: the last lines it printed (its event's `last_lines`). */
const errorLines = (data: Readonly<Record<string, unknown>>) => strings(data.last_lines).slice(-ERROR_LINES)

const subjectKey = (subject: Subject) => `${subject.type}:${subject.id}`

/** The items of one subject in a state (a scan: for small states; the fold uses its index). */
const itemsOfSubject = (state: InboxState, subject: Subject): Array<ReviewItem> => {
  const key = subjectKey(subject)
  return [...state.items.values()].filter((item) => subjectKey(item.subject) === key)
}

/** The open (not dismissed) item of a subject, if any. */
export const openItemOf = (state: InboxState, subject: Subject): ReviewItem | undefined =>
  itemsOfSubject(state, subject).find((item) => !item.dismissed)

/**
 * The subject's `permission` item, dismissed or not (a dismissed card does not close the dialog
 * in its pane), or undefined when the subject is not waiting on a permission request.
 */
export const permissionOf = (state: InboxState, subject: Subject): ReviewItem | undefined =>
  itemsOfSubject(state, subject).find((item) => item.kind === "permission")

/** The key of a tmux pane on its server (`socket` null: a pane reported without a server). */
const paneKey = (socket: string | null, pane: string) => `${socket === null ? "\u0000" : `s${socket}`}\t${pane}`

/**
 * A fold in progress ({@link beginFold}): the state's Maps, owned and changed in place, with two
 * indexes that keep every step O(1) whatever the number of items and sessions — subject key →
 * its item ids (a subject has at most one open item plus dismissed ones) and pane → the session
 * in it — and the keys each step changed.
 */
export class InboxDraft {
  last: number
  readonly items: Map<string, ReviewItem>
  readonly sessions: Map<string, Session>
  readonly workers: Map<string, WorkerCardInfo>
  readonly ended: Set<string>
  /** The keys changed since the draft began; null when not tracked (a rebuild writes everything). */
  readonly changes: {
    readonly items: Set<string>
    readonly sessions: Set<string>
    readonly workers: Set<string>
    readonly ended: Set<string>
  } | null
  /** Subject type → subject id → its item ids: one id, or a Set for a subject with several (compact: most have one). */
  readonly #bySubject = new Map<string, Map<string, string | Set<string>>>()
  readonly #byPane = new Map<string, string>()
  readonly #shared = new Map<string, string>()
  #finished = false

  constructor(state: InboxState, track: boolean) {
    this.changes = track ? { items: new Set(), sessions: new Set(), workers: new Set(), ended: new Set() } : null
    this.last = state.last
    this.items = new Map(state.items)
    this.sessions = new Map(state.sessions)
    this.workers = new Map(state.workers)
    this.ended = new Set(state.ended)
    for (const item of this.items.values()) this.#index(item)
    for (const session of this.sessions.values()) this.#indexPane(session)
  }

  #index(item: ReviewItem) {
    const { id, type } = item.subject
    let ofType = this.#bySubject.get(type)
    if (ofType === undefined) this.#bySubject.set(type, (ofType = new Map()))
    const ids = ofType.get(id)
    if (ids === undefined || ids === item.id) ofType.set(id, item.id)
    else if (typeof ids === "string") ofType.set(id, new Set([ids, item.id]))
    else ids.add(item.id)
  }

  #unindex(item: ReviewItem) {
    const { id, type } = item.subject
    const ofType = this.#bySubject.get(type)
    const ids = ofType?.get(id)
    if (ids === item.id) ofType?.delete(id)
    else if (typeof ids === "object") {
      ids.delete(item.id)
      const [only] = ids
      if (ids.size === 1 && only !== undefined) ofType?.set(id, only)
    }
  }

  #indexPane(session: Session) {
    if (session.pane !== null) this.#byPane.set(paneKey(session.socket, session.pane), session.id)
  }

  /** Throws when the draft was finished: its Maps now belong to the state {@link finish} returned. */
  open() {
    if (this.#finished) throw new Error("this inbox fold was finished; begin another one")
  }

  close() {
    this.open()
    this.#finished = true
  }

  /** The items of `subject`, open or dismissed. */
  itemsOf(subject: Subject): Array<ReviewItem> {
    const ids = this.#bySubject.get(subject.type)?.get(subject.id)
    if (ids === undefined) return []
    const found: Array<ReviewItem> = []
    for (const id of typeof ids === "string" ? [ids] : ids) {
      const item = this.items.get(id)
      if (item !== undefined) found.push(item)
    }
    return found
  }

  setItem(item: ReviewItem) {
    const before = this.items.get(item.id)
    if (before !== undefined) this.#unindex(before)
    this.items.set(item.id, item)
    this.#index(item)
    this.changes?.items.add(item.id)
  }

  deleteItem(id: string) {
    const item = this.items.get(id)
    if (item === undefined) return
    this.items.delete(id)
    this.#unindex(item)
    this.changes?.items.add(id)
  }

  /**
   * One copy of `text` for the whole draft: for strings that many sessions repeat (their working
   * folder), which each event's JSON would otherwise give every open session a copy of.
   */
  shared(text: string): string {
    const known = this.#shared.get(text)
    if (known !== undefined) return known
    this.#shared.set(text, text)
    return text
  }

  /** The session in `pane` of the server at `socket`, if any. */
  sessionIn(socket: string | null, pane: string): string | undefined {
    return this.#byPane.get(paneKey(socket, pane))
  }

  setSession(session: Session) {
    this.#unindexPane(session.id)
    this.sessions.set(session.id, session)
    this.#indexPane(session)
    this.changes?.sessions.add(session.id)
  }

  deleteSession(id: string) {
    this.#unindexPane(id)
    if (this.sessions.delete(id)) this.changes?.sessions.add(id)
  }

  #unindexPane(id: string) {
    const before = this.sessions.get(id)
    if (before === undefined || before.pane === null) return
    const key = paneKey(before.socket, before.pane)
    if (this.#byPane.get(key) === id) this.#byPane.delete(key)
  }

  setWorker(id: string, info: WorkerCardInfo) {
    this.workers.set(id, info)
    this.changes?.workers.add(id)
  }

  end(key: string) {
    this.ended.add(key)
    this.changes?.ended.add(key)
  }

  unend(key: string) {
    if (this.ended.delete(key)) this.changes?.ended.add(key)
  }
}

/** Removes every item of `subject` (open or dismissed). */
const clearSubject = (draft: InboxDraft, subject: Subject) => {
  for (const item of draft.itemsOf(subject)) draft.deleteItem(item.id)
}

/**
 * Removes the subject's items of one of `kinds`, open or dismissed: what they stood for is over
 * (a dismissed card kept would come back stale on `restore`).
 */
const closeKinds = (draft: InboxDraft, subject: Subject, kinds: ReadonlyArray<ReviewKind>) => {
  for (const item of draft.itemsOf(subject)) if (kinds.includes(item.kind)) draft.deleteItem(item.id)
}

const provenanceOf = (draft: InboxDraft, subject: Subject, eventId: number): string => {
  if (subject.type === "worker") {
    const info = draft.workers.get(subject.id)
    const where = info?.path === null || info?.path === undefined ? "" : ` · ${info.path}`
    return flat(`worker ${subject.id}${info === undefined ? "" : ` · ${info.kind}`}${where} · event ${eventId}`)
  }
  if (subject.type === "checkpoint") return flat(`checkpoint ${subject.id} · event ${eventId}`)
  const session = draft.sessions.get(subject.id)
  const cwd = session?.cwd === null || session?.cwd === undefined ? "" : ` · ${session.cwd}`
  return flat(`session ${subject.id.slice(0, 8)}${cwd} · event ${eventId}`)
}

/** Raises a new item for the event's subject, replacing whatever the subject had. */
const raise = (
  draft: InboxDraft,
  event: TrailEvent,
  kind: ReviewKind,
  headline: string,
  bullets: ReadonlyArray<string>
) => {
  clearSubject(draft, event.subject)
  const id = `i${event.id}`
  // A session's item names it with the session's own id string (one copy per open session, not two).
  const session = event.subject.type === "session" ? draft.sessions.get(event.subject.id) : undefined
  draft.setItem({
    id,
    kind,
    subject: session === undefined ? event.subject : { type: "session", id: session.id },
    headline: headlineOf(headline),
    since: event.at,
    bullets: bullets.slice(0, MAX_BULLETS).map(headlineOf),
    // Shared, never changed: one array per kind, not one per item.
    actions: actionsOf[kind],
    provenance: provenanceOf(draft, event.subject, event.id),
    dismissed: false,
    skipped_until: null
  })
}

const updateItem = (
  draft: InboxDraft,
  id: unknown,
  change: Partial<Pick<ReviewItem, "dismissed" | "skipped_until">>
) => {
  if (typeof id !== "string") return
  const item = draft.items.get(id)
  if (item !== undefined) draft.setItem({ ...item, ...change })
}

const agentOf = (data: Readonly<Record<string, unknown>>): AgentProcess | null => {
  const agent = data.agent
  if (!Predicate.isRecord(agent)) return null
  const { pid, start } = agent
  return typeof pid === "number" && Number.isInteger(pid) && typeof start === "number" ? { pid, start } : null
}

/** Removes a session and everything it raised. */
const endSession = (draft: InboxDraft, id: string) => {
  clearSubject(draft, { type: "session", id })
  draft.deleteSession(id)
  draft.end(`session:${id}`)
}

/** What a worker reported itself: its own hook events (a Stop after `trail worker done`) never replace it. */
const REPORTED: ReadonlyArray<ReviewKind> = ["ready", "failed", "patch_proposed", "needs_input"]

/** True when a hook event of `subject` must not raise an item: its session ended, or the worker reported. */
const quiet = (draft: InboxDraft, subject: Subject) => {
  if (draft.ended.has(subjectKey(subject))) return true
  const open = draft.itemsOf(subject).find((item) => !item.dismissed)
  return subject.type === "worker" && open !== undefined && REPORTED.includes(open.kind)
}

/**
 * True when a hook event is older (by the hook's own clock, `at`) than the subject's card that a
 * later hook raised: PermissionRequest and UserPromptSubmit hooks are async, so their events can
 * commit after the synchronous Stop that followed them. Such an event is history, not news: a late
 * permission request must not raise a card whose keys would answer another dialog (or none), and
 * a late prompt must not close the dialog that came after it.
 */
const late = (draft: InboxDraft, event: TrailEvent) =>
  draft.itemsOf(event.subject).some((item) => HOOK_KINDS.includes(item.kind) && item.since > event.at)

/** The kinds a hook event raises. */
const HOOK_KINDS: ReadonlyArray<ReviewKind> = ["stopped", "permission"]

/**
 * Records the session's pane from a hook event. A pane now used by another session means the
 * old one is over (one agent per pane: a new `claude` in a pane is a new session), so the old
 * session and its item go.
 */
const touchSession = (draft: InboxDraft, event: TrailEvent, state: Session["state"] | null) => {
  const pane = str(event.data, "pane")
  const socket = str(event.data, "socket")
  if (pane !== null) {
    const other = draft.sessionIn(socket, pane)
    if (other !== undefined && other !== event.subject.id) endSession(draft, other)
  }
  const previous = draft.sessions.get(event.subject.id)
  // The id string the session was first stored under (its Map key): one copy per open session.
  const id = previous?.id ?? event.subject.id
  const samePane = previous !== undefined && previous.pane === pane && previous.socket === socket
  const cwd = str(event.data, "cwd")
  draft.setSession({
    id,
    pane,
    socket,
    agent: agentOf(event.data) ?? (samePane ? previous.agent : null),
    cwd: cwd === null ? (previous?.cwd ?? null) : draft.shared(cwd),
    transcript_path: str(event.data, "transcript_path") ?? previous?.transcript_path ?? null,
    state: state ?? previous?.state ?? "working",
    started_at: previous?.started_at ?? event.at,
    updated_at: event.at
  })
}

/** A `ready` card's bullets: what was found and how much evidence backs it, then the recommendations. */
const readyBullets = (result: Record<string, unknown>): ReadonlyArray<string> => {
  const evidence = strings(result.evidence).length
  const facts = [
    ...(typeof result.found === "number" ? [`found ${result.found}`] : []),
    ...(evidence > 0 ? [`${evidence} evidence item(s)`] : [])
  ]
  return [...(facts.length === 0 ? [] : [facts.join(" · ")]), ...strings(result.recommend)]
}

const step = (draft: InboxDraft, event: TrailEvent): void => {
  const { subject, data } = event
  switch (event.type) {
    case "worker.spawned":
      draft.setWorker(subject.id, {
        kind: str(data, "kind") ?? "default",
        text: str(data, "text") ?? "",
        task: str(data, "task"),
        path: str(data, "path")
      })
      return
    case "worker.needs_input":
      return raise(draft, event, "needs_input", `${subject.id} asks: ${str(data, "question") ?? "(no question)"}`, [])
    case "worker.running":
      return closeKinds(draft, subject, ["needs_input", "stopped", "permission"])
    case "worker.told": {
      // Text typed into a worker waiting on a permission dialog denied it first (Workers.tell):
      // the dialog is closed, dismissed card or not.
      const pending = draft.itemsOf(subject).find((item) => item.kind === "permission")
      if (pending !== undefined) draft.deleteItem(pending.id)
      return
    }
    case "worker.ready": {
      const result = Predicate.isRecord(data.result) ? data.result : {}
      const changeSet = Predicate.isRecord(data.change_set) ? data.change_set : null
      const files = typeof changeSet?.files === "number" ? changeSet.files : 0
      const outcome = str(result, "outcome") ?? "done"
      if (files > 0) {
        const stat = `${files} file(s) +${String(changeSet?.insertions ?? 0)} -${String(changeSet?.deletions ?? 0)}`
        return raise(
          draft,
          event,
          "patch_proposed",
          `${subject.id} proposes a change: ${outcome} (${stat})`,
          strings(result.recommend)
        )
      }
      // A fleet worker that found nothing in its folder is a routine step of a sweep, not news.
      const fleet = draft.workers.get(subject.id)?.task != null
      if (fleet && (typeof result.found !== "number" || result.found === 0)) return clearSubject(draft, subject)
      return raise(draft, event, "ready", `${subject.id} finished: ${outcome}`, readyBullets(result))
    }
    case "worker.failed":
      return raise(
        draft,
        event,
        "failed",
        `${subject.id} failed: ${str(data, "reason") ?? "no reason given"}`,
        errorLines(data)
      )
    case "worker.lost":
      return raise(
        draft,
        event,
        "failed",
        `${subject.id} was lost: ${str(data, "reason") ?? "no reason given"}`,
        errorLines(data)
      )
    case "worker.cancelled":
      return clearSubject(draft, subject)
    case "worker.promoted":
    case "worker.discarded":
      return closeKinds(draft, subject, ["patch_proposed"])
    // A worker's own Claude Code hooks (tagged with its id) only add to its card; a session's
    // hooks are the session.
    case "session.started":
      draft.unend(subjectKey(subject))
      if (subject.type === "session") touchSession(draft, event, "working")
      return
    case "session.prompted":
      if (draft.ended.has(subjectKey(subject)) || late(draft, event)) return
      if (subject.type === "session") touchSession(draft, event, "working")
      return closeKinds(
        draft,
        subject,
        subject.type === "session" ? ["stopped", "permission", "needs_input"] : ["stopped", "permission"]
      )
    case "session.stopped": {
      if (quiet(draft, subject)) return
      if (subject.type === "session") touchSession(draft, event, "stopped")
      const message = str(data, "message") ?? ""
      const lines = message
        .split("\n")
        .map((l) => l.trim())
        .filter((l) => l !== "")
      const bullets = lines
        .slice(1)
        .filter((l) => /^([-*•]|\d+[.)])\s+/.test(l))
        .map((l) => l.replace(/^([-*•]|\d+[.)])\s+/, ""))
      return raise(draft, event, "stopped", lines[0] ?? "finished its turn and waits for you", bullets)
    }
    case "session.permission": {
      if (quiet(draft, subject) || late(draft, event)) return
      if (subject.type === "session") touchSession(draft, event, "permission")
      const tool = str(data, "tool_name") ?? "a tool"
      const input = str(data, "tool_summary")
      return raise(
        draft,
        event,
        "permission",
        `wants to use ${tool}${input === null || input === "" ? "" : `: ${input}`}`,
        []
      )
    }
    case "session.notified":
      if (subject.type === "session" && !draft.ended.has(subjectKey(subject))) touchSession(draft, event, null)
      return
    case "session.ended":
    case "session.gone":
      if (subject.type === "session") return endSession(draft, subject.id)
      draft.end(subjectKey(subject))
      return closeKinds(draft, subject, ["stopped", "permission"])
    case "checkpoint.saved": {
      if (subject.type !== "checkpoint") return
      const title = str(data, "title") ?? ""
      const artifacts = typeof data.artifacts === "number" ? data.artifacts : 0
      const session = str(data, "session")
      const workers = strings(data.workers)
      const from = [
        ...(session === null ? [] : [`session ${session.slice(0, 8)}`]),
        ...(workers.length === 0 ? [] : [`worker(s) ${workers.join(", ")}`])
      ]
      const facts = `${artifacts} artifact(s)${from.length === 0 ? "" : ` from ${from.join(" and ")}`}`
      const bullets = [facts, ...(data.once === true ? ["--once: consumed when first continued"] : [])]
      return raise(draft, event, "checkpoint", `checkpoint ${subject.id}${title === "" ? "" : `: ${title}`}`, bullets)
    }
    case "checkpoint.continued":
    case "checkpoint.consumed":
    case "checkpoint.deleted":
    case "checkpoint.purged":
      if (subject.type === "checkpoint") closeKinds(draft, subject, ["checkpoint"])
      return
    case "inbox.dismissed":
      return updateItem(draft, data.item, { dismissed: true })
    case "inbox.restored":
      return updateItem(draft, data.item, { dismissed: false, skipped_until: null })
    case "inbox.skipped":
      return updateItem(draft, data.item, { skipped_until: typeof data.until === "number" ? data.until : null })
    case "inbox.replied":
      if (typeof data.item === "string") draft.deleteItem(data.item)
      return
  }
}

/**
 * Starts a fold over a copy of `state` (O(state): the Maps are copied once and indexed). Fold
 * any number of batches into it with {@link foldInto}, then take the state with {@link finish}.
 * A store that loads only what the next events touch (their subjects' items, their sessions, the
 * sessions in their panes and those sessions' items, their workers' facts and ended flags, the
 * items their `data.item` names) may begin from that partial state: the fold reads nothing else.
 * `track` (default true): record in `draft.changes` the keys each step sets or deletes, for a
 * store that writes only those (a rebuild that writes everything passes false).
 */
export const beginFold = (state: InboxState, options: { readonly track?: boolean } = {}): InboxDraft =>
  new InboxDraft(state, options.track ?? true)

/** Folds events (in id order) into the draft in place; events at or below its `last` are ignored. */
export const foldInto = (draft: InboxDraft, events: Iterable<TrailEvent>): void => {
  draft.open()
  for (const event of events) {
    if (event.id <= draft.last) continue
    step(draft, event)
    draft.last = event.id
  }
}

/**
 * The state the draft arrived at: its own Maps, not a copy (the draft is closed: folding into it
 * again throws). `draft.changes` still says which keys changed since {@link beginFold}.
 */
export const finish = (draft: InboxDraft): InboxState => {
  draft.close()
  return { last: draft.last, items: draft.items, sessions: draft.sessions, workers: draft.workers, ended: draft.ended }
}

/** Folds events (in id order) into the state; events at or below `state.last` are ignored. */
export const foldEvents = (state: InboxState, events: Iterable<TrailEvent>): InboxState => {
  const draft = beginFold(state)
  foldInto(draft, events)
  return finish(draft)
}

/** One step of the fold. */
export const fold = (state: InboxState, event: TrailEvent): InboxState => foldEvents(state, [event])

/** When a skipped item comes back (ms since the epoch), or null when it is not cooling down at `now`. */
const coolingUntil = (item: ReviewItem, now: number): number | null =>
  item.skipped_until !== null && item.skipped_until > now ? item.skipped_until : null

/**
 * The visible items in attention order at `now` (ms): not dismissed; items still cooling down
 * after a skip last; then by class (needs_input/permission, failed, patch/ready/stopped,
 * checkpoint); then oldest first.
 */
export const attentionOrder = (state: InboxState, now: number): Array<ReviewItem> =>
  [...state.items.values()].filter((item) => !item.dismissed).sort(attentionCompare(now))

/** {@link attentionOrder}'s comparator at `now` (ms), for a sort of visible items. */
export const attentionCompare =
  (now: number) =>
  (a: ReviewItem, b: ReviewItem): number => {
    const coolA = coolingUntil(a, now)
    const coolB = coolingUntil(b, now)
    return (
      Number(coolA !== null) - Number(coolB !== null) ||
      attentionRank[a.kind] - attentionRank[b.kind] ||
      (coolA !== null && coolB !== null ? coolA - coolB : 0) ||
      a.since - b.since ||
      Number(a.id.slice(1)) - Number(b.id.slice(1))
    )
  }

/** The item an ITEM argument names: an item id, or the open (else latest) item of a worker or session id. */
export const findItem = (state: InboxState, ref: string): ReviewItem | undefined => {
  const byId = state.items.get(ref)
  if (byId !== undefined) return byId
  const matches = [...state.items.values()].filter(
    (item) =>
      item.subject.id === ref || (item.subject.type === "session" && ref.length >= 6 && item.subject.id.startsWith(ref))
  )
  return matches.find((item) => !item.dismissed) ?? matches.sort((a, b) => b.since - a.since)[0]
}

/** The state as plain JSON-able data (what the store keeps between folds). */
export const InboxSnapshot = Schema.Struct({
  last: Schema.Int,
  items: Schema.Array(ReviewItem),
  sessions: Schema.Array(Session),
  workers: Schema.Array(Schema.Tuple(Schema.String, WorkerCardInfo)),
  ended: Schema.Array(Schema.String)
})
export type InboxSnapshot = typeof InboxSnapshot.Type

export const toSnapshot = (state: InboxState): InboxSnapshot => ({
  last: state.last,
  items: [...state.items.values()].sort((a, b) => Number(a.id.slice(1)) - Number(b.id.slice(1))),
  sessions: [...state.sessions.values()].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0)),
  workers: [...state.workers.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)),
  ended: [...state.ended].sort()
})

export const fromSnapshot = (snapshot: InboxSnapshot): InboxState => ({
  last: snapshot.last,
  items: new Map(snapshot.items.map((item) => [item.id, item])),
  sessions: new Map(snapshot.sessions.map((session) => [session.id, session])),
  workers: new Map(snapshot.workers),
  ended: new Set(snapshot.ended)
})
