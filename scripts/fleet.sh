#!/usr/bin/env bash
# The main job on real input: `trail supervise` in fleet mode drains a coverage sweep of a root
# (default: this repository) with WORKERS workers at once, each in its own tmux window on trail's
# tmux server (plain processes where tmux is not installed). Each worker runs the bundled
# scripted agent (scripts/scripted-agent.sh), which speaks the worker protocol the way a real
# agent does: todos, note, done with evidence and findings.
#
#   scripts/fleet.sh [ROOT] [WORKERS]       (defaults: the repository, 3 workers)
#
# Watch it live from another terminal: tmux -L trail attach -t trail-workers
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
root=$(cd "${1:-$here}" && pwd)
workers=${2:-3}
task=fleet-demo
trail() { node "$here/apps/cli/bin/trail.cjs" --root "$root" "$@"; }

(cd "$root" && node "$here/apps/cli/bin/trail.cjs" init) >&2
# The scripted agent as a project kind of the root.
mkdir -p "$root/.trail/kinds"
cat > "$root/.trail/kinds/scripted-agent.md" <<KIND
---
description: A scripted stand-in for an AI agent (no model); reports TODO/FIXME markers.
command: ["sh", "$here/scripts/scripted-agent.sh"]
read_only: true
max_duration: 5m
---
Report the TODO and FIXME markers of your folder.
KIND
# Project kinds run once reviewed: this one is ours.
trail kinds trust scripted-agent >/dev/null
# A finished sweep from an earlier run: open the next one.
if trail status --task "$task" 2>/dev/null | grep -q '"sweep_status":"complete"'; then
  trail sweep new --task "$task" >/dev/null
fi

# stdout keeps the one JSON result; on a terminal, supervise ends with its summary table on stderr.
SCRIPTED_AGENT_DELAY=${SCRIPTED_AGENT_DELAY:-0.5} trail supervise --task "$task" --workers "$workers" \
  --as scripted-agent --prompt "Look for TODO/FIXME markers in {path} and report them with evidence."
# Not on a terminal (no summary table from supervise): the findings themselves, most first.
if [ ! -t 2 ]; then trail results --task "$task" --pretty | head -n 40 >&2; echo >&2; fi
# Hand the sweep off: a checkpoint of what the workers reported (with the git state and the
# coverage), and the header a newcomer, or the next agent, starts from.
ready=$(trail workers | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{for(const w of JSON.parse(s))if(w.state==="ready")console.log("--worker\n"+w.id)})')
mapfile -t worker_flags <<<"$ready"
note="Fleet demo: $task swept every folder for TODO/FIXME markers.

## Next steps

- fix the folders with the most findings first: trail results --task $task --pretty"
trail checkpoint -m "$note" ${ready:+"${worker_flags[@]}"} >/dev/null
trail checkpoint show last --pretty | head -n 30 >&2
echo >&2
echo "hand it off:    trail --root $root continue last   (the next Claude Code session here starts from it)" >&2
echo "every finding:  trail --root $root results --task $task --pretty" >&2
echo "the windows:    tmux -L trail attach -t trail-workers   (or: trail attach)" >&2
