"""The claims table (issue 15): each verdict follows from the numbers by its stated rule.

Every rule is run on synthetic numbers: a set that reproduces every claim, and for each rule
one change that makes it ``partly`` and one that makes it ``not reproduced``, so that every
verdict of every rule is reachable and none is typed. The numbers are named as the report's
computations name them; one quick run (tests/test_reproduce.py) checks that the real run
produces them.
"""

import copy
from types import SimpleNamespace

import pytest

from capopt.report.claims import (
    CLAIM_KEYS,
    EXACT,
    MIN_SEEDS,
    RULES,
    Evidence,
    Verdict,
    claims_table,
    claims_text,
    evaluate,
    figure_label,
)
from capopt.report.computations import SENSITIVITY_BUDGET, TWO_FEATURE_CASES

SETTINGS = SimpleNamespace(allocation_kurtosis=(2.0, 8.0), train_seeds=MIN_SEEDS, train_features=10)
AT = f"d = {SENSITIVITY_BUDGET:g}:"


def _reproducing() -> dict:
    """Numbers under which every claim is reproduced."""
    cases = {}
    for letter, ratio, K in TWO_FEATURE_CASES:
        shares = K > 1 + 2 * ratio
        C_a = ((K + 1) * ratio / (ratio + 1) - 2) / (K - 3) if shares else 1.0
        cases.update({f"{letter} C_a": C_a, f"{letter} C_b": 1.0 - C_a})
    budget = {}
    for label in ("convex, K = 5", "concave, K = 2"):
        budget.update({f"{label} max |sum C - min(d, N)|": 1e-15,
                       f"{label} max lambda vs finite difference": 1e-8,
                       f"{label} {AT} dL*/dd": -0.25, f"{label} {AT} central difference of L*": -0.25})
    budget.update({f"convex, K = 5 {AT} polysemantic features": 4,
                   f"convex, K = 5 {AT} max |(dC_i/dd) / (v_i / sum v) - 1|": 1e-15,
                   f"convex, K = 5 {AT} sum dC/dd": 1.0})
    return {
        "allocation": {
            "K=2 monosemantic": 10, "K=2 polysemantic": 0, "K=2 ignored": 30,
            "K=2 regimes in importance order": "yes",
            "K=8 monosemantic": 5, "K=8 polysemantic": 12, "K=8 ignored": 23,
            "K=8 regimes in importance order": "yes",
            "K=8 poly slope": 2.3, "K=8 poly intercept": -0.01, "K=8 closed-form intercept -2/(K-3)": -0.01,
            "K=8 poly fit max residual": 1e-15, "K=8 poly mean C": 0.5,
        },
        "marginal-benefit": cases,
        "two-feature-phase": {"disagreements with K > 1 + 2a/b": 0},
        "phase-diagram": {"disagreements with p < p*(r)": 0},
        "sparsity-sweep": {"tms-relu dense": 0.0, "tms-relu sparse": 0.9, "tms-relu sparse seed range": 0.1,
                           "square dense": 0.0, "square sparse": 0.4, "square sparse seed range": 0.1,
                           "architectures where it grows": 2},
        "gram-blocks": {"density": 0.1, "quadratic optimal blocks": "10/3", "quadratic L-BFGS blocks": "10/3",
                        "quadratic optimal min(d, N) - sum C": 0.0, "quadratic L-BFGS min(d, N) - sum C": 1e-12,
                        "tms-relu blocks": "2/1 x3", "square blocks": "10/3", "seeds": MIN_SEEDS},
        "block-sizes": {"tms-relu p = 0.1 largest block": 2.0, "tms-relu p = 0.1 largest block seed range": 1.0,
                        "square p = 0.1 largest block": 10.0, "square p = 0.1 largest block seed range": 2.0,
                        "tms-relu p = 1 largest block": 1.0, "tms-relu p = 1 largest block seed range": 0.0,
                        "square p = 1 largest block": 1.0, "square p = 1 largest block seed range": 0.0},
        "crosscheck": {"max sum C - d over trained embeddings": 0.0,
                       "max min(d, N) - sum C over trained embeddings": 1e-12},
        "budget": budget,
    }


def _verdicts(numbers, settings=SETTINGS) -> dict:
    return {name: claim.verdict for name, claim in zip(RULES, evaluate(Evidence(numbers, settings)))}


def _changed(**changes):
    """The reproducing numbers with ``changes`` (slug -> {name: value}) applied."""
    numbers = copy.deepcopy(_reproducing())
    for slug, values in changes.items():
        numbers[slug.replace("_", "-")].update(values)
    return numbers


