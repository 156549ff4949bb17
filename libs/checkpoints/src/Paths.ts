/**
 * Where a checkpoint's bundle lives: `<root>/.trail/checkpoints/<id>.md` (the header and note, a
 * person may edit it) and `<id>.artifacts.json` (every artifact in full), SPEC §4.
 */
import type { CheckpointId } from "@trail/domain"

export interface BundlePaths {
  readonly dir: string
  readonly header: string
  readonly artifacts: string
}

/** The bundle's files for checkpoint `id` under `root` (an absolute path; POSIX separators). */
export const bundlePaths = (root: string, id: CheckpointId): BundlePaths => {
  const dir = `${root.replace(/\/+$/, "")}/.trail/checkpoints`
  return { dir, header: `${dir}/${id}.md`, artifacts: `${dir}/${id}.artifacts.json` }
}
