#!/usr/bin/env bash
# The GPU figures for docs/maintainers.md, in one go, on a machine with a CUDA GPU and the project installed
# (pip install -e .): scripts/benchmark.py at batch 64 and 512 in float32 and bf16-mixed, all three pipelines on
# the GPU, then the project alone at batch 64 with several steps_per_execution, to choose the GPU's default from
# its c/b, and the race to 99% (experiment=speedrun against the published recipe in plain PyTorch, 5 seeds each).
# About 8 minutes where (a)'s DataLoader epoch takes 6-8 s.
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONUNBUFFERED=1
for batch in 64 512; do
    for precision in 32-true bf16-mixed; do
        echo "== batch $batch, trainer.precision=$precision"
        python scripts/benchmark.py --device cuda --repeats 3 --batch-size "$batch" "trainer.precision=$precision"
    done
done
for n in 1 16 256; do  # 64, the default, ran above
    echo "== batch 64, steps_per_execution=$n"
    python scripts/benchmark.py --device cuda --repeats 2 "steps_per_execution=$n"
done
echo "== time to 99%: experiment=speedrun against the reference recipe, both on the GPU"
python scripts/benchmark.py --device cuda --speedrun
