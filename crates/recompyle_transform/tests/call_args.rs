//! Snapshots of `call_args::find_calls`: the call(s) found at a place and how each argument
//! is classified, one line per argument.

use recompyle_transform::call_args::{find_calls, Arg, ArgKind, Callee, Lvalue, Query, Step};

fn lvalue(l: &Lvalue) -> String {
    let mut text = l.root.clone();
    if !l.binding.as_str().is_empty() {
        text = format!("{text}<{}>", l.binding.as_str());
    }
    for step in &l.steps {
        match step {
            Step::Attr(a) => text.push_str(&format!(" .{a}")),
            Step::Index(k) => text.push_str(&format!(" [{k}]")),
        }
    }
    text
}

fn arg(a: &Arg) -> String {
    let kind = match &a.kind {
        ArgKind::Lvalue(l) => format!("lvalue {}", lvalue(l)),
        ArgKind::Refused(r) => format!("refused: {}", r.describe()),
    };
    format!("{}:{} {:?} -> {kind}", a.line, a.col, a.text)
}

fn render(source: &str, version: (u8, u8), query: Query) -> String {
    format!("--- source\n{source}{}", calls(source, version, query))
}

/// The calls found for one query, without the source.
fn calls(source: &str, version: (u8, u8), query: Query) -> String {
    let calls = find_calls(source, version, query).expect("parses");
    let mut text = format!("--- query {query:?}\n");
    for call in &calls {
        let callee = match &call.callee {
            Callee::Name(l) => format!("name {}", lvalue(l)),
            Callee::Attribute { base, attr } => format!(
                "attribute {attr} of {}",
                base.as_ref().map_or("<not an lvalue>".to_string(), lvalue)
            ),
            Callee::SuperAttribute(a) => format!("super().{a}"),
            Callee::Other => "other".to_string(),
        };
        text.push_str(&format!(
            "call {}:{}-{}:{} {:?} ({callee})\n",
            call.line, call.col, call.end_line, call.end_col, call.callee_text
        ));
        for a in &call.positional {
            text.push_str(&format!("  pos {}\n", arg(a)));
        }
        for k in &call.keywords {
            text.push_str(&format!("  kw {:?} {}\n", k.name, arg(&k.arg)));
        }
    }
    text
}

#[test]
fn lvalue_kinds() {
    let src = "f(a, b.c, d[0], e.f[-1].g, h['k'][1, 2], i[...], j[None])\n";
    insta::assert_snapshot!(render(src, (3, 12), Query::End { line: 1, col: 57 }));
}

#[test]
fn refusals() {
    let src =
        "f(1, 'x', a + b, g(), (y := 3), a[i], a[1:2], *args, k=-1, **kw, m=f'{a}', n=lambda: a)\n";
    insta::assert_snapshot!(render(src, (3, 12), Query::Line(1)));
}

#[test]
fn attribute_of_a_call_is_refused() {
    insta::assert_snapshot!(render("f(g().x, (a, b), [a])\n", (3, 11), Query::Line(1)));
}

#[test]
fn nested_calls_are_told_apart_by_their_end() {
    let src = "f(a, g(b))\nf(a)(b)\n";
    let mut text = render(src, (3, 11), Query::End { line: 1, col: 9 });
    text.push_str(&calls(src, (3, 11), Query::End { line: 1, col: 10 }));
    text.push_str(&calls(src, (3, 11), Query::End { line: 2, col: 7 }));
    text.push_str(&calls(src, (3, 11), Query::Line(1)));
    insta::assert_snapshot!(text);
}

#[test]
fn multiline_method_call_found_by_end() {
    let src = "x = (obj\n     .m(a,\n        k=b.c))\n";
    insta::assert_snapshot!(render(src, (3, 11), Query::End { line: 3, col: 14 }));
}

#[test]
fn callees() {
    let src = "f(a)\no.p.m(a)\nsuper().m(a)\nfs[0](a)\nfs[i](a)\ng()(a)\nsuper(C, self).m(a)\n";
    let mut text = format!("--- source\n{src}");
    for line in 1..=7 {
        text.push_str(&calls(src, (3, 11), Query::Line(line)));
    }
    insta::assert_snapshot!(text);
}

#[test]
fn scopes_and_declarations() {
    let src = "\
def outer():
    x = 0
    def inner():
        nonlocal x
        global g
        f(x, g, y)
    class K:
        global h
        f(h, z)
    return inner
";
    let mut text = render(src, (3, 11), Query::Line(6));
    text.push_str(&calls(src, (3, 11), Query::Line(9)));
    insta::assert_snapshot!(text);
}

#[test]
fn private_names_are_mangled_in_classes() {
    let src = "\
class _Counter:
    def bump(self):
        __n = 1
        f(self.__count, __n, self.__dunder__, o.__x[0].__y)
";
    insta::assert_snapshot!(render(src, (3, 11), Query::Line(4)));
}

#[test]
fn comprehension_variables() {
    let src = "\
def g(xs):
    a = [f(x, a, n) for x in xs for n in f(x)]
    b = {k: f(k, v) for k, v in xs}
    c = list(f(y) for y in xs)
    d = [f(w) for w in f(xs)]
";
    let mut text = format!("--- source\n{src}");
    for line in 2..=5 {
        text.push_str(&calls(src, (3, 12), Query::Line(line)));
    }
    insta::assert_snapshot!(text);
}

#[test]
fn python_310_puts_method_calls_on_their_attribute_line() {
    let src = "(o\n .m(a))\n(o\n .m(a, k=b))\nf(\n a)\n";
    let mut text = render(src, (3, 10), Query::Line310(2));
    text.push_str(&calls(src, (3, 10), Query::Line310(3)));
    text.push_str(&calls(src, (3, 10), Query::Line310(5)));
    text.push_str(&calls(src, (3, 9), Query::Line(1)));
    insta::assert_snapshot!(text);
}
