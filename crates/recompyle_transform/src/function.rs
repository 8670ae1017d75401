//! One function's text rewritten so each call in it goes through a decorator's layers.
//!
//! `wrap_calls` and `flat_profile` rewrite a single function (or lambda) rather than a module.
//! A call `f(a, k=v)` in it becomes `__recompyle_w__(ID, f, a, k=v)`: one native call that
//! receives the site, the callee and the arguments in vectorcall layout and hands them to the
//! decorator's wrapper or timer. `await f(a)` uses `__recompyle_wa__`, which times the awaited
//! work. The callee and the arguments are still evaluated once each, left to right.
//!
//! The output is text ready to compile at the function's own lines and columns: blank lines
//! down to the function, then a scaffold that gives it the original's scopes (a factory whose
//! parameters become the cells of the original's free variables, a class of the original's
//! name so private names mangle the same), each decorator replaced by a placeholder (they
//! were applied once already; only the code object is taken from the result), then the
//! function's own text with the call edits.

use ruff_python_ast::visitor::{self, Visitor};
use ruff_python_ast::{self as ast, Expr, Number, Stmt};
use ruff_text_size::{Ranged, TextRange, TextSize};

use crate::call_walk::{self, CallRewriter, CallWalk};
use crate::positions::{apply_edits, Applied, Edit, LineIndex, PositionMap};
use crate::{site_id, TransformError};

// The builtin names live in `names.rs` (one place for the transform and the bindings).
pub use crate::names::{AWAIT_SELECTOR, FACTORY, WRAP_SELECTOR};

/// Which calls to rewrite, by the name the original recompyle gives a callee.
#[derive(Debug, Clone, Default)]
pub struct CallFilter {
    pub blacklist: Vec<String>,
    pub whitelist: Vec<String>,
    /// Names never rewritten whatever the lists say (`ignore_builtins`).
    pub ignore: Vec<String>,
}

/// What to rewrite and how.
#[derive(Debug, Clone)]
pub struct FunctionOptions {
    pub version: (u8, u8),
    /// The code object's `co_firstlineno` (the first decorator's line when decorated).
    pub line: u32,
    /// `co_name`: the function's name, or `<lambda>`.
    pub name: String,
    /// For several lambdas on one line: a (line, column) inside the wanted one.
    pub hint: Option<(u32, u32)>,
    /// The original's `co_freevars`, made cells of the factory.
    pub freevars: Vec<String>,
    /// The class the function was defined in, for name mangling.
    pub class_name: Option<String>,
    /// Key of the site ids, `site_id(key, index)`.
    pub key: u32,
    /// Use [`AWAIT_SELECTOR`] for awaited calls.
    pub time_awaits: bool,
    /// The function has one layer, a Python wrapper: call it directly, `ID(f, a)`, with
    /// the wrapper put in place of `ID`, so the interpreter runs it inline. Callees that
    /// read their caller's frame keep the selector, which bypasses the wrapper for them.
    pub direct: bool,
    pub filter: CallFilter,
}

/// One rewritten call of the function.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionSite {
    pub id: u64,
    pub line: u32,
    pub col: u32,
    pub end_line: u32,
    pub end_col: u32,
    pub callee: String,
    pub awaited: bool,
    /// Written `ID(callee, ...)`: `ID` stands for the wrapper itself.
    pub direct: bool,
}

/// The rewritten function.
#[derive(Debug, Clone)]
pub struct RewrittenFunction {
    /// Text to compile; the function sits at its original lines and columns.
    pub code: String,
    /// The function's original text, decorators included.
    pub original_source: String,
    /// The same text with the call edits.
    pub new_source: String,
    /// The function's qualified name as compiled inside the scaffold.
    pub scaffold_qualname: String,
    /// Lines the scaffold needs above the function that the file did not have: compile
    /// `code`, then move every line of the result back by this many.
    pub line_shift: u32,
    pub sites: Vec<FunctionSite>,
    pub positions: PositionMap,
}

