/**
 * Worker-thread entry of the tree walk (bundled on its own as `walk-worker.cjs` next to the
 * CLI bundle so it starts in milliseconds). Receives `{ settings, frames }` as workerData,
 * walks them, and posts the {@link WalkResult} (or `{ error }`) back.
 */
import { parentPort, workerData } from "node:worker_threads"
import { walkFrames, type Frame, type WalkSettings } from "./walk.js"

interface Job {
  readonly settings: WalkSettings
  readonly frames: Array<Frame>
}

// workerData is typed `any`: it is the Job Walker posted to this thread (structured-cloned plain
// data from the same build), not outside input.
const job: Job = workerData
try {
  parentPort?.postMessage({ result: walkFrames(job.settings, job.frames) })
} catch (error) {
  parentPort?.postMessage({ error: error instanceof Error ? error.message : String(error) })
}
