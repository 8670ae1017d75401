//! The call-site rewriter: a visitor that records text edits and the site table.

use ruff_python_ast::visitor::{self, Visitor};
use ruff_python_ast::{self as ast, Expr, ExprContext, Stmt};
use ruff_text_size::{Ranged, TextRange, TextSize};

use crate::call_walk::{self, CallRewriter, CallWalk};
use crate::positions::{apply_edits, Edit, LineIndex, PositionMap};
use crate::scope::{
    bound_names, bound_names_of_targets, visit_lambda, visit_scope_body, walk_class_header,
    walk_function_signature, Comprehension, Declarations, ScopeKind, ScopeWalker, Scopes,
};
use crate::{site_id, TransformError};

// The builtin names live in `names.rs` (one place for the transform and the bindings).
use crate::names::{
    CALL_SELECTOR, CLASS_READ_REPORTER, DIRECT_CALLS, LISTENING, METHOD_LOOKUP_SELECTOR,
    METHOD_SELECTOR, SELECTOR, WRITE_REPORTER,
};

/// What the rewrite depends on besides the source.
#[derive(Debug, Clone)]
pub struct Options {
    /// The interpreter the code will run on: newer syntax is refused.
    pub version: (u8, u8),
    /// Distinguishes this module's sites from every other module's in one process.
    pub module_key: u32,
    /// The module's globals are tracked: add the reports of what its namespace cannot see
    /// ([`WRITE_REPORTER`], [`CLASS_READ_REPORTER`]).
    pub track_globals: bool,
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
    /// The call is the operand of `await` (`await f(x)`): the profiler times it until the
    /// awaited result is ready.
    pub awaited: bool,
    /// The module globals a reporting site reports, in order: those a [`WRITE_REPORTER`]
    /// site stores, the one a [`CLASS_READ_REPORTER`] site reads; empty at a call site.
    /// (Its `callee` is those names as text, for display only.)
    pub names: Vec<String>,
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
    let lines = LineIndex::new(source);
    let mut rewriter = Rewriter {
        source,
        options,
        lines: &lines,
        edits: Vec::new(),
        sites: Vec::new(),
        scopes: Scopes::new(if options.track_globals {
            Declarations::module_globals(&module.body)
        } else {
            Declarations::default()
        }),
        walk: CallWalk::new(&module.body, options.version),
        no_class_reads: 0,
        repeated: 0,
    };
    rewriter.visit_body(&module.body);
    if let Some(error) = rewriter.walk.error {
        return Err(TransformError::Internal(error));
    }
    let Rewriter { edits, sites, .. } = rewriter;
    let applied = apply_edits(source, &lines, edits, 0..source.len())?;
    Ok(Transformed {
        source: applied.text,
        sites,
        positions: applied.positions,
    })
}

/// Whether `expr` may be written twice in a call site's rewrite: an expression without calls,
/// lambdas, comprehensions, assignments, `await` or `yield` (each would be a second site,
/// scope or effect in the text, and a chain of them would double at every link), only names,
/// attributes, subscripts and literals, which are cheap to compile twice.
fn duplicable(expr: &Expr) -> bool {
    match expr {
        Expr::Name(_)
        | Expr::StringLiteral(_)
        | Expr::BytesLiteral(_)
        | Expr::NumberLiteral(_)
        | Expr::BooleanLiteral(_)
        | Expr::NoneLiteral(_)
        | Expr::EllipsisLiteral(_) => true,
        Expr::Attribute(attr) => duplicable(&attr.value),
        Expr::Subscript(sub) => duplicable(&sub.value) && duplicable(&sub.slice),
        Expr::UnaryOp(op) => duplicable(&op.operand),
        _ => false,
    }
}

/// Whether the call has a `*` or `**` argument: CPython names the callee in the errors those
/// raise (`f() argument after * must be an iterable`), which would name
/// [`CALL_SELECTOR`] if it made the call.
fn has_unpacking(call: &ast::ExprCall) -> bool {
    call.arguments.args.iter().any(Expr::is_starred_expr)
        || call.arguments.keywords.iter().any(|kw| kw.arg.is_none())
}

/// Whether the attribute name `name`, written as a string constant, is the name the
/// interpreter looks up: not a private name, which the compiler mangles inside a class
/// (`self.__x` looks up `_C__x`), and ASCII, as the parser NFKC-normalises other
/// identifiers and a string constant keeps what is written.
fn spelled_as_looked_up(name: &str) -> bool {
    name.is_ascii() && (!name.starts_with("__") || name.ends_with("__"))
}

