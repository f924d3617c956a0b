"""``_core.pyi`` is the contract of the compiled module: every function and class it declares
exists in ``initcore._core``, nothing public in the module is left out of it, and every
signature has the same parameter names, kinds (positional or keyword-only) and defaults-or-not.

The compiled side is read through ``inspect.signature``, which PyO3 fills from each function's
``#[pyo3(signature = ...)]`` (``__text_signature__``)."""

import ast
import inspect
from pathlib import Path

import pytest

import initcore._core as core

STUB = Path(core.__file__).with_name("_core.pyi")
if not STUB.exists():  # an installed wheel keeps the stub beside the package's sources
    STUB = Path(__file__).resolve().parents[1] / "python" / "initcore" / "_core.pyi"


def _stub_tree():
    return ast.parse(STUB.read_text(encoding="utf-8"))


def _params(fn: ast.FunctionDef, drop_self=False):
    """(name, kind, has_default) per parameter of a stub definition."""
    a = fn.args
    positional = a.posonlyargs + a.args
    n_default = len(a.defaults)
    out = []
    for i, p in enumerate(positional):
        has_default = i >= len(positional) - n_default
        out.append((p.arg, "positional", has_default))
    if a.vararg:
        out.append((a.vararg.arg, "var_positional", False))
    for p, d in zip(a.kwonlyargs, a.kw_defaults):
        out.append((p.arg, "keyword_only", d is not None))
    if a.kwarg:
        out.append((a.kwarg.arg, "var_keyword", False))
    if drop_self and out and out[0][0] == "self":
        out = out[1:]
    return out


_KIND = {
    inspect.Parameter.POSITIONAL_ONLY: "positional",
    inspect.Parameter.POSITIONAL_OR_KEYWORD: "positional",
    inspect.Parameter.VAR_POSITIONAL: "var_positional",
    inspect.Parameter.KEYWORD_ONLY: "keyword_only",
    inspect.Parameter.VAR_KEYWORD: "var_keyword",
}


def _compiled_params(obj):
    sig = inspect.signature(obj)
    return [
        (p.name, _KIND[p.kind], p.default is not inspect.Parameter.empty)
        for p in sig.parameters.values()
        if p.name != "self"
    ]


def _stub_functions():
    return {n.name: n for n in _stub_tree().body if isinstance(n, ast.FunctionDef)}


def _stub_classes():
    return {n.name: n for n in _stub_tree().body if isinstance(n, ast.ClassDef)}


def _public_compiled():
    names = {}
    for name in dir(core):
        if name.startswith("_"):
            continue
        obj = getattr(core, name)
        if inspect.isbuiltin(obj) or inspect.isclass(obj):
            names[name] = obj
    return names


def test_every_public_name_is_declared_and_exists():
    compiled = _public_compiled()
    declared = set(_stub_functions()) | set(_stub_classes())
    # TypedDicts and other stub-only helper classes are typing aids, not module members.
    typing_only = {
        name
        for name, cls in _stub_classes().items()
        if any(isinstance(b, ast.Name) and b.id in {"TypedDict", "Protocol"} for b in cls.bases)
    }
    assert sorted(set(compiled) - declared) == [], "compiled but missing from _core.pyi"
    assert sorted(declared - typing_only - set(compiled)) == [], "declared in _core.pyi but not compiled"


@pytest.mark.parametrize("name", sorted(_stub_functions()))
def test_function_signature_matches(name):
    assert _params(_stub_functions()[name]) == _compiled_params(getattr(core, name)), name


def _class_methods():
    for cname, cls in sorted(_stub_classes().items()):
        if not hasattr(core, cname):
            continue
        for node in cls.body:
            if isinstance(node, ast.FunctionDef) and not node.name.startswith("_"):
                is_property = any(isinstance(d, ast.Name) and d.id == "property" for d in node.decorator_list)
                yield cname, node, is_property


@pytest.mark.parametrize("cname,node,is_property", list(_class_methods()), ids=lambda v: getattr(v, "name", str(v)))
def test_method_signature_matches(cname, node, is_property):
    attr = inspect.getattr_static(getattr(core, cname), node.name)
    if is_property:
        assert not callable(attr) or hasattr(attr, "__get__"), f"{cname}.{node.name} should be a property"
        return
    assert _params(node, drop_self=True) == _compiled_params(getattr(getattr(core, cname), node.name))


def test_every_public_method_is_declared():
    for cname, cls in _stub_classes().items():
        if not hasattr(core, cname):
            continue
        declared = {n.name for n in cls.body if isinstance(n, ast.FunctionDef)}
        declared |= {n.target.id for n in cls.body if isinstance(n, ast.AnnAssign) and isinstance(n.target, ast.Name)}
        compiled = {n for n in dir(getattr(core, cname)) if not n.startswith("_")}
        assert sorted(compiled - declared) == [], f"{cname}: compiled members missing from _core.pyi"
