"""Cost estimates of a graph run, from the graphs and billing services."""

from __future__ import annotations

import uuid

from agentloom.billing.v1 import billing_pb2
from agentloom.graphs.v1 import graphs_pb2
from agentloom_gateway.clients import Services


async def estimate_graph(
    services: Services, user_id: str, graph_id: uuid.UUID, version: int
) -> tuple[graphs_pb2.Graph, billing_pb2.EstimateCostResponse]:
    """The graph (as the user sees it) and billing's estimate of one run of it."""
    found: graphs_pb2.GetGraphResponse = await services.graphs.GetGraph(
        graphs_pb2.GetGraphRequest(user_id=user_id, graph_id=str(graph_id), version=version)
    )
    graph = found.graph
    reply: billing_pb2.EstimateCostResponse = await services.billing.EstimateCost(
        billing_pb2.EstimateCostRequest(
            nodes=[
                billing_pb2.EstimateNode(
                    id=n.id, block_id=n.block_id, input_default_json=n.input_default_json
                )
                for n in graph.nodes
            ],
            links=[
                billing_pb2.EstimateLink(source_id=link.source_id, sink_id=link.sink_id)
                for link in graph.links
            ],
            user_id=user_id,
        )
    )
    return graph, reply
