"""The social modality above training: the benchmark's comparison loop (`fit`), communities, and the evidence of
influence (who a user attended to, and how much).

The lower pieces live in their layers: the friend graph and friends' causal state timelines in `core.friends`, the
edges table in `core.store.edges`, edge files in `core.ingest.presets.edges`, the branch module in
`core.model.social`, its training in `core.train` (`TrainConfig.social`: the one training loop), the
planted-influence generator in `core.datasets.social`.
"""

__all__: list[str] = []
