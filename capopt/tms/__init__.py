r"""Training-free prediction of the TMS ReLU autoencoder (theory §4).

:func:`predict_tms` predicts how a Toy Models of Superposition autoencoder
:math:`\hat x = \mathrm{ReLU}(W^\top W x + b)` allocates its dimensions -- which features
sit alone, in antipodal pairs, triangles, pentagons, square antiprisms, large frames, or are
ignored -- from the exact energies of those blocks, without training.

Modules: ``configurations`` (the small blocks as unit-vector frames, and the large-frame
model), ``losses`` (the exact expected loss of a feature of an explicit embedding or of a
block), ``energies`` (a block's energy e_t(p), its loss minimised over norm, bias and shape),
``large_frames`` (the loss and energy of one large near-tight frame, in the sign model),
``allocation`` (the exact dynamic programme over the blocks) and ``prediction``
(:func:`predict_tms` and :class:`TMSPrediction`).
"""

from . import configurations, energies, large_frames, losses
from .prediction import TMSBlock, TMSPrediction, predict_tms

__all__ = ["predict_tms", "TMSPrediction", "TMSBlock", "configurations", "energies", "large_frames",
           "losses"]
