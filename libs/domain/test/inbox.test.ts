import { assert, beforeEach, describe, it } from "@effect/vitest"
import { FastCheck as fc, Schema } from "effect"
import {
  attentionOrder,
  beginFold,
  emptyInbox,
  finish,
  foldInto,
  findItem,
  foldEvents,
  fromSnapshot,
  InboxSnapshot,
  permissionOf,
  toSnapshot,
  TrailEvent,
  type SubjectType
} from "../src/index.js"
import { referenceFold } from "./inboxReference.js"

let nextId = 1
const ev = (at: number, type: string, subject: [SubjectType, string], data: Record<string, unknown> = {}) =>
  new TrailEvent({ id: nextId++, at, type, subject: { type: subject[0], id: subject[1] }, data })

const kindsInOrder = (events: ReadonlyArray<TrailEvent>, now = 1e12) =>
  attentionOrder(foldEvents(emptyInbox, events), now).map((i) => `${i.kind}:${i.subject.id}`)

describe("inbox projection", () => {
  beforeEach(() => {
    nextId = 1
  })

  it("puts the most stuck first: waiting kinds, then failures, then answers, oldest first in a class", () => {
    const events = [
      ev(1, "worker.spawned", ["worker", "w1"], { kind: "scout", text: "t", path: "src" }),
      ev(2, "worker.ready", ["worker", "w1"], {
        result: { outcome: "3 bugs", found: 3, evidence: ["a.ts:1", "b.ts:2"], recommend: ["fix a", "fix b"] }
      }),
      ev(3, "session.stopped", ["session", "s-old"], { pane: "%1", message: "Done. Next?" }),
      ev(4, "worker.failed", ["worker", "w2"], { reason: "no build" }),
      ev(5, "session.permission", ["session", "s-perm"], {
        pane: "%2",
        tool_name: "Bash",
        tool_summary: "rm -rf dist"
      }),
      ev(6, "worker.needs_input", ["worker", "w3"], { question: "Drop the table?" }),
      ev(7, "worker.note", ["worker", "w4"], { text: "chatter" }),
      ev(8, "worker.todos", ["worker", "w4"], { todos: ["a"] })
    ]
    assert.deepStrictEqual(kindsInOrder(events), [
      "permission:s-perm",
      "needs_input:w3",
      "failed:w2",
      "ready:w1",
      "stopped:s-old"
    ])
    const inbox = foldEvents(emptyInbox, events)
    const ready = findItem(inbox, "w1")!
    assert.strictEqual(ready.headline, "w1 finished: 3 bugs")
    // What was found and how much evidence backs it, then the recommendations.
    assert.deepStrictEqual(ready.bullets, ["found 3 · 2 evidence item(s)", "fix a", "fix b"])
    assert.strictEqual(ready.provenance, "worker w1 · scout · src · event 2")
    assert.strictEqual(findItem(inbox, "s-perm")!.headline, "wants to use Bash: rm -rf dist")
  })

  it("a failed or lost worker's card shows the last lines it printed (the error captured)", () => {
    const inbox = foldEvents(emptyInbox, [
      ev(1, "worker.failed", ["worker", "w1"], {
        reason: "its program exited with status 1",
        last_lines: ["> vitest run", "FAIL test/a.test.ts", "AssertionError: expected 1 to be 2", "1 failed"]
      }),
      ev(2, "worker.lost", ["worker", "w2"], { reason: "its window vanished" })
    ])
    assert.deepStrictEqual(findItem(inbox, "w1")!.bullets, [
      "FAIL test/a.test.ts",
      "AssertionError: expected 1 to be 2",
      "1 failed"
    ])
    assert.deepStrictEqual(findItem(inbox, "w2")!.bullets, [])
  })

  it("the human's prompt, an answer, cancellation and session end close items; dismissed items hide", () => {
    const base = [
      ev(1, "session.stopped", ["session", "sa"], { pane: "%1", message: "Which DB?" }),
      ev(2, "worker.needs_input", ["worker", "w1"], { question: "q" }),
      ev(3, "worker.failed", ["worker", "w2"], { reason: "r" }),
      ev(4, "session.permission", ["session", "sb"], { pane: "%2", tool_name: "Edit" })
    ]
    assert.strictEqual(kindsInOrder(base).length, 4)
    const after = [
      ...base,
      ev(5, "session.prompted", ["session", "sa"], { pane: "%1" }),
      ev(6, "worker.running", ["worker", "w1"], { from: "needs_input" }),
      ev(7, "session.ended", ["session", "sb"], { reason: "exit" }),
      ev(8, "inbox.dismissed", ["worker", "w2"], { item: "i3" })
    ]
    assert.deepStrictEqual(kindsInOrder(after), [])
    const restored = [...after, ev(9, "inbox.restored", ["worker", "w2"], { item: "i3" })]
    assert.deepStrictEqual(kindsInOrder(restored), ["failed:w2"])
  })

  it("a skipped item goes to the back for its cooldown, then returns to its place", () => {
    const events = [
      ev(1, "worker.needs_input", ["worker", "w1"], { question: "a" }),
      ev(2, "worker.needs_input", ["worker", "w2"], { question: "b" }),
      ev(3, "worker.ready", ["worker", "w3"], { result: { outcome: "x" } }),
      ev(10, "inbox.skipped", ["worker", "w1"], { item: "i1", until: 30_010 })
    ]
    assert.deepStrictEqual(kindsInOrder(events, 20_000), ["needs_input:w2", "ready:w3", "needs_input:w1"])
    assert.deepStrictEqual(kindsInOrder(events, 30_010), ["needs_input:w1", "needs_input:w2", "ready:w3"])
  })

  it("a reused pane belongs to the newest session; the older one is over, its item gone", () => {
    const socket = "/tmp/tmux-0/default"
    const inbox = foldEvents(emptyInbox, [
      ev(1, "session.started", ["session", "old"], { pane: "%5", socket, agent: { pid: 10, start: 1 } }),
      ev(2, "session.stopped", ["session", "old"], { pane: "%5", socket, message: "m" }),
      ev(3, "session.started", ["session", "new"], { pane: "%5", socket, agent: { pid: 20, start: 2 } }),
      // A late hook of the old session does not take the pane back.
      ev(4, "session.stopped", ["session", "old"], { pane: "%5", socket, message: "late" })
    ])
    assert.isFalse(inbox.sessions.has("old"))
    assert.strictEqual(findItem(inbox, "old"), undefined)
    assert.deepInclude(inbox.sessions.get("new")!, { pane: "%5", agent: { pid: 20, start: 2 } })
  })

  it("the agent's process is kept from the hook that recorded it while the pane stays", () => {
    const socket = "/tmp/tmux-0/default"
    const inbox = foldEvents(emptyInbox, [
      ev(1, "session.started", ["session", "s"], { pane: "%5", socket, agent: { pid: 10, start: 7 } }),
      ev(2, "session.stopped", ["session", "s"], { pane: "%5", socket, message: "m", agent: null })
    ])
    assert.deepStrictEqual(inbox.sessions.get("s")!.agent, { pid: 10, start: 7 })
    const moved = foldEvents(inbox, [ev(3, "session.stopped", ["session", "s"], { pane: "%6", socket, message: "m" })])
    assert.strictEqual(moved.sessions.get("s")!.agent, null)
  })

  it("a worker's own hook events never replace or delete what it reported", () => {
    const events = [
      ev(1, "worker.spawned", ["worker", "w1"], { kind: "scout", text: "t" }),
      ev(2, "worker.ready", ["worker", "w1"], { result: { outcome: "found it", found: 2 } }),
      ev(3, "session.stopped", ["worker", "w1"], { message: "bye" }),
      ev(4, "session.permission", ["worker", "w1"], { tool_name: "Bash" }),
      ev(5, "session.ended", ["worker", "w1"], { reason: "exit" }),
      ev(6, "worker.spawned", ["worker", "w2"], { kind: "scout", text: "t" }),
      ev(7, "worker.failed", ["worker", "w2"], { reason: "crashed" }),
      ev(8, "session.ended", ["worker", "w2"], {}),
      ev(9, "session.stopped", ["worker", "w2"], { message: "late" })
    ]
    assert.deepStrictEqual(kindsInOrder(events), ["failed:w2", "ready:w1"])
    // Before it reports, a worker's Stop says it waits; its report then replaces that.
    assert.deepStrictEqual(
      kindsInOrder([
        ev(10, "session.stopped", ["worker", "w3"], { message: "waiting" }),
        ev(11, "worker.ready", ["worker", "w3"], { result: { outcome: "done" } })
      ]),
      ["ready:w3"]
    )
  })

  it("a worker told something while it waits on a permission dialog has denied it: the item goes, dismissed or not", () => {
    const spawned = ev(1, "worker.spawned", ["worker", "w1"], { kind: "claude", text: "t" })
    const asked = ev(2, "session.permission", ["worker", "w1"], { tool_name: "Bash" })
    const state = foldEvents(emptyInbox, [spawned, asked])
    assert.strictEqual(permissionOf(state, { type: "worker", id: "w1" })?.id, "i2")
    const told = foldEvents(state, [ev(3, "worker.told", ["worker", "w1"], { text: "no", denied: "i2" })])
    assert.deepStrictEqual(kindsInOrder([spawned, asked]), ["permission:w1"])
    assert.strictEqual(told.items.size, 0)
    assert.isUndefined(permissionOf(told, { type: "worker", id: "w1" }))
    const dismissed = foldEvents(state, [ev(4, "inbox.dismissed", ["worker", "w1"], { item: "i2" })])
    assert.strictEqual(permissionOf(dismissed, { type: "worker", id: "w1" })?.id, "i2")
    assert.strictEqual(foldEvents(dismissed, [ev(5, "worker.told", ["worker", "w1"], { text: "x" })]).items.size, 0)
    // A worker with a stopped card keeps it when told something (only a dialog is closed).
    const stopped = foldEvents(emptyInbox, [spawned, ev(6, "session.stopped", ["worker", "w1"], { message: "?" })])
    assert.strictEqual(foldEvents(stopped, [ev(7, "worker.told", ["worker", "w1"], { text: "x" })]).items.size, 1)
  })

  it("a worker's dismissed permission card goes when what it stood for is over (restore finds nothing stale)", () => {
    const spawned = ev(1, "worker.spawned", ["worker", "w1"], { kind: "claude", text: "t" })
    const asked = ev(2, "session.permission", ["worker", "w1"], { tool_name: "Bash" })
    const dismissed = foldEvents(emptyInbox, [
      spawned,
      asked,
      ev(3, "inbox.dismissed", ["worker", "w1"], { item: "i2" })
    ])
    assert.strictEqual(dismissed.items.size, 1)
    for (const type of ["session.ended", "session.prompted", "worker.running"]) {
      const over = foldEvents(dismissed, [
        ev(4, type, ["worker", "w1"]),
        ev(5, "inbox.restored", ["worker", "w1"], { item: "i2" })
      ])
      assert.strictEqual(over.items.size, 0, type)
    }
  })

  it("a permission request or prompt whose async hook commits after a later Stop or request is history, not news", () => {
    // PermissionRequest (hook at 100) committed after the Stop (hook at 200) that followed it.
    const reordered = foldEvents(emptyInbox, [
      ev(200, "session.stopped", ["session", "s1"], { pane: "%1", socket: "/s", message: "done" }),
      ev(100, "session.permission", ["session", "s1"], { pane: "%1", socket: "/s", tool_name: "Bash" })
    ])
    assert.deepStrictEqual(
      attentionOrder(reordered, 1e12).map((i) => `${i.kind}:${i.id}`),
      ["stopped:i1"]
    )
    assert.strictEqual(reordered.sessions.get("s1")?.state, "stopped")
    // A prompt submitted before the dialog, committed after it, does not close it.
    const prompt = foldEvents(emptyInbox, [
      ev(300, "session.permission", ["session", "s2"], { pane: "%2", socket: "/s", tool_name: "Edit" }),
      ev(250, "session.prompted", ["session", "s2"], { pane: "%2", socket: "/s" })
    ])
    assert.deepStrictEqual(
      attentionOrder(prompt, 1e12).map((i) => i.kind),
      ["permission"]
    )
    assert.strictEqual(prompt.sessions.get("s2")?.state, "permission")
    // The same for a worker's own hooks; in order, both still count.
    assert.deepStrictEqual(
      kindsInOrder([
        ev(500, "session.stopped", ["worker", "w9"], { message: "ok" }),
        ev(400, "session.permission", ["worker", "w9"], { tool_name: "Bash" }),
        ev(600, "session.permission", ["session", "s3"], { tool_name: "Bash" }),
        ev(700, "session.prompted", ["session", "s3"], {})
      ]),
      ["stopped:w9"]
    )
  })

  it("Stop and SessionEnd of one session leave no card in either order; a resumed session is news again", () => {
    for (const subject of [
      ["session", "s1"],
      ["worker", "w9"]
    ] as const) {
      const stop = (id: number) => ev(id, "session.stopped", [...subject], { pane: "%1", message: "m" })
      const end = (id: number) => ev(id, "session.ended", [...subject], { pane: "%1" })
      assert.deepStrictEqual(kindsInOrder([stop(1), end(2)]), [])
      assert.deepStrictEqual(kindsInOrder([end(3), stop(4)]), [])
      const resumed = [
        end(5),
        ev(6, "session.started", [...subject], { pane: "%1" }),
        ev(7, "session.stopped", [...subject], { pane: "%1", message: "again" })
      ]
      assert.deepStrictEqual(kindsInOrder(resumed), [`stopped:${subject[1]}`])
    }
  })

  it("a worker's change set makes its finish a patch_proposed item until promoted or discarded", () => {
    const events = [
      ev(1, "worker.ready", ["worker", "w1"], {
        result: { outcome: "renamed" },
        change_set: { files: 2, insertions: 5, deletions: 1 }
      })
    ]
    assert.deepStrictEqual(kindsInOrder(events), ["patch_proposed:w1"])
    assert.strictEqual(
      findItem(foldEvents(emptyInbox, events), "w1")!.headline,
      "w1 proposes a change: renamed (2 file(s) +5 -1)"
    )
    assert.deepStrictEqual(kindsInOrder([...events, ev(2, "worker.promoted", ["worker", "w1"], { files: 2 })]), [])
  })

  it("a fleet worker that found nothing is not news; one that found something is", () => {
    const events = [
      ev(1, "worker.spawned", ["worker", "w1"], { kind: "scout", text: "t", task: "sweep", path: "a" }),
      ev(2, "worker.spawned", ["worker", "w2"], { kind: "scout", text: "t", task: "sweep", path: "b" }),
      ev(3, "worker.spawned", ["worker", "w3"], { kind: "default", text: "by hand", task: null, path: null }),
      ev(4, "worker.ready", ["worker", "w1"], { result: { outcome: "clean", found: 0 } }),
      ev(5, "worker.ready", ["worker", "w2"], { result: { outcome: "2 bugs", found: 2 } }),
      ev(6, "worker.ready", ["worker", "w3"], { result: { outcome: "done", found: null } })
    ]
    assert.deepStrictEqual(kindsInOrder(events), ["ready:w2", "ready:w3"])
  })

  it("a new checkpoint raises a checkpoint item, last in attention order, until continued, consumed, deleted or dismissed", () => {
    const cp = (n: number) => `cp-20261122-03150${n}-3f2a`
    const saved = (at: number, n: number, data: Record<string, unknown> = {}) =>
      ev(at, "checkpoint.saved", ["checkpoint", cp(n)], {
        title: `handoff ${n}`,
        once: false,
        session: "5f1c2a9e-aaaa",
        workers: ["w1"],
        artifacts: 12,
        ...data
      })
    const events = [
      saved(1, 1),
      ev(2, "worker.failed", ["worker", "w9"], { reason: "no build" }),
      saved(3, 2, { once: true, session: null, workers: [] }),
      saved(4, 3),
      saved(5, 4),
      saved(6, 5)
    ]
    assert.deepStrictEqual(kindsInOrder(events), [
      "failed:w9",
      `checkpoint:${cp(1)}`,
      `checkpoint:${cp(2)}`,
      `checkpoint:${cp(3)}`,
      `checkpoint:${cp(4)}`,
      `checkpoint:${cp(5)}`
    ])
    const inbox = foldEvents(emptyInbox, events)
    const first = findItem(inbox, cp(1))!
    assert.strictEqual(first.headline, `checkpoint ${cp(1)}: handoff 1`)
    assert.deepStrictEqual(first.bullets, ["12 artifact(s) from session 5f1c2a9e and worker(s) w1"])
    assert.deepStrictEqual(first.actions, ["continue", "show", "skip", "dismiss"])
    assert.strictEqual(first.provenance, `checkpoint ${cp(1)} · event 1`)
    assert.deepStrictEqual(findItem(inbox, cp(2))!.bullets, ["12 artifact(s)", "--once: consumed when first continued"])

    const closed = foldEvents(inbox, [
      ev(7, "checkpoint.continued", ["checkpoint", cp(1)], { session: "s-next" }),
      ev(8, "checkpoint.consumed", ["checkpoint", cp(2)]),
      ev(9, "checkpoint.deleted", ["checkpoint", cp(3)]),
      ev(10, "inbox.dismissed", ["checkpoint", cp(4)], { item: findItem(inbox, cp(4))!.id }),
      // A checkpoint event about another subject type is not a checkpoint.
      ev(11, "checkpoint.deleted", ["session", cp(5)])
    ])
    assert.deepStrictEqual(
      attentionOrder(closed, 1e12).map((i) => `${i.kind}:${i.subject.id}`),
      ["failed:w9", `checkpoint:${cp(5)}`]
    )
    // Dismissed, not gone: restore brings it back; deleting it then closes it for good.
    const dismissed = findItem(closed, cp(4))!
    assert.isTrue(dismissed.dismissed)
    const deleted = foldEvents(closed, [ev(12, "checkpoint.deleted", ["checkpoint", cp(4)])])
    assert.isUndefined(findItem(deleted, cp(4)))
  })

  // Random event logs over a few subjects: any split of the log folded live (with the state saved
  // and loaded between chunks, as the store does) equals one rebuild from scratch.
  const subjects: ReadonlyArray<[SubjectType, string]> = [
    ["worker", "w1"],
    ["worker", "w2"],
    ["session", "s1"],
    ["session", "s2"]
  ]
  const eventArb = fc.record({
    type: fc.constantFrom(
      "worker.spawned",
      "worker.needs_input",
      "worker.running",
      "worker.ready",
      "worker.failed",
      "worker.lost",
      "worker.cancelled",
      "worker.promoted",
      "worker.note",
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
    subject: fc.constantFrom(...subjects),
    pane: fc.constantFrom("%1", "%2", null),
    socket: fc.constantFrom("/tmp/tmux-0/default", "/tmp/tmux-0/other", null),
    agent: fc.constantFrom(null, { pid: 10, start: 1 }, { pid: 11, start: 2 }),
    item: fc.integer({ min: 1, max: 40 }),
    files: fc.integer({ min: 0, max: 2 }),
    gap: fc.integer({ min: 0, max: 5_000 })
  })
  const saveAndLoad = (state: ReturnType<typeof foldEvents>) =>
    fromSnapshot(
      Schema.decodeUnknownSync(InboxSnapshot)(
        JSON.parse(JSON.stringify(Schema.encodeSync(InboxSnapshot)(toSnapshot(state))))
      )
    )

  /** Events of a random log, in id order, with the data every fold step reads. */
  const eventsOf = (raw: ReadonlyArray<typeof eventArb extends fc.Arbitrary<infer R> ? R : never>) => {
    let at = 1_000
    return raw.map((r, i) => {
      at += r.gap
      return new TrailEvent({
        id: i + 1,
        at,
        type: r.type,
        subject: { type: r.subject[0], id: r.subject[1] },
        data: {
          pane: r.pane,
          socket: r.socket,
          agent: r.agent,
          question: "q",
          reason: "r",
          last_lines: ["make: *** [all] Error 1"],
          message: "line one\n- a bullet",
          tool_name: "Bash",
          item: `i${r.item}`,
          until: at + 30_000,
          result: { outcome: "o", recommend: ["x"] },
          change_set: { files: r.files, insertions: 1, deletions: 0 }
        }
      })
    })
  }

  it.prop(
    "a live fold in chunks, saved and loaded between them, equals a rebuild from scratch",
    [fc.array(eventArb, { maxLength: 60 }), fc.array(fc.nat(60), { maxLength: 6 })],
    ([raw, cuts]) => {
      const events = eventsOf(raw)
      const at = events.at(-1)?.at ?? 1_000
      const rebuilt = foldEvents(emptyInbox, events)
      const boundaries = [...new Set(cuts.map((c) => Math.min(c, events.length)))].sort((a, b) => a - b)
      let live = emptyInbox
      let from = 0
      for (const cut of [...boundaries, events.length]) {
        // Chunks may overlap what was folded already (a catch-up racing the live fold): ignored by id.
        live = saveAndLoad(foldEvents(live, events.slice(Math.max(0, from - 1), cut)))
        from = cut
      }
      assert.deepStrictEqual(toSnapshot(live), toSnapshot(rebuilt))
      assert.deepStrictEqual(attentionOrder(live, at), attentionOrder(rebuilt, at))
    },
    { fastCheck: { numRuns: 300 } }
  )

  it.prop(
    "the indexed fold equals the scanning reference fold, and its changes name every key that differs",
    [
      fc.array(eventArb, { maxLength: 80 }),
      fc.array(fc.nat(80), { maxLength: 6 }),
      fc.array(fc.constantFrom(...subjects), { maxLength: 6 })
    ],
    ([raw, cuts, extra]) => {
      // More subjects than the chunk property uses, so that panes change hands between sessions.
      const events = eventsOf(raw).map((event, i) => {
        const other = extra[i % Math.max(1, extra.length)]
        return other === undefined || i % 3 !== 0
          ? event
          : new TrailEvent({ ...event, subject: { type: other[0], id: `${other[1]}x` } })
      })
      const reference = referenceFold(emptyInbox, events)
      // One draft across batches (the store's rebuild), with the changes of the last batch checked.
      const boundaries = [...new Set(cuts.map((c) => Math.min(c, events.length)))].sort((a, b) => a - b)
      const draft = beginFold(emptyInbox)
      let from = 0
      for (const cut of boundaries) {
        foldInto(draft, events.slice(from, cut))
        from = cut
      }
      const before = toSnapshot(referenceFold(emptyInbox, events.slice(0, from)))
      const tail = beginFold(saveAndLoad(finish(draft)))
      foldInto(tail, events.slice(from))
      const indexed = finish(tail)
      assert.deepStrictEqual(toSnapshot(indexed), toSnapshot(reference))
      assert.deepStrictEqual(attentionOrder(indexed, 5_000), attentionOrder(reference, 5_000))
      // Whatever differs between before and after the tail is named in its changes.
      const after = toSnapshot(indexed)
      const changes = tail.changes
      assert.isNotNull(changes)
      const differs = <K, V>(a: ReadonlyArray<V>, b: ReadonlyArray<V>, key: (v: V) => K) => {
        const left = new Map(a.map((v) => [key(v), JSON.stringify(v)]))
        const right = new Map(b.map((v) => [key(v), JSON.stringify(v)]))
        return [...new Set([...left.keys(), ...right.keys()])].filter((k) => left.get(k) !== right.get(k))
      }
      for (const id of differs(before.items, after.items, (i) => i.id)) assert.isTrue(changes.items.has(id))
      for (const id of differs(before.sessions, after.sessions, (s) => s.id)) assert.isTrue(changes.sessions.has(id))
      for (const id of differs(before.workers, after.workers, ([w]) => w)) assert.isTrue(changes.workers.has(id))
      for (const key of differs(before.ended, after.ended, (e) => e)) assert.isTrue(changes.ended.has(key))
      assert.throws(() => foldInto(tail, events))
    },
    { fastCheck: { numRuns: 500 } }
  )

  it.prop(
    "after any history, a session's Stop and SessionEnd in either order leave it no card; a worker's report survives its hooks",
    [
      fc.array(eventArb, { maxLength: 30 }),
      fc.constantFrom(...subjects),
      fc.boolean(),
      fc.array(fc.constantFrom("session.stopped", "session.permission", "session.notified", "session.ended"), {
        maxLength: 4
      })
    ],
    ([raw, subject, endFirst, hooks]) => {
      const events = raw.map(
        (r, i) =>
          new TrailEvent({
            id: i + 1,
            at: 1_000 + i,
            type: r.type,
            subject: { type: r.subject[0], id: r.subject[1] },
            data: { pane: r.pane, item: `i${r.item}`, result: { outcome: "o", found: 1 } }
          })
      )
      const n = events.length
      const mk = (id: number, type: string) =>
        new TrailEvent({
          id,
          at: 5_000 + id,
          type,
          subject: { type: subject[0], id: subject[1] },
          data: { pane: "%1" }
        })
      const pair = endFirst
        ? [mk(n + 1, "session.ended"), mk(n + 2, "session.stopped")]
        : [mk(n + 1, "session.stopped"), mk(n + 2, "session.ended")]
      const after = foldEvents(emptyInbox, [...events, ...pair])
      const left = [...after.items.values()].filter(
        (item) => item.subject.id === subject[1] && (item.kind === "stopped" || item.kind === "permission")
      )
      assert.deepStrictEqual(left, [])
      // A worker that reported keeps its card whatever its own hooks say afterwards.
      const reported = [
        ...events,
        new TrailEvent({
          id: n + 1,
          at: 9_000,
          type: "worker.failed",
          subject: { type: "worker", id: "w1" },
          data: { reason: "r" }
        }),
        ...hooks.map(
          (type, i) =>
            new TrailEvent({ id: n + 2 + i, at: 9_001 + i, type, subject: { type: "worker", id: "w1" }, data: {} })
        )
      ]
      const card = [...foldEvents(emptyInbox, reported).items.values()].find((i) => i.subject.id === "w1")
      assert.strictEqual(card?.kind, "failed")
    },
    { fastCheck: { numRuns: 1000 } }
  )
})
