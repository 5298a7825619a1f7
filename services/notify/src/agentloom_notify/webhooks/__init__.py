"""Outgoing webhooks: endpoints, one delivery per event and endpoint, signed retried POSTs."""
