"""The test suite (a package, so that a `tests` package shipped by a dependency, such as
torch-fidelity 0.4, cannot shadow it)."""
