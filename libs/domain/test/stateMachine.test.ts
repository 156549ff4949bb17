import { assert, describe, it } from "@effect/vitest"
import { Effect, Exit, Schema } from "effect"
import {
  ArtifactId,
  canTransition,
  CheckpointId,
  CheckpointMachine,
  CheckpointState,
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

describe("checkpoint state machine", () => {
  it("allows exactly saved → consumed → purged and saved → deleted", () => {
    const allowed = new Set(["saved→consumed", "saved→deleted", "consumed→purged"])
    for (const from of CheckpointState.literals)
      for (const to of CheckpointState.literals)
        assert.strictEqual(canTransition(CheckpointMachine, from, to), allowed.has(`${from}→${to}`), `${from}→${to}`)
    assert.deepStrictEqual([...terminalStates(CheckpointMachine)].sort(), ["deleted", "purged"])
  })

  it("checkpoint and artifact ids have one shape", () => {
    assert.isTrue(Schema.is(CheckpointId)("cp-20261122-031500-3f2a"))
    assert.isTrue(Schema.is(ArtifactId)("cp-20261122-031500-3f2a@12"))
    for (const bad of ["cp-1", "cp-20261122-031500-3F2A", "../x"]) assert.isFalse(Schema.is(CheckpointId)(bad), bad)
    assert.isFalse(Schema.is(ArtifactId)("cp-20261122-031500-3f2a@0"))
  })
})
