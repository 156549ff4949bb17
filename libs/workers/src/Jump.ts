/**
 * `trail jump ITEM` (SPEC §3): to the pane an inbox item is about. A worker's window is on
 * trail's tmux server (`-L worker.tmux_socket`), a session's pane on the server its hook reported
 * (`-S socket`). Inside that server, the client is switched to the pane; anywhere else, the
 * command that attaches is returned for the person to run.
 *
 * Errors: the Inbox's (unknown item, a session without a pane), the Workers' (unknown worker),
 * and {@link UsageError} when tmux refuses to switch (its stderr in the message).
 */
import { UsageError, WorkerId, WorkerNotFound } from "@trail/domain"
import { Effect, Option, Schema } from "effect"
import { Inbox } from "./Inbox.js"
import * as Tmux from "./Tmux.js"
import { Workers } from "./Workers.js"

/** What `jump` did: switched to `target`, or (not in that server) the `command` that attaches. */
export interface Jumped {
  readonly item: string
  readonly jumped: boolean
  readonly target: string
  readonly command: ReadonlyArray<string> | null
}

export interface JumpOptions {
  /** `$TMUX` of the calling process (None outside tmux). */
  readonly tmuxEnv: Option.Option<string>
  /** trail's own server and session (`worker.tmux_socket`, `worker.session`). */
  readonly socket: string
  readonly session: string
}

/** Jumps to the pane of the inbox item `ref` (an item id, a worker id or a session id). */
export const jump = (ref: string, options: JumpOptions) =>
  Effect.gen(function* () {
    const inbox = yield* Inbox
    const item = yield* inbox.find(ref)
    const { server, target } =
      item.subject.type === "worker"
        ? yield* Effect.gen(function* () {
            const id = yield* Schema.decode(WorkerId)(item.subject.id).pipe(
              Effect.mapError(() => new WorkerNotFound({ id: item.subject.id }))
            )
            const worker = yield* Effect.flatMap(Workers, (workers) => workers.get(id))
            const server: Tmux.Server = { name: options.socket }
            return { server, target: worker.window ?? `${options.session}:${id}` }
          })
        : yield* Effect.map(inbox.paneOf(item.subject.id), ({ pane, socket }) => {
            const server: Tmux.Server = { path: socket }
            return { server, target: pane }
          })
    if (!Option.exists(options.tmuxEnv, (env) => Tmux.isServerOf(server, env))) {
      const jumped: Jumped = { item: item.id, jumped: false, target, command: Tmux.attachCommand(server, target) }
      return jumped
    }
    yield* Tmux.switchClient(server, target).pipe(
      Effect.mapError((error) => new UsageError({ message: error.message }))
    )
    const jumped: Jumped = { item: item.id, jumped: true, target, command: null }
    return jumped
  })
