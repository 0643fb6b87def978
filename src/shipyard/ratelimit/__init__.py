"""Rate limits per client and route group, on the ``limits`` library."""
