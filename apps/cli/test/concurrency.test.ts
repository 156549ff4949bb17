import { spawn } from "node:child_process"
import * as path from "node:path"
import { describe, expect, it } from "vitest"
import { gitRepo, manyFolders, trail, TRAIL } from "./helpers.js"

const LOOP = path.join(import.meta.dirname, "fixtures", "agent-loop.mjs")

interface LoopResult {
  readonly agent: string
  readonly claimed: ReadonlyArray<string>
  readonly errors: ReadonlyArray<unknown>
}

const runLoop = (root: string, task: string, agent: string) =>
  new Promise<LoopResult>((resolve, reject) => {
    const child = spawn(process.execPath, [LOOP, TRAIL, task, agent], { cwd: root })
    let out = ""
    child.stdout.on("data", (d) => (out += d))
    child.on("error", reject)
    child.on("close", (code) =>
      code === 0 ? resolve(JSON.parse(out) as LoopResult) : reject(new Error(`loop ${agent} exited ${code}`))
    )
  })

describe("several agent processes on one database", () => {
  it(
    "6 OS processes drain 240 folders: each claimed exactly once, counters reconcile",
    { timeout: 240_000 },
    async () => {
      const folders = 240
      const root = gitRepo(manyFolders(folders))
      expect(trail(["init"], { cwd: root }).json()).toMatchObject({ folders })

      const results = await Promise.all(Array.from({ length: 6 }, (_, i) => runLoop(root, "race", `a${i}`)))

      for (const r of results) expect(r.errors).toEqual([])
      const claimed = results.flatMap((r) => r.claimed)
      expect(claimed).toHaveLength(folders)
      expect(new Set(claimed).size).toBe(folders)
      // Every loop got work: the claim is shared, not serialised onto one agent.
      expect(results.filter((r) => r.claimed.length > 0).length).toBeGreaterThan(1)

      const status = trail(["status", "--task", "race"], { cwd: root }).json()
      expect(status).toMatchObject({
        sweep_status: "complete",
        total: folders,
        done: folders,
        leased: 0,
        pending: 0,
        percent: 100
      })
      const gc = trail(["gc", "--reconcile"], { cwd: root }).json()
      expect(gc).toMatchObject({ reconciled_sweeps: 0, counter_drift: 0 })
      const items = trail(["list", "--task", "race"], { cwd: root }).json() as Array<{ status: string }>
      expect(items.every((i) => i.status === "done")).toBe(true)
    }
  )
})
