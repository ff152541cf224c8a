"""Pure library: operators, processes, networks, DCT, EMA.

Nothing here reads a config, parses flags or touches files: constructors take explicit
keyword arguments, so every piece can be used and tested on its own.
"""
