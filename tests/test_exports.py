"""An allocation as plain values and as a tidy table: ``AllocationResult.to_dict`` and
``to_dataframe``, checked against the worked case of theory §3 (v = (2, 1), K = 7, d = 1:
C = (5/6, 1/6), losses (1.5, 3.75), multiplier 10.125)."""

import dataclasses
import json
import subprocess
import sys

import numpy as np
import pytest

import capopt
from capopt import Regime, Status, quadratic, solve

#: Exact routes to the worked case: rounding only.
EXACT = 1e-12

WORKED = quadratic([2.0, 1.0], 7.0)


def _failed(result):
    """``result`` as a method that produced no allocation would have returned it."""
    n = result.capacities.size
    return dataclasses.replace(result, status=Status.FAILED, capacities=np.full(n, np.nan),
                               regime_codes=np.full(n, -1, np.int8), reason="a stand-in failure")


def test_to_dict_holds_every_per_feature_column_and_survives_json():
    record = json.loads(json.dumps(solve(WORKED, 1).to_dict()))
    assert record["capacities"] == pytest.approx([5 / 6, 1 / 6], rel=EXACT)
    assert record["losses"] == pytest.approx([1.5, 3.75], rel=EXACT)
    assert record["marginals"] == pytest.approx([10.125, 10.125], rel=EXACT)
    assert record["regimes"] == ["polysemantic", "polysemantic"]
    assert record["counts"] == {"monosemantic": 0, "polysemantic": 2, "ignored": 0}
    assert record["loss"] == pytest.approx(5.25, rel=EXACT) and record["status"] == "OPTIMAL"
    assert record["sum_capacity"] == pytest.approx(1.0, rel=EXACT)
    assert set(record["certificate"]) >= {"stationarity", "gap", "lower_bound", "assumptions"}


def test_marginals_satisfy_the_kkt_signs():
    # Mixed regimes: the more important features monosemantic, the least ignored.
    result = solve(quadratic(0.5 ** np.arange(8), 20.0), 2)
    lam = result.multiplier
    for m, regime in zip(result.marginals, result.regimes):
        if regime is Regime.POLYSEMANTIC:
            assert m == pytest.approx(lam, rel=1e-9)
        elif regime is Regime.MONOSEMANTIC:
            assert m >= lam * (1 - 1e-9)
        else:
            assert m <= lam * (1 + 1e-9)
    assert {r.value for r in result.regimes} == {"monosemantic", "polysemantic", "ignored"}
    assert not result.marginals.flags.writeable


def test_to_dataframe_is_tidy_with_result_values_in_attrs():
    pd = pytest.importorskip("pandas")
    result = solve(WORKED, 1)
    frame = result.to_dataframe()
    assert isinstance(frame, pd.DataFrame)
    assert frame.index.name == "feature" and frame.index.tolist() == [0, 1]
    assert frame.columns.tolist() == ["capacity", "regime", "loss", "marginal"]
    np.testing.assert_allclose(frame["capacity"], [5 / 6, 1 / 6], rtol=EXACT)
    np.testing.assert_allclose(frame["loss"].sum(), 5.25, rtol=EXACT)
    assert frame.attrs["status"] == "OPTIMAL" and frame.attrs["method"] == result.method
    assert frame.attrs["multiplier"] == pytest.approx(10.125, rel=EXACT)
    # The table is a copy: editing it leaves the (read-only) result as it was.
    frame.loc[0, "capacity"] = 0.0
    assert result.capacities[0] == pytest.approx(5 / 6, rel=EXACT)


def test_exports_of_a_failed_result_carry_no_numbers():
    failed = _failed(solve(WORKED, 1))
    record = failed.to_dict()
    assert record["status"] == "FAILED" and record["reason"] == "a stand-in failure"
    assert record["regimes"] == [None, None]
    assert all(np.isnan(record["marginals"])) and all(np.isnan(record["capacities"]))
    pytest.importorskip("pandas")
    frame = failed.to_dataframe()
    assert frame["marginal"].isna().all() and frame["regime"].isna().all()


def test_pandas_is_imported_only_by_to_dataframe():
    pytest.importorskip("pandas")
    code = ("import sys, capopt; r = capopt.solve(capopt.quadratic([2.0, 1.0], 7.0), 1); r.to_dict(); "
            "print('pandas' in sys.modules); r.to_dataframe(); print('pandas' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "True"]


def test_version_comes_from_the_package_metadata():
    from importlib import metadata

    assert capopt.__version__ == metadata.version("capopt")
