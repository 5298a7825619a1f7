"""gRPC translation for webhooks: proto in, repository call, proto out. Every call names
the user; another user's endpoint is NOT_FOUND, exactly like a missing one."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TypeAlias

import grpc
from google.protobuf.timestamp_pb2 import Timestamp
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from agentloom.notify.v1 import webhooks_pb2 as pb
from agentloom.notify.v1 import webhooks_pb2_grpc
from agentloom_common.errors import InvalidArgument, NotFound
from agentloom_common.netpolicy import AddressPolicy
from agentloom_notify.webhooks import domain, repository, targets
from agentloom_notify.webhooks.sealing import SecretBox
from agentloom_notify.webhooks.tables import DELIVERED, FAILED, PENDING, Attempt, Delivery, Endpoint

Context: TypeAlias = grpc.aio.ServicerContext

DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 100
# Bodies larger than this are left out of the delivery log (a page stays well under gRPC's
# 4 MB message limit); the receiver got them in full.
MAX_LISTED_PAYLOAD = 16_384
_STATUS_TO_PB = {
    PENDING: pb.DELIVERY_STATUS_PENDING,
    DELIVERED: pb.DELIVERY_STATUS_DELIVERED,
    FAILED: pb.DELIVERY_STATUS_FAILED,
}
_STATUS_FROM_PB = {value: key for key, value in _STATUS_TO_PB.items()}


class WebhookServicer(webhooks_pb2_grpc.WebhookServiceServicer):
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        box: SecretBox,
        policy: AddressPolicy,
        *,
        max_endpoints_per_user: int,
        max_url_length: int,
        on_due: Callable[[], None] | None = None,
    ) -> None:
        self._sessions = sessions
        self._box = box
        self._policy = policy
        self._max_endpoints = max_endpoints_per_user
        self._max_url_length = max_url_length
        self._on_due = on_due

    async def CreateEndpoint(
        self, request: pb.CreateEndpointRequest, context: Context
    ) -> pb.CreateEndpointResponse:
        user_id = _user(request.user_id)
        url = domain.check_url(request.url, max_length=self._max_url_length)
        description = domain.check_description(request.description)
        event_types = domain.event_types(request.event_types)
        await targets.check_target(url, self._policy)
        endpoint_id = uuid.uuid4()
        secret = domain.new_secret()
        async with self._sessions.begin() as session:
            endpoint = await repository.create_endpoint(
                session,
                endpoint_id=endpoint_id,
                user_id=user_id,
                url=url,
                description=description,
                event_types=event_types,
                sealed=self._box.seal(user_id, endpoint_id, secret),
                max_per_user=self._max_endpoints,
                now=datetime.now(UTC),
            )
            reply = pb.CreateEndpointResponse(endpoint=endpoint_pb(endpoint), secret=secret)
        return reply

    async def ListEndpoints(
        self, request: pb.ListEndpointsRequest, context: Context
    ) -> pb.ListEndpointsResponse:
        async with self._sessions.begin() as session:
            endpoints, token = await repository.list_endpoints(
                session,
                _user(request.user_id),
                page_size=_page_size(request.page_size),
                page_token=request.page_token,
            )
            return pb.ListEndpointsResponse(
                endpoints=[endpoint_pb(e) for e in endpoints], next_page_token=token
            )

    async def GetEndpoint(
        self, request: pb.GetEndpointRequest, context: Context
    ) -> pb.GetEndpointResponse:
        async with self._sessions.begin() as session:
            endpoint = await self._endpoint(session, request.user_id, request.endpoint_id)
            return pb.GetEndpointResponse(endpoint=endpoint_pb(endpoint))

    async def DeleteEndpoint(
        self, request: pb.DeleteEndpointRequest, context: Context
    ) -> pb.DeleteEndpointResponse:
        endpoint_id = _endpoint_id(request.endpoint_id)
        async with self._sessions.begin() as session:
            if not await repository.delete_endpoint(session, _user(request.user_id), endpoint_id):
                raise NotFound("no such webhook endpoint")
        return pb.DeleteEndpointResponse()

    async def EnableEndpoint(
        self, request: pb.EnableEndpointRequest, context: Context
    ) -> pb.EnableEndpointResponse:
        async with self._sessions.begin() as session:
            endpoint = await repository.enable_endpoint(
                session,
                _user(request.user_id),
                _endpoint_id(request.endpoint_id),
                now=datetime.now(UTC),
            )
            if endpoint is None:
                raise NotFound("no such webhook endpoint")
            return pb.EnableEndpointResponse(endpoint=endpoint_pb(endpoint))

    async def ListDeliveries(
        self, request: pb.ListDeliveriesRequest, context: Context
    ) -> pb.ListDeliveriesResponse:
        async with self._sessions.begin() as session:
            endpoint = await self._endpoint(session, request.user_id, request.endpoint_id)
            deliveries, attempts, token = await repository.list_deliveries(
                session,
                endpoint.id,
                status=_STATUS_FROM_PB.get(request.status),
                page_size=_page_size(request.page_size),
                page_token=request.page_token,
            )
            return pb.ListDeliveriesResponse(
                deliveries=[delivery_pb(d, attempts[d.id]) for d in deliveries],
                next_page_token=token,
            )

    async def Redeliver(
        self, request: pb.RedeliverRequest, context: Context
    ) -> pb.RedeliverResponse:
        delivery_id = _uuid("delivery_id", request.delivery_id)
        async with self._sessions.begin() as session:
            delivery = await repository.redeliver(
                session,
                _user(request.user_id),
                _endpoint_id(request.endpoint_id),
                delivery_id,
                now=datetime.now(UTC),
            )
            if delivery is None:
                raise NotFound("no such webhook delivery")
            found = await repository.get_delivery(session, delivery.endpoint_id, delivery_id)
            attempts = found[1] if found is not None else []
            reply = pb.RedeliverResponse(delivery=delivery_pb(delivery, attempts))
        if self._on_due is not None:
            self._on_due()
        return reply

    async def _endpoint(self, session: AsyncSession, user_id: str, endpoint_id: str) -> Endpoint:
        endpoint = await repository.get_endpoint(session, _user(user_id), _endpoint_id(endpoint_id))
        if endpoint is None:
            raise NotFound("no such webhook endpoint")
        return endpoint


def _user(user_id: str) -> str:
    if not user_id:
        raise InvalidArgument("user_id is required")
    return user_id


def _uuid(field: str, value: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        # An id that cannot exist answers like one that does not.
        raise NotFound(f"no such {field.removesuffix('_id')}") from None


def _endpoint_id(value: str) -> uuid.UUID:
    return _uuid("webhook_id", value)


def _page_size(requested: int) -> int:
    if requested <= 0:
        return DEFAULT_PAGE_SIZE
    return min(requested, MAX_PAGE_SIZE)


def _timestamp(value: datetime | None) -> Timestamp | None:
    if value is None:
        return None
    stamp = Timestamp()
    stamp.FromDatetime(value)
    return stamp


def endpoint_pb(endpoint: Endpoint) -> pb.WebhookEndpoint:
    return pb.WebhookEndpoint(
        id=str(endpoint.id),
        url=endpoint.url,
        description=endpoint.description,
        event_types=list(endpoint.event_types),
        enabled=endpoint.enabled,
        disabled_reason=endpoint.disabled_reason or "",
        created_at=_timestamp(endpoint.created_at),
        updated_at=_timestamp(endpoint.updated_at),
    )


def delivery_pb(delivery: Delivery, attempts: list[Attempt]) -> pb.WebhookDelivery:
    return pb.WebhookDelivery(
        id=str(delivery.id),
        endpoint_id=str(delivery.endpoint_id),
        webhook_id=delivery.webhook_id,
        event_id=delivery.event_id,
        event_type=delivery.event_type,
        status=_STATUS_TO_PB.get(delivery.status, pb.DELIVERY_STATUS_UNSPECIFIED),
        attempt_count=delivery.attempt_count,
        next_attempt_at=_timestamp(
            delivery.next_attempt_at if delivery.status == PENDING else None
        ),
        created_at=_timestamp(delivery.created_at),
        delivered_at=_timestamp(delivery.delivered_at),
        payload_json=delivery.payload if len(delivery.payload) <= MAX_LISTED_PAYLOAD else "",
        attempts=[
            pb.DeliveryAttempt(
                attempt=attempt.attempt,
                started_at=_timestamp(attempt.started_at),
                status_code=attempt.status_code or 0,
                duration_ms=attempt.duration_ms,
                error=attempt.error or "",
                manual=attempt.manual,
            )
            for attempt in attempts
        ],
    )
