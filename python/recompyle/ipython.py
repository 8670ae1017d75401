"""IPython and Jupyter magics: profile a cell or a statement, instrument modules.

``%load_ext recompyle`` registers:

``%%recompyle [--modules PATTERNS] [--format FORMAT] [-o FILE]``
    Runs the cell with its own call sites instrumented (plus the modules PATTERNS select,
    from their next import) and shows the profile of the calls it made below the cell.
``%recompyle [options] STATEMENT``
    The same for one statement.
``%recompyle_modules PATTERNS``
    Instrument these modules from their next import on, for the rest of the session.

The cell is compiled the way the loader compiles a file: IPython's own syntax (magics,
``!cmd``) is turned into Python by the shell, that text is registered in ``linecache``
under the cell's name as IPython does for every cell (so tracebacks show the cell's lines),
and the native transform rewrites it; the compiled code gets the cell's own columns back.
The last expression's value is the magic's value, so it is displayed as ``Out[n]``.

Top-level ``await``: IPython runs a cell as a coroutine only when its own text awaits, and
a cell magic is a plain call. An input transformer therefore rewrites a ``%%recompyle``
cell whose body awaits into an ``await`` of this module's ``run_cell_async``, which IPython
then runs on its loop (the kernel's loop in Jupyter).
"""

from __future__ import annotations

import ast
import os
import sys
from dataclasses import dataclass
from types import CodeType
from typing import Any

from IPython.core.magic import Magics, line_cell_magic, line_magic, magics_class

from recompyle import _core
from recompyle.profiler import Profiler

__all__ = ["RecompyleMagics", "load_ipython_extension", "run_cell_async"]

_MAGIC = "%%recompyle"
#: Transform salts tried before giving up on a key clash (as the loader does).
_MAX_SALTS = 8
_CO_COROUTINE = 0x0080


@dataclass(frozen=True)
class MagicOptions:
    """What ``%recompyle``/``%%recompyle`` were asked for."""

    modules: str
    format: str | None
    output: str | None
    statement: str


@dataclass(frozen=True)
class CellCode:
    """A cell compiled instrumented: its statements, and its last expression (if the cell
    ends in one), whose value is displayed."""

    body: CodeType
    last: CodeType | None
    instrumented: bool


