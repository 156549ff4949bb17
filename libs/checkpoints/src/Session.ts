/**
 * A Claude Code session's artifacts from its transcript file: {@link readTranscript} streamed
 * through a {@link SessionExtractor}. Never fails; what could not be read is in `problems`.
 */
import type * as FileSystem from "@effect/platform/FileSystem"
import type { ArtifactDraft } from "@trail/domain"
import { Effect } from "effect"
import { describeDropped, SessionExtractor } from "./Extract.js"
import { defaultTranscriptCaps, describeProblems, readTranscript, type TranscriptCaps } from "./Transcript.js"

/** The drafts of the session `session` read from the transcript at `path`, and the problems in words. */
export const readSession = (
  path: string,
  session: string | null,
  caps: TranscriptCaps = defaultTranscriptCaps
): Effect.Effect<
  { readonly drafts: ReadonlyArray<ArtifactDraft>; readonly problems: ReadonlyArray<string> },
  never,
  FileSystem.FileSystem
> =>
  Effect.gen(function* () {
    const extractor = new SessionExtractor({ type: "session", id: session }, caps)
    const problems = yield* readTranscript(path, (entry) => extractor.add(entry), caps)
    const { drafts, dropped } = extractor.drafts()
    return { drafts, problems: [...describeProblems(path, problems, caps), ...describeDropped(dropped, caps)] }
  })
