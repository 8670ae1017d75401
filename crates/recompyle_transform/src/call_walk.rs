//! What the two call rewriters (`rewrite.rs` for a module, `function.rs` for a decorated
//! function) share while they walk: which calls are instrumented, where source text must stay
//! as written (annotations CPython keeps as text, debug f-strings, template strings), which
//! call is the operand of `await`, and the internal errors that stop a rewrite.
//!
//! A rewriter keeps a [`CallWalk`] and implements [`CallRewriter`]; its `Visitor` methods
//! call the functions here.

use ruff_python_ast::visitor::{self, Visitor};
use ruff_python_ast::{self as ast, Expr, Stmt};
use ruff_text_size::{Ranged, TextRange, TextSize};

/// A chain `a.b().c().d()...` nests one rewritten callee in the next; CPython's tokenizer
/// allows 200 open brackets. Calls deeper in a chain than this stay as written.
const MAX_CALLEE_DEPTH: u32 = 100;

/// The state a call rewriter keeps while it walks.
pub(crate) struct CallWalk {
    /// See [`annotations_as_written`].
    annotations_as_written: bool,
    /// Inside `{expr=}` or a template string: CPython keeps the expression's source text
    /// (printed, or `Interpolation.expression`), so it stays as written.
    text_kept: u32,
    /// How many rewritten calls have this expression inside their callee.
    callee_depth: u32,
    /// Inside an f-string's replacement field (where, before 3.12, no string literal may
    /// use the f-string's quote).
    in_fstring: u32,
    /// The range of the call that is the operand of the innermost `await` being visited.
    awaited: Option<TextRange>,
    /// Our own invariant failed: the rewrite stops with this.
    pub error: Option<String>,
}

impl CallWalk {
    /// Whether the walk is inside an f-string's replacement field.
    pub fn in_fstring(&self) -> bool {
        self.in_fstring > 0
    }

    /// The walk of a module whose statements are `body`, for interpreter `version`.
    pub fn new(body: &[Stmt], version: (u8, u8)) -> Self {
        CallWalk {
            annotations_as_written: annotations_as_written(body, version),
            text_kept: 0,
            callee_depth: 0,
            in_fstring: 0,
            awaited: None,
            error: None,
        }
    }

    /// Whether the source text here must stay as written.
    pub fn keeps_text(&self) -> bool {
        self.text_kept > 0
    }

    /// Whether `call` is rewritten, as far as the walk can tell (a rewriter may refuse more).
    pub fn instruments(&self, call: &ast::ExprCall) -> bool {
        self.text_kept == 0 && self.callee_depth < MAX_CALLEE_DEPTH && !is_literal(&call.func)
    }

    /// Whether `call` is the operand of the `await` being visited (`await f(x)`).
    pub fn is_awaited(&self, call: &ast::ExprCall) -> bool {
        self.awaited == Some(call.range())
    }

    /// The index of the next site when `count` sites were made.
    pub fn site_index(&mut self, count: usize) -> Option<u32> {
        match u32::try_from(count) {
            Ok(index) => Some(index),
            Err(_) => {
                self.error = Some("too many call sites".to_string());
                None
            }
        }
    }

    /// The `(` that opens `call`'s arguments.
    pub fn open_paren(&mut self, source: &str, call: &ast::ExprCall) -> Option<TextSize> {
        let open = call.arguments.range().start();
        if source.as_bytes().get(open.to_usize()) == Some(&b'(') {
            Some(open)
        } else {
            self.error = Some(format!("no '(' at byte {}", open.to_u32()));
            None
        }
    }
}

/// A visitor that rewrites calls, walking with a [`CallWalk`].
pub(crate) trait CallRewriter<'a>: Visitor<'a> {
    fn call_walk(&mut self) -> &mut CallWalk;
}

/// `Visitor::visit_annotation`: an annotation kept as text is not visited.
pub(crate) fn visit_annotation<'a, V: CallRewriter<'a>>(visitor: &mut V, expr: &'a Expr) {
    if !visitor.call_walk().annotations_as_written {
        visitor.visit_expr(expr);
    }
}

/// `Visitor::visit_interpolated_string_element`: a debug `{expr=}` keeps its text.
pub(crate) fn visit_interpolated_element<'a, V: CallRewriter<'a>>(
    visitor: &mut V,
    element: &'a ast::InterpolatedStringElement,
) {
    let debug = matches!(
        element,
        ast::InterpolatedStringElement::Interpolation(e) if e.debug_text.is_some()
    );
    visitor.call_walk().in_fstring += 1;
    if debug {
        keeping_text(visitor, |v| {
            visitor::walk_interpolated_string_element(v, element)
        });
    } else {
        visitor::walk_interpolated_string_element(visitor, element);
    }
    visitor.call_walk().in_fstring -= 1;
}

/// A template string (PEP 750): each interpolation keeps its text
/// (`Interpolation.expression`).
pub(crate) fn visit_template<'a, V: CallRewriter<'a>>(visitor: &mut V, template: &'a Expr) {
    keeping_text(visitor, |v| visitor::walk_expr(v, template));
}

fn keeping_text<'a, V: CallRewriter<'a>>(visitor: &mut V, walk: impl FnOnce(&mut V)) {
    visitor.call_walk().text_kept += 1;
    walk(visitor);
    visitor.call_walk().text_kept -= 1;
}

/// `await x`: only the call that is the operand itself is awaited (`await f(x)`, not
/// `await f(x) + 1`, whose operand is the sum, nor the calls inside `f(x)`'s arguments).
pub(crate) fn visit_await<'a, V: CallRewriter<'a>>(
    visitor: &mut V,
    await_expr: &'a ast::ExprAwait,
) {
    let operand = match &*await_expr.value {
        Expr::Call(call) => Some(call.range()),
        _ => None,
    };
    let outer = std::mem::replace(&mut visitor.call_walk().awaited, operand);
    visitor.visit_expr(&await_expr.value);
    visitor.call_walk().awaited = outer;
}

/// Visit a call's callee and arguments; an instrumented call wraps its callee in one more
/// pair of parentheses.
pub(crate) fn walk_call<'a, V: CallRewriter<'a>>(
    visitor: &mut V,
    call: &'a ast::ExprCall,
    instrumented: bool,
) {
    let deeper = u32::from(instrumented);
    visitor.call_walk().callee_depth += deeper;
    visitor.visit_expr(&call.func);
    visitor.call_walk().callee_depth -= deeper;
    visitor.visit_arguments(&call.arguments);
}

/// Callees CPython warns about at compile time ("'int' object is not callable; perhaps you
/// missed a comma?", `compile.c:check_caller`): left as written so the warning stays.
fn is_literal(callee: &Expr) -> bool {
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

/// Annotations stay as written when the module's own code never evaluates them: under
/// `from __future__ import annotations` CPython stores their text, and from 3.14 (PEP 649)
/// `__annotate__` runs them on demand, which annotationlib's `STRING` and `FORWARDREF`
/// formats do with fake globals that would render a rewritten call as the rewrite's text.
fn annotations_as_written(body: &[Stmt], version: (u8, u8)) -> bool {
    version >= (3, 14) || has_future_annotations(body)
}

fn has_future_annotations(body: &[Stmt]) -> bool {
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
