/**
 * The user's folders the CLI derives from the home folder (Claude Code's user settings, trail's
 * user kinds): the home is the Host's, the overrides are the Env's, so fixed values decide.
 */
import * as NodeContext from "@effect/platform-node/NodeContext"
import { Env, Host } from "@trail/domain"
import { Effect, Layer } from "effect"
import { describe, expect, it } from "vitest"
import { claudeUserDir, userKindsDir } from "../src/Common.js"

const on = (vars: Record<string, string>) =>
  Layer.mergeAll(NodeContext.layer, Env.fixed(vars), Host.fixed({ hostname: "here", pid: 1, home: "/home/fixed" }))

const both = Effect.all({ claude: claudeUserDir, kinds: userKindsDir })

describe("the user's folders", () => {
  it("are under the Host's home unless the environment names them; set but empty counts as unset", () => {
    expect(Effect.runSync(both.pipe(Effect.provide(on({}))))).toEqual({
      claude: "/home/fixed/.claude",
      kinds: "/home/fixed/.config/trail/kinds"
    })
    expect(
      Effect.runSync(both.pipe(Effect.provide(on({ CLAUDE_CONFIG_DIR: "/c", XDG_CONFIG_HOME: "/x", HOME: "/h" }))))
    ).toEqual({ claude: "/c", kinds: "/x/trail/kinds" })
    expect(Effect.runSync(both.pipe(Effect.provide(on({ CLAUDE_CONFIG_DIR: "", XDG_CONFIG_HOME: "" }))))).toEqual({
      claude: "/home/fixed/.claude",
      kinds: "/home/fixed/.config/trail/kinds"
    })
  })
})
