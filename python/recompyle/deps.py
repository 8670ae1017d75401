"""Dependency graphs: which functions a computation called and which global values they read.

``with Tracer() as t: ...`` records, for everything that runs inside, a graph of

* **call** edges, caller → callee: every call through an instrumented call site (the site
  names the caller; the callee is what was called), and every function decorated with
  ``@track``;
* **read** edges, function → global: every global a tracked module's code reads
  (``recompyle.tracked_globals``). A global whose value is a module, function, class or other
  callable is an edge to that node; any other value is a *value node* with a content hash.

Nodes: ``function`` (module, qualname, SHA-256 of its source text), ``class``, ``builtin``
(callables without Python source), ``callable`` (other callable objects, by their type),
``module``, and ``value`` (module, name, type, hash).

The reader of a global is the code that read it, taken from the interpreter (not from a
stack of ours), so a callback run by code that is not instrumented (``sorted(key=f)``,
``C()`` running ``C.__init__``, a generator resumed later) is still named right; it is
linked to the call in progress (``sorted``, ``C``) by a call edge. That call stack is kept
per thread and per asyncio task (a ``contextvars`` variable) and popped whether the call
returned or raised, so an exception caught further up never leaves it wrong.

**Value hashes** (``hash`` of a value node, ``"sha256:<hex>"``): for ``None``, ``bool``,
``int``, ``float``, ``complex``, ``str``, ``bytes``/``bytearray`` and tuples, lists, sets,
frozensets and dicts of those (any depth, no cycles), SHA-256 of a canonical text
(``hash_method: "canonical"``: type name and exact value, floats by ``float.hex``, sets and
dicts sorted by their items' canonical text) — stable across runs, processes, interpreter
versions and ``PYTHONHASHSEED``. Anything else: SHA-256 of its protocol-4 pickle
(``"pickle"``; stable as long as the pickle is), in which functions, classes and modules
inside the value stand as their names. Hashing must not change what the program does, so
a value whose pickling would run Python code of the program's (a ``__reduce__``,
``__getstate__``, ``__getattr__``... defined outside a short list of standard-library
packages, or a ``copyreg`` reducer) is not pickled: like a value that cannot be pickled,
it gets ``hash: null`` and ``hash_error`` saying why. Hashing never raises into the
program.

Function nodes carry ``source_hash``, SHA-256 of the function's source text as ``inspect``
finds it (``null`` when there is none, e.g. code made by ``exec``).

Recording runs as handlers (``recompyle.add_handler``): while a ``Tracer`` is active every
instrumented call and every tracked global read costs a Python call, and a value is hashed
at every read (scalars once per object while tracing), so a large container read in a hot
loop costs its hashing each time.
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import json
import os
import pickle
import sys
import threading
import types
import weakref
from contextvars import ContextVar
from typing import Any, Callable, Optional, TypeVar

from recompyle import _core
from recompyle.qualnames import code_qualname

__all__ = ["DependencyGraph", "Tracer", "hash_value", "track", "write_at_exit"]

F = TypeVar("F", bound=Callable[..., Any])


# (node id, owner, parent): owner is the CallEvent (or a track() token) that pushed it.
class _Running:
    """One call in progress on the tracers' call stack (a linked list, so that a context
    copy shares it): the callee's node, what opened it (the call's event, or a ``track()``
    token; the return pops up to it) and the call below. Slotted: one is made per call."""

    __slots__ = ("node", "owner", "below")

    def __init__(self, node: str, owner: Any, below: Optional[_Running]) -> None:
        self.node = node
        self.owner = owner
        self.below = below


_stack: ContextVar[Optional[_Running]] = ContextVar("recompyle_deps_stack", default=None)
_active: list[Tracer] = []
_lock = threading.Lock()
_handler: Optional[_core.Handler] = None

_SCALARS = (type(None), bool, int, float, complex, str, bytes, bytearray)
_IMMUTABLE = (type(None), bool, int, float, complex, str, bytes)


class _Unsupported(Exception):
    pass


def _canonical(value: Any, seen: set[int], depth: int = 0) -> str:
    if depth > 200:
        raise _Unsupported
    t = type(value)
    if value is None:
        return "None"
    if t is bool:
        return f"bool:{value}"
    if t is int:
        return f"int:{value}"
    if t is float:
        return f"float:{value.hex()}"
    if t is complex:
        return f"complex:{value.real.hex()},{value.imag.hex()}"
    if t is str:
        return f"str:{len(value)}:{value}"
    if t is bytes or t is bytearray:
        return f"{t.__name__}:{value.hex()}"
    if t in (tuple, list, set, frozenset, dict):
        if id(value) in seen:
            raise _Unsupported  # a cycle: pickle handles those
        seen.add(id(value))
        try:
            if t is dict:
                items = sorted(
                    f"{_canonical(k, seen, depth + 1)}={_canonical(v, seen, depth + 1)}"
                    for k, v in value.items()
                )
                return "dict{" + ";".join(items) + "}"
            parts = [_canonical(v, seen, depth + 1) for v in value]
            if t in (set, frozenset):
                parts.sort()
            return f"{t.__name__}[{len(parts)}](" + ",".join(parts) + ")"
        finally:
            seen.discard(id(value))
    raise _Unsupported


# Python-level pickling hooks from these (standard library) packages are trusted not to do
# anything observable; any other Python-level hook makes a value unhashable rather than run.
_TRUSTED_HOOK_PACKAGES = frozenset(
    "copyreg re enum fractions pathlib collections datetime decimal _pydecimal ipaddress "
    "uuid functools operator types typing dataclasses zoneinfo random array numbers string "
    "argparse email urllib".split()
)
_HOOKS = (
    "__reduce_ex__",
    "__reduce__",
    "__getstate__",
    "__getnewargs_ex__",
    "__getnewargs__",
    "__getattr__",
    "__getattribute__",
)
_NATIVE_HOOK_TYPES = (
    types.WrapperDescriptorType,
    types.MethodDescriptorType,
    types.BuiltinFunctionType,
    types.ClassMethodDescriptorType,
)
_REFERENCE_TYPES = (
    types.FunctionType,
    types.BuiltinFunctionType,
    types.ModuleType,
    type,
)


class _UserCode(Exception):
    """Pickling this value would run Python code of the program's."""


