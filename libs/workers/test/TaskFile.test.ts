import { assert, describe, it } from "@effect/vitest"
import { builtinKinds } from "../src/Kinds.js"
import { composeTaskFile, UNIVERSAL_GUARDRAILS } from "../src/TaskFile.js"

const kind = (name: string) => builtinKinds().find((k) => k.name === name)!

describe("task.md", () => {
  it("is the guardrails, then the kind, then the task, in that order", () => {
    const text = composeTaskFile({
      kind: kind("scout"),
      workerId: "w3",
      task: "Find callers of getUser().",
      folder: "src/api"
    })
    const guardrails = text.indexOf(UNIVERSAL_GUARDRAILS.trimEnd())
    const readOnly = text.indexOf("You are read-only")
    const body = text.indexOf("## Your kind: scout")
    const task = text.indexOf("## Your task (folder `src/api`)")
    assert.strictEqual(guardrails, 0)
    assert.isTrue(guardrails < readOnly && readOnly < body && body < task, text)
    assert.include(text, "Find callers of getUser().")
    assert.include(text, "(worker w3)")
  })

  it("keeps the guardrails for every kind and states each kind's posture", () => {
    for (const k of builtinKinds()) {
      const text = composeTaskFile({ kind: k, workerId: "w1", task: "t" })
      assert.isTrue(text.startsWith(UNIVERSAL_GUARDRAILS.trimEnd()), k.name)
      assert.include(text, "trail worker done")
      assert.strictEqual(text.includes("You are read-only"), k.readOnly, k.name)
      assert.strictEqual(text.includes("detached git worktree; your diff"), k.worktree, k.name)
    }
  })
})
