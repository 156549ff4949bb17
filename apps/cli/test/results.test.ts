/**
 * What the workers found, for people: `trail results`, the found/agent columns of `trail list`,
 * `worker show --pretty`, the fleet's closing summary, inbox bullets and the untruncated log —
 * the real `trail` binary over a real git repository, workers as plain processes.
 */
import { spawn } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { describe, expect, it } from "vitest"
import { gitRepo, trail, trailAsync, waitFor } from "./helpers.js"

interface Result {
  readonly path: string
  readonly found: number | null
  readonly outcome: string | null
  readonly summary: string | null
  readonly evidence: ReadonlyArray<string>
  readonly recommendations: ReadonlyArray<string>
  readonly worker: string | null
  readonly agent: string
  readonly visited_at: number
}

/** A repository whose folders a/ b/ c/ d/ hold 2, 0, 3 and 1 markers; workers run `agent.sh`. */
const repoWithAgent = () => {
  const root = gitRepo({
    "a/x.ts": "// TODO one\n// FIXME two\n",
    "b/x.ts": "export {}\n",
    "c/x.ts": "// TODO 1\n// TODO 2\n// TODO 3\n",
    "d/x.ts": "// TODO only\n"
  })
  fs.mkdirSync(path.join(root, ".trail"))
  // A worker that reports its folder's markers, with evidence and a recommendation per marker.
  fs.writeFileSync(
    path.join(root, ".trail", "agent.sh"),
    `set -eu
cd "$TRAIL_ROOT"
n=$(grep -c -e TODO -e FIXME "$TRAIL_PATH/x.ts" || true)
set -- --outcome "$n marker(s) in $TRAIL_PATH" --summary "Read $TRAIL_PATH/x.ts line by line; ${"$"}{n} marker(s) need an owner." --evidence "$TRAIL_PATH/x.ts: $n marker(s)" --found "$n"
if [ "$n" -gt 0 ]; then set -- "$@" --recommend "turn the markers of $TRAIL_PATH into issues"; fi
trail worker done "$@" >/dev/null
`
  )
  fs.writeFileSync(
    path.join(root, ".trail.toml"),
    `[worker]\ncommand = ["sh", "${path.join(root, ".trail", "agent.sh")}"]\nsubstrate = "process"\nexit_grace_secs = 1\n`
  )
  const run = (args: ReadonlyArray<string>) => trail(args, { cwd: root })
  expect(run(["init"]).code).toBe(0)
  // The test's own .trail.toml: its worker.command runs once trusted.
  expect(run(["kinds", "trust", "worker.command"]).code).toBe(0)
  return { root, run }
}