/// Rewrite the function of `options.name` starting on `options.line` in `source`.
pub fn rewrite_function(
    source: &str,
    options: &FunctionOptions,
) -> Result<RewrittenFunction, TransformError> {
    let parsed =
        recompyle_parser::parse_module(source, options.version).map_err(TransformError::Parse)?;
    let module = parsed.syntax();
    let lines = LineIndex::new(source);
    let target = find_target(source, &lines, &module.body, options)?;
    let place = Placement::of(source, &lines, &target);

    let (applied, sites) = rewrite_calls(source, &lines, &module.body, &target, options)?;
    let body = applied.text;
    let before_text = &source[place.line_start..target.text_start.to_usize()];

    let is_lambda = matches!(target.node, Target::Lambda(_));
    let scaffold = Scaffold::new(options, &body, place.indent, is_lambda)?;
    if is_lambda && (place.start_col as usize) < scaffold.indent.len() + 1 {
        return Err(TransformError::Internal(format!(
            "the lambda on line {} starts too far left for its scopes",
            place.start_line
        )));
    }
    let (code, line_shift) = scaffold.code(&target, &place, &lines, &body);
    Ok(RewrittenFunction {
        code,
        original_source: source[place.line_start..target.end.to_usize()].to_string(),
        new_source: format!("{before_text}{body}"),
        line_shift,
        scaffold_qualname: scaffold.qualname,
        sites,
        positions: applied.positions,
    })
}

/// Where the function's text sits in the file.
struct Placement<'s> {
    /// The byte that starts the function's first line (its first decorator's).
    line_start: usize,
    /// That line, 1-based.
    first_line: u32,
    /// The line and column of the `def`/`async` or `lambda` keyword.
    start_line: u32,
    start_col: u32,
    /// The text before that keyword on its line.
    indent: &'s str,
}

impl<'s> Placement<'s> {
    fn of(source: &'s str, lines: &LineIndex, target: &Found<'_>) -> Self {
        let (first_line, _) = lines.line_col(target.first.to_u32());
        let line_start =
            (source[..target.first.to_usize()].rfind(['\n', '\r'])).map_or(0, |i| i + 1);
        let (start_line, start_col) = lines.line_col(target.text_start.to_u32());
        Placement {
            line_start,
            first_line,
            start_line,
            start_col,
            indent: &source[line_start..line_start + start_col as usize],
        }
    }
}

/// The scopes around the function: header lines and the indentation of the function line.
struct Scaffold {
    header: Vec<String>,
    indent: String,
    qualname: String,
}

impl Scaffold {
    fn new(
        options: &FunctionOptions,
        body: &str,
        indent: &str,
        lambda: bool,
    ) -> Result<Self, TransformError> {
        let factory = !options.freevars.is_empty();
        let class = match &options.class_name {
            Some(name) if mentions_private_name(body) => Some(name.as_str()),
            _ => None,
        };
        let levels = usize::from(factory) + usize::from(class.is_some());
        let mut header = Vec::new();
        // Indentation of each level: factory at 0, the class inside it, the function last.
        let level_indent: Vec<String> = if lambda {
            // A lambda is an expression statement `(lambda ...)` at the innermost level;
            // its columns come from padding after the `(`.
            (0..=levels).map(|i| " ".repeat(i)).collect()
        } else {
            if levels > 0 && indent.is_empty() {
                return Err(TransformError::Internal(format!(
                    "{} at column 0 has free variables or a class",
                    options.name
                )));
            }
            let chars: Vec<char> = indent.chars().collect();
            if levels > chars.len() {
                return Err(TransformError::Internal(format!(
                    "{} is indented too little for its scopes",
                    options.name
                )));
            }
            // Proper prefixes of the function's own indentation are consistent with it
            // whatever mix of tabs and spaces it uses.
            let mut out: Vec<String> = (0..levels)
                .map(|i| chars[..i.min(chars.len())].iter().collect())
                .collect();
            out.push(indent.to_string());
            out
        };
        let mut level = 0;
        let mut qualname = String::new();
        if levels == 0 && !lambda && !indent.is_empty() {
            // An indented function needs a block around it, not a scope.
            header.push("if 1:".to_string());
        }
        if factory {
            qualname.push_str(FACTORY);
            qualname.push_str(".<locals>.");
            header.push(format!(
                "{}def {FACTORY}({}):",
                level_indent[level],
                options.freevars.join(", ")
            ));
            level += 1;
        }
        if let Some(name) = class {
            header.push(format!("{}class {name}:", level_indent[level]));
            qualname.push_str(name);
            qualname.push('.');
            level += 1;
        }
        qualname.push_str(&options.name);
        Ok(Scaffold {
            header,
            indent: level_indent[level].clone(),
            qualname,
        })
    }

