"""What the entry points share: flag parsing with one-line errors, and the errors reported as one line."""
