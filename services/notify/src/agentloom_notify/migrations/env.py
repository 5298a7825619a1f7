from agentloom_common.migrations import run_env
from agentloom_notify.webhooks.tables import metadata

run_env(metadata)
