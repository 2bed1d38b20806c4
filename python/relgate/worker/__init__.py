"""Judge workers: the worker process (``runner``) that registers with a control plane, pulls
judge jobs and sends results. See docs/scale-out.md for when to use them."""
