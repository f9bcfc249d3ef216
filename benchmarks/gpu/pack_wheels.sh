#!/usr/bin/env bash
# Downloads the pure-Python wheels the GPU benchmark's Grounding DINO stages need where the GPU
# host's Python is older (the device's image has transformers 5.17, whose GroundingDinoModel has
# no `special_tokens` buffer; the exporter and its tests follow the version pinned in
# scripts/requirements-export.txt) into .whl/ (ignored by git), to be carried with the run:
#
#   bash benchmarks/gpu/pack_wheels.sh        # here, where pip reaches PyPI
#   (carry .whl) ... bash benchmarks/gpu/run_on_device.sh   # there: families.sh installs them
#                                                          # into $WORK for those stages only
#
# Only transformers travels: its other needs (huggingface_hub >= 1.31, tokenizers 0.23,
# safetensors) are in the device's image (/work/.library/device/KINDS.md lists hub 1.33.0).
set -euo pipefail
cd "$(dirname "$0")/../.."
ver=$(sed -n 's/^transformers==//p' scripts/requirements-export.txt)
if [ -z "$ver" ]; then echo "error: scripts/requirements-export.txt pins no transformers version" >&2; exit 1; fi
mkdir -p .whl
rm -f .whl/transformers-*.whl
"${PYTHON:-python3}" -m pip download -q --no-deps --only-binary=:all: -d .whl "transformers==$ver"
ls -la .whl
