# The two commands of the README. Both set everything up first (idempotent).
.PHONY: run test judge-model

run:
	bash scripts/setup.sh
	.venv/bin/grm-studio serve

test:
	bash scripts/setup.sh test
	.venv/bin/python -m pytest

# Train GRM Studio's own judge (cold start on the critique data) and ship it to
# models/grm-studio-judge; resumable, about 80 minutes on 2 CPU cores.
judge-model:
	bash scripts/setup.sh
	.venv/bin/grm-studio recipe
