"""Steering: the one part of the analyses that runs the model again.

- :mod:`.interventions`: :class:`AddVector`, :class:`Ablate`, :class:`ScaleNeurons`, :class:`FixNeurons`
  and :class:`Steering`, the context manager that installs them as hooks and removes them.
- :mod:`.generate`: batched, left-padded generation under interventions.
- :mod:`.sources`: vectors, neuron sets, residual norms and mean activations read from a store.
- :mod:`.evalsets`: what each evaluation asks and how it scores (wiring to :mod:`analyses.evals`).
- :mod:`.spec` / :mod:`.sweep`: :class:`SweepSpec` and :func:`run_sweep` (``actstore steer``).
- :mod:`.report`: a recorded sweep as tables and a metric-vs-alpha plot (``actstore analyze steering``).
- :mod:`.interop`: vectors to and from llama.cpp / repeng GGUF, steering-vectors and NumPy files.

Importing this package imports nothing heavy; torch comes in with the modules that need it.
"""

__all__ = ["Ablate", "AddVector", "FixNeurons", "ScaleNeurons", "Steering", "SweepSpec", "run_sweep"]


def __getattr__(name: str):
    # Lazy: `import analyses.steering` must not pull torch in for the report or the interop readers.
    if name in ("Ablate", "AddVector", "FixNeurons", "ScaleNeurons", "Steering"):
        from analyses.steering import interventions

        return getattr(interventions, name)
    if name == "SweepSpec":
        from analyses.steering.spec import SweepSpec

        return SweepSpec
    if name == "run_sweep":
        from analyses.steering.sweep import run_sweep

        return run_sweep
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
