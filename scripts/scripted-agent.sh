#!/bin/sh
# A scripted stand-in for an AI coding agent: it does what a real agent in a trail fleet does,
# through the same worker protocol, without a model. It looks at the folder it was handed
# ($TRAIL_PATH), counts TODO/FIXME markers in it as its "findings", and reports them with evidence.
#
#   worker.command = ["sh", "scripts/scripted-agent.sh"]   (in .trail.toml; the prompt is in $TRAIL_PROMPT)
#
# SCRIPTED_AGENT_DELAY (seconds, default 1) is how long it "thinks" per folder.
set -eu
folder="${TRAIL_PATH:-.}"
cd "$TRAIL_ROOT"
trail worker todos "list the files of $folder" "look for TODO and FIXME markers" "report" >/dev/null
sleep "${SCRIPTED_AGENT_DELAY:-1}"
files=$(find "$folder" -maxdepth 1 -type f | wc -l | tr -d ' ')
hits=$(find "$folder" -maxdepth 1 -type f -exec grep -IHn -e 'TODO' -e 'FIXME' {} + 2>/dev/null || true)
found=$(printf '%s' "$hits" | grep -c . || true)
evidence=$(printf '%s' "$hits" | head -3)
trail worker note "looked at $files file(s) in $folder" >/dev/null
trail worker done \
  --outcome "$found marker(s) in $folder" \
  --summary "Scanned the $files file(s) directly in $folder for TODO/FIXME markers." \
  --evidence "find $folder -maxdepth 1 -type f: $files file(s)" \
  --evidence "${evidence:-no TODO/FIXME lines}" \
  --found "$found" >/dev/null
echo "done: $folder ($found marker(s))"
