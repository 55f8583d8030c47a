"""The social modality: friendship / trust edges in the store, the friend graph in model indices, the social branch
of the interest model, and the evidence of influence (who a user attended to, and how much).

Only the light store pieces are imported here; `core.social.files` (ingest), `core.social.graph`,
`core.social.branch` and `core.social.evidence` are imported where used, so `core.store` can import this package
without pulling in the ingest or model code.
"""

from core.social.edges import EDGES_TABLE, EdgeCounts, EdgeStage, edge_count, has_edges, insert_edges

__all__ = ["EDGES_TABLE", "EdgeCounts", "EdgeStage", "edge_count", "has_edges", "insert_edges"]
