import { spawn, spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { describe, expect, it } from "vitest"
import { cleanEnv, gitRepo, manyFolders, trail, TRAIL } from "./helpers.js"

const SKILL = path.resolve(import.meta.dirname, "..", "..", "..", "skills", "trail", "SKILL.md")

/** The shell loop exactly as SKILL.md gives it (its first ```bash block). */
const skillLoop = () => {
  const match = /```bash\n([\s\S]*?)```/.exec(fs.readFileSync(SKILL, "utf8"))
  if (match === null) throw new Error("SKILL.md has no bash block")
  return match[1]!
}

/** A bin dir with `trail` (logging every hand-out) and, where missing, a `jq -r .field` stand-in. */
const shims = (handedOut: string) => {
  const bin = fs.mkdtempSync(path.join(os.tmpdir(), "trail-shims-"))
  fs.writeFileSync(
    path.join(bin, "trail"),
    `#!/usr/bin/env bash\nout=$("${process.execPath}" "${TRAIL}" "$@"); code=$?\n` +
      `if [ "$1" = next ] && [ $code = 0 ]; then printf '%s\\n' "$out" >> "${handedOut}"; fi\n` +
      `printf '%s\\n' "$out"; exit $code\n`,
    { mode: 0o755 }
  )
  const hasJq = fs.existsSync("/usr/bin/jq") || fs.existsSync("/usr/local/bin/jq")
  if (!hasJq) {
    fs.writeFileSync(
      path.join(bin, "jq"),
      `#!/usr/bin/env bash\n# stand-in for: jq -r .field\nfield=\${2#.}\n"${process.execPath}" -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>process.stdout.write(String(JSON.parse(s)[process.argv[1]])+"\\n"))' "$field"\n`,
      { mode: 0o755 }
    )
  }
  return bin
}

describe("skills/trail/SKILL.md", () => {
  it(
    "its shell loop, run by 4 agents at once, drains the sweep with no folder handed out twice",
    { timeout: 180_000 },
    async () => {
      const folders = 40
      const root = gitRepo(manyFolders(folders))
      trail(["init"], { cwd: root })
      const handedOut = path.join(root, "handed-out.ndjson")
      const bin = shims(handedOut)
      const loop = skillLoop()
      const codes = await Promise.all(
        ["a1", "a2", "a3", "a4"].map(
          (agent) =>
            new Promise<number>((resolve, reject) => {
              const child = spawn("bash", ["-c", loop.replace("agent=a1", `agent=${agent}`)], {
                cwd: root,
                env: { ...process.env, PATH: `${bin}:${process.env["PATH"]}` },
                stdio: ["ignore", "ignore", "inherit"]
              })
              child.on("error", reject)
              child.on("close", (code) => resolve(code ?? -1))
            })
        )
      )
      expect(codes).toEqual([0, 0, 0, 0])
      const paths = fs
        .readFileSync(handedOut, "utf8")
        .trim()
        .split("\n")
        .map((line) => (JSON.parse(line) as { path: string }).path)
      expect(paths).toHaveLength(folders)
      expect(new Set(paths).size).toBe(folders)
      expect(trail(["status", "--task", "p0-bugs"], { cwd: root }).json()).toMatchObject({
        sweep_status: "complete",
        done: folders
      })
      fs.rmSync(bin, { recursive: true, force: true })
    }
  )
})

const README = path.resolve(import.meta.dirname, "..", "..", "..", "README.md")
const CHECKOUT = path.resolve(import.meta.dirname, "..", "..", "..")
const SCRIPTED_AGENT = path.join(CHECKOUT, "scripts", "scripted-agent.sh")

/** The ```bash blocks of a markdown file, in order. */
const bashBlocks = (file: string): Array<string> =>
  [...fs.readFileSync(file, "utf8").matchAll(/```bash\n([\s\S]*?)```/g)].map((m) => m[1]!)

/** The ```toml blocks of a markdown file. */
const tomlBlocks = (file: string): Array<string> =>
  [...fs.readFileSync(file, "utf8").matchAll(/```toml\n([\s\S]*?)```/g)].map((m) => m[1]!)

const bash = (script: string, cwd: string, env: Record<string, string> = {}) =>
  spawnSync("bash", ["-c", script], {
    cwd,
    env: { ...cleanEnv(), ...env },
    encoding: "utf8",
    // A block that hangs fails the test instead of the run.
    timeout: 120_000
  })

describe("skills/trail/SKILL.md's loop on error", () => {
  it("prints trail's error message, not an empty one, and exits 1", () => {
    // No trail root here: `trail next` fails with root-not-found (JSON on stderr).
    const bare = fs.mkdtempSync(path.join(os.tmpdir(), "trail-noroot-"))
    const bin = shims(path.join(bare, "handed-out.ndjson"))
    const result = bash(skillLoop(), bare, { PATH: `${bin}:${process.env["PATH"]}` })
    expect(result.status).toBe(1)
    expect(result.stderr).toMatch(
      /^trail failed \(exit 1\): \{"error":\{"code":"root-not-found","message":"no trail root/m
    )
    fs.rmSync(bare, { recursive: true, force: true })
    fs.rmSync(bin, { recursive: true, force: true })
  })
})

describe("skills/trail/SKILL.md's loop when its lease lapsed", () => {
  it("drops a result refused with not-lease-holder and goes on to the next folder", () => {
    // One folder, a 1 s lease: before this agent reports, its lease lapses and an intruder
    // claims and finishes the folder, so the agent's `done` is refused as not-lease-holder.
    const root = gitRepo({ ...manyFolders(1), ".trail.toml": "[lease]\nttl_secs = 1\n" })
    trail(["init"], { cwd: root })
    const bin = shims(path.join(root, "handed-out.ndjson"))
    const real = path.join(bin, "trail-real")
    fs.renameSync(path.join(bin, "trail"), real)
    fs.writeFileSync(
      path.join(bin, "trail"),
      `#!/usr/bin/env bash\nif [ "$1" = done ] && [ ! -e "${root}/.intruded" ]; then\n` +
        `  touch "${root}/.intruded"; sleep 1.5\n` +
        `  p=$("${real}" next --task p0-bugs --agent intruder | sed 's/.*"path":"\\([^"]*\\)".*/\\1/')\n` +
        `  "${real}" done --task p0-bugs --path "$p" --agent intruder --clean >/dev/null\nfi\nexec "${real}" "$@"\n`,
      { mode: 0o755 }
    )
    const result = bash(skillLoop(), root, { PATH: `${bin}:${process.env["PATH"]}` })
    expect(result.stderr).toBe("")
    expect(result.status).toBe(0)
    expect(fs.existsSync(path.join(root, ".intruded"))).toBe(true)
    expect(trail(["list", "--task", "p0-bugs"], { cwd: root }).json()).toMatchObject([
      { status: "done", agent: "intruder" }
    ])
    expect(trail(["status", "--task", "p0-bugs"], { cwd: root }).json()).toMatchObject({
      sweep_status: "complete",
      done: 1
    })
    fs.rmSync(bin, { recursive: true, force: true })
  })
})

describe("README.md, as written", () => {
  it("its first block is the install (npm ci); every other bash block runs", () => {
    const blocks = bashBlocks(README)
    expect(blocks).toHaveLength(4)
    expect(blocks[0]).toMatch(/^npm ci && npm run demo/)
  })

  it(
    "'Use it', then 'Run a fleet' with the reviewer kind it creates, then 'The attention loop', in one repository",
    { timeout: 180_000 },
    () => {
      const [, useIt, fleet, attention] = bashBlocks(README) as [string, string, string, string]
      // src/api is the heaviest folder, so the README's `trail next` hands it out, as its comment says.
      const repo = gitRepo({
        "src/api/handler.ts": "// TODO: check the write path\n",
        "src/api/routes.ts": "export {}\n",
        "src/api/schema.ts": "export {}\n",
        "src/db/store.ts": "export {}\n",
        "lib/x.ts": "export {}\n"
      })
      // The one substitution: the reader's repository is a temporary one. Its .trail.toml points
      // worker.command at the scripted agent (the reader's is `claude`) and runs workers as processes.
      fs.writeFileSync(
        path.join(repo, ".trail.toml"),
        `[worker]\ncommand = ["sh", ${JSON.stringify(SCRIPTED_AGENT)}]\nsubstrate = "process"\nexit_grace_secs = 1\n`
      )
      expect(useIt).toContain("cd ~/src/your-repo")
      const first = bash(`set -e\n${useIt.replace("cd ~/src/your-repo", `cd ${JSON.stringify(repo)}`)}`, CHECKOUT)
      expect(first.status, first.stderr).toBe(0)
      const outputs = first.stdout.trim().split("\n")
      expect(JSON.parse(outputs[1]!)).toMatchObject({ status: "ok", task: "p0-bugs", path: "src/api" })
      expect(JSON.parse(outputs[2]!)).toMatchObject({ status: "done", path: "src/api" })
      expect(first.stdout).toMatch(/p0-bugs · sweep 1/)

      const path_ = `${path.join(CHECKOUT, "node_modules", ".bin")}:${process.env["PATH"]}`
      const second = bash(`set -e\n${fleet}`, repo, { PATH: path_, SCRIPTED_AGENT_DELAY: "0.1" })
      expect(second.status, second.stderr).toBe(0)
      // `trail kinds trust` prints what it trusted (the kind, and the worker.command this
      // repository's .trail.toml sets), then supervise its summary.
      const printed = second.stdout.split("\n")
      expect(JSON.parse(printed[0]!)).toMatchObject({
        trusted: [{ name: "reviewer" }, { name: "worker.command", source: path.join(repo, ".trail.toml") }]
      })
      const summary = JSON.parse(printed[1]!) as { sweep_complete: boolean; failed: number }
      expect(summary).toMatchObject({ sweep_complete: true, failed: 0 })
      expect(second.stdout).toContain("p0-bugs · sweep 1")
      const workers = trail(["workers"], { cwd: repo }).json() as Array<{ kind: string; state: string }>
      expect(workers.length).toBeGreaterThan(0)
      expect(workers.every((w) => w.kind === "reviewer" && w.state === "ready")).toBe(true)

      // The attention loop: `claude` is the reader's own agent (a stand-in here); w3, 8f2c1e44 and
      // i42 are ids from the reader's own sessions, which this repository does not have, so those
      // lines must reach the inbox and answer item-not-found; --tui needs a terminal.
      const bin = fs.mkdtempSync(path.join(os.tmpdir(), "trail-claude-"))
      fs.writeFileSync(path.join(bin, "claude"), "#!/bin/sh\nexit 0\n", { mode: 0o755 })
      fs.writeFileSync(path.join(repo, "answer.txt"), "use the v2 API\n")
      const lines = attention.split("\n").filter((l) => l.trim() !== "")
      expect(lines).toHaveLength(8)
      const ran = lines.map((line) => ({ line, result: bash(line, repo, { PATH: `${bin}:${path_}` }) }))
      const codeOf = (r: (typeof ran)[number]) =>
        r.result.stderr === "" ? null : (JSON.parse(r.result.stderr) as { error: { code: string } }).error.code
      for (const r of ran) {
        if (/trail (reply w3|reply 8f2c1e44|jump i42)/.test(r.line)) {
          expect(r.result.status, r.line).toBe(1)
          expect(codeOf(r), r.line).toBe("item-not-found")
        } else if (r.line.includes("--tui")) {
          expect(r.result.status, r.line).toBe(2)
          expect(r.result.stderr, r.line).toContain("needs a terminal")
        } else expect(r.result.status, `${r.line}\n${r.result.stderr}`).toBe(0)
      }
      expect(fs.existsSync(path.join(repo, ".claude", "settings.json"))).toBe(true)
      fs.rmSync(bin, { recursive: true, force: true })
    }
  )

  it("its configuration block is a valid .trail.toml", () => {
    const [toml] = tomlBlocks(README)
    const repo = gitRepo({ "src/a.ts": "export {}\n" })
    fs.writeFileSync(path.join(repo, ".trail.toml"), toml!)
    const init = trail(["init"], { cwd: repo })
    expect(init.code, init.stderr).toBe(0)
    expect(trail(["doctor"], { cwd: repo }).stderr).not.toContain("config")
  })

  it("every command its tables name exists with the flags they show", () => {
    const text = fs.readFileSync(README, "utf8")
    const cells = [...text.matchAll(/^\| `(trail [^|]*?)`( \/ `(trail [^|]*?)`)? \|/gm)].flatMap((m) =>
      [m[1], m[3]].filter((c): c is string => c !== undefined)
    )
    expect(cells.length).toBeGreaterThan(20)
    for (const cell of cells) {
      const words = cell.replace(/\\\|/g, "|").split(/\s+/).slice(1)
      const command = words.filter((w, i) => /^[a-z]+$/.test(w) && words.slice(0, i).every((p) => /^[a-z]+$/.test(p)))
      const help = trail([...command, "--help"], { cwd: os.tmpdir() })
      expect(help.code, cell).toBe(0)
      for (const flag of cell.match(/--[a-z-]+/g) ?? []) expect(help.stdout, `${cell}: ${flag}`).toContain(flag)
    }
  })
})
