import { assert, describe, it } from "@effect/vitest"
import { Either } from "effect"
import { commandTemplateProblem, decodeConfig, defaultConfig, runsShell } from "../src/index.js"

const decode = (raw: unknown) => decodeConfig(raw, ".trail.toml")

const rejection = (raw: unknown) => {
  const result = decode(raw)
  if (Either.isRight(result)) return assert.fail(`expected ${JSON.stringify(raw)} to be rejected`)
  return result.left
}

describe("config", () => {
  it("has the SPEC defaults when the file is empty or missing", () => {
    assert.deepStrictEqual(decode({}), Either.right(defaultConfig))
    assert.deepStrictEqual(defaultConfig, {
      strategy: {
        default: "weighted",
        alpha: 0.6,
        half_life_secs: 604800,
        seed: 42,
        static_signal: "file_count",
        outcome_weight: 0
      },
      lease: { ttl_secs: 900 },
      scan: { respect_gitignore: true, min_files: 1, include: [], exclude: [] },
      worker: {
        command: ["claude", "{prompt}"],
        substrate: "auto",
        tmux_socket: "trail",
        session: "trail-workers",
        max_active: 8,
        max_spawn_depth: 2,
        lease_secs: 60,
        exit_grace_secs: 10,
        max_attempts: 2,
        max_start_failures: 3,
        keep_finished_secs: 300
      },
      checkpoint: {
        consumed_retention_days: 7,
        armed_ttl_secs: 86_400,
        on_precompact: false,
        max_transcript_bytes: 134_217_728,
        max_line_bytes: 4_194_304,
        max_artifacts_per_kind: 50,
        output_lines: 5
      },
      history: { keep_sweeps: 10 }
    })
    // Unset: `--summarize` has no program to run.
    assert.isFalse("summarize_command" in defaultConfig.checkpoint)
  })

  it("keeps given values and fills the rest of a section", () => {
    const result = decode({ strategy: { alpha: 0.25, default: "random" }, lease: { ttl_secs: 30 } })
    assert.isTrue(Either.isRight(result))
    if (Either.isRight(result)) {
      assert.strictEqual(result.right.strategy.alpha, 0.25)
      assert.strictEqual(result.right.strategy.default, "random")
      assert.strictEqual(result.right.strategy.seed, 42)
      assert.strictEqual(result.right.lease.ttl_secs, 30)
    }
  })

  it("names every choice of a setting that takes one of a few values", () => {
    const cases: Array<[unknown, string]> = [
      [{ strategy: { default: "weighed" } }, '"weighted", "round-robin", "random"'],
      [{ strategy: { static_signal: "churn " } }, '"file_count", "bytes", "churn"'],
      [{ worker: { substrate: "screen" } }, '"auto", "tmux", "process"']
    ]
    for (const [raw, choices] of cases) assert.include(rejection(raw).message, `must be one of ${choices}`)
  })

  it("names the key and the rejected value", () => {
    const cases: Array<[unknown, string, string]> = [
      [{ lease: { ttl_secs: 0 } }, "lease.ttl_secs", "0"],
      [{ lease: { ttl_secs: -5 } }, "lease.ttl_secs", "-5"],
      [{ strategy: { alpha: 2 } }, "strategy.alpha", "2"],
      [{ strategy: { outcome_weight: -0.1 } }, "strategy.outcome_weight", "-0.1"],
      [{ strategy: { half_life_secs: 0.5 } }, "strategy.half_life_secs", "0.5"],
      [{ strategy: { default: "fastest" } }, "strategy.default", '"fastest"'],
      [{ strategy: { static_signal: "stars" } }, "strategy.static_signal", '"stars"'],
      [{ strategy: { seed: 1.5 } }, "strategy.seed", "1.5"],
      [{ scan: { min_files: -1 } }, "scan.min_files", "-1"],
      [{ scan: { include: "src/**" } }, "scan.include", '"src/**"'],
      [{ scan: { respect_gitignore: "yes" } }, "scan.respect_gitignore", '"yes"'],
      [{ lease: { ttl: 5 } }, "lease.ttl", "5"],
      [{ leases: {} }, "leases", "{}"],
      [{ strategy: 3 }, "strategy", "3"],
      [{ worker: { substrate: "docker" } }, "worker.substrate", '"docker"'],
      [{ worker: { max_active: 0 } }, "worker.max_active", "0"],
      [{ worker: { command: [] } }, "worker.command", "[]"],
      [{ worker: { tmux_socket: "a b" } }, "worker.tmux_socket", '"a b"'],
      [{ lease: { ttl_secs: 1e308 } }, "lease.ttl_secs", "1e+308"],
      [{ lease: { ttl_secs: 30 * 86_400 + 1 } }, "lease.ttl_secs", "2592001"],
      [{ strategy: { half_life_secs: 1e308 } }, "strategy.half_life_secs", "1e+308"],
      [{ strategy: { seed: 1e308 } }, "strategy.seed", "1e+308"],
      [{ scan: { min_files: 1e308 } }, "scan.min_files", "1e+308"],
      [{ worker: { lease_secs: 1e308 } }, "worker.lease_secs", "1e+308"],
      [{ worker: { exit_grace_secs: 2.5 } }, "worker.exit_grace_secs", "2.5"],
      [{ worker: { max_attempts: 1e308 } }, "worker.max_attempts", "1e+308"],
      [{ scan: { exclude: Array.from({ length: 10_001 }, (_, i) => `g${i}`) } }, "scan.exclude", "[10001 items]"],
      [{ worker: { max_start_failures: 0 } }, "worker.max_start_failures", "0"],
      [{ worker: { keep_finished_secs: -1 } }, "worker.keep_finished_secs", "-1"],
      [{ checkpoint: { consumed_retention_days: -1 } }, "checkpoint.consumed_retention_days", "-1"],
      [{ history: { keep_sweeps: 0 } }, "history.keep_sweeps", "0"],
      [{ history: { keep_sweeps: 2.5 } }, "history.keep_sweeps", "2.5"],
      [{ history: { keep_sweeps: "ten" } }, "history.keep_sweeps", '"ten"'],
      [{ checkpoint: { consumed_retention_days: 1.5 } }, "checkpoint.consumed_retention_days", "1.5"],
      [{ checkpoint: { on_precompact: "yes" } }, "checkpoint.on_precompact", '"yes"'],
      [{ checkpoint: { summarize_command: "" } }, "checkpoint.summarize_command", '""'],
      [
        { checkpoint: { summarize_command: 'sh -c "{prompt}"' } },
        "checkpoint.summarize_command",
        '"sh -c \\"{prompt}\\""'
      ],
      [{ checkpoint: { max_transcript_bytes: 10 } }, "checkpoint.max_transcript_bytes", "10"],
      [{ checkpoint: { max_line_bytes: 1e308 } }, "checkpoint.max_line_bytes", "1e+308"],
      [{ checkpoint: { max_artifacts_per_kind: 0 } }, "checkpoint.max_artifacts_per_kind", "0"],
      [{ checkpoint: { output_lines: -1 } }, "checkpoint.output_lines", "-1"],
      [{ checkpoint: { retention_days: 7 } }, "checkpoint.retention_days", "7"]
    ]
    for (const [raw, key, value] of cases) {
      const error = rejection(raw)
      assert.strictEqual(error.key, key, JSON.stringify(raw))
      assert.strictEqual(error.value, value, JSON.stringify(raw))
      assert.include(error.message, key)
      assert.include(error.message, ".trail.toml")
    }
  })

  it("refuses a shell-string worker.command with a placeholder and says how to write it", () => {
    const error = rejection({ worker: { command: 'claude "{prompt}"' } })
    assert.strictEqual(error.key, "worker.command")
    assert.include(error.reason, "argv list")
    assert.include(error.reason, '"$TRAIL_PROMPT"')
    assert.isTrue(Either.isRight(decode({ worker: { command: 'claude "$TRAIL_PROMPT"' } })))
    // docs/fleet.md's aider example
    assert.isTrue(Either.isRight(decode({ worker: { command: 'aider --yes --message "$(cat "$TRAIL_TASK_FILE")"' } })))
    assert.isTrue(Either.isRight(decode({ worker: { command: ["claude", "{prompt}"] } })))
  })

  it("refuses a placeholder in any argument of a command that runs a shell, however the shell is reached", () => {
    for (const command of [
      ["bash", "-o", "pipefail", "-c", "echo {prompt} > out.txt"],
      ["env", "sh", "-c", "echo {prompt}"],
      ["/usr/bin/env", "bash", "-c", "echo {prompt}"],
      ["env", "-i", "FOO=1", "-u", "BAR", "dash", "-c", "agent {task_file}"],
      ["env", "-S", "sh -c 'echo {prompt}'"],
      ["sh", "+x", "-c", "echo {prompt}"],
      ["sh", "script.sh", "{prompt}"],
      ["/bin/bash", "-c", 'agent "$1"', "agent", "{prompt}"],
      ["busybox", "sh", "-c", "echo {root}"]
    ]) {
      const problem = commandTemplateProblem(command)
      assert.isDefined(problem, JSON.stringify(command))
      assert.include(problem, "argv list", JSON.stringify(command))
      assert.isTrue(runsShell(command), JSON.stringify(command))
      assert.strictEqual(rejection({ worker: { command } }).key, "worker.command", JSON.stringify(command))
    }
    // A shell reading the values from its environment, and a program that is not a shell, are fine.
    for (const command of [
      ["bash", "-o", "pipefail", "-c", 'agent "$TRAIL_PROMPT"'],
      ["env", "FOO=1", "claude", "{prompt}"],
      ["/usr/local/bin/codex", "exec", "{prompt}"],
      ["shellcheck", "{path}"]
    ])
      assert.isUndefined(commandTemplateProblem(command), JSON.stringify(command))
    assert.isFalse(runsShell(["env", "FOO=1", "claude", "{prompt}"]))
  })

  it("says the allowed range of an out-of-range number and the cap of a glob list", () => {
    assert.include(rejection({ lease: { ttl_secs: 1e308 } }).reason, "30 days")
    assert.include(rejection({ worker: { max_attempts: 0 } }).reason, "from 1 to 100")
    assert.include(rejection({ scan: { include: Array(10_001).fill("a") } }).reason, "at most 10000")
    assert.isTrue(
      Either.isRight(decode({ scan: { exclude: Array(10_000).fill("a") }, lease: { ttl_secs: 2_592_000 } }))
    )
  })

  it("reads the [checkpoint] section and keeps a summarize_command", () => {
    const result = decode({
      checkpoint: { consumed_retention_days: 0, on_precompact: true, summarize_command: ["summarize", "--short"] }
    })
    if (Either.isLeft(result)) return assert.fail(result.left.message)
    assert.strictEqual(result.right.checkpoint.consumed_retention_days, 0)
    assert.isTrue(result.right.checkpoint.on_precompact)
    assert.deepStrictEqual(result.right.checkpoint.summarize_command, ["summarize", "--short"])
    assert.strictEqual(result.right.checkpoint.output_lines, 5)
  })

  it("says why an unknown key is rejected", () => {
    assert.include(rejection({ lease: { ttl: 5 } }).reason, "not a known setting")
  })
})
