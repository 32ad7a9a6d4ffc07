"""The reference runtime's `flows.llm_flows` module paths, over `app.flows`."""
