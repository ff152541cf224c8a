"""The one sampler, and writing pictures (PNG grids, GIFs, scatter plots)."""
