import { assert, describe, it } from "@effect/vitest"
import { Effect, Exit, Schema } from "effect"
import {
  canTransition,
  sourcesOf,
  terminalStates,
  transition,
  WorkerId,
  WorkerMachine,
  WorkerState,
  WorkItemMachine,
  WorkItemStatus
} from "../src/index.js"

const states = WorkItemStatus.literals

describe("work item state machine", () => {
  it("allows exactly the SPEC transitions", () => {
    const allowed = new Set([
      "pending→leased",
      "pending→done",
      "pending→skipped",
      "leased→pending",
      "leased→done",
      "leased→skipped"
    ])
    for (const from of states) {
      for (const to of states) {
        assert.strictEqual(canTransition(WorkItemMachine, from, to), allowed.has(`${from}→${to}`), `${from}→${to}`)
      }
    }
  })

  it.effect("transition fails with InvalidTransition outside the table", () =>
    Effect.gen(function* () {
      assert.strictEqual(yield* transition(WorkItemMachine, "pending", "leased"), "leased")
      const exit = yield* Effect.exit(transition(WorkItemMachine, "done", "pending"))
      assert.isTrue(Exit.isFailure(exit))
      const error = yield* Effect.flip(transition(WorkItemMachine, "skipped", "leased"))
      assert.strictEqual(error._tag, "InvalidTransition")
      assert.strictEqual(error.from, "skipped")
    })
  )

  it("derives the SQL guards and terminal states from the table", () => {
    assert.deepStrictEqual([...sourcesOf(WorkItemMachine, "done")].sort(), ["leased", "pending"])
    assert.deepStrictEqual([...sourcesOf(WorkItemMachine, "pending")], ["leased"])
    assert.deepStrictEqual([...terminalStates(WorkItemMachine)].sort(), ["done", "skipped"])
  })
})

describe("worker state machine", () => {
  it("allows exactly the SPEC lifecycle", () => {
    const live = ["spawning", "running", "needs_input"]
    const allowed = new Set([
      "spawning→running",
      "running→needs_input",
      "needs_input→running",
      "running→ready",
      "needs_input→ready",
      ...live.flatMap((s) => [`${s}→failed`, `${s}→lost`, `${s}→cancelled`])
    ])
    for (const from of WorkerState.literals) {
      for (const to of WorkerState.literals) {
        assert.strictEqual(canTransition(WorkerMachine, from, to), allowed.has(`${from}→${to}`), `${from}→${to}`)
      }
    }
    assert.deepStrictEqual([...terminalStates(WorkerMachine)].sort(), ["cancelled", "failed", "lost", "ready"])
  })

  it("worker ids look like w1, w2, …", () => {
    for (const ok of ["w1", "w2", "w10", "w999"]) assert.isTrue(Schema.is(WorkerId)(ok), ok)
    for (const bad of ["w0", "w01", "1", "W1", "w", "w1;rm", ""]) assert.isFalse(Schema.is(WorkerId)(bad), bad)
  })
})
