r"""The claims that open the report: what the paper says, the figure that shows it, the
numbers this run measured, and a verdict computed from those numbers by a stated rule.

Each claim of the abstract of Scherlis et al. (arXiv:2210.01892), the marginal-benefit cases
A-F and the sensitivity results is one rule in :data:`RULES`: a function of the run's
:class:`Evidence` (every figure's numbers, the typed records of :mod:`capopt.report.figures`)
that returns a :class:`Claim` whose verdict follows from the numbers by the rule its
evidence states, with the tolerances named below. A figure the run did not draw, or a number
it could not measure, makes the claim ``not reproduced`` with what is missing named, never
an error, and the table then says what it lacks.

Where the paper's wording is loose the rule is exact: in the quadratic model a
polysemantic feature's capacity is affine in its importance, C_i = s v_i - 2/(K - 3)
(proportional only as K -> infinity), while the marginal dimension is shared in proportion to
importance, dC_i/dd = v_i / sum_poly v (theory §3).

Glossary: ``C`` capacity, ``v`` importance, ``K`` kurtosis, ``d`` budget, ``lam`` multiplier.
"""

from __future__ import annotations

import enum
import textwrap
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping, Sequence, TypeVar

from .. import _formulas as F
from .captions import Table, fmt
from .figures import (FIGURES, allocation, block_sizes, budget, crosscheck, gram_blocks, marginal_benefit,
                      phase_diagram, sparsity_sweep, two_feature_phase)
from .figures.budget import FD_STEP
from .numbers import Numbers
from .spec import FigureSpec

__all__ = ["Verdict", "Claim", "Evidence", "MissingEvidence", "RULES", "CLAIM_KEYS", "evaluate",
           "claims_table", "claims_text", "verdict_counts", "figure_label",
           "EXACT", "TRAINED", "FINITE_DIFFERENCE", "PROPORTIONAL", "MIN_SEEDS"]

#: The keys of each claim in ``numbers.json``, and the columns of the table, in order.
CLAIM_KEYS = ("claim", "verdict", "figure", "evidence")

#: Identities the solvers satisfy exactly, up to rounding.
EXACT = 1e-9
#: Exact-loss L-BFGS training against the solver (issue 5's bound on max |dC|); also the
#: bound on min(d, N) - sum C of a trained embedding called block-semi-orthogonal.
TRAINED = 1e-3
#: A central difference of step FD_STEP = 1e-4 against an exact derivative: the truncation
#: error O(h^2) is ~1e-6 relative for the report's families; a factor of ten above it.
FINITE_DIFFERENCE = 1e-5
#: Looser agreement that still counts as ``partly`` (the derivative has the right value to
#: two digits, but not to the precision the method guarantees).
ROUGH = 1e-2
#: An affine relation C = s v + b counts as proportional when |b| is at most this fraction
#: of the mean polysemantic capacity.
PROPORTIONAL = 0.05
#: Seeds per density below which a trained-architecture comparison is ``partly`` at best:
#: with fewer, the spread over seeds (the noise the comparison must exceed) is not measured.
MIN_SEEDS = 3


class Verdict(str, enum.Enum):
    """How far this run reproduces a claim; the value is the word printed in the table."""

    REPRODUCED = "reproduced"
    PARTLY = "partly"
    NOT_REPRODUCED = "not reproduced"


@dataclass(frozen=True)
class Claim:
    """One row of the claims table.

    Attributes
    ----------
    claim : str
        What the paper states (made exact where its wording is loose).
    verdict : Verdict
    figures : tuple of str
        Slugs of the figures that show it (:data:`~capopt.report.FIGURES`).
    evidence : str
        The numbers measured in this run and the rule that turned them into the verdict.
    """

    claim: str
    verdict: Verdict
    figures: tuple[str, ...]
    evidence: str

    @property
    def figure(self) -> str:
        """The figures as the report numbers them, e.g. ``'Figures 1, 5'``."""
        return figure_label(self.figures)

    def to_dict(self) -> dict:
        """``claim``, ``verdict``, ``figure``, ``evidence`` as plain strings (numbers.json)."""
        return {"claim": self.claim, "verdict": self.verdict.value, "figure": self.figure,
                "evidence": self.evidence}


