"""Custom checkov checks for mailstrata stacks, one per file, loaded by path with `--external-checks-dir`.

checkov executes every `.py` file here (this package marker is required by its loader); import nothing
from this package directly, the checks register themselves with checkov's registries on load.
"""
