"""Agentloom's benchmark suite: the platform through its real services, side by side with a
Celery baseline on the same machine, in one run (`make bench`; see bench/README.md)."""
