"""Run output: stored as rows keyed (run_id, seq), read by cursor, streamed live."""
