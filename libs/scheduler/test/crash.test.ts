import * as NodeContext from "@effect/platform-node/NodeContext"
import * as Path from "@effect/platform/Path"
import { TaskName } from "@trail/domain"
import Sqlite from "better-sqlite3"
import { Context, Effect, Layer } from "effect"
import { spawn, type ChildProcess } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { afterAll, describe, expect, it } from "vitest"
import * as Project from "../src/Project.js"
import * as Scheduler from "../src/Scheduler.js"
import { configOf, syntheticFolders } from "./helpers.js"

const LOOP = path.join(import.meta.dirname, "fixtures", "loop.ts")
const TASK = "crash"
const FOLDERS = 500

const roots: Array<string> = []
afterAll(() => {
  for (const root of roots) fs.rmSync(root, { recursive: true, force: true })
})

/** A root whose database holds FOLDERS registered folders and an open sweep of TASK. */
const prepareRoot = async () => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), "trail-crash-"))
  roots.push(root)
  fs.mkdirSync(path.join(root, ".trail"))
  await Effect.gen(function* () {
    const project = Project.projectAt(yield* Path.Path, root)
    const ctx = yield* Layer.build(Scheduler.layerFor({ project, config: configOf() }))
    const scheduler = Context.get(ctx, Scheduler.Scheduler)
    for (const f of syntheticFolders(FOLDERS)) {
      fs.mkdirSync(path.join(root, f.path), { recursive: true })
      fs.writeFileSync(path.join(root, f.path, "a.ts"), "x")
    }
    yield* scheduler.scan()
    yield* scheduler.newSweep({ task: TaskName.make(TASK) })
  }).pipe(Effect.scoped, Effect.provide(NodeContext.layer), Effect.runPromise)
  return root
}

interface Proc {
  readonly child: ChildProcess
  readonly lines: Array<string>
  readonly exited: Promise<number | null>
}

const start = (
  root: string,
  agent: string,
  ttlSecs: number,
  mode: "agent" | "gc",
  workMs = 0,
  barrier?: string
): Proc => {
  const child = spawn(
    process.execPath,
    ["--import", "tsx", LOOP, root, TASK, agent, String(ttlSecs), mode, String(workMs)],
    {
      stdio: ["ignore", "pipe", "inherit"],
      env: barrier === undefined ? process.env : { ...process.env, BARRIER: barrier }
    }
  )
  const lines: Array<string> = []
  let buffer = ""
  child.stdout!.on("data", (chunk: Buffer) => {
    buffer += chunk.toString()
    const parts = buffer.split("\n")
    buffer = parts.pop() ?? ""
    lines.push(...parts)
  })
  const exited = new Promise<number | null>((resolve) => child.on("close", (code) => resolve(code)))
  return { child, lines, exited }
}

/** Facts about the database after the run, read with a plain connection. */
const inspect = (root: string) => {
  const db = new Sqlite(path.join(root, ".trail", "state.db"), { readonly: true })
  try {
    const integrity = db.prepare("PRAGMA integrity_check").pluck().all()
    const visitsPerPath = db.prepare("SELECT path, count(*) AS n FROM visits GROUP BY path").all() as Array<{
      path: string
      n: number
    }>
    const statuses = db.prepare("SELECT status, count(*) AS n FROM work_items GROUP BY status").all() as Array<{
      status: string
      n: number
    }>
    const sweep = db.prepare("SELECT status, total, done, skipped, leased FROM sweeps").get() as Record<string, unknown>
    return { integrity, visitsPerPath, statuses, sweep }
  } finally {
    db.close()
  }
}

const reconcileDrift = (root: string) =>
  Effect.gen(function* () {
    const project = Project.projectAt(yield* Path.Path, root)
    const ctx = yield* Layer.build(Scheduler.layerFor({ project, config: configOf() }))
    return yield* Context.get(ctx, Scheduler.Scheduler).gc({ reconcile: true })
  }).pipe(Effect.scoped, Effect.provide(NodeContext.layer), Effect.runPromise)

