//! The call-site rewriter: a visitor that records text edits and the site table.

use ruff_python_ast::visitor::{self, Visitor};
use ruff_python_ast::{self as ast, Expr, Stmt};
use ruff_text_size::{Ranged, TextSize};

use crate::positions::{Edit, LineIndex, PositionMap};
use crate::{site_id, TransformError};

/// The builtin a rewritten call site calls to get its callee: `__recompyle__(ID, f)` is `f`
/// when nothing listens, else a native proxy that reports the call. A dunder, so class
/// bodies never mangle it.
pub const TRAMPOLINE: &str = "__recompyle__";

/// The builtin for method call sites: `__recompyle_m__(ID, obj)` is `obj` when nothing
/// listens, else an object whose attributes are proxies reporting the call.
pub const METHOD_SELECTOR: &str = "__recompyle_m__";

/// What the rewrite depends on besides the source.
#[derive(Debug, Clone)]
pub struct Options {
    /// The interpreter the code will run on: newer syntax is refused.
    pub version: (u8, u8),
    /// Distinguishes this module's sites from every other module's in one process.
    pub module_key: u32,
}

/// One instrumented call site. Lines are 1-based, columns 0-based UTF-8 byte offsets, as
/// CPython's `ast` and `co_positions()` report them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Site {
    pub line: u32,
    pub col: u32,
    pub end_line: u32,
    pub end_col: u32,
    /// The callee's source text, as written.
    pub callee: String,
    /// Qualified name of the enclosing function or class, `<module>` at top level.
    pub qualname: String,
}

/// The rewritten module.
#[derive(Debug, Clone)]
pub struct Transformed {
    pub source: String,
    pub sites: Vec<Site>,
    pub positions: PositionMap,
}

/// Rewrite `source` (already decoded, BOM removed).
pub fn transform(source: &str, options: &Options) -> Result<Transformed, TransformError> {
    let parsed =
        recompyle_parser::parse_module(source, options.version).map_err(TransformError::Parse)?;
    let module = parsed.syntax();
    let mut rewriter = Rewriter {
        source,
        options,
        edits: Vec::new(),
        sites: Vec::new(),
        scopes: Vec::new(),
        future_annotations: has_future_annotations(&module.body),
        in_debug_fstring: 0,
        callee_depth: 0,
        error: None,
    };
    rewriter.visit_body(&module.body);
    if let Some(error) = rewriter.error {
        return Err(TransformError::Internal(error));
    }
    let Rewriter {
        mut edits, sites, ..
    } = rewriter;
    // Stable: edits at one offset keep creation order (an outer call's prefix before an
    // inner call's that starts at the same byte, `f(x)(y)`).
    edits.sort_by_key(|e| e.start);
    let lines = LineIndex::new(source);
    let mut output = String::with_capacity(source.len() + edits.len() * 24);
    let mut cursor = 0usize;
    for edit in &edits {
        let start = edit.start as usize;
        if start < cursor {
            return Err(TransformError::Internal(format!(
                "overlapping edits at byte {start}"
            )));
        }
        output.push_str(&source[cursor..start]);
        output.push_str(&edit.text);
        cursor = edit.end as usize;
    }
    output.push_str(&source[cursor..]);
    let positions = PositionMap::new(&lines, &edits);
    let sites = sites
        .into_iter()
        .map(|s| {
            let (line, col) = lines.line_col(s.start);
            let (end_line, end_col) = lines.line_col(s.end);
            Site {
                line,
                col,
                end_line,
                end_col,
                callee: source[s.callee_start as usize..s.callee_end as usize].to_string(),
                qualname: s.qualname,
            }
        })
        .collect();
    Ok(Transformed {
        source: output,
        sites,
        positions,
    })
}

/// Callees CPython warns about at compile time ("'int' object is not callable; perhaps you
/// missed a comma?", `compile.c:check_caller`): left as written so the warning stays.
pub(crate) fn is_literal(callee: &Expr) -> bool {
    matches!(
        callee,
        Expr::NumberLiteral(_)
            | Expr::StringLiteral(_)
            | Expr::BytesLiteral(_)
            | Expr::BooleanLiteral(_)
            | Expr::NoneLiteral(_)
            | Expr::EllipsisLiteral(_)
            | Expr::Tuple(_)
            | Expr::List(_)
            | Expr::ListComp(_)
            | Expr::Dict(_)
            | Expr::DictComp(_)
            | Expr::Set(_)
            | Expr::SetComp(_)
            | Expr::Generator(_)
            | Expr::FString(_)
    )
}

