"""A correlated 2D Gaussian (eigenvalues 4 and 0.05), whose exact entropy the NLL estimate is checked against."""

from configs.toy2d import default_toy2d


def get_config():
    config = default_toy2d.get_config()
    config.data.dataset = "correlated_gaussian"
    # from its covariance spectrum (eigenvalues 4 and 0.05): python -m scripts.suggest_logsnr --config <this file>
    config.model.logistic_loc = 0.7909
    config.model.logistic_scale = 2.0463
    return config
