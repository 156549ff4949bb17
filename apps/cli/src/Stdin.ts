/** Reading what is piped into trail (`trail reply ITEM` with the text on stdin). */
import * as NodeStream from "@effect/platform-node/NodeStream"
import { Effect, Stream } from "effect"

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
