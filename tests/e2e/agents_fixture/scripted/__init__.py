"""Test app `scripted`: a ScriptedModel whose reply is chosen by the user's message."""

from . import agent as agent
