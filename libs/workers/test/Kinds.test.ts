import * as NodeContext from "@effect/platform-node/NodeContext"
import { assert, describe, it } from "@effect/vitest"
import { Duration, Effect, Either, Option } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import { builtinKinds, loadKinds, parseKind, substitute, trustKinds } from "../src/Kinds.js"
import { tempDir } from "./helpers.js"

const kind = (text: string, name = "k") => parseKind(text, `/kinds/${name}.md`, name)

describe("Kinds", () => {
  it("parses every field and keeps the body", () => {
    const parsed = kind(
      `---
name: reviewer
description: Reviews a folder
command: ["claude", "--print", "{prompt}"]
read_only: true
worktree: false
max_duration: 1h30m
can_spawn: true
env: { DEPTH: "2" }
---
Look for correctness bugs.
`
    )
    assert.isTrue(Either.isRight(parsed))
    if (Either.isLeft(parsed)) return
    const k = parsed.right
    assert.deepStrictEqual(
      {
        name: k.name,
        description: k.description,
        readOnly: k.readOnly,
        worktree: k.worktree,
        canSpawn: k.canSpawn,
        env: k.env,
        body: k.body
      },
      {
        name: "reviewer",
        description: "Reviews a folder",
        readOnly: true,
        worktree: false,
        canSpawn: true,
        env: { DEPTH: "2" },
        body: "Look for correctness bugs."
      }
    )
    assert.deepStrictEqual(Option.getOrThrow(k.command), ["claude", "--print", "{prompt}"])
    assert.strictEqual(Duration.toSeconds(Option.getOrThrow(k.maxDuration)), 5400)
  })

  it("defaults: name from the file, no command (worker.command runs), not read-only, no limit", () => {
    const parsed = Either.getOrThrow(kind("Just a body.", "notes"))
    assert.strictEqual(parsed.name, "notes")
    assert.isTrue(Option.isNone(parsed.command))
    assert.isTrue(Option.isNone(parsed.maxDuration))
    assert.isFalse(parsed.readOnly)
    assert.strictEqual(parsed.body, "Just a body.")
  })

  it("a shell-string command runs through sh -c", () => {
    const parsed = Either.getOrThrow(kind('---\ncommand: codex exec "$TRAIL_PROMPT"\n---\n'))
    assert.deepStrictEqual(Option.getOrThrow(parsed.command), ["sh", "-c", 'codex exec "$TRAIL_PROMPT"'])
  })

  it("names the file and the field of a bad kind", () => {
    const cases: Array<[string, string, string]> = [
      ["---\nread_only: maybe\n---\n", "read_only", "boolean"],
      ["---\nmax_duration: soon\n---\n", "max_duration", ""],
      ['---\nmax_duration: ""\n---\n', "max_duration", "90s"],
      ['---\nmax_duration: "0s"\n---\n', "max_duration", "more than 0"],
      ["---\nmax_duration: 0\n---\n", "max_duration", "more than 0"],
      ["---\nmax_duration: 1e308\n---\n", "max_duration", "at most 7 days"],
      ["---\nmax_duration: .inf\n---\n", "max_duration", "more than 0"],
      ["---\nmax_duration: 169h\n---\n", "max_duration", "at most 7 days"],
      ["---\ncommand: []\n---\n", "command", ""],
      ["---\ncolour: blue\n---\n", "colour", "not a known field"],
      ["---\nname: Bad Name\n---\n", "name", "lower-case"],
      ["---\nenv: { N: 3 }\n---\n", "env.N", ""],
      ["---\n: : :\n  - [\n---\n", "", "not valid YAML"]
    ]
    for (const [text, field, words] of cases) {
      const parsed = kind(text, "bad")
      assert.isTrue(Either.isLeft(parsed), text)
      if (Either.isRight(parsed)) continue
      assert.strictEqual(parsed.left.file, "/kinds/bad.md")
      assert.strictEqual(parsed.left.field, field, text)
      assert.include(parsed.left.message, words, text)
    }
  })

  it("has the built-ins default, scout (read-only, short) and patcher (worktree)", () => {
    const byName = new Map(builtinKinds().map((k) => [k.name, k]))
    assert.deepStrictEqual([...byName.keys()].sort(), ["default", "patcher", "scout"])
    assert.isTrue(byName.get("scout")!.readOnly)
    assert.isTrue(Option.isSome(byName.get("scout")!.maxDuration))
    assert.isTrue(byName.get("patcher")!.worktree)
    for (const k of builtinKinds()) assert.isTrue(Option.isNone(k.command), k.name)
  })

  it.scoped("project kinds override user kinds, which override built-ins; bad files do not stop the rest", () =>
    Effect.gen(function* () {
      const base = yield* tempDir("trail-kinds-")
      const userDir = path.join(base, "user")
      const projectDir = path.join(base, "project")
      fs.mkdirSync(userDir)
      fs.mkdirSync(projectDir)
      fs.writeFileSync(path.join(userDir, "scout.md"), "---\ndescription: my scout\n---\nuser scout")
      fs.writeFileSync(path.join(userDir, "reviewer.md"), "---\ndescription: user reviewer\n---\n")
      fs.writeFileSync(path.join(userDir, "broken.md"), "---\nworktree: sometimes\n---\n")
      fs.writeFileSync(path.join(projectDir, "reviewer.md"), "---\ndescription: project reviewer\n---\n")
      fs.writeFileSync(path.join(projectDir, "notes.txt"), "not a kind")
      const { kinds, problems } = yield* loadKinds({ userDir, projectDir })
      assert.strictEqual(kinds.get("scout")?.description, "my scout")
      assert.strictEqual(kinds.get("reviewer")?.description, "project reviewer")
      assert.strictEqual(kinds.get("patcher")?.source, "builtin")
      assert.deepStrictEqual([...kinds.keys()].sort(), ["default", "patcher", "reviewer", "scout"])
      assert.deepStrictEqual(
        problems.map((p) => [path.basename(p.file), p.field]),
        [["broken.md", "worktree"]]
      )
      // Nothing is trusted yet: the user's own kind may run; a built-in's name or a project kind may not.
      const trust = (yield* loadKinds({ userDir, projectDir })).loaded.map((e) => [
        e.origin,
        e.kind.name,
        e.trust,
        e.overrides
      ])
      assert.deepStrictEqual(trust, [
        ["builtin", "default", "builtin", false],
        ["builtin", "scout", "builtin", false],
        ["builtin", "patcher", "builtin", false],
        ["user", "reviewer", "own", false],
        ["user", "scout", "untrusted", true],
        ["project", "reviewer", "untrusted", false]
      ])
      const none = yield* loadKinds({ userDir: path.join(base, "missing"), projectDir: path.join(base, "missing2") })
      assert.strictEqual(none.kinds.size, 3)
    }).pipe(Effect.provide(NodeContext.layer))
  )

  it.scoped("a worker.command that .trail.toml sets needs trust, by its value; trail's default does not", () =>
    Effect.gen(function* () {
      const base = yield* tempDir("trail-kinds-")
      const userDir = path.join(base, "config", "trail", "kinds")
      const projectDir = path.join(base, "repo", ".trail", "kinds")
      const file = path.join(base, "repo", ".trail.toml")
      const load = (template: string | ReadonlyArray<string>) =>
        Effect.map(loadKinds({ userDir, projectDir, command: { file, template } }), (loaded) => loaded.command)
      assert.deepStrictEqual(yield* load(["claude", "{prompt}"]), {
        source: "builtin",
        command: ["claude", "{prompt}"],
        hash: "",
        trust: "builtin"
      })
      const own = yield* load("agent --go")
      assert.deepStrictEqual([own.source, own.trust, own.command], [file, "untrusted", ["sh", "-c", "agent --go"]])
      assert.match(own.hash, /^[0-9a-f]{64}$/)
      const { loaded } = yield* loadKinds({ userDir, projectDir })
      // Naming only a kind leaves the command alone; naming it records it under the .trail.toml.
      assert.deepStrictEqual(yield* trustKinds(userDir, loaded, ["default"], own), [])
      assert.deepStrictEqual(yield* trustKinds(userDir, loaded, ["worker.command"], own), [
        { name: "worker.command", source: file, hash: own.hash }
      ])
      assert.strictEqual((yield* load("agent --go")).trust, "trusted")
      assert.strictEqual((yield* load("agent --stop")).trust, "changed")
    }).pipe(Effect.provide(NodeContext.layer))
  )

  it("substitutes placeholders inside their own argument, never inside shell text", () => {
    const values = {
      task_file: "/r/.trail/workers/w1/task.md",
      prompt: `fix "it"; $(rm -rf /)`,
      worker: "w1",
      root: "/r"
    }
    assert.deepStrictEqual(substitute(["claude", "--print", "{prompt}", "--file={task_file}"], values), [
      "claude",
      "--print",
      `fix "it"; $(rm -rf /)`,
      "--file=/r/.trail/workers/w1/task.md"
    ])
    // A shell script is left as written: its values come from the environment.
    const script = 'agent "$TRAIL_PROMPT" > "$TRAIL_ROOT/out.log"'
    assert.deepStrictEqual(substitute(["sh", "-c", script], values), ["sh", "-c", script])
    // Nothing reaches a shell: neither its script nor its positional arguments, however it is started.
    for (const argv of [
      ["/bin/bash", "-lc", "echo {prompt}", "{prompt}"],
      ["bash", "-o", "pipefail", "-c", "echo {prompt} > out.txt"],
      ["/usr/bin/env", "FOO=1", "sh", "+x", "-c", "echo {prompt}"]
    ])
      assert.deepStrictEqual(substitute(argv, values), argv)
  })

  it("refuses a shell-string command that splices a placeholder into shell text, saying how to write it", () => {
    for (const command of [
      `'claude "{prompt}"'`,
      `"agent {task_file}"`,
      `["sh", "-c", "agent '{prompt}'"]`,
      `["bash", "-ec", "cd {path} && agent"]`,
      `["bash", "-o", "pipefail", "-c", "echo {prompt} > out.txt"]`,
      `["env", "sh", "-c", "agent {prompt}"]`
    ]) {
      const parsed = kind(`---\ncommand: ${command}\n---\n`)
      assert.isTrue(Either.isLeft(parsed), command)
      if (Either.isRight(parsed)) continue
      assert.strictEqual(parsed.left.field, "command", command)
      assert.include(parsed.left.message, "argv list", command)
      assert.match(parsed.left.message, /"\$TRAIL_(PROMPT|TASK_FILE|PATH)"/, command)
    }
    const fine = kind(`---\ncommand: 'claude "$TRAIL_PROMPT"'\n---\n`)
    assert.deepStrictEqual(Option.getOrThrow(Either.getOrThrow(fine).command), ["sh", "-c", 'claude "$TRAIL_PROMPT"'])
  })
})
