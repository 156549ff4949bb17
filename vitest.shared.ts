import { defineConfig } from "vitest/config"

/** Settings every project's vitest config shares. */
export const shared = defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    // Real processes and SQLite files: keep the 2-core machine from thrashing.
    pool: "forks",
    poolOptions: { forks: { maxForks: 2, minForks: 1 } }
  }
})
