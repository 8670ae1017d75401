//! Snapshots of rewritten sources: each shows the input, the output and the site table.

use recompyle_transform::{site_id, transform, Options, Site};

fn render(source: &str) -> String {
    render_for(source, (3, 12))
}

fn render_for(source: &str, version: (u8, u8)) -> String {
    let options = Options {
        version,
        module_key: 7,
        track_globals: false,
    };
    let out = transform(source, &options).expect("transforms");
    assert_eq!(
        out.source.matches('\n').count(),
        source.matches('\n').count(),
        "line breaks must be preserved"
    );
    let output = with_positions_for_ids(&out.source, &out.sites, options.module_key);
    let mut text = format!("--- input\n{source}--- output\n{output}--- sites\n");
    for (i, s) in out.sites.iter().enumerate() {
        text.push_str(&format!(
            "{i}: {}:{}-{}:{} callee={:?} in {}\n",
            s.line, s.col, s.end_line, s.end_col, s.callee, s.qualname
        ));
    }
    text
}

/// The rewritten text with each site id (`__recompyle__(30064771072, f)`) shown as the
/// position of the site it names (`__recompyle__(2:8, f)`), so a snapshot shows which call
/// each id reports and an id put at the wrong call stands out.
fn with_positions_for_ids(output: &str, sites: &[Site], module_key: u32) -> String {
    let mut text = output.to_string();
    // Highest index first, though the delimiters already keep `…72` from matching `…720`.
    for (index, site) in sites.iter().enumerate().rev() {
        let id = site_id(module_key, index as u32);
        let position = format!("{}:{}", site.line, site.col);
        for close in [",", ")"] {
            text = text.replace(&format!("({id}{close}"), &format!("({position}{close}"));
        }
    }
    text
}

#[test]
fn simple_calls() {
    insta::assert_snapshot!(render("f()\nx = g(1, *a, k=2, **kw)\nprint(a, sep='')\n"));
}

#[test]
fn method_and_chained_calls() {
    insta::assert_snapshot!(render("obj.m(1).n()\nf(x)(y)\n(a.b)(x)\n"));
}

#[test]
fn nested_calls_in_arguments() {
    insta::assert_snapshot!(render("f(g(h(1)), k=i())\n"));
}

#[test]
fn sole_generator_argument_gets_parentheses() {
    insta::assert_snapshot!(render(
        "sum(x for x in range(3))\nsum((x for x in y))\nf(x for x in g(y))\nf(a, (x for x in y))\n"
    ));
}

#[test]
fn multiline_call_keeps_lines() {
    insta::assert_snapshot!(render("f(\n    1,\n    g(2),  # comment\n)\nh \\\n  (3)\n"));
}

#[test]
fn qualnames() {
    insta::assert_snapshot!(render(
        "class A:\n    x = f()\n    def m(self):\n        def inner():\n            return g()\n        return (lambda: h())()\n@deco(1)\ndef top(a=d()):\n    super().m()\n"
    ));
}

#[test]
fn fstring_debug_expressions_keep_their_text() {
    insta::assert_snapshot!(render("print(f\"{g(x)=} {h(y)} {k(z)!r:>{w(1)}}\")\n"));
}

#[test]
fn future_annotations_are_left_as_text() {
    insta::assert_snapshot!(render(
        "\"\"\"doc\"\"\"\nfrom __future__ import annotations\ndef f(x: g(1)) -> h(2):\n    y: k(3) = m(4)\n"
    ));
}

#[test]
fn annotations_are_calls_without_future_import() {
    insta::assert_snapshot!(render("def f(x: g(1)) -> h(2):\n    pass\n"));
}

#[test]
fn annotations_are_left_as_text_from_314() {
    // PEP 649: `__annotate__` runs them on demand (annotationlib renders their text).
    insta::assert_snapshot!(render_for(
        "def f(x: g(1)) -> h(2):\n    y: k(3) = m(4)\nz: n(5) = p(6)\n",
        (3, 14)
    ));
}

