"""Running proto-index work on a cluster engine (Ray); imported only when an executor asks for it."""
