"""Scopes: what a credential may do. Every /api route declares one (`access.requires`); an
API key carries a subset of its owner's role's scopes, a JWT carries all of them."""

from __future__ import annotations

from typing import Literal, get_args

Scope = Literal[
    "graphs:read",
    "graphs:write",
    "executions:read",
    "executions:write",
    "blocks:read",
    "blocks:execute",
    "webhooks:manage",
    "credentials:manage",
    "credits:read",
    "profile:read",
    "profile:write",
    "api_keys:manage",
    "admin",
]
ALL_SCOPES: tuple[str, ...] = get_args(Scope)
ADMIN_SCOPE = "admin"
# Everything but `admin`: what a user's JWT carries and a new key gets by default.
USER_SCOPES: tuple[str, ...] = tuple(scope for scope in ALL_SCOPES if scope != ADMIN_SCOPE)
ROLE_SCOPES: dict[str, tuple[str, ...]] = {"user": USER_SCOPES, "admin": ALL_SCOPES}


def role_scopes(role: str) -> tuple[str, ...]:
    return ROLE_SCOPES.get(role, ())


def effective_scopes(role: str, granted: tuple[str, ...] | list[str]) -> tuple[str, ...]:
    """A key's scopes as far as its owner's current role still allows them."""
    allowed = set(role_scopes(role))
    return tuple(scope for scope in granted if scope in allowed)
