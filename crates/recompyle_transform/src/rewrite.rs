//! The call-site rewriter: a visitor that records text edits and the site table.

use std::collections::HashSet;

use ruff_python_ast::visitor::{self, Visitor};
use ruff_python_ast::{self as ast, Expr, ExprContext, Stmt};
use ruff_text_size::{Ranged, TextSize};

use crate::positions::{Edit, LineIndex, PositionMap};
use crate::{site_id, TransformError};

// The builtin names live in `names.rs` (one place for the transform and the bindings).
use crate::names::{CLASS_READ_REPORTER, METHOD_SELECTOR, SELECTOR as TRAMPOLINE, WRITE_REPORTER};

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
        future_annotations: annotations_as_written(&module.body, options.version),
        in_debug_fstring: 0,
        callee_depth: 0,
        error: None,
        declared: vec![if options.track_globals {
            all_declared_globals(&module.body)
        } else {
            HashSet::new()
        }],
        no_class_reads: 0,
        awaited: None,
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
                callee: s.callee_text.unwrap_or_else(|| {
                    source[s.callee_start as usize..s.callee_end as usize].to_string()
                }),
                qualname: s.qualname,
                awaited: s.awaited,
            }
        })
        .collect();
    Ok(Transformed {
        source: output,
        sites,
        positions,
    })
}

/// Visit what a class statement evaluates in the enclosing scope, before its body:
/// decorators, type parameters, then bases and keywords.
pub(crate) fn walk_class_header<'a, V: Visitor<'a>>(visitor: &mut V, class: &'a ast::StmtClassDef) {
    for decorator in &class.decorator_list {
        visitor.visit_decorator(decorator);
    }
    if let Some(type_params) = &class.type_params {
        visitor.visit_type_params(type_params);
    }
    if let Some(arguments) = &class.arguments {
        visitor.visit_arguments(arguments);
    }
}

