"""No product module builds an exception instance at import time (a shared instance keeps every raise's traceback
and its locals alive); and the check finds the shapes such an instance takes."""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from .exception_instances import find, product_sources


def test_no_product_module_builds_an_exception_instance_at_import_time() -> None:
    sources = list(product_sources())
    assert len(sources) > 100, "the product's source roots were found"
    findings = find(sources)
    assert not findings, "raise a fresh instance each time (a class or a factory):\n" + "\n".join(map(str, findings))


@pytest.fixture
def sample(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """An importable package ``exc_scan_sample`` under tmp_path, removed from sys.modules afterwards."""
    package = tmp_path / "exc_scan_sample"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "errors.py").write_text(
        textwrap.dedent(
            """
            class Base(Exception):
                pass

            class Rejection(Base):
                def __init__(self, code: str) -> None:
                    super().__init__(code)

            class NotAnError:
                def __init__(self, code: str) -> None:
                    self.code = code

            def refused(code: str) -> Rejection:
                return Rejection(code)
            """
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    yield package
    for name in [m for m in sys.modules if m == "exc_scan_sample" or m.startswith("exc_scan_sample.")]:
        del sys.modules[name]


def _scan(package: Path, source: str) -> list[tuple[int, str]]:
    module = package / "sample.py"
    module.write_text(textwrap.dedent(source))
    return [(f.line, f.made) for f in find([(package.parent, module)])]


def test_finds_instances_whatever_the_class_is_called_and_however_it_is_imported(sample: Path) -> None:
    found = _scan(
        sample,
        """
        import exc_scan_sample.errors
        from . import errors
        from .errors import Rejection as R, refused

        A = R("a")
        B = errors.Rejection("b")
        C = exc_scan_sample.errors.Base()
        D = {"d": R("d")}
        E = [R(code) for code in ("e", "f")]
        F = refused("f")
        G = KeyError("g")
        """,
    )
    assert found == [
        (6, "R"),
        (7, "errors.Rejection"),
        (8, "exc_scan_sample.errors.Base"),
        (9, "R"),
        (10, "R"),
        (11, "refused"),
        (12, "KeyError"),
    ]


def test_finds_instances_in_class_bodies_and_default_values(sample: Path) -> None:
    found = _scan(
        sample,
        """
        from exc_scan_sample.errors import Rejection

        class Service:
            class Gone(Exception):
                pass

            GONE = Gone()
            DENIED: Rejection = Rejection("denied")

            def check(self, error: Exception = Rejection("default")) -> None:
                def inner(*, error: Exception = Rejection("inner")) -> None:
                    pass

        handler = lambda error=Rejection("lambda"): error
        """,
    )
    assert found == [(8, "Gone"), (9, "Rejection"), (11, "Rejection"), (12, "Rejection"), (15, "Rejection")]


def test_a_fresh_instance_per_raise_an_alias_of_the_class_or_a_plain_object_is_not_reported(sample: Path) -> None:
    found = _scan(
        sample,
        """
        import sys

        from exc_scan_sample.errors import NotAnError, Rejection, refused

        Alias = Rejection
        TEMPLATE = NotAnError("not an exception")
        make = lambda: Rejection("per call")
        MAKERS = {"x": lambda: refused("x")}

        def use() -> None:
            raise Rejection("fresh")

        class Checks:
            def run(self) -> None:
                raise refused("fresh too")

        if sys.version_info < (3, 11):
            raise RuntimeError("raised once at import, never shared")
        """,
    )
    assert found == []