/// A chain `a.b().c().d()...` nests one rewritten callee in the next; CPython's tokenizer
/// allows 200 open brackets. Calls deeper in a chain than this stay as written.
pub(crate) const MAX_CALLEE_DEPTH: u32 = 100;

pub(crate) fn has_future_annotations(body: &[Stmt]) -> bool {
    for (i, stmt) in body.iter().enumerate() {
        match stmt {
            Stmt::Expr(e) if i == 0 && e.value.is_string_literal_expr() => continue,
            Stmt::ImportFrom(import) if import.module.as_deref() == Some("__future__") => {
                if import
                    .names
                    .iter()
                    .any(|a| a.name.as_str() == "annotations")
                {
                    return true;
                }
            }
            _ => return false,
        }
    }
    false
}

struct RawSite {
    start: u32,
    end: u32,
    callee_start: u32,
    callee_end: u32,
    qualname: String,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum ScopeKind {
    Function,
    Class,
}

struct Scope {
    qualname: String,
    kind: ScopeKind,
}

struct Rewriter<'src, 'opt> {
    source: &'src str,
    options: &'opt Options,
    edits: Vec<Edit>,
    sites: Vec<RawSite>,
    scopes: Vec<Scope>,
    future_annotations: bool,
    /// Inside `{expr=}`: CPython prints the expression's source text, so it stays as written.
    in_debug_fstring: u32,
    /// How many rewritten calls have this expression inside their callee.
    callee_depth: u32,
    error: Option<String>,
}

impl Rewriter<'_, '_> {
    fn qualname(&self) -> String {
        match self.scopes.last() {
            Some(scope) => scope.qualname.clone(),
            None => "<module>".to_string(),
        }
    }

    fn child_qualname(&self, name: &str) -> String {
        match self.scopes.last() {
            None => name.to_string(),
            Some(parent) if parent.kind == ScopeKind::Class => {
                format!("{}.{name}", parent.qualname)
            }
            Some(parent) => format!("{}.<locals>.{name}", parent.qualname),
        }
    }

    fn in_scope(&mut self, name: &str, kind: ScopeKind, f: impl FnOnce(&mut Self)) {
        let qualname = self.child_qualname(name);
        self.scopes.push(Scope { qualname, kind });
        f(self);
        self.scopes.pop();
    }

    fn rewrite_call(&mut self, call: &ast::ExprCall) {
        let index = match u32::try_from(self.sites.len()) {
            Ok(i) => i,
            Err(_) => {
                self.error = Some("too many call sites".to_string());
                return;
            }
        };
        let start = call.range().start();
        let open = call.arguments.range().start();
        if self.source.as_bytes().get(open.to_usize()) != Some(&b'(') {
            self.error = Some(format!("no '(' at byte {}", open.to_u32()));
            return;
        }
        let id = site_id(self.options.module_key, index);
        match &*call.func {
            // `obj.m(a)` -> `__recompyle_m__(ID, obj).m(a)`: still a method call to the
            // compiler (LOAD_METHOD, no bound method, its own positions, name mangling); the
            // selector returns `obj` itself when nothing listens. Not for a parenthesised
            // callee `(a.b)(x)`, whose `.` is inside the parentheses.
            Expr::Attribute(attr) if call.func.range().start() == start => {
                let Some(dot) = self.find_dot(attr.value.range().end(), attr.attr.range().start())
                else {
                    self.error = Some(format!(
                        "no '.' before attribute at byte {}",
                        start.to_u32()
                    ));
                    return;
                };
                self.edits
                    .push(Edit::insert(start, format!("{METHOD_SELECTOR}({id}, ")));
                self.edits.push(Edit::insert(dot, ")".to_string()));
            }
            // `f(a)` -> `__recompyle__(ID, f)(a)`: the interpreter still makes the call.
            _ => {
                self.edits
                    .push(Edit::insert(start, format!("{TRAMPOLINE}({id}, ")));
                self.edits.push(Edit::insert(open, ")".to_string()));
            }
        }
        let callee = call.func.range();
        self.sites.push(RawSite {
            start: start.to_u32(),
            end: call.range().end().to_u32(),
            callee_start: callee.start().to_u32(),
            callee_end: callee.end().to_u32(),
            qualname: self.qualname(),
        });
    }

