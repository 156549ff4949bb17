/**
 * Checkpoints with the real Claude Code CLI (the pinned `@anthropic-ai/claude-code`), its model
 * replaced by the Messages API stub (fixtures/messagesStub.ts) and trail's hooks installed in the
 * root's committed settings: `trail continue` hands the header to the next session started in the
 * root (its SessionStart hook answers with it as additionalContext), exactly once; and with
 * `checkpoint.on_precompact`, the real `/compact` saves a checkpoint of the session first.
 */
import * as fs from "node:fs"
import * as path from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { claudeHome, claudePrint, removeClaudeHomes } from "./fixtures/claudeCode.js"
import { startMessagesStub, type MessagesStub } from "./fixtures/messagesStub.js"
import { gitRepo, trail } from "./helpers.js"

let stub: MessagesStub
beforeAll(async () => {
  stub = await startMessagesStub()
})
afterAll(async () => {
  await stub.close()
  removeClaudeHomes()
})

/** A root with trail's hooks (and PreCompact) in its committed settings, and the env Claude Code runs in. */
const setup = () => {
  const root = fs.realpathSync(gitRepo({ "src/a.ts": "export {}\n" }))
  fs.writeFileSync(path.join(root, ".trail.toml"), "[checkpoint]\non_precompact = true\n")
  const { home, env: claudeEnv } = claudeHome(root, stub.url)
  const env = { ...claudeEnv, CLAUDE_CONFIG_DIR: path.join(home, ".claude") }
  const run = (args: ReadonlyArray<string>) => trail(args, { cwd: root, env })
  expect(run(["init"]).code).toBe(0)
  const installed = run(["hooks", "install", "--project"])
  expect(installed.code, installed.stderr).toBe(0)
  expect((installed.json() as { added: Array<string> }).added).toContain("PreCompact")
  return { root, env, run }
}

/** Runs `claude -p PROMPT` in the root (resuming `session`); its session id and the requests the stub got. */
const claude = async (t: ReturnType<typeof setup>, prompt: string, session?: string) => {
  const first = stub.messages.length
  const result = await claudePrint(t.root, t.env, prompt, session === undefined ? {} : { session })
  return { session: result.session_id, requests: stub.messages.slice(first) }
}

describe("checkpoints with the real Claude Code CLI", () => {
  it("continue → the next session started in the root gets the header in its first request, once; /compact saves one", async () => {
    const t = setup()
    const marker = "MARKER-tokenizer-drops-the-last-token"
    const saved = t.run(["checkpoint", "-m", `parser: ${marker}`])
    expect(saved.code, saved.stderr).toBe(0)
    const id = (saved.json() as { id: string }).id
    const armed = t.run(["continue"])
    expect(armed.code, armed.stderr).toBe(0)

    const first = await claude(t, "hello")
    expect(first.requests.length).toBeGreaterThan(0)
    expect(JSON.stringify(first.requests[0])).toContain(marker)
    expect(JSON.stringify(first.requests[0])).toContain(`Checkpoint ${id}`)
    const [listed] = t.run(["checkpoints"]).json() as Array<{ id: string; continued_by: string | null }>
    expect(listed).toMatchObject({ id, continued_by: first.session })

    // Exactly once: the next session gets nothing.
    const second = await claude(t, "hello again")
    expect(second.requests.length).toBeGreaterThan(0)
    expect(JSON.stringify(second.requests)).not.toContain(marker)

    // /compact of the first session: PreCompact saves a checkpoint of it first.
    await claude(t, "bash ls missing-dir; exit 3", first.session).catch(() => undefined)
    await claude(t, "/compact", first.session)
    const all = t.run(["checkpoints"]).json() as Array<{ title: string; session: string | null }>
    expect(all.find((c) => c.title === "before compaction")).toMatchObject({ session: first.session })
  }, 240_000)
})