def figure_label(slugs: Sequence[str]) -> str:
    """``'Figure 3'`` or ``'Figures 1, 5'``: the report's numbers of the figures ``slugs``
    (their order in :data:`~capopt.report.FIGURES`; an unregistered slug is shown as is)."""
    number = {slug: k for k, slug in enumerate(FIGURES, start=1)}
    known = sorted(number[s] for s in slugs if s in number)
    shown = [str(k) for k in known] + [s for s in slugs if s not in number]
    return ("Figure " if len(shown) == 1 else "Figures ") + ", ".join(shown)


class MissingEvidence(LookupError):
    """A figure or a number a rule needs is not in the run."""


N = TypeVar("N", bound=Numbers)


@dataclass(frozen=True)
class Evidence:
    """What the rules read: every figure's numbers, by slug.

    Parameters
    ----------
    numbers : mapping of str to Numbers
        ``Rendered.numbers`` of each figure the run drew, by slug.
    """

    numbers: Mapping[str, Numbers]

    def find(self, figure: FigureSpec[N, Any]) -> N | None:
        """The numbers of ``figure``, or None if the run did not draw it."""
        numbers = self.numbers.get(figure.slug)
        return numbers if isinstance(numbers, figure.numbers) else None

    def get(self, figure: FigureSpec[N, Any]) -> N:
        """The numbers of ``figure``; :class:`MissingEvidence` if the run did not draw it."""
        numbers = self.find(figure)
        if numbers is None:
            raise MissingEvidence(f"the run has no figure {figure.slug!r}")
        return numbers


#: A rule: the verdict and the evidence text, or MissingEvidence.
_Rule = Callable[[Evidence], tuple[Verdict, str]]

#: The rules, in table order: name -> (claim, figures, rule). A rule returns the verdict and
#: the evidence text, or raises MissingEvidence.
RULES: dict[str, tuple[str, tuple[str, ...], _Rule]] = {}


def _rule(name: str, claim: str, *figures: FigureSpec[Any, Any]) -> Callable[[_Rule], _Rule]:
    def register(rule: _Rule) -> _Rule:
        RULES[name] = (claim, tuple(f.slug for f in figures), rule)
        return rule

    return register


def _grade(ok: bool, partly: bool) -> Verdict:
    """``reproduced`` if ``ok``, else ``partly`` if ``partly``, else ``not reproduced``."""
    return Verdict.REPRODUCED if ok else Verdict.PARTLY if partly else Verdict.NOT_REPRODUCED


def _panels(ev: Evidence) -> tuple[allocation.KurtosisNumbers, ...]:
    """The allocation figure's kurtoses, in the settings' order."""
    panels = ev.get(allocation.FIGURE).panels
    if not panels:
        raise MissingEvidence("the allocation figure has no kurtosis")
    return panels


def _architectures(ev: Evidence) -> tuple[sparsity_sweep.ArchitectureNumbers, ...]:
    """The trained architectures of the sparsity sweep."""
    found = ev.get(sparsity_sweep.FIGURE).architectures
    if len(found) < 2:
        raise MissingEvidence("the sparsity sweep has fewer than 2 architectures")
    return found


def _families(ev: Evidence) -> tuple[budget.FamilyNumbers, ...]:
    """The loss-curve families of the budget figure."""
    families = ev.get(budget.FIGURE).families
    if not families:
        raise MissingEvidence("the budget figure has no family")
    return families


# ---------------------------------------------------------------- the abstract's claims
@_rule("budget", "Capacities share the budget: sum_i C_i <= d (and = d at the optimum when N > d)",
       budget.FIGURE, crosscheck.FIGURE)
