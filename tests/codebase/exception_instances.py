"""Finds exception instances that the product builds once, at import time, and so shares between raises.

A shared instance keeps the traceback of every raise chained onto ``__traceback__`` (each frame's locals with it,
passwords included), and the chain grows with every failure. What counts as built at import time: anything
evaluated in a module's or a class's body (assignments, containers, comprehensions, decorators, calls) and the
default values of every function and lambda (evaluated once per definition, then shared by every call); not what a
function body or a lambda body does when called, and not the operand of a ``raise`` (raised once, then dropped).

Which calls make an exception: the callee's name is resolved through the module's own imports and definitions
to an object (importing the module that defines it, as Python would), then it counts when that object is an
exception class, or a function or method whose return annotation names one (a factory called at import time
is as shared as the instance it returns). Going by the object, not the name, also catches classes that do not
end in ``Error`` (``Rejection``) and names bound by ``import … as``.
"""

from __future__ import annotations

import ast
import builtins
import importlib
import inspect
import types
import typing
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SOURCE_ROOTS = ("services/*/src", "libs/*/src", "apps/*/src", "clients/cli/src", "deploy/*/src")


@dataclass(frozen=True, slots=True)
class Finding:
    path: Path
    line: int
    made: str
    """The callee as written (``AuthError``, ``errors.Refused``)."""
    resolved: str
    """What it resolved to (``chat_auth.domain.errors.AuthError``)."""

    def __str__(self) -> str:
        try:
            where = self.path.relative_to(REPO)
        except ValueError:
            where = self.path
        return f"{where}:{self.line}: {self.made}(…) builds one {self.resolved} at import time, shared by every raise"


def product_sources(repo: Path = REPO) -> Iterator[tuple[Path, Path]]:
    """Every product module as (source root, file)."""
    for pattern in SOURCE_ROOTS:
        for root in sorted(repo.glob(pattern)):
            for path in sorted(root.rglob("*.py")):
                yield root, path