describe("crash safety and concurrency", () => {
  it(
    "8 agent processes and a gc process on one file: every folder once, no error surfaced",
    { timeout: 120_000 },
    async () => {
      const root = await prepareRoot()
      // All nine start their loops together (a barrier file), or one fast starter drains the sweep alone.
      const go = path.join(root, "go")
      const agents = Array.from({ length: 8 }, (_, i) => start(root, `a${i}`, 600, "agent", 0, go))
      const gc = start(root, "gc", 600, "gc", 0, go)
      while (![...agents, gc].every((p) => p.lines.includes("ready"))) await new Promise((r) => setTimeout(r, 20))
      fs.writeFileSync(go, "")
      const codes = await Promise.all([...agents, gc].map((p) => p.exited))
      expect(codes.every((c) => c === 0)).toBe(true)
      const all = [...agents, gc].flatMap((p) => p.lines)
      expect(all.filter((l) => l.startsWith("error"))).toEqual([])
      expect(all.filter((l) => l === "finished")).toHaveLength(9)
      const claimed = all.filter((l) => l.startsWith("claimed ")).map((l) => l.slice(8))
      expect(claimed).toHaveLength(FOLDERS)
      expect(new Set(claimed).size).toBe(FOLDERS)
      expect(agents.filter((p) => p.lines.some((l) => l.startsWith("claimed"))).length).toBeGreaterThan(1)
      const facts = inspect(root)
      expect(facts.integrity).toEqual(["ok"])
      expect(facts.visitsPerPath).toHaveLength(FOLDERS)
      expect(facts.visitsPerPath.every((v) => v.n === 1)).toBe(true)
      expect(facts.sweep).toMatchObject({ status: "complete", total: FOLDERS, done: FOLDERS, leased: 0 })
      expect(await reconcileDrift(root)).toMatchObject({ counter_drift: 0, reconciled_sweeps: 0 })
    }
  )

  it(
    "SIGKILL 30 times at random: after the leases expire the sweep completes, nothing lost or done twice",
    { timeout: 180_000 },
    async () => {
      const root = await prepareRoot()
      const ttl = 1
      let next = 0
      const live: Array<Proc> = []
      const finished: Array<Proc> = []
      const spawnAgent = () => {
        // Each folder takes a little "work", so kills land while leases are held.
        const p = start(root, `k${next++}`, ttl, "agent", 40)
        live.push(p)
        void p.exited.then(() => {
          const i = live.indexOf(p)
          if (i >= 0) live.splice(i, 1)
          finished.push(p)
        })
      }
      for (let i = 0; i < 6; i++) spawnAgent()
      let kills = 0
      while (kills < 30) {
        await new Promise((r) => setTimeout(r, 60 + Math.floor(Math.random() * 120)))
        // Kill only processes that have started working, so each kill can interrupt a lease.
        const candidates = live.filter((p) => p.lines.length > 0)
        if (candidates.length === 0) {
          if (live.length === 0) break
          continue
        }
        const victim = candidates[Math.floor(Math.random() * candidates.length)]!
        victim.child.kill("SIGKILL")
        await victim.exited
        kills++
        spawnAgent()
      }
      expect(kills).toBe(30)
      while (live.length > 0) await Promise.all(live.map((p) => p.exited))
      const all = finished.flatMap((p) => p.lines)
      expect(all.filter((l) => l.startsWith("error"))).toEqual([])
      // The kills interrupted leases: those folders were handed out again after their lease expired.
      const claimed = all.filter((l) => l.startsWith("claimed ")).map((l) => l.slice(8))
      expect(claimed.length).toBeGreaterThan(new Set(claimed).size)
      expect(new Set(claimed).size).toBe(FOLDERS)
      const facts = inspect(root)
      expect(facts.integrity).toEqual(["ok"])
      // No folder lost: all done. None done twice: one visit each.
      expect(facts.sweep).toMatchObject({ status: "complete", total: FOLDERS, done: FOLDERS, leased: 0 })
      expect(facts.statuses).toEqual([{ status: "done", n: FOLDERS }])
      expect(facts.visitsPerPath).toHaveLength(FOLDERS)
      expect(facts.visitsPerPath.every((v) => v.n === 1)).toBe(true)
      expect(await reconcileDrift(root)).toMatchObject({ counter_drift: 0 })
    }
  )
})
