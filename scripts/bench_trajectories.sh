#!/usr/bin/env bash
# Physics from trajectories (issue 16): for each problem, `physkan simulate` 10 trajectories
# (dt 0.01) without and with 1e-3 relative noise, then `physkan discover` on a copy of the
# built-in problem with `[data] file = ...`; prints recovered, wall time and the formula.
# Usage: bash scripts/bench_trajectories.sh [OUTDIR]   (PROBLEMS="a b" to choose)
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
PK=$root/.venv/bin/physkan
PY=$root/.venv/bin/python
out=${1:-/tmp/physkan-trajectories}
mkdir -p "$out" && cd "$out" || exit 2
for p in ${PROBLEMS:-coupled-oscillators charged-particle kepler-hamiltonian double-pendulum}; do
  for noise in 0 1e-3; do
    "$PK" simulate --problem "$p" --out "$p-$noise.csv" --n-traj 10 --dt 0.01 --noise "$noise" \
        --seed 0 >/dev/null || { echo "simulate failed: $p"; continue; }
    "$PY" - "$root" "$p" "$noise" <<'PYEOF'
import pathlib, re, sys
root, p, noise = sys.argv[1:]
src = pathlib.Path(root, "physkan/problems/builtin", f"{p}.toml").read_text()
src = re.sub(r"^name = .*$", f'name = "{p}-traj"', src, count=1, flags=re.M)
src = src.replace("[data]\n", f'[data]\nfile = "{p}-{noise}.csv"\n', 1)
pathlib.Path(f"{p}-{noise}.toml").write_text(src)
PYEOF
    start=$(date +%s.%N)
    "$PK" discover --problem "$p-$noise.toml" --no-register --json >"$p-$noise.json" 2>"$p-$noise.err"
    end=$(date +%s.%N)
    "$PY" - "$p" "$noise" "$start" "$end" <<'PYEOF'
import json, sys
p, noise, start, end = sys.argv[1:]
d = json.load(open(f"{p}-{noise}.json"))
print(f"{p} noise={noise} recovered={d['recovered']} wall={float(end) - float(start):.1f} s "
      f"budget_exhausted={d['metrics'].get('budget_exhausted')} {d['formula']}")
PYEOF
  done
done
