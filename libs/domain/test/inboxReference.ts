/**
 * The inbox fold as it was before it was indexed: every step scans every item (and every
 * session on a pane event). Kept only as the reference the indexed fold is checked against
 * (inbox.test.ts): the same events must give the same state.
 */
import { Predicate } from "effect"
import {
  type AgentProcess,
  headlineOf,
  type InboxState,
  type ReviewAction,
  ReviewItem,
  type ReviewKind,
  Session,
  type Subject,
  type TrailEvent,
  type WorkerCardInfo
} from "../src/index.js"

const actionsOf: { readonly [K in ReviewKind]: ReadonlyArray<ReviewAction> } = {
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

const MAX_BULLETS = 5

const str = (data: Readonly<Record<string, unknown>>, key: string): string | null =>
  typeof data[key] === "string" ? data[key] : null

const strings = (value: unknown): Array<string> =>
  Array.isArray(value) ? value.filter((v): v is string => typeof v === "string") : []

const errorLines = (data: Readonly<Record<string, unknown>>) => strings(data.last_lines).slice(-3)

const subjectKey = (subject: Subject) => `${subject.type}:${subject.id}`

/** The open (not dismissed) item of a subject, if any. */
const openItemOf = (state: InboxState, subject: Subject): ReviewItem | undefined => {
  const key = subjectKey(subject)
  for (const item of state.items.values()) if (!item.dismissed && subjectKey(item.subject) === key) return item
  return undefined
}

/**
 * The subject's `permission` item, dismissed or not (a dismissed card does not close the dialog
 * in its pane), or undefined when the subject is not waiting on a permission request.
 */
const permissionOf = (state: InboxState, subject: Subject): ReviewItem | undefined => {
  const key = subjectKey(subject)
  for (const item of state.items.values())
    if (item.kind === "permission" && subjectKey(item.subject) === key) return item
  return undefined
}

/** Mutable working copy of a state, for one fold step. */
interface Draft {
  last: number
  items: Map<string, ReviewItem>
  sessions: Map<string, Session>
  workers: Map<string, WorkerCardInfo>
  ended: Set<string>
}

/** Removes every item of `subject` (open or dismissed). */
const clearSubject = (draft: Draft, subject: Subject) => {
  const key = subjectKey(subject)
  for (const [id, item] of draft.items) if (subjectKey(item.subject) === key) draft.items.delete(id)
}

/**
 * Removes the subject's items of one of `kinds`, open or dismissed: what they stood for is over
 * (a dismissed card kept would come back stale on `restore`).
 */
const closeKinds = (draft: Draft, subject: Subject, kinds: ReadonlyArray<ReviewKind>) => {
  const key = subjectKey(subject)
  for (const [id, item] of draft.items)
    if (subjectKey(item.subject) === key && kinds.includes(item.kind)) draft.items.delete(id)
}

const provenanceOf = (draft: Draft, subject: Subject, eventId: number): string => {
  if (subject.type === "worker") {
    const info = draft.workers.get(subject.id)
    const where = info?.path === null || info?.path === undefined ? "" : ` · ${info.path}`
    return `worker ${subject.id}${info === undefined ? "" : ` · ${info.kind}`}${where} · event ${eventId}`
  }
  if (subject.type === "checkpoint") return `checkpoint ${subject.id} · event ${eventId}`
  const session = draft.sessions.get(subject.id)
  const cwd = session?.cwd === null || session?.cwd === undefined ? "" : ` · ${session.cwd}`
  return `session ${subject.id.slice(0, 8)}${cwd} · event ${eventId}`
}

/** Raises a new item for the event's subject, replacing whatever the subject had. */
const raise = (draft: Draft, event: TrailEvent, kind: ReviewKind, headline: string, bullets: ReadonlyArray<string>) => {
  clearSubject(draft, event.subject)
  const id = `i${event.id}`
  draft.items.set(
    id,
    new ReviewItem(
      {
        id,
        kind,
        subject: event.subject,
        headline: headlineOf(headline),
        since: event.at,
        bullets: bullets.slice(0, MAX_BULLETS).map(headlineOf),
        actions: [...actionsOf[kind]],
        provenance: provenanceOf(draft, event.subject, event.id),
        dismissed: false,
        skipped_until: null
      },
      { disableValidation: true }
    )
  )
}

const updateItem = (draft: Draft, id: unknown, change: Partial<Pick<ReviewItem, "dismissed" | "skipped_until">>) => {
  if (typeof id !== "string") return
  const item = draft.items.get(id)
  if (item !== undefined) draft.items.set(id, new ReviewItem({ ...item, ...change }, { disableValidation: true }))
}

const agentOf = (data: Readonly<Record<string, unknown>>): AgentProcess | null => {
  const agent = data.agent
  if (!Predicate.isRecord(agent)) return null
  const { pid, start } = agent
  return typeof pid === "number" && Number.isInteger(pid) && typeof start === "number" ? { pid, start } : null
}

/** Removes a session and everything it raised. */
const endSession = (draft: Draft, id: string) => {
  clearSubject(draft, { type: "session", id })
  draft.sessions.delete(id)
  draft.ended.add(`session:${id}`)
}

/** What a worker reported itself: its own hook events (a Stop after `trail worker done`) never replace it. */
const REPORTED: ReadonlyArray<ReviewKind> = ["ready", "failed", "patch_proposed", "needs_input"]

/** True when a hook event of `subject` must not raise an item: its session ended, or the worker reported. */
const quiet = (draft: Draft, subject: Subject) => {
  if (draft.ended.has(subjectKey(subject))) return true
  const open = openItemOf(draft, subject)
  return subject.type === "worker" && open !== undefined && REPORTED.includes(open.kind)
}

/**
 * True when a hook event is older (by the hook's own clock, `at`) than the subject's card that a
 * later hook raised: PermissionRequest and UserPromptSubmit hooks are async, so their events can
 * commit after the synchronous Stop that followed them. Such an event is history, not news: a late
 * permission request must not raise a card whose keys would answer another dialog (or none), and
 * a late prompt must not close the dialog that came after it.
 */
const late = (draft: Draft, event: TrailEvent) => {
  const key = subjectKey(event.subject)
  for (const item of draft.items.values())
    if (subjectKey(item.subject) === key && HOOK_KINDS.includes(item.kind) && item.since > event.at) return true
  return false
}

/** The kinds a hook event raises. */
const HOOK_KINDS: ReadonlyArray<ReviewKind> = ["stopped", "permission"]

/**
 * Records the session's pane from a hook event. A pane now used by another session means the
 * old one is over (one agent per pane: a new `claude` in a pane is a new session), so the old
 * session and its item go.
 */
const touchSession = (draft: Draft, event: TrailEvent, state: Session["state"] | null) => {
  const id = event.subject.id
  const pane = str(event.data, "pane")
  const socket = str(event.data, "socket")
  if (pane !== null) {
    for (const [otherId, other] of draft.sessions)
      if (otherId !== id && other.pane === pane && other.socket === socket) endSession(draft, otherId)
  }
  const previous = draft.sessions.get(id)
  const samePane = previous !== undefined && previous.pane === pane && previous.socket === socket
  draft.sessions.set(
    id,
    new Session(
      {
        id,
        pane,
        socket,
        agent: agentOf(event.data) ?? (samePane ? previous.agent : null),
        cwd: str(event.data, "cwd") ?? previous?.cwd ?? null,
        transcript_path: str(event.data, "transcript_path") ?? previous?.transcript_path ?? null,
        state: state ?? previous?.state ?? "working",
        started_at: previous?.started_at ?? event.at,
        updated_at: event.at
      },
      { disableValidation: true }
    )
  )
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

const foldInto = (draft: Draft, event: TrailEvent): void => {
  const { subject, data } = event
  switch (event.type) {
    case "worker.spawned":
      draft.workers.set(subject.id, {
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
      const pending = permissionOf(draft, subject)
      if (pending !== undefined) draft.items.delete(pending.id)
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
      draft.ended.delete(subjectKey(subject))
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
      draft.ended.add(subjectKey(subject))
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
      if (typeof data.item === "string") draft.items.delete(data.item)
      return
  }
}

/** Folds events (in id order) into the state; events at or below `state.last` are ignored. */
export const referenceFold = (state: InboxState, events: Iterable<TrailEvent>): InboxState => {
  const draft: Draft = {
    last: state.last,
    items: new Map(state.items),
    sessions: new Map(state.sessions),
    workers: new Map(state.workers),
    ended: new Set(state.ended)
  }
  for (const event of events) {
    if (event.id <= draft.last) continue
    foldInto(draft, event)
    draft.last = event.id
  }
  return draft
}
