//! Transform throughput on a real corpus: every `.py` file of a CPython standard library,
//! rewritten single-threaded, in MB/s (10^6 bytes of source per second).
//!
//! ```sh
//! cargo bench -p recompyle_transform --bench throughput                    # python3's stdlib
//! cargo bench -p recompyle_transform --bench throughput -- --python /path/to/python3.11
//! cargo bench -p recompyle_transform --bench throughput -- --dir DIR --version 3.12
//! ```
//!
//! No bench framework (no new dependency): the files are read and decoded once, transformed
//! once to warm up (files the target version's parser refuses, such as the lib2to3 test
//! data written in Python 2, are counted and left out), then every file is transformed in
//! each of `--passes` passes (default 7) timed with `std::time::Instant`. The best and the
//! median pass are reported, and, for reference, the parser alone on the same files; the
//! last line, `throughput_mb_s=...` (median), is for scripts.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

use recompyle_parser::{decode_source, parse_module, Decoded};
use recompyle_transform::{transform, Options};

struct Args {
    python: String,
    dir: Option<PathBuf>,
    version: Option<(u8, u8)>,
    passes: usize,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        python: std::env::var("PYTHON").unwrap_or_else(|_| "python3".to_owned()),
        dir: None,
        version: None,
        passes: 7,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = |name: &str| it.next().ok_or_else(|| format!("{name} needs a value"));
        match arg.as_str() {
            "--python" => args.python = value("--python")?,
            "--dir" => args.dir = Some(PathBuf::from(value("--dir")?)),
            "--version" => {
                let v = value("--version")?;
                args.version = Some(parse_version(&v).ok_or(format!("bad --version {v:?}"))?);
            }
            "--passes" => {
                let v = value("--passes")?;
                args.passes = v
                    .parse()
                    .ok()
                    .filter(|&n| n > 0)
                    .ok_or(format!("bad --passes {v:?}"))?;
            }
            // `cargo bench` passes `--bench`; filters and other harness flags mean nothing here.
            _ => {}
        }
    }
    Ok(args)
}

fn parse_version(text: &str) -> Option<(u8, u8)> {
    let (major, minor) = text.trim().split_once('.')?;
    Some((major.parse().ok()?, minor.parse().ok()?))
}

/// The standard library directory and `major.minor` of `python`.
fn ask_python(python: &str) -> Result<(PathBuf, (u8, u8)), String> {
    let out = Command::new(python)
        .args([
            "-c",
            "import sys, sysconfig; print(sysconfig.get_paths()['stdlib']); \
             print('%d.%d' % sys.version_info[:2])",
        ])
        .output()
        .map_err(|e| format!("cannot run {python}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "{python} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let mut lines = text.lines();
    let dir = lines.next().ok_or("no stdlib path")?;
    let version = lines
        .next()
        .and_then(parse_version)
        .ok_or("no version from python")?;
    Ok((PathBuf::from(dir), version))
}

fn collect(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<_> = entries.filter_map(Result::ok).collect();
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let path = entry.path();
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        if kind.is_dir() {
            // Installed third-party packages are not the standard library.
            if entry.file_name() != "site-packages" && entry.file_name() != "__pycache__" {
                collect(&path, out);
            }
        } else if kind.is_file() && path.extension().is_some_and(|e| e == "py") {
            out.push(path);
        }
    }
}

fn mb_per_s(bytes: usize, time: Duration) -> f64 {
    bytes as f64 / 1e6 / time.as_secs_f64()
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(args) => args,
        Err(e) => {
            eprintln!("throughput: {e}");
            return ExitCode::from(2);
        }
    };
    let (dir, version) = match (&args.dir, args.version) {
        (Some(dir), Some(version)) => (dir.clone(), version),
        _ => match ask_python(&args.python) {
            Ok((dir, version)) => (
                args.dir.clone().unwrap_or(dir),
                args.version.unwrap_or(version),
            ),
            Err(e) => {
                eprintln!("throughput: {e} (give --dir DIR --version X.Y instead)");
                return ExitCode::from(2);
            }
        },
    };
    let mut paths = Vec::new();
    collect(&dir, &mut paths);

    // Read and decode once; keep what the target version's parser accepts.
    let mut texts: Vec<String> = Vec::new();
    let (mut refused, mut undecodable) = (0usize, 0usize);
    for path in &paths {
        let Ok(bytes) = std::fs::read(path) else {
            undecodable += 1;
            continue;
        };
        let text = match decode_source(&bytes) {
            Decoded::Text(text) => text.into_owned(),
            Decoded::Codec { .. } | Decoded::Invalid => {
                undecodable += 1;
                continue;
            }
        };
        let options = Options {
            version,
            module_key: 1,
            track_globals: false,
        };
        match transform(&text, &options) {
            Ok(_) => texts.push(text),
            Err(_) => refused += 1,
        }
    }
    let bytes: usize = texts.iter().map(String::len).sum();
    if texts.is_empty() {
        eprintln!(
            "throughput: no Python file transformed under {}",
            dir.display()
        );
        return ExitCode::from(1);
    }

    let mut passes = Vec::with_capacity(args.passes);
    let mut sites = 0usize;
    for _ in 0..args.passes {
        sites = 0;
        let start = Instant::now();
        for (i, text) in texts.iter().enumerate() {
            let options = Options {
                version,
                module_key: i as u32,
                track_globals: false,
            };
            if let Ok(out) = transform(text, &options) {
                sites += out.sites.len();
                std::hint::black_box(&out);
            }
        }
        passes.push(start.elapsed());
    }
    passes.sort();
    // Reference: the parser alone (ruff's, through recompyle_parser), same files, same way.
    let mut parse_passes = Vec::with_capacity(args.passes);
    for _ in 0..args.passes {
        let start = Instant::now();
        for text in &texts {
            std::hint::black_box(parse_module(text, version).is_ok());
        }
        parse_passes.push(start.elapsed());
    }
    parse_passes.sort();
    let parse_median = parse_passes[parse_passes.len() / 2];
    let best = passes[0];
    let median = passes[passes.len() / 2];
    println!(
        "stdlib {} (target {}.{}): {} files, {:.2} MB, {} call sites; {} refused by the \
         parser, {} not UTF-8/Latin-1",
        dir.display(),
        version.0,
        version.1,
        texts.len(),
        bytes as f64 / 1e6,
        sites,
        refused,
        undecodable
    );
    println!(
        "single thread, {} passes: best {:.1} ms = {:.1} MB/s, median {:.1} ms = {:.1} MB/s",
        passes.len(),
        best.as_secs_f64() * 1e3,
        mb_per_s(bytes, best),
        median.as_secs_f64() * 1e3,
        mb_per_s(bytes, median)
    );
    println!(
        "reference, parsing alone: median {:.1} ms = {:.1} MB/s ({:.0}% of the transform's time)",
        parse_median.as_secs_f64() * 1e3,
        mb_per_s(bytes, parse_median),
        100.0 * parse_median.as_secs_f64() / median.as_secs_f64()
    );
    println!("throughput_mb_s={:.1}", mb_per_s(bytes, median));
    ExitCode::SUCCESS
}
