#!/usr/bin/env bash
# Every test of the project: Rust (fmt, clippy for every supported CPython's cfgs, unit and
# snapshot tests), then Python (ruff, pytest) on every CPython 3.9-3.15, each against a wheel
# built for it: 3.9-3.13 from pyenv (or PATH), 3.14 and 3.15 inside a Debian sid root that
# scripts/sid_root.sh builds and keeps outside the checkout (nothing else here has them).
#
#   bash scripts/test.sh                 # everything; a missing interpreter is an error
#   RECOMPYLE_TEST_PYTHONS="3.11 3.14" bash scripts/test.sh   # chosen versions only
#   RECOMPYLE_TEST_PYTHONS="/path/to/python3.12" bash scripts/test.sh   # or interpreters
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

# The documented interpreter set; RECOMPYLE_TEST_PYTHONS narrows it explicitly.
all_versions=(3.9 3.10 3.11 3.12 3.13 3.14 3.15)
# Versions taken from the sid root when the host has no interpreter for them.
sid_versions=" 3.14 3.15 "

step() { printf '\n==> %s (%ds so far)\n' "$*" "$SECONDS"; }
die() { printf 'test.sh: %s\n' "$*" >&2; exit 2; }

# Build a wheel for each interpreter given (with maturin from a tools venv named $1) and run
# pytest on each in a venv of its own. Runs on the host and, for 3.14/3.15, inside the sid root
# (RECOMPYLE_TEST_STAGE=python), where the venvs and target dir have names of their own.
python_suite() {
  local tools_name=$1 wheels=$2
  shift 2
  local pys=("${pythons[@]}")
  local tools="$work/$tools_name"
  [[ -x "$tools/bin/python" ]] || "${pys[-1]}" -m venv "$tools"
  "$tools/bin/python" -m pip install --quiet --disable-pip-version-check "maturin>=1.5,<2"
  rm -rf "$wheels"
  local interp_args=() py
  for py in "${pys[@]}"; do interp_args+=(-i "$py"); done
  step "build wheels (${tools_name})"
  "$tools/bin/maturin" build --release --quiet "${interp_args[@]}" --out "$wheels"
  local status=0 tag venv
  for py in "${pys[@]}"; do
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
    # mypy's stubtest checks _core.pyi against this interpreter's build of the extension
    # (tests/test_core_stub.py). mypy 2 no longer runs on 3.9.
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "mypy>=1.15,<2" ||
      echo "warning: mypy not installed for $tag; the stubtest check skips"
    # OpenTelemetry for the --otel tests: the SDK, the OTLP/HTTP exporter and the protobuf
    # messages (the test's receiver decodes them), and Flask under OpenTelemetry's own
    # instrumentation, in one resolution (their versions are pinned to each other); pip picks
    # the releases this interpreter supports. Without Flask if that cannot be had; the tests
    # skip, saying why, only for what does not install.
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
      opentelemetry-sdk opentelemetry-exporter-otlp-proto-http opentelemetry-proto \
      opentelemetry-instrumentation-flask flask || {
      echo "warning: Flask/its OpenTelemetry instrumentation not installed for $tag; that test skips"
      "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
        opentelemetry-sdk opentelemetry-exporter-otlp-proto-http opentelemetry-proto ||
        echo "warning: OpenTelemetry SDK not installed for $tag; the --otel tests skip"
    }
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --force-reinstall \
      --no-deps "$wheels"/recompyle-*-"$tag"-*.whl
    # Run from a copy-free location so `import recompyle` finds the installed wheel.
    (cd "$root" && "$venv/bin/python" -m pytest -q -p no:cacheprovider "$@" tests) || status=1
  done
  return $status
}

if [[ "${RECOMPYLE_TEST_STAGE:-}" == python ]]; then
  # Inside the sid root (see below): the interpreters are given, the Rust checks are done.
  read -r -a pythons <<<"$RECOMPYLE_TEST_PYTHONS"
  export CARGO_TARGET_DIR="$root/target/sid"
  # The host built inferno-flamegraph into the checkout (see below); no browser here, so the
  # HTML report's browser tests skip, saying so.
  export RECOMPYLE_INFERNO="$root/target/tools/bin/inferno-flamegraph"
  python_suite tools-sid "$work/wheels-sid" "$@"
  exit
fi

