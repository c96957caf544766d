"""`rlvr plan`: placement and memory of a run on paper (`planner`), model shapes (`model_specs`), the printed
tables (`print_plan`). Import the modules directly; this file imports nothing."""