def module_name(root: Path, path: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def find(sources: Iterable[tuple[Path, Path]]) -> list[Finding]:
    """Every exception instance built at import time in the given modules."""
    found: list[Finding] = []
    for root, path in sources:
        name = module_name(root, path)
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        found.extend(_ModuleScan(path=path, module=name, is_package=path.name == "__init__.py", tree=tree).scan())
    return found


class _ModuleScan:
    def __init__(self, *, path: Path, module: str, is_package: bool, tree: ast.Module) -> None:
        self.path = path
        self.module = module
        self.package = module if is_package else module.rpartition(".")[0]
        self.tree = tree
        self.imports: dict[str, str] = {}
        self.found: list[Finding] = []

    def scan(self) -> list[Finding]:
        for node in ast.walk(self.tree):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.asname:
                        self.imports[alias.asname] = alias.name
                    else:
                        top = alias.name.partition(".")[0]
                        self.imports[top] = top
            elif isinstance(node, ast.ImportFrom):
                base = self._absolute(node.module, node.level)
                for alias in node.names:
                    if alias.name != "*":
                        self.imports[alias.asname or alias.name] = f"{base}.{alias.name}"
        self._body(self.tree.body, scope=[])
        return self.found

    def _absolute(self, module: str | None, level: int) -> str:
        if level == 0:
            return module or ""
        package = self.package.split(".")
        base = ".".join(package[: len(package) - (level - 1)])
        return f"{base}.{module}" if module else base

    def _body(self, body: list[ast.stmt], *, scope: list[str]) -> None:
        """Statements run at import time (a module's or class's body)."""
        for statement in body:
            self._statement(statement, scope=scope)

    def _statement(self, node: ast.stmt, *, scope: list[str]) -> None:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            self._definition_time_of_function(node, scope=scope)
        elif isinstance(node, ast.ClassDef):
            for expression in [*node.decorator_list, *node.bases, *(k.value for k in node.keywords)]:
                self._expression(expression, scope=scope)
            self._body(node.body, scope=[*scope, node.name])
        elif isinstance(node, ast.Raise):
            # Raised once at import time and dropped: not shared. Its cause is an expression like any other.
            if node.cause is not None:
                self._expression(node.cause, scope=scope)
        else:
            for child in ast.iter_child_nodes(node):
                if isinstance(child, ast.stmt):
                    self._statement(child, scope=scope)
                elif isinstance(child, ast.expr):
                    self._expression(child, scope=scope)
                else:
                    # except handlers, match cases, with items, comprehensions' parts, keywords, arguments
                    for inner in ast.iter_child_nodes(child):
                        if isinstance(inner, ast.stmt):
                            self._statement(inner, scope=scope)
                        elif isinstance(inner, ast.expr):
                            self._expression(inner, scope=scope)

    def _definition_time_of_function(self, node: ast.FunctionDef | ast.AsyncFunctionDef, *, scope: list[str]) -> None:
        """A function's decorators and default values are evaluated once, when it is defined; and a function
        defined anywhere, even inside another, can keep an instance in a default."""
        for expression in node.decorator_list:
            self._expression(expression, scope=scope)
        self._defaults(node.args, scope=scope)
        for inner in ast.walk(node):
            if inner is not node and isinstance(inner, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
                self._defaults(inner.args, scope=scope)

    def _defaults(self, args: ast.arguments, *, scope: list[str]) -> None:
        for default in [*args.defaults, *(d for d in args.kw_defaults if d is not None)]:
            self._expression(default, scope=scope)

    def _expression(self, expression: ast.expr, *, scope: list[str]) -> None:
        stack: list[ast.AST] = [expression]
        while stack:
            node = stack.pop()
            if isinstance(node, ast.Lambda):
                # The body runs per call (a factory); only the defaults are evaluated now.
                self._defaults(node.args, scope=scope)
                continue
            if isinstance(node, ast.Call):
                self._call(node, scope=scope)
            stack.extend(ast.iter_child_nodes(node))

    def _call(self, node: ast.Call, *, scope: list[str]) -> None:
        dotted = _dotted(node.func)
        if dotted is None:
            return
        qualified = self._qualify(dotted, scope=scope)
        target = _resolve(qualified) if qualified else None
        if target is not None and _makes_exception(target):
            self.found.append(
                Finding(path=self.path, line=node.lineno, made=".".join(dotted), resolved=_describe(target))
            )

    def _qualify(self, dotted: list[str], *, scope: list[str]) -> str | None:
        head, rest = dotted[0], dotted[1:]
        for depth in range(len(scope), 0, -1):
            if self._defined_in_class(scope[:depth], head):
                return ".".join([self.module, *scope[:depth], head, *rest])
        if head in self.imports:
            return ".".join([self.imports[head], *rest])
        if self._defined_at_top(head):
            return ".".join([self.module, head, *rest])
        if hasattr(builtins, head):
            return ".".join(["builtins", head, *rest])
        return None

    def _defined_at_top(self, name: str) -> bool:
        return any(name in _bound_names(statement) for statement in self.tree.body)

    def _defined_in_class(self, path: list[str], name: str) -> bool:
        body: list[ast.stmt] = self.tree.body
        for class_name in path:
            found = next((s for s in body if isinstance(s, ast.ClassDef) and s.name == class_name), None)
            if found is None:
                return False
            body = found.body
        return any(name in _bound_names(statement) for statement in body)


def _bound_names(statement: ast.stmt) -> set[str]:
    if isinstance(statement, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
        return {statement.name}
    targets: list[ast.expr] = []
    if isinstance(statement, ast.Assign):
        targets = statement.targets
    elif isinstance(statement, ast.AnnAssign | ast.AugAssign):
        targets = [statement.target]
    names: set[str] = set()
    for target in targets:
        names.update(n.id for n in ast.walk(target) if isinstance(n, ast.Name))
    if isinstance(statement, ast.If | ast.Try):
        for child in ast.iter_child_nodes(statement):
            if isinstance(child, ast.stmt):
                names |= _bound_names(child)
            elif isinstance(child, ast.ExceptHandler):
                for inner in child.body:
                    names |= _bound_names(inner)
    return names


def _dotted(node: ast.expr) -> list[str] | None:
    if isinstance(node, ast.Name):
        return [node.id]
    if isinstance(node, ast.Attribute):
        base = _dotted(node.value)
        return [*base, node.attr] if base is not None else None
    return None


def _resolve(qualified: str) -> object | None:
    """The object a dotted name stands for: the longest importable module, then attributes."""
    parts = qualified.split(".")
    if "__main__" in parts:
        return None  # importing it would run the program
    for cut in range(len(parts), 0, -1):
        try:
            found: object = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for attribute in parts[cut:]:
            try:
                found = getattr(found, attribute)
            except AttributeError:
                return None
        return found
    return None


def _is_exception_class(candidate: object) -> bool:
    return isinstance(candidate, type) and issubclass(candidate, BaseException)


def _makes_exception(target: object) -> bool:
    if _is_exception_class(target):
        return True
    if inspect.isfunction(target) or inspect.ismethod(target):
        try:
            returned = typing.get_type_hints(target).get("return")
        except Exception:  # an annotation that does not evaluate is not evidence either way
            returned = inspect.signature(target).return_annotation
        options = typing.get_args(returned) if typing.get_origin(returned) in (typing.Union, types.UnionType) else ()
        return any(_is_exception_class(option) for option in (returned, *options))
    return False


def _describe(target: object) -> str:
    module = getattr(target, "__module__", None)
    name = getattr(target, "__qualname__", None) or repr(target)
    return f"{module}.{name}" if module else name
