import * as NodeContext from "@effect/platform-node/NodeContext"
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { execFileSync } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { createWorktree, diffStat, discard, promote } from "../src/ChangeSets.js"
import { tempDir } from "./helpers.js"

const gitEnv = {
  ...process.env,
  GIT_AUTHOR_NAME: "t",
  GIT_AUTHOR_EMAIL: "t@t",
  GIT_COMMITTER_NAME: "t",
  GIT_COMMITTER_EMAIL: "t@t"
}
const git = (cwd: string, ...args: Array<string>) => execFileSync("git", args, { cwd, env: gitEnv, encoding: "utf8" })

/** A git repository with a committed file or two and `.trail/` ignored, removed with the scope. */
const repo = Effect.flatMap(tempDir("trail-changeset-"), (root) =>
  Effect.sync(() => {
    fs.writeFileSync(path.join(root, ".gitignore"), ".trail/\n")
    fs.writeFileSync(path.join(root, "app.ts"), "export const a = 1\nexport const b = 2\n")
    fs.writeFileSync(path.join(root, "old.ts"), "to be deleted\n")
    git(root, "init", "-q")
    git(root, "add", "-A")
    git(root, "commit", "-qm", "initial")
    return root
  })
)

const read = (file: string) => fs.readFileSync(file, "utf8")

describe("change sets (real git)", () => {
  it.layer(NodeContext.layer)((it) => {
    it.scoped("a worker's edits, new and deleted files become one change set that promotes into the root", () =>
      Effect.gen(function* () {
        const root = yield* repo
        const wt = yield* createWorktree(root, "w1")
        assert.strictEqual(wt.path, path.join(root, ".trail", "worktrees", "w1"))
        assert.strictEqual(wt.base, git(root, "rev-parse", "HEAD").trim())
        assert.strictEqual(git(wt.path, "rev-parse", "--abbrev-ref", "HEAD").trim(), "HEAD") // detached
        fs.writeFileSync(path.join(wt.path, "app.ts"), "export const a = 1\nexport const b = 3\nexport const c = 4\n")
        fs.writeFileSync(path.join(wt.path, "new file.ts"), "fresh\n")
        fs.rmSync(path.join(wt.path, "old.ts"))
        const stat = yield* diffStat(wt)
        assert.deepStrictEqual(
          { ...stat, paths: [...stat.paths].sort() },
          {
            files: 3,
            insertions: 3,
            deletions: 2,
            paths: ["app.ts", "new file.ts", "old.ts"]
          }
        )
        assert.strictEqual(read(path.join(root, "app.ts")), "export const a = 1\nexport const b = 2\n") // nothing yet
        const applied = yield* promote(root, wt)
        assert.strictEqual(applied.files, 3)
        assert.strictEqual(
          read(path.join(root, "app.ts")),
          "export const a = 1\nexport const b = 3\nexport const c = 4\n"
        )
        assert.strictEqual(read(path.join(root, "new file.ts")), "fresh\n")
        assert.isFalse(fs.existsSync(path.join(root, "old.ts")))
        // Promoted into the working tree only: nothing committed.
        assert.strictEqual(git(root, "rev-list", "--count", "HEAD").trim(), "1")
        yield* discard(root, wt)
        assert.isFalse(fs.existsSync(wt.path))
        assert.notInclude(git(root, "worktree", "list"), "w1")
      })
    )

    it.scoped("a change set that does not apply is refused by the preflight and the root is left as it was", () =>
      Effect.gen(function* () {
        const root = yield* repo
        const wt = yield* createWorktree(root, "w2")
        fs.writeFileSync(path.join(wt.path, "app.ts"), "export const a = 100\nexport const b = 2\n")
        // Meanwhile the human edited the same line in the root.
        fs.writeFileSync(path.join(root, "app.ts"), "export const a = 7\nexport const b = 2\n")
        const error = yield* Effect.flip(promote(root, wt))
        assert.strictEqual(error._tag, "PromoteConflict")
        assert.include(error.message, "nothing was changed")
        assert.strictEqual(read(path.join(root, "app.ts")), "export const a = 7\nexport const b = 2\n")
      })
    )

    it.scoped("an untouched worktree promotes nothing; a root that is not a git repository is a clear error", () =>
      Effect.gen(function* () {
        const root = yield* repo
        const wt = yield* createWorktree(root, "w3")
        assert.deepStrictEqual(yield* promote(root, wt), { files: 0, insertions: 0, deletions: 0, paths: [] })
        const plain = yield* tempDir("trail-not-git-")
        const error = yield* Effect.flip(createWorktree(plain, "w4"))
        assert.strictEqual(error._tag, "GitError")
        assert.include(error.message, "rev-parse")
      })
    )
  })
})