fn is_simple(stmt: &Stmt) -> bool {
    !matches!(
        stmt,
        Stmt::FunctionDef(_)
            | Stmt::ClassDef(_)
            | Stmt::If(_)
            | Stmt::For(_)
            | Stmt::While(_)
            | Stmt::With(_)
            | Stmt::Try(_)
            | Stmt::Match(_)
    )
}

struct Rewriter<'src, 'opt> {
    source: &'src str,
    options: &'opt Options,
    lines: &'src LineIndex,
    edits: Vec<Edit>,
    sites: Vec<Site>,
    /// With `track_globals`, each scope's `global` declarations (the module's: every one).
    scopes: Scopes,
    walk: CallWalk,
    /// Inside patterns, comprehensions' own scopes, type parameters: names there are not
    /// the class body's loads, or cannot be wrapped.
    no_class_reads: u32,
    /// Inside a function, lambda, loop or comprehension: code that may run many times. The
    /// rest, module and class bodies' straight-line code, runs once per import or class
    /// creation, and keeps the shorter selector call at its sites (`select`).
    repeated: u32,
}

impl Rewriter<'_, '_> {
    /// The id of the next site.
    fn next_id(&mut self) -> Option<u64> {
        let index = self.walk.site_index(self.sites.len())?;
        Some(site_id(self.options.module_key, index))
    }

    /// A site of `range` in the current scope.
    fn push_site(&mut self, range: TextRange, callee: String, awaited: bool) {
        let span = self.lines.span(range);
        self.sites.push(Site {
            line: span.line,
            col: span.col,
            end_line: span.end_line,
            end_col: span.end_col,
            callee,
            qualname: self.scopes.qualname().to_string(),
            awaited,
            names: Vec::new(),
        });
    }

    fn text(&self, range: TextRange) -> String {
        self.source[range.to_std_range()].to_string()
    }

    /// The declared-global names among `names`, deduplicated, in order.
    fn declared_among(&self, names: Vec<String>) -> Vec<String> {
        let declared = &self.scopes.current().declarations.globals;
        let mut out: Vec<String> = Vec::new();
        for n in names {
            if declared.contains(&n) && !out.contains(&n) {
                out.push(n);
            }
        }
        out
    }

    /// Insert `text_before + __recompyle_gw__(ID) + text_after` at `at`, a report of `names`.
    fn write_report(
        &mut self,
        at: TextSize,
        range: TextRange,
        names: Vec<String>,
        prefix: &str,
        suffix: &str,
    ) {
        let Some(id) = self.next_id() else {
            return;
        };
        self.edits.push(Edit::insert(
            at,
            format!("{prefix}{WRITE_REPORTER}({id}){suffix}"),
        ));
        self.push_site(range, names.join(","), false);
        if let Some(site) = self.sites.last_mut() {
            site.names = names;
        }
    }

    /// Whether a name loaded here is a class body's LOAD_NAME to wrap.
    fn wraps_class_name(&self, name: &ast::ExprName) -> bool {
        self.in_class_tracking()
            && name.ctx == ExprContext::Load
            && !self.walk.keeps_text()
            && name.id.as_str() != "__class__"
            && !self
                .scopes
                .current()
                .declarations
                .globals
                .contains(name.id.as_str())
    }

    fn wrap_class_name(&mut self, name: &ast::ExprName) {
        let Some(id) = self.next_id() else {
            return;
        };
        let range = name.range();
        self.edits.push(Edit::insert(
            range.start(),
            format!("{CLASS_READ_REPORTER}({id}, "),
        ));
        self.edits.push(Edit::insert(range.end(), ")".to_string()));
        self.push_site(range, self.text(range), false);
        if let Some(site) = self.sites.last_mut() {
            site.names = vec![name.id.to_string()];
        }
    }

