/**
 * The attention inbox end to end: Claude Code hook payloads sent by "sessions" running in real
 * tmux panes on an isolated server, scripted workers, and the real `trail` binary.
 */
import Sqlite from "better-sqlite3"
import { execFileSync, spawn, spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { afterAll, describe, expect, it } from "vitest"
import { gitRepo, TRAIL, trail, untilScreen, waitFor } from "./helpers.js"

const servers: Array<string> = []
afterAll(() => {
  for (const server of servers) spawnSync("tmux", ["-L", server, "kill-server"], { stdio: "ignore" })
})

interface Item {
  readonly id: string
  readonly kind: string
  readonly subject: { readonly type: string; readonly id: string }
  readonly headline: string
  readonly bullets: ReadonlyArray<string>
  readonly actions: ReadonlyArray<string>
}

const FAKE_AGENT = path.join(import.meta.dirname, "fixtures", "fake-agent.mjs")

/**
 * A root, a tmux server of its own with `panes` panes each running a fake agent (fixtures/
 * fake-agent.mjs: it records what is typed into it and runs the hooks it is handed as its own
 * children, as Claude Code does), and helpers.
 */
const setup = (panes: number) => {
  const root = gitRepo({ "src/a.ts": "export {}\n" })
  const server = `trail-inbox-${process.pid}-${servers.length}-${Math.floor(Math.random() * 1e6)}`
  servers.push(server)
  fs.writeFileSync(path.join(root, ".trail.toml"), `[worker]\ntmux_socket = "${server}-workers"\n`)
  servers.push(`${server}-workers`)
  const tmux = (...args: Array<string>) =>
    execFileSync("tmux", ["-L", server, ...args], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] }).trim()
  // Each pane's agent keeps what it was typed in .pane-<n>.txt (exact bytes).
  const recorder = (n: number) =>
    `exec ${process.execPath} ${FAKE_AGENT} ${path.join(root, `.hooks-${n}`)} ${TRAIL} ${path.join(root, `.pane-${n}.txt`)}`
  tmux("new-session", "-d", "-s", "work", "-x", "150", "-y", "40", recorder(0))
  for (let i = 1; i < panes; i++) tmux("split-window", "-t", "work", recorder(i))
  const socket = tmux("display-message", "-p", "#{socket_path}")
  const paneIds = tmux("list-panes", "-t", "work", "-F", "#{pane_id}").split("\n")
  for (let i = 0; i < panes; i++) fs.mkdirSync(path.join(root, `.hooks-${i}`), { recursive: true })
  const run = (args: ReadonlyArray<string>, env: Record<string, string> = {}) => trail(args, { cwd: root, env })
  expect(run(["init"]).code).toBe(0)
  let hooksSent = 0
  /** Has the agent in `pane` run a hook with `payload`, as Claude Code would (null: a session outside tmux). */
  const hook = async (pane: string | null, payload: Record<string, unknown>) => {
    const input = JSON.stringify({ cwd: root, transcript_path: "/tmp/t.jsonl", ...payload })
    if (pane === null) {
      const result = spawnSync(process.execPath, [TRAIL, "hook", "claude"], {
        cwd: root,
        input,
        env: { ...process.env, TRAIL_ROOT: "", TMUX: "", TMUX_PANE: "" },
        encoding: "utf8"
      })
      expect(result.status).toBe(0)
      expect(result.stdout).toBe("")
      return
    }
    const dir = path.join(root, `.hooks-${paneIds.indexOf(pane)}`)
    const name = String(++hooksSent).padStart(6, "0")
    fs.writeFileSync(path.join(dir, `${name}.tmp`), input)
    fs.renameSync(path.join(dir, `${name}.tmp`), path.join(dir, `${name}.json`))
    const done = path.join(dir, `${name}.done`)
    await waitFor(() => fs.existsSync(done), `the agent in ${pane} to run its hook`, 10_000)
    expect(JSON.parse(fs.readFileSync(done, "utf8"))).toEqual({ status: 0, stdout: "" })
  }
  const inbox = () => run(["inbox"]).json() as Array<Item>
  const capture = (pane: string) => tmux("capture-pane", "-p", "-t", pane)
  const received = (n: number) => {
    const file = path.join(root, `.pane-${n}.txt`)
    return fs.existsSync(file) ? fs.readFileSync(file, "utf8") : ""
  }
  return { root, run, hook, inbox, capture, received, tmux, paneIds, socket }
}

const summary = (items: ReadonlyArray<Item>) => items.map((i) => `${i.kind}:${i.subject.id}`)

