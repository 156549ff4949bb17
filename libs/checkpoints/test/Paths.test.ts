import { assert, describe, it } from "@effect/vitest"
import { CheckpointId } from "@trail/domain"
import { bundlePaths } from "../src/index.js"

describe("bundlePaths", () => {
  it("puts the header and the artifacts side by side under .trail/checkpoints", () => {
    const id = CheckpointId.make("cp-20261122-031500-3f2a")
    assert.deepStrictEqual(bundlePaths("/work/repo/", id), {
      dir: "/work/repo/.trail/checkpoints",
      header: "/work/repo/.trail/checkpoints/cp-20261122-031500-3f2a.md",
      artifacts: "/work/repo/.trail/checkpoints/cp-20261122-031500-3f2a.artifacts.json"
    })
  })
})
