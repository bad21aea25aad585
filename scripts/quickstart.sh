#!/usr/bin/env bash
# The first command of the README: installs dependencies, builds hpoc, checks the examples and trains a policy.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
bash scripts/build.sh
for model in examples/*.hpo; do
  ./build/tools/hpoc/hpoc check "$model"
done
./build/tools/hpoc/hpoc check examples/switched_lqr.hpo --params examples/switched_lqr_params.json
./build/tools/hpoc/hpoc analyze examples/inventory.hpo
./build/examples/simulate
# The main job: train a policy for the inventory model, then compare with the best (s, S) policy
# on the same test scenarios and evaluate the saved checkpoint again.
./build/tools/hpoc/hpoc train examples/inventory.hpo --algo hpo --out runs/inventory
./build/bench/ss_grid examples/inventory.hpo
./build/tools/hpoc/hpoc eval runs/inventory/policy.ckpt
