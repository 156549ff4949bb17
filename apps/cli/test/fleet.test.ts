/**
 * The worker fleet end to end: the real `trail` binary, real tmux on a socket of its own per
 * test, real git repositories, and scripted agents (shell scripts calling the worker protocol).
 */
import { execFileSync, spawn, type ChildProcess } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import Sqlite from "better-sqlite3"
import { afterAll, describe, expect, it } from "vitest"
import { cleanEnv, CONFIG_HOME, gitRepo, TRAIL, trail, waitFor } from "./helpers.js"

const SCRIPTED_AGENT = path.resolve(import.meta.dirname, "..", "..", "..", "scripts", "scripted-agent.sh")

const sockets: Array<string> = []
afterAll(() => {
  for (const socket of sockets) {
    try {
      execFileSync("tmux", ["-L", socket, "kill-server"], { stdio: "ignore" })
    } catch {
      // no server left
    }
  }
})

interface Fleet {
  readonly root: string
  readonly socket: string
  readonly run: (args: ReadonlyArray<string>, env?: Record<string, string>) => ReturnType<typeof trail>
}

/** A temp git repository with `folders` folders, initialised, whose workers use `substrate`. */
const fleetRepo = (options: {
  readonly folders: number
  /** More files (path → content), e.g. in folders with hostile names. */
  readonly files?: Record<string, string>
  readonly substrate?: "tmux" | "process"
  readonly kinds?: Record<string, string>
  /** Run `trail kinds trust` after writing `kinds` (default true). */
  readonly trustKinds?: boolean
  readonly extraConfig?: string
  /** `worker.command` as TOML (default: the scripted agent). */
  readonly command?: string
  /** Share this tmux socket (default: one of its own). */
  readonly socket?: string
}): Fleet => {
  const files: Record<string, string> = {}
  for (let i = 0; i < options.folders; i++) files[`pkg${i}/index.ts`] = i % 3 === 0 ? "// TODO: check\n" : "export {}\n"
  const root = gitRepo({ ...files, ...options.files })
  const socket = options.socket ?? `trail-test-${process.pid}-${sockets.length}-${Math.floor(Math.random() * 1e6)}`
  sockets.push(socket)
  fs.writeFileSync(
    path.join(root, ".trail.toml"),
    `[worker]
command = ${options.command ?? `["sh", ${JSON.stringify(SCRIPTED_AGENT)}]`}
substrate = ${JSON.stringify(options.substrate ?? "tmux")}
tmux_socket = ${JSON.stringify(socket)}
exit_grace_secs = 2
${options.extraConfig ?? ""}
`
  )
  const run = (args: ReadonlyArray<string>, env?: Record<string, string>) =>
    trail(args, { cwd: root, env: { SCRIPTED_AGENT_DELAY: "0.2", ...env } })
  expect(run(["init"]).code).toBe(0)
  // The test's own .trail.toml: its worker.command runs once trusted.
  expect(run(["kinds", "trust", "worker.command"]).code).toBe(0)
  for (const [name, text] of Object.entries(options.kinds ?? {})) {
    fs.mkdirSync(path.join(root, ".trail", "kinds"), { recursive: true })
    fs.writeFileSync(path.join(root, ".trail", "kinds", `${name}.md`), text)
  }
  // Project kinds run once reviewed and trusted; these are the test's own.
  if (options.kinds !== undefined && (options.trustKinds ?? true)) expect(run(["kinds", "trust"]).code).toBe(0)
  return { root, socket, run }
}

interface Supervise {
  readonly child: ChildProcess
  readonly done: Promise<{ code: number | null; stdout: string; stderr: string }>
  readonly stderr: () => string
}

const supervise = (fleet: Fleet, args: ReadonlyArray<string>, env?: Record<string, string>): Supervise => {
  const child = spawn(process.execPath, [TRAIL, "supervise", ...args], {
    cwd: fleet.root,
    env: { ...cleanEnv(), SCRIPTED_AGENT_DELAY: "0.2", ...env }
  })
  let stdout = ""
  let stderr = ""
  child.stdout!.on("data", (d) => (stdout += d))
  child.stderr!.on("data", (d) => (stderr += d))
  const done = new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) =>
    child.on("close", (code) => resolve({ code, stdout, stderr }))
  )
  return { child, done, stderr: () => stderr }
}

interface WorkerJson {
  readonly id: string
  readonly state: string
  readonly path: string | null
  readonly reason: string | null
  readonly pid: number | null
  readonly result: { readonly found: number | null } | null
}

const workersOf = (fleet: Fleet) => fleet.run(["workers"]).json() as Array<WorkerJson>

const windowsOf = (socket: string): Array<string> => {
  try {
    return execFileSync("tmux", ["-L", socket, "list-windows", "-t", "trail-workers", "-F", "#{window_name}"], {
      encoding: "utf8",
      stdio: ["ignore", "pipe", "ignore"]
    })
      .split("\n")
      .filter((w) => w !== "" && w !== "trail")
  } catch {
    return []
  }
}

const visitsPerFolder = (fleet: Fleet, task: string) => {
  const items = fleet.run(["list", "--task", task]).json() as Array<{ path: string; status: string }>
  return items
}