@magics_class
class RecompyleMagics(Magics):
    """The magics; ``last_profile`` holds the profile of the last cell or statement."""

    last_profile: Profiler | None = None

    @line_cell_magic
    def recompyle(self, line: str, cell: str | None = None) -> Any:
        """Profile a cell (``%%recompyle``) or one statement (``%recompyle STATEMENT``) with
        its call sites instrumented; options: ``--modules PATTERNS`` (also instrument these
        modules from their next import), ``--format text`` and ``-o FILE`` (also write
        the profile there)."""
        __tracebackhide__ = True  # noqa: F841 -- IPython hides this frame in tracebacks
        options = self._options(line, cell is None)
        source = options.statement if cell is None else cell
        code = self._prepare(options, source)
        profile = Profiler()
        try:
            with profile:
                value = self._run(code.body)
                if code.last is not None:
                    value = self._run(code.last)
        finally:
            self._show(options, profile)
        return value

    async def run_async(self, line: str, cell: str | None) -> Any:
        """``%%recompyle`` (``%recompyle`` when ``cell`` is None) for code that awaits at
        top level (see the module's doc)."""
        __tracebackhide__ = True  # noqa: F841
        options = self._options(line, cell is None)
        code = self._prepare(options, options.statement if cell is None else cell)
        profile = Profiler()
        try:
            with profile:
                value = self._eval(code.body)
                if _awaitable(code.body):
                    value = await value
                if code.last is not None:
                    value = self._eval(code.last)
                    if _awaitable(code.last):
                        value = await value
        finally:
            self._show(options, profile)
        return value

    @line_magic
    def recompyle_modules(self, line: str) -> None:
        """Instrument the modules PATTERNS select (comma-separated globs over dotted names,
        ``pkg.*`` is pkg and its submodules) from their next import on."""
        patterns = line.strip()
        if not patterns:
            from recompyle.finder import installed_patterns

            print(f"recompyle: instrumenting {','.join(installed_patterns()) or 'nothing'}")
            return
        self._install(patterns)

    # -- steps ---------------------------------------------------------------------------

    def _options(self, line: str, statement: bool) -> MagicOptions:
        from IPython.core.error import UsageError

        opts, rest = self.parse_options(
            line, "o:", "modules=", "format=", "output=", posix=False, strict=False
        )
        fmt = opts.get("format")
        if fmt is not None and fmt not in _formats():
            raise UsageError(f"--format must be one of {', '.join(_formats())}, not {fmt!r}")
        output = opts.get("o") or opts.get("output")
        if output:
            parent = os.path.dirname(os.path.abspath(output))
            if not os.path.isdir(parent):
                raise UsageError(f"no directory {parent!r} for -o {output}")
        elif fmt is not None and fmt not in _DISPLAYED:
            raise UsageError(f"the {fmt} format is written to a file: give -o FILE")
        if fmt == "html" and not output and not _in_notebook(self.shell):
            raise UsageError("the html format shows in a notebook; here, give -o FILE.html")
        if statement and not rest.strip():
            raise UsageError("%recompyle needs a statement (or use %%recompyle on a cell)")
        if not statement and rest.strip():
            raise UsageError(f"%%recompyle takes only options on its line, not {rest!r}")
        return MagicOptions(opts.get("modules", ""), fmt, output, rest)

    def _install(self, patterns: str) -> None:
        from IPython.core.error import UsageError

        from recompyle.finder import already_imported, install

        try:
            _core.ModuleMatcher(patterns)
        except ValueError as exc:
            raise UsageError(f"recompyle: {exc}") from None
        already = already_imported(patterns)
        install(patterns, warn_imported=False)
        if already:
            print(
                "recompyle: already imported, so not instrumented (restart the kernel to "
                f"instrument them): {', '.join(already)}"
            )

    def _prepare(self, options: MagicOptions, source: str) -> CellCode:
        if options.modules:
            self._install(options.modules)
        return compile_cell(self.shell, source, 1 if options.statement else 2)

    def _eval(self, code: CodeType) -> Any:
        __tracebackhide__ = True  # noqa: F841 -- IPython hides this frame in tracebacks
        return eval(code, self.shell.user_global_ns, self.shell.user_ns)

    def _run(self, code: CodeType) -> Any:
        __tracebackhide__ = True  # noqa: F841
        value = self._eval(code)
        return self._await_here(value) if _awaitable(code) else value

    def _await_here(self, coroutine: Any) -> Any:
        """Run a top-level-await cell that did not come through the input transformer (the
        magic called directly): on IPython's loop runner, if no loop runs on this thread."""
        import asyncio

        from IPython.core.error import UsageError

        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return self.shell.loop_runner(coroutine)
        coroutine.close()
        raise UsageError(
            "this code awaits at top level: run it as a cell that starts with %%recompyle"
        )

    def _show(self, options: MagicOptions, profile: Profiler) -> None:
        from recompyle.report import default_format, render_document, write_file

        self.last_profile = profile
        doc = _document(profile)
        if options.output:
            fmt = options.format or default_format(options.output)
            try:
                write_file(options.output, render_document(doc, fmt))
            except OSError as exc:
                print(f"recompyle: cannot write the profile to {options.output!r}: {exc}")
        shown = options.format if options.format in _DISPLAYED else None
        if shown is None:
            shown = "html" if _in_notebook(self.shell) and _has_html() else "tree"
        if shown == "html":
            from IPython.display import display

            display(ProfileDisplay(doc))
            return
        text = render_document(doc, shown, limit=_TEXT_LIMIT)
        sys.stdout.write(text if isinstance(text, str) else text.decode("utf-8", "replace"))
        sys.stdout.flush()


