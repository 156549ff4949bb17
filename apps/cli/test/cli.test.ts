import { spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { describe, expect, it } from "vitest"
import { gitRepo, trail, TRAIL } from "./helpers.js"

const repo = () =>
  gitRepo({
    "README.md": "# demo\n",
    "src/api/handler.ts": "export {}\n",
    "src/api/routes.ts": "export {}\n",
    "src/db/schema.ts": "export {}\n",
    "docs/guide.md": "guide\n",
    "node_modules/dep/index.js": "ignored\n",
    ".gitignore": "node_modules/\n"
  })

const FOLDERS = [".", "docs", "src/api", "src/db"]

const asNobody = (bin: string, args: Array<string>) =>
  spawnSync("setpriv", ["--reuid=65534", "--regid=65534", "--clear-groups", process.execPath, bin, ...args], {
    encoding: "utf8",
    cwd: "/"
  })

/**
 * A `trail` that the unprivileged user can start: the built one if its path is readable by
 * everyone, else a copy of the runtime (loader, bundle, better-sqlite3) in a world-readable dir.
 */
const trailRunnableByNobody = (): string => {
  if (asNobody(TRAIL, ["--version"]).status === 0) return TRAIL
  const dir = gitRepo({})
  const cli = path.resolve(path.dirname(TRAIL), "..")
  const modules = path.resolve(cli, "..", "..", "node_modules")
  fs.cpSync(path.join(cli, "bin"), path.join(dir, "bin"), { recursive: true })
  fs.cpSync(path.join(cli, "dist"), path.join(dir, "dist"), { recursive: true })
  // (better-sqlite3's JavaScript is in the bundle; its addon is found through node_modules.)
  fs.cpSync(path.join(modules, "better-sqlite3"), path.join(dir, "node_modules", "better-sqlite3"), { recursive: true })
  fs.chmodSync(dir, 0o755)
  const copy = path.join(dir, "bin", "trail.cjs")
  expect(asNobody(copy, ["--version"]).status).toBe(0)
  return copy
}

describe("trail init", () => {
  it("registers folders, writes .trail/.gitignore and the example config, and rescans", () => {
    const root = repo()
    const first = trail(["init"], { cwd: root })
    expect(first.code).toBe(0)
    expect(first.json()).toEqual({ folders: 4, excluded: 4, wrote_example_config: true, unreadable: [] })
    expect(fs.readFileSync(path.join(root, ".trail", ".gitignore"), "utf8")).toContain("!kinds/")
    expect(fs.existsSync(path.join(root, ".trail.toml.example"))).toBe(true)
    expect(fs.existsSync(path.join(root, ".trail", "state.db"))).toBe(true)

    fs.mkdirSync(path.join(root, "src", "new"))
    fs.writeFileSync(path.join(root, "src", "new", "x.ts"), "x")
    fs.copyFileSync(path.join(root, ".trail.toml.example"), path.join(root, ".trail.toml"))
    const again = trail(["init"], { cwd: root })
    expect(again.json()).toEqual({ folders: 5, excluded: 4, wrote_example_config: false, unreadable: [] })
  })

  it('measures bytes only with static_signal = "bytes": after switching to it, init weighs folders by size', () => {
    const root = gitRepo({
      "big/a.ts": "x".repeat(5000),
      "many/a.ts": "x",
      "many/b.ts": "x",
      "many/c.ts": "x"
    })
    expect(trail(["init"], { cwd: root }).code).toBe(0)
    expect(trail(["next", "--task", "by-count"], { cwd: root }).json()).toMatchObject({ path: "many" })
    fs.writeFileSync(path.join(root, ".trail.toml"), '[strategy]\nstatic_signal = "bytes"\n')
    expect(trail(["init"], { cwd: root }).code).toBe(0)
    // Never visited (recency 1) and the largest (weight 1): 0.6 + 0.4. Unmeasured, every weight is 0.
    expect(trail(["next", "--task", "by-size"], { cwd: root }).json()).toMatchObject({
      path: "big",
      score: expect.closeTo(1, 2)
    })
  })

  it("--pretty works before the command as well as after it", () => {
    const root = repo()
    trail(["init"], { cwd: root })
    const before = trail(["--pretty", "done", "--task", "nope", "--path", "docs"], { cwd: root })
    expect(before.code).toBe(1) // errors stay JSON on stderr either way
    expect(before.error().code).toBe("task-not-found")
    trail(["next", "--task", "t"], { cwd: root })
    const a = trail(["--pretty", "status", "--task", "t"], { cwd: root })
    const b = trail(["status", "--task", "t", "--pretty"], { cwd: root })
    expect(a.code).toBe(0)
    expect(a.stdout).toBe(b.stdout)
    expect(a.stdout).toContain("sweep 1 (active)")
    expect(() => JSON.parse(a.stdout)).toThrow()
  })

  it("--pretty renders the same data for a person", () => {
    const root = repo()
    const out = trail(["init", "--pretty"], { cwd: root })
    expect(out.code).toBe(0)
    expect(out.stdout).toMatch(/folders\s+4/)
  })
})

describe("the coverage loop", () => {
  it("next / done / skip / release / status / list / sweep, with their shapes and exit codes", () => {
    const root = repo()
    trail(["init"], { cwd: root })

    const next = trail(["next", "--task", "refine", "--agent", "a1"], { cwd: root })
    expect(next.code).toBe(0)
    const claimed = next.json() as Record<string, unknown>
    expect(Object.keys(claimed)).toEqual(["status", "task", "sweep", "path", "score", "lease_expires_at", "remaining"])
    // remaining: pending folders not handed out yet, this one excluded (the Rust trail's value).
    expect(claimed).toMatchObject({ status: "ok", task: "refine", sweep: 1, remaining: 3 })
    expect(FOLDERS).toContain(claimed["path"])
    expect(typeof claimed["score"]).toBe("number")
    expect(claimed["lease_expires_at"]).toBeGreaterThan(Date.now() + 800_000)

    const status = trail(["status", "--task", "refine"], { cwd: root })
    expect(status.json()).toEqual({
      task: "refine",
      sweep: 1,
      sweep_status: "active",
      total: 4,
      done: 0,
      leased: 1,
      pending: 3,
      skipped: 0,
      percent: 0
    })

    const list = trail(["list", "--task", "refine"], { cwd: root })
    const items = list.json() as Array<Record<string, unknown>>
    expect(items).toHaveLength(4)
    expect(Object.keys(items[0]!)).toEqual([
      "path",
      "status",
      "score",
      "lease_owner",
      "lease_expires_at",
      "visited_at",
      "found",
      "agent"
    ])
    const scores = items.map((i) => i["score"] as number)
    expect([...scores].sort((a, b) => b - a)).toEqual(scores)
    expect(trail(["list", "--task", "refine", "--state", "leased"], { cwd: root }).json()).toEqual([
      expect.objectContaining({ path: claimed["path"], status: "leased", lease_owner: "a1" })
    ])

    const released = trail(["release", "--task", "refine", "--path", String(claimed["path"]), "--agent", "a1"], {
      cwd: root
    })
    expect(released.code).toBe(0)
    expect(released.json()).toEqual({
      status: "released",
      task: "refine",
      sweep: 1,
      path: claimed["path"],
      remaining: 4
    })

    const seen: Array<string> = []
    for (let i = 0; i < 4; i++) {
      const n = trail(["next", "--task", "refine", "--agent", "a1"], { cwd: root })
      expect(n.code).toBe(0)
      const p = String((n.json() as Record<string, unknown>)["path"])
      seen.push(p)
      const verb = i === 3 ? "skip" : "done"
      const extra = i === 3 ? ["--reason", "generated code"] : i === 0 ? ["--found", "2"] : ["--clean"]
      const d = trail([verb, "--task", "refine", "--path", `./${p}/`, "--agent", "a1", ...extra], { cwd: root })
      expect(d.code).toBe(0)
      expect(d.json()).toEqual({
        status: verb === "skip" ? "skipped" : "done",
        task: "refine",
        sweep: 1,
        path: p,
        remaining: 3 - i,
        sweep_complete: i === 3
      })
    }
    expect([...seen].sort()).toEqual(FOLDERS)

    const repeat = trail(["done", "--task", "refine", "--path", seen[0]!, "--agent", "a1"], { cwd: root })
    expect(repeat.code).toBe(0)
    expect(repeat.json()).toMatchObject({ status: "done", remaining: 0, sweep_complete: true })
    // Another agent's report on a folder a1 finished is refused, not dropped without a word.
    const other = trail(["done", "--task", "refine", "--path", seen[0]!, "--found", "3"], { cwd: root })
    expect(other.code).toBe(1)
    expect(other.error()).toMatchObject({ code: "not-lease-holder" })
    expect(other.error().message).toContain('"a1"')

    // covered and percent count done folders only (the skipped one is not covered).
    const complete = trail(["next", "--task", "refine"], { cwd: root })
    expect(complete.code).toBe(3)
    expect(complete.json()).toEqual({ status: "sweep-complete", task: "refine", sweep: 1, covered: 3, total: 4 })
    expect(trail(["status", "--task", "refine"], { cwd: root }).json()).toMatchObject({ percent: 75 })

    const shown = trail(["sweep", "show", "--task", "refine"], { cwd: root })
    expect(shown.json()).toMatchObject({
      task: "refine",
      sweep: 1,
      status: "complete",
      total: 4,
      done: 3,
      skipped: 1,
      pending: 0,
      sweep_status: "complete",
      started_at: expect.any(Number),
      completed_at: expect.any(Number)
    })

    const opened = trail(["sweep", "new", "--task", "refine", "--strategy", "round-robin"], { cwd: root })
    expect(opened.code).toBe(0)
    expect(opened.json()).toMatchObject({ sweep: 2, status: "active", strategy: "round-robin", total: 4, pending: 4 })
    const active = trail(["sweep", "new", "--task", "refine"], { cwd: root })
    expect(active.code).toBe(1)
    expect(active.error().code).toBe("sweep-active")

    const reset = trail(["reset", "--task", "refine", "--all"], { cwd: root })
    expect(reset.json()).toEqual({ task: "refine", cleared_sweeps: 2, cleared_history: true, cleared_visits: 4 })
    const noSweep = trail(["done", "--task", "refine", "--path", "docs"], { cwd: root })
    expect(noSweep.code).toBe(1)
    expect(noSweep.error().code).toBe("no-sweep")

    const gc = trail(["gc", "--reconcile", "--vacuum"], { cwd: root })
    expect(gc.json()).toEqual({
      reclaimed_leases: 0,
      pruned_work_items: 0,
      reconciled_sweeps: 0,
      counter_drift: 0,
      vacuumed: true,
      purged_checkpoints: [],
      unremoved_checkpoint_files: []
    })
  })

  it("exit 4 when everything is leased elsewhere, and --auto-sweep opens the next sweep", () => {
    const root = gitRepo({ "only/file.ts": "x" })
    trail(["init"], { cwd: root })
    expect(trail(["next", "--task", "t", "--agent", "a"], { cwd: root }).code).toBe(0)
    const none = trail(["next", "--task", "t", "--agent", "b"], { cwd: root })
    expect(none.code).toBe(4)
    expect(none.json()).toEqual({ status: "none-available", task: "t", sweep: 1, leased_outstanding: 1 })
    trail(["done", "--task", "t", "--path", "only", "--agent", "a"], { cwd: root })
    const auto = trail(["next", "--task", "t", "--auto-sweep"], { cwd: root })
    expect(auto.code).toBe(0)
    expect(auto.json()).toMatchObject({ status: "ok", sweep: 2, path: "only" })
  })

  it("list --limit N prints the N best as the full listing orders them (with --state, the N best in it)", () => {
    const root = gitRepo({ "a/x.ts": "x", "b/x.ts": "x", "c/x.ts": "x", "d/x.ts": "x" })
    trail(["init"], { cwd: root })
    trail(["next", "--task", "t"], { cwd: root })
    const items = trail(["list", "--task", "t"], { cwd: root }).json() as Array<Record<string, unknown>>
    expect(items).toHaveLength(4)
    expect(trail(["list", "--task", "t", "--limit", "2"], { cwd: root }).json()).toEqual(items.slice(0, 2))
    expect(trail(["list", "--task", "t", "--state", "pending", "--limit", "1"], { cwd: root }).json()).toEqual(
      items.filter((i) => i["status"] === "pending").slice(0, 1)
    )
    const table = trail(["list", "--task", "t", "--limit", "3", "--pretty"], { cwd: root }).stdout.split("\n")
    expect(table[0]).toMatch(/^PATH\s+STATUS\s+SCORE/)
    expect(table.filter((line) => line.trim() !== "")).toHaveLength(4)
  })

  it("gc prunes the items of finished sweeps beyond history.keep_sweeps; sweep show --sweep N says so", () => {
    const root = gitRepo({ "a/x.ts": "x", ".trail.toml": "[history]\nkeep_sweeps = 1\n" })
    trail(["init"], { cwd: root })
    for (let sweep = 1; sweep <= 3; sweep++) {
      expect(trail(["next", "--task", "t", "--auto-sweep"], { cwd: root }).json()).toMatchObject({ sweep, path: "a" })
      expect(trail(["done", "--task", "t", "--path", "a", "--found", "1"], { cwd: root }).code).toBe(0)
    }
    const gc = trail(["gc"], { cwd: root })
    expect(gc.code).toBe(0)
    expect(gc.json()).toMatchObject({ pruned_work_items: 2 })
    const first = trail(["sweep", "show", "--task", "t", "--sweep", "1"], { cwd: root })
    expect(first.json()).toMatchObject({
      sweep: 1,
      status: "complete",
      total: 1,
      done: 1,
      items_pruned_at: expect.any(Number)
    })
    expect(trail(["sweep", "show", "--task", "t", "--sweep", "1", "--pretty"], { cwd: root }).stdout).toContain(
      "pruned"
    )
    expect(trail(["sweep", "show", "--task", "t"], { cwd: root }).json()).toMatchObject({
      sweep: 3,
      items_pruned_at: null
    })
    expect(trail(["list", "--task", "t"], { cwd: root }).json()).toHaveLength(1)
    // The visits stay: results still read sweep 1.
    expect(trail(["results", "--task", "t", "--sweep", "1"], { cwd: root }).json()).toHaveLength(1)
    expect(trail(["gc"], { cwd: root }).json()).toMatchObject({ pruned_work_items: 0 })
    const missing = trail(["sweep", "show", "--task", "t", "--sweep", "9"], { cwd: root })
    expect(missing.code).toBe(1)
    expect(missing.error().code).toBe("no-sweep")
  })

  it("sweep-complete with a note when nothing is registered", () => {
    const root = gitRepo({ ".hidden/x": "x" })
    expect(trail(["init"], { cwd: root }).json()).toMatchObject({ folders: 0 })
    const next = trail(["next", "--task", "t"], { cwd: root })
    expect(next.code).toBe(3)
    expect(next.json()).toMatchObject({
      status: "sweep-complete",
      covered: 0,
      total: 0,
      note: expect.stringContaining("trail init")
    })
  })

  it("agent id defaults to $TRAIL_AGENT, then $TRAIL_WORKER_ID", () => {
    const root = gitRepo({ "a/x.ts": "x", "b/x.ts": "x" })
    trail(["init"], { cwd: root })
    trail(["next", "--task", "t"], { cwd: root, env: { TRAIL_AGENT: "loop-7" } })
    trail(["next", "--task", "t"], { cwd: root, env: { TRAIL_WORKER_ID: "w3" } })
    const owners = (trail(["list", "--task", "t"], { cwd: root }).json() as Array<Record<string, unknown>>).map(
      (i) => i["lease_owner"]
    )
    expect(owners.sort()).toEqual(["loop-7", "w3"])
  })
})

describe("parity with the Rust trail's answers", () => {
  it("status / list / sweep show / reset on a task with no sweep answer exit 0", () => {
    const root = repo()
    trail(["init"], { cwd: root })
    const status = trail(["status", "--task", "fresh"], { cwd: root })
    expect(status.code).toBe(0)
    expect(status.json()).toEqual({
      task: "fresh",
      sweep: 0,
      sweep_status: "none",
      total: 0,
      done: 0,
      leased: 0,
      pending: 0,
      skipped: 0,
      percent: 0
    })
    const list = trail(["list", "--task", "fresh"], { cwd: root })
    expect([list.code, list.json()]).toEqual([0, []])
    const shown = trail(["sweep", "show", "--task", "fresh"], { cwd: root })
    expect(shown.code).toBe(0)
    expect(shown.json()).toMatchObject({ task: "fresh", sweep: 0, sweep_status: "none", total: 0, pending: 0 })
    const reset = trail(["reset", "--task", "fresh"], { cwd: root })
    expect(reset.code).toBe(0)
    expect(reset.json()).toMatchObject({ task: "fresh", cleared_sweeps: 0, cleared_history: false })
    // After a reset the task exists without a sweep: the same answers.
    trail(["next", "--task", "t", "--agent", "a"], { cwd: root })
    trail(["reset", "--task", "t"], { cwd: root })
    expect(trail(["status", "--task", "t"], { cwd: root }).json()).toMatchObject({ sweep: 0, sweep_status: "none" })
    expect(trail(["list", "--task", "t"], { cwd: root }).json()).toEqual([])
    expect(trail(["sweep", "show", "--task", "t"], { cwd: root }).json()).toMatchObject({ sweep_status: "none" })
  })

  it("skip takes --found / --clean; --path with backslashes names the same folder", () => {
    const root = repo()
    trail(["init"], { cwd: root })
    const env = { TRAIL_AGENT: "a" }
    expect(trail(["next", "--task", "t"], { cwd: root, env }).code).toBe(0)
    const skipped = trail(["skip", "--task", "t", "--path", ".\\src\\api", "--found", "2", "--reason", "generated"], {
      cwd: root,
      env
    })
    expect(skipped.code).toBe(0)
    expect(skipped.json()).toMatchObject({ status: "skipped", path: "src/api" })
    const clean = trail(["skip", "--task", "t", "--path", "src\\db\\", "--clean"], { cwd: root, env })
    expect(clean.json()).toMatchObject({ status: "skipped", path: "src/db" })
    const done = trail(["done", "--task", "t", "--path", ".\\docs", "--clean"], { cwd: root, env })
    expect(done.json()).toMatchObject({ status: "done", path: "docs" })
  })

  it("remaining after one claim of 60 is 59; done and release agree; percent counts done only", () => {
    const files: Record<string, string> = {}
    for (let i = 0; i < 60; i++) files[`f${String(i).padStart(2, "0")}/x.ts`] = "x"
    const root = gitRepo(files)
    trail(["init"], { cwd: root })
    const first = trail(["next", "--task", "t", "--agent", "a"], { cwd: root }).json() as Record<string, unknown>
    expect(first["remaining"]).toBe(59)
    const second = trail(["next", "--task", "t", "--agent", "b"], { cwd: root }).json() as Record<string, unknown>
    expect(second["remaining"]).toBe(58)
    const done = trail(["done", "--task", "t", "--path", String(first["path"]), "--agent", "a", "--clean"], {
      cwd: root
    })
    expect(done.json()).toMatchObject({ remaining: 58 })
    const skip = trail(["skip", "--task", "t", "--path", "f59", "--agent", "c", "--clean"], { cwd: root })
    expect(skip.json()).toMatchObject({ status: "skipped", remaining: 57 })
    const released = trail(["release", "--task", "t", "--path", String(second["path"]), "--agent", "b"], { cwd: root })
    expect(released.json()).toMatchObject({ remaining: 58 })
    expect(trail(["status", "--task", "t"], { cwd: root }).json()).toMatchObject({ done: 1, skipped: 1, percent: 1.7 })
  })

  it("next --strategy is remembered for the task's next sweeps until another is given", () => {
    const root = gitRepo({ "a/x.ts": "x" })
    trail(["init"], { cwd: root })
    const first = trail(["next", "--task", "t", "--agent", "a", "--strategy", "random"], { cwd: root })
    expect(first.code).toBe(0)
    trail(["done", "--task", "t", "--path", "a", "--agent", "a"], { cwd: root })
    expect(trail(["next", "--task", "t", "--agent", "a", "--auto-sweep"], { cwd: root }).json()).toMatchObject({
      sweep: 2
    })
    expect(trail(["sweep", "show", "--task", "t"], { cwd: root }).json()).toMatchObject({
      sweep: 2,
      strategy: "random"
    })
    trail(["done", "--task", "t", "--path", "a", "--agent", "a"], { cwd: root })
    trail(["next", "--task", "t", "--agent", "a", "--auto-sweep", "--strategy", "round-robin"], { cwd: root })
    trail(["done", "--task", "t", "--path", "a", "--agent", "a"], { cwd: root })
    trail(["next", "--task", "t", "--agent", "a", "--auto-sweep"], { cwd: root })
    expect(trail(["sweep", "show", "--task", "t"], { cwd: root }).json()).toMatchObject({
      sweep: 4,
      strategy: "round-robin"
    })
  })

  it('hidden files do not make folders; include = ["**/*"] keeps the root', () => {
    const root = gitRepo({ ".editorconfig": "x", "cfg/.env": "x", "src/a.ts": "x" })
    expect(trail(["init"], { cwd: root }).json()).toMatchObject({ folders: 1 })
    expect(trail(["list", "--task", "t"], { cwd: root }).json()).toEqual([])
    trail(["next", "--task", "t", "--agent", "a"], { cwd: root })
    expect(
      (trail(["list", "--task", "t"], { cwd: root }).json() as Array<{ path: string }>).map((i) => i.path)
    ).toEqual(["src"])
    const withRoot = gitRepo({ "README.md": "x", "src/a.ts": "x" })
    fs.writeFileSync(path.join(withRoot, ".trail.toml"), '[scan]\ninclude = ["**/*"]\n')
    expect(trail(["init"], { cwd: withRoot }).json()).toMatchObject({ folders: 2 })
  })
})

describe("a non-holder never completes a leased folder", () => {
  it("z's done on y's lease is refused (not-lease-holder); y's findings are kept", () => {
    const root = gitRepo({ "a/x.ts": "x" })
    trail(["init"], { cwd: root })
    expect(trail(["next", "--task", "t", "--agent", "y"], { cwd: root }).json()).toMatchObject({ path: "a" })
    for (const verb of ["done", "skip"]) {
      const z = trail([verb, "--task", "t", "--path", "a", "--agent", "z", "--clean"], { cwd: root })
      expect(z.code).toBe(1)
      expect(z.stdout).toBe("")
      expect(z.error().code).toBe("not-lease-holder")
      expect(z.error().message).toContain('"y"')
    }
    const y = trail(["done", "--task", "t", "--path", "a", "--agent", "y", "--found", "7"], { cwd: root })
    expect(y.code).toBe(0)
    expect(y.json()).toMatchObject({ status: "done", sweep_complete: true })
  })
})

describe("only init creates a store", () => {
  it.each([
    ["deleted", (db: string) => fs.rmSync(db), "store-missing", "trail init"],
    ["emptied", (db: string) => fs.writeFileSync(db, ""), "store-corrupt", "emptied or truncated"]
  ])("a %s state.db fails every command (never reads as a complete sweep)", (_what, damage, code, says) => {
    const root = gitRepo({ "a/x.ts": "x" })
    trail(["init"], { cwd: root })
    const db = path.join(root, ".trail", "state.db")
    expect(fs.statSync(db).mode & 0o777).toBe(0o600)
    expect(fs.statSync(path.join(root, ".trail")).mode & 0o777).toBe(0o700)
    trail(["next", "--task", "t", "--agent", "a"], { cwd: root })
    for (const side of ["-wal", "-shm"]) if (fs.existsSync(db + side)) fs.rmSync(db + side)
    damage(db)
    const before = fs.existsSync(db) ? fs.statSync(db).size : -1
    for (const args of [
      ["next", "--task", "t"],
      ["status", "--task", "t"],
      ["done", "--task", "t", "--path", "a"],
      ["gc"]
    ]) {
      const out = trail(args, { cwd: root })
      expect(out.code).toBe(1)
      expect(out.stdout).toBe("")
      expect(out.error().code).toBe(code)
      expect(out.error().message).toContain(says)
    }
    expect(fs.existsSync(db) ? fs.statSync(db).size : -1).toBe(before)
    // trail init makes a new store.
    expect(trail(["init"], { cwd: root }).code).toBe(0)
    expect(trail(["next", "--task", "t", "--agent", "a"], { cwd: root }).code).toBe(0)
  })
})

describe("init names what it could not read", () => {
  it("an unreadable folder is listed in unreadable, not skipped without a word", () => {
    const root = gitRepo({ "open/a.ts": "x", "locked/b.ts": "x" })
    const asRoot = process.getuid?.() === 0
    // root reads any folder: run init as an unprivileged user that owns the tree.
    if (asRoot) {
      const own = (p: string) => {
        fs.chownSync(p, 65534, 65534)
        if (fs.statSync(p).isDirectory()) for (const f of fs.readdirSync(p)) own(path.join(p, f))
      }
      own(root)
    }
    fs.chmodSync(path.join(root, "locked"), 0o000)
    try {
      const bin = asRoot ? trailRunnableByNobody() : TRAIL
      const out = asRoot
        ? spawnSync("setpriv", ["--reuid=65534", "--regid=65534", "--clear-groups", process.execPath, bin, "init"], {
            cwd: root,
            encoding: "utf8"
          })
        : spawnSync(process.execPath, [bin, "init"], { cwd: root, encoding: "utf8" })
      expect(out.status).toBe(0)
      expect(JSON.parse(out.stdout)).toMatchObject({ folders: 1, unreadable: ["locked"] })
    } finally {
      fs.chmodSync(path.join(root, "locked"), 0o755)
    }
  })
})

describe("a .gitignore pattern cannot hang init", () => {
  it("a*a*a*a*a*a*a*a*a*a*a*a*c beside a 60-character folder name scans at once", () => {
    const name = "a".repeat(60)
    const root = gitRepo({
      ".gitignore": "a*a*a*a*a*a*a*a*a*a*a*a*c\n",
      [`${name}/x.ts`]: "x",
      [`${name}/${name}`]: "x"
    })
    const started = Date.now()
    const out = trail(["init"], { cwd: root })
    expect(out.code).toBe(0)
    expect(out.json()).toMatchObject({ folders: 1 })
    expect(Date.now() - started).toBeLessThan(20_000)
  })
})

describe("folder names", () => {
  it("spaces, quotes, shell characters and non-ASCII names round-trip through next and done", () => {
    const odd = ["my dir", 'say "hi"', "$(echo pwned)", "ünïcödé/ß", "tab\there"]
    const root = gitRepo(Object.fromEntries(odd.map((name) => [`${name}/file.txt`, "x"])))
    expect(trail(["init"], { cwd: root }).json()).toMatchObject({ folders: odd.length })
    const handed: Array<string> = []
    for (let i = 0; i < odd.length; i++) {
      const next = trail(["next", "--task", "odd"], { cwd: root })
      expect(next.code).toBe(0)
      const p = (next.json() as { path: string }).path
      handed.push(p)
      expect(trail(["done", "--task", "odd", "--path", p], { cwd: root }).code).toBe(0)
    }
    expect(handed.sort()).toEqual([...odd].sort())
    expect(fs.existsSync(path.join(root, "pwned"))).toBe(false)
    expect(trail(["next", "--task", "odd"], { cwd: root }).code).toBe(3)
  })
})

describe("the root", () => {
  it("is found from a subfolder, from --root and from $TRAIL_ROOT; outside any root is an error", () => {
    const root = repo()
    trail(["init"], { cwd: root })
    expect(trail(["next", "--task", "t"], { cwd: path.join(root, "src", "api") }).code).toBe(0)
    const other = gitRepo({})
    expect(trail(["--root", root, "status", "--task", "t"], { cwd: other }).json()).toMatchObject({ leased: 1 })
    expect(trail(["status", "--task", "t"], { cwd: other, env: { TRAIL_ROOT: root } }).json()).toMatchObject({
      leased: 1
    })
    const outside = trail(["status", "--task", "t"], { cwd: other })
    expect(outside.code).toBe(1)
    expect(outside.stdout).toBe("")
    expect(outside.error().code).toBe("root-not-found")
  })

  it("init on a --root that does not exist fails and creates nothing", () => {
    const base = gitRepo({})
    const typo = path.join(base, "no-such-dir")
    const out = trail(["--root", typo, "init"], { cwd: base })
    expect(out.code).toBe(1)
    expect(out.error().code).toBe("scan-failed")
    expect(fs.existsSync(typo)).toBe(false)
  })

  it("accepts an absolute --path inside the root and rejects one outside", () => {
    const root = repo()
    trail(["init"], { cwd: root })
    trail(["next", "--task", "t"], { cwd: root })
    expect(trail(["done", "--task", "t", "--path", path.join(root, "docs")], { cwd: root }).json()).toMatchObject({
      path: "docs"
    })
    const outside = trail(["done", "--task", "t", "--path", "/etc"], { cwd: root })
    expect(outside.code).toBe(1)
    expect(outside.error().code).toBe("path-outside-root")
  })
})

describe("bad input gets a clear JSON error and changes nothing", () => {
  const prepared = () => {
    const root = repo()
    trail(["init"], { cwd: root })
    trail(["next", "--task", "t", "--agent", "a1"], { cwd: root })
    const before = trail(["list", "--task", "t"], { cwd: root }).stdout
    return { root, unchanged: () => expect(trail(["list", "--task", "t"], { cwd: root }).stdout).toBe(before) }
  }

  it.each([
    [["next", "--task", ""], 2, "usage"],
    [["next", "--task", "  padded"], 2, "usage"],
    [["next"], 2, "usage"],
    [["next", "--task", "t", "--strategy", "fastest"], 2, "usage"],
    [["skip", "--task", "t", "--path", "docs", "--found", "1", "--clean"], 2, "usage"],
    [["done", "--task", "nope", "--path", "docs"], 1, "task-not-found"],
    [["done", "--task", "t", "--path", "docs", "--found", "-1"], 2, "usage"],
    [["done", "--task", "t", "--path", "docs", "--found", "1.5"], 2, "usage"],
    [["done", "--task", "t", "--path", "docs", "--found", "abc"], 2, "usage"],
    [["done", "--task", "t", "--path", "docs", "--found", "99999999999"], 2, "usage"],
    [["done", "--task", "t", "--path", "docs", "--found", "2", "--clean"], 2, "usage"],
    [["done", "--task", "t", "--path", "../outside"], 1, "path-outside-root"],
    [["done", "--task", "t", "--path", "src/../../x"], 1, "path-outside-root"],
    [["done", "--task", "t", "--path", "not/a/folder"], 1, "not-a-work-item"],
    [["done", "--task", "t", "--path", ""], 2, "usage"],
    [["skip", "--task", "t", "--path", "nowhere"], 1, "not-a-work-item"],
    [["release", "--task", "t", "--path", "docs", "--agent", "somebody-else"], 1, "lease-not-held"],
    [["list", "--task", "t", "--state", "lost"], 2, "usage"],
    [["list", "--task", "t", "--limit", "0"], 2, "usage"],
    [["list", "--task", "t", "--limit", "many"], 2, "usage"],
    [["frobnicate"], 2, "usage"],
    [["next", "--task", "t", "--bogus-flag"], 2, "usage"]
  ])("trail %j → exit %i (%s)", (args, code, errorCode) => {
    const { root, unchanged } = prepared()
    const out = trail(args, { cwd: root })
    expect(out.code).toBe(code)
    expect(out.stdout).toBe("")
    expect(out.error().code).toBe(errorCode)
    expect(out.error().message.length).toBeGreaterThan(5)
    unchanged()
  })

  it.each([
    ["[lease]\nttl_secs = 0\n", "lease.ttl_secs"],
    ["[strategy]\nalpha = 2\n", "strategy.alpha"],
    ['[strategy]\ndefault = "fastest"\n', "strategy.default"],
    ["[scan]\nmin_files = -3\n", "scan.min_files"],
    ["[history]\nkeep_sweeps = 0\n", "history.keep_sweeps"],
    ["[lease]\nttl = 30\n", "lease.ttl"],
    ["[lease\nttl_secs = 30\n", "line 1"]
  ])("a bad .trail.toml (%j) names %s, exit 1", (toml, mention) => {
    const { root, unchanged } = prepared()
    fs.writeFileSync(path.join(root, ".trail.toml"), toml)
    for (const args of [["next", "--task", "t"], ["init"]]) {
      const out = trail(args, { cwd: root })
      expect(out.code).toBe(1)
      expect(out.error().code).toBe("config-invalid")
      expect(out.error().message).toContain(mention)
    }
    fs.rmSync(path.join(root, ".trail.toml"))
    unchanged()
  })

  it("a corrupt state.db is reported and left as it was", () => {
    const root = repo()
    trail(["init"], { cwd: root })
    const db = path.join(root, ".trail", "state.db")
    for (const suffix of ["-wal", "-shm"]) fs.rmSync(db + suffix, { force: true })
    fs.writeFileSync(db, "garbage ".repeat(1000))
    const out = trail(["next", "--task", "t"], { cwd: root })
    expect(out.code).toBe(1)
    expect(out.error().code).toBe("store-corrupt")
    expect(out.error().message).toContain("state.db")
    expect(fs.readFileSync(db, "utf8")).toBe("garbage ".repeat(1000))
  })

  it("a read-only state.db is reported and left as it was", () => {
    const root = repo()
    trail(["init"], { cwd: root })
    trail(["next", "--task", "t"], { cwd: root })
    const db = path.join(root, ".trail", "state.db")
    const before = fs.readFileSync(db)
    // root ignores file modes: run trail as an unprivileged user there.
    const asRoot = process.getuid?.() === 0
    if (asRoot) {
      fs.chmodSync(root, 0o755)
      for (const dir of [root, path.join(root, ".trail")])
        for (const f of fs.readdirSync(dir)) fs.chmodSync(path.join(dir, f), 0o755)
    }
    fs.chmodSync(db, 0o444)
    fs.chmodSync(path.join(root, ".trail"), 0o555)
    try {
      const bin = asRoot ? trailRunnableByNobody() : TRAIL
      const run = (args: Array<string>) =>
        asRoot
          ? spawnSync("setpriv", ["--reuid=65534", "--regid=65534", "--clear-groups", process.execPath, bin, ...args], {
              cwd: root,
              encoding: "utf8"
            })
          : spawnSync(process.execPath, [bin, ...args], { cwd: root, encoding: "utf8" })
      for (const args of [
        ["next", "--task", "t"],
        ["done", "--task", "t", "--path", "docs"]
      ]) {
        const out = run(args)
        expect(out.status).toBe(1)
        expect(out.stdout).toBe("")
        const error = (JSON.parse(out.stderr) as { error: { code: string; message: string } }).error
        expect(error.code).toBe("store-readonly")
        expect(error.message).toContain("state.db")
      }
    } finally {
      fs.chmodSync(path.join(root, ".trail"), 0o755)
      fs.chmodSync(db, 0o644)
    }
    expect(fs.readFileSync(db)).toEqual(before)
  })

  it("sweep new and done before any sweep are errors", () => {
    const root = repo()
    trail(["init"], { cwd: root })
    trail(["sweep", "new", "--task", "t"], { cwd: root })
    trail(["reset", "--task", "t"], { cwd: root })
    const out = trail(["done", "--task", "t", "--path", "docs"], { cwd: root })
    expect(out.code).toBe(1)
    expect(out.error().code).toBe("no-sweep")
  })
})

describe("help, version and completions", () => {
  const commands = [
    [],
    ["init"],
    ["next"],
    ["done"],
    ["skip"],
    ["release"],
    ["status"],
    ["list"],
    ["sweep"],
    ["sweep", "new"],
    ["sweep", "show"],
    ["reset"],
    ["gc"],
    ["completions"]
  ]
  it.each(commands)("trail %s --help", (...args) => {
    const out = trail([...args, "--help"], { cwd: "/" })
    expect(out.code).toBe(0)
    expect(out.stdout).toContain("USAGE")
    expect(out.stdout).not.toContain("\u001b[")
  })

  it("--version prints the version", () => {
    const out = trail(["--version"], { cwd: "/" })
    expect(out.code).toBe(0)
    expect(out.stdout.trim()).toMatch(/^\d+\.\d+\.\d+/)
  })

  it.each(["bash", "zsh", "fish", "sh"])("completions %s prints a script naming the commands", (shell) => {
    const out = trail(["completions", shell], { cwd: "/" })
    expect(out.code).toBe(0)
    expect(out.stdout).toContain("trail")
    expect(out.stdout).toContain("next")
  })

  it("a closed stdout pipe does not crash trail", async () => {
    const { spawnSync } = await import("node:child_process")
    const { TRAIL } = await import("./helpers.js")
    const result = spawnSync(
      "bash",
      [
        "-c",
        `"${process.execPath}" "${TRAIL}" completions bash | head -c 1 >/dev/null; echo "status=\${PIPESTATUS[0]}"`
      ],
      {
        encoding: "utf8"
      }
    )
    expect(result.stdout.trim()).toBe("status=0")
    expect(result.stderr).toBe("")
  })
})
