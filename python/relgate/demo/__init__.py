"""The demo: relgate end to end on one machine (``make demo``, ``python -m relgate.demo``).

Chapters: ``attest`` (weight attestation), ``gate`` (register and gate through the API),
``roll`` (canary, catch, automatic rollback, receipts); ``story`` runs them in order on one
server and exits 0 only when every chapter happened as told.
"""
