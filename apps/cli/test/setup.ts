import { afterEach } from "vitest"

// Most CLI tests run `trail` with spawnSync, which blocks this worker's event loop. Give the
// loop one macrotask turn after each test so vitest's RPC replies are read in time (otherwise
// a long file ends with "Timeout calling onTaskUpdate").
afterEach(() => new Promise<void>((resolve) => setImmediate(resolve)))
