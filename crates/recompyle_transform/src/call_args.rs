//! Find one call expression in a module and classify its arguments as lvalues or not.
//!
//! `byref` (`python/recompyle/byref.py`) writes a function's final parameter values back into
//! the variables its caller passed. The caller frame only tells where it is: on 3.11+ the
//! source span of the call instruction (`co_positions()`), on 3.9/3.10 only its line. This
//! module parses the caller's source, finds the call(s) at that place and says, for each
//! argument, whether it is something an assignment could target: a name, an attribute
//! chain, a subscript with a constant key, or a mix (`a.b[0].c`). Anything else gets a
//! reason, so the error can say why before the function body runs.
//!
//! Names are given as the compiler sees them: private names are mangled in classes, and a
//! root name carries how the caller's scope binds it (`global`, `nonlocal`, or a variable of
//! a list/set/dict comprehension, which CPython 3.12+ inlines into the enclosing frame).

use ruff_python_ast::visitor::{self, Visitor};
use ruff_python_ast::{self as ast, Expr, Stmt};
use ruff_text_size::{Ranged, TextRange};

use crate::positions::LineIndex;
use crate::scope::{
    visit_lambda, visit_scope_body, walk_class_header, walk_function_signature, Comprehension,
    Declarations, ScopeKind, ScopeWalker, Scopes,
};
use recompyle_parser::ParseFailure;

pub use crate::scope::Binding;

/// Where the call is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Query {
    /// The call whose text ends at this 1-based line and 0-based UTF-8 column (3.11+: the
    /// end of the call instruction's position; a call's `)` ends exactly one call).
    End { line: u32, col: u32 },
    /// Every call that starts on this 1-based line (3.9, which only records lines).
    Line(u32),
    /// As 3.10 records lines: a method call without keywords or unpacking (`LOAD_METHOD`,
    /// `CALL_METHOD`) is on the line its attribute name ends on, any other call on the line
    /// it starts on.
    Line310(u32),
}

/// One step after the root of an lvalue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// `.name` (mangled).
    Attr(String),
    /// `[key]`: the source text of a constant key (`0`, `-1`, `'k'`, `1, 2`), for
    /// `ast.literal_eval` once per site.
    Index(String),
}

/// Something an assignment could target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lvalue {
    /// The root name, mangled.
    pub root: String,
    pub binding: Binding,
    pub steps: Vec<Step>,
}

/// Why an argument is not an lvalue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    Constant,
    Call,
    Walrus,
    VariableSubscript,
    Slice,
    Starred,
    DoubleStarred,
    Expression,
}

impl Refusal {
    /// The words the error message uses.
    pub fn describe(self) -> &'static str {
        match self {
            Refusal::Constant => "a constant",
            Refusal::Call => "a call",
            Refusal::Walrus => "an assignment expression (:=)",
            Refusal::VariableSubscript => "a subscript whose key is not a constant",
            Refusal::Slice => "a slice",
            Refusal::Starred => "an unpacked *argument",
            Refusal::DoubleStarred => "an unpacked **argument",
            Refusal::Expression => "an expression",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ArgKind {
    Lvalue(Lvalue),
    Refused(Refusal),
}

/// One argument as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Arg {
    pub line: u32,
    pub col: u32,
    pub text: String,
    pub kind: ArgKind,
}

/// A keyword argument; `name` is `None` for `**mapping`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Keyword {
    pub name: Option<String>,
    pub arg: Arg,
}

/// What the call calls, as far as it can be looked up again without running code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Callee {
    /// `f(...)`.
    Name(Lvalue),
    /// `base.attr(...)`; `base` is `None` when it is not an lvalue (`f().m(...)`).
    Attribute { base: Option<Lvalue>, attr: String },
    /// `super().attr(...)`.
    SuperAttribute(String),
    /// Anything else (`fs[i](...)`, `(lambda: f)()(...)`).
    Other,
}

/// One call expression and its arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallInfo {
    pub line: u32,
    pub col: u32,
    pub end_line: u32,
    pub end_col: u32,
    pub callee: Callee,
    pub callee_text: String,
    /// Positional arguments in order; starred ones are refused arguments.
    pub positional: Vec<Arg>,
    pub keywords: Vec<Keyword>,
}

/// The calls of `source` (decoded module text) at `query`, parsed for `version`.
pub fn find_calls(
    source: &str,
    version: (u8, u8),
    query: Query,
) -> Result<Vec<CallInfo>, ParseFailure> {
    let parsed = recompyle_parser::parse_module(source, version)?;
    let mut finder = CallFinder {
        source,
        lines: LineIndex::new(source),
        query,
        scopes: Scopes::new(Declarations::default()),
        found: Vec::new(),
    };
    finder.visit_body(&parsed.syntax().body);
    Ok(finder.found)
}