def _budget(ev: Evidence) -> tuple[Verdict, str]:
    families = _families(ev)
    solver = max(f.used for f in families)
    over = ev.get(crosscheck.FIGURE).max_excess
    verdict = _grade(solver <= EXACT and over <= EXACT, over <= EXACT)
    return verdict, (
        f"solver, {len(families)} families at every budget: max |sum C - min(d, N)| = {fmt(solver)}; "
        f"trained embeddings (cross-check problems): max sum C - d = {fmt(over)}. Rule: reproduced "
        f"if both <= {fmt(EXACT)}; partly if only the bound holds; else not reproduced."
    )


@_rule("regimes", "Most important features monosemantic, middling ones polysemantic, least "
       "important ignored", allocation.FIGURE)
def _regimes(ev: Evidence) -> tuple[Verdict, str]:
    panels = _panels(ev)
    counts = {p.kurtosis: (p.monosemantic, p.polysemantic, p.ignored) for p in panels}
    ordered = [p.in_importance_order for p in panels]
    all_three = [K for K, c in counts.items() if min(c) > 0]
    verdict = _grade(all(ordered) and bool(all_three), all(ordered))
    shown = "; ".join(f"K = {fmt(K)}: {'/'.join(str(n) for n in c)}" for K, c in counts.items())
    return verdict, (
        f"mono/poly/ignored counts, N = {sum(counts[panels[0].kurtosis])}: {shown}; in importance order at "
        f"{sum(ordered)} of {len(panels)} kurtoses, all three regimes at K = "
        f"{', '.join(fmt(K) for K in all_three) or 'none'}. Rule: reproduced if ordered at every K "
        "and all three regimes occur at some K; partly if ordered only; else not reproduced."
    )


@_rule("affine", "Polysemantic capacity in proportion to importance (exactly: affine, "
       "C_i = s v_i - 2/(K-3), proportional only as K -> infinity)", allocation.FIGURE)
def _affine(ev: Evidence) -> tuple[Verdict, str]:
    fitted = [(p.kurtosis, p.fit) for p in _panels(ev) if p.fit is not None]
    if not fitted:
        raise MissingEvidence("no kurtosis of the allocation figure has two polysemantic features to fit")
    parts, affine, proportional = [], [], []
    for K, fit in fitted:
        intercept, closed, mean = fit.intercept, fit.closed_form_intercept, fit.mean_capacity
        affine.append(fit.max_residual <= EXACT and abs(intercept - closed) <= EXACT)
        proportional.append(abs(intercept) <= PROPORTIONAL * mean)
        parts.append(f"K = {fmt(K)}: C = {fmt(fit.slope)} v {'-' if intercept < 0 else '+'} "
                     f"{fmt(abs(intercept))} (closed form {fmt(closed)}), max residual "
                     f"{fmt(fit.max_residual)}, mean C {fmt(mean)}, |intercept| / mean C = "
                     f"{fmt(abs(intercept) / mean)}")
    verdict = _grade(all(affine) and all(proportional), all(affine))
    return verdict, (
        "least-squares fit over the polysemantic features: " + "; ".join(parts) + ". Rule: "
        f"reproduced if affine (residual and intercept error <= {fmt(EXACT)}) with |intercept| <= "
        f"{fmt(PROPORTIONAL)} mean C at every K; partly if affine but not proportional; else not "
        "reproduced."
    )


@_rule("kurtosis", "Higher kurtosis (sparser inputs) makes polysemanticity more prevalent",
       allocation.FIGURE, two_feature_phase.FIGURE, phase_diagram.FIGURE, sparsity_sweep.FIGURE)
