/**
 * `.trail.toml` text to a {@link TrailConfig}, synchronously and without the Effect runtime: the
 * one parser of the file, shared by `Project.loadConfig` and the hook's hot path (`trail hook
 * claude` reads `checkpoint.on_precompact` before it loads anything more for a PreCompact).
 */
import * as fs from "node:fs"
import * as path from "node:path"
import { ConfigError, decodeConfig, defaultConfig, type TrailConfig } from "@trail/domain"
import { Either } from "effect"
import { parse as parseToml, TomlError } from "smol-toml"

export const CONFIG_FILE = ".trail.toml"

/** The largest `.trail.toml` trail reads: 1 MiB. */
export const MAX_CONFIG_BYTES = 1024 * 1024

/** Parses and validates `.trail.toml` text. `file` names the file in errors. */
export const parse = (text: string, file: string): Either.Either<TrailConfig, ConfigError> => {
  let raw: unknown
  try {
    raw = parseToml(text)
  } catch (error) {
    return Either.left(
      new ConfigError({
        file,
        key: "",
        value: "",
        reason:
          error instanceof TomlError
            ? `not valid TOML at line ${error.line}, column ${error.column}: ${error.message.split("\n")[0]}`
            : `not valid TOML: ${String(error)}`
      })
    )
  }
  return decodeConfig(raw, file)
}

/**
 * Reads `<root>/.trail.toml` with node:fs (a missing file means every default), refusing what
 * `Project.loadConfig` refuses: not a regular file, larger than {@link MAX_CONFIG_BYTES}.
 */
export const readSync = (root: string): Either.Either<TrailConfig, ConfigError> => {
  const file = path.join(root, CONFIG_FILE)
  const unreadable = (reason: string) => Either.left(new ConfigError({ file: CONFIG_FILE, key: "", value: "", reason }))
  let info: fs.Stats
  try {
    info = fs.statSync(file)
  } catch (error) {
    if (error instanceof Error && "code" in error && error.code === "ENOENT") return Either.right(defaultConfig)
    return unreadable(`cannot be read: ${error instanceof Error ? error.message : String(error)}`)
  }
  if (!info.isFile()) return unreadable("is not a regular file; make it a plain text file")
  if (info.size > MAX_CONFIG_BYTES)
    return unreadable(`is ${info.size} bytes; at most ${MAX_CONFIG_BYTES} (1 MiB) are read`)
  try {
    return parse(fs.readFileSync(file, "utf8"), CONFIG_FILE)
  } catch (error) {
    return unreadable(`cannot be read: ${error instanceof Error ? error.message : String(error)}`)
  }
}