/// CPython's `_Py_Mangle`: `__x` inside class `_C` is `_C__x`; dunders and dotted names stay.
pub fn mangle(class_name: Option<&str>, name: &str) -> String {
    let Some(class_name) = class_name else {
        return name.to_string();
    };
    if !name.starts_with("__") || name.ends_with("__") || name.contains('.') {
        return name.to_string();
    }
    let stripped = class_name.trim_start_matches('_');
    if stripped.is_empty() {
        return name.to_string();
    }
    format!("_{stripped}{name}")
}

/// A key `ast.literal_eval` gives back as the same constant CPython would use.
fn is_constant_key(expr: &Expr) -> bool {
    match expr {
        Expr::NumberLiteral(_)
        | Expr::StringLiteral(_)
        | Expr::BytesLiteral(_)
        | Expr::BooleanLiteral(_)
        | Expr::NoneLiteral(_)
        | Expr::EllipsisLiteral(_) => true,
        Expr::UnaryOp(u) => {
            matches!(u.op, ast::UnaryOp::USub | ast::UnaryOp::UAdd)
                && matches!(*u.operand, Expr::NumberLiteral(_))
        }
        Expr::Tuple(t) => t.elts.iter().all(is_constant_key),
        _ => false,
    }
}

struct CallFinder<'s> {
    source: &'s str,
    lines: LineIndex,
    query: Query,
    scopes: Scopes,
    found: Vec<CallInfo>,
}

impl CallFinder<'_> {
    fn class_name(&self) -> Option<&str> {
        self.scopes.class_name()
    }

    fn text(&self, range: TextRange) -> String {
        self.source[range.start().to_usize()..range.end().to_usize()].to_string()
    }

    fn lvalue(&self, expr: &Expr) -> Result<Lvalue, Refusal> {
        match expr {
            Expr::Name(name) => {
                // Declarations and comprehension targets are written unmangled in the
                // source; the compiler mangles both sides alike.
                let binding = self.scopes.binding(name.id.as_str());
                Ok(Lvalue {
                    root: mangle(self.class_name(), name.id.as_str()),
                    binding,
                    steps: Vec::new(),
                })
            }
            Expr::Attribute(attr) => {
                let mut base = self.lvalue(&attr.value)?;
                base.steps
                    .push(Step::Attr(mangle(self.class_name(), attr.attr.as_str())));
                Ok(base)
            }
            Expr::Subscript(sub) => {
                let mut base = self.lvalue(&sub.value)?;
                if matches!(*sub.slice, Expr::Slice(_)) {
                    return Err(Refusal::Slice);
                }
                if !is_constant_key(&sub.slice) {
                    return Err(Refusal::VariableSubscript);
                }
                base.steps.push(Step::Index(self.text(sub.slice.range())));
                Ok(base)
            }
            Expr::NumberLiteral(_)
            | Expr::StringLiteral(_)
            | Expr::BytesLiteral(_)
            | Expr::BooleanLiteral(_)
            | Expr::NoneLiteral(_)
            | Expr::EllipsisLiteral(_) => Err(Refusal::Constant),
            Expr::UnaryOp(u) if is_constant_key(expr) && !matches!(u.op, ast::UnaryOp::Not) => {
                Err(Refusal::Constant)
            }
            Expr::Call(_) => Err(Refusal::Call),
            Expr::Named(_) => Err(Refusal::Walrus),
            Expr::Starred(_) => Err(Refusal::Starred),
            _ => Err(Refusal::Expression),
        }
    }

    fn arg(&self, expr: &Expr, double_starred: bool) -> Arg {
        let (line, col) = self.lines.line_col(expr.start().to_u32());
        let kind = if double_starred {
            ArgKind::Refused(Refusal::DoubleStarred)
        } else {
            match self.lvalue(expr) {
                Ok(lvalue) => ArgKind::Lvalue(lvalue),
                Err(refusal) => ArgKind::Refused(refusal),
            }
        };
        Arg {
            line,
            col,
            text: self.text(expr.range()),
            kind,
        }
    }

    fn callee(&self, func: &Expr) -> Callee {
        match func {
            Expr::Name(_) => match self.lvalue(func) {
                Ok(lvalue) => Callee::Name(lvalue),
                Err(_) => Callee::Other,
            },
            Expr::Attribute(attr) => {
                let name = mangle(self.class_name(), attr.attr.as_str());
                if let Expr::Call(inner) = &*attr.value {
                    let bare_super = matches!(&*inner.func, Expr::Name(n) if n.id.as_str() == "super")
                        && inner.arguments.args.is_empty()
                        && inner.arguments.keywords.is_empty();
                    if bare_super {
                        return Callee::SuperAttribute(name);
                    }
                }
                Callee::Attribute {
                    base: self.lvalue(&attr.value).ok(),
                    attr: name,
                }
            }
            _ => Callee::Other,
        }
    }

    fn check_call(&mut self, call: &ast::ExprCall) {
        let span = self.lines.span(call.range());
        let wanted = match self.query {
            Query::End { line, col } => span.end_line == line && span.end_col == col,
            Query::Line(line) => span.line == line,
            Query::Line310(l) => {
                let plain = call.arguments.keywords.is_empty()
                    && !call
                        .arguments
                        .args
                        .iter()
                        .any(|a| matches!(a, Expr::Starred(_)));
                match &*call.func {
                    Expr::Attribute(attr) if plain => {
                        self.lines.line_col(attr.range().end().to_u32()).0 == l
                    }
                    _ => span.line == l,
                }
            }
        };
        if !wanted {
            return;
        }
        let positional = call
            .arguments
            .args
            .iter()
            .map(|a| self.arg(a, false))
            .collect();
        let keywords = call
            .arguments
            .keywords
            .iter()
            .map(|k| Keyword {
                name: k.arg.as_ref().map(|n| n.id.to_string()),
                arg: self.arg(&k.value, k.arg.is_none()),
            })
            .collect();
        self.found.push(CallInfo {
            line: span.line,
            col: span.col,
            end_line: span.end_line,
            end_col: span.end_col,
            callee: self.callee(&call.func),
            callee_text: self.text(call.func.range()),
            positional,
            keywords,
        });
    }

    fn comprehension(&mut self, comprehension: &Comprehension<'_>) {
        // The first iterable is evaluated in the enclosing scope.
        let Some(first) = comprehension.first_iter() else {
            return;
        };
        self.visit_expr(first);
        self.scopes.enter_comprehension(comprehension);
        comprehension.walk_own_scope(self);
        self.scopes.exit();
    }
}

