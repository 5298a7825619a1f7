"""POST /hooks/triggers/{trigger_id}: the ingress of incoming triggers. It takes no API key:
the call is authenticated by a Standard Webhooks signature (`webhook-id`,
`webhook-timestamp`, `webhook-signature`) made with the trigger's secret, verified by the
`standardwebhooks` package, which also refuses timestamps more than 5 minutes off.

A verified call is stored by its `webhook-id` (unique per trigger) before anything starts,
and the execution is created with the idempotency key `trigger:<id>:<webhook-id>`: a
sender's retry, a concurrent duplicate, or a retry after a crash between storing and
starting all end with one execution, answered 202 with its id every time. Unknown,
disabled, or suspended-owner triggers answer 404; bad signatures 401; nothing is stored or
started for either."""

from __future__ import annotations

import json
import logging
import uuid
from typing import Annotated, Any

import grpc
from fastapi import APIRouter, Header, Path, Request, Response
from pydantic import BaseModel
from redis.exceptions import RedisError
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from agentloom.executor.v1 import executor_pb2
from agentloom.graphs.v1 import presets_pb2
from agentloom_common.problem import FieldError
from agentloom_gateway import triggers
from agentloom_gateway.deps import KeyRingDep, ServicesDep, SessionsDep
from agentloom_gateway.errors import ApiProblem, problem_responses, unavailable
from agentloom_gateway.routes.presets import json_object
from agentloom_gateway.tables import Trigger

log = logging.getLogger(__name__)

router = APIRouter(tags=["triggers"])

# Signature headers; optional here so that a missing one is a 401, not a 422.
SignatureHeader = Annotated[str | None, Header(description="Standard Webhooks header.")]


class TriggerAccepted(BaseModel):
    execution_id: str
    delivery_id: str


def _not_found() -> ApiProblem:
    # One answer for unknown, disabled and suspended-owner triggers: nothing tells them apart.
    return ApiProblem(404, "TRIGGER_NOT_FOUND", "no such trigger, or it is disabled")


def _unauthenticated() -> ApiProblem:
    return ApiProblem(
        401,
        "INVALID_SIGNATURE",
        "the call needs a valid Standard Webhooks signature made with the trigger's secret",
        {"WWW-Authenticate": 'Signature realm="trigger"'},
    )


def _verify(secret: str, body: bytes, headers: dict[str, str]) -> None:
    try:
        Webhook(secret).verify(body, headers, json_parse=False)
    except (WebhookVerificationError, ValueError):  # ValueError: malformed base64, UTF-8...
        raise _unauthenticated() from None


def _payload(request: Request, body: bytes) -> Any:
    media = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media != "application/json" and not (media.startswith("application/") and "+json" in media):
        raise ApiProblem(415, "UNSUPPORTED_MEDIA_TYPE", "the body must be application/json")
    try:
        payload = json.loads(body, parse_constant=_reject_constant)
    except (ValueError, RecursionError):
        raise ApiProblem(400, "MALFORMED_JSON", "the body is not valid JSON") from None
    if not _storable(payload):
        error = FieldError(field="body", message="no NUL characters or unpaired surrogates")
        raise ApiProblem(422, "VALIDATION_ERROR", "the body cannot be stored", errors=[error])
    return payload


def _storable(value: Any) -> bool:
    """PostgreSQL's JSON takes neither NUL characters nor unpaired surrogates in strings."""
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, dict):
            pending.extend(item.keys())
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
        elif isinstance(item, str):
            if "\x00" in item:
                return False
            try:
                item.encode()
            except UnicodeEncodeError:
                return False
    return True


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


async def _spend(request: Request, trigger: Trigger) -> None:
    """Each trigger spends its owner's `execute` budget; fails closed when Redis is down."""
    resources = request.app.state.resources
    if resources.limiter is None:
        return
    try:
        decision = await resources.limiter.hit(f"user:{trigger.user_id}", "execute")
    except (RedisError, OSError) as error:
        raise unavailable(
            resources.settings.retry_after_s, "rate limiting is unavailable"
        ) from error
    if not decision.allowed:
        raise ApiProblem(429, "RATE_LIMITED", "too many requests: retry later", decision.headers())


