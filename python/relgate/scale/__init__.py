"""Scale-out: batch work (re-attestation, judging a suite) as Ray tasks. Ray is an optional
dependency (``pip install 'relgate[ray]'``), imported only when a ``--ray`` command runs."""
