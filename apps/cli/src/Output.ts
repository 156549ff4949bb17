/**
 * The CLI's output contract (SPEC "CLI contract"): exactly one JSON value on stdout per command
 * (or a rendering of the same data with `--pretty`), errors as `{"error":{"code","message"}}` on
 * stderr, and the exit codes 0 ok · 1 error · 2 usage · 3 sweep-complete · 4 none-available.
 */
import { Chunk, Context, Effect, Ref, Stream } from "effect"
import { safeData } from "./Pretty.js"

export const ExitCode = {
  ok: 0,
  error: 1,
  usage: 2,
  sweepComplete: 3,
  noneAvailable: 4,
  /** The command was ended by SIGINT/SIGTERM, as shells expect (128 + 2). */
  interrupted: 130
} as const
export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode]

/**
 * The exit code the command decided on: what it printed last sets it (a result's `exit`, an
 * error's code). main.ts makes one per invocation and exits with its final value.
 */
export class ExitStatus extends Context.Tag("@trail/cli/ExitStatus")<ExitStatus, Ref.Ref<ExitCode>>() {}

const decide = (exit: ExitCode) => Effect.flatMap(ExitStatus, (status) => Ref.set(status, exit))

const write = (stream: NodeJS.WriteStream, text: string) => {
  stream.write(text.endsWith("\n") ? text : `${text}\n`)
}

/** Plain JSON for the wire: class instances become their fields; nothing else is added. */
export const toJson = (value: unknown): string => JSON.stringify(value)

/**
 * Prints a command's result and decides the exit code ({@link ExitStatus}). With `pretty`, `render` turns the same
 * value into text for a person, after every string in it went through `safeData` (control
 * characters and escape sequences from data are shown, never obeyed).
 */
export const emit = <A>(
  value: A,
  options: { readonly pretty: boolean; readonly exit?: ExitCode; readonly render: (value: A) => string }
) =>
  Effect.zipRight(
    // Data is made terminal-safe before a renderer sees it; JSON stays exact.
    Effect.sync(() => write(process.stdout, options.pretty ? options.render(safeData(value)) : toJson(value))),
    decide(options.exit ?? ExitCode.ok)
  )

/** Writes `text` on stdout and waits until stdout drained when its buffer is full (so a slow reader bounds memory). */
export const writeDrained = (text: string) =>
  Effect.async<void>((resume) => {
    if (process.stdout.write(text)) return resume(Effect.void)
    const drained = () => resume(Effect.void)
    process.stdout.once("drain", drained)
    return Effect.sync(() => process.stdout.off("drain", drained))
  })

/**
 * Prints a listing as it is read, chunk by chunk, so that memory is bounded by a chunk whatever
 * its length: the same JSON array {@link emit} would print, written element by element; with
 * `pretty`, `render` of each chunk (terminal-safe, as in {@link emit}; `first` is true for the
 * first one, which carries the header) and `empty` when there was no element. A failure while
 * reading ends the output where it stands (the error is printed on stderr, as always).
 */
export const emitStream = <A, E, R>(
  elements: Stream.Stream<A, E, R>,
  options: {
    readonly pretty: boolean
    readonly render: (chunk: ReadonlyArray<A>, first: boolean) => string
    readonly empty: string
  }
) =>
  Effect.gen(function* () {
    let first = true
    yield* Stream.runForEachChunk(elements, (chunk) => {
      if (Chunk.isEmpty(chunk)) return Effect.void
      const items = Chunk.toReadonlyArray(chunk)
      const text = options.pretty
        ? `${options.render(safeData(items), first)}\n`
        : (first ? "[" : ",") + items.map(toJson).join(",")
      first = false
      return writeDrained(text)
    })
    yield* writeDrained(first ? `${options.pretty ? options.empty : "[]"}\n` : options.pretty ? "" : "]\n")
    yield* decide(ExitCode.ok)
  })

/** Prints raw text (completion scripts) on stdout. */
export const emitText = (text: string) => Effect.sync(() => write(process.stdout, text))

/** Prints `{"error":{"code","message"}}` on stderr and decides the exit code. */
export const emitError = (code: string, message: string, exit: ExitCode) =>
  Effect.zipRight(
    Effect.sync(() => write(process.stderr, JSON.stringify({ error: { code, message } }))),
    decide(exit)
  )

/**
 * Prints `{"warning":{"code","message"}}` on stderr: something the command did not manage after it
 * succeeded (its JSON on stdout says it too); the exit code stays as decided.
 */
export const emitWarning = (code: string, message: string) =>
  Effect.sync(() => write(process.stderr, JSON.stringify({ warning: { code, message } })))

/**
 * A reader that closes its end of the pipe early (`trail completions bash | head -1`) must not
 * crash trail with EPIPE: stop writing and exit with what was decided so far.
 */
export const guardClosedPipes = Effect.flatMap(ExitStatus, (status) =>
  Effect.sync(() => {
    for (const stream of [process.stdout, process.stderr]) {
      stream.on("error", (error: NodeJS.ErrnoException) => {
        if (error.code === "EPIPE") process.exit(Effect.runSync(Ref.get(status)))
        throw error
      })
    }
  })
)