async def _start(services: ServicesDep, trigger: Trigger, payload: Any, delivery_id: str) -> str:
    """Create (or find) the execution of one delivery; the payload wins over the preset."""
    user_id = str(trigger.user_id)
    inputs: dict[str, Any] = {}
    credentials: dict[str, Any] = {}
    version = trigger.graph_version
    if trigger.preset_id is not None:
        try:
            reply: presets_pb2.GetPresetResponse = await services.presets.GetPreset(
                presets_pb2.GetPresetRequest(user_id=user_id, preset_id=str(trigger.preset_id))
            )
        except grpc.aio.AioRpcError as error:
            if error.code() != grpc.StatusCode.NOT_FOUND:
                raise
            detail = "the trigger's preset was deleted: point the trigger at another one"
            raise ApiProblem(409, "TRIGGER_PRESET_MISSING", detail) from None
        inputs = json_object(reply.preset.inputs_json)
        credentials = json_object(reply.preset.credentials_inputs_json)
        version = version or reply.preset.graph_version
    inputs[trigger.input_name] = payload
    request = executor_pb2.CreateExecutionRequest(
        user_id=user_id,
        graph_id=str(trigger.graph_id),
        graph_version=version,
        inputs_json=json.dumps(inputs),
        credentials_inputs_json=json.dumps(credentials),
        idempotency_key=triggers.idempotency_key(trigger.id, delivery_id),
    )
    created: executor_pb2.CreateExecutionResponse = await services.executions.CreateExecution(
        request
    )
    return str(created.execution.id)


@router.post(
    "/hooks/triggers/{trigger_id}",
    status_code=202,
    summary="Call an incoming trigger (Standard Webhooks signature, no API key)",
    description="Starts the trigger's graph with the JSON body as its input. Repeating a "
    "`webhook-id` starts nothing and answers the same execution id.",
    responses=problem_responses(400, 401, 402, 404, 409, 413, 415, 422, 429, 500, 503),
    response_description="Accepted: the execution is queued. `Location` names it.",
    openapi_extra={
        # No API key or JWT: the Standard Webhooks signature headers authenticate the call.
        "security": [],
        "requestBody": {"required": True, "content": {"application/json": {"schema": {}}}},
    },
)
async def call_trigger(
    trigger_id: Annotated[uuid.UUID, Path(description="Trigger id.")],
    request: Request,
    response: Response,
    sessions: SessionsDep,
    services: ServicesDep,
    keyring: KeyRingDep,
    webhook_id: SignatureHeader = None,
    webhook_timestamp: SignatureHeader = None,
    webhook_signature: SignatureHeader = None,
) -> TriggerAccepted:
    async with sessions.begin() as session:
        trigger = await triggers.find_active(session=session, trigger_id=trigger_id)
    if trigger is None:
        raise _not_found()
    body = await request.body()
    signed = {
        "webhook-id": webhook_id or "",
        "webhook-timestamp": webhook_timestamp or "",
        "webhook-signature": webhook_signature or "",
    }
    _verify(triggers.open_secret(keyring, trigger), body, signed)
    delivery_id = webhook_id or ""
    if not triggers.valid_delivery_id(delivery_id):
        message = f"printable ASCII, at most {triggers.MAX_DELIVERY_ID_CHARS} characters"
        error = FieldError(field="header.webhook-id", message=message)
        raise ApiProblem(422, "VALIDATION_ERROR", "webhook-id is not usable", errors=[error])
    payload = _payload(request, body)
    async with sessions.begin() as session:
        seen = await triggers.find_delivery(
            session=session, trigger_id=trigger.id, delivery_id=delivery_id
        )
    if seen is None or seen.execution_id is None:
        await _spend(request, trigger)
        await _check_balance(services, str(trigger.user_id))
        async with sessions.begin() as session:
            seen = await triggers.record_delivery(
                session=session, trigger_id=trigger.id, delivery_id=delivery_id, payload=payload
            )
    execution_id = seen.execution_id
    if execution_id is None:
        # The stored payload: a retry after a crash starts what was first accepted.
        execution_id = await _start(services, trigger, seen.payload, delivery_id)
        async with sessions.begin() as session:
            await triggers.set_execution(
                session=session, delivery=seen.id, execution_id=execution_id
            )
        log.info(
            "trigger started an execution",
            extra={"fields": {"trigger_id": str(trigger.id), "execution_id": execution_id}},
        )
    response.headers["Location"] = f"/api/executions/{execution_id}"
    return TriggerAccepted(execution_id=execution_id, delivery_id=delivery_id)


async def _check_balance(services: ServicesDep, user_id: str) -> None:
    check = await services.balance.check(user_id)
    if not check.sufficient:
        raise ApiProblem(
            402,
            "INSUFFICIENT_CREDITS",
            "the trigger owner's balance is used up",
            members={"balance": check.balance},
        )
