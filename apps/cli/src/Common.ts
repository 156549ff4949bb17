/**
 * What every command shares: the root command with `--root` and `--pretty`, how a result is
 * printed, and how the root is found.
 */
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import * as Path from "@effect/platform/Path"
// Modules, not the package: @trail/domain is loaded on first use (build.mjs), these when trail starts.
import { FoundCount, MAX_FOUND } from "@trail/domain/model"
import { Env, Host } from "@trail/domain/outside"
import { Config, Effect, Option, type Stream } from "effect"
import { emit, emitStream, type ExitCode } from "./Output.js"

export const nonEmpty = (value: string | undefined) =>
  value === undefined || value === "" ? Option.none() : Option.some(value)

/** The environment variable `name` (`Env`), set but empty counting as unset. */
export const envVar = (name: string) => Effect.map(Env, (env) => Option.filter(env.get(name), (value) => value !== ""))

/** `$name` when set (and not empty), else the folder `under` in the user's home ({@link Host}). */
const userDir = (name: string, under: string) =>
  Effect.flatMap(envVar(name), (set) =>
    Option.match(set, {
      onSome: Effect.succeed,
      onNone: () => Effect.zipWith(Host, Path.Path, (host, path) => path.join(host.home, under))
    })
  )

/** Claude Code's user folder (its user settings): `$CLAUDE_CONFIG_DIR`, else `~/.claude`. */
export const claudeUserDir = userDir("CLAUDE_CONFIG_DIR", ".claude")

/** Where user worker kinds live: `$XDG_CONFIG_HOME/trail/kinds`, else `~/.config/trail/kinds`. */
export const userKindsDir = Effect.map(userDir("XDG_CONFIG_HOME", ".config"), (config) => `${config}/trail/kinds`)

/**
 * The working directory the command was started in: what @effect/platform's `Path.resolve` of no
 * segment answers (the process's cwd on Node), so no handler asks the process itself.
 */
export const cwd = Effect.map(Path.Path, (path) => path.resolve())

/** `--found N` (next/done/skip, worker done): the domain's FoundCount, its error naming the flag. */
export const foundCount = FoundCount.annotations({
  message: (issue) => `--found must be between 0 and ${MAX_FOUND}, got ${String(issue.actual)}`
})

export const pretty = Options.boolean("pretty").pipe(
  Options.withDescription("Render the result for a person instead of JSON.")
)

/** `--root`, else `$TRAIL_ROOT` (set but empty counts as unset). */
const rootOption = Options.text("root").pipe(
  Options.optional,
  Options.withFallbackConfig(Config.string("TRAIL_ROOT").pipe(Config.map(nonEmpty))),
  Options.withDescription("The root (folder holding .trail/); default $TRAIL_ROOT, else the nearest one above the cwd.")
)

export const trail = Command.make("trail", {
  root: rootOption,
  pretty: Options.boolean("pretty").pipe(
    Options.withDescription("Render every result for a person (also accepted after the command).")
  )
}).pipe(
  Command.withDescription(
    "Coordination runtime for AI coding agents: coverage sweeps with leases, a supervised worker fleet in tmux, and one inbox of what needs you."
  )
)

/** Prints a result (Output.emit), pretty when either `trail --pretty …` or `… --pretty` asked for it. */
export const print = <A>(
  value: A,
  options: { readonly pretty: boolean; readonly exit?: ExitCode; readonly render: (value: A) => string }
) => Effect.flatMap(trail, (root) => emit(value, { ...options, pretty: options.pretty || root.pretty }))

/** Prints a listing as it is read (Output.emitStream), pretty as {@link print} decides. */
export const printStream = <A, E, R>(
  elements: Stream.Stream<A, E, R>,
  options: {
    readonly pretty: boolean
    readonly render: (chunk: ReadonlyArray<A>, first: boolean) => string
    readonly empty: string
  }
) => Effect.flatMap(trail, (root) => emitStream(elements, { ...options, pretty: options.pretty || root.pretty }))

/** `--root`, else `$TRAIL_ROOT` (None: find the root above the cwd). */
export const explicitRoot = Effect.map(trail, ({ root }) => root)
