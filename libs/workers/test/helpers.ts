import { createHash } from "node:crypto"
import * as path from "node:path"
import * as FileSystem from "@effect/platform/FileSystem"
import type { TrailConfig } from "@trail/domain"
import { Database } from "@trail/store"
import { Effect, Layer } from "effect"
import * as Kinds from "../src/Kinds.js"
import * as Processes from "../src/Processes.js"
import * as Substrate from "../src/Substrate.js"
import * as Tmux from "../src/Tmux.js"
import * as Workers from "../src/Workers.js"

/** A fresh directory under the OS temp dir, removed with everything in it when the scope closes. */
export const tempDir = (prefix: string) =>
  Effect.flatMap(FileSystem.FileSystem, (fs) => fs.makeTempDirectoryScoped({ prefix })).pipe(Effect.orDie)

/** A kind whose agent idles for ten minutes (a worker that stays live until it is killed). */
export const IDLE_KIND = '---\ncommand: [sleep, "600"]\n---\n'

/** A root made by {@link trustedRoot}: its paths, as a root's settings name them. */
export interface TrustedRoot {
  readonly root: string
  /** `<root>/.trail`, holding the project kinds in `kinds/`. */
  readonly stateDir: string
  /** A user kinds folder that does not exist; trail keeps its trust file beside it. */
  readonly userKindsDir: string
  readonly configFile: string
  readonly databaseFile: string
}

/**
 * A root in a scoped temp dir whose project kinds are `kinds` (name → file text), each trusted
 * as `trail kinds trust` records it.
 */
export const trustedRoot = (prefix: string, kinds: Readonly<Record<string, string>>) =>
  Effect.gen(function* () {
    const fs = yield* FileSystem.FileSystem
    const root = yield* fs.makeTempDirectoryScoped({ prefix })
    const stateDir = path.join(root, ".trail")
    yield* fs.makeDirectory(path.join(stateDir, "kinds"), { recursive: true })
    const trusted: Record<string, string> = {}
    for (const [name, text] of Object.entries(kinds)) {
      const file = path.join(stateDir, "kinds", `${name}.md`)
      yield* fs.writeFileString(file, text)
      trusted[file] = createHash("sha256").update(text).digest("hex")
    }
    const userKindsDir = path.join(root, "none")
    yield* fs.writeFileString(Kinds.trustFileOf(userKindsDir), JSON.stringify(trusted))
    return {
      root,
      stateDir,
      userKindsDir,
      configFile: path.join(root, ".trail.toml"),
      databaseFile: path.join(stateDir, "state.db")
    } satisfies TrustedRoot
  }).pipe(Effect.orDie)

/**
 * The Workers service over `root` with `config`, on a tmux server of its own (socket
 * `trail-test-<name>-…`); also provides the Database, Tmux and Processes it runs on.
 */
export const workersLayer = (root: TrustedRoot, config: TrailConfig, name: string) =>
  Workers.layer.pipe(
    Layer.provide(Substrate.layer(config.worker.substrate)),
    Layer.provideMerge(
      Tmux.layer({ socket: `trail-test-${name}-${process.pid}-${Math.random()}`, session: `trail-${name}` })
    ),
    Layer.provide(
      Layer.succeed(Workers.WorkerSettingsTag, {
        root: root.root,
        stateDir: root.stateDir,
        config,
        trailCommand: ["true"],
        userKindsDir: root.userKindsDir,
        configFile: root.configFile
      })
    ),
    Layer.provideMerge(Database.layer({ filename: root.databaseFile })),
    Layer.provideMerge(Processes.live)
  )
