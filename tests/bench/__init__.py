"""`make bench`: throughput and latency against the floor, measured in the same run."""