#: For each rule: a change that makes it partly, and one that makes it not reproduced.
CHANGES = {
    "budget": ({"budget": {"convex, K = 5 max |sum C - min(d, N)|": 0.5}},
               {"crosscheck": {"max sum C - d over trained embeddings": 1e-3}}),
    "regimes": ({"allocation": {"K=8 ignored": 0}},
                {"allocation": {"K=8 regimes in importance order": "no"}}),
    "affine": ({"allocation": {"K=8 poly intercept": -0.4, "K=8 closed-form intercept -2/(K-3)": -0.4}},
               {"allocation": {"K=8 poly fit max residual": 0.01}}),
    "kurtosis": ({"sparsity_sweep": {"architectures where it grows": 1}},
                 {"two_feature_phase": {"disagreements with K > 1 + 2a/b": 3}}),
    "architectures": ({"sparsity_sweep": {"square sparse seed range": None}},
                      {"sparsity_sweep": {"square sparse": 0.85}}),
    "semi-orthogonal": ({"gram_blocks": {"quadratic L-BFGS blocks": "7/2, 3/1"}},
                        {"gram_blocks": {"quadratic optimal min(d, N) - sum C": 0.3}}),
    "block-sizes": ({"block_sizes": {"square p = 0.1 largest block seed range": 7.0}},
                    {"block_sizes": {"tms-relu p = 0.1 largest block": 10.0}}),
    "cases": ({"marginal_benefit": {"D C_a": 0.9, "D C_b": 0.1}},
              {f"marginal_benefit": {f"{c} C_a": 0.3 for c, _, _ in TWO_FEATURE_CASES}}),
    "marginal-share": ({"budget": {f"convex, K = 5 {AT} max |(dC_i/dd) / (v_i / sum v) - 1|": 1e-3}},
                       {"budget": {f"convex, K = 5 {AT} max |(dC_i/dd) / (v_i / sum v) - 1|": 0.5}}),
    "marginal-value": ({"budget": {"concave, K = 2 max lambda vs finite difference": 1e-3}},
                       {"budget": {f"convex, K = 5 {AT} central difference of L*": -0.5}}),
}


def test_every_rule_has_a_partly_and_a_failing_case():
    assert set(CHANGES) == set(RULES)


def test_reproducing_numbers_reproduce_every_claim():
    assert set(_verdicts(_reproducing()).values()) == {Verdict.REPRODUCED}


@pytest.mark.parametrize("rule", list(CHANGES))
def test_each_verdict_of_each_rule_is_reachable(rule):
    partly, failing = CHANGES[rule]
    got = _verdicts(_changed(**partly))
    assert got[rule] is Verdict.PARTLY
    got = _verdicts(_changed(**failing))
    assert got[rule] is Verdict.NOT_REPRODUCED


def test_a_change_moves_only_its_own_claim():
    for rule, (partly, _) in CHANGES.items():
        got = _verdicts(_changed(**partly))
        assert {name for name, v in got.items() if v is not Verdict.REPRODUCED} == {rule}, rule


def test_fewer_seeds_than_needed_make_the_architecture_claim_partly_with_the_reason():
    thin = SimpleNamespace(**{**vars(SETTINGS), "train_seeds": 1})
    claim = dict(zip(RULES, evaluate(Evidence(_reproducing(), thin))))["architectures"]
    assert claim.verdict is Verdict.PARTLY
    assert "1 seed(s)" in claim.evidence and f"fewer than {MIN_SEEDS}" in claim.evidence


def test_missing_numbers_give_not_reproduced_naming_the_number():
    numbers = _reproducing()
    del numbers["crosscheck"]["max sum C - d over trained embeddings"]
    claim = dict(zip(RULES, evaluate(Evidence(numbers, SETTINGS))))["budget"]
    assert claim.verdict is Verdict.NOT_REPRODUCED
    assert "max sum C - d over trained embeddings" in claim.evidence
    assert {c.verdict for c in evaluate(Evidence({}))} == {Verdict.NOT_REPRODUCED}


def test_evidence_states_the_measured_numbers_and_the_rule():
    claims = dict(zip(RULES, evaluate(Evidence(_reproducing(), SETTINGS))))
    for claim in claims.values():
        assert "Rule: reproduced if" in claim.evidence
    assert "C = 2.3 v - 0.01 (closed form -0.01)" in claims["affine"].evidence
    assert f"<= {EXACT:.3g}" in claims["marginal-share"].evidence


def test_the_inputs_are_not_changed():
    numbers = _reproducing()
    before = copy.deepcopy(numbers)
    evaluate(Evidence(numbers, SETTINGS))
    assert numbers == before


def test_table_text_and_dicts_carry_the_same_rows():
    claims = evaluate(Evidence(_reproducing(), SETTINGS))
    table = claims_table(claims)
    assert table.header == CLAIM_KEYS
    assert [dict(zip(CLAIM_KEYS, row)) for row in table.rows] == [c.to_dict() for c in claims]
    text = claims_text(claims)
    assert text.startswith(f"claims ({len(claims)} reproduced, 0 partly, 0 not reproduced):")
    for c in claims:
        assert c.claim in text


def test_figures_are_named_by_their_number_in_the_report():
    assert figure_label(("budget", "allocation")) == "Figures 1, 9"
    assert figure_label(("allocation",)) == "Figure 1"
