/**
 * Checkpoints with the real Claude Code CLI (the pinned `@anthropic-ai/claude-code`), its model
 * replaced by the Messages API stub (fixtures/messagesStub.ts) and trail's hooks installed in the
 * root's committed settings: `trail continue` hands the header to the next session started in the
 * root (its SessionStart hook answers with it as additionalContext), exactly once; and with
 * `checkpoint.on_precompact`, the real `/compact` saves a checkpoint of the session first.
 */
import { spawn } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { startMessagesStub, type MessagesStub } from "./fixtures/messagesStub.js"
import { gitRepo, TRAIL, trail } from "./helpers.js"

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

/** A root with trail's hooks (and PreCompact) in its committed settings, and the env Claude Code runs in. */
const setup = () => {
  const root = fs.realpathSync(gitRepo({ "src/a.ts": "export {}\n" }))
  fs.writeFileSync(path.join(root, ".trail.toml"), "[checkpoint]\non_precompact = true\n")
  const home = fs.mkdtempSync(path.join(os.tmpdir(), "trail-claude-home-"))
  homes.push(home)
  fs.writeFileSync(
    path.join(home, ".claude.json"),
    JSON.stringify({
      hasCompletedOnboarding: true,
      numStartups: 1,
      customApiKeyResponses: { approved: [API_KEY.slice(-20)], rejected: [] },
      projects: { [root]: { hasTrustDialogAccepted: true, hasCompletedProjectOnboarding: true, allowedTools: [] } }
    })
  )
  // `trail` on PATH, as `hooks install --project` expects of every teammate.
  const bin = path.join(home, "bin")
  fs.mkdirSync(bin)
  fs.writeFileSync(path.join(bin, "trail"), `#!/bin/sh\nexec '${process.execPath}' '${TRAIL}' "$@"\n`, { mode: 0o755 })
  const env: Record<string, string> = {
    HOME: home,
    CLAUDE_CONFIG_DIR: path.join(home, ".claude"),
    PATH: `${bin}:${path.dirname(CLAUDE)}:${process.env["PATH"] ?? ""}`,
    ANTHROPIC_API_KEY: API_KEY,
    ANTHROPIC_BASE_URL: stub.url,
    DISABLE_AUTOUPDATER: "1",
    CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: "1",
    DISABLE_TELEMETRY: "1",
    DISABLE_ERROR_REPORTING: "1"
  }
  const run = (args: ReadonlyArray<string>) => trail(args, { cwd: root, env })
  expect(run(["init"]).code).toBe(0)
  const installed = run(["hooks", "install", "--project"])
  expect(installed.code, installed.stderr).toBe(0)
  expect((installed.json() as { added: Array<string> }).added).toContain("PreCompact")
  return { root, env, run }
}

/** Runs `claude -p PROMPT` in the root (resuming `session`); its session id and the requests the stub got. */
const claude = (t: ReturnType<typeof setup>, prompt: string, session?: string) =>
  new Promise<{ session: string; requests: Array<unknown> }>((resolve, reject) => {
    const first = stub.messages.length
    const args = ["-p", prompt, "--output-format", "json"]
    if (session !== undefined) args.push("--resume", session)
    const child = spawn(CLAUDE, args, {
      cwd: t.root,
      env: { ...process.env, ...t.env },
      stdio: ["ignore", "pipe", "pipe"]
    })
    let stdout = ""
    let stderr = ""
    child.stdout.on("data", (d) => (stdout += d))
    child.stderr.on("data", (d) => (stderr += d))
    child.on("error", reject)
    child.on("close", (code) => {
      if (code !== 0) return reject(new Error(`claude exited ${code}: ${stderr}${stdout}`))
      const parsed: unknown = JSON.parse(stdout)
      const id =
        typeof parsed === "object" && parsed !== null && "session_id" in parsed && typeof parsed.session_id === "string"
          ? parsed.session_id
          : ""
      resolve({ session: id, requests: stub.messages.slice(first) })
    })
  })

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
