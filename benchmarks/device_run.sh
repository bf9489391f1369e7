#!/usr/bin/env bash
# Every GPU measurement of the study's cost in one command (benchmarks/device_bench.py): one
# table on stdout, $OUT/device_run.csv (or ./device_run.csv) for benchmarks/study_cost.py.
#
#   bash benchmarks/device_run.sh                        # one GPU; within 8 minutes on an H200
#   bash benchmarks/device_run.sh --quick --device cpu   # same code paths, tiny; < 2 min, 2 cores
#
# Needs torch, torchvision, numpy, OpenCV, scikit-image, Pillow and pycocotools (the training
# data pipeline decodes masks with it).  Where pycocotools is missing (the device machine has
# none), carry its wheel in .whl/ and it is installed to /tmp/site first; make the folder here:
#   echo /.whl/ >> .git/info/exclude
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 \
#       --implementation cp --platform manylinux_2_17_x86_64 -d .whl pycocotools==2.0.10
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if ! "$PY" -c "import pycocotools" 2>/dev/null; then
    if compgen -G ".whl/*.whl" >/dev/null; then
        "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
            --target /tmp/site .whl/*.whl
        export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
    else
        echo "device_run.sh: pycocotools is not importable and .whl/ has no wheels; see the" \
             "header of $0" >&2
        exit 2
    fi
fi
export PYTHONUNBUFFERED=1
exec "$PY" benchmarks/device_bench.py "$@"
