/**
 * Checkpoints against the real Claude Code CLI (the pinned `@anthropic-ai/claude-code`), its model
 * replaced by the Messages API stub (fixtures/messagesStub.ts): a session of several `claude -p`
 * turns writes its own transcript, and the extractors read edits, a failing command with its exit
 * status, a tool error and the answers from it — the format as this version writes it, not as a
 * fixture remembers it.
 */
import * as NodeContext from "@effect/platform-node/NodeContext"
import { ofKind, readSession } from "@trail/checkpoints"
import { Effect } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { claudeHome, claudePrint, removeClaudeHomes } from "./fixtures/claudeCode.js"
import { startMessagesStub, type MessagesStub } from "./fixtures/messagesStub.js"
import { gitRepo } from "./helpers.js"

let stub: MessagesStub
beforeAll(async () => {
  stub = await startMessagesStub()
})
afterAll(async () => {
  await stub.close()
  removeClaudeHomes()
})

describe("checkpoint extractors on a transcript the real Claude Code CLI wrote", () => {
  it("finds the edit, the failing command and its exit status, the tool error and the answers", async () => {
    const root = fs.realpathSync(gitRepo({ "src/a.ts": "export {}\n" }))
    const { home, env: claudeEnv } = claudeHome(root, stub.url)
    const config = path.join(home, ".claude")
    // The transcripts' folder, named (it is HOME's .claude either way).
    const env = { ...claudeEnv, CLAUDE_CONFIG_DIR: config }
    const claude = (prompt: string, session?: string) =>
      claudePrint(root, env, prompt, {
        args: ["--permission-mode", "acceptEdits", "--allowedTools", "Bash"],
        ...(session === undefined ? {} : { session })
      })
    const first = await claude(`write ${root}/src/b.ts one\ntwo\nthree`)
    const session = first.session_id
    await claude("bash ls missing-dir; exit 7", session)
    // Writing a file it has not read is refused by Claude Code itself: a tool error.
    await claude(`write ${root}/src/a.ts clobbered`, session)
    await claude("what did we learn?", session)

    const transcripts = fs
      .readdirSync(path.join(config, "projects"), { recursive: true, encoding: "utf8" })
      .filter((file) => file.endsWith(`${session}.jsonl`))
    expect(transcripts).toHaveLength(1)
    const transcript = path.join(config, "projects", transcripts[0] ?? "")

    const { drafts, problems } = await Effect.runPromise(
      readSession(transcript, session).pipe(Effect.provide(NodeContext.layer))
    )
    expect(problems).toEqual([])
    expect(ofKind(drafts, "edit").map((e) => [e.file, e.tool, e.added, e.removed])).toEqual([
      ["src/b.ts", "Write", 3, 0]
    ])
    expect(fs.readFileSync(path.join(root, "src", "a.ts"), "utf8")).toBe("export {}\n")
    const [command, ...others] = ofKind(drafts, "command")
    expect(others).toEqual([])
    expect(command).toMatchObject({ command: "ls missing-dir; exit 7", exit_code: 7, failed: true })
    expect(command?.head.join("\n")).toMatch(/missing-dir/)
    expect(ofKind(drafts, "error").map((e) => [e.tool, e.message])).toEqual([
      ["Write", expect.stringMatching(/has not been read/)]
    ])
    const answers = ofKind(drafts, "answer").map((a) => a.text)
    expect(answers).toHaveLength(4)
    expect(answers.at(-1)).toBe("You said: what did we learn?")
    expect(drafts.every((d) => d.source.type === "session" && d.source.id === session)).toBe(true)
  }, 180_000)
})
