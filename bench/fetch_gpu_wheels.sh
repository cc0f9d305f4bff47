#!/usr/bin/env bash
# Download (here, where PyPI is reachable) the wheels bench/gpu_check.sh needs on the GPU image,
# which has torch, accelerate, tokenizers and an older transformers but no nnsight, TransformerLens,
# TRL or pydantic. Versions match this machine's install. Output: .whl/ (git-ignored through
# .git/info/exclude; about 30 MB, under the device tool's 64 MiB carry).
set -euo pipefail
cd "$(dirname "$0")/.."
grep -qx '/.whl/' .git/info/exclude 2>/dev/null || echo '/.whl/' >> .git/info/exclude
rm -rf .whl
PLAT="--platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 --platform any"
for pkg in transformers==5.24.0 nnsight==0.8.1 transformer-lens==4.3.0 trl==1.16.0 peft==0.21.2 datasets==5.2.0 \
           dill==0.4.1 multiprocess==0.70.19 greenlet==3.5.6 zstandard==0.25.0 websocket-client==1.9.2 \
           beartype==0.23.1 fancy-einsum==0.0.3 typeguard==4.6.1 typing-extensions==4.16.0 \
           pydantic==2.14.4 pydantic-core==2.50.5 annotated-types==0.8.0 typing-inspection==0.4.5 \
           regex==2026.11.19; do
  python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp $PLAT -d .whl "$pkg"
done
du -sh .whl
