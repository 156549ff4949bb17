/**
 * Checkpoints end to end through the real `trail` binary: saving (note from -m, stdin, $EDITOR),
 * listing, showing, searching, deleting, continuing (arming and the SessionStart hook that takes
 * it), PreCompact, `gc`, and the bad inputs of SPEC §4 — a note that is not UTF-8, an editor that
 * fails, an unknown id, a header cut away by hand, a deleted artifacts file, two `continue`s at once.
 */
import { execFileSync, spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { afterAll, describe, expect, it } from "vitest"
import { recordHook } from "../src/hook.js"
import { gitRepo, TRAIL, trail, trailAsync, untilScreen, waitFor } from "./helpers.js"

interface Saved {
  readonly id: string
  readonly state: string
  readonly title: string
  readonly once: boolean
  readonly session: string | null
  readonly artifacts: number
  readonly continued_by: string | null
  readonly file: string
}

interface Shown {
  readonly checkpoint: Saved
  readonly header: string
  readonly problems: ReadonlyArray<string>
}

/** A line of a Claude Code transcript (the shape Claude Code 2.1 writes; see libs/checkpoints). */
const line = (value: unknown) => `${JSON.stringify(value)}\n`

/** A transcript with a failed command, an edit, and an answer. */
const transcript = (file: string, cwd: string) => {
  const at = (s: number) => new Date(Date.UTC(2026, 10, 22, 3, 0, s)).toISOString()
  fs.writeFileSync(
    file,
    [
      line({ type: "user", timestamp: at(0), cwd, message: { role: "user", content: "fix the parser" } }),
      line({
        type: "assistant",
        timestamp: at(1),
        cwd,
        message: {
          role: "assistant",
          content: [{ type: "tool_use", id: "t1", name: "Bash", input: { command: "npm test -- parser" } }]
        }
      }),
      line({
        type: "user",
        timestamp: at(2),
        cwd,
        message: {
          role: "user",
          content: [
            {
              type: "tool_result",
              tool_use_id: "t1",
              is_error: true,
              content: "Exit code 1\nFAIL parser.test.ts: unexpected token at 3:14"
            }
          ]
        },
        toolUseResult: "Error: Exit code 1\nFAIL parser.test.ts: unexpected token at 3:14"
      }),
      line({
        type: "assistant",
        timestamp: at(3),
        cwd,
        message: {
          role: "assistant",
          content: [
            {
              type: "tool_use",
              id: "t2",
              name: "Write",
              input: { file_path: path.join(cwd, "src", "parser.ts"), content: "one\ntwo\n" }
            }
          ]
        }
      }),
      line({
        type: "user",
        timestamp: at(4),
        cwd,
        message: { role: "user", content: [{ type: "tool_result", tool_use_id: "t2", content: "File created" }] }
      }),
      line({
        type: "assistant",
        timestamp: at(5),
        cwd,
        message: { role: "assistant", content: [{ type: "text", text: "The tokenizer drops the last token." }] }
      })
    ].join("")
  )
}

const setup = (toml = "") => {
  const root = gitRepo({ "src/a.ts": "export {}\n" })
  if (toml !== "") fs.writeFileSync(path.join(root, ".trail.toml"), toml)
  const run = (args: ReadonlyArray<string>, env: Record<string, string> = {}) => trail(args, { cwd: root, env })
  expect(run(["init"]).code).toBe(0)
  const checkpointsDir = path.join(root, ".trail", "checkpoints")
  const files = () => (fs.existsSync(checkpointsDir) ? fs.readdirSync(checkpointsDir).sort() : [])
  /** Runs `trail hook claude` with `payload` on stdin, as Claude Code does. */
  const hook = (payload: Record<string, unknown>) =>
    spawnSync(process.execPath, [TRAIL, "hook", "claude"], {
      cwd: root,
      input: JSON.stringify({ cwd: root, ...payload }),
      encoding: "utf8"
    })
  return { root, run, files, hook }
}

const servers: Array<string> = []
afterAll(() => {
  for (const server of servers) spawnSync("tmux", ["-L", server, "kill-server"], { stdio: "ignore" })
})

describe("trail checkpoint", () => {
  it("saves a session's transcript, git and the note; lists, shows, pulls an artifact, searches, deletes", () => {
    const t = setup()
    const file = path.join(t.root, "..", `${path.basename(t.root)}-transcript.jsonl`)
    transcript(file, t.root)
    // The hooks told trail of the session and its transcript.
    expect(
      t.hook({ session_id: "s-1", hook_event_name: "SessionStart", source: "startup", transcript_path: file }).status
    ).toBe(0)

    const saved = t.run(["checkpoint", "-m", "parser: the tokenizer drops the last token"])
    expect(saved.code, saved.stderr).toBe(0)
    const cp = saved.json() as Saved
    expect(cp).toMatchObject({ state: "saved", title: "parser: the tokenizer drops the last token", session: "s-1" })
    expect(t.files()).toEqual([`${cp.id}.artifacts.json`, `${cp.id}.md`])

    const list = t.run(["checkpoints"]).json() as Array<Saved>
    expect(list.map((c) => c.id)).toEqual([cp.id])

    const shown = t.run(["checkpoint", "show", cp.id]).json() as Shown
    expect(shown.header).toContain(`# Checkpoint ${cp.id}: parser: the tokenizer drops the last token`)
    expect(shown.header).toMatch(/## Files touched\n\n- `src\/parser.ts` \+2 -0/)
    expect(shown.header).toMatch(/`npm test -- parser` exited 1/)
    expect(shown.header).toContain("## Decisions")
    expect(shown.problems).toEqual([])

    // The failed command's artifact in full, by its number in the header.
    const number = /`npm test -- parser` exited 1[^\n]*@(\d+)\]/.exec(shown.header)?.[1]
    expect(number).toBeDefined()
    const artifact = t.run(["checkpoint", "show", cp.id, "--artifact", number ?? ""])
    expect(artifact.code, artifact.stderr).toBe(0)
    expect((artifact.json() as { text: string }).text).toContain("unexpected token at 3:14")
    const full = t.run(["checkpoint", "show", "last", "--full"]).json() as { artifacts: ReadonlyArray<unknown> }
    expect(full.artifacts).toHaveLength(cp.artifacts)

    const hits = t.run(["search", "unexpected", "token"]).json() as Array<{ artifact: string; kind: string }>
    expect(hits[0]).toMatchObject({ artifact: `${cp.id}@${number}`, kind: "command" })
    expect(t.run(["search", "unexpected", "--kind", "edit"]).json()).toEqual([])
    expect(t.run(["search", "unexpected", "--kind", "nope"]).error().message).toContain("--kind")

    const pretty = t.run(["checkpoints", "--pretty"])
    expect(pretty.stdout).toContain(cp.id)

    const deleted = t.run(["checkpoint", "delete", cp.id])
    expect(deleted.code, deleted.stderr).toBe(0)
    expect(t.files()).toEqual([])
    expect(t.run(["checkpoints"]).json()).toEqual([])
    expect(t.run(["search", "unexpected"]).json()).toEqual([])
  })

  it("search finds what workers handed over or died of, without a checkpoint; --rebuild rebuilds it from the log", async () => {
    const t = setup()
    const agent = path.join(t.root, ".trail", "agent.sh")
    // A scripted agent: a prompt starting "fail" fails with a reason, any other is done with it as summary.
    fs.writeFileSync(
      agent,
      `set -eu
cd "$TRAIL_ROOT"
case "$TRAIL_PROMPT" in
  fail*) trail worker fail --reason "the zorblax fixture is missing from the repository" >/dev/null ;;
  *) trail worker done --outcome fixed --summary "$TRAIL_PROMPT" --evidence "src/a.ts:1" --recommend "add a quimby test" >/dev/null ;;
esac
`
    )
    fs.writeFileSync(
      path.join(t.root, ".trail.toml"),
      `[worker]\ncommand = ["sh", "${agent}"]\nsubstrate = "process"\nexit_grace_secs = 1\n`
    )
    expect(t.run(["kinds", "trust", "worker.command"]).code).toBe(0)
    const failing = t.run(["spawn", "fail at the parser"])
    expect(failing.code, failing.stderr).toBe(0)
    const fixing = t.run(["spawn", "the zorblax parser reads a last line without a newline now"])
    expect(fixing.code, fixing.stderr).toBe(0)
    const ids = [failing, fixing].map((r) => (r.json() as { id: string }).id)
    await waitFor(() => {
      const workers = t.run(["workers"]).json() as Array<{ id: string; state: string }>
      return ids.every((id) => workers.some((w) => w.id === id && (w.state === "ready" || w.state === "failed")))
    }, "both workers to finish")
    expect(t.run(["checkpoints"]).json()).toEqual([])

    interface Hit {
      readonly checkpoint: string | null
      readonly artifact: string
      readonly kind: string
      readonly unresolved: boolean
    }
    const hits = t.run(["search", "zorblax"]).json() as Array<Hit>
    // The failure first: nothing answered it (the result is another worker's, not a respawn of it).
    expect(hits.map((h) => [h.checkpoint, h.artifact, h.kind, h.unresolved])).toEqual([
      [null, `${ids[0]}@failure`, "failure", true],
      [null, `${ids[1]}@result`, "result", false]
    ])
    expect((t.run(["search", "quimby", "--kind", "result"]).json() as Array<Hit>).map((h) => h.artifact)).toEqual([
      `${ids[1]}@result`
    ])
    const pretty = t.run(["search", "zorblax", "--pretty"])
    expect(pretty.stdout).toContain(`trail worker show ${ids[0]}`)
    for (const query of ['"zorblax', "zorblax*", "NEAR(zorblax", "kind:failure", "-zorblax"])
      expect(t.run(["search", query]).code, query).toBe(0)

    expect(t.run(["search", "--rebuild"]).json()).toEqual({ checkpoints: 0, artifacts: 0, workers: 2, missing: [] })
    expect((t.run(["search", "zorblax"]).json() as Array<Hit>).map((h) => h.artifact)).toEqual(
      hits.map((h) => h.artifact)
    )
    expect(t.run(["search", "--rebuild", "zorblax"]).code).toBe(2)
    expect(t.run(["search"]).code).toBe(2)
  }, 60_000)

  it("takes the note from stdin; a note that is not UTF-8 saves nothing (exit 1)", () => {
    const t = setup()
    const piped = spawnSync(process.execPath, [TRAIL, "checkpoint"], {
      cwd: t.root,
      input: "## Next steps\n\n- rerun the parser tests\n",
      encoding: "utf8"
    })
    expect(piped.status, piped.stderr).toBe(0)
    const id = (JSON.parse(piped.stdout) as Saved).id
    expect(fs.readFileSync(path.join(t.root, ".trail", "checkpoints", `${id}.md`), "utf8")).toContain(
      "## Next steps\n\n- rerun the parser tests"
    )
    const before = t.files()
    const bad = spawnSync(process.execPath, [TRAIL, "checkpoint"], {
      cwd: t.root,
      input: Buffer.from([0x6e, 0x6f, 0x74, 0x65, 0xff, 0xfe, 0x0a])
    })
    expect(bad.status).toBe(1)
    expect(JSON.parse(bad.stderr.toString()).error.code).toBe("note-not-utf8")
    expect(bad.stdout.toString()).toBe("")
    expect(t.files()).toEqual(before)
    expect((t.run(["checkpoints"]).json() as Array<Saved>).map((c) => c.id)).toEqual([id])
  })

  it("--edit opens $EDITOR on the header; an editor that exits non-zero saves nothing (exit 1)", () => {
    const t = setup()
    const editor = path.join(t.root, "..", `${path.basename(t.root)}-editor.sh`)
    // Fills in the empty Decisions section, as a person would.
    fs.writeFileSync(
      editor,
      `#!/bin/sh\nsed -i 's/^## Decisions$/## Decisions\\n\\n- keep the old tokenizer/' "$1"\n`,
      {
        mode: 0o755
      }
    )
    const out = path.join(t.root, "..", `${path.basename(t.root)}-out`)
    /** `trail checkpoint --edit` on a terminal (script(1) gives it one); its exit status and stdout. */
    const onTty = (editorCommand: string) => {
      const result = spawnSync(
        "script",
        ["-qec", `'${process.execPath}' '${TRAIL}' checkpoint --edit > '${out}' 2>&1`, "/dev/null"],
        { cwd: t.root, env: { ...process.env, EDITOR: editorCommand, VISUAL: "" }, encoding: "utf8" }
      )
      return { code: result.status, output: fs.readFileSync(out, "utf8") }
    }
    const edited = onTty(editor)
    expect(edited.code, edited.output).toBe(0)
    const id = (JSON.parse(edited.output) as Saved).id
    expect((t.run(["checkpoint", "show", id]).json() as Shown).header).toContain(
      "## Decisions\n\n- keep the old tokenizer"
    )
    const failed = onTty("false")
    expect(failed.code).toBe(1)
    expect(JSON.parse(failed.output).error.code).toBe("editor-failed")
    expect(t.files()).toEqual([`${id}.artifacts.json`, `${id}.md`])
    // Off a terminal, --edit is refused before anything is written.
    const refused = t.run(["checkpoint", "--edit"])
    expect(refused.code).toBe(2)
    expect(t.files()).toEqual([`${id}.artifacts.json`, `${id}.md`])
  })

  it("an unknown id names it (exit 1); a header cut away still continues; a deleted artifacts file is said", () => {
    const t = setup()
    const unknown = t.run(["checkpoint", "show", "cp-20200101-000000-abcd"])
    expect(unknown.code).toBe(1)
    expect(unknown.error()).toMatchObject({ code: "checkpoint-not-found" })
    expect(unknown.error().message).toContain("cp-20200101-000000-abcd")
    expect(t.run(["continue", "nonsense"]).error().message).toContain('"nonsense"')
    expect(t.run(["checkpoint", "delete", "cp-20200101-000000-abcd"]).code).toBe(1)

    const cp = t.run(["checkpoint", "-m", "the note survives"]).json() as Saved
    // A person keeps only the note.
    fs.writeFileSync(cp.file, "## Next steps\n\n- only this is left\n")
    const continued = t.run(["continue", cp.id])
    expect(continued.code, continued.stderr).toBe(0)
    const header = (continued.json() as Shown).header
    expect(header).toContain(`# Checkpoint ${cp.id}: the note survives`)
    expect(header).toContain("- only this is left")

    fs.rmSync(path.join(t.root, ".trail", "checkpoints", `${cp.id}.artifacts.json`))
    const shown = t.run(["checkpoint", "show", cp.id])
    expect(shown.code).toBe(0)
    expect((shown.json() as Shown).problems.join(" ")).toMatch(/artifacts\.json was deleted/)
    const artifact = t.run(["checkpoint", "show", cp.id, "--artifact", "1"])
    expect(artifact.code).toBe(1)
    expect(artifact.error().code).toBe("checkpoint-file-missing")
  })

  it("two continues at once: one arms, the other is told it is taken", async () => {
    const t = setup()
    const cp = t.run(["checkpoint", "-m", "race"]).json() as Saved
    const both = await Promise.all([
      trailAsync(["continue", cp.id], { cwd: t.root }),
      trailAsync(["continue", cp.id], { cwd: t.root })
    ])
    expect(both.map((r) => r.code).sort()).toEqual([0, 1])
    const loser = both.find((r) => r.code === 1)
    expect(JSON.parse(loser?.stderr ?? "{}").error.code).toBe("checkpoint-taken")
  })

  it("SessionStart of a new conversation takes the armed checkpoint once; resume and other hooks print nothing", () => {
    const t = setup()
    const cp = t.run(["checkpoint", "-m", "hand this over"]).json() as Saved
    expect(t.hook({ session_id: "early", hook_event_name: "SessionStart", source: "startup" }).stdout).toBe("")
    expect(t.run(["continue", "last"]).code).toBe(0)
    expect(t.hook({ session_id: "r", hook_event_name: "SessionStart", source: "resume" }).stdout).toBe("")
    expect(t.hook({ session_id: "r", hook_event_name: "Stop", last_assistant_message: "x" }).stdout).toBe("")
    const taken = t.hook({ session_id: "fresh", hook_event_name: "SessionStart", source: "clear" })
    expect(taken.status).toBe(0)
    const answer = JSON.parse(taken.stdout) as {
      hookSpecificOutput: { hookEventName: string; additionalContext: string }
    }
    expect(answer.hookSpecificOutput.hookEventName).toBe("SessionStart")
    expect(answer.hookSpecificOutput.additionalContext).toContain(`# Checkpoint ${cp.id}: hand this over`)
    expect(t.hook({ session_id: "next", hook_event_name: "SessionStart", source: "startup" }).stdout).toBe("")
    expect((t.run(["checkpoints"]).json() as Array<Saved>)[0]?.continued_by).toBe("fresh")
    // Continued: its review item is closed.
    expect((t.run(["inbox"]).json() as Array<{ kind: string }>).filter((i) => i.kind === "checkpoint")).toEqual([])
  })

  it("--once is consumed at its continue and purged by gc after the retention; --spawn refuses a consumed one", () => {
    const t = setup("[checkpoint]\nconsumed_retention_days = 0\n")
    const cp = t.run(["checkpoint", "-m", "once only", "--once"]).json() as Saved
    expect(cp.once).toBe(true)
    expect(t.run(["continue", cp.id]).code).toBe(0)
    expect(t.run(["checkpoints"]).json()).toEqual([])
    const consumed = t.run(["checkpoints", "--include-consumed"]).json() as Array<Saved>
    expect(consumed.map((c) => [c.id, c.state])).toEqual([[cp.id, "consumed"]])
    expect(t.run(["continue", cp.id, "--spawn"]).error().code).toBe("checkpoint-taken")
    const gc = t.run(["gc"])
    expect(gc.code, gc.stderr).toBe(0)
    expect((gc.json() as { purged_checkpoints: Array<string> }).purged_checkpoints).toEqual([cp.id])
    expect(t.files()).toEqual([])
    expect(t.run(["checkpoints", "--include-consumed"]).json()).toEqual([])
  })

  it("delete and gc report a file they could not remove after committing: a warning on stderr and a JSON field", () => {
    const t = setup("[checkpoint]\nconsumed_retention_days = 0\n")
    /** A directory where the checkpoint's .md was: removing it as a file fails, for root too. */
    const blockHeader = (id: string) => {
      const file = path.join(t.root, ".trail", "checkpoints", `${id}.md`)
      fs.rmSync(file)
      fs.mkdirSync(file)
      fs.writeFileSync(path.join(file, "keep"), "x")
      return file
    }
    interface Warned {
      readonly warning: { readonly code: string; readonly message: string }
    }
    const cp = t.run(["checkpoint", "-m", "to delete"]).json() as Saved
    const header = blockHeader(cp.id)
    const deleted = t.run(["checkpoint", "delete", cp.id])
    expect(deleted.code, deleted.stderr).toBe(0)
    expect((deleted.json() as { unremoved_files: Array<string> }).unremoved_files).toEqual([
      expect.stringContaining(header)
    ])
    const warned = JSON.parse(deleted.stderr.trim()) as Warned
    expect(warned.warning.code).toBe("checkpoint-files-left")
    expect(warned.warning.message).toContain(header)
    // Deleted all the same: the index and the log agree.
    expect(t.run(["checkpoints", "--include-consumed"]).json()).toEqual([])
    expect(t.run(["checkpoint", "show", cp.id]).error().code).toBe("checkpoint-not-found")

    const once = t.run(["checkpoint", "-m", "once", "--once"]).json() as Saved
    expect(t.run(["continue", once.id]).code).toBe(0)
    const onceHeader = blockHeader(once.id)
    const gc = t.run(["gc"])
    expect(gc.code, gc.stderr).toBe(0)
    expect(gc.json()).toMatchObject({
      purged_checkpoints: [once.id],
      unremoved_checkpoint_files: [expect.stringContaining(onceHeader)]
    })
    expect((JSON.parse(gc.stderr.trim()) as Warned).warning.code).toBe("checkpoint-files-left")
  })

  it("hooks install adds PreCompact only when enabled and makes an async SessionStart synchronous; PreCompact saves", () => {
    const t = setup()
    const settings = path.join(t.root, ".claude", "settings.json")
    fs.mkdirSync(path.dirname(settings), { recursive: true })
    fs.writeFileSync(
      settings,
      JSON.stringify({
        hooks: {
          SessionStart: [{ matcher: "", hooks: [{ type: "command", command: "trail hook claude", async: true }] }]
        }
      })
    )
    const first = t.run(["hooks", "install"]).json() as { added: Array<string>; upgraded: Array<string> }
    expect(first.upgraded).toEqual(["SessionStart"])
    expect(first.added).not.toContain("PreCompact")
    const read = () =>
      JSON.parse(fs.readFileSync(settings, "utf8")) as {
        hooks: Record<string, Array<{ hooks: Array<{ async?: boolean }> }>>
      }
    expect(read().hooks["SessionStart"]?.[0]?.hooks[0]?.async).toBeUndefined()
    expect(read().hooks["PreCompact"]).toBeUndefined()
    expect(t.run(["hooks", "install"]).json()).toMatchObject({ added: [], upgraded: [] })

    const file = path.join(t.root, "..", `${path.basename(t.root)}-compact.jsonl`)
    transcript(file, t.root)
    const payload = { session_id: "c-1", hook_event_name: "PreCompact", trigger: "manual", transcript_path: file }
    // Not enabled: recorded, nothing saved.
    expect(t.hook(payload).status).toBe(0)
    expect(t.run(["checkpoints"]).json()).toEqual([])

    fs.writeFileSync(path.join(t.root, ".trail.toml"), "[checkpoint]\non_precompact = true\n")
    expect((t.run(["hooks", "install"]).json() as { added: Array<string> }).added).toEqual(["PreCompact"])
    const compacted = t.hook(payload)
    expect(compacted.status).toBe(0)
    expect(compacted.stdout).toBe("")
    const [saved] = t.run(["checkpoints"]).json() as Array<Saved>
    expect(saved).toMatchObject({ title: "before compaction", session: "c-1" })
    expect((t.run(["checkpoint", "show", saved?.id ?? ""]).json() as Shown).header).toContain("`src/parser.ts` +2")
  })

  it("a PreCompact asks for nothing more than its event unless checkpoint.on_precompact is on (read before any bundle loads)", () => {
    const t = setup()
    const payload = JSON.stringify({ session_id: "c-2", hook_event_name: "PreCompact", trigger: "auto", cwd: t.root })
    const record = () => recordHook(payload, { env: {}, cwd: t.root, at: Date.UTC(2026, 10, 22) })
    // Off (the default): recorded, no follow-up, so the checkpoint bundle is never loaded.
    expect(record()).toEqual({ outcome: "recorded", followUp: null })
    fs.writeFileSync(path.join(t.root, ".trail.toml"), "[checkpoint]\non_precompact = true\n")
    expect(record()).toEqual({ outcome: "recorded", followUp: { kind: "precompact", root: t.root, session: "c-2" } })
    // Switched off again after the hook was installed: nothing more.
    fs.writeFileSync(path.join(t.root, ".trail.toml"), "[checkpoint]\non_precompact = false\n")
    expect(record()).toEqual({ outcome: "recorded", followUp: null })
    // A config that does not decode: still recorded; the reason is in hook-errors.log.
    fs.writeFileSync(path.join(t.root, ".trail.toml"), "[checkpoint]\non_precompact = 3\n")
    expect(record()).toEqual({ outcome: "recorded", followUp: null })
    expect(fs.readFileSync(path.join(t.root, ".trail", "hook-errors.log"), "utf8")).toContain(
      "checkpoint.on_precompact"
    )
    fs.rmSync(path.join(t.root, ".trail.toml"))
    // `trail events` prints one event per line.
    const events = t
      .run(["events"])
      .stdout.trim()
      .split("\n")
      .map((line) => JSON.parse(line) as { type: string })
    expect(events.filter((e) => e.type === "session.compacting")).toHaveLength(4)
  })

  it("continue --spawn starts a worker whose task file begins with the header", async () => {
    const t = setup('[worker]\nsubstrate = "process"\ncommand = ["sh", "-c", "sleep 0.1"]\n')
    expect(t.run(["kinds", "trust", "worker.command"]).code).toBe(0)
    const cp = t.run(["checkpoint", "-m", "spawn from here"]).json() as Saved
    const spawned = t.run(["continue", cp.id, "--spawn"])
    expect(spawned.code, spawned.stderr).toBe(0)
    const { worker } = spawned.json() as { worker: { id: string } }
    const task = path.join(t.root, ".trail", "workers", worker.id, "task.md")
    await waitFor(() => fs.existsSync(task), "the task file")
    expect(fs.readFileSync(task, "utf8")).toContain(`# Checkpoint ${cp.id}: spawn from here`)
    // Not armed: a session started now gets nothing.
    expect(t.hook({ session_id: "x", hook_event_name: "SessionStart", source: "startup" }).stdout).toBe("")
    expect(t.run(["continue", cp.id, "--as", "default"]).code).toBe(2)
  })

  it("the TUI shows a checkpoint item; Enter continues it (armed), Space dismisses it", async () => {
    const server = `trail-cp-tui-${process.pid}-${Math.floor(Math.random() * 1e6)}`
    servers.push(server, `${server}-workers`)
    const t = setup(`[worker]\ntmux_socket = "${server}-workers"\n`)
    const first = t.run(["checkpoint", "-m", "first handoff"]).json() as Saved
    const tmux = (...args: Array<string>) =>
      execFileSync("tmux", ["-L", server, ...args], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] }).trim()
    tmux(
      "new-session",
      "-d",
      "-s",
      "work",
      "-x",
      "150",
      "-y",
      "40",
      "-c",
      t.root,
      `node ${TRAIL} inbox --tui; sleep 60`
    )
    const until = untilScreen(() => tmux("capture-pane", "-p", "-J", "-t", "work"))
    const shown = await until((s) => s.includes("first handoff") && s.includes("[checkpoint]"), "the checkpoint item")
    expect(shown).toContain("[Enter Continue]")
    tmux("send-keys", "-t", "work", "Enter")
    await until((s) => s.includes(`${first.id} armed`), "the item to be continued")
    // Armed: a second continue is told so.
    expect(t.run(["continue", first.id]).error().code).toBe("checkpoint-taken")
    // Armed, not yet taken: the item stays until a session takes it, or until it is dismissed.
    tmux("send-keys", "-t", "work", " ")
    await until((s) => s.includes(`dismissed`), "the dismissal")
    const items = t.run(["inbox"]).json() as Array<{ subject: { id: string } }>
    expect(items.map((i) => i.subject.id)).not.toContain(first.id)
  }, 60_000)

  it("docs/checkpoints.md's worked example saves the checkpoint its header shows", () => {
    const t = setup()
    const doc = fs.readFileSync(path.resolve(import.meta.dirname, "..", "..", "..", "docs", "checkpoints.md"), "utf8")
    const example = /```bash\n([\s\S]*?)```/.exec(doc)?.[1] ?? ""
    expect(example).toMatch(/^trail checkpoint -m/)
    const bin = path.join(t.root, "..", `${path.basename(t.root)}-bin`)
    fs.mkdirSync(bin)
    fs.writeFileSync(path.join(bin, "trail"), `#!/bin/sh\nexec '${process.execPath}' '${TRAIL}' "$@"\n`, {
      mode: 0o755
    })
    const ran = spawnSync("bash", ["-c", example], {
      cwd: t.root,
      env: { ...process.env, PATH: `${bin}:${process.env["PATH"] ?? ""}` },
      encoding: "utf8"
    })
    expect(ran.status, ran.stderr).toBe(0)
    const shown = t.run(["checkpoint", "show", "last"]).json() as Shown
    expect(shown.checkpoint.title).toBe("parser: the tokenizer drops the last token of a line without a newline")
    expect(shown.header).toContain("## Decisions\n\n- not a race")
    expect(shown.header).toContain("## Next steps\n\n- add a test for input without a trailing newline")
  })

  it("--summarize pipes the bundle to checkpoint.summarize_command and keeps its output as ## Summary", () => {
    const refused = setup()
    expect(refused.run(["checkpoint", "-m", "x", "--summarize"]).code).toBe(2)
    expect(refused.files()).toEqual([])
    const t = setup(`[checkpoint]\nsummarize_command = "grep -c . | sed 's/^/bundle lines: /'"\n`)
    const cp = t.run(["checkpoint", "-m", "summarize me", "--summarize"])
    expect(cp.code, cp.stderr).toBe(0)
    const header = (t.run(["checkpoint", "show", "last"]).json() as Shown).header
    expect(header).toMatch(/## Summary\n\nbundle lines: \d+/)
    const failing = setup(`[checkpoint]\nsummarize_command = ["sh", "-c", "echo no model >&2; exit 4"]\n`)
    const failed = failing.run(["checkpoint", "-m", "x", "--summarize"])
    expect(failed.code).toBe(1)
    expect(failed.error()).toMatchObject({ code: "summarize-failed" })
    expect(failed.error().message).toContain("no model")
    expect(failing.files()).toEqual([])
  })
})
