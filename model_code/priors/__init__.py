"""Priors p(u_K) from which sampling starts, registered by name.

The registry discovers its entries from this package (``model_code.registry``): a new file here with a
``@PRIORS.register("name")`` subclass of ``Prior`` (the interface, in ``base.py``) is all it takes.

- ``kde``: the paper's prior, a Gaussian kernel density over the training images taken to level K:
  p(u_K) = 1/N sum_n N(u_K; m_n, s^2 I). Needs the training set when sampling.
- ``fitted_gaussian``: a Gaussian fitted to the m_n in the operator's orthonormal basis (a C x C
  covariance per coefficient), plus s^2 I; stored in the checkpoint, so sampling needs no data.
- ``standard_normal``: N(0, s^2 I) (DDPM's prior, where m_n is close to 0).
"""

from model_code.priors.base import PRIORS, Prior, randn_per_generator

__all__ = ["PRIORS", "Prior", "randn_per_generator"]
