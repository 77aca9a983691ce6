"""Exceptions shared by the checkpoint readers and writers.

    raise CheckpointError(f"{path}: not a readable TF checkpoint (...)")
"""


class CheckpointError(ValueError):
    """A checkpoint that cannot be read or does not match the model (names the file / variable)."""
