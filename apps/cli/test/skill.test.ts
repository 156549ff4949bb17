import { spawn } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { describe, expect, it } from "vitest"
import { gitRepo, manyFolders, trail, TRAIL } from "./helpers.js"

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