def _trusted(hook: Any) -> bool:
    if isinstance(hook, _NATIVE_HOOK_TYPES):
        return True
    if isinstance(hook, (classmethod, staticmethod)):
        hook = hook.__func__
    if isinstance(hook, types.FunctionType):
        module = hook.__module__ or ""
        return module.partition(".")[0] in _TRUSTED_HOOK_PACKAGES
    return False


def _check_type(t: type) -> None:
    for hook in _HOOKS:
        for klass in t.__mro__:
            if hook in klass.__dict__:
                found = klass.__dict__[hook]
                if klass is not object and not _trusted(found):
                    raise _UserCode(f"{t.__qualname__}.{hook}")
                break
    import copyreg

    reducer = copyreg.dispatch_table.get(t)
    if reducer is not None and not _trusted(reducer):
        raise _UserCode(f"copyreg reducer of {t.__qualname__}")


def _reference(obj: Any) -> str:
    t = type(obj)
    if issubclass(t, types.ModuleType):
        return f"module:{vars(obj).get('__name__')}"
    if issubclass(t, type):
        module = type.__dict__["__module__"].__get__(obj)
        return f"class:{module}:{type.__dict__['__qualname__'].__get__(obj)}"
    module = getattr(obj, "__module__", None)  # functions' own attributes: no user code
    return f"function:{module}:{getattr(obj, '__qualname__', None)}"


def _pickled(value: Any) -> bytes:
    import io

    checked: set[type] = set()

    class Pickler(pickle.Pickler):
        def reducer_override(self, obj: Any) -> Any:
            t = type(obj)
            if obj is str or (t is type and obj.__module__ == "builtins"):
                return NotImplemented  # builtins by reference: no lookup of the program's
            if isinstance(obj, _REFERENCE_TYPES):
                # Named, not pickled by reference (which imports and looks up names).
                return str, (_reference(obj),)
            if t not in checked:
                _check_type(t)
                checked.add(t)
            return NotImplemented

    buffer = io.BytesIO()
    Pickler(buffer, protocol=4).dump(value)
    return buffer.getvalue()


def hash_value(value: Any) -> tuple[Optional[str], str, Optional[str]]:
    """``(hash, method, error)`` of a global's value as the module docstring documents:
    ``("sha256:…", "canonical" | "pickle", None)``, or ``(None, "none", why)``."""
    try:
        text = _canonical(value, set())
    except _Unsupported:
        pass
    except Exception as exc:  # never the program's problem
        return None, "none", f"{type(exc).__name__}: {exc}"
    else:
        digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()
        return f"sha256:{digest}", "canonical", None
    try:
        data = _pickled(value)
    except _UserCode as exc:
        return None, "none", f"pickling would run the program's code ({exc})"
    except BaseException as exc:  # noqa: B036 -- a native __reduce__ may raise anything
        if isinstance(exc, (KeyboardInterrupt, SystemExit)):
            raise
        return None, "none", f"{type(exc).__name__}: {exc}"
    return f"sha256:{hashlib.sha256(data).hexdigest()}", "pickle", None


