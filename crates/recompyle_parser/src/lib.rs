//! Turn the bytes of a `.py` file into a syntax tree, exactly as far as CPython would.
//!
//! Two things matter for fidelity and live here: the bytes are decoded the way CPython's
//! tokenizer decodes them (PEP 263 coding cookie, UTF-8 BOM), and the parse targets the
//! running interpreter's version, so syntax the interpreter would reject is never rewritten.
//! When anything here fails, callers compile the *original* bytes so CPython raises its own
//! error; this crate never words a `SyntaxError` itself.

#![forbid(unsafe_code)]

mod decode;

pub use decode::{decode_source, Decoded};

use ruff_python_ast::{ModModule, PythonVersion};
use ruff_python_parser::{parse_unchecked, Mode, ParseOptions, Parsed};

/// Why a source could not be parsed for the target version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParseFailure {
    /// The grammar rejected the source; CPython will raise its own `SyntaxError`.
    Syntax { message: String, offset: u32 },
    /// The source uses syntax newer than the target version (e.g. PEP 701 f-strings on 3.11).
    Unsupported { message: String, offset: u32 },
}

impl std::fmt::Display for ParseFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ParseFailure::Syntax { message, offset } => {
                write!(f, "syntax error at byte {offset}: {message}")
            }
            ParseFailure::Unsupported { message, offset } => {
                write!(f, "unsupported syntax at byte {offset}: {message}")
            }
        }
    }
}

/// Parse decoded module source for `(major, minor)`.
pub fn parse_module(source: &str, version: (u8, u8)) -> Result<Parsed<ModModule>, ParseFailure> {
    let target = PythonVersion {
        major: version.0,
        minor: version.1,
    };
    let options = ParseOptions::from(Mode::Module).with_target_version(target);
    let parsed = parse_unchecked(source, options);
    if let Some(error) = parsed.errors().first() {
        return Err(ParseFailure::Syntax {
            message: error.error.to_string(),
            offset: error.location.start().to_u32(),
        });
    }
    if let Some(error) = parsed.unsupported_syntax_errors().first() {
        return Err(ParseFailure::Unsupported {
            message: error.to_string(),
            offset: error.range.start().to_u32(),
        });
    }
    match parsed.try_into_module() {
        Some(module) => Ok(module),
        None => Err(ParseFailure::Syntax {
            message: "not a module".to_string(),
            offset: 0,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_valid_module() {
        let parsed = parse_module("x = f(1)\n", (3, 11)).expect("valid");
        assert_eq!(parsed.syntax().body.len(), 1);
    }

    #[test]
    fn rejects_syntax_error() {
        assert!(matches!(
            parse_module("x = (\n", (3, 11)),
            Err(ParseFailure::Syntax { .. })
        ));
    }

    #[test]
    fn pep701_fstring_rejected_before_312() {
        let src = "x = f\"{'a' + \"b\"}\"\n";
        assert!(matches!(
            parse_module(src, (3, 11)),
            Err(ParseFailure::Unsupported { .. })
        ));
        assert!(parse_module(src, (3, 12)).is_ok());
    }

    #[test]
    fn match_statement_needs_310() {
        let src = "match x:\n    case 1:\n        pass\n";
        assert!(parse_module(src, (3, 9)).is_err());
        assert!(parse_module(src, (3, 10)).is_ok());
    }
}
