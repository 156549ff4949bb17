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

const job = workerData as Job
try {
  parentPort?.postMessage({ result: walkFrames(job.settings, job.frames) })
} catch (error) {
  parentPort?.postMessage({ error: error instanceof Error ? error.message : String(error) })
}
