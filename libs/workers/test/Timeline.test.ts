import { describe, expect, it } from "@effect/vitest"
import { TrailEvent, type SubjectType } from "@trail/domain"
import { Timeline } from "@trail/workers"

let next = 0
const event = (type: SubjectType, id: string, name: string) =>
  new TrailEvent({ id: ++next, at: 1_000 * next, type: name, subject: { type, id }, data: {} })

describe("Timeline.episodes", () => {
  it("is empty for no events", () => {
    expect(Timeline.episodes([])).toEqual([])
  })

  it("groups by subject in the order subjects first appear, keeping each subject's events in log order", () => {
    const log = [
      event("worker", "w1", "worker.spawned"),
      event("session", "s1", "session.started"),
      event("worker", "w2", "worker.spawned"),
      event("worker", "w1", "worker.done"),
      event("session", "s1", "session.stopped"),
      event("supervisor", "1@h", "supervisor.started")
    ]
    const grouped = Timeline.episodes(log)
    expect(grouped.map((e) => [e.subject.type, e.subject.id, e.events.map((x) => x.type)])).toEqual([
      ["worker", "w1", ["worker.spawned", "worker.done"]],
      ["session", "s1", ["session.started", "session.stopped"]],
      ["worker", "w2", ["worker.spawned"]],
      ["supervisor", "1@h", ["supervisor.started"]]
    ])
    // Every event lands in exactly one episode.
    expect(grouped.flatMap((e) => e.events).length).toBe(log.length)
  })

  it("keeps a worker and a session with the same id apart", () => {
    const grouped = Timeline.episodes([
      event("worker", "x", "a"),
      event("session", "x", "b"),
      event("worker", "x", "c")
    ])
    expect(grouped.map((e) => `${e.subject.type}:${e.events.length}`)).toEqual(["worker:2", "session:1"])
  })
})
