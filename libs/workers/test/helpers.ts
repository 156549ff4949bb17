import * as FileSystem from "@effect/platform/FileSystem"
import { Effect } from "effect"

/** A fresh directory under the OS temp dir, removed with everything in it when the scope closes. */
export const tempDir = (prefix: string) =>
  Effect.flatMap(FileSystem.FileSystem, (fs) => fs.makeTempDirectoryScoped({ prefix })).pipe(Effect.orDie)
