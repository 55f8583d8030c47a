#!/usr/bin/env bash
# Create .venv-peers, the isolated environment bench/peers.py runs RecBole 1.2.1 in (it needs numpy<2).
# CPU torch first, then RecBole's dependencies pinned for numpy 1.x, then RecBole itself without its extras
# (ray, hyperopt: recbole.quick_start is never imported).
set -euo pipefail
cd "$(dirname "$0")/../.."
VENV=${VENV:-.venv-peers}
test -x "$VENV/bin/python" || python3 -m venv "$VENV"
"$VENV/bin/pip" install --quiet --upgrade pip
"$VENV/bin/pip" install --quiet torch==2.13.0
"$VENV/bin/pip" install --quiet "numpy<2" "setuptools<70" "scipy<1.14" "pandas<2.3" "scikit-learn<1.6" tqdm \
  "colorlog==4.7.2" "colorama==0.4.4" pyyaml tensorboard tabulate plotly texttable
"$VENV/bin/pip" install --quiet --no-deps recbole==1.2.1 thop
"$VENV/bin/python" -c "import recbole.config, recbole.data, recbole.utils; print('recbole ready')"
