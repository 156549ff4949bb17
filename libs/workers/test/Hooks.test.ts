import * as fs from "node:fs"
import * as path from "node:path"
import { assert, describe, it } from "@effect/vitest"
import { emptyInbox, findItem, foldEvents, TrailEvent } from "@trail/domain"
import { Either } from "effect"
import * as Hooks from "../src/Hooks.js"
import { PERMISSION_KEYS } from "../src/Inbox.js"

const fixture = (name: string) =>
  fs.readFileSync(path.join(import.meta.dirname, "fixtures", "hooks", `${name}.json`), "utf8")
const env = { TMUX: "/tmp/tmux-1000/default,4242,0", TMUX_PANE: "%7" }

const eventOf = (name: string, hookEnv: Hooks.HookEnv = env, at = 1_000) => {
  const parsed = Hooks.parsePayload(fixture(name))
  assert.isTrue(Either.isRight(parsed), `${name}: ${Either.isLeft(parsed) ? parsed.left : ""}`)
  return Hooks.toEvent(Either.getOrThrow(parsed), hookEnv, at)
}

describe("Claude Code hook payloads", () => {
  it("every event shape becomes its event, with the pane and server it ran in", () => {
    const expected: Record<string, [string, Record<string, unknown>]> = {
      SessionStart: ["session.started", { source: "startup" }],
      UserPromptSubmit: ["session.prompted", { prompt_length: 55 }],
      Stop: [
        "session.stopped",
        { message: fixture("Stop").length > 0 ? JSON.parse(fixture("Stop")).last_assistant_message : "" }
      ],
      PermissionRequest: ["session.permission", { tool_name: "Bash", tool_summary: "rm -rf node_modules && npm ci" }],
      Notification: [
        "session.notified",
        { message: "Claude needs your permission to use Bash", notification_type: "permission_prompt" }
      ],
      SessionEnd: ["session.ended", { reason: "prompt_input_exit" }]
    }
    for (const [name, [type, data]] of Object.entries(expected)) {
      const event = eventOf(name)
      assert.strictEqual(event.type, type, name)
      assert.deepStrictEqual(event.subject, { type: "session", id: "8f2c1e44-9a4b-4f0e-b1d2-3c4d5e6f7a80" })
      assert.deepInclude(
        event.data,
        { pane: "%7", socket: "/tmp/tmux-1000/default", cwd: "/home/u/src/app", ...data },
        name
      )
    }
    // The human's words are not kept.
    assert.notInclude(JSON.stringify(eventOf("UserPromptSubmit")), "factorial")
  })

  it("the fixtures fold into the cards a person expects", () => {
    const names = ["SessionStart", "UserPromptSubmit", "Stop"]
    const events = names.map(
      (name, i) => new TrailEvent({ id: i + 1, ...eventOf(name, env, 1_000 + i), data: { ...eventOf(name).data } })
    )
    const stopped = findItem(foldEvents(emptyInbox, events), "8f2c1e44")!
    assert.strictEqual(stopped.kind, "stopped")
    assert.strictEqual(stopped.headline, "I've added the factorial function.")
    assert.deepStrictEqual(stopped.bullets, ["add a test for 0!", "document the overflow above 170"])
    // A request after the Stop (by the hooks' clock: an earlier one committed late is history).
    const permission = new TrailEvent({
      id: 9,
      ...eventOf("PermissionRequest", env, 1_003),
      data: { ...eventOf("PermissionRequest").data }
    })
    const blocked = findItem(foldEvents(emptyInbox, [...events, permission]), "8f2c1e44")!
    assert.deepInclude(blocked, { kind: "permission", headline: "wants to use Bash: rm -rf node_modules && npm ci" })
  })

  it("without $TMUX_PANE the session is recorded unreachable; inside a worker the event is the worker's", () => {
    assert.deepInclude(eventOf("Stop", {}).data, { pane: null, socket: null })
    const worker = eventOf("Stop", { ...env, TRAIL_WORKER_ID: "w4" })
    assert.deepStrictEqual(worker.subject, { type: "worker", id: "w4" })
    assert.strictEqual(worker.data.session_id, "8f2c1e44-9a4b-4f0e-b1d2-3c4d5e6f7a80")
    // A TRAIL_WORKER_ID that is not a worker id is ignored.
    assert.strictEqual(eventOf("Stop", { ...env, TRAIL_WORKER_ID: "x; rm" }).subject.type, "session")
  })

  it("malformed JSON, an unknown event, a missing session_id and huge payloads are refused with a reason", () => {
    const reasons = [
      "{not json",
      JSON.stringify({ session_id: "s", hook_event_name: "SubagentStop" }),
      JSON.stringify({ hook_event_name: "Stop" }),
      JSON.stringify({ session_id: "", hook_event_name: "Stop" }),
      JSON.stringify({
        session_id: "s",
        hook_event_name: "Stop",
        last_assistant_message: "x".repeat(Hooks.MAX_PAYLOAD_BYTES)
      })
    ].map((raw) => Hooks.parsePayload(raw))
    for (const reason of reasons) assert.isTrue(Either.isLeft(reason))
    const [json, unknown, missing, , huge] = reasons.map((r) => (Either.isLeft(r) ? r.left : ""))
    assert.match(json!, /^not JSON/)
    assert.include(unknown!, "hook_event_name")
    assert.include(missing!, "session_id")
    assert.include(huge!, "larger than")
  })

  it("tool inputs are summarised to one short line", () => {
    assert.strictEqual(Hooks.summarizeToolInput({ file_path: "/a/b.ts", content: "…" }), "/a/b.ts")
    assert.strictEqual(Hooks.summarizeToolInput({ command: "ls\n  -la" }), "ls -la")
    assert.strictEqual(Hooks.summarizeToolInput({ other: 1 }), '{"other":1}')
    assert.strictEqual(Hooks.summarizeToolInput(null), "")
  })
})

