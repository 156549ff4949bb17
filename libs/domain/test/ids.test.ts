import { assert, describe, it } from "@effect/vitest"
import { Either, FastCheck as fc, Schema } from "effect"
import { AgentId, FolderPath, normalizeFolderPath, parentFolder, TaskName } from "../src/index.js"

const segment = fc.stringMatching(/^[a-zA-Z0-9_-]{1,6}$/)

describe("normalizeFolderPath", () => {
  it("canonicalises the forms an agent types", () => {
    const cases: Array<[string, string]> = [
      ["./src/api/", "src/api"],
      ["src//api", "src/api"],
      ["src/./api/.", "src/api"],
      ["src/lib/../api", "src/api"],
      [".", "."],
      ["./", "."],
      ["src/..", "."]
    ]
    for (const [raw, expected] of cases) assert.deepStrictEqual(normalizeFolderPath(raw), Either.right(expected), raw)
  })

  it("rejects paths that escape the root, absolute paths and empty input", () => {
    for (const raw of ["..", "../x", "src/../../x", "/etc", "", "a\0b"]) {
      assert.isTrue(Either.isLeft(normalizeFolderPath(raw)), raw)
    }
  })

  it.prop(
    "is idempotent and its output always decodes as a FolderPath",
    [fc.array(fc.oneof(segment, fc.constantFrom(".", "..", "")), { maxLength: 8 })],
    ([parts]) => {
      const result = normalizeFolderPath(parts.join("/") || ".")
      if (Either.isLeft(result)) return
      assert.deepStrictEqual(normalizeFolderPath(result.right), Either.right(result.right))
      assert.isTrue(Schema.is(FolderPath)(result.right))
      assert.isFalse(result.right.split("/").includes(".."))
    }
  )

  it.prop(
    "never lets a path climb above the root",
    [fc.array(fc.oneof(segment, fc.constant("..")), { minLength: 1, maxLength: 8 })],
    ([parts]) => {
      let depth = 0
      let escapes = false
      for (const p of parts) {
        depth += p === ".." ? -1 : 1
        if (depth < 0) escapes = true
      }
      assert.strictEqual(Either.isLeft(normalizeFolderPath(parts.join("/"))), escapes)
    }
  )
})

describe("names", () => {
  it("accept ordinary task and agent names", () => {
    for (const name of ["p0-bugs", "refine", "sec/auth", "a1", "w3", "0f8c-session-id", "déjà vu"]) {
      assert.isTrue(Schema.is(TaskName)(name), name)
      assert.isTrue(Schema.is(AgentId)(name), name)
    }
  })

  it("reject empty, padded, control-character and overlong names with a message naming the thing", () => {
    for (const name of ["", " x", "x ", "a\nb", "a\u0007", "x".repeat(129)]) {
      const decoded = Schema.decodeUnknownEither(TaskName)(name)
      assert.isTrue(Either.isLeft(decoded), JSON.stringify(name))
      if (Either.isLeft(decoded)) assert.include(decoded.left.message, "task name")
    }
  })
})

describe("parentFolder", () => {
  it("walks up one level and stops at the root", () => {
    assert.strictEqual(parentFolder(FolderPath.make("src/api")), "src")
    assert.strictEqual(parentFolder(FolderPath.make("src")), ".")
    assert.strictEqual(parentFolder(FolderPath.make(".")), ".")
  })
})

describe("isTrailError", () => {
  it("recognises trail's errors and nothing else", async () => {
    const { isTrailError, TaskNotFound, errorCode, StoreError } = await import("../src/index.js")
    assert.isTrue(isTrailError(new TaskNotFound({ task: "t" })))
    assert.strictEqual(errorCode(new StoreError({ reason: "readonly", detail: "x" })), "store-readonly")
    assert.isFalse(isTrailError({ _tag: "SystemError", message: "nope" }))
    assert.isFalse(isTrailError({ _tag: "toString", message: "inherited keys do not count" }))
    assert.isFalse(isTrailError(null))
  })
})
