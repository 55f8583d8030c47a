"""Friends' interest states for the social branch: the friend graph in model indices (`graph`), each friend's causal
state timeline and the per-step lookup strictly before a step's time (`states`), and the context a social model
reads at evaluation (`context`).

It sits below `core.train` (training refreshes the timelines every epoch) and above `core.evaluate` (whose window
batches it reuses); the evidence of influence and communities stay in `core.social`, above training.
"""

__all__: list[str] = []