describe("trail supervise — fleet mode", () => {
  it("drains a sweep of a git repository with 3 workers, each in its own tmux window", async () => {
    const fleet = fleetRepo({ folders: 9 })
    const run = supervise(fleet, ["--task", "review", "--workers", "3", "--prompt", "review {path}"])
    const result = await run.done
    expect(result.code, result.stderr).toBe(0)
    const summary = JSON.parse(result.stdout)
    expect(summary).toMatchObject({ sweep_complete: true, spawned: 9, ready: 9, folders_done: 9, failed: 0 })
    const workers = workersOf(fleet)
    expect(workers).toHaveLength(9)
    expect(workers.every((w) => w.state === "ready")).toBe(true)
    // Each folder went to exactly one worker, and the folder's visit carries the worker's findings.
    expect(new Set(workers.map((w) => w.path)).size).toBe(9)
    expect(workers.find((w) => w.path === "pkg0")?.result?.found).toBe(1)
    expect(workers.find((w) => w.path === "pkg1")?.result?.found).toBe(0)
    const items = visitsPerFolder(fleet, "review")
    expect(items.map((i) => i.status)).toEqual(Array(9).fill("done"))
    expect(fleet.run(["status", "--task", "review"]).json()).toMatchObject({ sweep_status: "complete", done: 9 })
    // Real tmux windows, named by worker id.
    expect(windowsOf(fleet.socket).sort()).toEqual(workers.map((w) => w.id).sort())
  }, 90_000)

  it("with worker.max_active = 1 the fleet runs one worker at a time by default, and a larger --workers is refused", async () => {
    const fleet = fleetRepo({ folders: 2, substrate: "process", extraConfig: "max_active = 1" })
    const refused = await supervise(fleet, ["--task", "t", "--workers", "2", "--prompt", "p {path}"]).done
    expect(refused.code).toBe(2)
    expect(JSON.parse(refused.stderr.trim().split("\n").pop()!).error.message).toContain("worker.max_active (1)")
    const result = await supervise(fleet, ["--task", "t", "--prompt", "p {path}"]).done
    expect(result.code, result.stderr).toBe(0)
    expect(JSON.parse(result.stdout)).toMatchObject({ sweep_complete: true, spawned: 2, folders_done: 2 })
  }, 60_000)

  it("runs workers as plain processes with their output in output.log", async () => {
    const fleet = fleetRepo({ folders: 4, substrate: "process" })
    const result = await supervise(fleet, ["--task", "t", "--workers", "2", "--prompt", "look at {path}"]).done
    expect(result.code, result.stderr).toBe(0)
    expect(JSON.parse(result.stdout)).toMatchObject({ sweep_complete: true, folders_done: 4 })
    const workers = workersOf(fleet)
    expect(workers.map((w) => w.state)).toEqual(Array(4).fill("ready"))
    const log = fs.readFileSync(path.join(fleet.root, ".trail", "workers", workers[0]!.id, "output.log"), "utf8")
    expect(log).toContain(`done: ${workers[0]!.path}`)
    expect(windowsOf(fleet.socket)).toEqual([])
  }, 60_000)

  it("hostile folder names reach a shell-string kind as literal text ($TRAIL_PROMPT) and run nothing", async () => {
    const hostile = ["$(touch PWNED)", "`touch PWNED`", `q'uo"te;touch PWNED;'`, "t\u001b]0;PWNED\u0007\u001b[2J"]
    const record = `printf '%s' "$TRAIL_PROMPT" > "$TRAIL_ROOT/.trail/workers/$TRAIL_WORKER_ID/prompt.txt"`
    const fleet = fleetRepo({
      folders: 0,
      files: Object.fromEntries(hostile.map((name) => [`${name}/a.ts`, "// TODO: x\n"])),
      kinds: {
        echo: `---\ncommand: ${JSON.stringify(`${record}; exec sh ${SCRIPTED_AGENT} "$TRAIL_PROMPT"`)}\n---\n`
      }
    })
    const result = await supervise(fleet, [
      "--task",
      "t",
      "--workers",
      "1",
      "--as",
      "echo",
      "--prompt",
      "look at {path}"
    ]).done
    expect(result.code, result.stderr).toBe(0)
    const workers = workersOf(fleet)
    expect(workers.map((w) => w.path).sort()).toEqual([...hostile].sort())
    for (const worker of workers) {
      expect(worker.state).toBe("ready")
      const prompt = fs.readFileSync(path.join(fleet.root, ".trail", "workers", worker.id, "prompt.txt"), "utf8")
      expect(prompt).toBe(`look at ${worker.path}`)
    }
    expect(fs.readdirSync(fleet.root, { recursive: true }).filter((f) => String(f).endsWith("PWNED"))).toEqual([])
    // The progress lines name the folders; their escape sequences are shown, not sent.
    expect(result.stderr).toContain("t␛]0;PWNED␇␛[2J")
    expect(result.stderr).not.toMatch(/[\u001b\u0007]/)
  }, 60_000)

  it("a kind that splices {prompt} into shell text is refused with how to write it, and nothing runs", async () => {
    const fleet = fleetRepo({
      folders: 0,
      files: { "$(touch PWNED)/a.ts": "x\n" },
      kinds: { splice: `---\ncommand: ${JSON.stringify(`sh ${SCRIPTED_AGENT} "{prompt}"`)}\n---\n` }
    })
    const result = await supervise(fleet, ["--task", "t", "--workers", "1", "--as", "splice", "--prompt", "at {path}"])
      .done
    expect(result.code).toBe(1)
    const error = JSON.parse(result.stderr.trim().split("\n").pop()!).error
    expect(error.code).toBe("unknown-kind")
    expect(error.message).toContain("splice.md: command:")
    expect(error.message).toContain('"$TRAIL_PROMPT"')
    expect(fs.existsSync(path.join(fleet.root, "PWNED"))).toBe(false)
    expect(workersOf(fleet)).toEqual([])
    // The same in .trail.toml's worker.command: every command refuses the configuration.
    const toml = fs.readFileSync(path.join(fleet.root, ".trail.toml"), "utf8")
    fs.writeFileSync(
      path.join(fleet.root, ".trail.toml"),
      toml.replace(/^command = .*$/m, `command = ${JSON.stringify(`sh ${SCRIPTED_AGENT} "{prompt}"`)}`)
    )
    const spawned = fleet.run(["spawn", "look at $(touch PWNED)"])
    expect(spawned.code).toBe(1)
    expect(spawned.error().code).toBe("config-invalid")
    expect(spawned.error().message).toContain("worker.command")
    expect(spawned.error().message).toContain('"$TRAIL_PROMPT"')
    expect(fs.existsSync(path.join(fleet.root, "PWNED"))).toBe(false)
  }, 60_000)

  it("a cloned repository's .trail/kinds/default.md runs only once trusted, and again only after an edit is trusted", async () => {
    const kindFile = (mark: string) =>
      `---\ncommand: ["sh", "-c", "echo ${mark} > \\"$TRAIL_ROOT/RAN\\""]\nenv: { MARK: "${mark}" }\n---\n`
    const fleet = fleetRepo({
      folders: 1,
      substrate: "process",
      kinds: { default: kindFile("one") },
      trustKinds: false
    })
    const ran = path.join(fleet.root, "RAN")
    const listed = () =>
      (
        fleet.run(["kinds"]).json() as {
          kinds: Array<{ name: string; origin: string; trust: string; overrides: boolean; hash: string }>
        }
      ).kinds
    const project = () => listed().find((k) => k.origin === "project")!
    expect(project()).toMatchObject({ name: "default", trust: "untrusted", overrides: true })
    expect(project().hash).toMatch(/^[0-9a-f]{64}$/)
    const pretty = fleet.run(["kinds", "--pretty"], { NO_COLOR: "1" })
    expect(pretty.stdout).toMatch(/default\s+project\s+untrusted, overrides built-in/)
    expect(pretty.stdout).toContain("trail kinds trust")

    const refused = fleet.run(["spawn", "do it"])
    expect(refused.code).toBe(1)
    expect(refused.error().code).toBe("kind-untrusted")
    expect(refused.error().message).toContain("trail kinds trust default")
    expect(refused.error().message).toContain("built-in")
    expect(workersOf(fleet)).toEqual([])
    expect(fs.existsSync(ran)).toBe(false)

    // A trust store shipped inside the repository trusts nothing.
    fs.writeFileSync(
      path.join(fleet.root, ".trail", "trusted-kinds.json"),
      JSON.stringify({ [path.join(fleet.root, ".trail", "kinds", "default.md")]: project().hash })
    )
    expect(fleet.run(["spawn", "do it"]).error().code).toBe("kind-untrusted")

    const trusted = fleet.run(["kinds", "trust"])
    expect(trusted.code, trusted.stderr).toBe(0)
    expect(trusted.json()).toMatchObject({ trusted: [{ name: "default" }] })
    expect(project().trust).toBe("trusted")
    expect(fleet.run(["spawn", "do it"]).code).toBe(0)
    await waitFor(() => fs.existsSync(ran) && fs.readFileSync(ran, "utf8") === "one\n", "the trusted kind to run")

    fs.writeFileSync(path.join(fleet.root, ".trail", "kinds", "default.md"), kindFile("two"))
    expect(project().trust).toBe("changed")
    const changed = fleet.run(["spawn", "do it again"])
    expect(changed.error().code).toBe("kind-untrusted")
    expect(changed.error().message).toContain("changed since it was trusted")
    expect(workersOf(fleet)).toHaveLength(1)
    expect(fs.readFileSync(ran, "utf8")).toBe("one\n")
  }, 60_000)

  it("a missing agent program is refused before anything is claimed: exit 1, nothing leased, skipped or spawned", async () => {
    // The issue's reproduction: no --as, and the default kind's worker.command is not installed.
    const fleet = fleetRepo({
      folders: 3,
      command: '["no-such-agent-xyz", "{prompt}"]',
      kinds: {
        broken: '---\ndescription: points at a missing program\ncommand: [no-such-agent-xyz, "{prompt}"]\n---\n'
      }
    })
    for (const as of [[], ["--as", "broken"]]) {
      const started = Date.now()
      const result = await supervise(fleet, ["--task", "t", "--workers", "2", ...as, "--prompt", "x {path}"]).done
      expect(result.code, result.stderr).toBe(1)
      expect(Date.now() - started).toBeLessThan(10_000)
      const error = JSON.parse(result.stderr.trim().split("\n").pop()!) as { error: { code: string; message: string } }
      expect(error.error.code).toBe("spawn-refused")
      expect(error.error.message).toContain(`kind ${as.length === 0 ? "default" : "broken"}`)
      expect(error.error.message).toContain("no-such-agent-xyz")
    }
    expect(workersOf(fleet)).toEqual([])
    const status = fleet.run(["status", "--task", "t"])
    if (status.code === 0) expect(status.json()).toMatchObject({ leased: 0, skipped: 0, done: 0 })
    // No failure cards: no worker was ever created.
    expect(fleet.run(["inbox"]).json()).toMatchObject([])
    // trail spawn refuses it the same way, and doctor names it.
    const spawned = fleet.run(["spawn", "hello"])
    expect(spawned.code).toBe(1)
    expect(spawned.error().message).toContain("no-such-agent-xyz")
    expect(workersOf(fleet)).toEqual([])
    const doctor = fleet.run(["doctor"]).json() as { checks: Array<{ name: string; ok: boolean; detail: string }> }
    expect(doctor.checks.find((c) => c.name === "kind default")).toMatchObject({ ok: false })
    expect(doctor.checks.find((c) => c.name === "kind broken")?.detail).toContain("no-such-agent-xyz")
  }, 60_000)

  it("workers that cannot start (exit 127) never skip a folder; after worker.max_start_failures the fleet stops, exit 1", async () => {
    const fleet = fleetRepo({ folders: 6, kinds: { vanish: '---\ncommand: [sh, -c, "exit 127"]\n---\n' } })
    const result = await supervise(fleet, ["--task", "t", "--workers", "2", "--as", "vanish", "--prompt", "p {path}"])
      .done
    expect(result.code, result.stderr).toBe(1)
    const summary = JSON.parse(result.stdout) as { start_failures: number; folders_skipped: number; halted: string }
    expect(summary.folders_skipped).toBe(0)
    expect(summary.start_failures).toBeGreaterThanOrEqual(3)
    expect(summary.start_failures).toBeLessThanOrEqual(4)
    expect(summary.halted).toContain("could not start")
    const error = JSON.parse(result.stderr.trim().split("\n").pop()!) as { error: { code: string; message: string } }
    expect(error.error.message).toContain("worker.max_start_failures")
    expect(fleet.run(["status", "--task", "t"]).json()).toMatchObject({ pending: 6, leased: 0, skipped: 0, done: 0 })
  }, 60_000)

  it("an unknown --as leaves nothing leased; a corrected re-run drains at once", async () => {
    const fleet = fleetRepo({ folders: 3 })
    const wrong = await supervise(fleet, ["--task", "t", "--workers", "3", "--as", "reviewer", "--prompt", "p {path}"])
      .done
    expect(wrong.code).toBe(1)
    expect(JSON.parse(wrong.stderr.trim().split("\n").pop()!).error.code).toBe("unknown-kind")
    const status = fleet.run(["status", "--task", "t"])
    if (status.code === 0) expect(status.json()).toMatchObject({ leased: 0 })
    // A fleet slot's claim left behind by a crash is released when the next supervisor starts.
    expect(fleet.run(["next", "--task", "t", "--agent", "trail-supervise"]).code).toBe(0)
    expect(fleet.run(["status", "--task", "t"]).json()).toMatchObject({ leased: 1 })
    const started = Date.now()
    const right = await supervise(fleet, ["--task", "t", "--workers", "3", "--prompt", "p {path}"]).done
    expect(right.code, right.stderr).toBe(0)
    expect(JSON.parse(right.stdout)).toMatchObject({ sweep_complete: true, folders_done: 3 })
    expect(Date.now() - started).toBeLessThan(30_000)
  }, 60_000)

  it("a slot with nothing to claim says which folder it waits for, who holds it and until when", async () => {
    const fleet = fleetRepo({ folders: 1 })
    expect(fleet.run(["next", "--task", "t", "--agent", "human"]).code).toBe(0)
    const run = supervise(fleet, ["--task", "t", "--workers", "1", "--prompt", "p {path}"])
    await waitFor(() => /waiting for pkg0 \(held by human until \d\d:\d\d:\d\dZ/.test(run.stderr()), "the wait line")
    run.child.kill("SIGINT")
    expect((await run.done).code).toBe(130)
  }, 30_000)

  it("--auto-sweep opens the next sweep when one completes and goes on until stopped", async () => {
    const fleet = fleetRepo({ folders: 2, substrate: "process" })
    const run = supervise(fleet, ["--task", "t", "--workers", "2", "--prompt", "p {path}", "--auto-sweep"])
    await waitFor(
      () => {
        const status = fleet.run(["status", "--task", "t"])
        return status.code === 0 && (status.json() as { sweep: number }).sweep >= 3
      },
      "the third sweep",
      30_000
    )
    run.child.kill("SIGTERM")
    const result = await run.done
    expect(result.code).toBe(130)
    expect(JSON.parse(result.stdout)).toMatchObject({ stopped_by_signal: true, sweep_complete: false })
    expect(JSON.parse(result.stdout).folders_done).toBeGreaterThanOrEqual(4)
    expect(fleet.run(["status", "--task", "t"]).json()).toMatchObject({ leased: 0 })
  }, 60_000)

  it("an unknown kind is refused before anything is claimed", () => {
    const fleet = fleetRepo({ folders: 2 })
    const spawned = fleet.run(["spawn", "--as", "nope", "do", "it"])
    expect(spawned.code).toBe(1)
    expect(spawned.error().code).toBe("unknown-kind")
    expect(spawned.error().message).toContain("default, patcher, scout")
  })

  it("kill -9 of the supervisor, then a restart: live windows are re-adopted, no folder is handed out twice", async () => {
    const fleet = fleetRepo({ folders: 4 })
    const env = { SCRIPTED_AGENT_DELAY: "4" }
    const first = supervise(fleet, ["--task", "t", "--workers", "2", "--prompt", "p {path}"], env)
    await waitFor(() => workersOf(fleet).filter((w) => w.state === "running").length === 2, "two running workers")
    first.child.kill("SIGKILL")
    await first.done
    const before = workersOf(fleet)
    expect(before.filter((w) => w.state === "running")).toHaveLength(2)

    const second = supervise(fleet, ["--task", "t", "--workers", "2", "--prompt", "p {path}"], env)
    const result = await second.done
    expect(result.code, result.stderr).toBe(0)
    expect(result.stderr).toContain("re-adopted 2 live worker(s)")
    const after = workersOf(fleet)
    expect(after).toHaveLength(4)
    expect(after.every((w) => w.state === "ready")).toBe(true)
    expect(new Set(after.map((w) => w.path)).size).toBe(4)
    expect(visitsPerFolder(fleet, "t").every((i) => i.status === "done")).toBe(true)
  }, 90_000)

  it("workers that finish while the supervisor is down are settled with their findings at restart", async () => {
    const fleet = fleetRepo({ folders: 2 })
    const env = { SCRIPTED_AGENT_DELAY: "3" }
    const first = supervise(fleet, ["--task", "t", "--workers", "2", "--prompt", "p {path}"], env)
    await waitFor(() => workersOf(fleet).filter((w) => w.state === "running").length === 2, "two running workers")
    first.child.kill("SIGKILL")
    await first.done
    await waitFor(() => workersOf(fleet).every((w) => w.state === "ready"), "both workers done while unsupervised")
    // Nobody has settled their folders yet: still leased to the workers.
    expect(fleet.run(["status", "--task", "t"]).json()).toMatchObject({ leased: 2, done: 0 })
    const second = await supervise(fleet, ["--task", "t", "--workers", "2", "--prompt", "p {path}"], env).done
    expect(second.code, second.stderr).toBe(0)
    expect(second.stderr).toContain("finished while unsupervised")
    expect(JSON.parse(second.stdout)).toMatchObject({ sweep_complete: true, spawned: 0, folders_done: 2 })
    expect(fleet.run(["status", "--task", "t"]).json()).toMatchObject({ done: 2, leased: 0 })
    // The folders' visits carry the workers' findings (pkg0 has a TODO, pkg1 none).
    const db = new Sqlite(path.join(fleet.root, ".trail", "state.db"), { readonly: true })
    const visits = db.prepare("SELECT path, status, found FROM visits ORDER BY path").all()
    db.close()
    expect(visits).toEqual([
      { path: "pkg0", status: "done", found: 1 },
      { path: "pkg1", status: "done", found: 0 }
    ])
  }, 60_000)

  it("a tmux server killed under a running supervisor: its workers are lost and no agent process survives", async () => {
    const marker = `${6000 + Math.floor(Math.random() * 3000)}`
    const fleet = fleetRepo({
      folders: 1,
      extraConfig: "lease_secs = 3",
      kinds: { idle: `---\ncommand: [sleep, "${marker}"]\n---\n` }
    })
    const run = supervise(fleet, [])
    await waitFor(() => run.stderr().includes("supervising"), "the supervisor")
    for (const t of ["one", "two"]) expect(fleet.run(["spawn", "--as", "idle", t]).code).toBe(0)
    const agents = () => {
      try {
        return execFileSync("pgrep", ["-f", `^sleep ${marker}$`], { encoding: "utf8" })
          .trim()
          .split("\n").length
      } catch {
        return 0
      }
    }
    await waitFor(() => agents() === 2, "two agents")
    execFileSync("tmux", ["-L", fleet.socket, "kill-server"])
    await waitFor(() => workersOf(fleet).every((w) => w.state === "lost"), "both workers lost", 20_000)
    await waitFor(() => agents() === 0, "no agent left", 10_000)
    run.child.kill("SIGINT")
    expect((await run.done).code).toBe(130)
  }, 45_000)

  it("a supervisor whose database file is deleted or replaced stops with store-replaced", async () => {
    const fleet = fleetRepo({ folders: 1 })
    const run = supervise(fleet, [])
    await waitFor(() => run.stderr().includes("supervising"), "the supervisor")
    const db = path.join(fleet.root, ".trail", "state.db")
    fs.copyFileSync(db, `${db}.copy`)
    fs.renameSync(`${db}.copy`, db)
    const result = await run.done
    expect(result.code).toBe(1)
    expect(JSON.parse(result.stderr.trim().split("\n").pop()!).error.code).toBe("store-replaced")
    // Deleted under a running supervisor: the same.
    const again = supervise(fleet, [])
    await waitFor(() => again.stderr().includes("supervising"), "the second supervisor")
    fs.rmSync(db)
    const deleted = await again.done
    expect(deleted.code).toBe(1)
    expect(JSON.parse(deleted.stderr.trim().split("\n").pop()!).error.message).toContain("was deleted")
  }, 30_000)

  it("a supervisor whose database file is emptied in place (same inode) stops with store-corrupt", async () => {
    const fleet = fleetRepo({ folders: 1 })
    const run = supervise(fleet, [])
    await waitFor(() => run.stderr().includes("supervising"), "the supervisor")
    fs.truncateSync(path.join(fleet.root, ".trail", "state.db"), 0)
    const result = await run.done
    expect(result.code).toBe(1)
    expect(JSON.parse(result.stderr.trim().split("\n").pop()!).error.code).toBe("store-corrupt")
  }, 30_000)

  it("a restart without --task releases the folders a killed fleet's slots had claimed, of every task", async () => {
    const fleet = fleetRepo({ folders: 2 })
    // What a fleet of each task leaves behind when killed between a claim and the spawn for it.
    for (const task of ["a", "b"])
      expect(fleet.run(["next", "--task", task, "--agent", "trail-supervise"]).code).toBe(0)
    const run = supervise(fleet, [])
    await waitFor(() => run.stderr().includes("supervising"), "the supervisor")
    run.child.kill("SIGINT")
    expect((await run.done).code).toBe(130)
    for (const task of ["a", "b"]) expect(fleet.run(["status", "--task", task]).json()).toMatchObject({ leased: 0 })
  }, 30_000)

  it("a second supervisor on the same root is refused, naming the running one", async () => {
    const fleet = fleetRepo({ folders: 1 })
    const first = supervise(fleet, [])
    await waitFor(() => first.stderr().includes("supervising"), "the first supervisor")
    await waitFor(() => fleet.run(["supervise"]).code === 1, "the lock")
    const second = fleet.run(["supervise"])
    expect(second.error().code).toBe("supervisor-running")
    expect(second.error().message).toContain(`pid ${first.child.pid}`)
    first.child.kill("SIGINT")
    const result = await first.done
    expect(result.code).toBe(130)
    expect(JSON.parse(result.stdout)).toMatchObject({ stopped_by_signal: true, sweep_complete: null })
    // Its lock is gone with it.
    const third = supervise(fleet, [])
    await waitFor(() => third.stderr().includes("supervising"), "a third supervisor")
    third.child.kill("SIGTERM")
    expect((await third.done).code).toBe(130)
  }, 60_000)

  it("SIGINT stops claiming and lets running workers finish; the store stays consistent", async () => {
    const fleet = fleetRepo({ folders: 6 })
    const run = supervise(fleet, ["--task", "t", "--workers", "2", "--prompt", "p {path}"], {
      SCRIPTED_AGENT_DELAY: "2"
    })
    await waitFor(() => workersOf(fleet).filter((w) => w.state === "running").length === 2, "two running workers")
    run.child.kill("SIGINT")
    const result = await run.done
    expect(result.code, result.stderr).toBe(130)
    const summary = JSON.parse(result.stdout)
    expect(summary).toMatchObject({ stopped_by_signal: true, sweep_complete: false, folders_done: 2 })
    expect(workersOf(fleet).map((w) => w.state)).toEqual(["ready", "ready"])
    expect(fleet.run(["status", "--task", "t"]).json()).toMatchObject({ done: 2, leased: 0, pending: 4 })
  }, 60_000)

  it("a second SIGINT cancels the running workers and closes their windows", async () => {
    const fleet = fleetRepo({
      folders: 3,
      kinds: { hang: '---\ncommand: [sleep, "600"]\n---\n' }
    })
    const run = supervise(fleet, ["--task", "t", "--workers", "2", "--as", "hang", "--prompt", "p {path}"])
    await waitFor(() => windowsOf(fleet.socket).length === 2, "two windows")
    run.child.kill("SIGINT")
    await waitFor(() => run.stderr().includes("stopping"), "the drain")
    run.child.kill("SIGINT")
    const result = await run.done
    expect(result.code).toBe(130)
    const workers = workersOf(fleet)
    expect(workers.map((w) => w.state)).toEqual(["cancelled", "cancelled"])
    expect(windowsOf(fleet.socket)).toEqual([])
    expect(fleet.run(["status", "--task", "t"]).json()).toMatchObject({ done: 0, leased: 0, pending: 3 })
  }, 60_000)
})

describe("workers from the command line", () => {
  it("tell types text into the pane literally: quotes, ;, $(…), newlines and key names stay text", async () => {
    const fleet = fleetRepo({
      folders: 1,
      kinds: { cat: '---\ncommand: "cat > received.txt"\n---\n' }
    })
    const spawned = fleet.run(["spawn", "--as", "cat", "listen"])
    expect(spawned.code, spawned.stderr).toBe(0)
    const id = (spawned.json() as WorkerJson).id
    const text = `it's "quoted"; $(touch pwned) \`touch pwned2\` C-c Enter\nsecond line`
    const told = fleet.run(["tell", id, text])
    expect(told.code, told.stderr).toBe(0)
    const received = path.join(fleet.root, "received.txt")
    await waitFor(() => fs.existsSync(received) && fs.readFileSync(received, "utf8").includes("second line"), "cat")
    expect(fs.readFileSync(received, "utf8")).toBe(`[trail] ${text}\n`)
    const pane = execFileSync("tmux", ["-L", fleet.socket, "capture-pane", "-p", "-t", `trail-workers:${id}`], {
      encoding: "utf8"
    })
    expect(pane).toContain(`[trail] it's "quoted"; $(touch pwned) \`touch pwned2\` C-c Enter`)
    expect(fs.existsSync(path.join(fleet.root, "pwned"))).toBe(false)
    expect(fs.existsSync(path.join(fleet.root, "pwned2"))).toBe(false)
    // C-c was typed, not pressed: cat is still running.
    expect((fleet.run(["worker", "show", id]).json() as WorkerJson).state).toBe("running")
    const killed = fleet.run(["kill", id])
    expect(killed.code).toBe(0)
    expect((killed.json() as Array<WorkerJson>).map((w) => w.state)).toEqual(["cancelled"])
    expect(windowsOf(fleet.socket)).toEqual([])
    // A finished worker cannot be told anything.
    const late = fleet.run(["tell", id, "hello?"])
    expect(late.code).toBe(1)
    expect(late.error().code).toBe("worker-finished")
  }, 30_000)

  it("two roots on one tmux server and session each reach their own w1", async () => {
    const kinds = { cat: '---\ncommand: "cat > received.txt"\n---\n' }
    const a = fleetRepo({ folders: 1, kinds })
    const b = fleetRepo({ folders: 1, kinds, socket: a.socket })
    for (const root of [a, b]) expect((root.run(["spawn", "--as", "cat", "listen"]).json() as WorkerJson).id).toBe("w1")
    expect(windowsOf(a.socket)).toEqual(["w1", "w1"])
    expect(a.run(["tell", "w1", "for a"]).code).toBe(0)
    expect(b.run(["tell", "w1", "for b"]).code).toBe(0)
    const received = (root: Fleet) => {
      const file = path.join(root.root, "received.txt")
      return fs.existsSync(file) ? fs.readFileSync(file, "utf8") : ""
    }
    await waitFor(() => received(a) !== "" && received(b) !== "", "both cats")
    expect(received(a)).toBe("[trail] for a\n")
    expect(received(b)).toBe("[trail] for b\n")
    // Killing b's w1 closes b's window only.
    expect(b.run(["kill", "w1"]).code).toBe(0)
    expect(windowsOf(a.socket)).toEqual(["w1"])
    expect((a.run(["worker", "show", "w1"]).json() as WorkerJson).state).toBe("running")
    // Attaching names the window by tmux's id, not by the shared name.
    const attach = a.run(["attach", "w1"]).json() as { command: Array<string> }
    expect(attach.command.slice(0, 5)).toEqual(["tmux", "-L", a.socket, "attach-session", "-t"])
    expect(attach.command[5]).toMatch(/^@\d+$/)
    expect(a.run(["kill", "w1"]).code).toBe(0)
  }, 30_000)

  it("wait, tell and done move a worker needs_input → running → ready, each step an event", async () => {
    const agent = `trail worker wait --question "which file?" >/dev/null; read answer; trail worker done --outcome "picked $answer" --summary s --evidence "$answer" --recommend "one" --recommend "two" >/dev/null`
    const fleet = fleetRepo({ folders: 1, kinds: { asker: `---\ncommand: ${JSON.stringify(agent)}\n---\n` } })
    const id = (fleet.run(["spawn", "--as", "asker", "ask me"]).json() as WorkerJson).id
    await waitFor(
      () => (fleet.run(["worker", "show", id]).json() as WorkerJson).state === "needs_input",
      "the question"
    )
    expect(fleet.run(["worker", "show", id]).json()).toMatchObject({ question: "which file?" })
    expect(fleet.run(["tell", id, "a.ts"]).code).toBe(0)
    await waitFor(() => (fleet.run(["worker", "show", id]).json() as WorkerJson).state === "ready", "done")
    const shown = fleet.run(["worker", "show", id]).json() as WorkerJson & {
      events: Array<{ type: string }>
      result: { outcome: string; recommend: Array<string> }
    }
    expect(shown.result).toMatchObject({ outcome: "picked [trail] a.ts", recommend: ["one", "two"] })
    // worker.exited follows once its program has ended and someone noticed; the rest is in order.
    expect(shown.events.map((e) => e.type).filter((t) => t !== "worker.exited")).toEqual([
      "worker.spawned",
      "worker.running",
      "worker.needs_input",
      "worker.told",
      "worker.running",
      "worker.ready"
    ])
  }, 30_000)

  it("protocol calls need $TRAIL_WORKER_ID, and done needs evidence", () => {
    const fleet = fleetRepo({ folders: 1, kinds: { idle: '---\ncommand: [sleep, "30"]\n---\n' } })
    for (const args of [
      ["worker", "note", "hi"],
      ["worker", "fail", "--reason", "x"],
      ["worker", "todos", "a"]
    ]) {
      const r = fleet.run(args)
      expect(r.code).toBe(1)
      expect(r.error().code).toBe("no-worker-identity")
      expect(r.error().message).toContain("TRAIL_WORKER_ID")
    }
    const id = (fleet.run(["spawn", "--as", "idle", "idle"]).json() as WorkerJson).id
    const env = { TRAIL_WORKER_ID: id }
    const vague = fleet.run(["worker", "done", "--outcome", "ok", "--summary", "s", "--evidence", " "], env)
    expect(vague.code).toBe(1)
    expect(vague.error().code).toBe("evidence-required")
    expect(vague.error().message).toContain("trail worker wait")
    expect((fleet.run(["worker", "show", id]).json() as WorkerJson).state).toBe("running")
    const bogus = fleet.run(["worker", "note", "hi"], { TRAIL_WORKER_ID: "nobody" })
    expect(bogus.error().code).toBe("no-worker-identity")
    expect(fleet.run(["kill", id]).code).toBe(0)
  })

  it("unknown worker ids, attach without a terminal, and tmux forced but missing", () => {
    const fleet = fleetRepo({ folders: 1 })
    for (const args of [
      ["worker", "show", "w99"],
      ["tell", "w99", "x"],
      ["kill", "banana"],
      ["respawn", "w7"]
    ]) {
      const r = fleet.run(args)
      expect(r.code).toBe(1)
      expect(r.error().code).toBe("worker-not-found")
    }
    const attach = fleet.run(["attach", "w1"])
    expect(attach.code).toBe(1)
    const session = fleet.run(["attach"])
    expect(session.code).toBe(0)
    expect(session.json()).toMatchObject({
      command: ["tmux", "-L", fleet.socket, "attach-session", "-t", "trail-workers"]
    })

    // A PATH with node and sh but no tmux, and the tmux substrate forced.
    const bin = fs.mkdtempSync(path.join(fleet.root, "bin-"))
    for (const tool of ["sh", "sleep"])
      fs.symlinkSync(
        execFileSync("sh", ["-c", `command -v ${tool}`], { encoding: "utf8" }).trim(),
        path.join(bin, tool)
      )
    const kinds = path.join(fleet.root, ".trail", "kinds")
    fs.mkdirSync(kinds, { recursive: true })
    fs.writeFileSync(path.join(kinds, "idle.md"), '---\ncommand: [sleep, "5"]\n---\n')
    expect(fleet.run(["kinds", "trust", "idle"]).code).toBe(0)
    const spawned = fleet.run(["spawn", "--as", "idle", "x"], { PATH: bin })
    expect(spawned.code).toBe(1)
    expect(spawned.error().code).toBe("tmux-missing")
    expect(spawned.error().message).toMatch(/^tmux is not installed/)
    // Refused before a worker was created.
    expect(workersOf(fleet)).toEqual([])
  })

  it("attach on a terminal: tmux failing is exit 1 with an error naming its status", async () => {
    const fleet = fleetRepo({ folders: 1 })
    // A terminal of the test's own: a pane on another tmux server. The fleet's server is not
    // running (nothing was spawned), so tmux's attach fails.
    const terminal = `${fleet.socket}-terminal`
    sockets.push(terminal)
    const out = fs.mkdtempSync(path.join(fleet.root, "attach-"))
    const command = [
      `env -u TMUX -u TRAIL_ROOT XDG_CONFIG_HOME=${CONFIG_HOME} ${process.execPath} ${TRAIL} attach 2>${out}/stderr`,
      `echo $? >${out}/code`,
      "sleep 60"
    ].join("; ")
    execFileSync("tmux", ["-L", terminal, "new-session", "-d", "-x", "250", "-y", "20", "-c", fleet.root, command])
    const code = path.join(out, "code")
    await waitFor(() => fs.existsSync(code) && fs.readFileSync(code, "utf8").endsWith("\n"), "attach to end")
    expect(fs.readFileSync(code, "utf8")).toBe("1\n")
    // tmux's own message, then trail's error as the last line.
    const stderr = fs.readFileSync(path.join(out, "stderr"), "utf8").trim().split("\n")
    const error = (JSON.parse(stderr.at(-1) ?? "") as { error: { code: string; message: string } }).error
    expect(error.code).toBe("tmux-failed")
    expect(error.message).toMatch(/^tmux exited with status 1: tmux -L \S+ attach-session -t trail-workers/)
    // The one value on stdout (the terminal) is still the command and its status.
    const screen = execFileSync("tmux", ["-L", terminal, "capture-pane", "-p", "-J"], { encoding: "utf8" })
    const line = screen.split("\n").find((l) => l.startsWith("{"))
    expect(JSON.parse(line ?? "")).toEqual({
      command: ["tmux", "-L", fleet.socket, "attach-session", "-t", "trail-workers"],
      exit_status: 1
    })
  }, 30_000)

  it("respawn starts a new worker for a finished one; kill cascades to children", async () => {
    const fleet = fleetRepo({
      folders: 1,
      kinds: {
        lead: '---\ncan_spawn: true\ncommand: "trail spawn --as idle child-task >/dev/null; sleep 600"\n---\n',
        idle: '---\ncommand: [sleep, "600"]\n---\n'
      }
    })
    const lead = (fleet.run(["spawn", "--as", "lead", "lead"]).json() as WorkerJson).id
    await waitFor(() => workersOf(fleet).length === 2, "the child")
    const child = workersOf(fleet).find((w) => w.id !== lead)!
    expect(fleet.run(["worker", "show", child.id]).json()).toMatchObject({ parent: lead, depth: 1 })
    const killed = fleet.run(["kill", lead]).json() as Array<WorkerJson>
    expect(killed.map((w) => w.id)).toEqual([child.id, lead])
    expect(workersOf(fleet).every((w) => w.state === "cancelled")).toBe(true)
    const again = fleet.run(["respawn", lead])
    expect(again.code, again.stderr).toBe(0)
    expect(again.json()).toMatchObject({ state: "running", kind: "lead", respawn_of: lead })
    await waitFor(() => workersOf(fleet).length === 4, "the respawned lead's child")
    expect(fleet.run(["kill", (again.json() as WorkerJson).id]).code).toBe(0)
  }, 30_000)

  it("promote applies a patcher's change set after a clean check; discard removes the worktree", async () => {
    const edit = `echo "patched by $TRAIL_WORKER_ID" >> pkg0/index.ts && trail worker done --outcome edited --summary s --evidence pkg0/index.ts >/dev/null`
    const fleet = fleetRepo({
      folders: 1,
      kinds: { edit: `---\nworktree: true\ncommand: ${JSON.stringify(edit)}\n---\n` }
    })
    const a = (fleet.run(["spawn", "--as", "edit", "one"]).json() as WorkerJson).id
    const b = (fleet.run(["spawn", "--as", "edit", "two"]).json() as WorkerJson).id
    await waitFor(() => workersOf(fleet).every((w) => w.state === "ready"), "both edits")
    expect(fs.readFileSync(path.join(fleet.root, "pkg0/index.ts"), "utf8")).not.toContain("patched")
    const promoted = fleet.run(["promote", a])
    expect(promoted.code, promoted.stderr).toBe(0)
    expect(promoted.json()).toMatchObject({ promoted: true, files: 1, insertions: 1 })
    expect(fs.readFileSync(path.join(fleet.root, "pkg0/index.ts"), "utf8")).toContain(`patched by ${a}`)
    // b's change conflicts with what a's promotion put there: refused, root untouched.
    const conflict = fleet.run(["promote", b])
    expect(conflict.code).toBe(1)
    expect(conflict.error().code).toBe("change-set-conflict")
    expect(fs.readFileSync(path.join(fleet.root, "pkg0/index.ts"), "utf8")).not.toContain(`patched by ${b}`)
    const discarded = fleet.run(["discard", b])
    expect(discarded.code, discarded.stderr).toBe(0)
    expect(fs.existsSync(path.join(fleet.root, ".trail", "worktrees", b))).toBe(false)
    expect(fleet.run(["discard", b]).error().code).toBe("change-set-none")
  }, 30_000)

  it("worker show --pretty ends with the agent's last lines, not the blank rows of a dead pane", async () => {
    const fleet = fleetRepo({
      folders: 1,
      kinds: { talk: '---\ncommand: "echo first line; echo; echo last words of $TRAIL_WORKER_ID"\n---\n' }
    })
    const id = (fleet.run(["spawn", "--as", "talk", "say it"]).json() as WorkerJson).id
    await waitFor(() => (fleet.run(["worker", "show", id]).json() as WorkerJson).state !== "running", "the exit")
    const shown = fleet.run(["worker", "show", id, "--pretty"])
    expect(shown.code, shown.stderr).toBe(0)
    const output = shown.stdout.slice(shown.stdout.lastIndexOf("output"))
    expect(output.trimEnd().split("\n").slice(1)).toEqual(["first line", `last words of ${id}`])
  }, 30_000)

  it("workers get the spawner's environment, not the tmux server's, through a file nobody else can read", async () => {
    const fleet = fleetRepo({
      folders: 1,
      kinds: {
        idle: '---\ncommand: [sleep, "30"]\n---\n',
        envdump: '---\ncommand: "printf %s \\"$LATE_SECRET\\" > late.txt; sleep 30"\n---\n'
      }
    })
    // The first worker starts trail's tmux server without the variable.
    const first = (fleet.run(["spawn", "--as", "idle", "idle"]).json() as WorkerJson).id
    const second = fleet.run(["spawn", "--as", "envdump", "dump"], { LATE_SECRET: "exported later" })
    expect(second.code, second.stderr).toBe(0)
    const id = (second.json() as WorkerJson).id
    const file = path.join(fleet.root, "late.txt")
    await waitFor(() => fs.existsSync(file) && fs.readFileSync(file, "utf8") !== "", "the dump")
    expect(fs.readFileSync(file, "utf8")).toBe("exported later")
    // The environment file was read and removed; the secret is on no command line.
    expect(fs.existsSync(path.join(fleet.root, ".trail", "workers", id, "env"))).toBe(false)
    const ps = execFileSync("ps", ["-eo", "args"], { encoding: "utf8" })
    expect(ps).not.toContain("exported later")
    for (const w of [first, id]) expect(fleet.run(["kill", w]).code).toBe(0)
  }, 30_000)

  it("a worker runs as itself: not as the spawner's $TRAIL_AGENT, nor inside its Claude Code session", async () => {
    const fleet = fleetRepo({
      folders: 1,
      substrate: "process",
      kinds: {
        whoami: `---\ncommand: "printf '%s|%s|%s' \\"$TRAIL_AGENT\\" \\"$CLAUDECODE\\" \\"$KEEP\\" > who.txt; trail next --task t > next.json"\n---\n`
      }
    })
    const spawned = fleet.run(["spawn", "--as", "whoami", "who"], {
      TRAIL_AGENT: "loop-7",
      CLAUDECODE: "1",
      KEEP: "kept"
    })
    expect(spawned.code, spawned.stderr).toBe(0)
    const id = (spawned.json() as WorkerJson).id
    const next = path.join(fleet.root, "next.json")
    await waitFor(() => fs.existsSync(next) && fs.readFileSync(next, "utf8") !== "", "the worker's claim")
    expect(fs.readFileSync(path.join(fleet.root, "who.txt"), "utf8")).toBe("||kept")
    // Its claim is its own (the agent id falls back to $TRAIL_WORKER_ID).
    const items = fleet.run(["list", "--task", "t", "--state", "leased"]).json() as Array<{ lease_owner: string }>
    expect(items.map((i) => i.lease_owner)).toEqual([id])
  }, 30_000)

  it("kill closes a finished worker's window; gc --workers prunes windows, dirs and worktrees but keeps unpromoted change sets", async () => {
    const edit = `echo "patched by $TRAIL_WORKER_ID" >> pkg0/index.ts && trail worker done --outcome edited --summary s --evidence pkg0/index.ts >/dev/null`
    const fleet = fleetRepo({
      folders: 1,
      kinds: {
        brief: '---\ncommand: "echo bye"\n---\n',
        edit: `---\nworktree: true\ncommand: ${JSON.stringify(edit)}\n---\n`
      }
    })
    const a = (fleet.run(["spawn", "--as", "brief", "one"]).json() as WorkerJson).id
    const b = (fleet.run(["spawn", "--as", "brief", "two"]).json() as WorkerJson).id
    const c = (fleet.run(["spawn", "--as", "edit", "three"]).json() as WorkerJson).id
    await waitFor(() => workersOf(fleet).every((w) => w.state !== "running"), "all three finished")
    expect(windowsOf(fleet.socket).sort()).toEqual([a, b, c].sort())
    const killed = fleet.run(["kill", a])
    expect(killed.code, killed.stderr).toBe(0)
    expect(windowsOf(fleet.socket).sort()).toEqual([b, c].sort())
    const gc = fleet.run(["gc", "--workers"])
    expect(gc.code, gc.stderr).toBe(0)
    const pruned = (gc.json() as { workers: { windows_closed: number; kept: Array<{ id: string }> } }).workers
    expect(pruned.windows_closed).toBe(2)
    expect(pruned.kept.map((k) => k.id)).toEqual([c])
    expect(windowsOf(fleet.socket)).toEqual([])
    expect(fs.existsSync(path.join(fleet.root, ".trail", "workers", b))).toBe(false)
    expect(fs.existsSync(path.join(fleet.root, ".trail", "worktrees", c))).toBe(true)
    const forced = fleet.run(["gc", "--workers", "--force"])
    expect(forced.code, forced.stderr).toBe(0)
    expect(fs.existsSync(path.join(fleet.root, ".trail", "worktrees", c))).toBe(false)
    expect(fleet.run(["gc", "--workers", "--older-than", "soon"]).code).toBe(2)
  }, 30_000)

  it("the supervisor closes finished workers' windows after worker.keep_finished_secs", async () => {
    const fleet = fleetRepo({
      folders: 1,
      extraConfig: "keep_finished_secs = 1",
      kinds: { brief: '---\ncommand: "echo bye"\n---\n' }
    })
    const run = supervise(fleet, [])
    await waitFor(() => run.stderr().includes("supervising"), "the supervisor")
    const id = (fleet.run(["spawn", "--as", "brief", "one"]).json() as WorkerJson).id
    await waitFor(() => (fleet.run(["worker", "show", id]).json() as WorkerJson).state !== "running", "its end")
    await waitFor(() => windowsOf(fleet.socket).length === 0, "the window closed", 20_000)
    run.child.kill("SIGINT")
    expect((await run.done).code).toBe(130)
  }, 30_000)

  it("after a tmux restart a reused window id is not the worker's: kill leaves the other window alone, tell says lost", async () => {
    const marker = `${3000 + Math.floor(Math.random() * 3000)}`
    const fleet = fleetRepo({ folders: 1, kinds: { idle: `---\ncommand: [sleep, "${marker}"]\n---\n` } })
    const a = (fleet.run(["spawn", "--as", "idle", "one"]).json() as WorkerJson).id
    const b = (fleet.run(["spawn", "--as", "idle", "two"]).json() as WorkerJson).id
    const windowIds = () =>
      execFileSync("tmux", ["-L", fleet.socket, "list-windows", "-a", "-F", "#{window_id} #{window_name}"], {
        encoding: "utf8"
      })
    const before = windowIds()
    execFileSync("tmux", ["-L", fleet.socket, "kill-server"])
    // No supervisor runs, yet the agents end with their terminals (the wrapper does not ignore SIGHUP).
    await waitFor(() => {
      try {
        execFileSync("pgrep", ["-f", `^sleep ${marker}$`], { stdio: "ignore" })
        return false
      } catch {
        return true
      }
    }, "the agents gone with the server")
    // A new server hands out the same ids (@0, @1, @2) to windows that are not trail's.
    // The old server may still be going away ("server exited unexpectedly"): try until a new one starts.
    await waitFor(() => {
      try {
        execFileSync(
          "tmux",
          ["-L", fleet.socket, "new-session", "-d", "-s", "trail-workers", "-n", "mine0", "sleep 60"],
          {
            stdio: "ignore"
          }
        )
        return true
      } catch {
        return false
      }
    }, "a new tmux server")
    for (const name of ["mine1", "mine2"])
      execFileSync("tmux", ["-L", fleet.socket, "new-window", "-d", "-t", "trail-workers:", "-n", name, "sleep 60"])
    const after = windowIds()
    expect(after.split("\n").map((l) => l.split(" ")[0])).toEqual(before.split("\n").map((l) => l.split(" ")[0]))
    const told = fleet.run(["tell", a, "hello"])
    expect(told.code).toBe(1)
    expect(told.error().code).toBe("tmux-gone")
    expect((fleet.run(["worker", "show", a]).json() as WorkerJson).state).toBe("lost")
    expect(fleet.run(["kill", b]).code).toBe(0)
    expect(windowIds()).toBe(after)
  }, 30_000)

  it("events --follow prints events appended by other processes as NDJSON", async () => {
    const fleet = fleetRepo({ folders: 1, kinds: { idle: '---\ncommand: [sleep, "30"]\n---\n' } })
    const id = (fleet.run(["spawn", "--as", "idle", "idle"]).json() as WorkerJson).id
    const follow = spawn(process.execPath, [TRAIL, "events", "--follow", "--since", "1"], { cwd: fleet.root })
    let out = ""
    follow.stdout.on("data", (d) => (out += d))
    await waitFor(() => out.includes("worker.running"), "the backlog")
    expect(fleet.run(["worker", "note", "from another process"], { TRAIL_WORKER_ID: id }).code).toBe(0)
    await waitFor(() => out.includes("from another process"), "the live event", 5_000)
    follow.kill("SIGINT")
    const lines = out
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as { id: number; type: string })
    expect(lines.map((e) => e.type)).toEqual(["worker.running", "worker.note"])
    expect(lines[0]!.id).toBe(2)
    expect(fleet.run(["kill", id]).code).toBe(0)
  }, 30_000)
})
