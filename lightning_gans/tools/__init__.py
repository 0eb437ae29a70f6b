"""Programs behind `make eval`, `make sample`, `make classifier` and `make theory-plot`."""