    /// The text to compile, with the function's `body` (its text from `def` or `lambda`,
    /// rewritten) at its own lines and columns, and how many lines that text had to add above
    /// the function (compile, then move every line back by that many).
    fn code(
        &self,
        target: &Found<'_>,
        place: &Placement<'_>,
        lines: &LineIndex,
        body: &str,
    ) -> (String, u32) {
        let header_lines = self.header.len() as u32;
        // Lines above the function the header can use; when too few, compile lower.
        let line_shift = (header_lines + 1).saturating_sub(place.first_line);
        let mut code = String::with_capacity(body.len() + place.first_line as usize + 256);
        for _ in 0..(place.first_line + line_shift - 1 - header_lines) {
            code.push('\n');
        }
        for header in &self.header {
            code.push_str(header);
            code.push('\n');
        }
        match &target.node {
            Target::Def(def) => {
                // Each decorator becomes a placeholder on its first line, so the code object
                // still starts on the first decorator's line; continuation lines stay blank.
                let mut decorator_lines: Vec<u32> = def
                    .decorator_list
                    .iter()
                    .map(|d| lines.line_col(d.range().start().to_u32()).0)
                    .collect();
                decorator_lines.dedup();
                for line in place.first_line..place.start_line {
                    if decorator_lines.contains(&line) {
                        code.push_str(&self.indent);
                        code.push_str("@_");
                    }
                    code.push('\n');
                }
                code.push_str(&self.indent);
                code.push_str(body);
                code.push('\n');
            }
            Target::Lambda(_) => {
                code.push_str(&self.indent);
                code.push('(');
                let used = self.indent.len() + 1;
                for _ in used..place.start_col as usize {
                    code.push(' ');
                }
                code.push_str(body);
                code.push_str(")\n");
            }
        }
        (code, line_shift)
    }
}

/// Whether the text holds a name CPython would mangle in a class (`__x`, not `__x__`).
/// Text inside strings counts too: a needless class scope changes nothing.
fn mentions_private_name(text: &str) -> bool {
    let bytes = text.as_bytes();
    let is_ident = |b: u8| b == b'_' || b.is_ascii_alphanumeric() || b >= 0x80;
    let mut i = 0;
    while i < bytes.len() {
        if is_ident(bytes[i]) && (i == 0 || !is_ident(bytes[i - 1])) {
            let start = i;
            while i < bytes.len() && is_ident(bytes[i]) {
                i += 1;
            }
            let word = &text[start..i];
            if word.starts_with("__") && !word.ends_with("__") {
                return true;
            }
        } else {
            i += 1;
        }
    }
    false
}

enum Target<'a> {
    Def(&'a ast::StmtFunctionDef),
    Lambda(&'a ast::ExprLambda),
}

struct Found<'a> {
    node: Target<'a>,
    /// The first byte of the function's text, decorators included.
    first: TextSize,
    /// Where the compiled text starts: `def`/`async` or `lambda`.
    text_start: TextSize,
    end: TextSize,
}

