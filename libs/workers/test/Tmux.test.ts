import * as NodeContext from "@effect/platform-node/NodeContext"
import { assert, describe, it } from "@effect/vitest"
import type * as CommandExecutor from "@effect/platform/CommandExecutor"
import type * as FileSystem from "@effect/platform/FileSystem"
import { Effect, Fiber, Schedule, type Scope } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import { isAlive } from "../src/Processes.js"
import * as Tmux from "../src/Tmux.js"
import { tempDir } from "./helpers.js"

let counter = 0
/** A Tmux service on a socket of its own; the server is killed when the test's scope closes. */
const isolated = (binary?: string) =>
  Effect.gen(function* () {
    const socket = `trail-test-${process.pid}-${counter++}-${Math.floor(Math.random() * 1e6)}`
    const tmux = yield* Tmux.make({ socket, session: "trail-workers", ...(binary === undefined ? {} : { binary }) })
    yield* Effect.addFinalizer(() => tmux.killServer)
    return tmux
  })

/** Waits (real time: the pane is a real process) until `check` holds for the pane's text. */
const untilPane = (tmux: Tmux.TmuxShape, window: string, check: (text: string) => boolean) =>
  tmux.capture(window).pipe(
    Effect.filterOrFail(check, () => "not yet"),
    Effect.retry(Schedule.spaced("50 millis").pipe(Schedule.intersect(Schedule.recurs(100)))),
    Effect.orElse(() => tmux.capture(window))
  )

/** A test against real processes in real time (no TestClock), with the Node platform. */
const live = <A, E>(
  name: string,
  body: () => Effect.Effect<A, E, Scope.Scope | CommandExecutor.CommandExecutor | FileSystem.FileSystem>
) => it.scopedLive(name, () => body().pipe(Effect.provide(NodeContext.layer)))

