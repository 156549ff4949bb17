import { defineConfig } from "vitest/config"

/** The whole workspace in one run: `npx vitest run` from the root. */
export default defineConfig({
  test: {
    projects: ["libs/*", "apps/*"]
  }
})
