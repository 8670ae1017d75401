#!/usr/bin/env bash
# The benchmark environment, apart from every runtime dependency of recompyle:
#   .venv-bench/                      venv: recompyle (release build of this tree), pytest, and
#                                     the tools compared against: viztracer, pyinstrument,
#                                     pyccolo, typeguard
#   .venv-bench/recompyle-0.4.1/      recompyle 0.4.1 from PyPI (`pip install --target`): same
#                                     import name as this project, so only the calls worker
#                                     that puts this directory on PYTHONPATH imports it
#   target/bench-env/corpus/          the corpus's real packages (cachetools, more-itertools)
#                                     installed from their sdists, with copies of their tests
#
#   bash benches/setup_bench_env.sh                   # with python3.11 (pyenv's, or on PATH)
#   PYTHON=/path/to/python3.12 bash benches/setup_bench_env.sh
#
# Then: .venv-bench/bin/python benches/run_all.py   (see benches/README.md)
set -euo pipefail
exec </dev/null
cd "$(dirname "$0")/.."
root=$(pwd)
py=${PYTHON:-}
if [[ -z "$py" ]]; then
  for candidate in "$(pyenv root 2>/dev/null || echo "$HOME/.pyenv")"/versions/3.11.*/bin/python3.11 \
                   "$(command -v python3.11 || true)"; do
    [[ -x "$candidate" ]] && py="$candidate"
  done
fi
[[ -n "$py" ]] || { echo "no python3.11 found; set PYTHON" >&2; exit 1; }
venv="$root/.venv-bench"
[[ -x "$venv/bin/python" ]] || "$py" -m venv "$venv"
pip=("$venv/bin/python" -m pip install --quiet --disable-pip-version-check)
"${pip[@]}" "maturin>=1.5,<2" "pytest>=7" viztracer pyinstrument pyccolo typeguard
"${pip[@]}" --no-deps --upgrade --target "$venv/recompyle-0.4.1" "recompyle==0.4.1"
VIRTUAL_ENV="$venv" "$venv/bin/maturin" develop --release --quiet
corpus="$root/tests/corpus"
if [[ -x "$corpus/run_corpus.sh" ]]; then
  "$corpus/run_corpus.sh" --python "$venv/bin/python" --only cachetools,more-itertools \
    --work "$root/target/bench-env/corpus" --results "$root/target/bench-env/corpus-results"
else
  echo "no tests/corpus: the suite section will be skipped" >&2
fi
echo "bench environment ready: $venv/bin/python benches/run_all.py"
