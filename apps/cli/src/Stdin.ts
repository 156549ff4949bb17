/** Reading what is piped into trail (`trail reply ITEM` with the text on stdin). */
import * as NodeStream from "@effect/platform-node/NodeStream"
import { Effect, Either, Option, Stream } from "effect"

/**
 * All of stdin as UTF-8 text, or "" when stdin is a terminal (nothing piped: a person would have
 * to type and press Ctrl-D). A read error ends the text where it happened.
 */
export const readAll: Effect.Effect<string> = Effect.suspend(() =>
  process.stdin.isTTY === true
    ? Effect.succeed("")
    : NodeStream.fromReadable<Error>(
        () => process.stdin,
        (error) => (error instanceof Error ? error : new Error(String(error))),
        { closeOnDone: false }
      ).pipe(
        Stream.decodeText(),
        Stream.catchAll(() => Stream.empty),
        Stream.mkString
      )
)

/**
 * All of stdin as UTF-8 text, strictly: None when stdin is a terminal (nothing piped), a Left
 * when the bytes are not valid UTF-8 (a note must not be saved garbled).
 */
export const readUtf8: Effect.Effect<Option.Option<Either.Either<string, string>>> = Effect.suspend(() =>
  process.stdin.isTTY === true
    ? Effect.succeed(Option.none())
    : NodeStream.fromReadable<Error>(
        () => process.stdin,
        (error) => (error instanceof Error ? error : new Error(String(error))),
        { closeOnDone: false }
      ).pipe(
        Stream.catchAll(() => Stream.empty),
        Stream.runCollect,
        Effect.map((chunks) => {
          const bytes = Buffer.concat([...chunks])
          try {
            return Option.some(Either.right(new TextDecoder("utf-8", { fatal: true }).decode(bytes)))
          } catch (error) {
            return Option.some(Either.left(error instanceof Error ? error.message : String(error)))
          }
        })
      )
)
