"""The one evaluator and its measures: FID, the ELBO, the information-theoretic NLL."""