def _kurtosis(ev: Evidence) -> tuple[Verdict, str]:
    panels = sorted(_panels(ev), key=lambda p: p.kurtosis)
    poly = [p.polysemantic for p in panels]
    monotone = all(a <= b for a, b in zip(poly, poly[1:]))
    starts = all(p.polysemantic == 0 for p in panels if p.kurtosis <= 3) and poly[-1] > 0
    two = ev.get(two_feature_phase.FIGURE).disagreements
    many = ev.get(phase_diagram.FIGURE).disagreements
    grows = ev.get(sparsity_sweep.FIGURE).grows
    n_arch = len(_architectures(ev))
    solver = monotone and starts and two == 0 and many == 0
    verdict = _grade(solver and grows == n_arch, solver)
    return verdict, (
        f"solver: polysemantic features {'/'.join(str(p) for p in poly)} at K = "
        f"{', '.join(fmt(p.kurtosis) for p in panels)}; two features share a neuron iff K > 1 + 2a/b "
        f"({two} disagreements on the grid); N features: some polysemantic iff p < p*(r) "
        f"({many} disagreements); trained: the polysemantic fraction grows from dense to sparse "
        f"inputs in {grows} of {n_arch} architectures. Rule: reproduced if the solver's count is "
        "non-decreasing in K, zero for K <= 3, positive at the largest K, both boundaries have 0 "
        "disagreements and every architecture grows; partly if the solver's part holds; else not "
        "reproduced."
    )


@_rule("architectures", "Polysemanticity is more prevalent in some architectures than others",
       sparsity_sweep.FIGURE)
def _architecture(ev: Evidence) -> tuple[Verdict, str]:
    sweep = ev.get(sparsity_sweep.FIGURE)
    architectures = _architectures(ev)
    sparse = {a.name: a.sparse for a in architectures}
    seeds, n_features = sweep.seeds, sweep.n_features
    spread = max(sparse.values()) - min(sparse.values())
    measured = seeds >= MIN_SEEDS
    # Apart by more than one feature, and by more than twice the largest seed spread.
    threshold = max(1.0 / n_features, 2.0 * max(a.sparse_seed_range for a in architectures))
    differ = spread > threshold
    verdict = _grade(differ and measured, differ)
    low, high = min(sparse, key=sparse.__getitem__), max(sparse, key=sparse.__getitem__)
    thin = "" if measured else (f"; evidence thin: {seeds} seed(s) per density, fewer than "
                                f"{MIN_SEEDS}, too few to measure the spread over seeds")
    shown = ", ".join(f"{a.name} {fmt(a.sparse)} (seeds span {fmt(a.sparse_seed_range)})"
                      for a in architectures)
    return verdict, (
        f"polysemantic fraction at the sparsest density: {shown}; "
        f"range {fmt(spread)} ({low} to {high}) against a threshold {fmt(threshold)} (the larger of "
        f"one feature in N = {n_features} and twice the largest seed spread){thin}. Rule: reproduced "
        f"if the range exceeds the threshold with >= {MIN_SEEDS} seeds; partly if it exceeds it "
        "with fewer; else not reproduced."
    )


@_rule("semi-orthogonal", "The optimal embedding is block-semi-orthogonal (sum C = d; trained "
       "models find the same blocks)", gram_blocks.FIGURE, crosscheck.FIGURE)
def _semi_orthogonal(ev: Evidence) -> tuple[Verdict, str]:
    gram = ev.get(gram_blocks.FIGURE)
    optimal, trained = gram.optimal_unused, gram.trained_unused
    others = ev.get(crosscheck.FIGURE).max_unused
    same = gram.optimal_blocks == gram.trained_blocks
    found = trained <= TRAINED and others <= TRAINED and same
    verdict = _grade(optimal <= EXACT and found, optimal <= EXACT)
    return verdict, (
        f"min(d, N) - sum C (0 iff block-semi-orthogonal of full rank): optimal quadratic embedding "
        f"{fmt(optimal)}, its L-BFGS training {fmt(trained)} (blocks "
        f"{gram.trained_blocks}, {'the same as' if same else 'unlike'} the "
        f"optimum's), every cross-check problem's trained embedding <= {fmt(others)}. Rule: "
        f"reproduced if the optimum's is <= {fmt(EXACT)} and the trained ones <= {fmt(TRAINED)} with "
        "the same blocks; partly if only the optimum's; else not reproduced."
    )


@_rule("block-sizes", "Block sizes differ by architecture (the quadratic model's polysemantic "
       "features share one block)", block_sizes.FIGURE, gram_blocks.FIGURE)