def _source_hash(obj: Any) -> Optional[str]:
    try:
        source = inspect.getsource(obj)
    except (OSError, TypeError, IndentationError, SyntaxError):
        return None
    return "sha256:" + hashlib.sha256(source.encode("utf-8", "surrogatepass")).hexdigest()


class DependencyGraph:
    """Nodes (by id) and edges ``(from id, to id, kind)``, kind ``call`` or ``read``."""

    def __init__(self) -> None:
        self.nodes: dict[str, dict[str, Any]] = {}
        self.edges: set[tuple[str, str, str]] = set()
        # What the handlers saw already, to skip rebuilding the same nodes and edges:
        # call site -> (callee ref, caller id, callee id); (code, name) -> (value ref, reader).
        self._call_memo: dict[Any, tuple] = {}
        self._read_memo: dict[Any, tuple] = {}
        # Node id -> the object to hash the source of, resolved when exported.
        self._sources: dict[str, Any] = {}

    def _node(self, node_id: str, info: dict[str, Any], source: Any = None) -> str:
        if node_id not in self.nodes:
            self.nodes[node_id] = info
        if source is not None and node_id not in self._sources:
            self._sources[node_id] = source
        return node_id

    def _edge(self, source: str, target: str, kind: str) -> None:
        self.edges.add((source, target, kind))

    def _finish(self) -> None:
        for node_id, obj in list(self._sources.items()):
            info = self.nodes[node_id]
            if "source_hash" not in info:
                info["source_hash"] = _source_hash(obj)
        for info in self.nodes.values():
            if info["kind"] == "function":
                info.setdefault("source_hash", None)

    def calls(self) -> list[tuple[str, str]]:
        """``(caller id, callee id)`` of every call edge, sorted."""
        return sorted((a, b) for a, b, k in self.edges if k == "call")

    def reads(self) -> list[tuple[str, str]]:
        """``(reader id, global id)`` of every read edge, sorted."""
        return sorted((a, b) for a, b, k in self.edges if k == "read")

    def to_dict(self) -> dict[str, Any]:
        """The graph as JSON-ready data: ``{"format", "version", "nodes", "edges"}``."""
        self._finish()
        return {
            "format": "recompyle-deps",
            "version": 1,
            "nodes": [{"id": k, **v} for k, v in sorted(self.nodes.items())],
            "edges": [{"from": a, "to": b, "kind": k} for a, b, k in sorted(self.edges)],
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=False, default=repr)

    def to_dot(self) -> str:
        """Graphviz DOT: functions as boxes, values as ellipses with their hash, reads
        dashed."""
        self._finish()
        lines = ["digraph recompyle_deps {", "  rankdir=LR;"]
        shapes = {"function": "box", "class": "box3d", "builtin": "component", "module": "tab"}
        for node_id, info in sorted(self.nodes.items()):
            label = node_id.split(":", 1)[1]
            if info["kind"] == "value":
                h = info.get("hash")
                label = f"{info['module']}.{info['name']}\\n{(h or 'unhashable')[:19]}"
            shape = shapes.get(info["kind"], "ellipse")
            lines.append(f"  {_dot_id(node_id)} [label={_dot_id(label)}, shape={shape}];")
        for a, b, kind in sorted(self.edges):
            style = " [style=dashed]" if kind == "read" else ""
            lines.append(f"  {_dot_id(a)} -> {_dot_id(b)}{style};")
        lines.append("}")
        return "\n".join(lines) + "\n"

    def write(self, path: str) -> None:
        """Write the graph to ``path``: DOT when it ends in ``.dot``, else JSON."""
        from recompyle.report import write_text_file

        write_text_file(path, self.to_dot() if path.endswith(".dot") else self.to_json() + "\n")


