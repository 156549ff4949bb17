/**
 * `trail log`, `trail events` and `trail gc --archive-before` end to end: events appended by
 * real `trail hook claude` runs, read back through windows (--since, --limit), followed, and
 * archived into .trail/archive without changing what either command or the inbox shows.
 */
import { spawn, spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { describe, expect, it } from "vitest"
import { cleanEnv, gitRepo, TRAIL, trail, waitFor } from "./helpers.js"

interface Event {
  readonly id: number
  readonly at: number
  readonly type: string
  readonly subject: { readonly type: string; readonly id: string }
}
type Episode = { readonly subject: { readonly id: string }; readonly events: ReadonlyArray<Event> }

const hook = (root: string, payload: Record<string, unknown>) => {
  const input = JSON.stringify({ cwd: root, transcript_path: "/tmp/t.jsonl", ...payload })
  const result = spawnSync(process.execPath, [TRAIL, "hook", "claude"], {
    cwd: root,
    input,
    env: { ...cleanEnv(), TMUX: "", TMUX_PANE: "" },
    encoding: "utf8"
  })
  expect(result.status, result.stderr).toBe(0)
}

/** A root with two sessions' events: s1 started, s2 started, s1 prompted, s2 stopped, s1 stopped. */
const withSessions = () => {
  const root = gitRepo({ "a.ts": "x\n" })
  expect(trail(["init"], { cwd: root }).code).toBe(0)
  hook(root, { session_id: "s1", hook_event_name: "SessionStart" })
  hook(root, { session_id: "s2", hook_event_name: "SessionStart" })
  hook(root, { session_id: "s1", hook_event_name: "UserPromptSubmit", prompt: "go" })
  hook(root, { session_id: "s2", hook_event_name: "Stop", last_assistant_message: "Done two." })
  hook(root, { session_id: "s1", hook_event_name: "Stop", last_assistant_message: "Done one." })
  const run = (args: ReadonlyArray<string>) => trail(args, { cwd: root })
  const events = () =>
    run(["events"])
      .stdout.trim()
      .split("\n")
      .filter((line) => line !== "")
      .map((line) => JSON.parse(line) as Event)
  return {
    root,
    run,
    events,
    log: (args: ReadonlyArray<string> = []) => run(["log", ...args]).json() as Array<Episode>
  }
}

const shape = (episodes: ReadonlyArray<Episode>) => episodes.map((e) => [e.subject.id, e.events.map((x) => x.id)])

describe("trail log and trail events", () => {
  it("group and window the log: --limit is the newest N, --since an id or a date", () => {
    const t = withSessions()
    const all = t.events()
    expect(all.map((e) => e.subject.id)).toEqual(["s1", "s2", "s1", "s2", "s1"])
    const [a, b, c, d, e] = all.map((x) => x.id)
    expect(shape(t.log())).toEqual([
      ["s1", [a, c, e]],
      ["s2", [b, d]]
    ])
    // The newest two, grouped by the subject seen first among them.
    expect(shape(t.log(["--limit", "2"]))).toEqual([
      ["s2", [d]],
      ["s1", [e]]
    ])
    expect(t.run(["events", "--limit", "2"]).stdout).toBe(
      all
        .slice(-2)
        .map((x) => `${JSON.stringify(x)}\n`)
        .join("")
    )
    expect(shape(t.log(["--since", String(c)]))).toEqual([
      ["s2", [d]],
      ["s1", [e]]
    ])
    expect(shape(t.log(["--session", "s1", "--limit", "2"]))).toEqual([["s1", [c, e]]])
    const today = new Date(all[0]!.at).toISOString().slice(0, 10)
    expect(shape(t.log(["--since", today]))).toEqual(shape(t.log()))
    expect(t.log(["--since", "2999-01-01"])).toEqual([])
    const pretty = t.run(["log", "--pretty", "--limit", "2"]).stdout
    expect(pretty).toMatch(/Session s2\n {3}session\.stopped .*\n\nSession s1\n {3}session\.stopped /)
    for (const args of [
      ["log", "--since", "yesterday"],
      ["events", "--since", "2026-13-45"],
      ["log", "--limit", "0"]
    ]) {
      const bad = t.run(args)
      expect(bad.code, args.join(" ")).toBe(2)
      expect(bad.error().code).toBe("usage")
    }
  }, 60_000)

  it("gc --archive-before moves the events to .trail/archive; log, events and the inbox show the same after", () => {
    const t = withSessions()
    const events = t.run(["events"]).stdout
    const log = t.run(["log"]).stdout
    const inbox = t.run(["inbox"]).stdout
    const bad = t.run(["gc", "--archive-before", "soon"])
    expect(bad.code).toBe(2)
    expect(bad.error().code).toBe("usage")
    expect(t.run(["gc", "--archive-before", "2000-01-01"]).json()).toMatchObject({
      archived_events: 0,
      archive_files: []
    })

    const month = new Date().toISOString().slice(0, 7)
    const gc = t.run(["gc", "--archive-before", "2999-01-01"])
    expect(gc.code, gc.stderr).toBe(0)
    expect(gc.json()).toMatchObject({
      archived_events: 5,
      deleted_events: 5,
      archive_files: [`events-${month}.ndjson.gz`]
    })
    expect(fs.existsSync(path.join(t.root, ".trail", "archive", `events-${month}.ndjson.gz`))).toBe(true)
    expect(t.run(["events"]).stdout).toBe(events)
    expect(t.run(["log"]).stdout).toBe(log)
    expect(t.run(["inbox"]).stdout).toBe(inbox)
    // The rebuild folds the archived events back: the same inbox.
    expect(t.run(["inbox", "--rebuild"]).stdout).toBe(inbox)
    expect(shape(t.log(["--limit", "1"]))).toEqual([["s1", [5]]])

    // New events follow the archived ones, and a second archive appends to the month's file.
    hook(t.root, { session_id: "s3", hook_event_name: "SessionStart" })
    expect(t.events().map((e) => e.id)).toEqual([1, 2, 3, 4, 5, 6])
    expect(t.run(["gc", "--archive-before", "2999-01-01"]).json()).toMatchObject({ archived_events: 1 })
    expect(shape(t.log())).toEqual([
      ["s1", [1, 3, 5]],
      ["s2", [2, 4]],
      ["s3", [6]]
    ])
  }, 60_000)

  it("gc --archive-before leaves a live worker's events in the table, and moves them once it has ended", () => {
    const t = withSessions()
    fs.writeFileSync(path.join(t.root, ".trail.toml"), '[worker]\ncommand = ["sleep", "60"]\nsubstrate = "process"\n')
    expect(t.run(["kinds", "trust", "worker.command"]).code).toBe(0)
    const spawned = t.run(["spawn", "wait here"])
    expect(spawned.code, spawned.stderr).toBe(0)
    const id = (spawned.json() as { id: string }).id
    hook(t.root, { session_id: "s3", hook_event_name: "SessionStart" })
    const before = t.events()
    const first = before.find((e) => e.subject.type === "worker" && e.subject.id === id)!.id
    // Its log says whether a permission dialog is open (text typed into one must deny first).
    expect(t.run(["gc", "--archive-before", "2999-01-01"]).json()).toMatchObject({ archived_events: first - 1 })
    expect(t.events()).toEqual(before)
    expect(t.run(["kill", id]).code).toBe(0)
    const rest = t.events().length - (first - 1)
    expect(t.run(["gc", "--archive-before", "2999-01-01"]).json()).toMatchObject({ archived_events: rest })
  }, 60_000)

  it("log --follow prints the window, then each new event as NDJSON (pretty: under its subject)", async () => {
    const t = withSessions()
    for (const pretty of [false, true]) {
      const child = spawn(
        process.execPath,
        [TRAIL, "log", "--follow", "--limit", "1", ...(pretty ? ["--pretty"] : [])],
        {
          cwd: t.root,
          env: { ...cleanEnv(), NO_COLOR: "1" }
        }
      )
      let stdout = ""
      child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString()))
      try {
        await waitFor(() => stdout.includes("\n"), "the window to be printed")
        hook(t.root, { session_id: `f-${String(pretty)}`, hook_event_name: "SessionStart" })
        await waitFor(
          () => stdout.includes(`f-${String(pretty)}`),
          "the new event to be followed",
          20_000,
          () => stdout
        )
        const [window, ...followed] = stdout.trim().split("\n")
        if (pretty) {
          expect(stdout).toMatch(new RegExp(`\\nSession f-true\\n {3}session\\.started `))
        } else {
          expect(shape(JSON.parse(window!) as Array<Episode>)).toEqual([["s1", [5]]])
          expect(followed.map((line) => (JSON.parse(line) as Event).subject.id)).toEqual(["f-false"])
        }
      } finally {
        child.kill("SIGKILL")
      }
    }
  }, 60_000)
})
