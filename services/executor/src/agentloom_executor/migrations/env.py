from agentloom_common.migrations import run_env
from agentloom_executor.tables import metadata

run_env(metadata)
