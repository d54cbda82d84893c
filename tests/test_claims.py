"""The claims table (issue 15): each verdict follows from the numbers by its stated rule.

Every rule is run on synthetic numbers: a set that reproduces every claim, and for each rule
one change that makes it ``partly`` and one that makes it ``not reproduced``, so that every
verdict of every rule is reachable and none is typed. The numbers are the figures' own typed
records (:mod:`capopt.report.figures`); one quick run (tests/test_reproduce.py) checks that
the real run produces them.
"""

import copy
from dataclasses import replace

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
from capopt.report.figures import (
    allocation,
    block_sizes,
    budget,
    crosscheck,
    gram_blocks,
    marginal_benefit,
    phase_diagram,
    sparsity_sweep,
    two_feature_phase,
)
from capopt.report.figures.budget import SENSITIVITY_BUDGET
from capopt.report.figures.marginal_benefit import TWO_FEATURE_CASES

N_FEATURES = 10


def _panel(K, counts, fit=None):
    return allocation.KurtosisNumbers(K, "-", "-", True, fit, *counts, multiplier=0.5, loss=1.0)


def _architecture(name, sparse):
    return sparsity_sweep.ArchitectureNumbers(name, 0.0, 0.0, sparse, 0.1, 0.0, 0.0, 100, "yes")


def _family(label, share=None):
    sensitivity = budget.Sensitivity(SENSITIVITY_BUDGET, -0.25, -0.25, share)
    return budget.FamilyNumbers(label, "-", used=1e-15, fd_error=1e-8, multiplier=0.25, sensitivity=sensitivity)


def _reproducing() -> dict:
    """Numbers under which every claim is reproduced, by figure slug."""
    cases = []
    for letter, ratio, K in TWO_FEATURE_CASES:
        shares = K > 1 + 2 * ratio
        C_a = ((K + 1) * ratio / (ratio + 1) - 2) / (K - 3) if shares else 1.0
        cases.append(marginal_benefit.CaseNumbers(letter, ratio, K, "-", "-", C_a, 1.0 - C_a, 0.0, 0.0))
    blocks = [block_sizes.BlockNumbers(name, p, "-", largest, spread, 0.0)
              for name, p, largest, spread in (("tms-relu", 0.1, 2.0, 1.0), ("square", 0.1, 10.0, 2.0),
                                               ("tms-relu", 1.0, 1.0, 0.0), ("square", 1.0, 1.0, 0.0))]
    return {
        "allocation": allocation.AllocationNumbers(
            (_panel(2.0, (10, 0, 30)),
             _panel(8.0, (5, 12, 23), allocation.PolysemanticFit(2.3, -0.01, -0.01, 1e-15, 0.5))), 0.0),
        "marginal-benefit": marginal_benefit.MarginalNumbers(tuple(cases)),
        "two-feature-phase": two_feature_phase.TwoFeatureNumbers(100, 10, 0, 0, 10, 0.0),
        "phase-diagram": phase_diagram.PhaseNumbers(100, 0.5, 10, 0, 10, 0.0),
        "sparsity-sweep": sparsity_sweep.SparsityNumbers(
            (_architecture("tms-relu", 0.9), _architecture("square", 0.4)), grows=2, solver_gap=0.0,
            threshold_change=0.0, seeds=MIN_SEEDS, n_features=N_FEATURES),
        "gram-blocks": gram_blocks.GramNumbers(
            0.1, "10/3", "10/3", 0.0, 0.0, 1e-12,
            (gram_blocks.TrainedBlocks("tms-relu", "2/1 x3"), gram_blocks.TrainedBlocks("square", "10/3"))),
        "block-sizes": block_sizes.BlockSizesNumbers(tuple(blocks), seeds=MIN_SEEDS),
        "crosscheck": crosscheck.CrosscheckNumbers((), 0.0, max_excess=0.0, max_unused=1e-12, max_loss_gap=0.0),
        "budget": budget.BudgetNumbers((_family("convex, K = 5", budget.MarginalShare(4, 1e-15, 1.0)),
                                        _family("concave, K = 2"))),
    }


def _verdicts(numbers) -> dict:
    return {name: claim.verdict for name, claim in zip(RULES, evaluate(Evidence(numbers)))}


def _edit(record, *path, **values):
    """``record`` with ``values`` set on the records ``path`` leads to: each step a field
    holding a record or a tuple of them, or (field, which) to change only the records
    ``which`` picks."""
    if not path:
        return replace(record, **values)
    step, rest = path[0], path[1:]
    name, which = step if isinstance(step, tuple) else (step, None)
    held = getattr(record, name)
    if isinstance(held, tuple):
        held = tuple(_edit(r, *rest, **values) if which is None or which(r) else r for r in held)
    else:
        held = _edit(held, *rest, **values)
    return replace(record, **{name: held})


def _changed(slug, path=(), **values):
    """The reproducing numbers with ``values`` set in figure ``slug`` (at ``path``, see :func:`_edit`)."""
    numbers = _reproducing()
    numbers[slug] = _edit(numbers[slug], *path, **values)
    return numbers


