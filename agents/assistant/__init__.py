"""Example app `assistant`: one agent with weather, clock and calculator tools."""
