"""The state service (a ``multiprocessing`` Manager serving the engine) and its batching client."""
