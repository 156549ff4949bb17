import { assert, describe, it } from "@effect/vitest"
import { Either } from "effect"
import { decodeConfig, defaultConfig } from "../src/index.js"

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
        max_attempts: 2
      }
    })
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
      [{ worker: { tmux_socket: "a b" } }, "worker.tmux_socket", '"a b"']
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

  it("says why an unknown key is rejected", () => {
    assert.include(rejection({ lease: { ttl: 5 } }).reason, "not a known setting")
  })
})
