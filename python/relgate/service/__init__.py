"""The gRPC service: server factory (`server.py`), one servicer per API service
(`servicers/`), the error-to-status table (`status.py`) and API-key auth (`auth.py`).

Import `relgate.service.server` for `create_server`; this package itself imports nothing
heavy so that clients can use the status table without pulling the server's dependencies.
"""
