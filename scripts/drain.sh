#!/usr/bin/env bash
# The main job on real input: register the folders of a root (default: this repository), then
# run N agent loops in parallel — the loop from skills/trail/SKILL.md — until the sweep is
# complete, check that no folder was handed out twice, and print `trail status`.
#
#   scripts/drain.sh [ROOT] [AGENTS]      (defaults: the repository, 4 agents)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
root=$(cd "${1:-$here}" && pwd)
agents=${2:-4}
trail="node $here/apps/cli/bin/trail.cjs --root $root"
task="demo-$(date +%s)"
log=$(mktemp -d)
trap 'rm -rf "$log"' EXIT

# Extract a string field from trail's one-line JSON (jq when present, node otherwise).
field() {
  if command -v jq >/dev/null 2>&1; then jq -r ".$1"
  else node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>process.stdout.write(String(JSON.parse(s)[process.argv[1]])))' "$1"
  fi
}

(cd "$root" && node "$here/apps/cli/bin/trail.cjs" init) >&2

# The agent loop (skills/trail/SKILL.md): claim, work, report; retry on 4, stop on 3.
agent() {
  local id=$1
  while true; do
    set +e
    out=$($trail next --task "$task" --agent "$id")
    code=$?
    set -e
    case $code in
      0)
        path=$(printf '%s' "$out" | field path)
        echo "$path" >> "$log/$id"
        files=$(find "$root/$path" -maxdepth 1 -type f | wc -l)   # the "work": look at the folder
        $trail done --task "$task" --path "$path" --agent "$id" --found $((files % 3)) > /dev/null
        ;;
      3) return 0 ;;                       # sweep complete
      4) sleep 0.2 ;;                      # everything left is leased elsewhere: retry
      *) echo "agent $id: trail next failed ($code): $out" >&2; return 1 ;;
    esac
  done
}

pids=()
for i in $(seq 1 "$agents"); do agent "a$i" & pids+=($!); done
for pid in "${pids[@]}"; do wait "$pid"; done

handed=$(cat "$log"/* | wc -l)
unique=$(cat "$log"/* | sort -u | wc -l)
echo "agents: $agents · folders handed out: $handed · distinct: $unique" >&2
for f in "$log"/*; do echo "  $(basename "$f"): $(wc -l < "$f") folders" >&2; done
if [ "$handed" != "$unique" ]; then echo "a folder was handed out twice" >&2; exit 1; fi
$trail status --task "$task" --pretty >&2
$trail status --task "$task"
