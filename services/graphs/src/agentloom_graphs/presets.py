"""A preset as clients send it, and the rules it must meet before it is stored. No I/O here.

A preset holds saved graph inputs and credential choices for one graph version. Its inputs
may be partial (the call that uses it supplies the rest), but every name must be an input of
that version: the same rule the executions API applies to an execution's inputs, checked
here against the version's stored input schema so a bad preset is refused when it is saved,
not when it is first run. Problems come back together as `{field: message}`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from agentloom_graphs.domain import MAX_DESCRIPTION_CHARS, MAX_NAME_CHARS
from agentloom_graphs.errors import PresetInvalid
from agentloom_graphs.json_values import JsonValueError, check_text, parse_object

MAX_INPUTS_BYTES = 256 * 1024
MAX_CREDENTIALS_BYTES = 16 * 1024
MAX_CREDENTIALS = 50
MAX_PROVIDER_CHARS = 100
MAX_CREDENTIAL_FIELD_CHARS = 200
# A credential choice is `{"id": ...}`, optionally with descriptive strings (title, type...).
MAX_CREDENTIAL_FIELDS = 8


@dataclass(frozen=True)
class PresetDraft:
    """A preset as a client sent it: JSON values still text, nothing checked."""

    name: str
    description: str = ""
    inputs_json: str = ""
    credentials_inputs_json: str = ""


@dataclass(frozen=True)
class PresetContent:
    """The checked, user-editable part of a preset."""

    name: str
    description: str
    inputs: dict[str, Any]
    credentials_inputs: dict[str, Any]


def validate_preset(draft: PresetDraft, input_schema: Mapping[str, Any]) -> PresetContent:
    """Check `draft` against the graph version's input schema; raise `PresetInvalid` with
    every problem."""
    problems: dict[str, str] = {}
    _check_header(draft, problems)
    inputs = _parse(draft.inputs_json, MAX_INPUTS_BYTES, "inputs", problems)
    known = input_schema.get("properties")
    names = known.keys() if isinstance(known, Mapping) else ()
    for name in inputs:
        if name not in names:
            problems[f"inputs.{name}"[:200]] = "the graph version has no input of this name"
    credentials = _parse(
        draft.credentials_inputs_json, MAX_CREDENTIALS_BYTES, "credentials_inputs", problems
    )
    _check_credentials(credentials, problems)
    if problems:
        raise PresetInvalid(problems)
    return PresetContent(draft.name.strip(), draft.description, inputs, credentials)


def _check_header(draft: PresetDraft, problems: dict[str, str]) -> None:
    if not draft.name.strip():
        problems["name"] = "a preset needs a name"
    elif len(draft.name) > MAX_NAME_CHARS:
        problems["name"] = f"must be at most {MAX_NAME_CHARS} characters"
    if len(draft.description) > MAX_DESCRIPTION_CHARS:
        problems["description"] = f"must be at most {MAX_DESCRIPTION_CHARS} characters"
    for field_name, text in (("name", draft.name), ("description", draft.description)):
        try:
            check_text(text)
        except JsonValueError as error:
            problems.setdefault(field_name, str(error))


def _parse(text: str, max_bytes: int, field_name: str, problems: dict[str, str]) -> dict[str, Any]:
    try:
        return parse_object(text, max_bytes=max_bytes)
    except JsonValueError as error:
        problems[field_name] = f"{field_name} {error}"
        return {}


def _check_credentials(credentials: Mapping[str, Any], problems: dict[str, str]) -> None:
    """`{provider: {"id": credential id, ...}}`, the shape execute takes."""
    if len(credentials) > MAX_CREDENTIALS:
        problems["credentials_inputs"] = f"at most {MAX_CREDENTIALS} credential choices"
        return
    for provider, choice in credentials.items():
        where = f"credentials_inputs.{provider}"[:200]
        if not provider or len(provider) > MAX_PROVIDER_CHARS:
            problems[where] = f"a provider name has 1 to {MAX_PROVIDER_CHARS} characters"
        elif not isinstance(choice, dict) or not isinstance(choice.get("id"), str):
            problems[where] = 'must be an object with the credential\'s "id"'
        elif not choice["id"] or len(choice) > MAX_CREDENTIAL_FIELDS:
            problems[where] = f'needs a non-empty "id" and at most {MAX_CREDENTIAL_FIELDS} fields'
        elif any(
            not isinstance(value, str) or len(value) > MAX_CREDENTIAL_FIELD_CHARS
            for value in choice.values()
        ):
            problems[where] = f"fields must be strings of at most {MAX_CREDENTIAL_FIELD_CHARS}"
