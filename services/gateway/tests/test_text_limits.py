"""Names and descriptions lose their markup (nh3); graph size limits answer 422."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from agentloom_gateway import schemas
from agentloom_gateway.errors import ApiProblem
from agentloom_gateway.routes.graphs import check_graph_limits
from agentloom_gateway.settings import GatewaySettings
from agentloom_gateway.text import plain_text


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("plain & simple", "plain & simple"),
        ("<b>bold</b> name", "bold name"),
        ("<script>alert(1)</script>after", "after"),
        ('<img src=x onerror="alert(1)">', ""),
        ("a < b", "a &lt; b"),
        ("&lt;script&gt;", "&lt;script&gt;"),
        ("x<!-- hidden -->y", "xy"),
    ],
)
def test_markup_is_removed(raw: str, clean: str) -> None:
    assert plain_text(raw) == clean


def test_graph_names_and_descriptions_are_sanitised() -> None:
    graph = schemas.GraphIn(name=" <i>My</i> graph ", description="<a href='javascript:x'>d</a>")
    assert (graph.name, graph.description) == ("My graph", "d")
    with pytest.raises(ValidationError):
        schemas.GraphIn(name="<script>only markup</script>")


def test_graph_limits_name_the_fields_past_them() -> None:
    settings = GatewaySettings(max_graph_nodes=2, max_node_metadata_bytes=100)
    nodes = [
        schemas.NodeIn(id=f"n{i}", block_id="b", metadata={"x": "y" * (200 if i == 1 else 1)})
        for i in range(3)
    ]
    with pytest.raises(ApiProblem) as problem:
        check_graph_limits(schemas.GraphIn(name="g", nodes=nodes), settings)
    assert problem.value.status == 422
    fields = {error.field for error in problem.value.errors or []}
    assert fields == {"body.nodes", "body.nodes.1.metadata"}
