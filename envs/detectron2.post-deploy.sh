#!/usr/bin/env bash
# Run by Snakemake (--sdm conda) inside the new envs/detectron2.yaml environment, once.
# detectron2's setup.py imports torch, hence --no-build-isolation. FORCE_CUDA builds the CUDA ops
# on a node without a GPU too (a login node); TORCH_CUDA_ARCH_LIST: V100, A100, H100.
set -euo pipefail
DETECTRON2_COMMIT=58e472e076   # the study's
export CUDA_HOME="${CONDA_PREFIX}" FORCE_CUDA=1 TORCH_CUDA_ARCH_LIST="${TORCH_CUDA_ARCH_LIST:-7.0;8.0;9.0}"
pip install --no-build-isolation --no-deps \
    "detectron2@git+https://github.com/facebookresearch/detectron2.git@${DETECTRON2_COMMIT}"
python -c "import detectron2, detectron2._C; print('detectron2', detectron2.__version__, detectron2.__file__)"
