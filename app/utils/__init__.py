"""Small helpers shared by the runtime's layers."""