#[test]
fn template_strings_keep_their_text() {
    // PEP 750: `Interpolation.expression` is each interpolation's source text.
    insta::assert_snapshot!(render_for(
        "tmpl = t\"{g(x)} {h(y)!r:>{w(1)}}\" + k(f\"{m(2)}\")\n",
        (3, 14)
    ));
}

#[test]
fn unicode_columns_are_utf8_bytes() {
    insta::assert_snapshot!(render("é = 1; ñ(é)\n"));
}

#[test]
fn decorators_and_class_arguments() {
    insta::assert_snapshot!(render(
        "@a.b(1)\n@c\nclass K(Base(2), metaclass=meta()):\n    pass\n"
    ));
}

#[test]
fn walrus_and_starred() {
    insta::assert_snapshot!(render("f(y := g(), *h(), **i())\n"));
}

#[test]
fn pep701_fstrings_follow_the_target_version() {
    let src = "x = f\"{d['k']} {g(\"a\")}\"\n";
    assert!(transform(
        src,
        &Options {
            version: (3, 11),
            module_key: 1,
            track_globals: false
        }
    )
    .is_err());
    insta::assert_snapshot!(render_for(src, (3, 12)));
}

#[test]
fn private_method_names_are_left_to_the_compiler() {
    insta::assert_snapshot!(render(
        "class _Outer:\n    def m(self):\n        self.__p()\n        self.__dunder__()\n        def inner():\n            return self.__q()\n        return inner\nobj.__r()\n"
    ));
}

#[test]
fn method_chains_across_lines_keep_lines() {
    insta::assert_snapshot!(render(
        "x = (df  # frame\n    .filter(a)\n    . sort(\n    ))\ny = (obj).m(1)\nz = 1 .bit_length()\n"
    ));
}

#[test]
fn method_calls_inside_fstrings() {
    insta::assert_snapshot!(render("print(f'{obj.m(1)}')\n"));
}

#[test]
fn unicode_attribute_names_are_left_to_the_compiler() {
    insta::assert_snapshot!(render("obj.\u{FB01}le()\n"));
}

#[test]
fn literal_callees_stay_as_written() {
    insta::assert_snapshot!(render("(1)()\n[f(x)](2)\nf\"{1}\"()\n(x for x in ())()\n"));
}

#[test]
fn very_long_chains_stay_compilable() {
    let chain = format!("x = obj{}\n", ".m(1)".repeat(150));
    let out = transform(
        &chain,
        &Options {
            version: (3, 12),
            module_key: 1,
            track_globals: false,
        },
    )
    .expect("transforms");
    assert_eq!(out.sites.len(), 100);
    let max_open = out
        .source
        .chars()
        .scan(0i32, |depth, c| {
            *depth += match c {
                '(' => 1,
                ')' => -1,
                _ => 0,
            };
            Some(*depth)
        })
        .max();
    assert!(max_open < Some(200), "nesting {max_open:?}");
}

/// With `track_globals`, the reports of what a tracked namespace cannot see: stores of
/// declared globals (also at module level, where a nested `global` makes CPython use
/// STORE_GLOBAL), loop targets, and names a class body loads (not in patterns, nor in a
/// comprehension's own scope, nor debug f-strings).
#[test]
fn tracked_globals_add_write_and_class_read_reports() {
    let source = "\
N = 0
def bump():
    global N
    N += 1; x = 2
    for N in y:
        pass
    del N
class C:
    k = N
    v = [i for i in N if i]
    s = f\"{N=}\"
    def m(self, d=N):
        match d:
            case N.a:
                pass
";
    let options = Options {
        version: (3, 12),
        module_key: 7,
        track_globals: true,
    };
    let out = transform(source, &options).expect("transforms");
    let id = |i: u32| recompyle_transform::site_id(7, i);
    let expected = format!(
        "\
N = 0; __recompyle_gw__({})
def bump():
    global N
    N += 1; __recompyle_gw__({}); x = 2
    for N in y:
        __recompyle_gw__({}); pass
    del N; __recompyle_gw__({})
class C:
    k = __recompyle_gr__({}, N)
    v = [i for i in __recompyle_gr__({}, N) if i]
    s = f\"{{N=}}\"
    def m(self, d=__recompyle_gr__({}, N)):
        match d:
            case N.a:
                pass
",
        id(0),
        id(1),
        id(2),
        id(3),
        id(4),
        id(5),
        id(6)
    );
    assert_eq!(out.source, expected);
    let callees: Vec<&str> = out.sites.iter().map(|s| s.callee.as_str()).collect();
    assert_eq!(callees, ["N", "N", "N", "N", "N", "N", "N"]);
    let untracked = transform(
        source,
        &Options {
            track_globals: false,
            ..options
        },
    )
    .expect("transforms");
    assert_eq!(untracked.source, source);
}