fn find_target<'a>(
    source: &str,
    lines: &LineIndex,
    body: &'a [Stmt],
    options: &FunctionOptions,
) -> Result<Found<'a>, TransformError> {
    let mut finder = Finder {
        lines,
        options,
        defs: Vec::new(),
        lambdas: Vec::new(),
    };
    finder.visit_body(body);
    if options.name != "<lambda>" {
        let def = match finder.defs.as_slice() {
            [one] => *one,
            [] => {
                return Err(TransformError::Internal(format!(
                    "no function {} starts on line {}",
                    options.name, options.line
                )))
            }
            _ => {
                return Err(TransformError::Internal(format!(
                    "several functions {} start on line {}",
                    options.name, options.line
                )))
            }
        };
        let first = first_byte(def);
        let text_start = def_keyword(source, def)
            .ok_or_else(|| TransformError::Internal(format!("no 'def' before {}", options.name)))?;
        return Ok(Found {
            node: Target::Def(def),
            first,
            text_start,
            end: def.range().end(),
        });
    }
    let mut lambdas = finder.lambdas;
    if lambdas.len() > 1 {
        if let Some((line, col)) = options.hint {
            lambdas.retain(|l| {
                let span = lines.span(l.range());
                (span.line, span.col) <= (line, col) && (line, col) <= (span.end_line, span.end_col)
            });
            // The innermost lambda containing the hint.
            if let Some(inner) = lambdas.iter().min_by_key(|l| l.range().len()).copied() {
                lambdas = vec![inner];
            }
        }
    }
    match lambdas.as_slice() {
        [one] => Ok(Found {
            node: Target::Lambda(one),
            first: one.range().start(),
            text_start: one.range().start(),
            end: one.range().end(),
        }),
        [] => Err(TransformError::Internal(format!(
            "no lambda starts on line {}",
            options.line
        ))),
        _ => Err(TransformError::Internal(format!(
            "several lambdas start on line {}; cannot tell which one to rewrite",
            options.line
        ))),
    }
}

/// The first byte of a function's text: its first decorator's, or its `def`'s.
fn first_byte(def: &ast::StmtFunctionDef) -> TextSize {
    def.decorator_list
        .first()
        .map_or(def.range().start(), |d| d.range().start())
}

/// The `def` (or `async`) keyword of a function: the text between the last decorator and the
/// name holds only it and white space.
fn def_keyword(source: &str, def: &ast::StmtFunctionDef) -> Option<TextSize> {
    let from = def
        .decorator_list
        .last()
        .map_or(def.range().start(), |d| d.range().end())
        .to_usize();
    let to = def.name.range().start().to_usize();
    let between = source.get(from..to)?;
    let keyword = if def.is_async { "async" } else { "def" };
    let at = between.find(keyword)?;
    u32::try_from(from + at).ok().map(TextSize::from)
}

struct Finder<'a, 'l, 'o> {
    lines: &'l LineIndex,
    options: &'o FunctionOptions,
    defs: Vec<&'a ast::StmtFunctionDef>,
    lambdas: Vec<&'a ast::ExprLambda>,
}

impl<'a> Visitor<'a> for Finder<'a, '_, '_> {
    fn visit_stmt(&mut self, stmt: &'a Stmt) {
        if let Stmt::FunctionDef(def) = stmt {
            let first = first_byte(def);
            if def.name.as_str() == self.options.name
                && self.lines.line_col(first.to_u32()).0 == self.options.line
            {
                self.defs.push(def);
            }
        }
        visitor::walk_stmt(self, stmt);
    }

    fn visit_expr(&mut self, expr: &'a Expr) {
        if let Expr::Lambda(lambda) = expr {
            if self.lines.line_col(lambda.range().start().to_u32()).0 == self.options.line {
                self.lambdas.push(lambda);
            }
        }
        visitor::walk_expr(self, expr);
    }
}

