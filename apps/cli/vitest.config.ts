import { defineProject, mergeConfig } from "vitest/config"
import { shared } from "../../vitest.shared.js"

// The CLI tests start real processes (one of them races six agent loops over both cores):
// run the files one after another so no worker starves vitest's RPC.
export default mergeConfig(
  shared,
  defineProject({ test: { name: "cli", fileParallelism: false, setupFiles: ["./test/setup.ts"] } })
)
