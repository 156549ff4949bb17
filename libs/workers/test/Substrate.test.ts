/**
 * The pieces of the substrate a worker's start and its output depend on: the environment file
 * the wrapper sources, what a worker inherits, and the last lines of a dead pane.
 */
import { execFileSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import * as NodeContext from "@effect/platform-node/NodeContext"
import { Effect, Exit } from "effect"
import { describe, expect, it } from "vitest"
import * as Substrate from "../src/Substrate.js"
import * as Tmux from "../src/Tmux.js"

describe("Substrate", () => {
  it("the wrapper sources the environment file exactly (quotes, newlines, $(…) stay text) and deletes it", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "trail-substrate-"))
    const hostile = `it's "quoted"; $(touch ${dir}/pwned) \`touch ${dir}/pwned2\`\nsecond line \\ end`
    Substrate.writeEnvFile(dir, { HOSTILE: hostile, PATH: process.env["PATH"] ?? "", "NOT-A-NAME": "x" })
    expect(fs.statSync(path.join(dir, Substrate.ENV_FILE)).mode & 0o777).toBe(0o600)
    const [program, ...args] = Substrate.wrap(dir, ["sh", "-c", 'printf %s "$HOSTILE"'])
    const out = execFileSync(program!, args, { encoding: "utf8", env: {} })
    expect(out).toBe(hostile)
    expect(fs.existsSync(path.join(dir, "pwned"))).toBe(false)
    expect(fs.existsSync(path.join(dir, "pwned2"))).toBe(false)
    expect(fs.existsSync(path.join(dir, Substrate.ENV_FILE))).toBe(false)
    expect(fs.readFileSync(path.join(dir, Substrate.EXIT_FILE), "utf8")).toBe("0\n")
  })

  it("a worker inherits the spawner's variables but not its terminal's or its parent worker's identity", () => {
    const env = Substrate.inheritedEnv({
      API_KEY: "k",
      TMUX: "/tmp/tmux-0/default,1,0",
      TMUX_PANE: "%3",
      TRAIL_WORKER_ID: "w1",
      TRAIL_PATH: "src",
      TRAIL_ROOT: "/r",
      UID: "0"
    })
    expect(env).toEqual({ API_KEY: "k", TRAIL_ROOT: "/r" })
  })

  it("a worker never runs as the spawner's agent, nor inside the spawner's Claude Code session", () => {
    const env = Substrate.inheritedEnv({
      TRAIL_AGENT: "loop-7",
      CLAUDECODE: "1",
      CLAUDE_CODE_ENTRYPOINT: "cli",
      CLAUDE_CODE_SSE_PORT: "41234",
      CLAUDE_PROJECT_DIR: "/home/me/project",
      // The person's own Claude Code settings are configuration, not a session: they stay.
      CLAUDE_CODE_USE_BEDROCK: "1",
      CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: "1",
      ANTHROPIC_API_KEY: "k"
    })
    expect(env).toEqual({
      CLAUDE_CODE_USE_BEDROCK: "1",
      CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: "1",
      ANTHROPIC_API_KEY: "k"
    })
  })

  it("a tmux launch that cannot open its window leaves no environment file behind", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "trail-substrate-"))
    // A tmux that has its session but refuses every new window (as one does with no space left).
    const fake = path.join(dir, "tmux")
    fs.writeFileSync(
      fake,
      '#!/bin/sh\nfor a in "$@"; do [ "$a" = new-window ] && { echo "create window failed: no space" >&2; exit 1; }; done\nexit 0\n',
      { mode: 0o755 }
    )
    const workerDir = path.join(dir, "w1")
    fs.mkdirSync(workerDir)
    const exit = await Effect.gen(function* () {
      const tmux = yield* Tmux.make({ socket: `trail-test-${process.pid}`, session: "trail-workers", binary: fake })
      return yield* Substrate.tmuxSubstrate(tmux).launch({
        id: "w1",
        dir: workerDir,
        cwd: dir,
        env: { API_KEY: "secret" },
        argv: ["true"],
        tag: `w1 ${dir}`
      })
    }).pipe(Effect.provide(NodeContext.layer), Effect.runPromiseExit)
    expect(Exit.isFailure(exit)).toBe(true)
    expect(String(exit)).toContain("no space")
    expect(fs.existsSync(path.join(workerDir, Substrate.ENV_FILE))).toBe(false)
  })

  it("the last lines of a dead pane are its last non-blank lines, without tmux's own status line", () => {
    const pane = `first\n\nlast words\n${"\n".repeat(40)}Pane is dead (status 0, Sat Nov 21 20:00:00 2026)\n`
    expect(Substrate.lastLines(pane)).toBe("first\nlast words")
    expect(Substrate.lastLines("a\nb\nc", 2)).toBe("b\nc")
  })

  it("a plain process has no terminal: typing or pressing keys is unsupported, naming the worker", () => {
    const worker = { id: "w7", window: null, tag: "w7 /r", dir: "/nonexistent", pid: null }
    for (const attempt of [
      Substrate.processSubstrate.sendText(worker, "hello"),
      Substrate.processSubstrate.pressKeys(worker, ["Escape"])
    ]) {
      const exit = Effect.runSyncExit(attempt)
      expect(Exit.isFailure(exit)).toBe(true)
      expect(JSON.stringify(exit)).toContain("worker w7 runs as a plain process")
    }
  })
})
