"""Test app `handoff`: a long-running tool that leaves its call open for the client to answer."""

from . import agent as agent
