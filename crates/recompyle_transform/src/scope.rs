//! The one scope model every walker uses: what a scope's body declares `global` or
//! `nonlocal` ([`Declarations`], collected by a statement-only walk, so nested scopes are
//! left out unless asked for), the stack of scopes a walk is in ([`Scopes`]: qualified names,
//! the class that mangles private names, how a name is bound), the names a statement binds
//! ([`bound_names`]), and what a class statement or a comprehension evaluates where
//! ([`walk_class_header`], [`walk_function_signature`], [`Comprehension`]).

use std::collections::HashSet;

use ruff_python_ast::statement_visitor::{self, StatementVisitor};
use ruff_python_ast::visitor::{self, Visitor};
use ruff_python_ast::{self as ast, Expr, ExprContext, Stmt};

/// The names a scope's body declares `global` and `nonlocal`.
#[derive(Debug, Default)]
pub(crate) struct Declarations {
    pub globals: HashSet<String>,
    pub nonlocals: HashSet<String>,
}

impl Declarations {
    /// The declarations of one scope's body, not looking into nested scopes.
    pub fn from_body(body: &[Stmt]) -> Self {
        Self::collect(body, false)
    }

    /// The names declared `global` anywhere in a module, nested scopes included: CPython's
    /// symbol table marks each of them global in the module's own scope too, whose code then
    /// stores them with STORE_GLOBAL (`symtable_add_def_helper`).
    pub fn module_globals(body: &[Stmt]) -> Self {
        Self::collect(body, true)
    }

    fn collect(body: &[Stmt], nested_scopes: bool) -> Self {
        let mut collector = Collector {
            declarations: Declarations::default(),
            nested_scopes,
        };
        collector.visit_body(body);
        collector.declarations
    }
}

/// Statements only: a declaration is a statement, and no expression holds one.
struct Collector {
    declarations: Declarations,
    /// Also the `global` declarations of nested function and class bodies.
    nested_scopes: bool,
}

impl<'a> StatementVisitor<'a> for Collector {
    fn visit_stmt(&mut self, stmt: &'a Stmt) {
        match stmt {
            Stmt::Global(global) => self
                .declarations
                .globals
                .extend(global.names.iter().map(|n| n.id.to_string())),
            // A nested scope's `nonlocal` names are its own.
            Stmt::Nonlocal(nonlocal) if !self.nested_scopes => self
                .declarations
                .nonlocals
                .extend(nonlocal.names.iter().map(|n| n.id.to_string())),
            Stmt::FunctionDef(_) | Stmt::ClassDef(_) if !self.nested_scopes => {}
            _ => statement_visitor::walk_stmt(self, stmt),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ScopeKind {
    Module,
    /// A function or a lambda.
    Function,
    Class,
    /// A list/set/dict comprehension: its own frame before 3.12, inlined from 3.12.
    InlinedComprehension,
    /// A generator expression: always a frame of its own.
    Generator,
}

/// How the scope of a name's use binds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Binding {
    /// Whatever the compiler decides: a local, a cell, a free variable, or a global read.
    Plain,
    /// Declared `global` in the scope of the call.
    Global,
    /// Declared `nonlocal` in the scope of the call.
    Nonlocal,
    /// Bound by an enclosing list/set/dict comprehension (inlined by CPython 3.12+).
    Comprehension,
}

impl Binding {
    pub fn as_str(self) -> &'static str {
        match self {
            Binding::Plain => "",
            Binding::Global => "global",
            Binding::Nonlocal => "nonlocal",
            Binding::Comprehension => "comprehension",
        }
    }
}

pub(crate) struct Scope {
    pub kind: ScopeKind,
    /// The name as written (`<lambda>` for a lambda); a class's mangles private names.
    name: String,
    /// As CPython's `__qualname__`; a comprehension has its enclosing scope's (its calls are
    /// reported as that scope's).
    pub qualname: String,
    pub declarations: Declarations,
    /// Names bound by the `for` targets of a comprehension.
    pub bound: HashSet<String>,
}

/// The scopes a walk is in, the module's first.
pub(crate) struct Scopes(Vec<Scope>);

impl Scopes {
    pub fn new(module: Declarations) -> Self {
        Scopes(vec![Scope {
            kind: ScopeKind::Module,
            name: String::new(),
            qualname: "<module>".to_string(),
            declarations: module,
            bound: HashSet::new(),
        }])
    }

    pub fn current(&self) -> &Scope {
        // `Scopes::new` pushes the module and `exit` never pops it.
        &self.0[self.0.len() - 1]
    }

    pub fn qualname(&self) -> &str {
        &self.current().qualname
    }

    /// Enter the function, lambda or class `name`, whose body declares `declarations`.
    pub fn enter(&mut self, kind: ScopeKind, name: &str, declarations: Declarations) {
        let parent = self.current();
        let qualname = match parent.kind {
            ScopeKind::Module => name.to_string(),
            ScopeKind::Class => format!("{}.{name}", parent.qualname),
            _ => format!("{}.<locals>.{name}", parent.qualname),
        };
        self.0.push(Scope {
            kind,
            name: name.to_string(),
            qualname,
            declarations,
            bound: HashSet::new(),
        });
    }

