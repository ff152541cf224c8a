"""The config boundary: the only code that turns a ConfigDict into library objects."""
