"""``python -m tangrnn_core`` is the ``tangrnn`` command (``torchrun --no-python`` and SLURM need a module)."""

from tangrnn_core.cli import main

if __name__ == "__main__":
    main()
