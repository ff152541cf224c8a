"""Evaluate a trained run (FID, ELBO): not implemented yet."""
import sys

if __name__ == "__main__":
    print("error: evaluate.py is not implemented yet", file=sys.stderr)
    sys.exit(1)
