from agentloom_billing.tables import metadata
from agentloom_common.migrations import run_env

run_env(metadata)
