// Lint for every TypeScript file of the workspace (libs/*, apps/*, bench/). Each project's
// `lint` target runs `eslint . --max-warnings 0` and `prettier --check`, and `npm run lint:bench`
// the bench; `npm test` runs both (formatting itself stays with prettier). The one type-aware
// rule (no-floating-promises) uses the projects' tsconfigs; no-misused-promises is left out as
// it tripled the lint time for code that hardly uses promises.
import effect from "@effect/eslint-plugin"
import tseslint from "typescript-eslint"

export default tseslint.config(
  {
    ignores: [
      "**/node_modules/**",
      "**/dist/**",
      "**/.nx/**",
      "**/*.js",
      "**/*.cjs",
      "**/*.mjs",
      "**/vitest.config.ts",
      "vitest.shared.ts"
    ]
  },
  ...tseslint.configs.recommended,
  {
    files: ["**/*.ts"],
    languageOptions: {
      parserOptions: {
        projectService: true,
        tsconfigRootDir: import.meta.dirname
      }
    },
    plugins: { "@effect": effect },
    linterOptions: { reportUnusedDisableDirectives: "error" },
    rules: {
      "@typescript-eslint/no-explicit-any": "error",
      "@typescript-eslint/no-non-null-assertion": "error",
      "@typescript-eslint/no-unused-vars": [
        "error",
        { argsIgnorePattern: "^_", varsIgnorePattern: "^_", caughtErrors: "none" }
      ],
      "@typescript-eslint/consistent-type-imports": [
        "error",
        { prefer: "type-imports", fixStyle: "inline-type-imports", disallowTypeAnnotations: false }
      ],
      "@typescript-eslint/no-floating-promises": "error",
      // Namespaces are how Effect code groups a module's members (`Foo.make`, `Foo.Live`).
      "@typescript-eslint/no-namespace": "off",
      // Import one module of these packages, not their barrel: the CLI bundle stays small.
      "@effect/no-import-from-barrel-package": [
        "error",
        {
          packageNames: [
            "@effect/platform",
            "@effect/platform-node",
            "@effect/cli",
            "@effect/sql",
            "@effect/sql-sqlite-node",
            "@effect/experimental"
          ]
        }
      ]
    }
  },
  {
    // In a test a wrong `!` throws and fails the test, which is what the test is for; source
    // code narrows instead.
    files: ["**/test/**/*.ts"],
    rules: { "@typescript-eslint/no-non-null-assertion": "off" }
  }
)
