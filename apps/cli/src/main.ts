/**
 * The `trail` binary. Parses argv with the generated command tree, runs the handler, and maps
 * every failure to the JSON error contract: usage errors (bad flags, bad values) exit 2, domain
 * errors exit 1, defects exit 1 with code "internal".
 */
import * as CliConfig from "@effect/cli/CliConfig"
import * as Command from "@effect/cli/Command"
import * as HelpDoc from "@effect/cli/HelpDoc"
import * as ValidationError from "@effect/cli/ValidationError"
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import { errorCode, exitCodeOf, isTrailError } from "@trail/domain"
import * as Processes from "@trail/workers/Processes"
import { Cause, Console, Effect, Exit, Layer, Ref } from "effect"
import { command } from "./Cli.js"
import { preflight } from "./Help.js"
import { emit, emitError, ExitCode, ExitStatus, guardClosedPipes } from "./Output.js"

declare const __TRAIL_VERSION__: string
const version = typeof __TRAIL_VERSION__ === "string" ? __TRAIL_VERSION__ : "0.0.0-dev"

const run = Command.run(command, { name: "trail", version })

const plain = (text: string) => text.replace(/\u001b\[[0-9;]*m/g, "").trim()

/**
 * @effect/cli prints parse errors itself as text on stderr; trail prints them as JSON instead, so
 * its `Console.error` is silenced. Help and version text keep going to stdout, without colour
 * codes when stdout is not a terminal.
 */
const cliConsole = Effect.map(Console.consoleWith(Effect.succeed), (console) =>
  Console.setConsole({
    ...console,
    error: () => Effect.void,
    log: (...args: ReadonlyArray<unknown>) =>
      process.stdout.isTTY === true
        ? console.log(...args)
        : console.log(...args.map((a) => (typeof a === "string" ? plain(a) : a)))
  })
).pipe(Layer.unwrapEffect)

/** Help, did-you-mean and flag-naming value errors come first (Help.ts); everything else is parsed. */
const parseAndRun = Effect.suspend(() => {
  const decided = preflight(command.descriptor, process.argv.slice(2))
  switch (decided._tag) {
    case "Help":
      return emit(decided.text, { pretty: true, exit: decided.exit, render: (text) => text })
    case "Usage":
      return emitError("usage", decided.message, ExitCode.usage)
    case "Parse":
      return run(process.argv)
  }
})

const handled = parseAndRun.pipe(
  Effect.catchIf(ValidationError.isValidationError, (error) =>
    emitError("usage", plain(HelpDoc.toAnsiText(error.error)) || "invalid arguments", ExitCode.usage)
  ),
  // (a function of its own: @trail/domain is loaded on first use, see build.mjs)
  Effect.catchIf(
    (error) => isTrailError(error),
    (error) => emitError(errorCode(error), error.message, exitCodeOf(error))
  ),
  Effect.catchAllCause((cause) =>
    emitError("internal", Cause.pretty(cause).split("\n")[0] ?? "unexpected failure", ExitCode.error)
  ),
  // Every outside thing a handler asks for (Env, Host, Processes, the Node platform), built once.
  Effect.provide(Layer.mergeAll(Processes.live, CliConfig.layer({ showBuiltIns: false }), cliConsole))
)

/** Runs the command and returns the exit code it decided on. */
const program = Effect.gen(function* () {
  const status = yield* Ref.make<ExitCode>(ExitCode.ok)
  yield* Effect.zipRight(guardClosedPipes, handled).pipe(Effect.provideService(ExitStatus, status))
  return yield* Ref.get(status)
})

/**
 * The runtime ends a command on SIGINT/SIGTERM by interrupting it; an operation whose
 * interruption cannot finish (a read blocked in the thread pool) would keep the process alive
 * until a second signal. So the first signal also arms a deadline after which trail exits 130
 * anyway. `supervise` replaces these listeners with its own drain-then-cancel handling.
 */
const SIGNAL_DEADLINE_MS = 2_000
for (const signal of ["SIGINT", "SIGTERM"] as const)
  process.once(signal, () => setTimeout(() => process.exit(ExitCode.interrupted), SIGNAL_DEADLINE_MS).unref())

NodeRuntime.runMain(program, {
  disableErrorReporting: true,
  disablePrettyLogger: true,
  // The command's own exit code; 130 after SIGINT/SIGTERM interrupted it, as shells expect.
  teardown: (exit, onExit) => {
    const code =
      // (the teardown is generic in what the program returns: `program` returns the ExitCode)
      Exit.isSuccess(exit) && typeof exit.value === "number"
        ? exit.value
        : Exit.isFailure(exit) && Cause.isInterruptedOnly(exit.cause)
          ? ExitCode.interrupted
          : ExitCode.error
    onExit(code)
    // Every scope is closed and the output written: exit now rather than let Node drain the event
    // loop and tear the heap and its threads down (10–35 ms of an `inbox`'s wall time on a loaded
    // machine, issue 14). Output still queued (a pipe where writes are asynchronous) is left to
    // Node's own exit, which waits for it. (A failure's or a signal's code already exited in
    // `onExit`.)
    if (process.stdout.writableLength === 0 && process.stderr.writableLength === 0) process.exit(code)
  }
})