describe("hooks install / uninstall", () => {
  const command = "'/usr/bin/node' /opt/trail/bin/trail.cjs hook claude"
  const theirs = { matcher: "Bash", hooks: [{ type: "command", command: "./lint.sh" }] }

  it("merges the six entries beside other hooks and settings, idempotently", () => {
    const before = { model: "opus", hooks: { Stop: [theirs] } }
    const once = Hooks.installHooks(before, command)
    assert.deepStrictEqual(once.added, [...Hooks.HOOK_EVENTS])
    assert.strictEqual(once.settings.model, "opus")
    const hooks = once.settings.hooks as Record<string, Array<unknown>>
    assert.deepStrictEqual(hooks.Stop![0], theirs)
    assert.strictEqual(hooks.Stop!.length, 2)
    const twice = Hooks.installHooks(once.settings, "trail hook claude")
    assert.deepStrictEqual(twice.added, [])
    assert.deepStrictEqual(twice.settings, once.settings)
    assert.deepStrictEqual(Hooks.installedEvents(twice.settings), [...Hooks.HOOK_EVENTS])
  })

  it("uninstall removes exactly what install added", () => {
    const before = { model: "opus", hooks: { Stop: [theirs], PreToolUse: [theirs] } }
    const { settings } = Hooks.uninstallHooks(Hooks.installHooks(before, command).settings)
    assert.deepStrictEqual(settings, before)
    const { settings: empty } = Hooks.uninstallHooks(Hooks.installHooks({}, command).settings)
    assert.deepStrictEqual(empty, {})
  })

  it("a settings file whose hooks are not shaped as Claude Code expects is not touched", () => {
    assert.throws(() => Hooks.installHooks({ hooks: [] }, command), Hooks.SettingsShapeError)
    assert.throws(() => Hooks.installHooks({ hooks: { Stop: "x" } }, command), Hooks.SettingsShapeError)
  })

  it("finds the number literals a JSON rewrite would change, never inside strings", () => {
    const text =
      '{"a": 12345678901234567890, "b": 1.0, "c": 1e3, "d": -0.5, "e": 42, "s": "99999999999999999999 \\" 1.0"}'
    assert.deepStrictEqual(Hooks.inexactNumbers(text), ["12345678901234567890", "1.0", "1e3"])
    assert.deepStrictEqual(Hooks.inexactNumbers('{"x": [0, -1, 2.5, 9007199254740991]}'), [])
  })

  it("writes settings in the layout of the old text (indent, final newline)", () => {
    const settings = { a: { b: 1 } }
    assert.strictEqual(Hooks.formatSettings(settings, '{"a":{"b":2}}'), '{"a":{"b":1}}')
    assert.strictEqual(
      Hooks.formatSettings(settings, '{\n    "a": 2\n}\n'),
      '{\n    "a": {\n        "b": 1\n    }\n}\n'
    )
    assert.strictEqual(Hooks.formatSettings(settings, null), '{\n  "a": {\n    "b": 1\n  }\n}\n')
  })

  it("refuses a settings root that is not an object", () => {
    for (const root of [[], "x", null, 3]) {
      assert.throws(() => Hooks.installHooks(root, command), Hooks.SettingsShapeError)
      assert.throws(() => Hooks.uninstallHooks(root), Hooks.SettingsShapeError)
    }
  })

  it("answers Claude Code's permission dialog with its own keys (2.1.197: 1. Yes · 2. Yes, always · Esc cancels)", () => {
    // The real CLI's dialog, captured from a pane; apps/cli/test/claude.test.ts drives it.
    assert.deepStrictEqual(PERMISSION_KEYS, { allow: ["1"], "allow-always": ["2"], deny: ["Escape"] })
  })
})