def _dot_id(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\\\\n", "\\n") + '"'


_BUILTIN_CALLABLES = (
    types.BuiltinFunctionType,
    types.MethodDescriptorType,
    types.WrapperDescriptorType,
    types.MethodWrapperType,
    types.ClassMethodDescriptorType,
)


def _callable_node(graph: DependencyGraph, obj: Any) -> str:
    """The node of a callable (a bound method is its function). Only attributes the
    interpreter answers itself are read: a callee's own ``__getattr__`` never runs."""
    t = type(obj)
    if t is types.MethodType:
        obj = obj.__func__
        t = type(obj)
    if issubclass(t, types.FunctionType):
        qualname, module = obj.__qualname__, obj.__module__
        if not isinstance(module, str):
            module = "?"
        return graph._node(
            f"function:{module}:{qualname}",
            {"kind": "function", "module": module, "qualname": qualname},
            obj.__code__,
        )
    if issubclass(t, type):
        module = type.__dict__["__module__"].__get__(obj)
        qualname = type.__dict__["__qualname__"].__get__(obj)
        return graph._node(
            f"class:{module}:{qualname}",
            {"kind": "class", "module": module, "qualname": qualname},
        )
    if t in _BUILTIN_CALLABLES:
        qualname = obj.__qualname__
        module = getattr(obj, "__module__", None)
        if not isinstance(module, str):
            owner = getattr(obj, "__objclass__", None)
            module = (
                type.__dict__["__module__"].__get__(owner)
                if isinstance(owner, type)
                else "builtins"
            )
        return graph._node(
            f"builtin:{module}:{qualname}",
            {"kind": "builtin", "module": module, "qualname": qualname},
        )
    # Any other callable object (an instance with __call__, a partial...): its type.
    module = type.__dict__["__module__"].__get__(t)
    qualname = type.__dict__["__qualname__"].__get__(t)
    return graph._node(
        f"callable:{module}:{qualname}",
        {"kind": "callable", "module": module, "qualname": qualname},
    )


def _function_node(graph: DependencyGraph, module: str, qualname: str, code: Any = None) -> str:
    return graph._node(
        f"function:{module}:{qualname}",
        {"kind": "function", "module": module, "qualname": qualname},
        code,
    )


def _is_edge_value(value: Any) -> bool:
    return issubclass(type(value), (types.ModuleType, type)) or callable(value)


_INNER_SCOPES = frozenset(("<listcomp>", "<setcomp>", "<dictcomp>", "<genexpr>"))


def _reader_qualname(code: Any) -> str:
    """The function (class body, ``<module>``) a comprehension or generator expression
    belongs to: its code is its own before 3.12 (and a generator expression's always), but
    it is part of that function's source, whose calls the call sites attribute to it too."""
    parts = code_qualname(code).split(".")
    while len(parts) > 1 and parts[-1] in _INNER_SCOPES:
        parts.pop()
        if parts[-1] == "<locals>":
            parts.pop()
    if len(parts) == 1 and parts[0] in _INNER_SCOPES:
        return "<module>"
    return ".".join(parts)


def _link_running(graph: DependencyGraph, running: str) -> None:
    """``running`` code acts (reads or calls) inside the call on top of the stack: when it
    is not that call's own code, it was called from there without a call site of ours."""
    top = _stack.get()
    if top is not None and top.node != running:
        graph._edge(top.node, running, "call")


def _identity_ref(obj: Any) -> Optional[Callable[[], Any]]:
    """Something that gives ``obj`` back while it lives, to recognise it next time without
    keeping it alive (a weak reference), or None. Scalars are held (they have no finaliser
    to delay)."""
    if type(obj) in _IMMUTABLE:
        return lambda: obj
    try:
        return weakref.ref(obj)
    except TypeError:
        return None


def _on_call(event: Any) -> None:
    tracers = list(_active)
    if not tracers:
        return
    func = event.func
    if type(func) is types.MethodType:
        func = func.__func__  # a new bound method each call: recognise its function
    site = event.site_id
    callee_id = None
    for t in tracers:
        g = t.graph
        known = g._call_memo.get(site)
        if known is not None and known[0]() is func:
            _, caller, callee_id = known
            _link_running(g, caller)
            continue
        caller = _function_node(g, event.module or "?", event.caller or "?", _caller_code(event))
        _link_running(g, caller)
        callee_id = _callable_node(g, func)
        g._edge(caller, callee_id, "call")
        ref = _identity_ref(func)
        if ref is not None:
            g._call_memo[site] = (ref, caller, callee_id)
    if callee_id is not None:
        _stack.set(_Running(callee_id, event, _stack.get()))


def _caller_code(event: Any) -> Any:
    """The code object of the function making the call, when the frame below the handler
    is it (the proxy is native, so it is): its node then gets a ``source_hash`` even when
    none of its global reads was tracked."""
    try:
        frame = sys._getframe(2)  # _caller_code <- _on_call <- the calling frame
    except ValueError:
        return None
    code = frame.f_code
    return code if code_qualname(code) == event.caller else None


def _on_return(event: Any) -> None:
    _pop(event)


def _pop(owner: Any) -> None:
    node = _stack.get()
    while node is not None and node.owner is not owner:
        node = node.below
    if node is not None:
        _stack.set(node.below)


_hash_cache: dict[tuple[int, type], tuple] = {}


def _on_global(event: Any) -> None:
    if event.kind != "read":
        return
    tracers = list(_active)
    if not tracers:
        return
    code = event.code
    name = event.name
    value = event.value
    key = (code, name)
    module = None
    for t in tracers:
        g = t.graph
        known = g._read_memo.get(key)
        if known is not None and known[0]() is value and _is_edge_value_or_scalar(value):
            # The same code read the same object under the same name: its edge is there.
            _link_running(g, known[1])
            continue
        if module is None:
            module = event.module if isinstance(event.module, str) else "?"
        if code is None:
            qualname, own = (event.function or "?"), False
        else:
            qualname = _reader_qualname(code)
            own = qualname == code_qualname(code)
        reader = _function_node(g, module, qualname, code if own else None)
        _link_running(g, reader)
        g._edge(reader, _value_node(g, module, name, value), "read")
        if _is_edge_value_or_scalar(value):
            ref = _identity_ref(value)
            if ref is not None:
                g._read_memo[key] = (ref, reader)


def _is_edge_value_or_scalar(value: Any) -> bool:
    """Values whose node is decided by their identity: edges (modules, functions, classes,
    callables) and immutable scalars. A container is hashed again at every read."""
    return type(value) in _IMMUTABLE or _is_edge_value(value)


def _value_node(graph: DependencyGraph, module: str, name: str, value: Any) -> str:
    if isinstance(value, types.ModuleType):
        return graph._node(f"module:{value.__name__}", {"kind": "module", "module": value.__name__})
    if _is_edge_value(value):
        return _callable_node(graph, value)
    key = (id(value), type(value))
    cached = _hash_cache.get(key) if type(value) in _IMMUTABLE else None
    if cached is not None and cached[0] is value:
        digest, method, error = cached[1]
    else:
        digest, method, error = hash_value(value)
        if type(value) in _IMMUTABLE:
            if len(_hash_cache) > 4096:
                _hash_cache.clear()
            _hash_cache[key] = (value, (digest, method, error))
    node_id = f"value:{module}:{name}:{digest or f'unhashable@{id(value):x}'}"
    info: dict[str, Any] = {
        "kind": "value",
        "module": module,
        "name": name,
        "type": f"{type(value).__module__}.{type(value).__qualname__}",
        "hash": digest,
        "hash_method": method,
    }
    if error is not None:
        info["hash_error"] = error
    return graph._node(node_id, info)


def _activate(tracer: Tracer) -> None:
    global _handler
    with _lock:
        _active.append(tracer)
        if _handler is None:
            _handler = _core.add_handler(before=_on_call, after=_on_return, globals=_on_global)


def _deactivate(tracer: Tracer) -> None:
    global _handler
    with _lock:
        if tracer in _active:
            _active.remove(tracer)
        if not _active and _handler is not None:
            _handler.remove()
            _handler = None
            _hash_cache.clear()  # it holds the scalars it hashed: not past the tracing


_warned_untracked = False


class Tracer:
    """Record a dependency graph of everything run inside ``with Tracer() as t:``
    (``t.graph``). Tracers nest; each records what runs while it is active, in every
    thread.

    ``modules`` (patterns as for ``install``): instrument those modules and track their
    globals from their next import on, as ``run --deps`` does, so ``Tracer(modules="myapp.*")``
    made before ``import myapp`` is all a graph with read edges needs. Without it, read
    edges come only from modules ``track_globals`` selected; a ``Tracer`` started while no
    module is tracked says so once (``RecompyleWarning``)."""

    def __init__(self, modules: Optional[str] = None) -> None:
        self.graph = DependencyGraph()
        self.modules = modules
        if modules:
            from recompyle.finder import install

            install(modules, track_globals=modules)

    def __enter__(self) -> Tracer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        _warn_if_untracked()
        _activate(self)

    def stop(self) -> None:
        _deactivate(self)

    @property
    def active(self) -> bool:
        return self in _active


def _warn_if_untracked() -> None:
    global _warned_untracked
    from recompyle.finder import installed_patterns, tracked_patterns

    if _warned_untracked or tracked_patterns():
        return
    # Tracked without patterns: `run --deps`'s script, code loaded with `track_module`.
    if any(
        _core.is_tracked_namespace(getattr(m, "__dict__", None)) for m in list(sys.modules.values())
    ):
        return
    _warned_untracked = True
    from recompyle.loader import warn_at_user

    what = "no module is instrumented or" if not installed_patterns() else "no module's globals are"
    warn_at_user(
        f"recompyle: {what} tracked, so this Tracer's graph records no global read as it "
        "happens (and no call without instrumented modules): use "
        'Tracer(modules="myapp.*") before importing them, or '
        'recompyle.track_globals("myapp.*")'
    )


def _global_names(code: types.CodeType) -> set[str]:
    """Names ``code`` (and code nested in it) may load as globals."""
    import dis

    names: set[str] = set()
    for ins in dis.get_instructions(code):
        if ins.opname in ("LOAD_GLOBAL", "LOAD_NAME") and isinstance(ins.argval, str):
            names.add(ins.argval)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            names |= _global_names(const)
    return names


def track(func: F) -> F:
    """Make calls of ``func`` nodes of the graph of every active ``Tracer``, wherever it is
    called from (instrumented or not), with a call edge from its caller.

    Its global reads are recorded as they happen when its module is tracked
    (``recompyle.tracked_globals``); otherwise, at each call, the globals its code *may* read
    (the names its bytecode loads, found in its ``__globals__`` now) are recorded, as read
    edges marked ``"static"`` on the value node."""
    if not callable(func):
        raise TypeError(f"track() needs a callable, not {type(func).__name__}")
    target = inspect.unwrap(func) if isinstance(func, types.FunctionType) else func
    code = getattr(target, "__code__", None)
    globals_ns = getattr(target, "__globals__", None)
    static = (
        code is not None
        and isinstance(globals_ns, dict)
        and not _core.is_tracked_namespace(globals_ns)
    )
    names = sorted(_global_names(code)) if code is not None and static else []

    def enter() -> object:
        token = object()
        try:
            # enter <- the wrapper <- the caller; a coroutine stepped by a native task has
            # no Python caller.
            caller_frame: Optional[types.FrameType] = sys._getframe(2)
        except ValueError:
            caller_frame = None
        node_id = None
        for t in list(_active):
            g = t.graph
            node_id = _callable_node(g, target)
            top = _stack.get()
            if top is not None:
                g._edge(top.node, node_id, "call")
            elif caller_frame is not None:
                caller_code = caller_frame.f_code
                caller = _function_node(
                    g,
                    str(caller_frame.f_globals.get("__name__", "?")),
                    code_qualname(caller_code),
                    caller_code,
                )
                g._edge(caller, node_id, "call")
            for name in names:
                if name in globals_ns:  # type: ignore[operator]
                    value = globals_ns[name]  # type: ignore[index]
                    module = str(globals_ns.get("__name__", "?"))  # type: ignore[union-attr]
                    vid = _value_node(g, module, name, value)
                    if g.nodes[vid]["kind"] == "value":
                        g.nodes[vid]["static"] = True
                    g._edge(node_id, vid, "read")
        if node_id is not None:
            _stack.set(_Running(node_id, token, _stack.get()))
        return token

    if inspect.iscoroutinefunction(func):

        @functools.wraps(func)
        async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
            if not _active:
                return await func(*args, **kwargs)
            token = enter()
            try:
                return await func(*args, **kwargs)
            finally:
                _pop(token)

        return async_wrapper  # type: ignore[return-value]

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if not _active:
            return func(*args, **kwargs)
        token = enter()
        try:
            return func(*args, **kwargs)
        finally:
            _pop(token)

    return wrapper  # type: ignore[return-value]


def write_at_exit(path: str) -> Tracer:
    """Trace from now on and write the graph to ``path`` (DOT for ``*.dot``, else JSON)
    when the interpreter exits."""
    import atexit

    path = os.path.abspath(path)  # now: the program may chdir before it exits
    tracer = Tracer()
    tracer.start()
    owner = os.getpid()

    def write() -> None:
        if os.getpid() != owner:
            return  # a forked child: its graph is a copy of the parent's, who writes it
        tracer.stop()
        try:
            tracer.graph.write(path)
        except OSError as exc:
            sys.stderr.write(f"recompyle: cannot write the dependency graph to {path}: {exc}\n")

    atexit.register(write)
    return tracer
