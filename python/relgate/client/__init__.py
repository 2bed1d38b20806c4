"""The gRPC client of relgate: one class, ``RelgateClient``, on the generated stubs.

Server address: argument, else ``RELGATE_SERVER``, else 127.0.0.1:50051. API key: argument,
else ``RELGATE_API_KEY``. A failed call raises the ``relgate.errors`` class the server raised
(it names the class in the ``relgate-error`` trailing metadata; without it, the status code
decides); an unreachable server raises ``RelgateError`` saying so.
"""

from __future__ import annotations

from relgate.client.client import (
    DEFAULT_SERVER,
    RelgateClient,
    answer_source,
    judge_message,
    rpc_error,
)

__all__ = ["DEFAULT_SERVER", "RelgateClient", "answer_source", "judge_message", "rpc_error"]
