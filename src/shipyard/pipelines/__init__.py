"""CI pipelines: graphs of stages (by depends_on), each a list of steps."""
