/**
 * A checkpoint's bundle: its artifacts numbered in order and the orientation header composed
 * from them and the human's note (SPEC §4). The header is plain markdown a person may edit.
 */
import type { Artifact, CheckpointId } from "@trail/domain"

export interface Bundle {
  readonly id: CheckpointId
  /** ms since the epoch. */
  readonly createdAt: number
  /** Numbered `<id>@1`, `<id>@2`, … in the order the header lists them. */
  readonly artifacts: ReadonlyArray<Artifact>
  /** The `.md` file's text: header sections, then the note's `## Decisions` / `## Next steps`. */
  readonly header: string
  /** What could not be read (a missing transcript, a truncated line, a cap reached), in words. */
  readonly problems: ReadonlyArray<string>
}