describe("the inbox", () => {
  it("orders sessions and workers most-stuck first, follows prompts, session ends and reused panes", async () => {
    const t = setup(3)
    const [p1, p2, p3] = t.paneIds as [string, string, string]
    await t.hook(p1, { session_id: "alpha-1111", hook_event_name: "SessionStart", source: "startup" })
    await t.hook(p2, { session_id: "bravo-2222", hook_event_name: "SessionStart", source: "startup" })
    await t.hook(p3, { session_id: "charl-3333", hook_event_name: "SessionStart", source: "startup" })
    await t.hook(p1, {
      session_id: "alpha-1111",
      hook_event_name: "Stop",
      last_assistant_message: "Refactor done.\n- parser split\n- tests added"
    })
    await t.hook(p2, {
      session_id: "bravo-2222",
      hook_event_name: "PermissionRequest",
      tool_name: "Bash",
      tool_input: { command: "git push --force" }
    })
    await t.hook(p3, { session_id: "charl-3333", hook_event_name: "Stop", last_assistant_message: "Which branch?" })
    expect(summary(t.inbox())).toEqual(["permission:bravo-2222", "stopped:alpha-1111", "stopped:charl-3333"])
    const [first] = t.inbox()
    expect(first!.headline).toBe("wants to use Bash: git push --force")

    // The human answers charlie in its own pane: its prompt clears the item.
    await t.hook(p3, { session_id: "charl-3333", hook_event_name: "UserPromptSubmit", prompt: "main" })
    expect(summary(t.inbox())).toEqual(["permission:bravo-2222", "stopped:alpha-1111"])
    // Bravo's session ends: gone from the inbox.
    await t.hook(p2, { session_id: "bravo-2222", hook_event_name: "SessionEnd", reason: "exit" })
    expect(summary(t.inbox())).toEqual(["stopped:alpha-1111"])
    // A new session in alpha's pane: alpha is over, its item gone (a reply to it is not found).
    await t.hook(p1, { session_id: "delta-4444", hook_event_name: "SessionStart", source: "startup" })
    expect(summary(t.inbox())).toEqual([])
    expect(t.run(["reply", "alpha-1111", "hello?"]).error().code).toBe("item-not-found")
    await t.hook(p1, { session_id: "delta-4444", hook_event_name: "Stop", last_assistant_message: "Ready." })
    expect(summary(t.inbox())).toEqual(["stopped:delta-4444"])
    // --rebuild folds the whole log again: the same inbox.
    expect(t.run(["inbox", "--rebuild"]).json()).toEqual(t.inbox())
    expect(t.run(["inbox", "next"]).json()).toMatchObject({ subject: { id: "delta-4444" } })
  }, 60_000)

  it("reply types exactly the human's text into the exact pane; a gone pane is an error and the item stays", async () => {
    const t = setup(2)
    const [p1, p2] = t.paneIds as [string, string]
    await t.hook(p1, { session_id: "one-111111", hook_event_name: "Stop", last_assistant_message: "Done?" })
    await t.hook(p2, { session_id: "two-222222", hook_event_name: "Stop", last_assistant_message: "Done!" })
    const text = `it's "quoted"; $(touch pwned) \`x\` tab\there — naïve 日本語 ✓\nsecond line C-c`
    const replied = t.run(["reply", "one-111111", text])
    expect(replied.code, replied.stderr).toBe(0)
    // The pane shows it (tmux draws the tab as spacing) and the program read exactly it, then Enter.
    expect(t.capture(p1)).toMatch(/it's "quoted"; \$\(touch pwned\) `x` tab\s+here — naïve 日本語 ✓\nsecond line C-c/)
    await waitFor(() => t.received(0).includes("C-c\n"), "the pane's program to read the reply", 5_000)
    expect(t.received(0)).toBe(`${text}\n`)
    expect(t.capture(p2)).not.toContain("quoted")
    expect(fs.existsSync(path.join(t.root, "pwned"))).toBe(false)
    expect(summary(t.inbox())).toEqual(["stopped:two-222222"])
    // The text may come from stdin.
    const piped = spawnSync(process.execPath, [TRAIL, "reply", "two-222222"], {
      cwd: t.root,
      input: "from stdin\n",
      encoding: "utf8"
    })
    expect(piped.status, piped.stderr).toBe(0)
    expect(t.capture(p2)).toContain("from stdin")

    await t.hook(p2, { session_id: "two-222222", hook_event_name: "Stop", last_assistant_message: "Again" })
    t.tmux("kill-pane", "-t", p2)
    const gone = t.run(["reply", "two-222222", "anyone?"])
    expect(gone.code).toBe(1)
    expect(gone.error().code).toBe("tmux-gone")
    expect(gone.error().message).toContain("the item stays")
    // `trail inbox` reconciles: a session whose pane is gone leaves the inbox.
    expect(summary(t.inbox())).toEqual([])
    const unknown = t.run(["reply", "nope", "x"])
    expect(unknown.error().code).toBe("item-not-found")
  }, 60_000)

  it("a reply to an agent that was killed is refused as pane-changed and types nothing into the shell left behind", async () => {
    const t = setup(1)
    // The agent runs as a job of an interactive shell, as when a person starts `claude` in a pane.
    const pane = t.tmux("new-window", "-P", "-F", "#{pane_id}", "-c", t.root, "bash --norc --noprofile")
    t.paneIds.push(pane)
    const hooks = path.join(t.root, `.hooks-${t.paneIds.indexOf(pane)}`)
    t.tmux(
      "send-keys",
      "-t",
      pane,
      "-l",
      `${process.execPath} ${FAKE_AGENT} ${hooks} ${TRAIL} ${path.join(t.root, ".shell.txt")}`
    )
    t.tmux("send-keys", "-t", pane, "Enter")
    await waitFor(() => fs.existsSync(path.join(t.root, ".shell.txt")), "the agent to start")
    await t.hook(pane, { session_id: "killed-1", hook_event_name: "Stop", last_assistant_message: "Done." })
    expect(summary(t.inbox())).toEqual(["stopped:killed-1"])
    const agentPid = Number(execFileSync("pgrep", ["-f", `${FAKE_AGENT} ${hooks}`], { encoding: "utf8" }).trim())
    process.kill(agentPid, "SIGKILL")
    await waitFor(
      () =>
        t
          .capture(pane)
          .split("\n")
          .filter((l) => l.includes("$") || l.includes("#")).length >= 2,
      "the shell's prompt"
    )
    const refused = t.run(["reply", "killed-1", `echo X > ${path.join(t.root, "typed.txt")}`])
    expect(refused.code).toBe(1)
    expect(refused.error().code).toBe("pane-changed")
    expect(refused.error().message).toContain("nothing was typed")
    await new Promise((resolve) => setTimeout(resolve, 500))
    expect(fs.existsSync(path.join(t.root, "typed.txt"))).toBe(false)
    expect(t.capture(pane)).not.toContain("typed.txt")
    // The session is gone: its item does not survive.
    expect(summary(t.inbox())).toEqual([])
  }, 60_000)

  it("a permission item: text denies first (Escape), --action presses the dialog's key, other items refuse --action", async () => {
    const t = setup(2)
    const [p1, p2] = t.paneIds as [string, string]
    await t.hook(p1, { session_id: "perm-1111", hook_event_name: "PermissionRequest", tool_name: "Bash" })
    await t.hook(p2, { session_id: "stop-2222", hook_event_name: "Stop", last_assistant_message: "ok" })
    const card = t.run(["inbox", "--pretty"]).stdout
    expect(card).toContain("[y Allow]")
    expect(card).toContain("[n Deny]")
    const item = t.inbox()[0] as Item
    expect(item.actions).toEqual(["jump", "allow", "allow-always", "deny", "reply", "skip", "dismiss"])
    expect(t.run(["reply", "perm-1111", "no, use the tests"]).code).toBe(0)
    await waitFor(() => t.received(0).endsWith("\n"), "the reply")
    expect(t.received(0)).toBe("\u001bno, use the tests\n")
    const wrong = t.run(["reply", "stop-2222", "--action", "allow"])
    expect(wrong.code).toBe(2)
    expect(wrong.error().message).toContain("not a permission request")
    expect(t.run(["reply", "perm-1111", "--action", "allow", "x"]).code).toBe(2)
    // A stale item: the session's last hook says it is no longer waiting on that request (here a
    // resumed session's SessionStart): --action presses nothing.
    await t.hook(p1, { session_id: "perm-1111", hook_event_name: "PermissionRequest", tool_name: "Edit" })
    const stale = (t.inbox().find((i) => i.subject.id === "perm-1111") as Item).id
    await t.hook(p1, { session_id: "perm-1111", hook_event_name: "SessionStart", source: "resume" })
    const refused = t.run(["reply", stale, "--action", "allow"])
    expect(refused.code).toBe(2)
    expect(refused.error().message).toContain("stale")
    expect(t.capture(p1)).not.toMatch(/tests\s*1/)
    expect(t.run(["reply", stale, "--action", "deny"]).code).toBe(2)
    expect(t.received(0)).toBe("\u001bno, use the tests\n")
  }, 60_000)

  it("a worker's permission item: reply and tell deny first (Escape), --action presses the dialog's key in its window", async () => {
    const t = setup(1)
    // A worker whose program is the fake agent: its hooks run with $TRAIL_WORKER_ID, as a
    // Claude Code worker's project hooks do, so they are recorded under worker:w1.
    const hooks = path.join(t.root, ".hooks-w1")
    const record = path.join(t.root, ".pane-w1.txt")
    const kinds = path.join(t.root, ".trail", "kinds")
    fs.mkdirSync(kinds, { recursive: true })
    fs.writeFileSync(
      path.join(kinds, "agent.md"),
      `---\ncommand: ${JSON.stringify(`exec ${process.execPath} ${FAKE_AGENT} ${hooks} ${TRAIL} ${record}`)}\nworktree: false\n---\n`
    )
    expect(t.run(["kinds", "trust"]).code).toBe(0)
    const spawned = t.run(["spawn", "--as", "agent", "work"])
    expect(spawned.code, spawned.stderr).toBe(0)
    await waitFor(() => fs.existsSync(record), "the worker's agent to start", 10_000)
    let sent = 0
    const permission = async (command: string) => {
      const name = String(++sent).padStart(6, "0")
      const input = JSON.stringify({
        session_id: "wk-1111",
        hook_event_name: "PermissionRequest",
        cwd: t.root,
        tool_name: "Bash",
        tool_input: { command }
      })
      fs.writeFileSync(path.join(hooks, `${name}.tmp`), input)
      fs.renameSync(path.join(hooks, `${name}.tmp`), path.join(hooks, `${name}.json`))
      await waitFor(() => fs.existsSync(path.join(hooks, `${name}.done`)), "the worker's hook", 10_000)
      const [item] = t.inbox()
      expect(item).toMatchObject({ kind: "permission", subject: { type: "worker", id: "w1" } })
      expect(item!.actions).toEqual(expect.arrayContaining(["allow", "allow-always", "deny", "reply"]))
      return item!
    }
    const received = () => (fs.existsSync(record) ? fs.readFileSync(record, "utf8") : "")

    // Free text rejects the tool first: Escape, then the text as the next message.
    const first = await permission("git push --force")
    expect(t.run(["reply", first.id, "no, use the tests"]).code).toBe(0)
    await waitFor(() => received().endsWith("\n"), "the reply")
    expect(received()).toBe("\u001bno, use the tests\n")
    expect(t.inbox()).toEqual([])
    // --action presses the dialog's own keys in the worker's window (the terminal holds them
    // until the next line: they show up with the next reply).
    const second = await permission("rm -rf build")
    const denied = t.run(["reply", second.id, "--action", "deny"])
    expect(denied.code, denied.stderr).toBe(0)
    expect(t.inbox()).toEqual([])
    const third = await permission("npm test")
    expect(t.run(["reply", third.id, "--action", "allow"]).code).toBe(0)
    // `trail tell` during the dialog denies first too.
    await permission("curl example.com")
    expect(t.run(["tell", "w1", "stop there"]).code).toBe(0)
    await waitFor(() => received().endsWith("stop there\n"), "the tell")
    expect(received()).toBe("\u001bno, use the tests\n\u001b1\u001b[trail] stop there\n")
    // With no dialog open, tell types only its text.
    expect(t.run(["tell", "w1", "carry on"]).code).toBe(0)
    await waitFor(() => received().endsWith("carry on\n"), "the second tell")
    expect(received().endsWith("\n[trail] carry on\n")).toBe(true)
    expect(t.run(["kill", "w1"]).code).toBe(0)
  }, 90_000)

  it("a 200 kB reply reaches the pane intact (through a tmux buffer)", async () => {
    const t = setup(1)
    await t.hook(t.paneIds[0]!, { session_id: "long-1111", hook_event_name: "Stop", last_assistant_message: "?" })
    const text = Array.from({ length: 2_000 }, (_, i) => `line ${i} ${"x".repeat(90)}`).join("\n")
    expect(text.length).toBeGreaterThan(200_000)
    // On stdin: one argument that long is more than the kernel takes (E2BIG above 128 kB).
    const replied = spawnSync(process.execPath, [TRAIL, "reply", "long-1111"], {
      cwd: t.root,
      input: text,
      encoding: "utf8"
    })
    expect(replied.status, replied.stderr).toBe(0)
    await waitFor(() => t.received(0).length >= text.length + 1, "the whole reply", 20_000)
    expect(t.received(0)).toBe(`${text}\n`)
  }, 60_000)

  it("a session outside tmux is listed but cannot be replied to; skip, dismiss and restore reorder", async () => {
    const t = setup(1)
    await t.hook(null, {
      session_id: "notmux-1",
      hook_event_name: "PermissionRequest",
      tool_name: "Edit",
      tool_input: { file_path: "/x.ts" }
    })
    await t.hook(t.paneIds[0]!, { session_id: "intmux-1", hook_event_name: "PermissionRequest", tool_name: "Read" })
    expect(summary(t.inbox())).toEqual(["permission:notmux-1", "permission:intmux-1"])
    const refused = t.run(["reply", "notmux-1", "yes"])
    expect(refused.error().code).toBe("tmux-gone")
    expect(refused.error().message).toContain("not started inside tmux")
    expect(t.run(["skip", "notmux-1"]).code).toBe(0)
    expect(summary(t.inbox())).toEqual(["permission:intmux-1", "permission:notmux-1"])
    const dismissed = t.run(["dismiss", "intmux-1"]).json() as Item & { dismissed: boolean }
    expect(dismissed.dismissed).toBe(true)
    expect(summary(t.inbox())).toEqual(["permission:notmux-1"])
    expect(t.run(["restore", dismissed.id]).code).toBe(0)
    expect(summary(t.inbox())).toEqual(["permission:intmux-1", "permission:notmux-1"])
    const pretty = t.run(["inbox", "--pretty"]).stdout
    expect(pretty).toContain("wants to use Edit: /x.ts")
    expect(pretty).toContain("[permission]")
  }, 60_000)

  it("workers that wait, finish and fail appear as needs_input, ready and failed", async () => {
    const t = setup(1)
    const kinds = path.join(t.root, ".trail", "kinds")
    fs.mkdirSync(kinds, { recursive: true })
    fs.writeFileSync(
      path.join(kinds, "asker.md"),
      `---\ncommand: "trail worker wait --question 'Which API?' >/dev/null; sleep 60"\n---\n`
    )
    fs.writeFileSync(
      path.join(kinds, "doner.md"),
      `---\ncommand: "trail worker done --outcome 'found 2' --summary s --evidence e --recommend 'fix a' >/dev/null"\n---\n`
    )
    fs.writeFileSync(
      path.join(kinds, "failer.md"),
      `---\ncommand: "trail worker fail --reason 'no build' >/dev/null"\n---\n`
    )
    expect(t.run(["kinds", "trust"]).code).toBe(0)
    for (const kind of ["asker", "doner", "failer"]) expect(t.run(["spawn", "--as", kind, kind]).code).toBe(0)
    await waitFor(() => summary(t.inbox()).length === 3, "three worker items", 15_000)
    const items = t.inbox()
    expect(summary(items)).toEqual(["needs_input:w1", "failed:w3", "ready:w2"])
    expect(items[0]!.headline).toBe("w1 asks: Which API?")
    expect(items[2]!.bullets).toEqual(["1 evidence item(s)", "fix a"])
    // Answering the worker (reply = tell without the [trail] prefix) clears its item.
    expect(t.run(["reply", "w1", "the v2 one"]).code).toBe(0)
    expect(summary(t.inbox())).toEqual(["failed:w3", "ready:w2"])
    const log = t.run(["log", "--worker", "w1"]).json() as Array<{
      subject: { id: string }
      events: Array<{ type: string }>
    }>
    expect(log).toHaveLength(1)
    expect(log[0]!.events.map((e) => e.type)).toEqual(
      expect.arrayContaining(["worker.spawned", "worker.needs_input", "worker.told", "worker.running"])
    )
    expect(t.run(["kill", "w1"]).code).toBe(0)
  }, 60_000)
})

describe("trail inbox --tui", () => {
  it("is driven with keys in a real terminal and updates live", async () => {
    const t = setup(2)
    const [p1, p2] = t.paneIds as [string, string]
    await t.hook(p1, { session_id: "alpha-1111", hook_event_name: "Stop", last_assistant_message: "Refactor done." })
    await t.hook(p2, {
      session_id: "bravo-2222",
      hook_event_name: "PermissionRequest",
      tool_name: "Bash",
      tool_input: { command: "make deploy" }
    })
    t.tmux("new-window", "-d", "-n", "tui", "-c", t.root, `node ${TRAIL} inbox --tui; echo TUI-EXITED; sleep 60`)
    const until = untilScreen(() => t.tmux("capture-pane", "-p", "-t", "work:tui"))
    const keys = (...k: Array<string>) => t.tmux("send-keys", "-t", "work:tui", ...k)
    const selectedLine = (text: string) => text.split("\n").find((l) => l.startsWith("▸")) ?? ""

    let text = await until((s) => s.includes("Refactor done.") && s.includes("make deploy"), "both items")
    expect(selectedLine(text)).toContain("wants to use Bash: make deploy")
    keys("j")
    text = await until((s) => selectedLine(s).includes("Refactor done."), "the selection to move")
    // c: a one-line reply, typed into alpha's pane on Enter.
    keys("c")
    await until((s) => s.includes("reply to alpha-1111"), "the reply input")
    keys("-l", "ship it")
    keys("Enter")
    await until((s) => !s.includes("Refactor done."), "the answered item to leave")
    expect(t.received(0)).toBe("ship it\n")
    // Space dismisses the selected item.
    keys(" ")
    await until((s) => s.includes("Nothing needs you."), "the dismissal")
    expect(t.inbox()).toEqual([])
    // An event appended by another process shows up while the TUI is open.
    await t.hook(p1, {
      session_id: "alpha-1111",
      hook_event_name: "Stop",
      last_assistant_message: "Need a review of the schema"
    })
    await until((s) => s.includes("Need a review of the schema"), "the live update")
    // / filters.
    keys("/")
    // As for the reply: "/" and the text sent at once can reach the TUI as one chunk ("/zzz").
    await until((s) => s.includes("filter ›"), "the filter input")
    keys("-l", "zzz")
    keys("Enter")
    await until((s) => s.includes('0 item(s) matching "zzz"'), "the filter")
    keys("q")
    await until((s) => s.includes("TUI-EXITED"), "q to quit")
  }, 60_000)

  it("keys read in one chunk while browsing are pressed one by one: '/', a filter and Enter at once", async () => {
    const t = setup(1)
    const [p1] = t.paneIds as [string]
    await t.hook(p1, { session_id: "alpha-1111", hook_event_name: "Stop", last_assistant_message: "Refactor done." })
    t.tmux("new-window", "-d", "-n", "tui", "-c", t.root, `node ${TRAIL} inbox --tui; echo TUI-EXITED; sleep 60`)
    const until = untilScreen(() => t.tmux("capture-pane", "-p", "-J", "-t", "work:tui"))
    await until((s) => s.includes("Refactor done."), "the item")
    // One literal send: the TUI reads "/zzz" and the carriage return as one chunk.
    t.tmux("send-keys", "-t", "work:tui", "-l", "/zzz\r")
    await until((s) => s.includes('0 item(s) matching "zzz"'), "the filter")
    t.tmux("send-keys", "-t", "work:tui", "q")
    await until((s) => s.includes("TUI-EXITED"), "q to quit")
  }, 60_000)

  it("shows a failed watch of the store on its status line, and still follows the store on its timer", async () => {
    const t = setup(1)
    const [p1] = t.paneIds as [string]
    t.tmux("new-window", "-d", "-n", "tui", "-c", t.root, `node ${TRAIL} inbox --tui; echo TUI-EXITED; sleep 60`)
    const until = untilScreen(() => t.tmux("capture-pane", "-p", "-J", "-t", "work:tui"))
    await until((s) => s.includes("Nothing needs you."), "the empty inbox")
    // The watch stats an entry created in .trail/ to tell a create from a remove: a link loop
    // there makes the watch fail. The watch starts as the first screen is drawn: an entry created
    // before it is not seen, so the entry is made again at each look until the watch has seen one.
    const probe = path.join(t.root, ".trail", "probe")
    const text = await until((s) => {
      fs.rmSync(probe, { force: true })
      fs.symlinkSync("probe", probe)
      return s.includes("live updates stopped")
    }, "the watch's failure on the status line")
    expect(text).toContain("ELOOP")
    expect(text).not.toContain("TUI-EXITED")
    await t.hook(p1, { session_id: "alpha-1111", hook_event_name: "Stop", last_assistant_message: "Still here." })
    await until((s) => s.includes("Still here."), "the timer's redraw")
    t.tmux("send-keys", "-t", "work:tui", "q")
    await until((s) => s.includes("TUI-EXITED"), "q to quit")
  }, 60_000)

  it("refuses to start without a terminal", () => {
    const t = setup(1)
    const result = t.run(["inbox", "--tui"])
    expect(result.code).toBe(2)
    expect(result.error().message).toContain("needs a terminal")
  })
})

describe("trail hook claude", () => {
  it("drops malformed, unknown, session-less and huge payloads silently, logging why", () => {
    const root = gitRepo({ "a.ts": "x" })
    expect(trail(["init"], { cwd: root }).code).toBe(0)
    const inputs = [
      "{broken",
      JSON.stringify({ session_id: "s", hook_event_name: "Bogus" }),
      JSON.stringify({ hook_event_name: "Stop" }),
      JSON.stringify({ session_id: "s", hook_event_name: "Stop", last_assistant_message: "x".repeat(2_000_000) }),
      ""
    ]
    for (const input of inputs) {
      const started = Date.now()
      const result = spawnSync(process.execPath, [TRAIL, "hook", "claude"], { cwd: root, input, encoding: "utf8" })
      expect(result.status).toBe(0)
      expect(result.stdout).toBe("")
      expect(result.stderr).toBe("")
      expect(Date.now() - started).toBeLessThan(5_000)
    }
    const log = fs
      .readFileSync(path.join(root, ".trail", "hook-errors.log"), "utf8")
      .trim()
      .split("\n")
    expect(log).toHaveLength(5)
    expect(log[0]).toContain("not JSON")
    expect(log[1]).toContain("hook_event_name")
    expect(log[2]).toContain("session_id")
    expect(log[3]).toContain("larger than")
    expect(trail(["inbox"], { cwd: root }).json()).toEqual([])
  })
})

describe("a hook on a store with a long write-ahead log", () => {
  it("records its event and empties the log, which under a steady stream of commits SQLite never restarts", () => {
    const root = gitRepo({ "a.ts": "x" })
    expect(trail(["init"], { cwd: root }).code).toBe(0)
    const db = path.join(root, ".trail", "state.db")
    // Another process holds the store open (as the supervisor does), so closing checkpoints nothing away.
    const other = new Sqlite(db)
    try {
      other.pragma("wal_autocheckpoint = 0")
      const insert = other.prepare(
        "INSERT INTO events (at, type, subject_type, subject_id, data) VALUES (?, 'bench.filler', 'session', 'f', ?)"
      )
      for (let i = 0; i < 50; i++) insert.run(i, JSON.stringify({ pad: "x".repeat(100_000) }))
      const wal = () => fs.statSync(`${db}-wal`).size
      expect(wal()).toBeGreaterThan(4 * 1024 * 1024)
      const input = JSON.stringify({
        session_id: "s1",
        hook_event_name: "Stop",
        cwd: root,
        last_assistant_message: "done"
      })
      const hook = spawnSync(process.execPath, [TRAIL, "hook", "claude"], { cwd: root, input, encoding: "utf8" })
      expect(hook.status).toBe(0)
      expect(wal()).toBe(0)
      expect(other.prepare("SELECT count(*) FROM events WHERE type = 'session.stopped'").pluck().get()).toBe(1)
      expect(other.prepare("SELECT count(*) FROM events WHERE type = 'bench.filler'").pluck().get()).toBe(50)
    } finally {
      other.close()
    }
    expect(fs.existsSync(path.join(root, ".trail", "hook-errors.log"))).toBe(false)
  })
})

describe("a hook on an emptied store", () => {
  it("writes nothing into it: the store stays corrupt and next does not report the sweep complete", () => {
    const root = gitRepo({ "a.ts": "x" })
    expect(trail(["init"], { cwd: root }).code).toBe(0)
    const db = path.join(root, ".trail", "state.db")
    fs.truncateSync(db, 0)
    for (const side of ["-wal", "-shm"]) fs.rmSync(db + side, { force: true })
    expect(trail(["next", "--task", "t"], { cwd: root }).error().code).toBe("store-corrupt")
    const input = JSON.stringify({ session_id: "s1", hook_event_name: "Stop", cwd: root })
    const hook = spawnSync(process.execPath, [TRAIL, "hook", "claude"], { cwd: root, input, encoding: "utf8" })
    expect(hook.status).toBe(0)
    expect(hook.stdout).toBe("")
    expect(fs.statSync(db).size).toBe(0)
    expect(fs.readFileSync(path.join(root, ".trail", "hook-errors.log"), "utf8")).toContain("trail init")
    const next = trail(["next", "--task", "t"], { cwd: root })
    expect(next.code).toBe(1)
    expect(next.error().code).toBe("store-corrupt")
  })
})

describe("trail hooks install / uninstall, trail doctor", () => {
  it("merges into the project's settings.json idempotently and removes exactly its entries", () => {
    const root = gitRepo({ "a.ts": "x" })
    expect(trail(["init"], { cwd: root }).code).toBe(0)
    const file = path.join(root, ".claude", "settings.json")
    fs.mkdirSync(path.dirname(file))
    const theirs = {
      permissions: { allow: ["Bash(ls:*)"] },
      hooks: { Stop: [{ matcher: "", hooks: [{ type: "command", command: "say done" }] }] }
    }
    fs.writeFileSync(file, JSON.stringify(theirs))
    const doctorBefore = trail(["doctor"], { cwd: root }).json() as { checks: Array<{ name: string; detail: string }> }
    expect(doctorBefore.checks.find((c) => c.name === "hooks (project)")!.detail).toContain("none installed")
    const original = fs.readFileSync(file, "utf8")
    const first = trail(["hooks", "install"], { cwd: root })
    expect(first.code, first.stderr).toBe(0)
    expect((first.json() as { added: Array<string> }).added).toHaveLength(6)
    const installed = JSON.parse(fs.readFileSync(file, "utf8"))
    expect(installed.permissions).toEqual(theirs.permissions)
    expect(installed.hooks.Stop).toHaveLength(2)
    // Committed for the team: no path of this checkout, `trail` from PATH; recording runs async.
    expect(installed.hooks.UserPromptSubmit[0].hooks[0]).toEqual({
      type: "command",
      command: "trail hook claude",
      async: true
    })
    expect(installed.hooks.PermissionRequest[0].hooks[0].async).toBe(true)
    // Stop and SessionEnd run synchronously: Claude Code does not wait for background hooks when it exits.
    expect(installed.hooks.Stop[1].hooks[0]).toEqual({ type: "command", command: "trail hook claude" })
    expect(installed.hooks.SessionEnd[0].hooks[0]).toEqual({ type: "command", command: "trail hook claude" })
    expect(fs.readFileSync(file, "utf8")).not.toContain(path.dirname(TRAIL))
    const second = trail(["hooks", "install", "--project"], { cwd: root })
    expect((second.json() as { added: Array<string> }).added).toEqual([])
    expect(JSON.parse(fs.readFileSync(file, "utf8"))).toEqual(installed)
    const doctor = trail(["doctor"], { cwd: root }).json() as {
      ok: boolean
      checks: Array<{ name: string; ok: boolean; detail: string }>
    }
    expect(doctor.checks.find((c) => c.name === "store")).toMatchObject({ ok: true })
    expect(doctor.checks.find((c) => c.name === "hooks (project)")!.detail).toContain("all 6 installed")
    expect(doctor.checks.find((c) => c.name === "hooks (local)")!.detail).toContain("none installed")
    // Without trail on the PATH, the hooks' `trail hook claude` would not run: doctor fails them.
    const bare = trail(["doctor"], { cwd: root, env: { PATH: "/usr/bin:/bin" } })
    expect(bare.code).toBe(1)
    const unfound = (bare.json() as { checks: Array<{ name: string; ok: boolean; detail: string }> }).checks
    expect(unfound.find((c) => c.name === "hook command (project)")).toMatchObject({ ok: false })
    expect(trail(["hooks", "uninstall", "--project"], { cwd: root }).code).toBe(0)
    expect(fs.readFileSync(file, "utf8")).toBe(original)

    // --local: this checkout's settings.local.json, by absolute path; doctor says which file has which.
    const local = trail(["hooks", "install", "--local"], { cwd: root })
    expect(local.code, local.stderr).toBe(0)
    const localFile = path.join(root, ".claude", "settings.local.json")
    expect(JSON.parse(fs.readFileSync(localFile, "utf8")).hooks.Stop[0].hooks[0].command).toMatch(
      /trail\.cjs hook claude$/
    )
    const doctorLocal = trail(["doctor"], { cwd: root })
    expect(doctorLocal.code).toBe(0)
    const checks = (doctorLocal.json() as { checks: Array<{ name: string; detail: string }> }).checks
    expect(checks.find((c) => c.name === "hooks (local)")!.detail).toContain(`${localFile}: all 6 installed`)
    expect(checks.find((c) => c.name === "hooks (project)")!.detail).toContain("none installed")
  })

  it("edits settings through a symlink, keeps the mode, refuses a non-object root and inexact numbers", () => {
    const root = gitRepo({ "a.ts": "x" })
    expect(trail(["init"], { cwd: root }).code).toBe(0)
    const dir = path.join(root, ".claude")
    fs.mkdirSync(dir)
    const file = path.join(dir, "settings.json")
    // A dotfiles setup: settings.json links to a file elsewhere, readable by its owner only.
    const target = path.join(root, "dotfiles-settings.json")
    const text = '{\n    "env": {\n        "KEY": "secret"\n    }\n}\n'
    fs.writeFileSync(target, text, { mode: 0o600 })
    fs.chmodSync(target, 0o600)
    fs.symlinkSync(target, file)
    expect(trail(["hooks", "install"], { cwd: root }).code).toBe(0)
    expect(fs.lstatSync(file).isSymbolicLink()).toBe(true)
    expect(fs.statSync(target).mode & 0o777).toBe(0o600)
    expect(JSON.parse(fs.readFileSync(target, "utf8")).hooks.Stop).toHaveLength(1)
    expect(trail(["hooks", "install"], { cwd: root }).code).toBe(0)
    expect(trail(["hooks", "uninstall"], { cwd: root }).code).toBe(0)
    expect(fs.lstatSync(file).isSymbolicLink()).toBe(true)
    expect(fs.readFileSync(target, "utf8")).toBe(text)
    expect(fs.statSync(target).mode & 0o777).toBe(0o600)

    // A dangling link (its dotfiles target not written yet, through a relative chain): the
    // settings are written to the link's final target and both links stay.
    fs.rmSync(file)
    fs.mkdirSync(path.join(root, "dots"))
    fs.symlinkSync("dots/settings.json", path.join(root, "middle.json"))
    fs.symlinkSync("../middle.json", file)
    expect(trail(["hooks", "install"], { cwd: root }).code).toBe(0)
    expect(fs.lstatSync(file).isSymbolicLink()).toBe(true)
    expect(fs.lstatSync(path.join(root, "middle.json")).isSymbolicLink()).toBe(true)
    expect(JSON.parse(fs.readFileSync(path.join(root, "dots", "settings.json"), "utf8")).hooks.Stop).toHaveLength(1)
    // A link loop is an error, and nothing is replaced.
    fs.rmSync(path.join(root, "middle.json"))
    fs.symlinkSync(".claude/settings.json", path.join(root, "middle.json"))
    const loop = trail(["hooks", "install"], { cwd: root })
    expect(loop.code).toBe(1)
    expect(fs.lstatSync(file).isSymbolicLink()).toBe(true)

    fs.rmSync(file)
    for (const bad of ["[1, 2]\n", '"text"\n', "null\n"]) {
      fs.writeFileSync(file, bad)
      const refused = trail(["hooks", "install"], { cwd: root })
      expect(refused.code).toBe(1)
      expect(refused.error().message).toContain("not an object")
      expect(fs.readFileSync(file, "utf8")).toBe(bad)
    }
    const big = '{"cleanupPeriodDays": 12345678901234567890, "note": "1.0 in a string is fine"}\n'
    fs.writeFileSync(file, big)
    const inexact = trail(["hooks", "install"], { cwd: root })
    expect(inexact.code).toBe(1)
    expect(inexact.error().message).toContain("12345678901234567890")
    expect(fs.readFileSync(file, "utf8")).toBe(big)
  })

  it("--user writes $CLAUDE_CONFIG_DIR/settings.json, else ~/.claude/settings.json (~ is $HOME)", () => {
    const root = gitRepo({ "a.ts": "x" })
    const home = fs.mkdtempSync(path.join(root, "home-"))
    const config = path.join(root, "claude-config")
    const env = { HOME: home, CLAUDE_CONFIG_DIR: "" }
    const inHome = trail(["hooks", "install", "--user"], { cwd: root, env })
    expect(inHome.code, inHome.stderr).toBe(0)
    expect(inHome.json()).toMatchObject({ settings_file: path.join(home, ".claude", "settings.json") })
    expect(
      Object.keys(JSON.parse(fs.readFileSync(path.join(home, ".claude", "settings.json"), "utf8")).hooks)
    ).toHaveLength(6)
    const named = trail(["hooks", "install", "--user"], { cwd: root, env: { ...env, CLAUDE_CONFIG_DIR: config } })
    expect(named.json()).toMatchObject({ settings_file: path.join(config, "settings.json") })
    expect(fs.existsSync(path.join(config, "settings.json"))).toBe(true)
  })

  it("a settings.json that is not JSON is reported and left untouched", () => {
    const root = gitRepo({ "a.ts": "x" })
    expect(trail(["init"], { cwd: root }).code).toBe(0)
    const file = path.join(root, ".claude", "settings.json")
    fs.mkdirSync(path.dirname(file))
    fs.writeFileSync(file, "{ nope")
    const result = trail(["hooks", "install"], { cwd: root })
    expect(result.code).toBe(1)
    expect(result.error().code).toBe("config-invalid")
    expect(fs.readFileSync(file, "utf8")).toBe("{ nope")
    // One that cannot be read (a folder in its place) is named with the OS's reason instead.
    const local = path.join(root, ".claude", "settings.local.json")
    fs.mkdirSync(local)
    const unreadable = trail(["hooks", "install", "--local"], { cwd: root })
    expect(unreadable.code).toBe(1)
    expect(unreadable.error().message).toMatch(new RegExp(`^${local}: cannot be read: .*EISDIR`))
    expect(fs.readdirSync(local)).toEqual([])
    // doctor reports both, each as what it is, and exits 1 with ok: false.
    const doctor = trail(["doctor"], { cwd: root })
    expect(doctor.code).toBe(1)
    expect(doctor.json()).toMatchObject({ ok: false })
    const checks = (doctor.json() as { checks: Array<{ name: string; ok: boolean; detail: string }> }).checks
    const hooks = (scope: string) => checks.find((c) => c.name === `hooks (${scope})`)
    expect(hooks("project")).toMatchObject({ ok: false, detail: expect.stringContaining(`${file}: is not valid JSON`) })
    expect(hooks("local")).toMatchObject({ ok: false, detail: expect.stringMatching(/cannot be read: .*EISDIR/) })
    expect(hooks("local")!.detail).not.toContain("JSON")
    const both = trail(["hooks", "install", "--user", "--project"], { cwd: root })
    expect(both.code).toBe(2)
  })
})

/**
 * A store filled straight through its `events` table with `sessions` Claude Code sessions outside
 * tmux, each started, prompted and stopped (one open `stopped` item each), oldest first.
 */
const storeWithSessions = (sessions: number) => {
  const root = gitRepo({ "a.ts": "x" })
  expect(trail(["init"], { cwd: root }).code).toBe(0)
  const db = new Sqlite(path.join(root, ".trail", "state.db"))
  const insert = db.prepare(
    `INSERT INTO events (at, type, subject_type, subject_id, data) VALUES (?, ?, 'session', ?, ?)`
  )
  db.transaction(() => {
    for (let n = 0; n < sessions; n++)
      for (const [step, type] of ["session.started", "session.prompted", "session.stopped"].entries())
        insert.run(1_000 * n + step, type, `s${String(n).padStart(7, "0")}`, JSON.stringify({ message: `done ${n}` }))
  })()
  db.close()
  return root
}

describe("trail inbox at scale", () => {
  it("--limit N prints the N most stuck; --pretty prints a screenful and says how many more", () => {
    const root = storeWithSessions(75)
    const all = trail(["inbox"], { cwd: root }).json() as Array<Item>
    expect(all).toHaveLength(75)
    expect(all.map((item) => item.headline).slice(0, 3)).toEqual(["done 0", "done 1", "done 2"])
    const five = trail(["inbox", "--limit", "5"], { cwd: root }).json() as Array<Item>
    expect(five).toEqual(all.slice(0, 5))
    // Not a terminal: 20 cards, then how many more.
    const pretty = trail(["inbox", "--pretty"], { cwd: root }).stdout
    expect(pretty.match(/\[waiting\]/g)).toHaveLength(20)
    expect(pretty).toContain("… and 55 more")
    expect(trail(["inbox", "--pretty", "--limit", "75"], { cwd: root }).stdout).not.toContain("more")
    const zero = trail(["inbox", "--limit", "0"], { cwd: root })
    expect(zero.code).toBe(2)
    expect(trail(["inbox", "next"], { cwd: root }).json()).toEqual(all[0])
  }, 60_000)

  it("SIGTERM interrupts a long fold between batches; whole batches are kept, and the next read goes on from them", async () => {
    const root = storeWithSessions(70_000)
    const child = spawn(process.execPath, [TRAIL, "inbox", "--rebuild", "--limit", "1"], { cwd: root, stdio: "ignore" })
    const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)))
    // Signalled once it has the store open: the fold of 210,000 events then takes seconds. (A fixed
    // wait came before trail had started on a loaded machine, and after the fold had ended on a fast one.)
    const opened = () => {
      try {
        const fds = `/proc/${child.pid}/fd`
        return fs.readdirSync(fds).some((fd) => {
          try {
            return fs.readlinkSync(path.join(fds, fd)).endsWith(path.join(".trail", "state.db"))
          } catch {
            return false
          }
        })
      } catch {
        return false
      }
    }
    await waitFor(opened, "trail inbox --rebuild to open the store", 60_000)
    const signalled = Date.now()
    child.kill("SIGTERM")
    expect(await exited).toBe(130)
    expect(Date.now() - signalled).toBeLessThan(10_000)
    const database = path.join(root, ".trail", "state.db")
    const stored = () => {
      const db = new Sqlite(database, { readonly: true })
      const last = db.prepare(`SELECT last_event_id FROM inbox_state`).pluck().get()
      const counts = db
        .prepare(
          `SELECT (SELECT count(*) FROM inbox_items) AS items,
            (SELECT count(*) FROM events WHERE type = 'session.stopped' AND id <= ?) AS stopped,
            (SELECT max(id) FROM events) AS latest`
        )
        .get(typeof last === "number" ? last : 0)
      db.close()
      return { last, ...(counts as { items: number; stopped: number; latest: number }) }
    }
    // The fold was cut short: what is stored is the fold of whole batches (5,000 events each) of
    // the log's start, each session stopped by then an item.
    const cut = stored()
    expect(typeof cut.last).toBe("number")
    expect(Number(cut.last) % 5_000).toBe(0)
    expect(cut.last).toBeLessThan(cut.latest)
    expect(cut.items).toBe(cut.stopped)
    expect(trail(["inbox", "--limit", "1"], { cwd: root }).code).toBe(0)
    const after = stored()
    expect(after.last).toBe(after.latest)
    expect(after.items).toBe(70_000)
  }, 120_000)
})