/// The target's body with its calls rewritten, and the sites of those calls.
fn rewrite_calls(
    source: &str,
    lines: &LineIndex,
    module: &[Stmt],
    target: &Found<'_>,
    options: &FunctionOptions,
) -> Result<(Applied, Vec<FunctionSite>), TransformError> {
    let mut visitor = CallVisitor {
        source,
        options,
        lines,
        edits: Vec::new(),
        sites: Vec::new(),
        walk: CallWalk::new(module, options.version),
    };
    match &target.node {
        Target::Def(def) => visitor.visit_body(&def.body),
        Target::Lambda(lambda) => visitor.visit_expr(&lambda.body),
    }
    if let Some(error) = visitor.walk.error {
        return Err(TransformError::Internal(error));
    }
    let CallVisitor { edits, sites, .. } = visitor;
    // The edits are all in the body, after `def` or `lambda`.
    let window = target.text_start.to_usize()..target.end.to_usize();
    Ok((apply_edits(source, lines, edits, window)?, sites))
}

struct CallVisitor<'src, 'opt> {
    source: &'src str,
    options: &'opt FunctionOptions,
    lines: &'src LineIndex,
    edits: Vec<Edit>,
    sites: Vec<FunctionSite>,
    walk: CallWalk,
}

impl CallVisitor<'_, '_> {
    fn rewrite_call(&mut self, call: &ast::ExprCall) {
        let Some(index) = self.walk.site_index(self.sites.len()) else {
            return;
        };
        let Some(open) = self.walk.open_paren(self.source, call) else {
            return;
        };
        let start = call.range().start();
        let id = site_id(self.options.key, index);
        let awaited = self.options.time_awaits && self.walk.is_awaited(call);
        let direct = self.options.direct && !awaited && !reads_caller_frame(&call.func);
        let prefix = if direct {
            format!("{id}(")
        } else if awaited {
            format!("{AWAIT_SELECTOR}({id}, ")
        } else {
            format!("{WRAP_SELECTOR}({id}, ")
        };
        self.edits.push(Edit::insert(start, prefix));
        let arguments = &call.arguments;
        let has_arguments = !arguments.args.is_empty() || !arguments.keywords.is_empty();
        let paren = TextRange::at(open, TextSize::from(1));
        match &*arguments.args {
            // `f(x for x in y)`: a generator expression is only bare as a sole argument.
            [Expr::Generator(gen)] if !gen.parenthesized && arguments.keywords.is_empty() => {
                self.edits.push(Edit::replace(paren, ", (".to_string()));
                self.edits
                    .push(Edit::insert(gen.range().end(), ")".to_string()));
            }
            _ => self.edits.push(Edit::replace(
                paren,
                if has_arguments { ", " } else { "" }.to_string(),
            )),
        }
        let span = self.lines.span(call.range());
        self.sites.push(FunctionSite {
            id,
            line: span.line,
            col: span.col,
            end_line: span.end_line,
            end_col: span.end_col,
            callee: self.source[call.func.range().to_std_range()].to_string(),
            awaited,
            direct,
        });
    }

    fn wanted(&self, callee: &Expr) -> bool {
        let filter = &self.options.filter;
        if filter.blacklist.is_empty() && filter.whitelist.is_empty() && filter.ignore.is_empty() {
            return true;
        }
        let Some(name) = call_name(self.source, callee) else {
            // A callee without a name (`(lambda: 0)()`, `f[1:2]()`) matches no pattern.
            return filter.whitelist.is_empty();
        };
        if filter.ignore.contains(&name) {
            return false;
        }
        if !filter.blacklist.is_empty() {
            return !matches_any(&name, &filter.blacklist);
        }
        if !filter.whitelist.is_empty() {
            return matches_any(&name, &filter.whitelist);
        }
        true
    }
}

impl<'a> CallRewriter<'a> for CallVisitor<'_, '_> {
    fn call_walk(&mut self) -> &mut CallWalk {
        &mut self.walk
    }
}

