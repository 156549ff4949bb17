/**
 * Tags of outside things every lib reads (ARCHITECTURE "Services"): the host's identity (and the
 * user's home) and the process environment. The live layers are in `@trail/workers` (`Processes.hostLive`,
 * `Processes.envLive`, bundled in `Processes.live`); tests provide fixed values.
 */
import { Context, Layer, Option } from "effect"

export interface HostShape {
  /** The machine's name (`os.hostname()`). */
  readonly hostname: string
  /** This process's id. */
  readonly pid: number
  /**
   * The user's home folder (`os.homedir()`: `$HOME`, else the user's entry in the password
   * database). `~` in trail's defaults (`~/.claude`, `~/.config`) is this folder.
   */
  readonly home: string
}

/**
 * Which machine, which process and whose home this is. The supervisor's lock (SPEC §2) names its
 * holder `<pid>@<hostname>` and judges a holder's liveness only on its own host.
 */
export class Host extends Context.Tag("@trail/domain/Host")<Host, HostShape>() {
  /**
   * A host of fixed identity (tests; a second process simulated in one test). `home` defaults to
   * `/nonexistent`, the home of users who have none, so a test that does not set it reads no one's.
   */
  static readonly fixed = (identity: Omit<HostShape, "home"> & { readonly home?: string }) =>
    Layer.succeed(Host, { home: "/nonexistent", ...identity })
}

export interface EnvShape {
  /** Every variable of the environment (a worker inherits most of them, see `Substrate.inheritedEnv`). */
  readonly all: Readonly<Record<string, string>>
  readonly get: (name: string) => Option.Option<string>
}

/** The process environment, read once when the layer is built. */
export class Env extends Context.Tag("@trail/domain/Env")<Env, EnvShape>() {
  /** An environment of exactly `vars`. */
  static readonly fixed = (vars: Readonly<Record<string, string>>) =>
    Layer.succeed(Env, Env.of({ all: vars, get: (name) => Option.fromNullable(vars[name]) }))
}