impl<'a> ScopeWalker<'a> for CallFinder<'_> {
    fn declarations(&self, body: &[Stmt]) -> Declarations {
        Declarations::from_body(body)
    }

    fn in_scope(
        &mut self,
        kind: ScopeKind,
        name: &str,
        declarations: Declarations,
        visit: impl FnOnce(&mut Self),
    ) {
        self.scopes.enter(kind, name, declarations);
        visit(self);
        self.scopes.exit();
    }
}

impl<'a> Visitor<'a> for CallFinder<'_> {
    fn visit_stmt(&mut self, stmt: &'a Stmt) {
        match stmt {
            Stmt::FunctionDef(def) => {
                for decorator in &def.decorator_list {
                    self.visit_decorator(decorator);
                }
                walk_function_signature(self, def);
                visit_scope_body(self, ScopeKind::Function, def.name.as_str(), &def.body);
            }
            Stmt::ClassDef(class) => {
                walk_class_header(self, class);
                visit_scope_body(self, ScopeKind::Class, class.name.as_str(), &class.body);
            }
            _ => visitor::walk_stmt(self, stmt),
        }
    }

    fn visit_expr(&mut self, expr: &'a Expr) {
        match expr {
            Expr::Call(call) => {
                self.check_call(call);
                visitor::walk_expr(self, expr);
            }
            Expr::Lambda(lambda) => visit_lambda(self, lambda),
            Expr::ListComp(_) | Expr::SetComp(_) | Expr::DictComp(_) | Expr::Generator(_) => {
                match Comprehension::of(expr) {
                    Some(comprehension) => self.comprehension(&comprehension),
                    None => visitor::walk_expr(self, expr),
                }
            }
            _ => visitor::walk_expr(self, expr),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mangles_like_cpython() {
        assert_eq!(mangle(Some("C"), "__x"), "_C__x");
        assert_eq!(mangle(Some("__C"), "__x"), "_C__x");
        assert_eq!(mangle(Some("__"), "__x"), "__x");
        assert_eq!(mangle(Some("C"), "__x__"), "__x__");
        assert_eq!(mangle(Some("C"), "_x"), "_x");
        assert_eq!(mangle(None, "__x"), "__x");
    }

    #[test]
    fn syntax_errors_are_reported() {
        assert!(find_calls("f(\n", (3, 11), Query::Line(1)).is_err());
    }
}