    /// A comprehension in a class body: its first iterable is evaluated by the class body,
    /// the rest in the comprehension's own scope.
    fn visit_comprehension_in_class<'a>(&mut self, comprehension: &Comprehension<'a>) {
        if let Some(first) = comprehension.first_iter() {
            self.visit_expr(first);
        }
        self.no_class_reads += 1;
        comprehension.walk_own_scope(self);
        self.no_class_reads -= 1;
    }

    fn rewrite_call(&mut self, call: &ast::ExprCall, awaited: bool) {
        let Some(id) = self.next_id() else {
            return;
        };
        let Some(open) = self.walk.open_paren(self.source, call) else {
            return;
        };
        let start = call.range().start();
        let (selector, split, value, method) = match &*call.func {
            // `obj.m(a)` -> `(__recompyle_m__(ID, obj) if __recompyle_on__ else obj).m(a)`:
            // still a method call to the compiler (LOAD_METHOD, no bound method, its own
            // positions, name mangling); when nothing listens the flag skips the selector,
            // which returns `obj` itself anyway. Not for a parenthesised callee `(a.b)(x)`,
            // whose `.` is inside the parentheses.
            Expr::Attribute(attr) if call.func.range().start() == start => {
                let Some(dot) = self.find_dot(attr.value.range().end(), attr.attr.range().start())
                else {
                    self.walk.error = Some(format!(
                        "no '.' before attribute at byte {}",
                        start.to_u32()
                    ));
                    return;
                };
                (METHOD_SELECTOR, dot, &*attr.value, Some(attr))
            }
            // `f(a)` -> `(__recompyle__(ID, f) if __recompyle_on__ else f)(a)`: the
            // interpreter still makes the call.
            func => (SELECTOR, open, func, None),
        };
        let in_branches = self.fits_both_branches(call, value);
        match method {
            None if in_branches && !has_unpacking(call) => {
                self.select_direct(id, call.range(), open);
            }
            Some(attr) if in_branches && self.may_write_name(attr.attr.as_str()) => {
                self.select_method_lookup(id, call.range(), split, attr);
            }
            _ if in_branches && self.options.version >= (3, 13) => {
                self.select_call(selector, id, call.range(), split);
            }
            _ => self.select(selector, id, TextRange::new(start, split), value),
        }
        self.push_site(call.range(), self.text(call.func.range()), awaited);
    }

    /// Wrap `range` (the text that evaluates `value`: the callee, or the object whose method
    /// is called, with any parentheses and white space around it) in `selector`'s call for
    /// site `id`.
    ///
    /// When `value` is cheap to write twice (see [`duplicable`]) and `range` is on one line,
    /// the call happens only while something listens:
    /// `(SELECTOR(ID, value) if __recompyle_on__ else value)`. The flag is a builtin the
    /// interpreter caches (LOAD_GLOBAL_BUILTIN, 3.9/3.10's opcache), so an idle site costs a
    /// load and a branch; `value` is still evaluated once, after the flag (whose load has no
    /// effect a program can see), and the copy in the selector's call keeps the original's
    /// columns (`Edit::insert_copy`), so a traceback while listening has the same carets.
    /// Otherwise (module or class body code outside loops, which runs once; a callee that is
    /// itself a call, a lambda, a multi-line callee...), the selector is always called:
    /// `SELECTOR(ID, value)`.
    fn select(&mut self, selector: &str, id: u64, range: TextRange, value: &Expr) {
        let start = range.start();
        let one_line = !self.source[range.to_std_range()].contains(['\n', '\r']);
        // Code that runs once gains nothing from the flag and would compile bigger (3.9's
        // peephole optimizer skips a code object with a line of 255+ bytes of bytecode).
        // In a tracked class body the value's names are wrapped in reporters (edits inside
        // `range`, which a copy would not carry).
        if self.repeated > 0 && one_line && duplicable(value) && !self.in_class_tracking() {
            self.edits
                .push(Edit::insert(start, format!("({selector}({id}, ")));
            self.edits.push(Edit::insert_copy(
                start,
                self.source,
                range,
                &format!(") if {LISTENING} else "),
            ));
        } else {
            self.edits
                .push(Edit::insert(start, format!("{selector}({id}, ")));
        }
        self.edits.push(Edit::insert(range.end(), ")".to_string()));
    }

    /// Whether the attribute `name` of a method call may be written as the string constant
    /// [`Self::select_method_lookup`] passes: [`spelled_as_looked_up`], and not inside an
    /// f-string's replacement field before 3.12, where a string literal may not use the
    /// f-string's quote (and one nested in another's may use neither).
    fn may_write_name(&self, name: &str) -> bool {
        spelled_as_looked_up(name) && (self.options.version >= (3, 12) || !self.walk.in_fstring())
    }

    /// Whether each branch of the flag may make the call itself, not only select its callee
    /// (see [`Self::select_direct`], [`Self::select_method_lookup`], [`Self::select_call`]):
    /// in code that may run many times, a one-line call whose callee (or method's object,
    /// `value`) and arguments are all cheap to write twice.
    fn fits_both_branches(&self, call: &ast::ExprCall, value: &Expr) -> bool {
        if self.repeated == 0 || self.in_class_tracking() {
            return false;
        }
        let arg_ok = |arg: &Expr| match arg {
            Expr::Starred(starred) => duplicable(&starred.value),
            arg => duplicable(arg),
        };
        !self.source[call.range().to_std_range()].contains(['\n', '\r'])
            && duplicable(value)
            && call.arguments.args.iter().all(arg_ok)
            && call
                .arguments
                .keywords
                .iter()
                .all(|kw| duplicable(&kw.value))
    }

    /// Rewrite the function call `range` (its `(` at `open`; a call with no `*` or `**`
    /// argument, see [`has_unpacking`]) so that while only the profiler listens the call is
    /// made by [`CALL_SELECTOR`], which reports it around making it: `f(a, k=b)` ->
    /// `(f(a, k=b) if not __recompyle_on__ else __recompyle_c__(ID, f, a, k=b) if
    /// __recompyle_c_on__ else __recompyle__(ID, f)(a, k=b))`. A reported call is then
    /// one call of a native object, instead of the selector's call, a proxy made for the
    /// call, its call and its release.
    ///
    /// The third branch, the selector's, is taken while [`DIRECT_CALLS`] is `False` (a
    /// handler listens, or reported calls nest as deep as they may): the selector decides per
    /// call, and a call it does not report is the interpreter's own, with no native frame
    /// under it, so deep recursion uses no C stack per call (as `__recompyle_c__` making
    /// every call would: 3.11 crashed and 3.12+ raised `RecursionError` at depths plain code
    /// reaches), and a handler's own calls add none either.
    ///
    /// The idle branch comes first, a copy of the call, which the interpreter specialises
    /// for its callee (on 3.12 it must, see [`Self::branches`]); the second is copies of
    /// the callee and of the arguments in [`CALL_SELECTOR`]'s call; the third is the
    /// original text, its callee in the selector's call. Every branch's text is inserted at
    /// the call's start (the copies keep the original's columns, `Edit::insert_copy`), so
    /// each branch's call spans the original call: a traceback through any of them shows
    /// the original's carets. The evaluation order is the original's: the tests, the
    /// callee, the arguments, the call.
    fn select_direct(&mut self, id: u64, range: TextRange, open: TextSize) {
        let (start, end) = (range.start(), range.end());
        let after_open = open + TextSize::from(1);
        self.edits.push(Edit::insert(start, "(".to_string()));
        for (copied, then) in [
            (
                range,
                format!(" if not {LISTENING} else {CALL_SELECTOR}({id}, "),
            ),
            (TextRange::new(start, open), ", ".to_string()),
            (
                TextRange::new(after_open, end),
                format!(" if {DIRECT_CALLS} else {SELECTOR}({id}, "),
            ),
        ] {
            self.edits
                .push(Edit::insert_copy(start, self.source, copied, &then));
        }
        self.edits.push(Edit::insert(open, ")".to_string()));
        self.edits
            .push(Edit::insert(end, ")".to_string()).leading());
    }

    /// Rewrite the method call `range` (the `.` before its attribute `attr` at `dot`) so
    /// that the branch taken while something listens looks the method up through
    /// [`METHOD_LOOKUP_SELECTOR`]: `obj.m(a)` ->
    /// `(__recompyle_ml__(ID, obj, 'm')(a) if __recompyle_on__ else obj.m(a))`. The
    /// lookup gives a proxy holding the method and `obj` (no bound method is made), where the
    /// two-step form handed the interpreter a target whose attribute lookup made it.
    ///
    /// The listened branch is the original text with `.m` replaced by `, 'm')`, so the
    /// lookup's call spans the original `obj.m` (a traceback of its `AttributeError` shows
    /// the original's carets) and the arguments keep their columns; the idle branch is a
    /// copy of the call. The evaluation order is the original's: `obj`, the lookup, the
    /// arguments, the call.
    fn select_method_lookup(
        &mut self,
        id: u64,
        range: TextRange,
        dot: TextSize,
        attr: &ast::ExprAttribute,
    ) {
        self.branches(range, &format!("{METHOD_LOOKUP_SELECTOR}({id}, "));
        self.edits.push(Edit::replace(
            TextRange::new(dot, attr.attr.range().end()),
            format!(", '{}')", attr.attr.as_str()),
        ));
    }

    /// The branches of [`Self::select_method_lookup`] around the call `range`'s text, which
    /// becomes the listened branch (its own edits follow, starting with `selector_call`
    /// before it): `(SELECTOR_CALL... if __recompyle_on__ else COPY)`, a copy of the call
    /// being the idle branch.
    ///
    /// On 3.12 the idle branch comes first, `(COPY if not __recompyle_on__ else
    /// SELECTOR_CALL...)`, so it ends with a jump over the listened branch. There, an
    /// instruction a jump lands on reports a `sys.settrace` line event unless the instruction
    /// run before it is on its line, and after a Python callee returns, the caller's previous
    /// instruction is the call's inline cache, which has no line: with the idle call last,
    /// every traced idle call reported its line a second time after returning (the listened
    /// branch ends with a native call, whose return leaves the call instruction itself as the
    /// previous one). Elsewhere the idle branch comes last, which spares it that jump.
    fn branches(&mut self, range: TextRange, selector_call: &str) {
        let (start, end) = (range.start(), range.end());
        if self.options.version == (3, 12) {
            self.edits.push(Edit::insert(start, "(".to_string()));
            self.edits.push(Edit::insert_copy(
                start,
                self.source,
                range,
                &format!(" if not {LISTENING} else {selector_call}"),
            ));
            self.edits.push(Edit::insert(end, ")".to_string()));
            return;
        }
        self.edits
            .push(Edit::insert(start, format!("({selector_call}")));
        // At the call's end an enclosing rewrite, made first, may have put text that closes
        // around this call (`obj.m(a)(b)`: its selector's `)`): this call's goes first.
        self.edits
            .push(Edit::insert(end, format!(" if {LISTENING} else ")).leading());
        self.edits
            .push(Edit::insert_copy(end, self.source, range, ")").leading());
    }

    /// Rewrite the call `range` so each branch of the flag makes its own call:
    /// `(SELECTOR(ID, f)(a) if __recompyle_on__ else f(a))`, or for a method
    /// `(SELECTOR(ID, obj).m(a) if __recompyle_on__ else obj.m(a))` (`split` is where the
    /// selected part ends: the call's `(`, or the method's `.`). From 3.13 the interpreter
    /// specialises each call instruction for what it sees: one shared by both branches saw
    /// the call proxy while something listened and kept the generic call it chose for it
    /// (`CALL_NON_PY_GENERAL`, which builtins pass too) when idle again, so `len(x)` never
    /// got `CALL_LEN` back. With a call of its own, the idle branch only ever sees the
    /// callee. Evaluation order is the flag form's (the flag, the callee, the arguments,
    /// the call); both copies of the text before the idle branch keep their columns.
    fn select_call(&mut self, selector: &str, id: u64, range: TextRange, split: TextSize) {
        let start = range.start();
        self.edits
            .push(Edit::insert(start, format!("({selector}({id}, ")));
        self.edits.push(Edit::insert_copy(
            start,
            self.source,
            TextRange::new(start, split),
            ")",
        ));
        self.edits.push(Edit::insert_copy(
            start,
            self.source,
            TextRange::new(split, range.end()),
            &format!(" if {LISTENING} else "),
        ));
        self.edits.push(Edit::insert(range.end(), ")".to_string()));
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

    fn in_class_tracking(&self) -> bool {
        self.options.track_globals
            && self.no_class_reads == 0
            && self.scopes.current().kind == ScopeKind::Class
    }

    /// A statement in a scope with `global` declarations: after it (a simple statement) or
    /// at the start of its body (`for` and `with` targets, when the body starts with a
    /// simple statement), report the declared globals it stored.
    fn visit_stmt_reporting_writes(&mut self, stmt: &Stmt) {
        if is_simple(stmt) {
            let names = self.declared_among(bound_names(stmt));
            self.visit_stmt_inner(stmt);
            if !names.is_empty() {
                self.write_report(stmt.range().end(), stmt.range(), names, "; ", "");
            }
            return;
        }
        let (targets, body): (Vec<&Expr>, &[Stmt]) = match stmt {
            Stmt::For(f) => (vec![&*f.target], &f.body),
            Stmt::With(w) => (
                w.items
                    .iter()
                    .filter_map(|i| i.optional_vars.as_deref())
                    .collect(),
                &w.body,
            ),
            _ => (Vec::new(), &[]),
        };
        let names = self.declared_among(bound_names_of_targets(targets));
        if let Some(first) = body.first() {
            if !names.is_empty() && is_simple(first) {
                self.write_report(first.range().start(), stmt.range(), names, "", "; ");
            }
        }
        self.visit_stmt_inner(stmt);
    }

    fn visit_stmt_inner(&mut self, stmt: &Stmt) {
        match stmt {
            Stmt::FunctionDef(def) => {
                for decorator in &def.decorator_list {
                    self.visit_decorator(decorator);
                }
                // With type parameters, annotations are evaluated in an annotation scope.
                let annotation_scope = u32::from(def.type_params.is_some());
                self.no_class_reads += annotation_scope;
                walk_function_signature(self, def);
                self.no_class_reads -= annotation_scope;
                visit_scope_body(self, ScopeKind::Function, def.name.as_str(), &def.body);
            }
            Stmt::ClassDef(class) => {
                walk_class_header(self, class);
                visit_scope_body(self, ScopeKind::Class, class.name.as_str(), &class.body);
            }
            _ => visitor::walk_stmt(self, stmt),
        }
    }
}

