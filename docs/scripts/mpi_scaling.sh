#!/usr/bin/env bash
# Steps/s of one training run on 1 and 2 MPI ranks on this machine, and the all-reduce of one
# gradient of each network (docs/benchmarks.md, "Across processes"). Usage, from the repository
# root, on an otherwise idle machine:
#   bash docs/scripts/mpi_scaling.sh [PRESET] [STEPS]
# Needs Open MPI (apt-get install openmpi-bin libopenmpi-dev libclang-dev).
set -euo pipefail
preset="${1:-quickstart}"
steps="${2:-60}"
target="${CARGO_TARGET_DIR:-target}"
cargo build --release -p infobound-cli --features mpi
cargo build --release -p infobound-collective --features mpi --example allreduce_bench
bin="$target/release/infobound"
mpi=(mpirun --oversubscribe --allow-run-as-root --bind-to none
     --mca pml ob1 --mca btl self,tcp --mca btl_tcp_if_include lo)
scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
for ranks in 1 2; do
    out="$scratch/ranks$ranks"
    if [ "$ranks" = 1 ]; then
        "$bin" train --preset "$preset" --steps "$steps" --quiet --no-eval --out "$out" 2> "$out.log"
    else
        "${mpi[@]}" -np "$ranks" "$bin" train --preset "$preset" --steps "$steps" --quiet \
            --no-eval --out "$out" 2> "$out.log"
    fi
    # The log's second half: steps/s without the first steps' warm-up.
    python3 - "$out/train_log.jsonl" "$ranks" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if '"steps_per_second"' in l]
half = rows[len(rows) // 2:]
rate = statistics.median(r["steps_per_second"] for r in half)
print(f"ranks {sys.argv[2]}: {rate:.2f} steps/s ({1000 / rate:.1f} ms/step, median of {len(half)} log rows)")
PY
done
"${mpi[@]}" -np 2 "$target/release/examples/allreduce_bench"
