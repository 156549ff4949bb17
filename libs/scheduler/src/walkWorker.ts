/**
 * Worker-thread entry of the tree walk (bundled on its own as `walk-worker.cjs` next to the
 * CLI bundle so it starts in milliseconds). Receives a {@link WorkerJob} as workerData and walks
 * its frames (posting what it found every {@link WORKER_PART} directories); gives half of what it has pending when the main thread raises its flag; posts what
 * it found each time it runs dry (`idle`) and raises its own flag, then walks the frames it is
 * given next, until told to `stop` (the protocol: {@link ToWalker} in walk.ts).
 */
import { parentPort, workerData } from "node:worker_threads"
import {
  MAIN_HUNGRY,
  pack,
  shareWhenAsked,
  walkFrames,
  WORKER_HUNGRY,
  WORKER_PART,
  type Frame,
  type PackedResult,
  type ToWalker,
  type ToWorker,
  type WorkerJob
} from "./walk.js"

// workerData is typed `any`: it is the WorkerJob Walker posted to this thread (structured-cloned
// plain data from the same build), not outside input; so are the messages below.
const job: WorkerJob = workerData
const post = (message: ToWalker) => parentPort?.postMessage(message)
const handOff = shareWhenAsked(job.flags, MAIN_HUNGRY, (frames) => post({ _tag: "frames", frames }))
let jobs = 0

/** Posts `result` (its arrays transferred, not copied). */
const postResult = (message: Extract<ToWalker, { readonly result: PackedResult }>) =>
  parentPort?.postMessage(message, [message.result.fileCounts.buffer, message.result.bytes.buffer])

const walk = (frames: Array<Frame>) => {
  jobs++
  try {
    let part = walkFrames(job.settings, frames, { handOff, maxDirectories: WORKER_PART })
    while (part.pending.length > 0) {
      postResult({ _tag: "found", result: pack(part) })
      part = walkFrames(job.settings, part.pending, { handOff, maxDirectories: WORKER_PART })
    }
    postResult({ _tag: "idle", result: pack(part), jobs })
    Atomics.store(job.flags, WORKER_HUNGRY, 1)
  } catch (error) {
    post({ _tag: "failed", error: error instanceof Error ? error.message : String(error) })
  }
}

parentPort?.on("message", (message: ToWorker) => {
  if (message._tag === "frames") walk(message.frames)
  else parentPort?.close()
})
walk(job.frames)
