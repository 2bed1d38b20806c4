"""The demo: relgate end to end on one machine (``make demo``, ``python -m relgate.demo``).

Chapters: weight attestation (``story``), then ``real`` (SmolLM2 on llama.cpp behind one
server: gate v0/v1/v2 on live answers, canary, catch, automatic rollback) and the receipts
(``roll``); ``story`` runs them in order and exits 0 only when every chapter happened as told.
``gate`` and ``roll`` also hold the test-backend story the tests use for latency, 5xx and swap
behaviour (docs/real-model.md).
"""