#: What the magics can show below a cell; the other formats are written with ``-o``.
_DISPLAYED = ("text", "tree", "html")
#: Sites in the text table below a cell (the file has them all).
_TEXT_LIMIT = 40


class ProfileDisplay:
    """The HTML report of a profile as a cell's output, through IPython's display system
    (so JupyterLab, the classic notebook and VS Code show it alike): the page in an
    ``iframe`` of its own, so its styles and script cannot touch the notebook's, with the
    call tree as the plain-text fallback."""

    def __init__(self, doc: dict[str, Any]) -> None:
        self.doc = doc

    def _repr_html_(self) -> str:
        import html

        from recompyle.report import render_document

        page = render_document(self.doc, "html")
        if isinstance(page, bytes):
            page = page.decode("utf-8")
        return (
            '<iframe class="recompyle-report" style="width: 100%; height: 640px; '
            f'border: 1px solid #ccc" srcdoc="{html.escape(page, quote=True)}"></iframe>'
        )

    def __repr__(self) -> str:
        from recompyle.report import render_document

        text = render_document(self.doc, "tree")
        return text if isinstance(text, str) else text.decode("utf-8", "replace")


def _document(profile: Profiler) -> dict[str, Any]:
    """The profile document with its ``files`` section (the HTML report shows the source
    from it), cells included: a cell is no file on disk, its text is in ``linecache``."""
    import hashlib
    import linecache

    from recompyle.report import add_files

    doc = add_files(profile.document())
    for site in doc["sites"]:
        path = site["file"]
        entry = linecache.cache.get(path)
        if path in doc["files"] or entry is None or len(entry) < 3:
            continue
        text = "".join(entry[2])
        digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
        doc["files"][path] = {"sha256": digest, "source": text}
    return doc


def _in_notebook(shell: Any) -> bool:
    """A kernel's shell (Jupyter, VS Code), not a terminal's: it has the kernel."""
    return getattr(shell, "kernel", None) is not None


def _has_html() -> bool:
    """Whether this build has the HTML report's exporter."""
    from importlib.util import find_spec

    try:
        return find_spec("recompyle.export.html") is not None
    except ImportError:
        return False


def _formats() -> tuple[str, ...]:
    from recompyle.export import names

    return tuple(name for name in names() if name != "html" or _has_html())


def _awaitable(code: CodeType) -> bool:
    """Compiled with top-level ``await`` in it: evaluating it makes a coroutine."""
    return bool(code.co_flags & _CO_COROUTINE)


def _running_cell_number(shell: Any) -> int:
    """The ``In[n]`` of the cell running now, so a traceback names it: IPython counts on
    before running a cell, and the compiler's last cached name is that cell's."""
    numbers = getattr(shell.compile, "_filename_map", None)
    if isinstance(numbers, dict) and numbers:
        number = list(numbers.values())[-1]
        if isinstance(number, int):
            return number
    return shell.execution_count


def compile_cell(shell: Any, source: str, first_line: int = 1) -> CellCode:
    """The cell's code (``source`` starting on line ``first_line``), instrumented when the
    transform takes it (else as written, with a warning, as the loader does for a module;
    a cell CPython rejects raises CPython's own error)."""
    from recompyle.loader import _warn_uninstrumented

    python = shell.transform_cell(source)
    if first_line > 1:
        # A cell's body starts on the cell's second line: keep the cell's line numbers.
        python = "\n" * (first_line - 1) + python
    name = shell.compile.cache(python, _running_cell_number(shell), raw_code=python)
    flags = shell.compile.flags | ast.PyCF_ALLOW_TOP_LEVEL_AWAIT
    reason = ""
    for salt in range(_MAX_SALTS):
        try:
            transformed = _core.transform(python.encode("utf-8"), name, sys.version_info[:2], salt)
        except (_core.ParseError, _core.InternalTransformError) as exc:
            reason = f"transform failed ({exc})"
            break
        try:
            code = _split_compile(transformed.source, name, flags)
        except SyntaxError as exc:
            reason = f"rewritten source did not compile ({exc})"
            break
        body = transformed.remap(code.body)
        last = transformed.remap(code.last) if code.last is not None else None
        if transformed.register(name, "__main__"):
            return CellCode(body, last, True)
        reason = "no free site key"
    plain = _split_compile(python, name, flags)  # CPython's own SyntaxError, if any
    _warn_uninstrumented(name, "__main__", reason)
    return CellCode(plain.body, plain.last, False)