    /// Enter a comprehension's own scope, which binds its `for` targets.
    pub fn enter_comprehension(&mut self, comprehension: &Comprehension<'_>) {
        let kind = comprehension.kind;
        let bound = bound_names_of_targets(comprehension.generators.iter().map(|g| &g.target))
            .into_iter()
            .collect();
        let qualname = self.current().qualname.clone();
        self.0.push(Scope {
            kind,
            name: String::new(),
            qualname,
            declarations: Declarations::default(),
            bound,
        });
    }

    pub fn exit(&mut self) {
        if self.0.len() > 1 {
            self.0.pop();
        }
    }

    /// The class whose name mangles private names here: the innermost enclosing class.
    pub fn class_name(&self) -> Option<&str> {
        self.0
            .iter()
            .rev()
            .find(|s| s.kind == ScopeKind::Class)
            .map(|s| s.name.as_str())
    }

    /// How the current scope binds `name`.
    pub fn binding(&self, name: &str) -> Binding {
        for scope in self.0.iter().rev() {
            match scope.kind {
                ScopeKind::InlinedComprehension => {
                    if scope.bound.contains(name) {
                        return Binding::Comprehension;
                    }
                }
                ScopeKind::Generator => return Binding::Plain,
                _ if scope.declarations.globals.contains(name) => return Binding::Global,
                _ if scope.declarations.nonlocals.contains(name) => return Binding::Nonlocal,
                _ => return Binding::Plain,
            }
        }
        Binding::Plain
    }
}

/// The names a statement binds or deletes in its own scope: assignment and deletion
/// targets, walrus targets (also inside comprehensions, whose own targets are theirs),
/// imports; not looking into nested function, class or lambda scopes.
pub(crate) fn bound_names(stmt: &Stmt) -> Vec<String> {
    let mut names = BoundNames::default();
    names.visit_stmt(stmt);
    names.0
}

/// The names assignment targets bind (a `for` or `with` statement's, a comprehension's), in
/// order.
pub(crate) fn bound_names_of_targets<'a>(
    targets: impl IntoIterator<Item = &'a Expr>,
) -> Vec<String> {
    let mut names = BoundNames::default();
    for target in targets {
        names.visit_expr(target);
    }
    names.0
}

#[derive(Default)]
struct BoundNames(Vec<String>);

impl<'a> Visitor<'a> for BoundNames {
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
                let mut walrus = WalrusTargets(Vec::new());
                visitor::walk_expr(&mut walrus, expr);
                self.0.extend(walrus.0);
            }
            _ => visitor::walk_expr(self, expr),
        }
    }
}

/// Walrus targets in an expression (not inside lambdas).
struct WalrusTargets(Vec<String>);

impl<'a> Visitor<'a> for WalrusTargets {
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

/// A walker that keeps a [`Scopes`] stack while it visits.
pub(crate) trait ScopeWalker<'a>: Visitor<'a> + Sized {
    /// What a function's or class's `body` declares, as far as the walker needs it.
    fn declarations(&self, body: &[Stmt]) -> Declarations;

    /// Run `visit` inside the scope `name` (entered and left on the walker's stack).
    fn in_scope(
        &mut self,
        kind: ScopeKind,
        name: &str,
        declarations: Declarations,
        visit: impl FnOnce(&mut Self),
    );
}

/// Visit a function's or class's body in its own scope.
pub(crate) fn visit_scope_body<'a, V: ScopeWalker<'a>>(
    visitor: &mut V,
    kind: ScopeKind,
    name: &str,
    body: &'a [Stmt],
) {
    let declarations = visitor.declarations(body);
    visitor.in_scope(kind, name, declarations, |v| v.visit_body(body));
}

/// Visit a lambda: its parameters' defaults in the enclosing scope, its body in its own.
pub(crate) fn visit_lambda<'a, V: ScopeWalker<'a>>(visitor: &mut V, lambda: &'a ast::ExprLambda) {
    if let Some(parameters) = &lambda.parameters {
        visitor.visit_parameters(parameters);
    }
    visitor.in_scope(
        ScopeKind::Function,
        "<lambda>",
        Declarations::default(),
        |v| v.visit_expr(&lambda.body),
    );
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

/// Visit what a `def` evaluates outside its body, after its decorators: type parameters,
/// then parameters (defaults and annotations) and the return annotation. With type
/// parameters, the annotations are evaluated in an annotation scope.
pub(crate) fn walk_function_signature<'a, V: Visitor<'a>>(
    visitor: &mut V,
    def: &'a ast::StmtFunctionDef,
) {
    if let Some(type_params) = &def.type_params {
        visitor.visit_type_params(type_params);
    }
    visitor.visit_parameters(&def.parameters);
    if let Some(returns) = &def.returns {
        visitor.visit_annotation(returns);
    }
}

/// A list, set or dict comprehension or a generator expression.
pub(crate) struct Comprehension<'a> {
    pub kind: ScopeKind,
    pub generators: &'a [ast::Comprehension],
    /// A dict comprehension's key.
    key: Option<&'a Expr>,
    /// The element, or a dict comprehension's value.
    elt: &'a Expr,
}

impl<'a> Comprehension<'a> {
    pub fn of(expr: &'a Expr) -> Option<Self> {
        let (kind, generators, key, elt) = match expr {
            Expr::ListComp(c) => (ScopeKind::InlinedComprehension, &c.generators, None, &c.elt),
            Expr::SetComp(c) => (ScopeKind::InlinedComprehension, &c.generators, None, &c.elt),
            Expr::DictComp(c) => (
                ScopeKind::InlinedComprehension,
                &c.generators,
                c.key.as_deref(),
                &c.value,
            ),
            Expr::Generator(c) => (ScopeKind::Generator, &c.generators, None, &c.elt),
            _ => return None,
        };
        Some(Comprehension {
            kind,
            generators,
            key,
            elt,
        })
    }

