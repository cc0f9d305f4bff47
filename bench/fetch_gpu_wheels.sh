#!/usr/bin/env bash
# Download (here, where PyPI is reachable) the wheels bench/gpu_check.sh needs on the GPU image,
# which has torch and an older transformers but no nnsight or TransformerLens. Output: .whl/
# (git-ignored through .git/info/exclude; about 25 MB, under the device tool's 64 MiB carry).
set -euo pipefail
cd "$(dirname "$0")/.."
grep -qx '/.whl/' .git/info/exclude 2>/dev/null || echo '/.whl/' >> .git/info/exclude
PLAT="--platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 --platform any"
for pkg in transformers==5.24.0 nnsight==0.8.1 transformer-lens==4.3.0 greenlet zstandard websocket-client \
           beartype fancy-einsum typeguard datasets==5.2.0 dill multiprocess \
           huggingface-hub==1.* ; do
  python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp $PLAT -d .whl "$pkg"
done
du -sh .whl