#[test]
fn only_the_operand_of_await_is_marked_awaited() {
    let options = Options {
        version: (3, 12),
        module_key: 7,
        track_globals: false,
    };
    let source = "async def f():\n    await g(h())\n    await o.m() + 1\n    x = await (k(1))\n    await (p() + q())\n    await r(1)(2)\n";
    let out = transform(source, &options).expect("transforms");
    let marked: Vec<(&str, bool)> = out
        .sites
        .iter()
        .map(|s| (s.callee.as_str(), s.awaited))
        .collect();
    assert_eq!(
        marked,
        [
            ("g", true),
            ("h", false),
            ("o.m", true),
            ("k", true),
            ("p", false),
            ("q", false),
            ("r(1)", true),
            ("r", false),
        ]
    );
}

/// Code that may run many times (functions, lambdas, loops, comprehensions) tests the
/// listening flag before its selector when the callee is cheap to write twice; module and
/// class bodies' straight-line code, and other callees, call the selector alone.
#[test]
fn idle_sites_test_the_flag_where_code_repeats() {
    insta::assert_snapshot!(render(
        "x = f(1)\nfor i in r:\n    f(i)\nwhile w:\n    o.m(1)\ny = [g(v) for v in a.b(z)]\n\
         def h(p):\n    q.r[0].s(p)\n    'x'.join(p)\n    -1 .bit_length()\n    (f)(p)\n\
         \x20   f(p)(p)\n    k(p).m()\n    (lambda: n(1))()\n    return t  .  u(p)\n\
         class K:\n    v = f(2)\n    def m(self):\n        super().m()\n        f(\n\
         \x20           1)\n        a.\\\n            b(1)\n"
    ));
}

#[test]
fn calls_go_in_both_branches_from_313() {
    // Each branch's call is its own instruction, specialised for what it sees; a call whose
    // arguments cannot be written twice keeps one call after the flag's branches. On every
    // version, such a method call's listened branch looks the method up with
    // `__recompyle_ml__`; function calls, with or without `*` and `**`, select their callee.
    let source = "def f(o, xs):\n    len(xs)\n    o.m(1, k=xs, *xs)\n    g(h(1))\n    (o.n)(-1)\n\
                  \x20   f(*xs)\n    f(k=1, **xs)\n";
    insta::assert_snapshot!(render_for(source, (3, 13)));
    insta::assert_snapshot!(render_for(source, (3, 12)));
}

#[test]
fn calls_in_each_branch_nest() {
    // A rewrite that encloses such a call closes after the call's own branches, whichever
    // comes first (the idle branch on 3.12, see `branches`).
    let source = "def f(o, i, j):\n    o.m(i)(j)\n    o.m(i).k(j)\n    g(i)(j)\n    return h(o.m(i)) + g(i)\n";
    insta::assert_snapshot!(render_for(source, (3, 11)));
    insta::assert_snapshot!(render_for(source, (3, 12)));
}

#[test]
fn method_names_in_fstrings() {
    // Before 3.12 a string literal in an f-string's replacement field may not use the
    // f-string's quote: a method call there keeps the two-step form.
    let source = "def f(o, i):\n    return f'{o.m(i)}' + f\"{o.n(i)!r:>{o.w()}}\" + o.k(i)\n";
    insta::assert_snapshot!(render_for(source, (3, 11)));
    insta::assert_snapshot!(render_for(source, (3, 12)));
}