# An interpreter for version $1 on the host: pyenv's newest, else python3.N on PATH.
host_python() {
  local minor=${1#3.} found="" candidate pyenv_root
  pyenv_root=$(pyenv root 2>/dev/null || echo "$HOME/.pyenv")
  for candidate in "$pyenv_root"/versions/3."$minor".*/bin/python3."$minor"; do
    [[ -x "$candidate" && "$candidate" != *t/bin/* ]] && found="$candidate"
  done
  if [[ -z "$found" ]] && command -v "python3.$minor" >/dev/null 2>&1; then
    found=$(command -v "python3.$minor")
    "$found" -c "" 2>/dev/null || found=""
  fi
  printf '%s' "$found"
}

pythons=()     # host interpreters
sid_pythons=() # interpreters inside the sid root
wanted=("${all_versions[@]}")
[[ -n "${RECOMPYLE_TEST_PYTHONS:-}" ]] && read -r -a wanted <<<"$RECOMPYLE_TEST_PYTHONS"
for want in "${wanted[@]}"; do
  if [[ "$want" =~ ^3\.[0-9]+$ ]]; then
    py=$(host_python "$want")
    if [[ -n "$py" ]]; then
      pythons+=("$py")
    elif [[ "$sid_versions" == *" $want "* ]]; then
      sid_pythons+=("/usr/bin/python$want")
    else
      die "no CPython $want here (pyenv or PATH); narrow the set with RECOMPYLE_TEST_PYTHONS"
    fi
  else
    command -v "$want" >/dev/null 2>&1 || die "RECOMPYLE_TEST_PYTHONS: no interpreter '$want'"
    pythons+=("$(command -v "$want")")
  fi
done
printf 'interpreters:\n'
for py in "${pythons[@]}"; do printf '  %s\n' "$py"; done
for py in "${sid_pythons[@]}"; do printf '  %s (sid root)\n' "$py"; done

step "rust: fmt, tests"
cargo fmt --all --check
cargo test --workspace --exclude recompyle_python --quiet
# The extension crate's pure logic (no interpreter needed): the call tree, the site
# registry, id and key hashing, module matching, the listeners' flags, the cache checksum.
cargo test -p recompyle_python --lib --quiet -- call_tree sites:: id_hash module_patterns listeners checksum::

# No two modules of a crate import each other in a cycle (a submodule's file counts as its
# crate-level module's).
python3 scripts/check_module_cycles.py

# pyo3 sets `Py_3_N` cfgs from the interpreter it builds for, and the extension has code for
# some versions only: lint it as built for each, from a config file (no interpreter needed).
# The lint policy is `[workspace.lints]` in Cargo.toml: among others every `unsafe fn`
# (private ones too, `clippy.toml`) needs a `# Safety` section (`missing_safety_doc`), and
# every unsafe operation in one its own `unsafe` block (`unsafe_op_in_unsafe_fn`).
step "rust: clippy for CPython ${all_versions[*]}"
cfg_dir="$work/pyo3-cfg"
mkdir -p "$cfg_dir"
for version in "${all_versions[@]}"; do
  # Written once and renamed into place: another run reading it never sees it half written,
  # and an unchanged file does not make pyo3's build script run again.
  cfg=$(printf 'implementation=CPython\nversion=%s\nshared=true\nabi3=false' "$version")
  if [[ "$(cat "$cfg_dir/$version.txt" 2>/dev/null)" != "$cfg" ]]; then
    printf '%s\n' "$cfg" >"$cfg_dir/$version.txt.$$"
    mv -f "$cfg_dir/$version.txt.$$" "$cfg_dir/$version.txt"
  fi
  PYO3_CONFIG_FILE="$cfg_dir/$version.txt" CARGO_TARGET_DIR="$root/target/clippy" \
    cargo clippy --workspace --all-targets --quiet -- -D warnings ||
    die "clippy failed for CPython $version's cfgs"
done

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

status=0
if [[ ${#pythons[@]} -gt 0 ]]; then
  step "tools venv (ruff, mypy)"
  [[ -x "$work/tools/bin/python" ]] || "${pythons[-1]}" -m venv "$work/tools"
  # mypy 1.x: the last series that checks for Python 3.9, the oldest supported.
  "$work/tools/bin/python" -m pip install --quiet --disable-pip-version-check "ruff==0.8.4" \
    "mypy>=1.15,<2"
  "$work/tools/bin/ruff" check python tests benches examples
  "$work/tools/bin/ruff" format --check python tests benches examples
  # The type policy is written in pyproject.toml ([tool.mypy]): python/recompyle for 3.9.
  "$work/tools/bin/mypy"
  python_suite tools "$work/wheels" "$@" || status=1
fi

if [[ ${#sid_pythons[@]} -gt 0 ]]; then
  step "sid root for ${sid_pythons[*]}"
  bash scripts/sid_root.sh ensure
  RECOMPYLE_TEST_STAGE=python RECOMPYLE_TEST_PYTHONS="${sid_pythons[*]}" \
    bash scripts/sid_root.sh run bash scripts/test.sh "$@" || status=1
fi
step "done"
exit $status
