#!/usr/bin/env node
// The `trail` executable: loads the bundle built by `npm run build` (run by `npm ci`'s prepare).
import("../dist/trail.mjs").catch((error) => {
  if (error && error.code === "ERR_MODULE_NOT_FOUND" && String(error.message).includes("trail.mjs")) {
    process.stderr.write(
      JSON.stringify({ error: { code: "not-built", message: "trail is not built: run `npm run build` at the repository root" } }) + "\n"
    )
    process.exit(1)
  }
  throw error
})
