import { execFileSync, spawn, spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { afterAll } from "vitest"

/** The built `trail` executable (tests run after `npm run build`). */
export const TRAIL = path.resolve(import.meta.dirname, "..", "bin", "trail.cjs")

export interface Run {
  readonly code: number
  readonly stdout: string
  readonly stderr: string
  /** stdout parsed as JSON (throws if it is not exactly one JSON value). */
  readonly json: () => unknown
  /** stderr parsed as the JSON error contract. */
  readonly error: () => { readonly code: string; readonly message: string }
}

/**
 * The user's config folder for every `trail` a test runs (user kinds, trusted kinds): a temp
 * folder per test file, so tests neither read nor write the real `~/.config/trail`.
 */
export const CONFIG_HOME = fs.mkdtempSync(path.join(os.tmpdir(), "trail-config-"))

/**
 * The environment every `trail` a test starts runs in: the test's own config folders (trail's
 * user kinds under XDG_CONFIG_HOME, Claude Code's user settings under CLAUDE_CONFIG_DIR), so no
 * test reads or writes the real `~/.config/trail` or `~/.claude`, and no trail variable of the
 * shell that runs the tests.
 */
export const cleanEnv = () => {
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    XDG_CONFIG_HOME: CONFIG_HOME,
    CLAUDE_CONFIG_DIR: path.join(CONFIG_HOME, "claude")
  }
  for (const key of ["TRAIL_ROOT", "TRAIL_AGENT", "TRAIL_WORKER_ID", "NO_COLOR"]) delete env[key]
  return env
}

export const trail = (
  args: ReadonlyArray<string>,
  options: { readonly cwd: string; readonly env?: Record<string, string> }
): Run => {
  const result = spawnSync(process.execPath, [TRAIL, ...args], {
    cwd: options.cwd,
    env: { ...cleanEnv(), ...options.env },
    encoding: "utf8"
  })
  const stdout = result.stdout
  const stderr = result.stderr
  return {
    code: result.status ?? -1,
    stdout,
    stderr,
    json: () => JSON.parse(stdout),
    error: () => {
      const parsed: unknown = JSON.parse(stderr)
      if (typeof parsed !== "object" || parsed === null || !("error" in parsed))
        throw new Error(`not an error: ${stderr}`)
      return parsed.error as { code: string; message: string }
    }
  }
}

/** Runs `trail` asynchronously (for tests that race processes). */
export const trailAsync = (
  args: ReadonlyArray<string>,
  options: { readonly cwd: string; readonly env?: Record<string, string> }
) =>
  new Promise<{ code: number; stdout: string; stderr: string }>((resolve, reject) => {
    const child = spawn(process.execPath, [TRAIL, ...args], {
      cwd: options.cwd,
      env: { ...cleanEnv(), ...options.env }
    })
    let stdout = ""
    let stderr = ""
    child.stdout.on("data", (d) => (stdout += d))
    child.stderr.on("data", (d) => (stderr += d))
    child.on("error", reject)
    child.on("close", (code) => resolve({ code: code ?? -1, stdout, stderr }))
  })

const made: Array<string> = []
afterAll(() => {
  for (const dir of [...made, CONFIG_HOME]) fs.rmSync(dir, { recursive: true, force: true })
})

/** A temporary git repository holding `files`; removed after the test file. */
export const gitRepo = (files: Record<string, string>): string => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), "trail-e2e-"))
  made.push(root)
  for (const [file, content] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(root, file)), { recursive: true })
    fs.writeFileSync(path.join(root, file), content)
  }
  const git = (...args: Array<string>) =>
    execFileSync("git", args, {
      cwd: root,
      env: {
        ...process.env,
        GIT_AUTHOR_NAME: "t",
        GIT_AUTHOR_EMAIL: "t@t",
        GIT_COMMITTER_NAME: "t",
        GIT_COMMITTER_EMAIL: "t@t"
      }
    })
  git("init", "-q")
  git("add", "-A")
  git("commit", "-qm", "initial", "--allow-empty")
  return root
}

/** `n` folders `area{i/100}/mod{i}`, one file each. */
export const manyFolders = (n: number): Record<string, string> =>
  Object.fromEntries(
    Array.from({ length: n }, (_, i) => [`area${Math.floor(i / 100)}/mod${i}/file.ts`, `export const x = ${i}\n`])
  )

/**
 * Polls `check` every 100 ms of real time (the processes under test run in real time) until it
 * returns something other than undefined/false; fails after `timeoutMs`, saying `what` and, if
 * given, `detail()` (e.g. the screen a TUI shows).
 */
export const waitFor = async <A>(
  check: () => A | undefined | false,
  what: string,
  timeoutMs = 20_000,
  detail?: () => string
): Promise<A> => {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const value = check()
    if (value !== undefined && value !== false) return value
    if (Date.now() > deadline)
      throw new Error(`timed out waiting for ${what}${detail === undefined ? "" : `:\n${detail()}`}`)
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
}

/**
 * Waits (15 s) until a terminal's screen, as `capture` reads it (e.g. tmux `capture-pane -p -J`),
 * passes `check`; resolves with that screen, or fails naming `what` and showing the last one.
 */
export const untilScreen = (capture: () => string) => (check: (text: string) => boolean, what: string) =>
  waitFor(
    () => {
      const text = capture()
      return check(text) ? text : undefined
    },
    what,
    15_000,
    capture
  )
