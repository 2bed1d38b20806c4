"""Model engines: OpenAI-compatible HTTP (``http``), the one way relgate talks to a release's
model server or an LLM judge, and (``process``) engines relgate starts as child processes."""