def _kurtosis(K):
    return "panels", lambda panel: panel.kurtosis == K


def _case(letter):
    return "cases", lambda case: case.name == letter


def _block(name, p):
    return "blocks", lambda block: (block.name, block.density) == (name, p)


CONVEX = ("families", lambda family: family.name == "convex, K = 5")
CONCAVE = ("families", lambda family: family.name == "concave, K = 2")
SQUARE = ("architectures", lambda architecture: architecture.name == "square")

#: For each rule: numbers that make it partly, and numbers that make it not reproduced.
CHANGES = {
    "budget": (_changed("budget", (CONVEX,), used=0.5),
               _changed("crosscheck", max_excess=1e-3)),
    "regimes": (_changed("allocation", (_kurtosis(8.0),), ignored=0),
                _changed("allocation", (_kurtosis(8.0),), in_importance_order=False)),
    "affine": (_changed("allocation", (_kurtosis(8.0), "fit"), intercept=-0.4, closed_form_intercept=-0.4),
               _changed("allocation", (_kurtosis(8.0), "fit"), max_residual=0.01)),
    "kurtosis": (_changed("sparsity-sweep", grows=1),
                 _changed("two-feature-phase", disagreements=3)),
    "architectures": (_changed("sparsity-sweep", seeds=1),
                      _changed("sparsity-sweep", (SQUARE,), sparse=0.85)),
    "semi-orthogonal": (_changed("gram-blocks", trained_blocks="7/2, 3/1"),
                        _changed("gram-blocks", optimal_unused=0.3)),
    "block-sizes": (_changed("block-sizes", (_block("square", 0.1),), largest_seed_range=7.0),
                    _changed("block-sizes", (_block("tms-relu", 0.1),), largest=10.0)),
    "cases": (_changed("marginal-benefit", (_case("D"),), capacity_a=0.9, capacity_b=0.1),
              _changed("marginal-benefit", ("cases",), capacity_a=0.3)),
    "marginal-share": (_changed("budget", (CONVEX, "sensitivity", "share"), error=1e-3),
                       _changed("budget", (CONVEX, "sensitivity", "share"), error=0.5)),
    "marginal-value": (_changed("budget", (CONCAVE,), fd_error=1e-3),
                       _changed("budget", (CONVEX, "sensitivity"), central_difference=-0.5)),
}


def test_every_rule_has_a_partly_and_a_failing_case():
    assert set(CHANGES) == set(RULES)


def test_reproducing_numbers_reproduce_every_claim():
    assert set(_verdicts(_reproducing()).values()) == {Verdict.REPRODUCED}


@pytest.mark.parametrize("rule", list(CHANGES))
def test_each_verdict_of_each_rule_is_reachable(rule):
    partly, failing = CHANGES[rule]
    got = _verdicts(partly)
    assert got[rule] is Verdict.PARTLY
    got = _verdicts(failing)
    assert got[rule] is Verdict.NOT_REPRODUCED


def test_a_change_moves_only_its_own_claim():
    for rule, (partly, _) in CHANGES.items():
        got = _verdicts(partly)
        assert {name for name, v in got.items() if v is not Verdict.REPRODUCED} == {rule}, rule


def test_fewer_seeds_than_needed_make_the_architecture_claim_partly_with_the_reason():
    thin = _changed("sparsity-sweep", seeds=1)
    claim = dict(zip(RULES, evaluate(Evidence(thin))))["architectures"]
    assert claim.verdict is Verdict.PARTLY
    assert "1 seed(s)" in claim.evidence and f"fewer than {MIN_SEEDS}" in claim.evidence


def test_missing_numbers_give_not_reproduced_naming_what_is_missing():
    numbers = _reproducing()
    del numbers["crosscheck"]
    claim = dict(zip(RULES, evaluate(Evidence(numbers))))["budget"]
    assert claim.verdict is Verdict.NOT_REPRODUCED
    assert "'crosscheck'" in claim.evidence
    unfitted = _changed("allocation", ("panels",), fit=None)
    claim = dict(zip(RULES, evaluate(Evidence(unfitted))))["affine"]
    assert claim.verdict is Verdict.NOT_REPRODUCED
    assert "two polysemantic features to fit" in claim.evidence
    assert {c.verdict for c in evaluate(Evidence({}))} == {Verdict.NOT_REPRODUCED}


def test_evidence_states_the_measured_numbers_and_the_rule():
    claims = dict(zip(RULES, evaluate(Evidence(_reproducing()))))
    for claim in claims.values():
        assert "Rule: reproduced if" in claim.evidence
    assert "C = 2.3 v - 0.01 (closed form -0.01)" in claims["affine"].evidence
    assert f"<= {EXACT:.3g}" in claims["marginal-share"].evidence


def test_the_inputs_are_not_changed():
    numbers = _reproducing()
    before = copy.deepcopy(numbers)
    evaluate(Evidence(numbers))
    assert numbers == before


def test_table_text_and_dicts_carry_the_same_rows():
    claims = evaluate(Evidence(_reproducing()))
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