impl<'a> Visitor<'a> for CallVisitor<'_, '_> {
    fn visit_expr(&mut self, expr: &'a Expr) {
        match expr {
            Expr::Call(call) => {
                let instrument = self.walk.instruments(call) && self.wanted(&call.func);
                if instrument {
                    self.rewrite_call(call);
                }
                call_walk::walk_call(self, call, instrument);
            }
            Expr::Await(await_expr) => call_walk::visit_await(self, await_expr),
            Expr::TString(_) => call_walk::visit_template(self, expr),
            _ => visitor::walk_expr(self, expr),
        }
    }

    fn visit_annotation(&mut self, expr: &'a Expr) {
        call_walk::visit_annotation(self, expr);
    }

    fn visit_interpolated_string_element(&mut self, element: &'a ast::InterpolatedStringElement) {
        call_walk::visit_interpolated_element(self, element);
    }
}

/// Callees known by name to read their caller's frame (a wrapper's frame would be read).
fn reads_caller_frame(callee: &Expr) -> bool {
    match callee {
        Expr::Name(name) => matches!(
            name.id.as_str(),
            "eval" | "exec" | "locals" | "vars" | "dir" | "globals" | "super"
        ),
        Expr::Attribute(attr) => match &*attr.value {
            Expr::Name(module) => matches!(
                (module.id.as_str(), attr.attr.as_str()),
                ("sys", "_getframe" | "_getframemodulename") | ("inspect", "currentframe")
            ),
            _ => false,
        },
        _ => false,
    }
}

/// The name the original recompyle gives a callee (`_build_name`): names, attribute chains,
/// subscripts whose keys are written without quotes, a call's callee; `None` for the rest.
pub fn call_name(source: &str, expr: &Expr) -> Option<String> {
    match expr {
        Expr::Name(name) => Some(name.id.to_string()),
        Expr::Attribute(attr) => Some(format!(
            "{}.{}",
            call_name(source, &attr.value)?,
            attr.attr.as_str()
        )),
        Expr::Subscript(sub) => Some(format!(
            "{}[{}]",
            call_name(source, &sub.value)?,
            call_name(source, &sub.slice)?
        )),
        Expr::Call(call) => call_name(source, &call.func),
        Expr::StringLiteral(s) => Some(s.value.to_str().to_string()),
        Expr::NumberLiteral(n) => match &n.value {
            Number::Int(i) => Some(i.to_string()),
            _ => source.get(n.range().to_std_range()).map(str::to_string),
        },
        Expr::BooleanLiteral(b) => Some(if b.value { "True" } else { "False" }.to_string()),
        Expr::NoneLiteral(_) => Some("None".to_string()),
        _ => None,
    }
}

/// `name` against patterns where a subscript may be written `[*]`, as the original matches:
/// each `[...]` of the name (up to the first `]`) may stand as itself or as `[*]`.
pub fn matches_any(name: &str, patterns: &[String]) -> bool {
    if patterns.iter().any(|p| p == name) {
        return true;
    }
    let groups = subscript_groups(name);
    if groups.is_empty() || groups.len() > 16 {
        return false;
    }
    for mask in 1u32..(1u32 << groups.len()) {
        let mut variant = String::with_capacity(name.len());
        let mut cursor = 0;
        for (i, &(start, end)) in groups.iter().enumerate() {
            if mask & (1 << i) != 0 {
                variant.push_str(&name[cursor..start]);
                variant.push_str("[*]");
                cursor = end;
            }
        }
        variant.push_str(&name[cursor..]);
        if patterns.contains(&variant) {
            return true;
        }
    }
    false
}

