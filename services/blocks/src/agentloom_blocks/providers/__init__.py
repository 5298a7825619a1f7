"""LLM providers, chosen by the model's name and the platform's configuration.

`anthropic/<model>` or a name starting `claude` goes to Anthropic's Messages API;
`ollama/<model>` to Ollama's OpenAI-compatible endpoint; `openai/<model>` and any other name
to the configured OpenAI-compatible endpoint. No list of models is kept here: the provider
decides which names it serves.
"""

from __future__ import annotations

import dataclasses

from agentloom_blocks.providers import anthropic, openai
from agentloom_blocks.providers.base import ChatRequest, ChatResult, ToolCall, add_usage
from agentloom_blocks.sdk import BlockContext, BlockError, CredentialsField

__all__ = [
    "LLM_CREDENTIALS",
    "ChatRequest",
    "ChatResult",
    "ToolCall",
    "add_usage",
    "chat",
    "provider_for",
]

LLM_CREDENTIALS = (
    CredentialsField("openai", "api_key", "An OpenAI (or compatible) API key."),
    CredentialsField("anthropic", "api_key", "An Anthropic API key, for claude models."),
)


def provider_for(model: str) -> tuple[str, str]:
    """(provider, the model's name at that provider) for a model name as users write it."""
    prefix, slash, rest = model.partition("/")
    if slash and prefix in ("anthropic", "ollama", "openai") and rest:
        return prefix, rest
    if model.startswith("claude"):
        return "anthropic", model
    return "openai", model


async def chat(context: BlockContext, request: ChatRequest) -> ChatResult:
    """Send `request` to the provider its model names; errors are (retryable) BlockErrors."""
    provider, model = provider_for(request.model)
    request = dataclasses.replace(request, model=model)
    config = context.config
    timeout_s = config.http_timeout_s
    if provider == "anthropic":
        key = context.credential("anthropic")
        if not key:
            raise BlockError("no Anthropic API key is configured for LLM calls")
        return await anthropic.chat(
            request, base_url=config.anthropic_base_url, api_key=key, timeout_s=timeout_s
        )
    if provider == "ollama":
        # Ollama ignores the key, but OpenAI-compatible clients always send one.
        return await openai.chat(
            request, base_url=config.ollama_base_url, api_key="ollama", timeout_s=timeout_s
        )
    key = context.credential("openai")
    if not key:
        raise BlockError("no OpenAI API key is configured for LLM calls")
    return await openai.chat(
        request, base_url=config.openai_base_url, api_key=key, timeout_s=timeout_s
    )