def _split_compile(text: str, name: str, flags: int) -> CellCode:
    """Statements and last expression compiled apart, as IPython runs a cell (the last
    expression's value is shown); either may await (``_awaitable``)."""
    tree = compile(text, name, "exec", flags | ast.PyCF_ONLY_AST, dont_inherit=True)
    if not tree.body or not isinstance(tree.body[-1], ast.Expr):
        return CellCode(compile(tree, name, "exec", flags, dont_inherit=True), None, False)
    last = tree.body.pop()
    body = compile(tree, name, "exec", flags, dont_inherit=True)
    expression = ast.Expression(last.value)
    return CellCode(body, compile(expression, name, "eval", flags, dont_inherit=True), False)


# -- top-level await --------------------------------------------------------------------------


def _await_cells(lines: list[str]) -> list[str]:
    """Input transformer: a ``%%recompyle`` cell whose body awaits at top level, or a
    one-line ``%recompyle`` whose statement does, becomes an ``await`` of
    ``run_cell_async``, so IPython runs it on its loop."""
    if not lines:
        return lines
    from IPython import get_ipython

    shell = get_ipython()
    if shell is None or not shell.autoawait:
        return lines
    magics = shell.magics_manager.registry.get("RecompyleMagics")
    first = lines[0]
    line = first[len(_MAGIC) :].strip()
    if first.startswith(_MAGIC) and not first[len(_MAGIC) :][:1].strip():
        awaited = "".join(lines[1:])
        body: str | None = awaited
    elif len(lines) == 1 and first.startswith(_MAGIC[1:] + " ") and magics is not None:
        line, body = first[len(_MAGIC) - 1 :].strip(), None
        try:
            awaited = magics._options(line, True).statement
        except Exception:
            return lines  # the magic reports it
    else:
        return lines
    if not _awaits(shell, awaited):
        return lines
    return [f"await __import__('recompyle.ipython').ipython.run_cell_async({line!r}, {body!r})\n"]


def _awaits(shell: Any, body: str) -> bool:
    try:
        python = shell.transform_cell(body)
        code = compile(python, "<cell>", "exec", ast.PyCF_ALLOW_TOP_LEVEL_AWAIT, dont_inherit=True)
    except (SyntaxError, ValueError):
        return False  # the magic reports it
    return bool(code.co_flags & _CO_COROUTINE)


async def run_cell_async(line: str, cell: str | None) -> Any:
    """What an awaiting ``%%recompyle`` cell (or ``%recompyle`` line, ``cell`` None) runs
    (see ``_await_cells``)."""
    __tracebackhide__ = True  # noqa: F841
    from IPython import get_ipython

    shell = get_ipython()
    magics = shell.magics_manager.registry["RecompyleMagics"]
    return await magics.run_async(line, cell)


def load_ipython_extension(shell: Any) -> None:
    """``%load_ext recompyle``: register the magics and the await transformer (once)."""
    shell.register_magics(RecompyleMagics)
    cleanup = shell.input_transformers_cleanup
    if _await_cells not in cleanup:
        cleanup.append(_await_cells)


def unload_ipython_extension(shell: Any) -> None:
    cleanup = shell.input_transformers_cleanup
    if _await_cells in cleanup:
        cleanup.remove(_await_cells)
