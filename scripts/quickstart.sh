#!/usr/bin/env bash
# The first command of the README: installs dependencies, builds hpoc and runs it on the examples.
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
