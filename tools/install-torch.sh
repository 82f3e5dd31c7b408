#!/bin/sh
# Install the torch release pinned in requirements.txt, as the CPU build.
#
#   tools/install-torch.sh PYTHON [auto|cpu|pip]
#
# On Linux, PyPI's torch wheel is the CUDA build: with its NVIDIA libraries it takes several GB,
# where the CPU build is a 183 MiB download and 754 MiB installed. The notes need only the CPU.
#   cpu   take torch from PyTorch's CPU wheel index (https://download.pytorch.org/whl/cpu)
#   pip   take it from wherever pip is configured to look (PyPI, a mirror, a wheel folder)
#   auto  (default) cpu on Linux, unless pip is configured with its own index or wheel folder
#         (pip.conf, PIP_* variables: a machine set up that way already chose its torch); pip on
#         macOS and Windows, where PyPI's wheel is the CPU build.
# `make env TORCH=cpu` (or TORCH=pip) passes the choice through.
set -eu
python=$1
route=${2:-auto}
here=$(dirname "$0")
torch=$(sed -n 's/^\(torch==[^ #]*\).*/\1/p' "$here/../requirements.txt")
[ -n "$torch" ] || { echo "install-torch.sh: no torch==... line in requirements.txt" >&2; exit 1; }

if [ "$route" = auto ]; then
    route=pip
    if [ "$(uname -s)" = Linux ] \
        && ! "$python" -m pip config list 2>/dev/null | grep -qE '(index-url|find-links)'; then
        route=cpu
    fi
fi
case "$route" in
    cpu)
        echo "torch: $torch, CPU build from https://download.pytorch.org/whl/cpu" >&2
        "$python" -m pip install --quiet "$torch" --index-url https://download.pytorch.org/whl/cpu
        ;;
    pip)
        echo "torch: $torch from pip's configured index" >&2
        "$python" -m pip install --quiet "$torch"
        ;;
    *)
        echo "install-torch.sh: the route is auto, cpu or pip, not '$route'" >&2
        exit 2
        ;;
esac
