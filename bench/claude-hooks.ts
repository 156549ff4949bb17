/**
 * `node --import tsx bench/claude-hooks.ts [runs]` — what trail's hooks add to a Claude Code
 * session, measured with the real CLI (the pinned devDependency) against the Messages API stub of
 * the tests (127.0.0.1, no network, no model).
 *
 * One `claude -p "hello"` is one session of one turn: SessionStart, UserPromptSubmit, the turn,
 * Stop, SessionEnd. Its wall time is measured `runs` times (default 8) under three settings,
 * interleaved so that load on the machine falls on all three alike:
 *
 * - none: no hooks;
 * - sync: trail's six entries without `async` (what `trail hooks install` wrote before);
 * - installed: what `trail hooks install` writes now (five `async`, SessionEnd synchronous).
 *
 * Prints medians (ms) and each setting's difference to `none`: the whole run; from the start to
 * the model's request (SessionStart and UserPromptSubmit hooks delay it when synchronous); from
 * the model's last request to the exit (the Stop and SessionEnd hooks).
 */
import { execFileSync, spawn } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { startMessagesStub } from "../apps/cli/test/fixtures/messagesStub.js"
import { at, median } from "./stats.js"

const runs = Number(process.argv[2] ?? 8)
const TRAIL = path.resolve(import.meta.dirname, "..", "apps", "cli", "bin", "trail.cjs")
const CLAUDE = path.resolve(import.meta.dirname, "..", "node_modules", ".bin", "claude")
const KEY = "sk-ant-api03-trail-bench-not-a-real-key-0000000000000"

const stub = await startMessagesStub()
const home = fs.mkdtempSync(path.join(os.tmpdir(), "trail-bench-home-"))
const root = fs.mkdtempSync(path.join(os.tmpdir(), "trail-bench-root-"))
execFileSync("git", ["init", "-q"], { cwd: root })
fs.writeFileSync(path.join(home, ".claude.json"), JSON.stringify({ hasCompletedOnboarding: true }))
const bin = path.join(home, "bin")
fs.mkdirSync(bin)
fs.writeFileSync(path.join(bin, "trail"), `#!/bin/sh\nexec '${process.execPath}' '${TRAIL}' "$@"\n`, { mode: 0o755 })
const env = {
  ...process.env,
  HOME: home,
  PATH: `${bin}:${process.env["PATH"] ?? ""}`,
  ANTHROPIC_API_KEY: KEY,
  ANTHROPIC_BASE_URL: stub.url,
  DISABLE_AUTOUPDATER: "1",
  CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: "1",
  DISABLE_TELEMETRY: "1"
}
execFileSync(process.execPath, [TRAIL, "init"], { cwd: root, env })
execFileSync(process.execPath, [TRAIL, "hooks", "install", "--project"], { cwd: root, env })
const settingsFile = path.join(root, ".claude", "settings.json")
const installed = fs.readFileSync(settingsFile, "utf8")
const sync = JSON.stringify(
  JSON.parse(installed, (key, value: unknown) => (key === "async" ? undefined : value)),
  null,
  2
)
const settings = { none: "{}\n", sync, installed } as const

type Run = { readonly total: number; readonly before: number; readonly after: number }
const times: Record<keyof typeof settings, Array<Run>> = { none: [], sync: [], installed: [] }
for (let i = 0; i < runs; i++)
  for (const name of Object.keys(settings) as Array<keyof typeof settings>) {
    fs.writeFileSync(settingsFile, settings[name])
    const start = Date.now()
    const seen = stub.arrivals.length
    // Asynchronously: the stub answers from this process's event loop.
    const status = await new Promise<number | null>((resolve) => {
      const child = spawn(CLAUDE, ["-p", "hello"], { cwd: root, env, stdio: ["ignore", "ignore", "inherit"] })
      child.on("close", resolve)
    })
    const end = Date.now()
    if (status !== 0) throw new Error(`claude -p exited ${status}`)
    const arrivals = stub.arrivals.slice(seen)
    times[name].push({
      total: end - start,
      before: at(arrivals, 0) - start,
      after: end - at(arrivals, arrivals.length - 1)
    })
  }
const med = (name: keyof typeof times, part: keyof Run) => Math.round(median(times[name].map((r) => r[part])))
for (const name of Object.keys(times) as Array<keyof typeof times>)
  process.stdout.write(
    `${name.padEnd(10)} whole run ${med(name, "total")} ms (+${med(name, "total") - med("none", "total")})` +
      ` · start → the model's request ${med(name, "before")} ms (+${med(name, "before") - med("none", "before")})` +
      ` · the answer → exit ${med(name, "after")} ms (+${med(name, "after") - med("none", "after")})\n`
  )
await stub.close()
fs.rmSync(home, { recursive: true, force: true, maxRetries: 5, retryDelay: 200 })
fs.rmSync(root, { recursive: true, force: true, maxRetries: 5, retryDelay: 200 })
