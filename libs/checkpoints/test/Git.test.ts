import * as NodeContext from "@effect/platform-node/NodeContext"
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { execFileSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { gitArtifact, parseStatus } from "../src/index.js"

const sh = (cwd: string, ...args: Array<string>) =>
  execFileSync("git", ["-c", "user.name=t", "-c", "user.email=t@example.com", ...args], { cwd, encoding: "utf8" })

const tmp = () => fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), "trail-git-")))

const state = (cwd: string) => gitArtifact(cwd).pipe(Effect.provide(NodeContext.layer))

describe("gitArtifact", () => {
  it.effect("branch, HEAD, dirty (a rename counted once), untracked, ahead/behind of the upstream", () =>
    Effect.gen(function* () {
      const origin = tmp()
      sh(origin, "init", "-q", "-b", "main")
      fs.writeFileSync(path.join(origin, "a.txt"), "a\n")
      fs.writeFileSync(path.join(origin, "old name.txt"), "o\n")
      sh(origin, "add", "-A")
      sh(origin, "commit", "-qm", "first")
      const clone = tmp()
      sh(clone, "clone", "-q", origin, ".")
      sh(origin, "commit", "-q", "--allow-empty", "-m", "upstream moved")
      sh(clone, "fetch", "-q")
      sh(clone, "commit", "-q", "--allow-empty", "-m", "local: fix the lease race")
      fs.writeFileSync(path.join(clone, "a.txt"), "changed\n")
      sh(clone, "mv", "old name.txt", "new name.txt")
      fs.mkdirSync(path.join(clone, "new"))
      fs.writeFileSync(path.join(clone, "new", "x.ts"), "x")
      const { draft, problems } = yield* state(clone)
      assert.deepStrictEqual(problems, [])
      assert.deepStrictEqual(draft, {
        _tag: "git",
        source: { type: "git", id: null },
        at: null,
        branch: "main",
        head: { sha: sh(clone, "rev-parse", "HEAD").trim(), subject: "local: fix the lease race" },
        dirty: ["a.txt", "new name.txt"],
        untracked: ["new/x.ts"],
        ahead: 1,
        behind: 1
      })
    })
  )

  it.effect("a detached HEAD without upstream, and a repository with no commit", () =>
    Effect.gen(function* () {
      const repo = tmp()
      sh(repo, "init", "-q")
      const empty = yield* state(repo)
      assert.include(empty.draft, { head: null, ahead: null, behind: null })
      sh(repo, "commit", "-q", "--allow-empty", "-m", "one")
      sh(repo, "checkout", "-q", "--detach")
      const detached = yield* state(repo)
      assert.include(detached.draft, { branch: null, ahead: null, behind: null })
    })
  )

  it.effect("not a repository: no artifact, a problem", () =>
    Effect.gen(function* () {
      const dir = tmp()
      const { draft, problems } = yield* state(dir)
      assert.isNull(draft)
      assert.strictEqual(problems.length, 1)
      assert.match(problems[0] ?? "", /is not in a git work tree/)
    })
  )
})

describe("parseStatus", () => {
  it("reads -z records, skipping a rename's source", () => {
    assert.deepStrictEqual(parseStatus(" M a b.ts\0R  new.ts\0old.ts\0?? dir/c.ts\0A  d.ts\0"), {
      dirty: ["a b.ts", "new.ts", "d.ts"],
      untracked: ["dir/c.ts"]
    })
  })
})
