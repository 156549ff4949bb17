/**
 * Checkpoints against the real Claude Code CLI (the pinned `@anthropic-ai/claude-code`), its model
 * replaced by the Messages API stub (fixtures/messagesStub.ts): a session of several `claude -p`
 * turns writes its own transcript, and the extractors read edits, a failing command with its exit
 * status, a tool error and the answers from it — the format as this version writes it, not as a
 * fixture remembers it.
 */
import * as NodeContext from "@effect/platform-node/NodeContext"
import { readSession } from "@trail/checkpoints"
import type { ArtifactDraft } from "@trail/domain"
import { Effect, Schema } from "effect"
import { spawn } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { startMessagesStub, type MessagesStub } from "./fixtures/messagesStub.js"
import { gitRepo } from "./helpers.js"

const CLAUDE = path.resolve(import.meta.dirname, "..", "..", "..", "node_modules", ".bin", "claude")
const API_KEY = "sk-ant-api03-trail-tests-not-a-real-key-000000000000"

let stub: MessagesStub
const homes: Array<string> = []
beforeAll(async () => {
  stub = await startMessagesStub()
})
afterAll(async () => {
  await stub.close()
  for (const home of homes) fs.rmSync(home, { recursive: true, force: true, maxRetries: 10, retryDelay: 200 })
})

const ClaudeResult = Schema.parseJson(Schema.Struct({ session_id: Schema.String, result: Schema.String }))

/** Runs `claude -p PROMPT` (resuming `session` when given); resolves with its JSON result. */
const claude = (root: string, env: NodeJS.ProcessEnv, prompt: string, session?: string) =>
  new Promise<typeof ClaudeResult.Type>((resolve, reject) => {
    const args = ["-p", prompt, "--output-format", "json", "--permission-mode", "acceptEdits", "--allowedTools", "Bash"]
    if (session !== undefined) args.push("--resume", session)
    // Asynchronously: the stub answers from this process's event loop.
    const child = spawn(CLAUDE, args, { cwd: root, env, stdio: ["ignore", "pipe", "pipe"] })
    let stdout = ""
    let stderr = ""
    child.stdout.on("data", (d) => (stdout += d))
    child.stderr.on("data", (d) => (stderr += d))
    child.on("error", reject)
    child.on("close", (code) => {
      if (code !== 0) return reject(new Error(`claude exited ${code}: ${stderr}`))
      resolve(Schema.decodeUnknownSync(ClaudeResult)(stdout))
    })
  })

const ofKind = <K extends ArtifactDraft["_tag"]>(drafts: ReadonlyArray<ArtifactDraft>, kind: K) =>
  drafts.filter((d): d is Extract<ArtifactDraft, { _tag: K }> => d._tag === kind)

describe("checkpoint extractors on a transcript the real Claude Code CLI wrote", () => {
  it("finds the edit, the failing command and its exit status, the tool error and the answers", async () => {
    const root = fs.realpathSync(gitRepo({ "src/a.ts": "export {}\n" }))
    const home = fs.mkdtempSync(path.join(os.tmpdir(), "trail-claude-home-"))
    homes.push(home)
    const config = path.join(home, ".claude")
    fs.writeFileSync(
      path.join(home, ".claude.json"),
      JSON.stringify({
        hasCompletedOnboarding: true,
        numStartups: 1,
        customApiKeyResponses: { approved: [API_KEY.slice(-20)], rejected: [] },
        projects: { [root]: { hasTrustDialogAccepted: true, hasCompletedProjectOnboarding: true, allowedTools: [] } }
      })
    )
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      HOME: home,
      CLAUDE_CONFIG_DIR: config,
      ANTHROPIC_API_KEY: API_KEY,
      ANTHROPIC_BASE_URL: stub.url,
      DISABLE_AUTOUPDATER: "1",
      CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: "1",
      DISABLE_TELEMETRY: "1",
      DISABLE_ERROR_REPORTING: "1"
    }
    const first = await claude(root, env, `write ${root}/src/b.ts one\ntwo\nthree`)
    const session = first.session_id
    await claude(root, env, "bash ls missing-dir; exit 7", session)
    // Writing a file it has not read is refused by Claude Code itself: a tool error.
    await claude(root, env, `write ${root}/src/a.ts clobbered`, session)
    await claude(root, env, "what did we learn?", session)

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
