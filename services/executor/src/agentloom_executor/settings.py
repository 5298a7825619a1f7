from __future__ import annotations

from pydantic import AliasChoices, Field

from agentloom_common.settings import ServiceSettings


class ExecutorSettings(ServiceSettings):
    """Settings of the executions API, the scheduler and the runner (one package, three roles)."""

    listen_addr: str = "127.0.0.1:50054"
    # Connections each executor process keeps (and as many again under bursts).
    db_pool_size: int = 5
    # Executions hash onto this many scheduler partitions (fixed for a deployment).
    partitions: int = 4
    # Added to the nice value of the scheduler and runner processes (0-19; 0 keeps it): on
    # a machine they share with the API processes, API calls get the CPU first and a burst
    # of executions waits in the bus instead (W4 in bench/).
    worker_niceness: int = Field(default=5, ge=0, le=19)
    # Node jobs a runner works on at once (its RabbitMQ prefetch).
    runner_concurrency: int = 16
    # Results/requests a scheduler applies at once, across executions.
    scheduler_prefetch: int = 32
    node_timeout_s: float = 600.0
    # A runner owns a node execution it claimed for this long, and heartbeats to extend it;
    # past it (the runner died or froze) the sweeper hands the node to another runner.
    lease_s: float = 30.0
    # A node whose runner was lost this many times fails (it may be what kills runners).
    max_lost_attempts: int = 5
    # Retries of blocks that raise retryable errors, unless the node's config says otherwise.
    retry_max_attempts: int = 3
    retry_initial_interval_s: float = 1.0
    retry_backoff: float = 2.0
    retry_max_interval_s: float = 60.0
    # Per execution: wall-clock limit and node executions (loops end).
    execution_timeout_s: float = 3600.0
    max_node_executions: int = 10_000
    # Executions a user may have RUNNING at once; more wait QUEUED, in order.
    max_running_per_user: int = 8
    # Sub-agent nesting.
    max_depth: int = 5
    # The sweeper's pace, and how old a dispatched-but-unclaimed job must be to be re-sent.
    sweep_interval_s: float = 1.0
    redispatch_after_s: float = 60.0
    # The executions API runs a graph version it holds without asking the graphs service
    # again for this long after it last asked, unless the bus announced a change of that
    # graph meanwhile (graph_versions.py); 0 asks on every run.
    graph_trust_s: float = 5.0
    # Outbox rows not published right after their commit are re-sent by the relay after this.
    outbox_retry_after_s: float = 2.0
    outbox_poll_interval_s: float = 1.0
    # The event relay (one active at a time, in the schedulers): its pace when idle, and
    # how long events stay replayable after they were recorded.
    events_poll_interval_s: float = 0.05
    events_retention_s: float = 7 * 24 * 3600.0
    # Each scheduler vacuums the executor's busy tables (events, node executions,
    # executions, outbox) when their dead rows pass both figures (maintenance.py), looking
    # this often; 0 leaves it to autovacuum.
    maintenance_interval_s: float = 5.0
    maintenance_min_dead_rows: int = 2_000
    maintenance_dead_fraction: float = 0.1
    # Schedules (docs/schedules.md): how often each scheduler replica looks for due ones;
    # a slot missed by longer than the grace (the platform was down) is skipped; the
    # shortest interval between slots a cron expression may have; schedules per user.
    schedule_poll_interval_s: float = 1.0
    schedule_missed_grace_s: float = 300.0
    schedule_min_interval_s: float = 60.0
    max_schedules_per_user: int = 100
    # The gateway's internal credentials service: users' stored credentials, decrypted.
    credentials_grpc_addr: str = "127.0.0.1:50056"
    # The platform's default LLM credentials, used when a user brings none.
    openai_base_url: str = Field(
        default="https://api.openai.com/v1",
        validation_alias=AliasChoices("OPENAI_BASE_URL", "AGENTLOOM_OPENAI_BASE_URL"),
    )
    openai_api_key: str | None = Field(
        default=None, validation_alias=AliasChoices("OPENAI_API_KEY", "AGENTLOOM_OPENAI_API_KEY")
    )
    anthropic_base_url: str = Field(
        default="https://api.anthropic.com",
        validation_alias=AliasChoices("ANTHROPIC_BASE_URL", "AGENTLOOM_ANTHROPIC_BASE_URL"),
    )
    anthropic_api_key: str | None = Field(
        default=None,
        validation_alias=AliasChoices("ANTHROPIC_API_KEY", "AGENTLOOM_ANTHROPIC_API_KEY"),
    )
    ollama_base_url: str = Field(
        default="http://localhost:11434/v1",
        validation_alias=AliasChoices("OLLAMA_BASE_URL", "AGENTLOOM_OLLAMA_BASE_URL"),
    )
    # Blocks may reach loopback/private addresses only when the operator says so
    # (self-hosting); `allowed_networks` opens just the CIDRs listed.
    allow_private_network: bool = False
    allowed_networks: tuple[str, ...] = ()
    http_max_response_bytes: int = 10_000_000
    smtp_host: str | None = None
    smtp_port: int = 587
    smtp_username: str | None = None
    smtp_password: str | None = None
    smtp_security: str = "starttls"
