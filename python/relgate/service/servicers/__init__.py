"""One servicer per API service. Each exposes `descriptor` (its service descriptor) and
`rpcs()` (method name -> `Rpc`), which `relgate.service.rpc.build_handler` serves."""