    /// The `.` between an attribute's value and its name: only white space, line
    /// continuations, comments and the value's closing parentheses can stand before it.
    fn find_dot(&self, from: TextSize, to: TextSize) -> Option<TextSize> {
        let bytes = self.source.as_bytes();
        let mut i = from.to_usize();
        let end = to.to_usize().min(bytes.len());
        while i < end {
            match bytes[i] {
                b'.' => return u32::try_from(i).ok().map(TextSize::from),
                b'#' => {
                    while i < end && bytes[i] != b'\n' && bytes[i] != b'\r' {
                        i += 1;
                    }
                }
                b' ' | b'\t' | b'\x0c' | b'\r' | b'\n' | b'\\' | b')' => i += 1,
                _ => return None,
            }
        }
        None
    }
}

impl<'a> Visitor<'a> for Rewriter<'_, '_> {
    fn visit_stmt(&mut self, stmt: &'a Stmt) {
        match stmt {
            Stmt::FunctionDef(def) => {
                for decorator in &def.decorator_list {
                    self.visit_decorator(decorator);
                }
                if let Some(type_params) = &def.type_params {
                    self.visit_type_params(type_params);
                }
                self.visit_parameters(&def.parameters);
                if let Some(returns) = &def.returns {
                    self.visit_annotation(returns);
                }
                self.in_scope(def.name.as_str(), ScopeKind::Function, |this| {
                    this.visit_body(&def.body)
                });
            }
            Stmt::ClassDef(class) => {
                for decorator in &class.decorator_list {
                    self.visit_decorator(decorator);
                }
                if let Some(type_params) = &class.type_params {
                    self.visit_type_params(type_params);
                }
                if let Some(arguments) = &class.arguments {
                    self.visit_arguments(arguments);
                }
                self.in_scope(class.name.as_str(), ScopeKind::Class, |this| {
                    this.visit_body(&class.body)
                });
            }
            _ => visitor::walk_stmt(self, stmt),
        }
    }

    fn visit_expr(&mut self, expr: &'a Expr) {
        match expr {
            Expr::Call(call) => {
                let instrument = self.in_debug_fstring == 0
                    && self.callee_depth < MAX_CALLEE_DEPTH
                    && !is_literal(&call.func);
                if instrument {
                    self.rewrite_call(call);
                    // Each rewritten call wraps its callee in one more pair of parentheses.
                    self.callee_depth += 1;
                    self.visit_expr(&call.func);
                    self.callee_depth -= 1;
                    self.visit_arguments(&call.arguments);
                } else {
                    visitor::walk_expr(self, expr);
                }
            }
            Expr::Lambda(lambda) => {
                if let Some(parameters) = &lambda.parameters {
                    self.visit_parameters(parameters);
                }
                self.in_scope("<lambda>", ScopeKind::Function, |this| {
                    this.visit_expr(&lambda.body)
                });
            }
            _ => visitor::walk_expr(self, expr),
        }
    }

    fn visit_annotation(&mut self, expr: &'a Expr) {
        // Under `from __future__ import annotations` CPython stores the annotation's text.
        if !self.future_annotations {
            self.visit_expr(expr);
        }
    }

    fn visit_interpolated_string_element(&mut self, element: &'a ast::InterpolatedStringElement) {
        let debug = matches!(
            element,
            ast::InterpolatedStringElement::Interpolation(e) if e.debug_text.is_some()
        );
        if debug {
            self.in_debug_fstring += 1;
        }
        visitor::walk_interpolated_string_element(self, element);
        if debug {
            self.in_debug_fstring -= 1;
        }
    }
}
