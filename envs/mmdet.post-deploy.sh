#!/usr/bin/env bash
# Run by Snakemake (--sdm conda) inside the new envs/mmdet.yaml environment, once.
# mmcv with its ops (RoIAlign, nms; mmcv-lite cannot run Mask R-CNN) from OpenMMLab's prebuilt
# wheels for this torch/CUDA through mim.
set -euo pipefail
mim install "mmcv==2.1.0"
python -c "import mmcv.ops, mmdet, mmengine; print('mmdet', mmdet.__version__, 'mmcv', mmcv.__version__)"
