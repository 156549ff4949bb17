/**
 * Help and usage errors as a person meets them: the real `trail` binary, its real output.
 */
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { ArtifactKind } from "@trail/domain"
import { describe, expect, it } from "vitest"
import { trail, trailAsync } from "./helpers.js"

const cwd = fs.mkdtempSync(path.join(os.tmpdir(), "trail-help-"))

/** Every command path of the tree with its help page, read from the pages themselves (COMMANDS sections). */
const helpPages = async (
  prefix: ReadonlyArray<string> = []
): Promise<Array<{ words: Array<string>; code: number; stdout: string }>> => {
  const page = await trailAsync([...prefix, "--help"], { cwd, env: { COLUMNS: "80" } })
  const here = { words: [...prefix], code: page.code, stdout: page.stdout }
  const section = /\nCOMMANDS\n([\s\S]*?)\n\n/.exec(page.stdout)
  if (section === null) return [here]
  const names = section[1]!
    .split("\n")
    .filter((line) => /^ {2}\S/.test(line))
    .map((line) => line.trim().split(/\s+/)[0]!)
  // A few at a time: the machine is shared.
  const pages = [here]
  for (let i = 0; i < names.length; i += 4)
    for (const sub of await Promise.all(names.slice(i, i + 4).map((name) => helpPages([...prefix, name]))))
      pages.push(...sub)
  return pages
}

describe("trail --help", () => {
  it(
    "covers every command, each page in our words: no library boilerplate, no line wider than the terminal",
    { timeout: 120_000 },
    async () => {
      const pages = await helpPages()
      const paths = pages.map((p) => p.words)
      expect(paths.length).toBeGreaterThan(30)
      expect(paths).toContainEqual(["sweep", "new"])
      expect(paths).toContainEqual(["worker", "done"])
      expect(paths).toContainEqual(["results"])
      for (const { words, code, stdout } of pages) {
        expect(code, words.join(" ")).toBe(0)
        expect(stdout, words.join(" ")).not.toMatch(
          /A user-defined piece of text|This setting is optional|A true or false value|An integer\./
        )
        for (const line of stdout.split("\n"))
          expect(line.length, `${words.join(" ")}: ${line}`).toBeLessThanOrEqual(80)
        // Every flag and argument has a description of its own (beside it, or below a long one).
        const lines = stdout.split("\n")
        lines.forEach((line, i) => {
          if (!/^ {2}(--|<)/.test(line)) return
          const described = /\S\s{2,}\S/.test(line.trim()) || /^ {6,}\S/.test(lines[i + 1] ?? "")
          expect(described, `${words.join(" ")}: ${line}`).toBe(true)
        })
      }
    }
  )

  it("shows each flag with its value and its default, wrapped to $COLUMNS", () => {
    const next = trail(["next", "--help"], { cwd, env: { COLUMNS: "60" } }).stdout
    expect(next).toContain("trail next --task TASK [--agent AGENT]")
    expect(next).toMatch(/--strategy weighted\|round-robin\|random/)
    expect(next).toMatch(/\(default:\s+the\s+task.s\s+last\s+--strategy,\s+then\s+strategy\.default\)/)
    for (const line of next.split("\n")) expect(line.length).toBeLessThanOrEqual(60)
    const supervise = trail(["supervise", "--help"], { cwd }).stdout
    expect(supervise).toMatch(/--workers N\s+Fleet mode: how many workers run at once \(default: 3/)
    expect(supervise).toMatch(/--as KIND\s+Fleet mode: the workers' kind \(default: default\)/)
    // Spelt out in the command tree (which loads no library): the same list as the domain's.
    const search = trail(["search", "--help"], { cwd, env: { COLUMNS: "200" } }).stdout
    expect(search).toContain(`Only artifacts of this kind: ${ArtifactKind.literals.join(", ")}.`)
  })

  it("bare trail prints the command list and exits 2; a bare group prints its commands and exits 2", () => {
    const bare = trail([], { cwd })
    expect(bare.code).toBe(2)
    expect(bare.stdout).toMatch(/COMMANDS\n {2}init\s+Scan the root/)
    expect(bare.stdout).toMatch(/\n {2}results\s+/)
    const sweep = trail(["sweep"], { cwd })
    expect(sweep.code).toBe(2)
    expect(sweep.stdout).toMatch(/COMMANDS\n {2}new\s+Open the task's next sweep[\s\S]*\n {2}show\s+/)
  })

  it("an unknown command gets a did-you-mean, exit 2", () => {
    const typo = trail(["nxet"], { cwd })
    expect(typo.code).toBe(2)
    expect(typo.error()).toEqual({ code: "usage", message: 'unknown command "nxet" for "trail"; did you mean next?' })
    const nested = trail(["sweep", "nwe", "--task", "t"], { cwd })
    expect(nested.code).toBe(2)
    expect(nested.error().message).toContain("did you mean new?")
    expect(trail(["zzzzzz"], { cwd }).error().message).toContain("trail --help")
  })

  it("a bad flag value names the flag and what it accepts, exit 2", () => {
    const strategy = trail(["next", "--task", "t", "--strategy", "weigthed"], { cwd })
    expect(strategy.code).toBe(2)
    expect(strategy.error().code).toBe("usage")
    expect(strategy.error().message).toBe(
      '--strategy: "weigthed" is not one of weighted, round-robin, random; did you mean weighted?'
    )
    const found = trail(["done", "--task", "t", "--path", "a", "--found=lots"], { cwd })
    expect(found.code).toBe(2)
    expect(found.error().message).toBe('--found: expected a whole number, got "lots"')
    for (const args of [
      ["done", "--task", "t", "--path", "a", "--found", "1000000001"],
      ["worker", "done", "--outcome", "clean", "--summary", "s", "--found", "-3"]
    ]) {
      const outOfRange = trail(args, { cwd })
      expect(outOfRange.code).toBe(2)
      expect(outOfRange.error().message).toBe(`--found must be between 0 and 1000000000, got ${args.at(-1)}`)
    }
    const state = trail(["list", "--task", "t", "--state", "finished"], { cwd })
    expect(state.code).toBe(2)
    expect(state.error().message).toContain("--state")
  })
})
