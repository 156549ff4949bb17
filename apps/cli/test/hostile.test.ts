/**
 * A hostile repository or a broken setup gets a clear, prompt error: configuration files that
 * are not regular files, oversized or out-of-range configuration, kinds with impossible limits,
 * and signals that end any command.
 */
import { execFileSync, spawn, spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { describe, expect, it } from "vitest"
import { cleanEnv, CONFIG_HOME, gitRepo, TRAIL, trail, waitFor } from "./helpers.js"

const initialised = () => {
  const root = gitRepo({ "src/a.ts": "export {}\n", "docs/guide.md": "guide\n" })
  expect(trail(["init"], { cwd: root }).code).toBe(0)
  return root
}

/** `trail args` that must end within `ms` (spawnSync kills it after, and the test fails). */
const within = (ms: number, args: ReadonlyArray<string>, cwd: string) => {
  const started = Date.now()
  const result = spawnSync(process.execPath, [TRAIL, ...args], {
    cwd,
    env: cleanEnv(),
    encoding: "utf8",
    timeout: ms,
    // A command blocked in a read ignores SIGTERM until it returns.
    killSignal: "SIGKILL"
  })
  expect(result.signal, `trail ${args.join(" ")} did not end within ${ms} ms`).toBeNull()
  const error: { code: string; message: string } | null = result.stderr === "" ? null : JSON.parse(result.stderr).error
  return { code: result.status, error, elapsed: Date.now() - started }
}

describe(".trail.toml that is not a plain file, or too big", () => {
  it("a FIFO is an error at once, for every command", () => {
    const root = initialised()
    execFileSync("mkfifo", [path.join(root, ".trail.toml")])
    for (const args of [["next", "--task", "t"], ["status", "--task", "t"], ["workers"], ["init"]]) {
      const out = within(10_000, args, root)
      expect(out.code).toBe(1)
      expect(out.error?.code).toBe("config-invalid")
      expect(out.error?.message).toContain("not a regular file")
    }
  })

  it("a link to /dev/zero is an error at once", () => {
    const root = initialised()
    fs.symlinkSync("/dev/zero", path.join(root, ".trail.toml"))
    const out = within(10_000, ["next", "--task", "t"], root)
    expect(out.code).toBe(1)
    expect(out.error?.code).toBe("config-invalid")
    expect(out.error?.message).toContain("not a regular file")
  })

  it("1,000,000 exclude globs: a clear error naming the size cap, not an out-of-memory abort", () => {
    const root = initialised()
    const globs = Array.from({ length: 1_000_000 }, (_, i) => `"g${i}"`).join(",")
    fs.writeFileSync(path.join(root, ".trail.toml"), `[scan]\nexclude = [${globs}]\n`)
    const out = within(30_000, ["init"], root)
    expect(out.code).toBe(1)
    expect(out.error?.code).toBe("config-invalid")
    expect(out.error?.message).toContain("1 MiB")
  })

  it("10,001 globs in one list: an error naming the key and the cap", () => {
    const root = initialised()
    const globs = Array.from({ length: 10_001 }, (_, i) => `"g${i}"`).join(",")
    fs.writeFileSync(path.join(root, ".trail.toml"), `[scan]\nexclude = [${globs}]\n`)
    const out = within(30_000, ["init"], root)
    expect(out.code).toBe(1)
    expect(out.error?.code).toBe("config-invalid")
    expect(out.error?.message).toContain("scan.exclude")
    expect(out.error?.message).toContain("at most 10000")
    expect(out.error?.message.length).toBeLessThan(500)
  })

  it("a symlinked regular .trail.toml (dotfiles) is read", () => {
    const root = initialised()
    const real = path.join(root, "trail.toml.real")
    fs.writeFileSync(real, "[lease]\nttl_secs = 30\n")
    fs.symlinkSync(real, path.join(root, ".trail.toml"))
    const out = trail(["next", "--task", "t", "--agent", "a"], { cwd: root })
    expect(out.code, out.stderr).toBe(0)
    const lease = out.json() as { lease_expires_at: number; leased_at?: number }
    expect(lease.lease_expires_at).toBeGreaterThan(Date.now())
    expect(lease.lease_expires_at).toBeLessThan(Date.now() + 31_000)
  })
})

describe("out-of-range numbers", () => {
  it.each([
    ["[lease]\nttl_secs = 1e308\n", "lease.ttl_secs", "30 days"],
    ["[lease]\nttl_secs = inf\n", "lease.ttl_secs", "finite"],
    ["[strategy]\nhalf_life_secs = 1e308\n", "strategy.half_life_secs", "at most"],
    ["[worker]\nmax_attempts = 1e308\n", "worker.max_attempts", "1 to 100"],
    ["[scan]\nmin_files = 1e308\n", "scan.min_files", "0 to 1000000"]
  ])("%j is refused naming %s", (toml, key, words) => {
    const root = initialised()
    fs.writeFileSync(path.join(root, ".trail.toml"), toml)
    const out = trail(["next", "--task", "t"], { cwd: root })
    expect(out.code).toBe(1)
    expect(out.error().code).toBe("config-invalid")
    expect(out.error().message).toContain(key)
    expect(out.error().message).toContain(words)
  })

  it.each([
    ["1e308", "at most 7 days"],
    ['""', '"90s"'],
    ['"0s"', "more than 0"]
  ])(
    "a kind with max_duration %s is refused naming the file and the field, never as a corrupt store",
    (value, words) => {
      const root = initialised()
      fs.mkdirSync(path.join(root, ".trail", "kinds"))
      fs.writeFileSync(
        path.join(root, ".trail", "kinds", "slow.md"),
        `---\ncommand: ["true"]\nmax_duration: ${value}\n---\n`
      )
      const out = trail(["spawn", "--as", "slow", "x"], { cwd: root })
      expect(out.code).toBe(1)
      expect(out.error().code).toBe("unknown-kind")
      expect(out.error().message).toContain(path.join(".trail", "kinds", "slow.md"))
      expect(out.error().message).toContain("max_duration")
      expect(out.error().message).toContain(words)
      expect(out.error().message).not.toContain("corrupt")
      // The store is fine and usable.
      expect(trail(["workers"], { cwd: root }).json()).toEqual([])
    }
  )
})

describe("files a repository controls cannot block a command", () => {
  it("a FIFO .gitignore and a .ignore linked to /dev/zero are skipped by init", () => {
    const root = gitRepo({ "a/f.ts": "x\n", "c/g.ts": "y\n" })
    execFileSync("mkfifo", [path.join(root, "c", ".gitignore")])
    fs.symlinkSync("/dev/zero", path.join(root, "a", ".ignore"))
    const out = within(15_000, ["init"], root)
    expect(out.code).toBe(0)
  })

  it("a FIFO kind file is reported, not read", () => {
    const root = initialised()
    fs.mkdirSync(path.join(root, ".trail", "kinds"))
    execFileSync("mkfifo", [path.join(root, ".trail", "kinds", "pipe.md")])
    const out = within(10_000, ["spawn", "--as", "pipe", "x"], root)
    expect(out.code).toBe(1)
    expect(out.error?.code).toBe("unknown-kind")
    expect(out.error?.message).toContain("not a regular file")
  })
})

describe("commands a repository or a kind controls", () => {
  /** A root whose workers are plain processes, with `worker.command` set to `command` (TOML) when given. */
  const processRoot = (command?: string) => {
    const root = gitRepo({ "src/a.ts": "export {}\n" })
    fs.writeFileSync(
      path.join(root, ".trail.toml"),
      `[worker]\n${command === undefined ? "" : `command = ${command}\n`}substrate = "process"\nexit_grace_secs = 1\n`
    )
    expect(trail(["init"], { cwd: root }).code).toBe(0)
    return root
  }

  it("a placeholder handed to a shell started with options (bash -o pipefail -c) is refused, and nothing runs", () => {
    const root = processRoot()
    const userKinds = path.join(CONFIG_HOME, "trail", "kinds")
    fs.mkdirSync(userKinds, { recursive: true })
    fs.writeFileSync(
      path.join(userKinds, "echoer.md"),
      '---\ncommand: ["bash", "-o", "pipefail", "-c", "echo {prompt} > out.txt"]\n---\n'
    )
    try {
      const spawned = trail(["spawn", "--as", "echoer", "hi $(touch PWNED2)"], { cwd: root })
      expect(spawned.code, spawned.stdout).toBe(1)
      expect(spawned.error().code).toBe("unknown-kind")
      expect(spawned.error().message).toContain("echoer.md: command:")
      expect(spawned.error().message).toContain('"$TRAIL_PROMPT"')
      expect(trail(["workers"], { cwd: root }).json()).toEqual([])
      expect(fs.existsSync(path.join(root, "PWNED2"))).toBe(false)
    } finally {
      fs.rmSync(path.join(userKinds, "echoer.md"))
    }
  })

  it("doctor names an untrusted kind as untrusted, and a kind file that does not load as a failed check", () => {
    const root = processRoot()
    fs.mkdirSync(path.join(root, ".trail", "kinds"), { recursive: true })
    fs.writeFileSync(
      path.join(root, ".trail", "kinds", "default.md"),
      '---\ncommand: ["nonexistent-prog", "{prompt}"]\n---\n'
    )
    fs.writeFileSync(path.join(root, ".trail", "kinds", "broken.md"), "---\nworktree: sometimes\n---\n")
    const doctor = trail(["doctor"], { cwd: root })
    expect(doctor.code).toBe(1)
    const checks = (doctor.json() as { checks: Array<{ name: string; ok: boolean; detail: string }> }).checks
    const kind = checks.find((c) => c.name === "kind default")
    expect(kind).toMatchObject({ ok: false })
    expect(kind?.detail).toContain("not trusted")
    expect(kind?.detail).toContain("trail kinds trust default")
    const broken = checks.find((c) => c.name === "kind file broken.md")
    expect(broken).toMatchObject({ ok: false })
    expect(broken?.detail).toContain("worktree")
    expect(checks.find((c) => c.name === "worker.command")).toMatchObject({ ok: true })
    expect(checks.find((c) => c.name === "kind scout")?.detail).toMatch(/^builtin: /)
  })

  it("a cloned repository's worker.command runs only once trusted, and again only after an edit is trusted", async () => {
    const command = (mark: string) => JSON.stringify(["sh", "-c", `echo ${mark} > "$TRAIL_ROOT/RAN"`])
    const root = processRoot(command("one"))
    const ran = path.join(root, "RAN")
    const configFile = path.join(root, ".trail.toml")
    const listed = () =>
      (trail(["kinds"], { cwd: root }).json() as { worker_command: { source: string; trust: string; hash: string } })
        .worker_command

    const refused = trail(["spawn", "hello"], { cwd: root })
    expect(refused.code, refused.stdout).toBe(1)
    expect(refused.error().code).toBe("kind-untrusted")
    expect(refused.error().message).toContain("worker.command")
    expect(refused.error().message).toContain(configFile)
    expect(refused.error().message).toContain("trail kinds trust worker.command")
    const fleet = trail(["supervise", "--task", "x", "--workers", "1", "--prompt", "look at {path}"], { cwd: root })
    expect(fleet.code).toBe(1)
    expect(fleet.stderr.trim().split("\n").pop()).toContain('"kind-untrusted"')
    expect(trail(["workers"], { cwd: root }).json()).toEqual([])
    expect(fs.existsSync(ran)).toBe(false)

    expect(listed()).toMatchObject({ source: configFile, trust: "untrusted" })
    expect(listed().hash).toMatch(/^[0-9a-f]{64}$/)
    const pretty = trail(["kinds", "--pretty"], { cwd: root, env: { NO_COLOR: "1" } })
    expect(pretty.stdout).toMatch(/worker\.command .*untrusted/)
    const doctor = trail(["doctor"], { cwd: root }).json() as {
      checks: Array<{ name: string; ok: boolean; detail: string }>
    }
    expect(doctor.checks.find((c) => c.name === "worker.command")).toMatchObject({ ok: false })
    expect(doctor.checks.find((c) => c.name === "kind default")?.detail).toContain("worker.command")

    const trusted = trail(["kinds", "trust", "worker.command"], { cwd: root })
    expect(trusted.code, trusted.stderr).toBe(0)
    expect(trusted.json()).toMatchObject({ trusted: [{ name: "worker.command", source: configFile }] })
    expect(listed().trust).toBe("trusted")
    expect(trail(["spawn", "hello"], { cwd: root }).code).toBe(0)
    await waitFor(() => fs.existsSync(ran) && fs.readFileSync(ran, "utf8") === "one\n", "the trusted command to run")

    // Another setting changes nothing; another command needs trusting again.
    fs.appendFileSync(configFile, "max_active = 4\n")
    expect(listed().trust).toBe("trusted")
    fs.writeFileSync(
      configFile,
      fs.readFileSync(configFile, "utf8").replace(/^command = .*$/m, `command = ${command("two")}`)
    )
    expect(listed().trust).toBe("changed")
    const changed = trail(["spawn", "again"], { cwd: root })
    expect(changed.error().code).toBe("kind-untrusted")
    expect(changed.error().message).toContain("changed since it was trusted")
    expect(fs.readFileSync(ran, "utf8")).toBe("one\n")
  }, 60_000)
})

describe("signals", () => {
  it.each(["SIGINT", "SIGTERM"] as const)("%s ends a waiting command promptly with 130", async (signal) => {
    const root = initialised()
    // One worker's events, so that `events --follow` prints something once it follows.
    fs.writeFileSync(path.join(root, ".trail.toml"), '[worker]\ncommand = ["true"]\nsubstrate = "process"\n')
    expect(trail(["kinds", "trust", "worker.command"], { cwd: root }).code).toBe(0)
    expect(trail(["spawn", "x"], { cwd: root }).code).toBe(0)
    const child = spawn(process.execPath, [TRAIL, "events", "--follow"], {
      cwd: root,
      env: cleanEnv()
    })
    let stdout = ""
    child.stdout.on("data", (d) => (stdout += d))
    const exited = new Promise<number | null>((resolve) => child.on("close", (code) => resolve(code)))
    try {
      // Wait until it is following (its first events are printed), then signal it.
      await waitFor(() => stdout !== "", "events --follow to print the worker's events")
      const sent = Date.now()
      child.kill(signal)
      const code = await Promise.race([exited, new Promise<"hung">((r) => setTimeout(() => r("hung"), 5_000))])
      expect(code).toBe(130)
      expect(Date.now() - sent).toBeLessThan(5_000)
    } finally {
      child.kill("SIGKILL")
    }
  })
})

describe("--pretty shows escape sequences from data, never sends them", () => {
  const EVIL = "evil\u001b]0;PWNED\u0007\u001b[2J\u009b31m\r"
  /** `trail args --pretty` without colour: no ESC byte (nor a C1 CSI, BEL or CR) may reach stdout. */
  const prettyOut = (root: string, args: ReadonlyArray<string>) => {
    const out = trail([...args, "--pretty"], { cwd: root, env: { NO_COLOR: "1" } })
    expect(out.code, out.stderr).toBe(0)
    expect(out.stdout).not.toMatch(/[\u001b\u0007\u009b\r]/)
    return out.stdout
  }

  it("a folder named with an OSC title and a clear-screen in list, next and status", () => {
    const root = gitRepo({ [`${EVIL}/a.ts`]: "x\n" })
    expect(trail(["init"], { cwd: root }).code).toBe(0)
    expect(prettyOut(root, ["next", "--task", "t", "--agent", "a"])).toContain("evil␛]0;PWNED␇␛[2J\\u009b31m␍")
    expect(prettyOut(root, ["list", "--task", "t"])).toContain("evil␛]0;PWNED␇␛[2J")
    // JSON stays exact.
    const items = trail(["list", "--task", "t"], { cwd: root }).json() as Array<{ path: string }>
    expect(items.map((i) => i.path)).toContain(EVIL)
  })

  it("a hook message in inbox and log", () => {
    const root = gitRepo({ "a.ts": "x\n" })
    expect(trail(["init"], { cwd: root }).code).toBe(0)
    const hook = (payload: Record<string, unknown>) =>
      expect(
        spawnSync(process.execPath, [TRAIL, "hook", "claude"], {
          cwd: root,
          input: JSON.stringify({ cwd: root, transcript_path: "/tmp/t.jsonl", ...payload }),
          env: { ...process.env, TRAIL_ROOT: "", TMUX: "", TMUX_PANE: "" },
          encoding: "utf8"
        }).status
      ).toBe(0)
    hook({ session_id: "evil-1111", hook_event_name: "SessionStart", source: "startup" })
    hook({ session_id: "evil-1111", hook_event_name: "Stop", last_assistant_message: `Done ${EVIL} here` })
    // JSON keeps the message as the hook sent it.
    const items = trail(["inbox"], { cwd: root }).json() as Array<{ headline: string }>
    expect(items[0]!.headline).toContain("Done evil\u001b]0;PWNED\u0007\u001b[2J")
    expect(prettyOut(root, ["inbox"])).toContain("␛]0;PWNED␇")
    expect(prettyOut(root, ["log"])).toContain("session.stopped")
  })
})

describe("minor usage errors", () => {
  it("TRAIL_ROOT or --root naming a subfolder of a root is refused, naming the root above it", () => {
    const root = initialised()
    const sub = path.join(root, "src")
    for (const out of [
      trail(["status", "--task", "t"], { cwd: root, env: { TRAIL_ROOT: sub } }),
      trail(["--root", sub, "status", "--task", "t"], { cwd: root })
    ]) {
      expect(out.code).toBe(1)
      expect(out.error().code).toBe("root-not-found")
      expect(out.error().message).toContain(`it is inside the root ${root}`)
      expect(out.error().message).toContain(`--root ${root}`)
    }
    // A folder under no root at all still says so.
    const lonely = gitRepo({})
    const none = trail(["status", "--task", "t"], { cwd: root, env: { TRAIL_ROOT: lonely } })
    expect(none.error().code).toBe("root-not-found")
    expect(none.error().message).not.toContain("inside the root")
  })

  it.each([
    [["done", "--task", "t", "--path", "src", "--found"]],
    [["done", "--task", "t", "--found", "--path", "src"]]
  ])("%j: a usage error naming --found and that it needs a number", (args) => {
    const root = initialised()
    const out = trail(args, { cwd: root })
    expect(out.code).toBe(2)
    expect(out.error().code).toBe("usage")
    expect(out.error().message).toMatch(/^--found: expected a whole number, got /)
  })

  it("an unknown option is still called unknown", () => {
    const root = initialised()
    expect(trail(["next", "--task", "t", "--bogus-flag"], { cwd: root }).error().message).toContain("unknown argument")
  })
})