def _block_sizes(ev: Evidence) -> tuple[Verdict, str]:
    measured_blocks = ev.get(block_sizes.FIGURE)
    if len(measured_blocks.blocks) < 2:
        raise MissingEvidence("the block-size figure has fewer than 2 embeddings")
    by_density: dict[str, dict[str, tuple[float, float]]] = {}
    for b in measured_blocks.blocks:
        by_density.setdefault(fmt(b.density), {})[b.name] = (b.largest, b.largest_seed_range)
    # At each density, the architectures of the largest and the smallest mean largest block,
    # and by how much their means differ beyond both seed ranges.
    best: tuple | None = None
    for density, archs in by_density.items():
        high = max(archs, key=lambda n: archs[n][0])
        low = min(archs, key=lambda n: archs[n][0])
        margin = archs[high][0] - archs[low][0] - archs[high][1] - archs[low][1]
        if best is None or margin > best[0]:
            best = (margin, density, high, low, archs)
    assert best is not None  # there are at least two embeddings
    margin, density, high, low, archs = best
    seeds = measured_blocks.seeds
    measured = seeds >= MIN_SEEDS
    differ = archs[high][0] > archs[low][0]
    verdict = _grade(margin > 0 and measured, differ)
    gram = ev.find(gram_blocks.FIGURE)
    optimal = "not reported" if gram is None else gram.optimal_blocks
    thin = "" if measured else f"; evidence thin: {seeds} seed(s), fewer than {MIN_SEEDS}"
    return verdict, (
        f"largest block (features, mean over {seeds} seed(s)) at density {density}: "
        + "; ".join(f"{n} {fmt(m)} (seeds span {fmt(r)})" for n, (m, r) in archs.items())
        + f"; {high} against {low} differ by {fmt(archs[high][0] - archs[low][0])}, "
        f"{fmt(margin)} beyond both seed spans (the best of {len(by_density)} densities); the "
        f"quadratic model's optimum: {optimal}{thin}. Rule: reproduced if two architectures' "
        f"means differ by more than both seed spans at some density with >= {MIN_SEEDS} seeds; "
        "partly if they differ less or on fewer seeds; else not reproduced."
    )


# ---------------------------------------------------------------- cases A-F
@_rule("cases", "Marginal benefit, cases A-F: two features share one neuron iff returns "
       "diminish enough, K > 1 + 2a/b; then at C_a = ((K+1) a/(a+b) - 2)/(K-3)",
       marginal_benefit.FIGURE)
def _cases(ev: Evidence) -> tuple[Verdict, str]:
    cases = ev.get(marginal_benefit.FIGURE).cases
    parts, right = [], 0
    for case in cases:
        C_a, C_b = case.capacity_a, case.capacity_b
        shares = case.kurtosis > F.two_feature_polysemantic_kurtosis(case.ratio, 1.0)
        expected = float(F.two_feature_capacity(case.ratio, 1.0, case.kurtosis)) if shares else 1.0
        ok = abs(C_a - expected) <= EXACT and (C_b > EXACT) == shares
        right += ok
        parts.append(f"{case.name} ({'shares' if shares else 'one owner'}) C = {fmt(C_a)}/{fmt(C_b)}"
                     + (f" vs {fmt(expected)}" if shares else "") + ("" if ok else " MISMATCH"))
    n = len(cases)
    verdict = _grade(right == n, right > 0)
    return verdict, (
        f"{right} of {n} cases as predicted: " + "; ".join(parts) + f". Rule: reproduced if every "
        f"case's regime and C_a (within {fmt(EXACT)}) match the closed form; partly if some do; "
        "else not reproduced."
    )


# ---------------------------------------------------------------- sensitivities
@_rule("marginal-share", "An extra dimension is shared among the polysemantic features in "
       "proportion to importance: dC_i/dd = v_i / sum_poly v (one kurtosis)", budget.FIGURE)