    /// The first iterable: the enclosing scope evaluates it.
    pub fn first_iter(&self) -> Option<&'a Expr> {
        self.generators.first().map(|g| &g.iter)
    }

    /// Visit what the comprehension evaluates in its own scope, in CPython's order: each
    /// target, each iterable but the first, each condition, then the key and the element.
    pub fn walk_own_scope<V: Visitor<'a>>(&self, visitor: &mut V) {
        for (i, generator) in self.generators.iter().enumerate() {
            visitor.visit_expr(&generator.target);
            if i > 0 {
                visitor.visit_expr(&generator.iter);
            }
            for cond in &generator.ifs {
                visitor.visit_expr(cond);
            }
        }
        if let Some(key) = self.key {
            visitor.visit_expr(key);
        }
        visitor.visit_expr(self.elt);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(source: &str) -> Vec<Stmt> {
        recompyle_parser::parse_module(source, (3, 12))
            .expect("parses")
            .into_syntax()
            .body
            .to_vec()
    }

    fn sorted(names: &HashSet<String>) -> Vec<&str> {
        let mut names: Vec<&str> = names.iter().map(String::as_str).collect();
        names.sort_unstable();
        names
    }

    #[test]
    fn declarations_of_one_scope_or_of_the_whole_module() {
        let module = body(
            "global a\nif x:\n    global b\ndef f():\n    global c\n    for i in y:\n        nonlocal d\n    class K:\n        global e\n        nonlocal g\n",
        );
        let own = Declarations::from_body(&module);
        assert_eq!(sorted(&own.globals), ["a", "b"]);
        assert!(own.nonlocals.is_empty());
        let all = Declarations::module_globals(&module);
        assert_eq!(sorted(&all.globals), ["a", "b", "c", "e"]);
        assert!(all.nonlocals.is_empty());
        let Stmt::FunctionDef(f) = &module[2] else {
            panic!()
        };
        let function = Declarations::from_body(&f.body);
        assert_eq!(sorted(&function.globals), ["c"]);
        assert_eq!(sorted(&function.nonlocals), ["d"]);
    }

    #[test]
    fn qualnames_class_names_and_bindings() {
        let mut scopes = Scopes::new(Declarations::default());
        assert_eq!(scopes.qualname(), "<module>");
        scopes.enter(ScopeKind::Class, "K", Declarations::default());
        let mut declarations = Declarations::default();
        declarations.globals.insert("g".to_string());
        declarations.nonlocals.insert("n".to_string());
        scopes.enter(ScopeKind::Function, "m", declarations);
        scopes.enter(ScopeKind::Function, "<lambda>", Declarations::default());
        assert_eq!(scopes.qualname(), "K.m.<locals>.<lambda>");
        assert_eq!(scopes.class_name(), Some("K"));
        scopes.exit();
        assert_eq!(scopes.binding("g"), Binding::Global);
        assert_eq!(scopes.binding("n"), Binding::Nonlocal);
        let module = body("[g for g, *h in x]\n");
        let Stmt::Expr(e) = &module[0] else { panic!() };
        let comprehension = Comprehension::of(&e.value).expect("a comprehension");
        scopes.enter_comprehension(&comprehension);
        assert_eq!(scopes.qualname(), "K.m");
        assert_eq!(scopes.binding("g"), Binding::Comprehension);
        assert_eq!(scopes.binding("h"), Binding::Comprehension);
        assert_eq!(scopes.binding("n"), Binding::Nonlocal);
        scopes.exit();
        scopes.exit();
        scopes.exit();
        scopes.exit();
        assert_eq!(scopes.qualname(), "<module>");
        assert_eq!(scopes.class_name(), None);
    }

    #[test]
    fn names_a_statement_binds() {
        let module = body(
            "import a.b, c as d\nfrom e import f as g, h\nx, *y = [z := 1 for w in v]\ndel q\ndef fn(): pass\n",
        );
        let names: Vec<String> = module.iter().flat_map(bound_names).collect();
        // An assignment's value is walked before its targets.
        assert_eq!(names, ["a", "d", "g", "h", "z", "x", "y", "q"]);
    }
}