describe("trail results", () => {
  it("after a fleet run: the folders with findings or a result, most found first, with the worker's evidence and recommendations", async () => {
    const { root, run } = repoWithAgent()
    const fleet = await trailAsync(["supervise", "--task", "audit", "--workers", "2", "--prompt", "audit {path}"], {
      cwd: root
    })
    expect(fleet.code, fleet.stderr).toBe(0)
    // The closing summary is part of the one JSON value: the sweep and its top findings.
    const summary = JSON.parse(fleet.stdout) as { sweep: number; top_findings: Array<{ path: string; found: number }> }
    expect(summary.sweep).toBe(1)
    expect(summary.top_findings.map((f) => [f.path, f.found])).toEqual([
      ["c", 3],
      ["a", 2],
      ["d", 1]
    ])

    const results = run(["results", "--task", "audit"]).json() as Array<Result>
    expect(results.map((r) => [r.path, r.found])).toEqual([
      ["c", 3],
      ["a", 2],
      ["d", 1],
      ["b", 0]
    ])
    const c = results[0]!
    expect(c.outcome).toBe("3 marker(s) in c")
    expect(c.summary).toBe("Read c/x.ts line by line; 3 marker(s) need an owner.")
    expect(c.evidence).toEqual(["c/x.ts: 3 marker(s)"])
    expect(c.recommendations).toEqual(["turn the markers of c into issues"])
    expect(c.worker).toMatch(/^w\d+$/)
    expect(c.agent).toBe(c.worker)
    expect(results[3]!.recommendations).toEqual([])
    // Each folder's worker is the one that covered it.
    const workers = run(["workers"]).json() as Array<{ id: string; path: string }>
    for (const r of results) expect(workers.find((w) => w.id === r.worker)?.path).toBe(r.path)

    const pretty = run(["results", "--task", "audit", "--pretty"]).stdout
    expect(pretty).toContain("audit · sweep 1 · 4 folder(s)")
    expect(pretty.indexOf("c  found 3")).toBeLessThan(pretty.indexOf("a  found 2"))
    expect(pretty).toContain("Read c/x.ts line by line; 3 marker(s) need an owner.")
    expect(pretty).toContain("- turn the markers of c into issues")
    expect(pretty).toContain("- c/x.ts: 3 marker(s)")

    // list: who covered each folder and what they found.
    const list = run(["list", "--task", "audit"]).json() as Array<{ path: string; found: number; agent: string }>
    expect(Object.fromEntries(list.filter((i) => i.path !== ".").map((i) => [i.path, i.found]))).toEqual({
      a: 2,
      b: 0,
      c: 3,
      d: 1
    })
    expect(list.find((i) => i.path === "c")?.agent).toBe(c.worker)
    const table = run(["list", "--task", "audit", "--pretty"]).stdout
    expect(table.split("\n")[0]).toMatch(/PATH\s+STATUS\s+SCORE\s+FOUND\s+AGENT/)
    expect(table).toMatch(new RegExp(`\\nc\\s+done\\s+\\S+\\s+3\\s+${c.worker}\\s`))

    // worker show --pretty: the result, its evidence and recommendations.
    const show = run(["worker", "show", c.worker!, "--pretty"]).stdout
    expect(show).toContain("3 marker(s) in c")
    expect(show).toMatch(/evidence\n {2}- c\/x\.ts: 3 marker\(s\)/)
    expect(show).toMatch(/recommendations\n {2}- turn the markers of c into issues/)

    // Inbox: each folder with findings is a ready card led by what was found.
    const inbox = await waitFor(() => {
      const items = run(["inbox"]).json() as Array<{ kind: string; headline: string; bullets: Array<string> }>
      const ready = items.filter((i) => i.kind === "ready")
      return ready.length === 3 ? ready : undefined
    }, "three ready cards")
    const card = inbox.find((i) => i.headline.endsWith("3 marker(s) in c"))
    expect(card?.bullets).toEqual(["found 3 · 1 evidence item(s)", "turn the markers of c into issues"])
  }, 120_000)

  it("after an agent loop: only folders with findings, no worker; --sweep picks an older sweep; errors are JSON", () => {
    const { run } = repoWithAgent()
    const claim = (agent: string) => (run(["next", "--task", "t", "--agent", agent]).json() as { path: string }).path
    const first = claim("a1")
    expect(run(["done", "--task", "t", "--path", first, "--agent", "a1", "--found", "4"]).code).toBe(0)
    const second = claim("a2")
    expect(run(["done", "--task", "t", "--path", second, "--agent", "a2", "--clean"]).code).toBe(0)
    const results = run(["results", "--task", "t"]).json() as Array<Result>
    expect(results).toHaveLength(1)
    expect(results[0]).toMatchObject({ path: first, found: 4, agent: "a1", worker: null, outcome: null, evidence: [] })
    expect(run(["results", "--task", "t", "--sweep", "2"]).json()).toEqual([])
    expect(run(["results", "--task", "t", "--sweep", "1"]).json()).toEqual(results)
    const unknown = run(["results", "--task", "nope"])
    expect(unknown.code).toBe(1)
    expect(unknown.error().code).toBe("task-not-found")
    const zero = run(["results", "--task", "t", "--sweep", "0"])
    expect(zero.code).toBe(2)
    expect(zero.error()).toEqual({ code: "usage", message: "--sweep must be 1 or more, got 0" })
  }, 60_000)

  it("trail log keeps every event's data whole in JSON", () => {
    const { run } = repoWithAgent()
    const long = `a long task text ${"x".repeat(300)} end`
    const spawned = run(["spawn", long])
    expect(spawned.code, spawned.stderr).toBe(0)
    const id = (spawned.json() as { id: string }).id
    const log = run(["log", "--worker", id]).json() as Array<{
      events: Array<{ type: string; data: { text?: string } }>
    }>
    expect(log[0]!.events.find((e) => e.type === "worker.spawned")?.data.text).toBe(long)
  }, 30_000)
})

describe("npm run demo (scripts/fleet.sh)", () => {
  it("on a terminal ends with the fleet's summary table (done/skipped/failed, top findings) and points at trail results", async () => {
    const root = gitRepo({
      "a/x.ts": "// TODO one\n// FIXME two\n",
      "b/x.ts": "export {}\n",
      "c/x.ts": "// TODO 1\n"
    })
    // Plain processes, so the demo leaves no tmux server behind.
    fs.writeFileSync(path.join(root, ".trail.toml"), `[worker]\nsubstrate = "process"\nexit_grace_secs = 1\n`)
    const script = path.resolve(import.meta.dirname, "..", "..", "..", "scripts", "fleet.sh")
    // `script` gives the demo a terminal, as `npm run demo` has.
    const result = await new Promise<{ code: number | null; out: string }>((resolve) => {
      const child = spawn("script", ["-qec", `bash ${JSON.stringify(script)} ${JSON.stringify(root)} 2`, "/dev/null"], {
        env: { ...process.env, TRAIL_ROOT: "", SCRIPTED_AGENT_DELAY: "0.1", COLUMNS: "100", NO_COLOR: "1" }
      })
      let out = ""
      child.stdout.on("data", (d) => (out += d))
      child.on("close", (code) => resolve({ code, out }))
    })
    const out = result.out.replace(/\r/g, "")
    expect(result.code, out).toBe(0)
    expect(out).toContain("fleet · sweep 1 complete")
    expect(out).toMatch(/\d+ done · 0 skipped · 0 failed/)
    expect(out).toMatch(/FOUND\s+PATH\s+WORKER\s+SUMMARY *\n2\s+a\s+w\d+\s+Scanned/)
    expect(out.indexOf("\n2 ")).toBeLessThan(out.indexOf("\n1 "))
    expect(out).toContain("every result: trail results --task fleet-demo --pretty")
    // It ends with a checkpoint of the sweep: its header names the workers' outcomes and the next step.
    expect(out).toMatch(/# Checkpoint cp-\d{8}-\d{6}-[0-9a-f]{4}: Fleet demo: fleet-demo swept/)
    expect(out).toMatch(/## Workers\n\n- w\d finished/)
    expect(out).toContain("continue last")
    expect(out.trimEnd().split("\n").at(-2)).toContain("results --task fleet-demo --pretty")
  }, 120_000)
})
