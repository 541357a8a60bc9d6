"""IsoFLOP sweeps: the design, the schedule, the point runner and the executors."""
