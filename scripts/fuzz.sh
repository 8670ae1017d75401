#!/usr/bin/env bash
# Slow suite: fuzz the transform (cargo fuzz, libFuzzer) for a fixed budget, then the loader
# (atheris) over random bytes. Not part of scripts/test.sh; see README "Slow suites".
#
#   bash scripts/fuzz.sh [SECONDS]        # default 1800 s for the transform, 300 s for the loader
#   FUZZ_PYTHON=.venv/bin/python bash scripts/fuzz.sh 600
#
# The transform target (fuzz/fuzz_targets/transform.rs) is seeded with this interpreter's
# stdlib and tests/programs; what it adds to its corpus goes to a scratch directory, and only
# a minimised set (`-merge=1`) is kept in fuzz/corpus/transform, which is small and in the
# repository. A finding stops the run: its input is in fuzz/artifacts/transform/.
# Needs nightly Rust (rustup toolchain nightly) and `cargo install cargo-fuzz`.
set -euo pipefail
exec </dev/null
cd "$(dirname "$0")/.."
root=$(pwd)
budget=${1:-1800}
python=${FUZZ_PYTHON:-python3}
jobs=${FUZZ_JOBS:-1}

command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
rustup toolchain list | grep -q nightly || rustup toolchain install nightly --profile minimal

seeds="$root/target/fuzz-seeds"
scratch="$root/target/fuzz-corpus"
mkdir -p "$seeds" "$scratch"
stdlib=$("$python" -c 'import sysconfig; print(sysconfig.get_paths()["stdlib"])')
# Seeds: every stdlib and differential-suite file under 64 KiB (larger ones slow each run).
find "$stdlib" "$root/tests/programs" -name '*.py' -size -64k -not -path '*site-packages*' \
  -exec cp --backup=numbered -t "$seeds" {} + 2>/dev/null || true

cd fuzz
cargo +nightly fuzz build -O transform
# -timeout: one input may take at most 10 s (a quadratic blow-up shows as a timeout).
cargo +nightly fuzz run -O transform "$scratch" corpus/transform "$seeds" -- \
  -max_total_time="$budget" -timeout=10 -rss_limit_mb=4096 -max_len=65536 \
  -jobs="$jobs" -workers="$jobs" -print_final_stats=1
# Keep only the new inputs that add coverage, small ones, in the repository's corpus.
cargo +nightly fuzz run -O transform corpus/transform "$scratch" -- -merge=1 -max_len=4096
find corpus/transform -type f -size +1023c -delete
cd "$root"
# The same inputs against CPython's own compiler.
"$python" tests/slow/fuzz_compile.py fuzz/corpus/transform "$seeds"

step() { printf '\n==> %s\n' "$*"; }
step "loader (atheris), $((budget / 6)) s"
"$python" -m pip install --quiet --disable-pip-version-check atheris
# New inputs go to a scratch directory; the repository's few seeds are read only.
mkdir -p "$root/target/fuzz-loader-corpus"
"$python" tests/slow/fuzz_loader.py -max_total_time=$((budget / 6)) -timeout=20 \
  -rss_limit_mb=4096 "$root/target/fuzz-loader-corpus" "$root/fuzz/corpus/loader"
