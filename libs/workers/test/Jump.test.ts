import * as NodeContext from "@effect/platform-node/NodeContext"
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import * as Tmux from "../src/Tmux.js"

describe("jumping to a pane", () => {
  it("knows the server $TMUX names, by socket path (-S) or socket name (-L)", () => {
    const env = "/tmp/tmux-1000/trail-x,4242,0"
    assert.isTrue(Tmux.isServerOf({ name: "trail-x" }, env))
    assert.isFalse(Tmux.isServerOf({ name: "trail" }, env))
    assert.isTrue(Tmux.isServerOf({ path: "/tmp/tmux-1000/trail-x" }, env))
    assert.isFalse(Tmux.isServerOf({ path: "/tmp/tmux-1000/default" }, env))
  })

  it("outside the server, names the command that attaches", () => {
    assert.deepStrictEqual(Tmux.attachCommand({ name: "trail" }, "@3"), [
      "tmux",
      "-L",
      "trail",
      "attach-session",
      "-t",
      "@3"
    ])
    assert.deepStrictEqual(Tmux.attachCommand({ path: "/s" }, "%7"), ["tmux", "-S", "/s", "attach-session", "-t", "%7"])
  })

  it.effect("switching fails with tmux's own words when there is no such server or client", () =>
    Effect.gen(function* () {
      const error = yield* Effect.flip(Tmux.switchClient({ name: `trail-test-jump-${process.pid}` }, "nowhere:1"))
      assert.strictEqual(error._tag, "TmuxError")
      assert.include(error.message, "tmux switch-client failed")
    }).pipe(Effect.provide(NodeContext.layer))
  )
})
