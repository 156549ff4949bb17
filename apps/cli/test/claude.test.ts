/**
 * The attention loop against the real Claude Code CLI (the pinned `@anthropic-ai/claude-code`
 * devDependency), its model replaced by a stub of the Messages API on 127.0.0.1
 * (fixtures/messagesStub.ts): interactive sessions in panes of a real tmux server of their own,
 * and `claude -p` workers. The CLI gets a throwaway HOME whose `.claude.json` skips onboarding
 * and the folder-trust dialog, a dummy API key, and no traffic but to the stub.
 */
import { execFileSync, spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { claudeHome, removeClaudeHomes } from "./fixtures/claudeCode.js"
import { startMessagesStub, type MessagesStub } from "./fixtures/messagesStub.js"
import { gitRepo, trail, waitFor } from "./helpers.js"

let stub: MessagesStub
const servers: Array<string> = []
beforeAll(async () => {
  stub = await startMessagesStub()
})
afterAll(async () => {
  for (const server of servers) spawnSync("tmux", ["-L", server, "kill-server"], { stdio: "ignore" })
  await stub.close()
  // Claude Code processes may still be writing their HOME while their tmux server goes down.
  removeClaudeHomes()
})

interface Item {
  readonly id: string
  readonly kind: string
  readonly subject: { readonly type: string; readonly id: string }
  readonly headline: string
  readonly actions: ReadonlyArray<string>
}

/** A root with trail's hooks in its committed settings, a HOME that trusts it, and the env Claude Code runs in. */
const setup = () => {
  const root = gitRepo({ "src/a.ts": "export {}\n" })
  const { env: claudeEnv } = claudeHome(root, stub.url)
  const server = `trail-claude-${process.pid}-${servers.length}`
  servers.push(server, `${server}-workers`)
  fs.writeFileSync(path.join(root, ".trail.toml"), `[worker]\ntmux_socket = "${server}-workers"\n`)
  const env: Record<string, string> = { ...claudeEnv, TERM: "xterm-256color" }
  const run = (args: ReadonlyArray<string>) => trail(args, { cwd: root, env })
  expect(run(["init"]).code).toBe(0)
  expect(run(["hooks", "install", "--project"]).code).toBe(0)
  const tmux = (...args: Array<string>) =>
    execFileSync("tmux", ["-L", server, ...args], {
      encoding: "utf8",
      env: { ...process.env, ...env },
      stdio: ["ignore", "pipe", "pipe"]
    }).trim()
  const inbox = () => run(["inbox"]).json() as Array<Item>
  return { root, env, run, tmux, inbox }
}

type Setup = ReturnType<typeof setup>

/** A pane with a shell in which `claude` is started, as a person does; resolves once it takes input. */
const startClaude = async (t: Setup, first: boolean) => {
  const pane = first
    ? t.tmux(
        "new-session",
        "-d",
        "-P",
        "-F",
        "#{pane_id}",
        "-s",
        "work",
        "-x",
        "160",
        "-y",
        "50",
        "-c",
        t.root,
        "bash --norc --noprofile"
      )
    : t.tmux("new-window", "-d", "-P", "-F", "#{pane_id}", "-t", "work", "-c", t.root, "bash --norc --noprofile")
  t.tmux("send-keys", "-t", pane, "-l", "claude")
  t.tmux("send-keys", "-t", pane, "Enter")
  await waitFor(
    () => screen(t, pane).includes("? for shortcuts"),
    "claude to start",
    60_000,
    () => screen(t, pane)
  )
  return pane
}

const screen = (t: Setup, pane: string) => t.tmux("capture-pane", "-p", "-t", pane)

/** Types a prompt into Claude Code's input, as a person would. */
const say = (t: Setup, pane: string, text: string) => {
  t.tmux("send-keys", "-t", pane, "-l", text)
  t.tmux("send-keys", "-t", pane, "Enter")
}

/** The texts the user sent the model, oldest first. */
const userTexts = () =>
  stub.messages.flatMap((body) => {
    if (typeof body !== "object" || body === null || !("messages" in body) || !Array.isArray(body.messages)) return []
    const last = body.messages.filter((m: { role?: string }) => m.role === "user").at(-1) as
      { content?: unknown } | undefined
    const content = Array.isArray(last?.content) ? last.content : [{ type: "text", text: String(last?.content ?? "") }]
    return content
      .filter(
        (b: { type?: string; text?: string }) => b.type === "text" && !String(b.text).startsWith("<system-reminder>")
      )
      .map((b: { text: string }) => b.text)
  })

const itemOf = (t: Setup, session: string) => t.inbox().find((i) => i.subject.id === session)

describe("the real Claude Code CLI", () => {
  it("two interactive sessions: stopped and permission items, verbatim replies, deny by text, allow by action, SessionEnd, kill -9", async () => {
    const t = setup()
    const a = await startClaude(t, true)
    const b = await startClaude(t, false)
    const sessionIn = async (pane: string) =>
      waitFor(
        () => {
          const log = t.run(["log"]).json() as Array<{
            subject: { id: string }
            events: Array<{ data: { pane?: string } }>
          }>
          return log.find((g) => g.events.some((e) => e.data.pane === pane))?.subject.id
        },
        `the session in ${pane}`,
        30_000
      )

    say(t, a, "hello from the tests")
    const sa = await sessionIn(a)
    await waitFor(
      () => itemOf(t, sa)?.kind === "stopped",
      "a's stopped item",
      30_000,
      () => screen(t, a)
    )
    expect(itemOf(t, sa)!.headline).toBe("You said: hello from the tests")

    const denied = path.join(t.root, "denied.txt")
    say(t, b, `write ${denied} should never exist`)
    const sb = await sessionIn(b)
    await waitFor(
      () => itemOf(t, sb)?.kind === "permission",
      "b's permission item",
      30_000,
      () => screen(t, b)
    )
    // Permission first, then the finished turn.
    expect(t.inbox().map((i) => `${i.kind}:${i.subject.id}`)).toEqual([`permission:${sb}`, `stopped:${sa}`])
    expect(itemOf(t, sb)!.headline).toBe(`wants to use Write: ${denied}`)
    expect(itemOf(t, sb)!.actions).toEqual(expect.arrayContaining(["allow", "allow-always", "deny"]))

    // A reply reaches the model verbatim.
    const verbatim = `it's "quoted"; $(touch pwned) \`x\` naïve ✓`
    expect(t.run(["reply", sa, verbatim]).code).toBe(0)
    await waitFor(
      () => itemOf(t, sa)?.headline === `You said: ${verbatim}`,
      "a's answer",
      30_000,
      () => screen(t, a)
    )
    expect(userTexts()).toContain(verbatim)
    expect(fs.existsSync(path.join(t.root, "pwned"))).toBe(false)

    // Text on a permission item denies the tool, then is the next message: the file is not written.
    const no = "no, do not create files"
    const replied = t.run(["reply", sb, no])
    expect(replied.code, replied.stderr).toBe(0)
    await waitFor(
      () => itemOf(t, sb)?.headline === `You said: ${no}`,
      "b's answer",
      30_000,
      () => screen(t, b)
    )
    expect(fs.existsSync(denied)).toBe(false)

    // --action allow presses the dialog's own "Yes": the file is written.
    const allowed = path.join(t.root, "allowed.txt")
    say(t, b, `write ${allowed} yes`)
    await waitFor(
      () => itemOf(t, sb)?.kind === "permission",
      "b's second permission item",
      30_000,
      () => screen(t, b)
    )
    const allow = t.run(["reply", sb, "--action", "allow"])
    expect(allow.code, allow.stderr).toBe(0)
    await waitFor(
      () => fs.existsSync(allowed),
      "the allowed write",
      30_000,
      () => screen(t, b)
    )
    expect(fs.readFileSync(allowed, "utf8")).toBe("yes")
    await waitFor(
      () => itemOf(t, sb)?.kind === "stopped",
      "b's turn to end",
      30_000,
      () => screen(t, b)
    )

    // --action allow-always presses "2. Yes, allow all edits during this session": the next edit asks nobody.
    const always = path.join(t.root, "always.txt")
    say(t, b, `write ${always} one`)
    await waitFor(
      () => itemOf(t, sb)?.kind === "permission",
      "b's third permission item",
      30_000,
      () => screen(t, b)
    )
    expect(t.run(["reply", sb, "--action", "allow-always"]).code).toBe(0)
    await waitFor(
      () => fs.existsSync(always),
      "the always-allowed write",
      30_000,
      () => screen(t, b)
    )
    await waitFor(
      () => itemOf(t, sb)?.kind === "stopped",
      "b's turn to end again",
      30_000,
      () => screen(t, b)
    )
    const unasked = path.join(t.root, "unasked.txt")
    say(t, b, `write ${unasked} two`)
    await waitFor(
      () => fs.existsSync(unasked),
      "an edit that needs no permission now",
      30_000,
      () => screen(t, b)
    )
    await waitFor(
      () => itemOf(t, sb)?.kind === "stopped" && fs.readFileSync(unasked, "utf8") === "two",
      "b's turn to end once more",
      30_000
    )

    // SessionEnd removes a's item.
    say(t, a, "/exit")
    await waitFor(
      () => itemOf(t, sa) === undefined,
      "a's item to leave on SessionEnd",
      30_000,
      () => screen(t, a)
    )

    // kill -9 of b's claude: no SessionEnd; the reply is refused and nothing reaches the shell.
    const panePid = t.tmux("display-message", "-p", "-t", b, "#{pane_pid}")
    const claudePid = execFileSync("pgrep", ["-P", panePid], { encoding: "utf8" }).trim().split("\n")[0]!
    process.kill(Number(claudePid), "SIGKILL")
    await waitFor(() => t.tmux("display-message", "-p", "-t", b, "#{pane_current_command}") === "bash", "the shell")
    const marker = path.join(t.root, "typed.txt")
    const refused = t.run(["reply", sb, `echo X > ${marker}`])
    expect(refused.code).toBe(1)
    expect(refused.error().code).toBe("pane-changed")
    await new Promise((resolve) => setTimeout(resolve, 1_000))
    expect(fs.existsSync(marker)).toBe(false)
    expect(itemOf(t, sb)).toBeUndefined()

    // A new claude in that pane is a new session; the old one's item does not come back.
    t.tmux("send-keys", "-t", b, "-l", "clear; claude")
    t.tmux("send-keys", "-t", b, "Enter")
    await waitFor(
      () =>
        t.tmux("display-message", "-p", "-t", b, "#{pane_current_command}") === "claude" &&
        screen(t, b).includes("? for shortcuts"),
      "claude to start again",
      60_000
    )
    say(t, b, "second life")
    await waitFor(
      () => t.inbox().some((i) => i.headline === "You said: second life" && i.subject.id !== sb),
      "the new session's item",
      30_000
    )
    expect(t.inbox().filter((i) => i.subject.id === sb)).toEqual([])
    // Nothing but the Messages API and its probes was asked of the stub.
    expect(stub.unknown.filter((r) => !(r.method === "HEAD" && r.url === "/"))).toEqual([])
  }, 300_000)

  it("claude -p workers with project hooks: every ready card survives the workers' own Stop and SessionEnd", async () => {
    const t = setup()
    const kinds = path.join(t.root, ".trail", "kinds")
    fs.mkdirSync(kinds, { recursive: true })
    // Literal values only: --allowedTools "Bash(trail worker:*)" refuses $VAR and $(…) expansions.
    fs.writeFileSync(
      path.join(kinds, "claude-done.md"),
      `---\ncommand: [claude, -p, "bash trail worker done --outcome found --summary s --evidence a.ts:1 --found 1", --allowedTools, "Bash(trail worker:*)"]\n---\n`
    )
    // A project kind runs only once trusted, as a person would with `trail kinds trust`.
    const trusted = t.run(["kinds", "trust", "claude-done"])
    expect(trusted.code, trusted.stderr).toBe(0)
    const n = 3
    for (let i = 0; i < n; i++) {
      const spawned = t.run(["spawn", "--as", "claude-done", `job ${i}`])
      expect(spawned.code, spawned.stderr).toBe(0)
    }
    await waitFor(
      () => {
        const log = t.run(["log"]).json() as Array<{ subject: { type: string }; events: Array<{ type: string }> }>
        const ended = log.filter((g) => g.subject.type === "worker" && g.events.some((e) => e.type === "session.ended"))
        return ended.length === n
      },
      "every worker's SessionEnd",
      120_000,
      () => JSON.stringify(t.run(["log"]).json()).slice(0, 3_000)
    )
    const items = t.inbox()
    expect(items.map((i) => `${i.kind}:${i.subject.id}`).sort()).toEqual(["ready:w1", "ready:w2", "ready:w3"])
    // The workers' own Stop and SessionEnd were recorded (tagged with the worker), yet the cards stayed.
    const log = t.run(["log", "--worker", "w1"]).json() as Array<{ events: Array<{ type: string }> }>
    expect(log[0]!.events.map((e) => e.type)).toEqual(
      expect.arrayContaining(["worker.ready", "session.stopped", "session.ended"])
    )
  }, 300_000)
})
