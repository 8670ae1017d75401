//! Which modules are instrumented: comma-separated glob patterns over dotted module names.
//! Pure logic (no interpreter), tested by `cargo test`; `module_match.rs` is its Python
//! face.
//!
//! `pkg.*` selects `pkg` and every submodule at any depth; `pkg` selects only `pkg`; `*`
//! within a name matches inside one dotted component (`pkg.test_*`); a lone `*` selects
//! everything. recompyle itself and the import machinery are never selected: rewriting the
//! code that runs the rewrite would recurse.

use globset::{GlobBuilder, GlobSet, GlobSetBuilder};

const NEVER: &[&str] = &[
    "recompyle",
    "recompyle/**",
    "importlib",
    "importlib/**",
    "_frozen_importlib",
    "_frozen_importlib_external",
    "zipimport",
    "encodings",
    "encodings/**",
    "site",
    "sitecustomize",
    "usercustomize",
];

/// Compiled module patterns.
pub(crate) struct ModulePatterns {
    include: GlobSet,
    exclude: GlobSet,
    patterns: Vec<String>,
}

fn glob(pattern: &str) -> Result<globset::Glob, globset::Error> {
    GlobBuilder::new(pattern).literal_separator(true).build()
}

impl ModulePatterns {
    /// Parse `patterns`; the error is a one-line message naming the bad pattern.
    pub(crate) fn new(patterns: &str) -> Result<Self, String> {
        let mut include = GlobSetBuilder::new();
        let mut kept = Vec::new();
        for raw in patterns.split(',') {
            let pattern = raw.trim();
            if pattern.is_empty() {
                continue;
            }
            if pattern
                .chars()
                .any(|c| !(c.is_alphanumeric() || matches!(c, '_' | '.' | '*' | '?' | '[' | ']')))
            {
                return Err(format!(
                    "invalid module pattern {pattern:?}: use dotted names with * wildcards, e.g. 'pkg.*'"
                ));
            }
            let path = pattern.replace('.', "/");
            let globs = if path == "*" || path == "**" {
                vec!["**".to_string()]
            } else if let Some(prefix) = path.strip_suffix("/*") {
                vec![prefix.to_string(), format!("{prefix}/**")]
            } else {
                vec![path]
            };
            for g in globs {
                let compiled =
                    glob(&g).map_err(|e| format!("invalid module pattern {pattern:?}: {e}"))?;
                include.add(compiled);
            }
            kept.push(pattern.to_string());
        }
        let mut exclude = GlobSetBuilder::new();
        for g in NEVER {
            exclude.add(glob(g).map_err(|e| e.to_string())?);
        }
        let build = |b: GlobSetBuilder| b.build().map_err(|e| e.to_string());
        Ok(ModulePatterns {
            include: build(include)?,
            exclude: build(exclude)?,
            patterns: kept,
        })
    }

    /// Whether the dotted module name is selected.
    pub(crate) fn matches(&self, name: &str) -> bool {
        let path = name.replace('.', "/");
        self.include.is_match(&path) && !self.exclude.is_match(&path)
    }

    /// The patterns as given, trimmed, empty ones left out.
    pub(crate) fn patterns(&self) -> &[String] {
        &self.patterns
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matcher(patterns: &str) -> ModulePatterns {
        ModulePatterns::new(patterns).expect("valid patterns")
    }

    #[test]
    fn a_package_star_selects_it_and_every_submodule() {
        let m = matcher("pkg.*");
        assert!(m.matches("pkg"));
        assert!(m.matches("pkg.sub"));
        assert!(m.matches("pkg.sub.deep"));
        assert!(!m.matches("pkgx"));
        assert!(!m.matches("other.pkg"));
    }

    #[test]
    fn a_plain_name_selects_only_itself() {
        let m = matcher("pkg");
        assert!(m.matches("pkg"));
        assert!(!m.matches("pkg.sub"));
    }

    #[test]
    fn a_star_inside_a_name_stays_in_one_component() {
        let m = matcher("pkg.test_*");
        assert!(m.matches("pkg.test_a"));
        assert!(!m.matches("pkg.test_a.b"));
        assert!(!m.matches("pkg.other"));
    }

    #[test]
    fn everything_but_recompyle_and_the_import_machinery() {
        let m = matcher("*");
        assert!(m.matches("anything.at.all"));
        for never in [
            "recompyle",
            "recompyle.loader",
            "importlib.util",
            "encodings.utf_8",
            "site",
        ] {
            assert!(!m.matches(never), "{never}");
        }
    }

    #[test]
    fn patterns_are_trimmed_and_empty_ones_dropped() {
        let m = matcher(" a , ,b.* ,");
        assert_eq!(m.patterns(), ["a", "b.*"]);
        assert!(m.matches("a") && m.matches("b.c") && !m.matches("c"));
        assert!(ModulePatterns::new("")
            .expect("empty is valid")
            .patterns()
            .is_empty());
    }

    #[test]
    fn a_bad_pattern_is_named() {
        let err = ModulePatterns::new("ok, bad/name").err().expect("refused");
        assert!(err.contains("\"bad/name\""), "{err}");
        assert!(ModulePatterns::new("pkg.[").is_err());
    }
}
