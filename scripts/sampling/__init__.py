"""The one sampler, writing pictures (PNG grids, GIFs, scatter plots), and sample.py's request."""
