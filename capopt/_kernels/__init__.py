r"""capopt's numba kernels, private to the package: one module per concern.

Every package of capopt calls its kernels from here, behind public wrappers that validate
their inputs once and pass clean float64 arrays:

* :mod:`~capopt._kernels.quadratic`: the quadratic model's formulas compiled (from
  :mod:`capopt._formulas`, derived in ``derivations/``) and the rules of one curve (flat,
  loss, marginal, response to a level), which every other module uses;
* :mod:`~capopt._kernels.bracket`, :mod:`~capopt._kernels.assembly`,
  :mod:`~capopt._kernels.waterfill`: exact water-filling of convex, linear and flat curves
  (:func:`capopt.solve`) -- the features against a bracket of levels, the exact answer
  inside the final bracket, and the search;
* :mod:`~capopt._kernels.certificate`: the fused KKT certificate and multiplier interval
  (:mod:`capopt.solvers.certificate`);
* :mod:`~capopt._kernels.mixed`: the water-filled part of a mixed family
  (:mod:`capopt.solvers.structured`);
* :mod:`~capopt._kernels.vertex`: the vertex rule for concave curves
  (:mod:`capopt.solvers.vertex`);
* :mod:`~capopt._kernels.kkt`: the KKT structure and the Jacobian's products
  (:mod:`capopt.perturbation`);
* :mod:`~capopt._kernels.grid`, :mod:`~capopt._kernels.grid_sensitivities`: many problems
  of one kurtosis each, in parallel, with their sensitivities (:func:`capopt.sweep`);
* :mod:`~capopt._kernels.training`: the element-wise passes of sampled training
  (:mod:`capopt.training`).

Kernels call one another across these modules. numba's cache checks only the source file of
each cached kernel, so :mod:`capopt._jit`, which compiles them all, stamps every cached
kernel with a digest of all of these sources and of :mod:`capopt._formulas`: an edit to any
of them makes every cached kernel stale, and it compiles afresh on its next call.

Tests: each module's kernels are checked against naive numpy references, closed forms and
an exact brute force in ``tests/`` (``test_waterfill.py``, ``test_vertex.py``,
``test_nonconvex.py``, ``test_sweeps.py``, ``test_optimality.py``, ``test_sensitivity.py``,
``test_sweep_sensitivities.py``, ``test_training.py``), which CI (``.ci/run``) reruns
compiled with bounds checks and not compiled at all; ``tests/test_kernel_cache.py`` checks
the cache's stamp.

Glossary (each module adds its own): ``v`` importances, ``K`` kurtoses (length 1 when
shared), ``d`` budget, ``C`` capacities, ``mu`` level, ``lam`` multiplier, ``eps`` K - 3,
``p`` (K - 1) v, ``z`` the ignore level p / 2.
"""
