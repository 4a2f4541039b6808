"""Compiled kernels: ``_math`` holds the maths once; ``cpu`` and ``cuda`` compile it."""
