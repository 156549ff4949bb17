import * as FileSystem from "@effect/platform/FileSystem"
import * as SqlClient from "@effect/sql/SqlClient"
import { type ArtifactDraft, ArtifactId, type ArtifactSource, type CheckpointId } from "@trail/domain"
import { Database } from "@trail/store"
import { Context, Effect, Layer } from "effect"
import type { Bundle } from "../src/Bundle.js"
import { Checkpoints, layer } from "../src/Checkpoints.js"

/** A fresh root (a temp dir holding `.trail/`) with a migrated store and the service over it. */
export const openRoot = Effect.gen(function* () {
  const fs = yield* FileSystem.FileSystem
  const root = yield* fs.makeTempDirectoryScoped({ prefix: "trail-checkpoints-" })
  yield* fs.makeDirectory(`${root}/.trail`)
  const ctx = yield* Layer.build(
    layer({ root }).pipe(Layer.provideMerge(Database.layer({ filename: `${root}/.trail/state.db` })))
  )
  return { root, fs, checkpoints: Context.get(ctx, Checkpoints), sql: Context.get(ctx, SqlClient.SqlClient), ctx }
})

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never

export const session: ArtifactSource = { type: "session", id: "5f1c2a9e-0000-4000-8000-000000000001" }

/** A draft without its source and time (the session's, at `at`). */
export const draft = (
  fact: DistributiveOmit<ArtifactDraft, "source" | "at">,
  at: number | null = null
): ArtifactDraft => ({ ...fact, source: session, at }) as ArtifactDraft

/** A bundle built by hand: artifacts numbered in order, the header as given. */
export const bundleOf = (
  id: CheckpointId,
  createdAt: number,
  header: string,
  facts: ReadonlyArray<readonly [title: string, fact: ArtifactDraft]>
): Bundle => ({
  id,
  createdAt,
  header,
  problems: [],
  artifacts: facts.map(([title, fact], i) => ({ id: ArtifactId.make(`${id}@${i + 1}`), title, fact }))
})

export const failingInstall = draft(
  {
    _tag: "command",
    command: "npm install && npm test",
    exit_code: 1,
    failed: true,
    head: ["> trail@0.1.0 test"],
    tail: ["Error: Cannot find module 'left-pad'", "Require stack: src/pad.ts"],
    lines: 40
  },
  1_000
)

export const passingBuild = draft(
  {
    _tag: "command",
    command: "npm run build",
    exit_code: 0,
    failed: false,
    head: ["> tsc -b"],
    tail: ["built left-pad wrapper in 2 s"],
    lines: 2
  },
  2_000
)

export const paddingEdit = draft({ _tag: "edit", file: "src/pad.ts", tool: "Edit", added: 3, removed: 1 }, 3_000)

export const answer = draft(
  { _tag: "answer", text: "I think the left-pad module is missing from package.json; the build itself is fine." },
  4_000
)

export const header = (id: CheckpointId, title = "Fixing the pad tests") => `# ${title}

Checkpoint ${id}

## Failed commands
- npm install && npm test (exit 1)

## Next steps
- add left-pad to package.json
`
