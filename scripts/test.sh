#!/usr/bin/env bash
# Every test of the project: Rust (fmt, clippy, unit and snapshot tests), then Python (ruff,
# pytest) on every CPython 3.9-3.13 this machine has, each against a wheel built for it.
#
#   bash scripts/test.sh                 # everything
#   RECOMPYLE_TEST_PYTHONS="python3.11" bash scripts/test.sh   # chosen interpreters only
#   bash scripts/test.sh -k differential # extra arguments go to pytest
#
# Slow suites (real packages' tests, CPython's tests, benchmarks) are separate: see README.
set -euo pipefail
# Nothing here reads input; a stray stdin must not reach rustc's `-` probes.
exec </dev/null
cd "$(dirname "$0")/.."
root=$(pwd)
work="$root/target/test-env"
mkdir -p "$work"

step() { printf '\n==> %s\n' "$*"; }

step "rust: fmt, clippy, tests"
cargo fmt --all --check
cargo clippy --workspace --all-targets --quiet -- -D warnings
cargo test --workspace --exclude recompyle_python --quiet
# The extension crate's pure logic (no interpreter needed): the call tree.
cargo test -p recompyle_python --lib --quiet call_tree

# Interpreters: $RECOMPYLE_TEST_PYTHONS, else every python3.9-3.13 on PATH or under pyenv.
pythons=()
if [[ -n "${RECOMPYLE_TEST_PYTHONS:-}" ]]; then
  read -r -a pythons <<<"$RECOMPYLE_TEST_PYTHONS"
else
  pyenv_root=$(pyenv root 2>/dev/null || echo "$HOME/.pyenv")
  for minor in 9 10 11 12 13; do
    found=""
    for candidate in "$pyenv_root"/versions/3."$minor".*/bin/python3."$minor"; do
      [[ -x "$candidate" ]] && found="$candidate"
    done
    if [[ -z "$found" ]] && command -v "python3.$minor" >/dev/null 2>&1; then
      found=$(command -v "python3.$minor")
      "$found" -c "" 2>/dev/null || found=""
    fi
    [[ -n "$found" ]] && pythons+=("$found")
  done
  [[ ${#pythons[@]} -gt 0 ]] || pythons=("$(command -v python3)")
fi
printf 'interpreters:\n'; printf '  %s\n' "${pythons[@]}"

step "tools venv (maturin, ruff)"
tools="$work/tools"
[[ -x "$tools/bin/python" ]] || "${pythons[-1]}" -m venv "$tools"
"$tools/bin/python" -m pip install --quiet --disable-pip-version-check "maturin>=1.5,<2" "ruff==0.8.4"
"$tools/bin/ruff" check python tests benches examples
"$tools/bin/ruff" format --check python tests benches examples

step "test-only tools (inferno-flamegraph for the collapsed-stack tests)"
# Built once into target/tools and kept: the exporters' tests read collapsed stacks back
# with the real inferno-flamegraph (one binary, without the default features: ~3 minutes
# on 2 cores).
if [[ ! -x "$root/target/tools/bin/inferno-flamegraph" ]]; then
  cargo install --quiet --locked --root "$root/target/tools" --no-default-features \
    --features cli --bin inferno-flamegraph inferno --version "^0.12" \
    || echo "warning: cannot install inferno; the collapsed-stack read-back test will skip"
fi
export RECOMPYLE_INFERNO="$root/target/tools/bin/inferno-flamegraph"

step "test-only tools (headless Chromium for the HTML report's browser tests)"
# Debian's chromium and chromium-driver, installed once (apt-get, as root); elsewhere, or if
# apt cannot have them, the browser tests skip and say why.
if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then
  if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
        chromium chromium-driver >/dev/null; } \
      || echo "warning: cannot install chromium; the browser tests will skip"
  else
    echo "warning: no chromium/chromedriver and no root apt-get; the browser tests will skip"
  fi
fi

step "build wheels"
rm -rf "$work/wheels"
interp_args=()
for py in "${pythons[@]}"; do interp_args+=(-i "$py"); done
"$tools/bin/maturin" build --release --quiet "${interp_args[@]}" --out "$work/wheels"

status=0
for py in "${pythons[@]}"; do
  tag=$("$py" -c 'import sys; print("cp%d%d" % sys.version_info[:2])')
  step "python $tag: pytest"
  venv="$work/venv-$tag"
  [[ -x "$venv/bin/python" ]] || "$py" -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "pytest>=7" "coverage>=7" \
    "gprof2dot>=2024" "selenium>=4.10"
  # The pytest plugin's xdist test and the IPython/Jupyter tests (a notebook run by a real
  # kernel); pip picks the newest IPython this interpreter supports (9.x needs 3.11+).
  # Their tests skip, naming what is missing, only if these cannot be installed.
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
    pytest-xdist ipython ipykernel nbclient nbformat ||
    echo "warning: pytest-xdist/IPython/Jupyter not installed for $tag; their tests skip"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --force-reinstall \
    --no-deps "$work"/wheels/recompyle-*-"$tag"-*.whl
  # Run from a copy-free location so `import recompyle` finds the installed wheel, not ./python.
  (cd "$root" && "$venv/bin/python" -m pytest -q -p no:cacheprovider "$@" tests) || status=1
done
exit $status