describe("Tmux (real tmux, isolated socket)", () => {
  live("opens the session once and a window per worker, with its cwd and environment", () =>
    Effect.gen(function* () {
      const tmux = yield* isolated()
      yield* tmux.ensureSession
      yield* tmux.ensureSession
      const cwd = yield* tempDir("trail-tmux-")
      const info = yield* tmux.newWindow({
        name: "w1",
        cwd,
        env: { TRAIL_WORKER_ID: "w1", TRAIL_TASK_FILE: "/tmp/task.md" },
        argv: ["sh", "-c", 'echo "id=$TRAIL_WORKER_ID file=$TRAIL_TASK_FILE cwd=$(pwd)"; exec cat']
      })
      assert.strictEqual(info.name, "w1")
      assert.isAbove(info.panePid, 1)
      assert.isFalse(info.dead)
      const text = yield* untilPane(tmux, "w1", (t) => t.includes("id=w1"))
      assert.include(text, "id=w1 file=/tmp/task.md")
      assert.include(text, `cwd=${fs.realpathSync(cwd)}`)
      const windows = yield* tmux.listWindows
      assert.deepStrictEqual(
        windows.map((w) => w.name),
        ["w1"]
      )
    })
  )

  live("windowTags reads every window's @trail_worker in one call, by window id and by session:name", () =>
    Effect.gen(function* () {
      const tmux = yield* isolated()
      assert.strictEqual((yield* tmux.windowTags).size, 0, "no server: no windows")
      yield* tmux.ensureSession
      const tagged = yield* tmux.newWindow({ name: "w1", cwd: os.tmpdir(), env: {}, argv: ["cat"], tag: "w1 /a root" })
      const plain = yield* tmux.newWindow({ name: "w2", cwd: os.tmpdir(), env: {}, argv: ["cat"] })
      const tags = yield* tmux.windowTags
      assert.strictEqual(tags.get(tagged.id), "w1 /a root")
      assert.strictEqual(tags.get("trail-workers:w1"), "w1 /a root")
      assert.strictEqual(tags.get(plain.id), "")
      assert.strictEqual(yield* tmux.windowTag(tagged.id), tags.get(tagged.id))
      yield* tmux.killWindow(tagged.id)
      assert.isUndefined((yield* tmux.windowTags).get(tagged.id))
    })
  )

  live("types text literally: quotes, ;, $(…), tabs, multi-byte text and key names are not interpreted", () =>
    Effect.gen(function* () {
      const tmux = yield* isolated()
      yield* tmux.ensureSession
      yield* tmux.newWindow({ name: "w2", cwd: os.tmpdir(), env: {}, argv: ["cat"] })
      const text = `it's "quoted"; $(touch /tmp/trail-pwned) \`id\` C-c Enter é→✓`
      yield* tmux.sendText("w2", text)
      const pane = yield* untilPane(tmux, "w2", (t) => t.split("\n").filter((l) => l.includes("quoted")).length >= 2)
      // cat echoes the line back: the typed line and its echo, both exactly the text.
      assert.strictEqual(pane.split("\n").filter((line) => line === text).length, 2)
      assert.isFalse(fs.existsSync("/tmp/trail-pwned"))
      const [w2] = yield* tmux.listWindows
      assert.isFalse(w2!.dead, "C-c must have been typed, not sent as an interrupt")
    })
  )

  live("pastes long multi-line text whole through a buffer fed on tmux's stdin, then presses Enter", () =>
    Effect.gen(function* () {
      const tmux = yield* isolated()
      yield* tmux.ensureSession
      const dir = yield* tempDir("trail-tmux-paste-")
      const out = `${dir}/typed`
      yield* tmux.newWindow({ name: "w5", cwd: dir, env: {}, argv: ["sh", "-c", `cat > ${out}`] })
      // Over PASTE_THRESHOLD_BYTES in all, each line shorter than the terminal's line limit.
      const text = Array.from({ length: 100 }, (_, i) => `line ${i}: ${"é".repeat(40)} $(id) "q"`).join("\n")
      assert.isAbove(Buffer.byteLength(text), Tmux.PASTE_THRESHOLD_BYTES)
      yield* tmux.sendText("w5", text)
      const typed = yield* Effect.sync(() => (fs.existsSync(out) ? fs.readFileSync(out, "utf8") : "")).pipe(
        Effect.filterOrFail(
          (t) => t.endsWith("line 99: " + "é".repeat(40) + ' $(id) "q"\n'),
          () => "not yet"
        ),
        Effect.retry(Schedule.spaced("50 millis").pipe(Schedule.intersect(Schedule.recurs(100))))
      )
      assert.strictEqual(typed, `${text}\n`)
    })
  )

  live(
    "a tmux command runs in a process group of its own (a Ctrl-C to trail's does not end it); interrupted, it is ended",
    () =>
      Effect.gen(function* () {
        const dir = yield* tempDir("trail-tmux-hang-")
        // A tmux that never answers (a wedged server): it records its pid, then waits.
        const fake = `${dir}/tmux`
        fs.writeFileSync(fake, `#!/bin/sh\necho $$ > ${dir}/pid\nexec sleep 30\n`, { mode: 0o755 })
        const fiber = yield* Effect.fork(Tmux.run({ name: "x" }, "list-windows", ["list-windows"], fake))
        const pid = yield* Effect.try(() => Number(fs.readFileSync(`${dir}/pid`, "utf8"))).pipe(
          Effect.filterOrFail(
            (n) => n > 0,
            () => "not yet"
          ),
          Effect.retry(Schedule.spaced("20 millis").pipe(Schedule.intersect(Schedule.recurs(100))))
        )
        // The process group (the 5th field of /proc/<pid>/stat, after the command in parentheses).
        const groupOf = (of: number | "self") =>
          Number(fs.readFileSync(`/proc/${of}/stat`, "utf8").split(") ").at(-1)?.split(" ")[2])
        assert.strictEqual(groupOf(pid), pid)
        assert.notStrictEqual(groupOf(pid), groupOf("self"))
        yield* Fiber.interrupt(fiber)
        const gone = yield* Effect.sync(() => !isAlive(pid)).pipe(
          Effect.filterOrFail(
            (yes) => yes,
            () => "still running"
          ),
          Effect.retry(Schedule.spaced("20 millis").pipe(Schedule.intersect(Schedule.recurs(100)))),
          Effect.orElseSucceed(() => false)
        )
        assert.isTrue(gone, `tmux (pid ${pid}) still runs after its caller was interrupted`)
      })
  )

  live("a finished program leaves a dead pane with its exit status; kill-window removes it", () =>
    Effect.gen(function* () {
      const tmux = yield* isolated()
      yield* tmux.ensureSession
      yield* tmux.newWindow({ name: "w3", cwd: os.tmpdir(), env: {}, argv: ["sh", "-c", "exit 3"] })
      yield* tmux.newWindow({ name: "w4", cwd: os.tmpdir(), env: {}, argv: ["sleep", "30"] })
      const windows = yield* tmux.listWindows.pipe(
        Effect.filterOrFail(
          (ws) => ws.some((w) => w.name === "w3" && w.dead),
          () => "not dead yet"
        ),
        Effect.retry(Schedule.spaced("50 millis").pipe(Schedule.intersect(Schedule.recurs(100))))
      )
      assert.deepInclude(
        windows.find((w) => w.name === "w3"),
        { dead: true, exitStatus: 3 }
      )
      assert.deepInclude(
        windows.find((w) => w.name === "w4"),
        { dead: false, exitStatus: null }
      )
      yield* tmux.killWindow("w3")
      assert.deepStrictEqual(
        (yield* tmux.listWindows).map((w) => w.name),
        ["w4"]
      )
      const error = yield* Effect.flip(tmux.killWindow("w3"))
      assert.strictEqual(error.reason, "failed")
    })
  )

  live("no server yet means no windows; a missing tmux binary is a clear error", () =>
    Effect.gen(function* () {
      const tmux = yield* isolated()
      assert.deepStrictEqual(yield* tmux.listWindows, [])
      const missing = yield* isolated("/nonexistent/bin/tmux")
      const error = yield* Effect.flip(missing.ensureSession)
      assert.strictEqual(error.reason, "missing")
      assert.include(error.message, "not installed")
    })
  )
})
