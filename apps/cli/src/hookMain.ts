/** Entry of dist/hook.cjs: `trail hook claude` without the rest of the CLI (see hook.ts). */
import { runHook } from "./hook.js"

void runHook().finally(() => process.exit(0))
