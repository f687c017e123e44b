"""Pure functions that render the configuration files of the deployment.

Nothing here performs I/O: every function takes plain values and returns text,
so the output can be unit-tested and checked by the real programs in tests.
"""
