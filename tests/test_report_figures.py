"""One figure, one module (issue 21): every module of capopt/report/figures is a listed figure,
named for its slug, whose numbers are a typed record; the tests of a real run are in
tests/test_reproduce.py."""

import dataclasses
from importlib import import_module
from pathlib import Path

import capopt.report.figures as figures
from capopt.report import FIGURES
from capopt.report.numbers import Numbers


def test_every_figure_module_is_listed_once_in_report_order():
    modules = {path.stem for path in Path(figures.__file__).parent.glob("*.py")} - {"__init__"}
    assert sorted(figures.MODULES) == sorted(modules)
    assert list(FIGURES) == [name.replace("_", "-") for name in figures.MODULES]


def test_each_figure_module_holds_its_spec_and_its_typed_numbers():
    for name in figures.MODULES:
        spec = import_module(f"capopt.report.figures.{name}").FIGURE
        assert FIGURES[spec.slug] is spec
        assert issubclass(spec.numbers, Numbers) and dataclasses.is_dataclass(spec.numbers), name
        assert spec.numbers.__dataclass_params__.frozen, name
