"""The example tests run on the same checkpoints as the command-line tests (tests/cli/conftest.py picks them)."""

from cli.conftest import glm_probe_checkpoint, probe_checkpoint  # noqa: F401
