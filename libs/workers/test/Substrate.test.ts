/**
 * The pieces of the substrate a worker's start and its output depend on: the environment file
 * the wrapper sources, what a worker inherits, and the last lines of a dead pane.
 */
import { execFileSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { describe, expect, it } from "vitest"
import * as Substrate from "../src/Substrate.js"

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

  it("the last lines of a dead pane are its last non-blank lines, without tmux's own status line", () => {
    const pane = `first\n\nlast words\n${"\n".repeat(40)}Pane is dead (status 0, Sat Nov 21 20:00:00 2026)\n`
    expect(Substrate.lastLines(pane)).toBe("first\nlast words")
    expect(Substrate.lastLines("a\nb\nc", 2)).toBe("b\nc")
  })
})
