"""/api/webhooks: the caller's outgoing webhook endpoints and their delivery logs (served by
notify). The signing secret is shown once, in the 201 answer. Deliveries are signed per the
Standard Webhooks spec and retried with backoff; an endpoint that keeps failing (or answers
410) is disabled and can be enabled again."""

from __future__ import annotations

import json
import uuid
from collections.abc import Awaitable
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, Literal, TypeVar

import grpc
from fastapi import APIRouter, Path, Query, Response
from google.protobuf.timestamp_pb2 import Timestamp
from pydantic import BaseModel, ConfigDict, Field

from agentloom.notify.v1 import webhooks_pb2 as pb
from agentloom_common.errors import error_info
from agentloom_common.problem import FieldError
from agentloom_gateway.access import requires
from agentloom_gateway.auth import PrincipalDep
from agentloom_gateway.deps import ServicesDep
from agentloom_gateway.errors import ApiProblem, problem_responses
from agentloom_gateway.routes.graphs import PageSize, PageToken

router = APIRouter(
    prefix="/webhooks",
    tags=["webhooks"],
    dependencies=[requires("webhooks:manage")],
    responses=problem_responses(403, 404),
)

MAX_URL_LENGTH = 2048
MAX_DESCRIPTION = 1000
EventType = Literal["execution.status", "node.status", "node.output", "*"]
WebhookId = Annotated[uuid.UUID, Path(description="Webhook endpoint id.")]
DeliveryId = Annotated[uuid.UUID, Path(description="Delivery id.")]
T = TypeVar("T")


def _all_events() -> list[EventType]:
    return ["*"]


class WebhookIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str = Field(
        min_length=1,
        max_length=MAX_URL_LENGTH,
        description="Where events are POSTed: an absolute http(s) URL on the public internet.",
    )
    description: str = Field(default="", max_length=MAX_DESCRIPTION)
    event_types: list[EventType] = Field(
        default_factory=_all_events,
        max_length=4,
        description='Event types to receive, or `["*"]` (the default) for all of them.',
    )


class Webhook(BaseModel):
    id: str
    url: str
    description: str
    event_types: list[str]
    enabled: bool
    disabled_reason: str | None = Field(description="Why the endpoint was disabled.")
    created_at: datetime | None
    updated_at: datetime | None


class WebhookCreated(Webhook):
    secret: str = Field(
        description="`whsec_...`: verify signatures with it. Shown only in this answer."
    )


class WebhookList(BaseModel):
    webhooks: list[Webhook]
    next_page_token: str | None