impl<'a> ScopeWalker<'a> for Rewriter<'_, '_> {
    /// With `track_globals`, the `global` declarations (the rewrite reads no others).
    fn declarations(&self, body: &[Stmt]) -> Declarations {
        if self.options.track_globals {
            Declarations::from_body(body)
        } else {
            Declarations::default()
        }
    }

    fn in_scope(
        &mut self,
        kind: ScopeKind,
        name: &str,
        declarations: Declarations,
        visit: impl FnOnce(&mut Self),
    ) {
        self.scopes.enter(kind, name, declarations);
        // A nested scope's names are its own: the class body's reads start over.
        let blocked = std::mem::take(&mut self.no_class_reads);
        let repeats = u32::from(kind != ScopeKind::Class);
        self.repeated += repeats;
        visit(self);
        self.repeated -= repeats;
        self.no_class_reads = blocked;
        self.scopes.exit();
    }
}

impl<'a> CallRewriter<'a> for Rewriter<'_, '_> {
    fn call_walk(&mut self) -> &mut CallWalk {
        &mut self.walk
    }
}

impl<'a> Visitor<'a> for Rewriter<'_, '_> {
    fn visit_stmt(&mut self, stmt: &'a Stmt) {
        let repeats = u32::from(matches!(stmt, Stmt::For(_) | Stmt::While(_)));
        self.repeated += repeats;
        if self.options.track_globals && !self.scopes.current().declarations.globals.is_empty() {
            self.visit_stmt_reporting_writes(stmt);
        } else {
            self.visit_stmt_inner(stmt);
        }
        self.repeated -= repeats;
    }

