/**
 * Two `trail supervise` processes started together on one root, again and again: the supervisor
 * lock (a compare-and-set upsert in the store's write transaction) lets exactly one run; the
 * other exits 1 with `supervisor-running`, never with a busy or corrupt store, and never both run.
 */
import { spawn } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { describe, expect, it } from "vitest"
import { cleanEnv, gitRepo, TRAIL, trail } from "./helpers.js"

/** Rounds: each starts two processes (~1–2 s each on a loaded machine); kept under 20 s in all. */
const ROUNDS = 4

interface Running {
  readonly pid: number | undefined
  readonly kill: () => void
  readonly done: Promise<{ readonly code: number | null; readonly stderr: string }>
}

const supervise = (root: string): Running => {
  const child = spawn(process.execPath, [TRAIL, "supervise"], {
    cwd: root,
    env: cleanEnv()
  })
  let stderr = ""
  child.stderr.on("data", (d) => (stderr += d))
  const done = new Promise<{ code: number | null; stderr: string }>((resolve) =>
    child.on("close", (code) => resolve({ code, stderr }))
  )
  return { pid: child.pid, kill: () => child.kill("SIGTERM"), done }
}

/** The `code` of the JSON error on the last line of `stderr`, or the whole text when there is none. */
const errorCode = (stderr: string): string => {
  const last = stderr.trim().split("\n").at(-1) ?? ""
  try {
    const parsed: unknown = JSON.parse(last)
    if (typeof parsed === "object" && parsed !== null && "error" in parsed) {
      const error: unknown = parsed.error
      if (typeof error === "object" && error !== null && "code" in error && typeof error.code === "string")
        return error.code
    }
  } catch {
    // not JSON: reported whole below
  }
  return stderr
}

describe("trail supervise — two at once", () => {
  it(`exactly one of two supervisors started together holds the root (${ROUNDS} rounds)`, async () => {
    const root = gitRepo({ "pkg/index.ts": "export {}\n" })
    fs.writeFileSync(path.join(root, ".trail.toml"), '[worker]\nsubstrate = "process"\n')
    expect(trail(["init"], { cwd: root }).code).toBe(0)
    for (let round = 0; round < ROUNDS; round++) {
      const pair = [supervise(root), supervise(root)] as const
      // The loser ends by itself; the winner runs until it is stopped.
      // Were both to take the lock, neither would end by itself: give up after 15 s.
      let timer: NodeJS.Timeout | undefined
      const first = await Promise.race([
        ...pair.map((run, index) => run.done.then((result) => ({ index, result }))),
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => {
            for (const run of pair) run.kill()
            reject(new Error(`round ${round}: both supervisors still run after 15 s`))
          }, 15_000)
        })
      ]).finally(() => clearTimeout(timer))
      const winner = pair[1 - first.index]
      expect(first.result.code, `round ${round}: ${first.result.stderr}`).toBe(1)
      expect(errorCode(first.result.stderr), `round ${round}`).toBe("supervisor-running")
      expect(first.result.stderr).toContain(`pid ${winner?.pid}`)
      winner?.kill()
      const ended = await winner?.done
      expect(ended?.code, `round ${round}: ${ended?.stderr}`).toBe(130)
      expect(ended?.stderr).toContain("supervising")
    }
  }, 60_000)
})
