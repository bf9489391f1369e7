#!/usr/bin/env bash
# Run by Snakemake (--sdm conda) inside the new envs/deep_privacy2.yaml environment, once.
# DeepPrivacy2's setup.py imports torch, hence --no-build-isolation (also for detectron2, whose
# DensePose project dp2.utils imports). Pinned to the commits anonbench's adapter was written
# against (src/anonbench/realistic/dp2.py).
set -euo pipefail
DP2_COMMIT=f4d8f09d1eb8f758c89cf1795ae41f20533942d3
DETECTRON2_COMMIT=96c752ce821a3340e27edd51c28a00665dd32a30
pip install --no-build-isolation \
    "detectron2@git+https://github.com/facebookresearch/detectron2@${DETECTRON2_COMMIT}" \
    "detectron2-densepose@git+https://github.com/facebookresearch/detectron2@${DETECTRON2_COMMIT}#subdirectory=projects/DensePose" \
    "tops@git+https://github.com/hukkelas/torch_ops.git"
pip install --no-build-isolation --no-deps --src "${CONDA_PREFIX}/src" \
    -e "git+https://github.com/hukkelas/deep_privacy2@${DP2_COMMIT}#egg=dp2"
python -c "import dp2, tops, sg3_torch_utils; print('DeepPrivacy2', dp2.__file__)"