    fn visit_expr(&mut self, expr: &'a Expr) {
        match expr {
            Expr::Name(name) if self.wraps_class_name(name) => self.wrap_class_name(name),
            Expr::ListComp(_) | Expr::SetComp(_) | Expr::DictComp(_) | Expr::Generator(_) => {
                self.repeated += 1;
                match Comprehension::of(expr) {
                    Some(comprehension) if self.in_class_tracking() => {
                        self.visit_comprehension_in_class(&comprehension);
                    }
                    _ => visitor::walk_expr(self, expr),
                }
                self.repeated -= 1;
            }
            Expr::TString(_) => call_walk::visit_template(self, expr),
            Expr::Call(call) => {
                let instrument = self.walk.instruments(call);
                if instrument {
                    self.rewrite_call(call, self.walk.is_awaited(call));
                }
                call_walk::walk_call(self, call, instrument);
            }
            Expr::Await(await_expr) => call_walk::visit_await(self, await_expr),
            Expr::Lambda(lambda) => visit_lambda(self, lambda),
            _ => visitor::walk_expr(self, expr),
        }
    }

    fn visit_pattern(&mut self, pattern: &'a ast::Pattern) {
        // Value and class patterns are dotted names: nothing may wrap them.
        self.no_class_reads += 1;
        visitor::walk_pattern(self, pattern);
        self.no_class_reads -= 1;
    }

    fn visit_type_params(&mut self, type_params: &'a ast::TypeParams) {
        self.no_class_reads += 1;
        visitor::walk_type_params(self, type_params);
        self.no_class_reads -= 1;
    }

    fn visit_annotation(&mut self, expr: &'a Expr) {
        call_walk::visit_annotation(self, expr);
    }

    fn visit_interpolated_string_element(&mut self, element: &'a ast::InterpolatedStringElement) {
        call_walk::visit_interpolated_element(self, element);
    }
}