/// Byte ranges of `\[.*?\]` matches, as Python's `re.finditer` finds them.
fn subscript_groups(name: &str) -> Vec<(usize, usize)> {
    let bytes = name.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'[' {
            if let Some(close) = bytes[i + 1..].iter().position(|&b| b == b']') {
                let end = i + 1 + close + 1;
                out.push((i, end));
                i = end;
                continue;
            }
        }
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(line: u32, name: &str) -> FunctionOptions {
        FunctionOptions {
            version: (3, 12),
            line,
            name: name.to_string(),
            hint: None,
            freevars: Vec::new(),
            class_name: None,
            key: 1,
            time_awaits: false,
            direct: false,
            filter: CallFilter::default(),
        }
    }

    #[test]
    fn rewrites_calls_in_place() {
        let src = "import x\n\n@deco(1)\ndef f(a):\n    return g(a, k=h())\n";
        let out = rewrite_function(src, &options(3, "f")).unwrap();
        assert_eq!(
            out.code,
            "\n\n@_\ndef f(a):\n    return __recompyle_w__(4294967296, g, a, k=__recompyle_w__(4294967297, h))\n"
        );
        assert_eq!(
            out.original_source,
            "@deco(1)\ndef f(a):\n    return g(a, k=h())"
        );
        assert_eq!(out.sites.len(), 2);
        assert_eq!((out.sites[0].line, out.sites[0].col), (5, 11));
        assert_eq!(out.line_shift, 0);
    }

    #[test]
    fn method_with_free_variables_and_private_names() {
        let src = "class A:\n    def m(self):\n        return super().m(self.__x)\n";
        let mut opts = options(2, "m");
        opts.freevars = vec!["__class__".to_string()];
        opts.class_name = Some("A".to_string());
        let out = rewrite_function(src, &opts).unwrap();
        assert_eq!(out.line_shift, 1);
        assert!(out
            .code
            .starts_with("def __recompyle_factory__(__class__):\n class A:\n    def m(self):\n"));
    }

    #[test]
    fn direct_sites_call_the_wrapper_constant() {
        let src = "def f(y):\n    return g(y) + locals()['y']\n";
        let mut opts = options(1, "f");
        opts.direct = true;
        let out = rewrite_function(src, &opts).unwrap();
        assert!(out
            .code
            .contains("return 4294967296(g, y) + __recompyle_w__(4294967297, locals)"));
        assert_eq!(
            out.sites.iter().map(|s| s.direct).collect::<Vec<_>>(),
            [true, false]
        );
    }

    #[test]
    fn bare_generator_argument_gets_parentheses() {
        let src = "def f(y):\n    return sum(x for x in y)\n";
        let out = rewrite_function(src, &options(1, "f")).unwrap();
        assert!(out
            .code
            .contains("__recompyle_w__(4294967296, sum, (x for x in y))"));
    }

    #[test]
    fn awaited_calls_use_the_await_selector() {
        let src = "async def f():\n    await g(await h())\n";
        let mut opts = options(1, "f");
        opts.time_awaits = true;
        let out = rewrite_function(src, &opts).unwrap();
        assert!(out.sites.iter().all(|s| s.awaited));
        assert!(out.code.contains("await __recompyle_wa__"));
    }

    #[test]
    fn names_and_patterns_follow_the_original() {
        let src = "a.b['c'][0].d(x)[e]()\n";
        let parsed = recompyle_parser::parse_module(src, (3, 12)).unwrap();
        let Stmt::Expr(e) = &parsed.syntax().body[0] else {
            panic!()
        };
        let Expr::Call(call) = &*e.value else {
            panic!()
        };
        let name = call_name(src, &call.func).unwrap();
        assert_eq!(name, "a.b[c][0].d[e]");
        assert!(matches_any(&name, &["a.b[*][0].d[*]".to_string()]));
        assert!(matches_any(&name, &["a.b[c][*].d[e]".to_string()]));
        assert!(!matches_any(&name, &["a.b[*]".to_string()]));
    }

    #[test]
    fn lambda_on_a_line() {
        let src = "def outer():\n    k = 1\n    return lambda v: g(v, k)\n";
        let mut opts = options(3, "<lambda>");
        opts.freevars = vec!["g".to_string(), "k".to_string()];
        let out = rewrite_function(src, &opts).unwrap();
        assert!(
            out.code.ends_with(
                "def __recompyle_factory__(g, k):\n (         lambda v: __recompyle_w__(4294967296, g, v, k))\n"
            ),
            "{:?}",
            out.code
        );
    }
}