def _marginal_share(ev: Evidence) -> tuple[Verdict, str]:
    family = next((f for f in _families(ev) if f.sensitivity.share is not None), None)
    if family is None or family.sensitivity.share is None:
        raise MissingEvidence("the budget figure has no convex family of one kurtosis")
    at, share = family.sensitivity.budget, family.sensitivity.share
    verdict = _grade(share.error <= EXACT and share.polysemantic >= 2, share.error <= ROUGH)
    return verdict, (
        f"capopt.sensitivity, family '{family.name}' at d = {fmt(at)}: {share.polysemantic} polysemantic "
        f"features, max |(dC_i/dd) / (v_i / sum v) - 1| = {fmt(share.error)}, sum_i dC_i/dd = "
        f"{fmt(share.total)}. Rule: reproduced if <= {fmt(EXACT)} over >= 2 features; partly if <= "
        f"{fmt(ROUGH)}; else not reproduced."
    )


@_rule("marginal-value", "The multiplier is the marginal value of a dimension: dL*/dd = -lambda",
       budget.FIGURE)
def _marginal_value(ev: Evidence) -> tuple[Verdict, str]:
    families = _families(ev)
    sweep = max(f.fd_error for f in families)
    point, pairs = [], []
    for f in families:
        exact, fd = f.sensitivity.loss_d_budget, f.sensitivity.central_difference
        point.append(abs(exact - fd) / max(abs(exact), 1.0))
        pairs.append(f"{f.name} {fmt(exact)} vs {fmt(fd)}")
    worst = max(sweep, max(point))
    verdict = _grade(worst <= FINITE_DIFFERENCE, worst <= ROUGH)
    return verdict, (
        f"{len(families)} families: lambda against -(L*(d+h) - L*(d-h))/2h, h = {fmt(FD_STEP)}, at every "
        f"budget off the whole numbers: max relative difference {fmt(sweep)}; capopt.sensitivity's "
        f"dL*/dd at d = {fmt(families[0].sensitivity.budget)} against the same difference "
        f"({'; '.join(pairs)}): max relative difference {fmt(max(point))}. "
        f"Rule: reproduced if <= {fmt(FINITE_DIFFERENCE)}; partly if <= {fmt(ROUGH)}; else not reproduced."
    )


def evaluate(evidence: Evidence) -> tuple[Claim, ...]:
    """Every rule of :data:`RULES` applied to ``evidence``, in table order.

    Parameters
    ----------
    evidence : Evidence

    Returns
    -------
    tuple of Claim
        One per rule; a rule whose numbers are missing gives ``not reproduced`` and names
        the missing number.

    Examples
    --------
    >>> claims = evaluate(Evidence({}))
    >>> len(claims) == len(RULES), {c.verdict.value for c in claims}
    (True, {'not reproduced'})
    """
    out = []
    for claim, figures, rule in RULES.values():
        try:
            verdict, text = rule(evidence)
        except MissingEvidence as missing:
            verdict, text = Verdict.NOT_REPRODUCED, f"no evidence in this run: {missing}."
        out.append(Claim(claim, verdict, figures, text))
    return tuple(out)


def claims_table(claims: Iterable[Claim]) -> Table:
    """The claims as a :class:`~capopt.report.Table`: claim, verdict, figure, evidence."""
    return Table(CLAIM_KEYS, tuple(tuple(c.to_dict()[k] for k in CLAIM_KEYS) for c in claims))


def claims_text(claims: Sequence[Claim], width: int = 100) -> str:
    """The claims as plain text for a terminal: a verdict and a claim per line, the figure,
    then the evidence wrapped and indented under it."""
    lines = [f"claims ({verdict_counts(claims)}):"]
    for c in claims:
        lines.append(f"  {c.verdict.value:<15} {c.claim} [{c.figure}]")
        lines += textwrap.wrap(c.evidence, width, initial_indent=" " * 18, subsequent_indent=" " * 18)
    return "\n".join(lines)


def verdict_counts(claims: Sequence[Claim]) -> str:
    """How many claims got each verdict, e.g. ``'9 reproduced, 2 partly, 0 not reproduced'``."""
    counts = {v: sum(c.verdict is v for c in claims) for v in Verdict}
    return ", ".join(f"{n} {v.value}" for v, n in counts.items())