class DeliveryStatus(StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"


_STATUS_FROM_PB = {
    pb.DELIVERY_STATUS_PENDING: DeliveryStatus.PENDING,
    pb.DELIVERY_STATUS_DELIVERED: DeliveryStatus.DELIVERED,
    pb.DELIVERY_STATUS_FAILED: DeliveryStatus.FAILED,
}
_STATUS_TO_PB = {value: key for key, value in _STATUS_FROM_PB.items()}


class DeliveryAttempt(BaseModel):
    attempt: int
    started_at: datetime | None
    status_code: int | None = Field(description="Null when no HTTP answer came.")
    duration_ms: int
    error: str | None
    manual: bool = Field(description="A manual redelivery.")


class Delivery(BaseModel):
    id: str
    webhook_id: str = Field(description="The `webhook-id` header, the same on every attempt.")
    event_id: str
    event_type: str
    status: DeliveryStatus
    attempt_count: int
    next_attempt_at: datetime | None
    created_at: datetime | None
    delivered_at: datetime | None
    payload: Any = Field(
        description="The JSON body that is signed and sent (null when over 16 KB)."
    )
    attempts: list[DeliveryAttempt]


class DeliveryList(BaseModel):
    deliveries: list[Delivery]
    next_page_token: str | None


def _webhook(endpoint: pb.WebhookEndpoint) -> dict[str, Any]:
    return {
        "id": endpoint.id,
        "url": endpoint.url,
        "description": endpoint.description,
        "event_types": list(endpoint.event_types),
        "enabled": endpoint.enabled,
        "disabled_reason": endpoint.disabled_reason or None,
        "created_at": _utc(endpoint.created_at, endpoint.HasField("created_at")),
        "updated_at": _utc(endpoint.updated_at, endpoint.HasField("updated_at")),
    }


def _utc(stamp: Timestamp, present: bool) -> datetime | None:
    return stamp.ToDatetime(tzinfo=UTC) if present else None


def _delivery(delivery: pb.WebhookDelivery) -> Delivery:
    return Delivery(
        id=delivery.id,
        webhook_id=delivery.webhook_id,
        event_id=delivery.event_id,
        event_type=delivery.event_type,
        status=_STATUS_FROM_PB.get(delivery.status, DeliveryStatus.PENDING),
        attempt_count=delivery.attempt_count,
        next_attempt_at=_utc(delivery.next_attempt_at, delivery.HasField("next_attempt_at")),
        created_at=_utc(delivery.created_at, delivery.HasField("created_at")),
        delivered_at=_utc(delivery.delivered_at, delivery.HasField("delivered_at")),
        payload=json.loads(delivery.payload_json) if delivery.payload_json else None,
        attempts=[
            DeliveryAttempt(
                attempt=attempt.attempt,
                started_at=_utc(attempt.started_at, attempt.HasField("started_at")),
                status_code=attempt.status_code or None,
                duration_ms=attempt.duration_ms,
                error=attempt.error or None,
                manual=attempt.manual,
            )
            for attempt in delivery.attempts
        ],
    )


_FIELD_LOCATIONS = {"page_token": "query.page_token"}


async def _call(call: Awaitable[T]) -> T:
    """Await a notify call; a refused field (INVALID_ARGUMENT naming it) answers 422 with it,
    every other status maps through the gateway's one table."""
    try:
        return await call
    except grpc.aio.AioRpcError as error:
        if error.code() != grpc.StatusCode.INVALID_ARGUMENT:
            raise
        reason, metadata = error_info(error)
        field = metadata.get("field")
        if not field:
            raise
        location = _FIELD_LOCATIONS.get(field, f"body.{field}")
        message = (error.details() or "invalid")[:2000]
        code = reason if reason and reason != "INVALID_ARGUMENT" else "VALIDATION_ERROR"
        raise ApiProblem(
            422, code, message, errors=[FieldError(field=location, message=message)]
        ) from None


@router.post(
    "",
    status_code=201,
    summary="Create a webhook endpoint",
    response_description="The endpoint, with its signing secret for the only time.",
    responses=problem_responses(409),
)
async def create_webhook(
    body: WebhookIn, principal: PrincipalDep, services: ServicesDep, response: Response
) -> WebhookCreated:
    request = pb.CreateEndpointRequest(
        user_id=principal.user_id,
        url=body.url,
        description=body.description,
        event_types=list(body.event_types),
    )
    reply: pb.CreateEndpointResponse = await _call(services.webhooks.CreateEndpoint(request))
    response.headers["Location"] = f"/api/webhooks/{reply.endpoint.id}"
    return WebhookCreated(**_webhook(reply.endpoint), secret=reply.secret)


@router.get("", summary="List the caller's webhook endpoints")
async def list_webhooks(
    principal: PrincipalDep,
    services: ServicesDep,
    page_size: PageSize = 20,
    page_token: PageToken = "",
) -> WebhookList:
    request = pb.ListEndpointsRequest(
        user_id=principal.user_id, page_size=page_size, page_token=page_token
    )
    reply: pb.ListEndpointsResponse = await _call(services.webhooks.ListEndpoints(request))
    return WebhookList(
        webhooks=[Webhook(**_webhook(endpoint)) for endpoint in reply.endpoints],
        next_page_token=reply.next_page_token or None,
    )


@router.get("/{webhook_id}", summary="Get a webhook endpoint")
async def get_webhook(
    webhook_id: WebhookId, principal: PrincipalDep, services: ServicesDep
) -> Webhook:
    request = pb.GetEndpointRequest(user_id=principal.user_id, endpoint_id=str(webhook_id))
    reply: pb.GetEndpointResponse = await _call(services.webhooks.GetEndpoint(request))
    return Webhook(**_webhook(reply.endpoint))


@router.delete(
    "/{webhook_id}",
    status_code=204,
    summary="Delete a webhook endpoint, with its delivery log",
)
async def delete_webhook(
    webhook_id: WebhookId, principal: PrincipalDep, services: ServicesDep
) -> Response:
    request = pb.DeleteEndpointRequest(user_id=principal.user_id, endpoint_id=str(webhook_id))
    await _call(services.webhooks.DeleteEndpoint(request))
    return Response(status_code=204)


@router.post("/{webhook_id}/enable", summary="Enable a disabled webhook endpoint again")
async def enable_webhook(
    webhook_id: WebhookId, principal: PrincipalDep, services: ServicesDep
) -> Webhook:
    request = pb.EnableEndpointRequest(user_id=principal.user_id, endpoint_id=str(webhook_id))
    reply: pb.EnableEndpointResponse = await _call(services.webhooks.EnableEndpoint(request))
    return Webhook(**_webhook(reply.endpoint))


@router.get(
    "/{webhook_id}/deliveries",
    summary="The delivery log of an endpoint, newest first, with every attempt",
)
async def list_deliveries(
    webhook_id: WebhookId,
    principal: PrincipalDep,
    services: ServicesDep,
    status: Annotated[DeliveryStatus | None, Query(description="Only these.")] = None,
    page_size: PageSize = 20,
    page_token: PageToken = "",
) -> DeliveryList:
    request = pb.ListDeliveriesRequest(
        user_id=principal.user_id,
        endpoint_id=str(webhook_id),
        page_size=page_size,
        page_token=page_token,
        status=_STATUS_TO_PB[status] if status is not None else pb.DELIVERY_STATUS_UNSPECIFIED,
    )
    reply: pb.ListDeliveriesResponse = await _call(services.webhooks.ListDeliveries(request))
    return DeliveryList(
        deliveries=[_delivery(delivery) for delivery in reply.deliveries],
        next_page_token=reply.next_page_token or None,
    )


@router.post(
    "/{webhook_id}/deliveries/{delivery_id}/redeliver",
    status_code=202,
    summary="Send a delivery again now, with the same webhook-id",
    responses=problem_responses(409),
)
async def redeliver(
    webhook_id: WebhookId, delivery_id: DeliveryId, principal: PrincipalDep, services: ServicesDep
) -> Delivery:
    request = pb.RedeliverRequest(
        user_id=principal.user_id, endpoint_id=str(webhook_id), delivery_id=str(delivery_id)
    )
    reply: pb.RedeliverResponse = await _call(services.webhooks.Redeliver(request))
    return _delivery(reply.delivery)