/// Visit what a comprehension evaluates in its own scope, in CPython's order: each target,
/// each iterable but the first (the enclosing scope evaluates that one), each condition,
/// then the element(s).
pub(crate) fn walk_comprehension_scope<'a, V: Visitor<'a>>(
    visitor: &mut V,
    generators: &'a [ast::Comprehension],
    elts: &[&'a Expr],
) {
    for (i, generator) in generators.iter().enumerate() {
        visitor.visit_expr(&generator.target);
        if i > 0 {
            visitor.visit_expr(&generator.iter);
        }
        for cond in &generator.ifs {
            visitor.visit_expr(cond);
        }
    }
    for elt in elts {
        visitor.visit_expr(elt);
    }
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

/// Annotations stay as written when the module's own code never evaluates them: under
/// `from __future__ import annotations` CPython stores their text, and from 3.14 (PEP 649)
/// `__annotate__` runs them on demand, which annotationlib's `STRING` and `FORWARDREF`
/// formats do with fake globals that would render a rewritten call as the rewrite's text.
pub(crate) fn annotations_as_written(body: &[Stmt], version: (u8, u8)) -> bool {
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

/// The range of the call that is `await`'s operand, if it is a call (`await f(x)`).
pub(crate) fn awaited_call(await_expr: &ast::ExprAwait) -> Option<ruff_text_size::TextRange> {
    match &*await_expr.value {
        Expr::Call(call) => Some(call.range()),
        _ => None,
    }
}

struct RawSite {
    start: u32,
    end: u32,
    callee_start: u32,
    callee_end: u32,
    /// Instead of the source text at `callee_start..callee_end` (the names of a write report).
    callee_text: Option<String>,
    qualname: String,
    awaited: bool,
}

/// The names a scope's body declares `global` (not looking into nested scopes).
fn declared_globals(body: &[Stmt]) -> HashSet<String> {
    struct Collect(HashSet<String>);
    impl<'a> Visitor<'a> for Collect {
        fn visit_stmt(&mut self, stmt: &'a Stmt) {
            match stmt {
                Stmt::Global(g) => self.0.extend(g.names.iter().map(|n| n.id.to_string())),
                Stmt::FunctionDef(_) | Stmt::ClassDef(_) => {}
                _ => visitor::walk_stmt(self, stmt),
            }
        }
        fn visit_expr(&mut self, _: &'a Expr) {}
    }
    let mut c = Collect(HashSet::new());
    c.visit_body(body);
    c.0
}

/// The names declared `global` anywhere in a module, nested scopes included: CPython's
/// symbol table marks each of them global in the module's own scope too, whose code then
/// stores them with STORE_GLOBAL (`symtable_add_def_helper`).
fn all_declared_globals(body: &[Stmt]) -> HashSet<String> {
    struct Collect(HashSet<String>);
    impl<'a> Visitor<'a> for Collect {
        fn visit_stmt(&mut self, stmt: &'a Stmt) {
            if let Stmt::Global(g) = stmt {
                self.0.extend(g.names.iter().map(|n| n.id.to_string()));
            }
            visitor::walk_stmt(self, stmt);
        }
        fn visit_expr(&mut self, _: &'a Expr) {}
    }
    let mut c = Collect(HashSet::new());
    c.visit_body(body);
    c.0
}

/// The names a statement (or expression) binds or deletes in its own scope: assignment
/// and deletion targets, walrus targets (also inside comprehensions, whose own targets are
/// theirs), imports; not looking into nested function, class or lambda scopes.
#[derive(Default)]
struct Stores(Vec<String>);

impl<'a> Visitor<'a> for Stores {
    fn visit_stmt(&mut self, stmt: &'a Stmt) {
        match stmt {
            Stmt::FunctionDef(_) | Stmt::ClassDef(_) => {}
            Stmt::Import(import) => {
                for alias in &import.names {
                    let bound = match &alias.asname {
                        Some(a) => a.id.to_string(),
                        None => alias.name.id.split('.').next().unwrap_or("").to_string(),
                    };
                    self.0.push(bound);
                }
            }
            Stmt::ImportFrom(import) => {
                for alias in &import.names {
                    let bound = alias.asname.as_ref().unwrap_or(&alias.name);
                    if bound.id.as_str() != "*" {
                        self.0.push(bound.id.to_string());
                    }
                }
            }
            _ => visitor::walk_stmt(self, stmt),
        }
    }
    fn visit_expr(&mut self, expr: &'a Expr) {
        match expr {
            Expr::Name(n) if matches!(n.ctx, ExprContext::Store | ExprContext::Del) => {
                self.0.push(n.id.to_string());
            }
            Expr::Lambda(_) => {}
            Expr::ListComp(_) | Expr::SetComp(_) | Expr::DictComp(_) | Expr::Generator(_) => {
                // Only walrus targets inside escape a comprehension.
                let mut walrus = Walrus(Vec::new());
                visitor::walk_expr(&mut walrus, expr);
                self.0.extend(walrus.0);
            }
            _ => visitor::walk_expr(self, expr),
        }
    }
}

/// Walrus targets in an expression (not inside lambdas).
struct Walrus(Vec<String>);

impl<'a> Visitor<'a> for Walrus {
    fn visit_expr(&mut self, expr: &'a Expr) {
        match expr {
            Expr::Named(named) => {
                if let Expr::Name(n) = &*named.target {
                    self.0.push(n.id.to_string());
                }
                self.visit_expr(&named.value);
            }
            Expr::Lambda(_) => {}
            _ => visitor::walk_expr(self, expr),
        }
    }
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
    /// See `annotations_as_written`.
    future_annotations: bool,
    /// Inside `{expr=}` or a template string: CPython keeps the expression's source text
    /// (printed, or `Interpolation.expression`), so it stays as written.
    in_debug_fstring: u32,
    /// How many rewritten calls have this expression inside their callee.
    callee_depth: u32,
    error: Option<String>,
    /// Per scope (the module's first), the names it declares `global`.
    declared: Vec<HashSet<String>>,
    /// Inside patterns, comprehensions' own scopes, type parameters: names there are not
    /// the class body's loads, or cannot be wrapped.
    no_class_reads: u32,
    /// The range of the call that is the operand of the innermost `await` being visited.
    awaited: Option<ruff_text_size::TextRange>,
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
        self.in_scope_with(name, kind, HashSet::new(), f);
    }

    fn in_scope_with(
        &mut self,
        name: &str,
        kind: ScopeKind,
        declared: HashSet<String>,
        f: impl FnOnce(&mut Self),
    ) {
        let qualname = self.child_qualname(name);
        self.scopes.push(Scope { qualname, kind });
        self.declared.push(declared);
        let blocked = std::mem::take(&mut self.no_class_reads);
        f(self);
        self.no_class_reads = blocked;
        self.declared.pop();
        self.scopes.pop();
    }

    fn next_index(&mut self) -> Option<u32> {
        match u32::try_from(self.sites.len()) {
            Ok(i) => Some(i),
            Err(_) => {
                self.error = Some("too many call sites".to_string());
                None
            }
        }
    }

    /// The declared-global names among `names`, deduplicated, in order.
    fn declared_among(&self, names: Vec<String>) -> Vec<String> {
        let Some(declared) = self.declared.last() else {
            return Vec::new();
        };
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
        range: ruff_text_size::TextRange,
        names: Vec<String>,
        prefix: &str,
        suffix: &str,
    ) {
        let Some(index) = self.next_index() else {
            return;
        };
        let id = site_id(self.options.module_key, index);
        self.edits.push(Edit::insert(
            at,
            format!("{prefix}{WRITE_REPORTER}({id}){suffix}"),
        ));
        self.sites.push(RawSite {
            start: range.start().to_u32(),
            end: range.end().to_u32(),
            callee_start: 0,
            callee_end: 0,
            callee_text: Some(names.join(",")),
            qualname: self.qualname(),
            awaited: false,
        });
    }

    /// Whether a name loaded here is a class body's LOAD_NAME to wrap.
    fn wraps_class_name(&self, name: &ast::ExprName) -> bool {
        self.options.track_globals
            && name.ctx == ExprContext::Load
            && self.no_class_reads == 0
            && self.in_debug_fstring == 0
            && matches!(self.scopes.last(), Some(s) if s.kind == ScopeKind::Class)
            && name.id.as_str() != "__class__"
            && !self
                .declared
                .last()
                .is_some_and(|d| d.contains(name.id.as_str()))
    }

    fn wrap_class_name(&mut self, name: &ast::ExprName) {
        let Some(index) = self.next_index() else {
            return;
        };
        let id = site_id(self.options.module_key, index);
        let range = name.range();
        self.edits.push(Edit::insert(
            range.start(),
            format!("{CLASS_READ_REPORTER}({id}, "),
        ));
        self.edits.push(Edit::insert(range.end(), ")".to_string()));
        self.sites.push(RawSite {
            start: range.start().to_u32(),
            end: range.end().to_u32(),
            callee_start: range.start().to_u32(),
            callee_end: range.end().to_u32(),
            callee_text: None,
            qualname: self.qualname(),
            awaited: false,
        });
    }

    /// A comprehension in a class body: its first iterable is evaluated by the class body,
    /// the rest in the comprehension's own scope.
    fn visit_comprehension_in_class<'a>(
        &mut self,
        elts: &[&'a Expr],
        generators: &'a [ast::Comprehension],
    ) {
        if let Some(first) = generators.first() {
            self.visit_expr(&first.iter);
        }
        self.no_class_reads += 1;
        walk_comprehension_scope(self, generators, elts);
        self.no_class_reads -= 1;
    }

    fn rewrite_call(&mut self, call: &ast::ExprCall, awaited: bool) {
        let Some(index) = self.next_index() else {
            return;
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
            callee_text: None,
            qualname: self.qualname(),
            awaited,
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
        if self.options.track_globals && self.declared.last().is_some_and(|d| !d.is_empty()) {
            self.visit_stmt_reporting_writes(stmt);
        } else {
            self.visit_stmt_inner(stmt);
        }
    }

    fn visit_expr(&mut self, expr: &'a Expr) {
        match expr {
            Expr::Name(name) if self.wraps_class_name(name) => self.wrap_class_name(name),
            Expr::ListComp(c) if self.in_class_tracking() => {
                self.visit_comprehension_in_class(&[&c.elt], &c.generators)
            }
            Expr::SetComp(c) if self.in_class_tracking() => {
                self.visit_comprehension_in_class(&[&c.elt], &c.generators)
            }
            Expr::Generator(c) if self.in_class_tracking() => {
                self.visit_comprehension_in_class(&[&c.elt], &c.generators)
            }
            Expr::DictComp(c) if self.in_class_tracking() => {
                let elts: Vec<&Expr> = c.key.as_deref().into_iter().chain([&*c.value]).collect();
                self.visit_comprehension_in_class(&elts, &c.generators)
            }
            Expr::TString(_) => {
                self.in_debug_fstring += 1;
                self.visit_expr_inner(expr);
                self.in_debug_fstring -= 1;
            }
            _ => self.visit_expr_inner(expr),
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

impl Rewriter<'_, '_> {
    fn in_class_tracking(&self) -> bool {
        self.options.track_globals
            && self.no_class_reads == 0
            && matches!(self.scopes.last(), Some(s) if s.kind == ScopeKind::Class)
    }

    /// A statement in a scope with `global` declarations: after it (a simple statement) or
    /// at the start of its body (`for` and `with` targets, when the body starts with a
    /// simple statement), report the declared globals it stored.
    fn visit_stmt_reporting_writes(&mut self, stmt: &Stmt) {
        if is_simple(stmt) {
            let mut stores = Stores::default();
            stores.visit_stmt(stmt);
            let names = self.declared_among(stores.0);
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
        let mut stores = Stores::default();
        for t in targets {
            stores.visit_expr(t);
        }
        let names = self.declared_among(stores.0);
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
                let annotation_scope = def.type_params.is_some();
                if let Some(type_params) = &def.type_params {
                    self.visit_type_params(type_params);
                }
                if annotation_scope {
                    self.no_class_reads += 1;
                }
                self.visit_parameters(&def.parameters);
                if let Some(returns) = &def.returns {
                    self.visit_annotation(returns);
                }
                if annotation_scope {
                    self.no_class_reads -= 1;
                }
                let declared = if self.options.track_globals {
                    declared_globals(&def.body)
                } else {
                    HashSet::new()
                };
                self.in_scope_with(def.name.as_str(), ScopeKind::Function, declared, |this| {
                    this.visit_body(&def.body)
                });
            }
            Stmt::ClassDef(class) => {
                walk_class_header(self, class);
                let declared = if self.options.track_globals {
                    declared_globals(&class.body)
                } else {
                    HashSet::new()
                };
                self.in_scope_with(class.name.as_str(), ScopeKind::Class, declared, |this| {
                    this.visit_body(&class.body)
                });
            }
            _ => visitor::walk_stmt(self, stmt),
        }
    }

    fn visit_expr_inner(&mut self, expr: &Expr) {
        match expr {
            Expr::Call(call) => {
                let instrument = self.in_debug_fstring == 0
                    && self.callee_depth < MAX_CALLEE_DEPTH
                    && !is_literal(&call.func);
                if instrument {
                    self.rewrite_call(call, self.awaited == Some(call.range()));
                    // Each rewritten call wraps its callee in one more pair of parentheses.
                    self.callee_depth += 1;
                    self.visit_expr(&call.func);
                    self.callee_depth -= 1;
                    self.visit_arguments(&call.arguments);
                } else {
                    visitor::walk_expr(self, expr);
                }
            }
            Expr::Await(await_expr) => {
                // Only the call that is the operand itself: `await f(x)`, not `await f(x) + 1`
                // (whose operand is the sum) nor the calls inside `f(x)`'s arguments.
                let outer = std::mem::replace(&mut self.awaited, awaited_call(await_expr));
                self.visit_expr(&await_expr.value);
                self.awaited = outer;
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
}
